// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Facts about a domain and the host, from hypercalls: getdomaininfo, the
//! guest width, the host's maximum mfn, and the M2P table.

use crate::backend::{Backend, Mapping};
use crate::error::Error;
use crate::types::{DomId, GuestWidth, Mfn, Pfn, PAGE_SIZE};
use nix::errno::Errno;
use serde::Serialize;
use std::mem::{offset_of, size_of};
use xen_sys::{xen_domctl, xen_domctl_getdomaininfo, xen_machphys_mfn_list};

/// Byte view of a plain C struct from the bindings.
pub(crate) fn struct_bytes<T: Copy>(v: &T) -> Vec<u8> {
    // SAFETY: T is a plain-old-data bindgen struct (Copy, no padding that
    // matters to us: we only ever send what the C ABI sends).
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
}

/// Reads a plain C struct from the start of `buf`.
pub(crate) fn struct_from<T: Copy + Default>(buf: &[u8]) -> T {
    let mut v = T::default();
    let n = size_of::<T>().min(buf.len());
    // SAFETY: T is plain-old-data; at most size_of::<T>() bytes are copied
    // into it, and every bit pattern is valid for bindgen integer structs.
    unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), (&mut v as *mut T).cast::<u8>(), n) };
    v
}

/// Issues a domctl for `dom`, filling `fill` into the union.
fn domctl<B: Backend>(
    b: &B,
    name: &'static str,
    cmd: u32,
    dom: DomId,
    payload: &[u8],
) -> Result<xen_domctl, Error> {
    let mut d = xen_domctl {
        cmd,
        interface_version: xen_sys::XEN_DOMCTL_INTERFACE_VERSION,
        domain: dom.0,
        ..Default::default()
    };
    let mut buf = struct_bytes(&d);
    let u = offset_of!(xen_domctl, u);
    buf[u..u + payload.len()].copy_from_slice(payload);
    b.hypercall(xen_sys::__HYPERVISOR_domctl, 0, &mut buf, &[])
        .map_err(|errno| domctl_error(name, dom, errno))?;
    d = struct_from(&buf);
    Ok(d)
}

fn domctl_error(name: &'static str, dom: DomId, errno: Errno) -> Error {
    match errno {
        Errno::ESRCH => Error::NoSuchDomain(dom),
        Errno::EACCES => Error::Hypercall {
            name,
            errno,
            hint: " (domctl interface version mismatch: this build's XEN_DOMCTL_INTERFACE_VERSION \
                   does not match the running Xen; rebuild against that Xen's headers with XEN_TREE)",
        },
        Errno::EPERM => Error::Hypercall { name, errno, hint: " (run as root in dom0)" },
        _ => Error::Hypercall { name, errno, hint: "" },
    }
}

/// What getdomaininfo says about a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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
}

/// `XEN_DOMCTL_getdomaininfo` for `dom`.
pub fn domain_info<B: Backend>(b: &B, dom: DomId) -> Result<DomainInfo, Error> {
    let d = domctl(
        b,
        "domctl getdomaininfo",
        xen_sys::XEN_DOMCTL_getdomaininfo,
        dom,
        &[],
    )?;
    // SAFETY: getdomaininfo fills the getdomaininfo member of the union.
    let info: xen_domctl_getdomaininfo = unsafe { d.u.getdomaininfo };
    if info.domain != dom.0 {
        // Xen answers with the next existing domain at or above `dom`.
        return Err(Error::NoSuchDomain(dom));
    }
    Ok(DomainInfo {
        dom,
        flags: info.flags,
        tot_pages: info.tot_pages,
        max_pages: info.max_pages,
        shared_info_frame: Mfn(info.shared_info_frame),
        hvm: info.flags & xen_sys::XEN_DOMINF_hvm_guest != 0,
    })
}

/// The guest width of a PV domain (`XEN_DOMCTL_get_address_size`).
pub fn guest_width<B: Backend>(b: &B, dom: DomId) -> Result<GuestWidth, Error> {
    let d = domctl(
        b,
        "domctl get_address_size",
        xen_sys::XEN_DOMCTL_get_address_size,
        dom,
        &[],
    )?;
    // SAFETY: get_address_size fills the address_size member of the union.
    let bits = unsafe { d.u.address_size.size } as u64;
    GuestWidth::from_bytes(bits / 8).ok_or(Error::BadGuestWidth { dom, bits })
}

/// The host's largest machine frame number (`XENMEM_maximum_ram_page`).
pub fn max_mfn<B: Backend>(b: &B) -> Result<Mfn, Error> {
    let mut none = [0u8; 0];
    let r = b
        .hypercall(
            xen_sys::__HYPERVISOR_memory_op,
            xen_sys::XENMEM_maximum_ram_page as u64,
            &mut none,
            &[],
        )
        .map_err(|errno| Error::Hypercall {
            name: "memory_op maximum_ram_page",
            errno,
            hint: "",
        })?;
    if r <= 0 {
        return Err(Error::Unexpected {
            what: "maximum_ram_page",
            value: r as u64,
        });
    }
    Ok(Mfn(r as u64))
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
        let at = mfn.0 as usize * M2P_ENTRY;
        let b = self.map.bytes().get(at..at + M2P_ENTRY)?;
        Some(Pfn(u64::from_le_bytes(b.try_into().ok()?)))
    }

    /// The mapped table: [`M2p::len`] little-endian 8-byte entries, to
    /// look many up with one borrow of the mapping.
    pub fn table(&self) -> &[u8] {
        let b = self.map.bytes();
        &b[..b.len().min(self.entries as usize * M2P_ENTRY)]
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

/// Maps the M2P entries for mfns `0..=max_mfn` (`XENMEM_machphys_mfn_list`
/// gives the base mfn of each 2 MiB extent; the frames are Xen's).
pub fn map_m2p<B: Backend>(b: &B, max_mfn: Mfn) -> Result<M2p<B::Map>, Error> {
    let per_extent = M2P_EXTENT_PAGES * (PAGE_SIZE / M2P_ENTRY) as u64;
    let extents = (max_mfn.0 + 1).div_ceil(per_extent);
    if extents == 0 || extents > 1 << 16 {
        return Err(Error::Unexpected {
            what: "maximum mfn for the M2P",
            value: max_mfn.0,
        });
    }
    let head = size_of::<xen_machphys_mfn_list>();
    let mut buf = vec![0u8; head + extents as usize * 8];
    let arg = xen_machphys_mfn_list {
        max_extents: extents as u32,
        ..Default::default()
    };
    buf[..head].copy_from_slice(&struct_bytes(&arg));
    let handle = offset_of!(xen_machphys_mfn_list, extent_start);
    buf[handle..handle + 8].copy_from_slice(&(head as u64).to_le_bytes());
    b.hypercall(
        xen_sys::__HYPERVISOR_memory_op,
        xen_sys::XENMEM_machphys_mfn_list as u64,
        &mut buf,
        &[handle],
    )
    .map_err(|errno| Error::Hypercall {
        name: "memory_op machphys_mfn_list",
        errno,
        hint: "",
    })?;
    let got: xen_machphys_mfn_list = struct_from(&buf);
    let n = got.nr_extents as u64;
    if n == 0 || n > extents {
        return Err(Error::Unexpected {
            what: "number of M2P extents",
            value: n,
        });
    }
    let mut frames = Vec::with_capacity((n * M2P_EXTENT_PAGES) as usize);
    for e in 0..n as usize {
        let at = head + e * 8;
        let base = u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
        frames.extend((0..M2P_EXTENT_PAGES).map(|i| base + i));
    }
    let map = b.map_frames(DomId::XEN, &frames)?;
    let entries = (frames.len() * PAGE_SIZE / M2P_ENTRY) as u64;
    Ok(M2p {
        map,
        entries: entries.min(max_mfn.0 + 1),
    })
}

/// Sets the domain's maximum reservation (`XEN_DOMCTL_max_mem`), in KiB:
/// what `xl mem-max` does. A domain can only grow up to it.
pub fn set_max_mem<B: Backend>(b: &B, dom: DomId, max_kb: u64) -> Result<(), Error> {
    domctl(
        b,
        "domctl max_mem",
        xen_sys::XEN_DOMCTL_max_mem,
        dom,
        &max_kb.to_le_bytes(),
    )?;
    Ok(())
}
