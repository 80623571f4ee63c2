// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The parts of the domctl interface that hv-feature uses, for every domctl
//! interface version it knows, so that one binary can talk to any of those
//! Xens: Xen refuses a domctl whose `interface_version` is not its own with
//! `EACCES`, so the caller tries the versions below until one is accepted
//! and then lays the call out as that version says.
//!
//! Written by hand from each release's `public/domctl.h` (x86_64). The
//! test below checks the entry of the tree this crate was built against
//! with bindgen's layout of that tree; CI builds the crate against the
//! 4.17.5 and the staging trees.

/// Byte offset and size of one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// Offset from the start of the enclosing struct (for the members of
    /// the union: from the start of the union).
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
}

const fn f(offset: usize, size: usize) -> Field {
    Field { offset, size }
}

/// Where the members hv-feature uses sit, and the command numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomctlLayout {
    /// `sizeof(struct xen_domctl)`.
    pub size: usize,
    /// `xen_domctl.cmd`.
    pub cmd: Field,
    /// `xen_domctl.interface_version`.
    pub interface_version: Field,
    /// `xen_domctl.domain`.
    pub domain: Field,
    /// `xen_domctl.u`, the union of the sub-op arguments.
    pub u: Field,
    /// `XEN_DOMCTL_getdomaininfo`.
    pub getdomaininfo: u32,
    /// `xen_domctl_getdomaininfo.domain`.
    pub info_domain: Field,
    /// `xen_domctl_getdomaininfo.flags`.
    pub info_flags: Field,
    /// `xen_domctl_getdomaininfo.tot_pages`.
    pub info_tot_pages: Field,
    /// `xen_domctl_getdomaininfo.max_pages`.
    pub info_max_pages: Field,
    /// `xen_domctl_getdomaininfo.shared_info_frame`.
    pub info_shared_info_frame: Field,
    /// `XEN_DOMCTL_get_address_size`.
    pub get_address_size: u32,
    /// `xen_domctl_address_size.size`.
    pub address_size: Field,
    /// `XEN_DOMCTL_max_mem`.
    pub max_mem: u32,
    /// `xen_domctl_max_mem.max_memkb`.
    pub max_memkb: Field,
}

/// The layout of interface versions 0x14 (Xen 4.16) to 0x18 (Xen 4.22 and
/// staging): none of these members moved in that range.
pub const LAYOUT_4_16: DomctlLayout = DomctlLayout {
    size: 144,
    cmd: f(0, 4),
    interface_version: f(4, 4),
    domain: f(8, 2),
    u: f(16, 128),
    getdomaininfo: 5,
    info_domain: f(0, 2),
    info_flags: f(4, 4),
    info_tot_pages: f(8, 8),
    info_max_pages: f(16, 8),
    info_shared_info_frame: f(48, 8),
    get_address_size: 36,
    address_size: f(0, 4),
    max_mem: 11,
    max_memkb: f(0, 8),
};

/// One domctl interface version and its layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomctlAbi {
    /// `XEN_DOMCTL_INTERFACE_VERSION`.
    pub interface_version: u32,
    /// The Xen versions that have it.
    pub xen: &'static str,
    /// How that version lays out what hv-feature uses.
    pub layout: &'static DomctlLayout,
}

/// Every domctl interface version hv-feature speaks, newest first.
pub const DOMCTL_ABIS: &[DomctlAbi] = &[
    DomctlAbi {
        interface_version: 0x18,
        xen: "4.22 to 4.23-unstable",
        layout: &LAYOUT_4_16,
    },
    DomctlAbi {
        interface_version: 0x17,
        xen: "4.19 to 4.21",
        layout: &LAYOUT_4_16,
    },
    DomctlAbi {
        interface_version: 0x16,
        xen: "4.18",
        layout: &LAYOUT_4_16,
    },
    DomctlAbi {
        interface_version: 0x15,
        xen: "4.17",
        layout: &LAYOUT_4_16,
    },
];

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::{
        xen_domctl, xen_domctl_address_size, xen_domctl_getdomaininfo, xen_domctl_max_mem,
    };
    use core::mem::{offset_of, size_of};

    /// Size of the member that `get` borrows (never called: the closure
    /// only names the member's type).
    fn member_size<T, M>(_get: fn(&T) -> &M) -> usize {
        size_of::<M>()
    }

    macro_rules! field {
        ($t:ident . $m:ident) => {{
            Field {
                offset: offset_of!($t, $m),
                size: member_size(|v: &$t| &v.$m),
            }
        }};
    }

    /// The layout as bindgen generated it from this build's tree.
    fn bindgen_layout() -> DomctlLayout {
        DomctlLayout {
            size: size_of::<xen_domctl>(),
            cmd: field!(xen_domctl.cmd),
            interface_version: field!(xen_domctl.interface_version),
            domain: field!(xen_domctl.domain),
            u: field!(xen_domctl.u),
            getdomaininfo: crate::XEN_DOMCTL_getdomaininfo,
            info_domain: field!(xen_domctl_getdomaininfo.domain),
            info_flags: field!(xen_domctl_getdomaininfo.flags),
            info_tot_pages: field!(xen_domctl_getdomaininfo.tot_pages),
            info_max_pages: field!(xen_domctl_getdomaininfo.max_pages),
            info_shared_info_frame: field!(xen_domctl_getdomaininfo.shared_info_frame),
            get_address_size: crate::XEN_DOMCTL_get_address_size,
            address_size: field!(xen_domctl_address_size.size),
            max_mem: crate::XEN_DOMCTL_max_mem,
            max_memkb: field!(xen_domctl_max_mem.max_memkb),
        }
    }

    #[test]
    fn this_trees_interface_version_is_known_and_its_layout_matches_bindgen() {
        let v = crate::XEN_DOMCTL_INTERFACE_VERSION;
        let abi = DOMCTL_ABIS
            .iter()
            .find(|a| a.interface_version == v)
            .unwrap_or_else(|| {
                panic!(
                    "this tree's XEN_DOMCTL_INTERFACE_VERSION {v:#x} is not in DOMCTL_ABIS: \
                     add it, with the layout bindgen gives: {:?}",
                    bindgen_layout()
                )
            });
        assert_eq!(
            *abi.layout,
            bindgen_layout(),
            "DOMCTL_ABIS entry {v:#x} (Xen {}) vs bindgen",
            abi.xen
        );
        std::println!(
            "domctl interface {v:#x} (Xen {}): layout matches bindgen",
            abi.xen
        );
    }

    #[test]
    fn versions_are_unique_and_newest_first() {
        for w in DOMCTL_ABIS.windows(2) {
            assert!(w[0].interface_version > w[1].interface_version, "{w:?}");
        }
    }

    #[test]
    fn every_layout_fits_its_struct() {
        for a in DOMCTL_ABIS {
            let l = a.layout;
            for m in [l.cmd, l.interface_version, l.domain, l.u] {
                assert!(m.offset + m.size <= l.size, "{a:?}");
            }
            for m in [
                l.info_domain,
                l.info_flags,
                l.info_tot_pages,
                l.info_max_pages,
                l.info_shared_info_frame,
                l.address_size,
                l.max_memkb,
            ] {
                assert!(m.offset + m.size <= l.u.size, "{a:?}");
            }
        }
    }
}
