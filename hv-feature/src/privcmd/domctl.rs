// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The domctls, in the interface version the running Xen accepts: each
//! request is laid out as one of `xen_sys::domctl_abi::DOMCTL_ABIS` says,
//! trying the version accepted last first; `EACCES` (Xen checks the
//! version before anything else) moves on to the next.

use crate::domain::DomainInfo;
use crate::error::Error;
use crate::le;
use crate::sys::DomctlCmd;
use crate::types::{DomId, GuestWidth, Mfn};
use nix::errno::Errno;
use std::sync::atomic::{AtomicUsize, Ordering};
use xen_sys::domctl_abi::{DomctlAbi, Field, DOMCTL_ABIS};

/// Issues one domctl laid out as `abi` says and returns the struct as
/// Xen left it (the privcmd devices; a fake in the tests).
pub(super) trait Raw {
    /// `req` is a whole `struct xen_domctl` of `abi`; the command field is
    /// set from `cmd`.
    fn domctl(&self, abi: &DomctlAbi, cmd: DomctlCmd, req: &[u8]) -> Result<Vec<u8>, Errno>;
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

fn past_the_end(value: u64) -> Error {
    Error::Unexpected {
        what: "domctl layout member past the end of struct xen_domctl",
        value,
    }
}

impl Reply {
    /// Member `f` of the union, zero-extended.
    fn get(&self, f: Field) -> Result<u64, Error> {
        let at = self.abi.layout.u.offset + f.offset;
        le::uint(&self.buf, at, f.size).ok_or(past_the_end(at as u64))
    }
}

/// `struct xen_domctl` for `cmd` on `dom`, laid out as `abi` says (the
/// command number is written by the raw call).
fn request(abi: &DomctlAbi, cmd: DomctlCmd, dom: DomId, max_kb: u64) -> Option<Vec<u8>> {
    let l = abi.layout;
    let mut buf = vec![0u8; l.size];
    let v = l.interface_version;
    le::put_uint(&mut buf, v.offset, v.size, abi.interface_version as u64)?;
    le::put_uint(&mut buf, l.domain.offset, l.domain.size, dom.0 as u64)?;
    if cmd == DomctlCmd::MaxMem {
        let at = l.u.offset + l.max_memkb.offset;
        le::put_uint(&mut buf, at, l.max_memkb.size, max_kb)?;
    }
    Some(buf)
}

/// What to do when the running Xen accepts none of [`DOMCTL_ABIS`].
pub(super) const NO_KNOWN_INTERFACE: &str = " (the running Xen accepts none of the domctl \
    interface versions this hv-feature knows, those of Xen 4.17 to 4.23-unstable: Xen is \
    older than 4.17, or newer with a changed interface (use a newer hv-feature), or its XSM \
    policy denies this domctl)";

/// Issues domctl `cmd` for `dom` in the interface version the running Xen
/// accepts, trying the one accepted last first.
fn issue<R: Raw>(
    raw: &R,
    name: &'static str,
    dom: DomId,
    cmd: DomctlCmd,
    max_kb: u64,
) -> Result<Reply, Error> {
    let first = ACCEPTED.load(Ordering::Relaxed) % DOMCTL_ABIS.len();
    let order = std::iter::once(first).chain((0..DOMCTL_ABIS.len()).filter(|&i| i != first));
    for i in order {
        let abi = &DOMCTL_ABIS[i];
        let req =
            request(abi, cmd, dom, max_kb).ok_or(past_the_end(abi.interface_version as u64))?;
        match raw.domctl(abi, cmd, &req) {
            Err(Errno::EACCES) => continue,
            r => {
                ACCEPTED.store(i, Ordering::Relaxed);
                let buf = r.map_err(|errno| domctl_error(name, dom, errno))?;
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

/// `XEN_DOMCTL_getdomaininfo` for `dom`.
pub(super) fn domain_info<R: Raw>(raw: &R, dom: DomId) -> Result<DomainInfo, Error> {
    let r = issue(
        raw,
        "domctl getdomaininfo",
        dom,
        DomctlCmd::GetDomainInfo,
        0,
    )?;
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
pub(super) fn guest_width<R: Raw>(raw: &R, dom: DomId) -> Result<GuestWidth, Error> {
    let r = issue(
        raw,
        "domctl get_address_size",
        dom,
        DomctlCmd::GetAddressSize,
        0,
    )?;
    let bits = r.get(r.abi.layout.address_size)?;
    GuestWidth::from_bytes(bits / 8).ok_or(Error::BadGuestWidth { dom, bits })
}

/// `XEN_DOMCTL_max_mem`: `dom`'s maximum reservation in KiB.
pub(super) fn set_max_mem<R: Raw>(raw: &R, dom: DomId, max_kb: u64) -> Result<(), Error> {
    issue(raw, "domctl max_mem", dom, DomctlCmd::MaxMem, max_kb).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A Xen that accepts one interface version and knows one PV domain:
    /// it decodes the request and writes its answer at the layout's
    /// offsets, as Xen does.
    struct FakeXen {
        accepts: u32,
        dom: u16,
        calls: Cell<u64>,
        max_kb: Cell<u64>,
    }

    impl FakeXen {
        fn new(accepts: u32) -> FakeXen {
            FakeXen {
                accepts,
                dom: 0,
                calls: Cell::new(0),
                max_kb: Cell::new(0),
            }
        }
    }

    impl Raw for FakeXen {
        fn domctl(&self, abi: &DomctlAbi, cmd: DomctlCmd, req: &[u8]) -> Result<Vec<u8>, Errno> {
            self.calls.set(self.calls.get() + 1);
            let l = abi.layout;
            let v = l.interface_version;
            if le::uint(req, v.offset, v.size) != Some(self.accepts as u64) {
                return Err(Errno::EACCES);
            }
            let dom = le::uint(req, l.domain.offset, l.domain.size).ok_or(Errno::EFAULT)?;
            let mut out = req.to_vec();
            let put = |out: &mut Vec<u8>, f: Field, v: u64| {
                le::put_uint(out, l.u.offset + f.offset, f.size, v).ok_or(Errno::EFAULT)
            };
            match cmd {
                DomctlCmd::GetDomainInfo => {
                    if dom > self.dom as u64 {
                        return Err(Errno::ESRCH);
                    }
                    put(&mut out, l.info_domain, self.dom as u64)?;
                    put(&mut out, l.info_tot_pages, 4096)?;
                    put(&mut out, l.info_max_pages, 8192)?;
                    put(&mut out, l.info_shared_info_frame, 0x1234)?;
                }
                DomctlCmd::GetAddressSize => put(&mut out, l.address_size, 64)?,
                DomctlCmd::MaxMem => {
                    let f = l.max_memkb;
                    self.max_kb
                        .set(le::uint(req, l.u.offset + f.offset, f.size).ok_or(Errno::EFAULT)?);
                }
            }
            Ok(out)
        }
    }

    #[test]
    fn every_known_interface_version_is_found_and_used() {
        for abi in DOMCTL_ABIS {
            let x = FakeXen::new(abi.interface_version);
            let info = domain_info(&x, DomId(0)).unwrap();
            assert_eq!(info.domctl_interface, abi.interface_version);
            assert_eq!(info.shared_info_frame, Mfn(0x1234));
            assert_eq!((info.tot_pages, info.max_pages), (4096, 8192));
            assert!(x.calls.get() <= DOMCTL_ABIS.len() as u64);
            // The version found is tried first next time.
            let before = x.calls.get();
            assert_eq!(guest_width(&x, DomId(0)).unwrap(), GuestWidth::W64);
            assert_eq!(x.calls.get() - before, 1);
            set_max_mem(&x, DomId(0), 1 << 20).unwrap();
            assert_eq!(x.max_kb.get(), 1 << 20);
        }
    }

    #[test]
    fn an_unknown_interface_version_is_an_environment_error_saying_why() {
        let x = FakeXen::new(0x7f);
        let e = domain_info(&x, DomId(0)).unwrap_err();
        assert!(
            matches!(e, Error::Hypercall { errno: Errno::EACCES, hint, .. } if hint == NO_KNOWN_INTERFACE),
            "{e}"
        );
        assert!(!e.is_guest_data());
        assert_eq!(x.calls.get(), DOMCTL_ABIS.len() as u64);
    }

    #[test]
    fn the_hint_names_the_oldest_and_newest_known_xen() {
        let oldest = DOMCTL_ABIS.last().unwrap().xen.split(' ').next().unwrap();
        let newest = DOMCTL_ABIS[0].xen.rsplit(' ').next().unwrap();
        assert!(NO_KNOWN_INTERFACE.contains(&format!("Xen {oldest} to {newest}")));
    }

    #[test]
    fn a_missing_or_next_domain_is_no_such_domain() {
        let mut x = FakeXen::new(DOMCTL_ABIS[0].interface_version);
        assert!(matches!(
            domain_info(&x, DomId(7)),
            Err(Error::NoSuchDomain(DomId(7)))
        ));
        // Xen before 4.18 answers with the next domain at or above.
        x.dom = 9;
        assert!(matches!(
            domain_info(&x, DomId(7)),
            Err(Error::NoSuchDomain(DomId(7)))
        ));
    }
}
