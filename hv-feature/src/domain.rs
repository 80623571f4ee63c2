// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Facts about a domain and the host, from the backend: getdomaininfo,
//! the guest width, the host's maximum mfn, the M2P table, and a PV
//! domain opened for reading ([`PvDomain`]).

use crate::backend::{Backend, Mapping, Mem};
use crate::error::Error;
use crate::shared_info::ArchSharedInfo;
use crate::types::{DomId, GuestWidth, Mfn, Pfn, PAGE_SIZE};
use serde::Serialize;

/// What getdomaininfo says about a domain. A backend outside this crate
/// makes one with [`DomainInfo::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DomainInfo {
    /// The domain.
    pub dom: DomId,
    /// `XEN_DOMINF_*` flags.
    pub flags: u32,
    /// Pages the domain currently has.
    pub tot_pages: u64,
    /// Its maximum reservation in pages.
    pub max_pages: u64,
    /// The machine frame of its `shared_info` page.
    pub shared_info_frame: Mfn,
    /// True for an HVM or PVH guest.
    pub hvm: bool,
    /// The domctl interface version the running Xen accepted (0 for a
    /// backend that is not a running Xen).
    pub domctl_interface: u32,
}

impl DomainInfo {
    /// The facts of a domain as a backend that is not a running Xen knows
    /// them: `hvm` follows `XEN_DOMINF_hvm_guest` in `flags`, and
    /// `domctl_interface` is 0.
    pub fn new(
        dom: DomId,
        flags: u32,
        tot_pages: u64,
        max_pages: u64,
        shared_info_frame: Mfn,
    ) -> DomainInfo {
        DomainInfo {
            dom,
            flags,
            tot_pages,
            max_pages,
            shared_info_frame,
            hvm: flags & xen_sys::XEN_DOMINF_hvm_guest != 0,
            domctl_interface: 0,
        }
    }
}

/// `XEN_DOMCTL_getdomaininfo` for `dom` ([`Backend::domain_info`]).
pub fn domain_info<B: Backend>(b: &B, dom: DomId) -> Result<DomainInfo, Error> {
    b.domain_info(dom)
}

/// The guest width of a PV domain ([`Backend::guest_width`]).
pub fn guest_width<B: Backend>(b: &B, dom: DomId) -> Result<GuestWidth, Error> {
    b.guest_width(dom)
}

/// The host's largest machine frame number ([`Backend::max_mfn`]).
pub fn max_mfn<B: Backend>(b: &B) -> Result<Mfn, Error> {
    b.max_mfn()
}

/// Sets the domain's maximum reservation in KiB ([`Backend::set_max_mem`]):
/// what `xl mem-max` does. A domain can only grow up to it.
pub fn set_max_mem<B: Backend>(b: &B, dom: DomId, max_kb: u64) -> Result<(), Error> {
    b.set_max_mem(dom, max_kb)
}

/// The domain id to map `dom`'s frames with: dom0 maps its own frames
/// with `DOMID_SELF` (naming 0 is refused).
pub fn map_domid(dom: DomId) -> DomId {
    if dom.0 == 0 {
        DomId::SELF
    } else {
        dom
    }
}

/// A PV domain opened for reading: what getdomaininfo says, its width,
/// and a kept (live) mapping of its `shared_info`.
#[derive(Debug)]
pub struct PvDomain<M> {
    /// getdomaininfo's answer.
    pub info: DomainInfo,
    /// The guest's width.
    pub width: GuestWidth,
    /// The domain id its frames are mapped with ([`map_domid`]).
    pub map_dom: DomId,
    shared_info: M,
}

impl<M: Mapping> PvDomain<M> {
    /// getdomaininfo, refusing an HVM or PVH domain ([`Error::NotPv`]),
    /// the width, and a map of its `shared_info` frame.
    pub fn open<B: Backend<Map = M>>(b: &B, dom: DomId) -> Result<PvDomain<M>, Error> {
        let info = b.domain_info(dom)?;
        if info.hvm {
            return Err(Error::NotPv(dom));
        }
        let width = b.guest_width(dom)?;
        let map_dom = map_domid(dom);
        let shared_info = b.map_frames(map_dom, &[info.shared_info_frame])?;
        Ok(PvDomain {
            info,
            width,
            map_dom,
            shared_info,
        })
    }

    /// The `shared_info` arch fields as they are now.
    pub fn arch(&self) -> Result<ArchSharedInfo, Error> {
        ArchSharedInfo::from_mem(self.shared_info.mem(), self.width)
    }

    /// The kept `shared_info` mapping.
    pub fn shared_info(&self) -> &M {
        &self.shared_info
    }

    /// Gives up everything but the `shared_info` mapping.
    pub(crate) fn into_shared_info(self) -> M {
        self.shared_info
    }
}

/// Entries of the M2P in one `XENMEM_machphys_mfn_list` extent (2 MiB).
const M2P_EXTENT_PAGES: u64 = 512;
/// M2P entries are the hypervisor's `unsigned long`s.
const M2P_ENTRY: usize = 8;

/// The host's machine-to-phys table, mapped read-only.
#[derive(Debug)]
pub struct M2p<M: Mapping> {
    map: M,
    entries: u64,
}

impl<M: Mapping> M2p<M> {
    /// The pfn that `mfn` belongs to, or `None` past the mapped table.
    /// The value is whatever the owning guest's pfn is, possibly invalid.
    pub fn get(&self, mfn: Mfn) -> Option<Pfn> {
        if mfn.0 >= self.entries {
            return None;
        }
        self.map.mem().u64_at(mfn.0 as usize * M2P_ENTRY).map(Pfn)
    }

    /// The mapped table: [`M2p::len`] little-endian 8-byte entries, to
    /// look many up with one borrow of the mapping. Xen may change
    /// entries while they are read.
    pub fn mem(&self) -> Mem<'_> {
        self.map.mem().prefix(self.entries as usize * M2P_ENTRY)
    }

    /// Number of entries mapped.
    pub fn len(&self) -> u64 {
        self.entries
    }

    /// True when nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

/// Maps the M2P entries for mfns `0..=max_mfn` ([`Backend::m2p_extents`]
/// gives the base mfn of each 2 MiB extent; the frames are Xen's).
pub fn map_m2p<B: Backend>(b: &B, max_mfn: Mfn) -> Result<M2p<B::Map>, Error> {
    let per_extent = M2P_EXTENT_PAGES * (PAGE_SIZE / M2P_ENTRY) as u64;
    // A dump backend's maximum comes from the file: no `+ 1` unchecked.
    let mfns = max_mfn.0.saturating_add(1);
    let extents = mfns.div_ceil(per_extent);
    if extents == 0 || extents > 1 << 16 {
        return Err(Error::Unexpected {
            what: "maximum mfn for the M2P",
            value: max_mfn.0,
        });
    }
    let bases = b.m2p_extents(extents as u32)?;
    let n = bases.len() as u64;
    if n == 0 || n > extents {
        return Err(Error::Unexpected {
            what: "number of M2P extents",
            value: n,
        });
    }
    let frames: Vec<Mfn> = bases
        .iter()
        .flat_map(|base| (0..M2P_EXTENT_PAGES).map(move |i| Mfn(base.0.wrapping_add(i))))
        .collect();
    let map = b.map_frames(DomId::XEN, &frames)?;
    let entries = (frames.len() * PAGE_SIZE / M2P_ENTRY) as u64;
    Ok(M2p {
        map,
        entries: entries.min(mfns),
    })
}
