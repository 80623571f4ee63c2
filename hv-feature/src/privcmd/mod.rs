// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The real backend: Linux's `/dev/xen/privcmd` in a Xen dom0.
//!
//! [`Privcmd`] owns the device files. The hypercalls themselves (argument
//! buffers from `/dev/xen/hypercall`, memory the kernel keeps present for
//! Xen to read; the batched foreign map, whose per-frame error array is
//! checked in full) live in the crate's one `unsafe` module; this one
//! picks the domctl layout the running Xen accepts and decodes answers.
//!
//! The domctls are the only calls whose layout depends on the Xen version:
//! each is laid out as one of `xen_sys::domctl_abi::DOMCTL_ABIS` says, the
//! one whose interface version the running Xen accepts (Xen answers any
//! other with `EACCES` before it looks at the rest). So one build works on
//! every Xen from 4.17 on.

mod domctl;

use crate::backend::{Backend, Mapping, Mem};
use crate::domain::DomainInfo;
use crate::error::Error;
use crate::features::{Features, XenVersion};
use crate::sys::{Devices, DomctlCmd};
use crate::types::{DomId, GuestWidth, Mfn};
use nix::errno::Errno;
use std::fs::{File, OpenOptions};
use xen_sys::domctl_abi::DomctlAbi;

/// The privcmd device node.
pub const PRIVCMD_PATH: &str = "/dev/xen/privcmd";
/// The hypercall buffer device node.
pub const HYPERCALL_BUF_PATH: &str = "/dev/xen/hypercall";

pub use crate::sys::ForeignMap;

impl Mapping for ForeignMap {
    fn mem(&self) -> Mem<'_> {
        ForeignMap::mem(self)
    }
}

/// The privcmd device handle: the one owner of `/dev/xen/privcmd` and
/// `/dev/xen/hypercall`.
#[derive(Debug)]
pub struct Privcmd {
    dev: Devices,
}

fn open(path: &'static str) -> Result<File, Error> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NoPrivcmd { path },
            _ => Error::Open { path, source: e },
        })
}

fn hypercall_error(name: &'static str) -> impl Fn(Errno) -> Error {
    move |errno| Error::Hypercall {
        name,
        errno,
        hint: "",
    }
}

/// The raw domctl, as [`domctl::issue`] needs it (a fake in its tests).
impl domctl::Raw for Devices {
    fn domctl(&self, abi: &DomctlAbi, cmd: DomctlCmd, req: &[u8]) -> Result<Vec<u8>, Errno> {
        Devices::domctl(self, abi, cmd, req)
    }
}

impl Privcmd {
    /// Opens the privcmd and hypercall-buffer devices.
    pub fn open() -> Result<Privcmd, Error> {
        Ok(Privcmd::from_files(
            open(PRIVCMD_PATH)?,
            open(HYPERCALL_BUF_PATH)?,
        ))
    }

    /// Builds a handle from already open files (tests use this to check the
    /// error paths with descriptors that are not privcmd devices).
    pub fn from_files(privcmd: File, hcall: File) -> Privcmd {
        Privcmd {
            dev: Devices::new(privcmd, hcall),
        }
    }
}

impl Backend for Privcmd {
    type Map = ForeignMap;

    fn domain_info(&self, dom: DomId) -> Result<DomainInfo, Error> {
        domctl::domain_info(&self.dev, dom)
    }

    fn guest_width(&self, dom: DomId) -> Result<GuestWidth, Error> {
        domctl::guest_width(&self.dev, dom)
    }

    fn max_mfn(&self) -> Result<Mfn, Error> {
        let r = self
            .dev
            .maximum_ram_page()
            .map_err(hypercall_error("memory_op maximum_ram_page"))?;
        if r <= 0 {
            return Err(Error::Unexpected {
                what: "maximum_ram_page",
                value: r as u64,
            });
        }
        Ok(Mfn(r as u64))
    }

    fn m2p_extents(&self, max_extents: u32) -> Result<Vec<Mfn>, Error> {
        let v = self
            .dev
            .machphys_mfn_list(max_extents)
            .map_err(hypercall_error("memory_op machphys_mfn_list"))?;
        Ok(v.into_iter().map(Mfn).collect())
    }

    fn features(&self) -> Result<Features, Error> {
        let bits = self
            .dev
            .xen_features(0)
            .map_err(hypercall_error("xen_version get_features"))?;
        Ok(Features::from_bits_retain(bits))
    }

    fn xen_version(&self) -> Result<XenVersion, Error> {
        let v = self
            .dev
            .xen_version()
            .map_err(hypercall_error("xen_version version"))?;
        let extra = self
            .dev
            .xen_extraversion()
            .map_err(hypercall_error("xen_version extraversion"))?;
        Ok(XenVersion::from_raw(v as u32, &extra))
    }

    fn set_max_mem(&self, dom: DomId, max_kb: u64) -> Result<(), Error> {
        domctl::set_max_mem(&self.dev, dom, max_kb)
    }

    fn map_frames(&self, dom: DomId, frames: &[Mfn]) -> Result<ForeignMap, Error> {
        let raw: Vec<u64> = frames.iter().map(|m| m.0).collect();
        self.dev
            .map_foreign(dom, &raw)
            .map_err(|(index, errno)| Error::MapFrame {
                dom,
                frame: raw.get(index).copied().unwrap_or(0),
                index,
                count: raw.len(),
                errno,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::tests::dev_null;

    #[test]
    fn calls_on_a_non_privcmd_descriptor_fail_cleanly() {
        // /dev/null accepts mmap of no kind and no privcmd ioctl.
        let p = Privcmd::from_files(dev_null(), dev_null());
        assert!(p.features().is_err());
        assert!(matches!(
            p.max_mfn(),
            Err(Error::Hypercall {
                errno: Errno::ENOTTY,
                ..
            })
        ));
        assert!(matches!(
            p.xen_version(),
            Err(Error::Hypercall {
                errno: Errno::ENOTTY,
                ..
            })
        ));
        assert!(p.domain_info(DomId(0)).is_err());
        assert!(matches!(
            p.map_frames(DomId::SELF, &[Mfn(1)]),
            Err(Error::MapFrame { index: 0, .. })
        ));
    }

    #[test]
    fn missing_device_names_the_path_and_the_fix() {
        let e = open("/dev/xen/does-not-exist").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("/dev/xen/does-not-exist") && msg.contains("xen-privcmd"),
            "{msg}"
        );
    }

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn a_privcmd_view_is_send_and_sync() {
        assert_send_sync::<ForeignMap>();
        assert_send_sync::<Privcmd>();
    }
}
