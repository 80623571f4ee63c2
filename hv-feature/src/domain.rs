// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Facts about a domain and the host, from hypercalls: getdomaininfo, the
//! guest width, the host's maximum mfn, and the M2P table.
//!
//! The domctls are the only calls whose layout depends on the Xen version:
//! each is laid out as one of `xen_sys::domctl_abi::DOMCTL_ABIS` says, the
//! one whose interface version the running Xen accepts (Xen answers any
//! other with `EACCES` before it looks at the rest). So one build works on
//! every Xen from 4.17 on.

use crate::backend::{Backend, Mapping};
use crate::error::Error;
use crate::types::{DomId, GuestWidth, Mfn, Pfn, PAGE_SIZE};
use nix::errno::Errno;
use serde::Serialize;
use std::mem::{offset_of, size_of};
use std::sync::atomic::{AtomicUsize, Ordering};
use xen_sys::domctl_abi::{DomctlAbi, DomctlLayout, Field, DOMCTL_ABIS};
use xen_sys::xen_machphys_mfn_list;

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

/// The domctls hv-feature issues, with their input.
#[derive(Clone, Copy, Debug)]
enum Op {
    GetDomainInfo,
    GetAddressSize,
    MaxMem { kb: u64 },
}

impl Op {
    fn cmd(self, l: &DomctlLayout) -> u32 {
        match self {
            Op::GetDomainInfo => l.getdomaininfo,
            Op::GetAddressSize => l.get_address_size,
            Op::MaxMem { .. } => l.max_mem,
        }
    }
}

/// Index into `DOMCTL_ABIS` of the version the running Xen accepted last:
/// where the next domctl starts trying (a hint only, never trusted).
static ACCEPTED: AtomicUsize = AtomicUsize::new(0);

/// What Xen filled in, laid out as `abi` says.
#[derive(Debug)]
struct Reply {
    abi: &'static DomctlAbi,
    buf: Vec<u8>,
}

impl Reply {
    /// Member `f` of the union, zero-extended.
    fn get(&self, f: Field) -> Result<u64, Error> {
        let at = self.abi.layout.u.offset + f.offset;
        read_le(&self.buf, at, f.size).ok_or(Error::Unexpected {
            what: "domctl layout member past the end of struct xen_domctl",
            value: at as u64,
        })
    }
}

/// The little-endian integer of `size` (at most 8) bytes at `at`.
fn read_le(buf: &[u8], at: usize, size: usize) -> Option<u64> {
    let b = buf
        .get(at..at.checked_add(size)?)
        .filter(|b| b.len() <= 8)?;
    Some(b.iter().rev().fold(0, |v, &x| (v << 8) | x as u64))
}

/// Stores the low `size` (at most 8) bytes of `v` at `at`, little-endian.
fn write_le(buf: &mut [u8], at: usize, size: usize, v: u64) -> Option<()> {
    let b = buf
        .get_mut(at..at.checked_add(size)?)
        .filter(|b| b.len() <= 8)?;
    b.copy_from_slice(&v.to_le_bytes()[..size]);
    Some(())
}

/// `struct xen_domctl` for `op` on `dom`, laid out as `abi` says.
fn request(abi: &DomctlAbi, op: Op, dom: DomId) -> Option<Vec<u8>> {
    let l = abi.layout;
    let mut buf = vec![0u8; l.size];
    write_le(&mut buf, l.cmd.offset, l.cmd.size, op.cmd(l) as u64)?;
    let v = l.interface_version;
    write_le(&mut buf, v.offset, v.size, abi.interface_version as u64)?;
    write_le(&mut buf, l.domain.offset, l.domain.size, dom.0 as u64)?;
    if let Op::MaxMem { kb } = op {
        write_le(
            &mut buf,
            l.u.offset + l.max_memkb.offset,
            l.max_memkb.size,
            kb,
        )?;
    }
    Some(buf)
}

/// What to do when the running Xen accepts none of [`DOMCTL_ABIS`].
const NO_KNOWN_INTERFACE: &str = " (the running Xen accepts none of the domctl interface \
    versions this hv-feature knows, those of Xen 4.17 to 4.23-unstable: Xen is older than \
    4.17, or newer with a changed interface (use a newer hv-feature), or its XSM policy \
    denies this domctl)";

/// Issues domctl `op` for `dom` in the interface version the running Xen
/// accepts, trying the one accepted last first.
fn domctl<B: Backend>(b: &B, name: &'static str, dom: DomId, op: Op) -> Result<Reply, Error> {
    let first = ACCEPTED.load(Ordering::Relaxed) % DOMCTL_ABIS.len();
    let order = std::iter::once(first).chain((0..DOMCTL_ABIS.len()).filter(|&i| i != first));
    for i in order {
        let abi = &DOMCTL_ABIS[i];
        let mut buf = request(abi, op, dom).ok_or(Error::Unexpected {
            what: "domctl layout member past the end of struct xen_domctl",
            value: abi.interface_version as u64,
        })?;
        match b.hypercall(xen_sys::__HYPERVISOR_domctl, 0, &mut buf, &[]) {
            // Xen checks the interface version before anything else.
            Err(Errno::EACCES) => continue,
            r => {
                ACCEPTED.store(i, Ordering::Relaxed);
                r.map_err(|errno| domctl_error(name, dom, errno))?;
                return Ok(Reply { abi, buf });
            }
        }
    }
    Err(Error::Hypercall {
        name,
        errno: Errno::EACCES,
        hint: NO_KNOWN_INTERFACE,
    })
}

fn domctl_error(name: &'static str, dom: DomId, errno: Errno) -> Error {
    match errno {
        Errno::ESRCH => Error::NoSuchDomain(dom),
        Errno::EPERM => Error::Hypercall {
            name,
            errno,
            hint: " (run as root in dom0)",
        },
        _ => Error::Hypercall {
            name,
            errno,
            hint: "",
        },
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
    /// The domctl interface version the running Xen accepted.
    pub domctl_interface: u32,
}

/// `XEN_DOMCTL_getdomaininfo` for `dom`.
pub fn domain_info<B: Backend>(b: &B, dom: DomId) -> Result<DomainInfo, Error> {
    let r = domctl(b, "domctl getdomaininfo", dom, Op::GetDomainInfo)?;
    let l = r.abi.layout;
    if r.get(l.info_domain)? != dom.0 as u64 {
        // Xen before 4.18 answers with the next existing domain at or
        // above `dom`.
        return Err(Error::NoSuchDomain(dom));
    }
    let flags = r.get(l.info_flags)? as u32;
    Ok(DomainInfo {
        dom,
        flags,
        tot_pages: r.get(l.info_tot_pages)?,
        max_pages: r.get(l.info_max_pages)?,
        shared_info_frame: Mfn(r.get(l.info_shared_info_frame)?),
        hvm: flags & xen_sys::XEN_DOMINF_hvm_guest != 0,
        domctl_interface: r.abi.interface_version,
    })
}

/// The guest width of a PV domain (`XEN_DOMCTL_get_address_size`).
pub fn guest_width<B: Backend>(b: &B, dom: DomId) -> Result<GuestWidth, Error> {
    let r = domctl(b, "domctl get_address_size", dom, Op::GetAddressSize)?;
    let bits = r.get(r.abi.layout.address_size)?;
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
    domctl(b, "domctl max_mem", dom, Op::MaxMem { kb: max_kb })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{GuestSpec, SimHost};

    fn host_with_dom0() -> SimHost {
        let h = SimHost::new(1 << 16).unwrap();
        h.add_guest(&GuestSpec::new(DomId(0), GuestWidth::W64, 4096))
            .unwrap();
        h
    }

    #[test]
    fn every_known_interface_version_is_found_and_used() {
        for abi in DOMCTL_ABIS {
            let h = host_with_dom0();
            h.set_domctl_interface_version(abi.interface_version);
            let before = h.hypercalls();
            let info = domain_info(&h, DomId(0)).unwrap();
            assert_eq!(info.domctl_interface, abi.interface_version);
            assert_eq!(
                info.shared_info_frame,
                h.shared_info_frame(DomId(0)).unwrap()
            );
            assert!(h.hypercalls() - before <= DOMCTL_ABIS.len() as u64);
            assert_eq!(guest_width(&h, DomId(0)).unwrap(), GuestWidth::W64);
            set_max_mem(&h, DomId(0), 1 << 20).unwrap_or_else(|e| {
                // The simulation has no max_mem; the version was accepted.
                assert!(
                    matches!(
                        e,
                        Error::Hypercall {
                            errno: Errno::ENOSYS,
                            ..
                        }
                    ),
                    "{e}"
                );
            });
        }
    }

    #[test]
    fn an_unknown_interface_version_is_an_environment_error_saying_why() {
        let h = host_with_dom0();
        h.set_domctl_interface_version(0x7f);
        let e = domain_info(&h, DomId(0)).unwrap_err();
        assert!(
            matches!(e, Error::Hypercall { errno: Errno::EACCES, hint, .. } if hint == NO_KNOWN_INTERFACE),
            "{e}"
        );
        assert!(!e.is_guest_data());
        assert_eq!(h.hypercalls(), DOMCTL_ABIS.len() as u64);
    }

    #[test]
    fn the_hint_names_the_oldest_and_newest_known_xen() {
        let oldest = DOMCTL_ABIS.last().unwrap().xen.split(' ').next().unwrap();
        let newest = DOMCTL_ABIS[0].xen.rsplit(' ').next().unwrap();
        assert!(NO_KNOWN_INTERFACE.contains(&format!("Xen {oldest} to {newest}")));
    }

    #[test]
    fn a_missing_domain_is_no_such_domain() {
        let h = host_with_dom0();
        assert!(matches!(
            domain_info(&h, DomId(7)),
            Err(Error::NoSuchDomain(DomId(7)))
        ));
    }

    #[test]
    fn little_endian_helpers_stay_in_bounds() {
        let mut b = [0u8; 8];
        assert_eq!(write_le(&mut b, 2, 4, 0x1122_3344_5566), Some(()));
        assert_eq!(read_le(&b, 2, 4), Some(0x3344_5566));
        assert_eq!(read_le(&b, 6, 4), None);
        assert_eq!(read_le(&b, usize::MAX, 2), None);
        assert_eq!(write_le(&mut b, 7, 2, 1), None);
    }
}
