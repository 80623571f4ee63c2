// SPDX-License-Identifier: Apache-2.0 OR MIT
//! FFI types and constants of Xen's public headers: what a toolstack needs
//! to read a PV guest's p2m (`shared_info`, the domctls for domain info,
//! address size and max memory, `XENVER_*`, `XENMEM_*`, the feature bits,
//! the start-info flags and this project's crash note).
//!
//! The bindings are bindgen's output over the public headers of the pinned
//! patched Xen 4.17.5 tree, committed as `src/bindings.rs` (types and
//! constants only): building the crate needs neither a Xen tree nor
//! libclang. The `xen-tree` feature instead generates them at build time
//! from the tree at `$XEN_TREE` (any from Xen 4.17 on, patched or not) and
//! compiles `layout.c` against the same headers; this project uses it to
//! regenerate and check the committed file and to test other trees. What not
//! every such tree has (later XENFEAT bits, this project's feature bit and
//! crash note) is defined in [`newer`] under the C names; [`domctl_abi`]
//! describes the domctl layouts of every interface version hv-feature
//! speaks. No logic lives here; `hv-feature` builds the safe API on top.
//!
//! The generated code carries bindgen's own layout tests; with `xen-tree`,
//! `c_layout` below additionally compares bindgen's offsets with the C
//! compiler's, and the items of [`newer`] with the tree's where it defines
//! them.

#![no_std]
// The generated bindings (unions' Default) and the test of the C layout
// tables (FFI reads) are the crate's unsafe code.
#![allow(unsafe_code)]
#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case)]
#![allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]

#[cfg(not(feature = "xen-tree"))]
include!("bindings.rs");
#[cfg(feature = "xen-tree")]
include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

pub mod domctl_abi;
pub mod newer;
pub use newer::*;

#[cfg(all(test, feature = "xen-tree"))]
mod c_layout {
    //! bindgen's layout against the C compiler's, from `layout.c`.
    extern crate std;
    use super::*;
    use core::ffi::{c_char, c_ulong, CStr};
    use core::mem::{offset_of, size_of};
    use std::collections::BTreeMap;
    use std::string::{String, ToString};

    #[repr(C)]
    struct Entry {
        name: *const c_char,
        offset: c_ulong,
        size: c_ulong,
    }

    #[repr(C)]
    struct Constant {
        name: *const c_char,
        value: c_ulong,
    }

    extern "C" {
        static xen_sys_layout: [Entry; 0];
        static xen_sys_constants: [Constant; 0];
    }

    /// The items of `newer` that the tree's headers define, with the C
    /// compiler's values.
    fn c_constants() -> BTreeMap<String, u64> {
        let mut map = BTreeMap::new();
        let mut i = 0;
        loop {
            // SAFETY: layout.c terminates the table with a null name, and we
            // stop there; every name before it is a string literal.
            let e = unsafe { &*xen_sys_constants.as_ptr().add(i) };
            if e.name.is_null() {
                break;
            }
            // SAFETY: non-null names are NUL-terminated literals.
            let name = unsafe { CStr::from_ptr(e.name) }
                .to_str()
                .unwrap()
                .to_string();
            map.insert(name, e.value as u64);
            i += 1;
        }
        map
    }

    fn c_table() -> BTreeMap<String, (usize, usize)> {
        let mut map = BTreeMap::new();
        let mut i = 0;
        loop {
            // SAFETY: layout.c terminates the table with a null name, and we
            // stop there; every name before it is a string literal.
            let e = unsafe { &*xen_sys_layout.as_ptr().add(i) };
            if e.name.is_null() {
                break;
            }
            // SAFETY: non-null names are NUL-terminated literals.
            let name = unsafe { CStr::from_ptr(e.name) }
                .to_str()
                .unwrap()
                .to_string();
            map.insert(name, (e.offset as usize, e.size as usize));
            i += 1;
        }
        map
    }

    macro_rules! rust_entry {
        ($t:ident . $m:ident) => {{
            // The size of the member the closure borrows (never called).
            fn member_size<T, M>(_get: fn(&T) -> &M) -> usize {
                size_of::<M>()
            }
            let sz = member_size(|v: &$t| &v.$m);
            (
                concat!(stringify!($t), ".", stringify!($m)),
                offset_of!($t, $m),
                sz,
            )
        }};
        ($t:ident) => {
            (stringify!($t), 0usize, size_of::<$t>())
        };
    }

    #[test]
    fn bindgen_layout_equals_c_compiler_layout() {
        let c = c_table();
        let rust = [
            rust_entry!(shared_info),
            rust_entry!(shared_info.vcpu_info),
            rust_entry!(shared_info.evtchn_pending),
            rust_entry!(shared_info.evtchn_mask),
            rust_entry!(shared_info.wc_version),
            rust_entry!(shared_info.wc_sec),
            rust_entry!(shared_info.wc_nsec),
            rust_entry!(shared_info.arch),
            rust_entry!(arch_shared_info),
            rust_entry!(arch_shared_info.max_pfn),
            rust_entry!(arch_shared_info.pfn_to_mfn_frame_list_list),
            rust_entry!(arch_shared_info.nmi_reason),
            rust_entry!(arch_shared_info.p2m_cr3),
            rust_entry!(arch_shared_info.p2m_vaddr),
            rust_entry!(arch_shared_info.p2m_generation),
            rust_entry!(vcpu_info),
            rust_entry!(vcpu_info.evtchn_upcall_pending),
            rust_entry!(vcpu_info.evtchn_pending_sel),
            rust_entry!(vcpu_info.arch),
            rust_entry!(vcpu_info.time),
            rust_entry!(xen_feature_info),
            rust_entry!(xen_feature_info.submap_idx),
            rust_entry!(xen_feature_info.submap),
            rust_entry!(xen_domctl),
            rust_entry!(xen_domctl.cmd),
            rust_entry!(xen_domctl.interface_version),
            rust_entry!(xen_domctl.domain),
            rust_entry!(xen_domctl.u),
            rust_entry!(xen_domctl_getdomaininfo),
            rust_entry!(xen_domctl_getdomaininfo.domain),
            rust_entry!(xen_domctl_getdomaininfo.flags),
            rust_entry!(xen_domctl_getdomaininfo.tot_pages),
            rust_entry!(xen_domctl_getdomaininfo.max_pages),
            rust_entry!(xen_domctl_getdomaininfo.shr_pages),
            rust_entry!(xen_domctl_getdomaininfo.shared_info_frame),
            rust_entry!(xen_domctl_getdomaininfo.max_vcpu_id),
            rust_entry!(xen_domctl_address_size),
            rust_entry!(xen_domctl_address_size.size),
            rust_entry!(xen_crash_dom0_p2m),
            rust_entry!(xen_crash_dom0_p2m.version),
            rust_entry!(xen_crash_dom0_p2m.flags),
            rust_entry!(xen_crash_dom0_p2m.max_pfn),
            rust_entry!(xen_crash_dom0_p2m.pfn_to_mfn_frame_list_list),
            rust_entry!(xen_crash_dom0_p2m.p2m_cr3),
            rust_entry!(xen_crash_dom0_p2m.p2m_vaddr),
            rust_entry!(xen_crash_dom0_p2m.p2m_generation),
        ];
        // A tree without this project's series has no crash note struct.
        let has_note = c_constants().contains_key("XEN_ELFNOTE_CRASH_DOM0_P2M");
        let rust: std::vec::Vec<_> = rust
            .into_iter()
            .filter(|(name, _, _)| has_note || !name.starts_with("xen_crash_dom0_p2m"))
            .collect();
        assert_eq!(
            rust.len(),
            c.len(),
            "layout.c and this test list different members"
        );
        for (name, off, size) in rust {
            let &(c_off, c_size) = c
                .get(name)
                .unwrap_or_else(|| panic!("{name} missing from layout.c"));
            assert_eq!(
                (off, size),
                (c_off, c_size),
                "{name}: bindgen (offset, size) vs C"
            );
        }
    }

    #[test]
    fn newer_items_equal_the_trees_where_it_defines_them() {
        let c = c_constants();
        for name in c.keys() {
            assert!(
                newer::CONSTANTS.iter().any(|(n, _)| n == name),
                "layout.c checks {name}, which newer.rs does not define"
            );
        }
        for &(name, value) in newer::CONSTANTS {
            match c.get(name) {
                Some(&v) => assert_eq!(v, value as u64, "{name}: the tree's value vs newer.rs"),
                None => std::println!("{name}: not in this tree's headers, newer.rs defines it"),
            }
        }
    }
}

#[cfg(test)]
mod abi {
    //! The fixed ABI and the contract's values, on whichever bindings the
    //! crate was built with.
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn p2m_fields_sit_at_the_fixed_abi_offsets() {
        let arch = offset_of!(shared_info, arch);
        assert_eq!(arch, 3088);
        assert_eq!(arch + offset_of!(arch_shared_info, p2m_cr3), 3112);
        assert_eq!(arch + offset_of!(arch_shared_info, p2m_vaddr), 3120);
        assert_eq!(arch + offset_of!(arch_shared_info, p2m_generation), 3128);
        assert_eq!(size_of::<shared_info>(), 3136);
    }

    #[test]
    fn feature_bit_is_21() {
        assert_eq!(XENFEAT_virtual_p2m, 21);
    }

    #[test]
    fn crash_note_is_the_contracts() {
        assert_eq!(XEN_ELFNOTE_CRASH_DOM0_P2M, 0x1000003);
        assert_eq!(XEN_CRASH_DOM0_P2M_VERSION, 1);
        assert_eq!(XEN_CRASH_DOM0_P2M_PV, 1);
        assert_eq!(XEN_CRASH_DOM0_P2M_COMPAT, 2);
        assert_eq!(size_of::<xen_crash_dom0_p2m>(), 48);
    }
}
