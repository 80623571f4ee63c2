// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The real backend: Linux's `/dev/xen/privcmd` in a Xen dom0.
//!
//! [`Privcmd`] owns the device files; it alone holds `unsafe`. Hypercall
//! arguments travel in a buffer from `/dev/xen/hypercall` (memory the kernel
//! keeps present for Xen to read); foreign frames are mapped with
//! `IOCTL_PRIVCMD_MMAPBATCH_V2`, whose per-frame error array is checked in
//! full, into a [`ForeignMap`] guard that unmaps on drop.

use crate::backend::{handle_offset, Backend, Mapping};
use crate::error::Error;
use crate::types::{DomId, PAGE_SIZE};
use nix::errno::Errno;
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
use std::fs::{File, OpenOptions};
use std::num::NonZeroUsize;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

/// The privcmd device node.
pub const PRIVCMD_PATH: &str = "/dev/xen/privcmd";
/// The hypercall buffer device node.
pub const HYPERCALL_BUF_PATH: &str = "/dev/xen/hypercall";

/// `struct privcmd_hypercall { __u64 op; __u64 arg[5]; }`
#[repr(C)]
#[derive(Debug, Default)]
struct PrivcmdHypercall {
    op: u64,
    arg: [u64; 5],
}
const _: () = assert!(size_of::<PrivcmdHypercall>() == 48);

/// `struct privcmd_mmapbatch_v2 { unsigned int num; domid_t dom;
///  __u64 addr; const xen_pfn_t __user *arr; int __user *err; }`
#[repr(C)]
#[derive(Debug, Default)]
struct PrivcmdMmapbatchV2 {
    num: u32,
    dom: u16,
    addr: u64,
    arr: u64,
    err: u64,
}
const _: () = assert!(size_of::<PrivcmdMmapbatchV2>() == 32);

// #define IOCTL_PRIVCMD_HYPERCALL \
//     _IOC(_IOC_NONE, 'P', 0, sizeof(struct privcmd_hypercall))
nix::ioctl_write_ptr_bad!(
    /// Issues one hypercall through privcmd.
    ioctl_privcmd_hypercall,
    nix::ioc!(nix::sys::ioctl::NONE, b'P', 0, size_of::<PrivcmdHypercall>()),
    PrivcmdHypercall
);
// #define IOCTL_PRIVCMD_MMAPBATCH_V2 \
//     _IOC(_IOC_NONE, 'P', 4, sizeof(struct privcmd_mmapbatch_v2))
nix::ioctl_write_ptr_bad!(
    /// Maps a batch of foreign frames, with a per-frame error array.
    ioctl_privcmd_mmapbatch_v2,
    nix::ioc!(nix::sys::ioctl::NONE, b'P', 4, size_of::<PrivcmdMmapbatchV2>()),
    PrivcmdMmapbatchV2
);

/// An `mmap`ed region, unmapped on drop.
#[derive(Debug)]
struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

impl Region {
    fn new(file: &File, len: usize, prot: ProtFlags) -> Result<Region, Errno> {
        let len_nz = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
        // SAFETY: a fresh shared mapping of a device at an address the
        // kernel picks; it aliases no Rust object. It is unmapped in Drop.
        let ptr = unsafe { mmap(None, len_nz, prot, MapFlags::MAP_SHARED, file, 0) }?;
        Ok(Region {
            ptr: ptr.cast(),
            len,
        })
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr..ptr+len is a live mapping owned by self, readable.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above; the region was mapped writable by its creator
        // when this is used (hypercall buffers), and we hold &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the region mmap returned; no borrow of
        // it outlives self.
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

/// A read-only mapping of foreign frames; unmapped when dropped.
#[derive(Debug)]
pub struct ForeignMap {
    region: Region,
}

impl Mapping for ForeignMap {
    fn bytes(&self) -> &[u8] {
        self.region.as_slice()
    }
}

/// The privcmd device handle: the one owner of `/dev/xen/privcmd` and
/// `/dev/xen/hypercall`.
#[derive(Debug)]
pub struct Privcmd {
    privcmd: File,
    hcall: File,
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

impl Privcmd {
    /// Opens the privcmd and hypercall-buffer devices.
    pub fn open() -> Result<Privcmd, Error> {
        Ok(Privcmd {
            privcmd: open(PRIVCMD_PATH)?,
            hcall: open(HYPERCALL_BUF_PATH)?,
        })
    }

    /// Builds a handle from already open files (tests use this to check the
    /// error paths with descriptors that are not privcmd devices).
    pub fn from_files(privcmd: File, hcall: File) -> Privcmd {
        Privcmd { privcmd, hcall }
    }
}

impl Backend for Privcmd {
    type Map = ForeignMap;

    fn hypercall(
        &self,
        op: u32,
        cmd: u64,
        buf: &mut [u8],
        handles: &[usize],
    ) -> Result<i64, Errno> {
        let mut hbuf = if buf.is_empty() {
            None
        } else {
            let len = buf.len().div_ceil(PAGE_SIZE) * PAGE_SIZE;
            let mut r = Region::new(
                &self.hcall,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            )?;
            let base = r.ptr.as_ptr() as u64;
            let dst = r.as_mut_slice();
            dst[..buf.len()].copy_from_slice(buf);
            for &h in handles {
                let off = handle_offset(buf, h)? as u64;
                dst[h..h + 8].copy_from_slice(&(base + off).to_le_bytes());
            }
            Some(r)
        };
        let ptr = hbuf.as_ref().map_or(0, |r| r.ptr.as_ptr() as u64);
        let mut call = PrivcmdHypercall {
            op: op as u64,
            ..Default::default()
        };
        if op == xen_sys::__HYPERVISOR_domctl {
            call.arg[0] = ptr;
        } else {
            call.arg[0] = cmd;
            call.arg[1] = ptr;
        }
        // SAFETY: `call` is a valid privcmd_hypercall; every pointer in it
        // refers to the hypercall buffer `hbuf`, alive for the whole call.
        let r = unsafe { ioctl_privcmd_hypercall(self.privcmd.as_raw_fd(), &call) }?;
        if let Some(r) = hbuf.as_mut() {
            buf.copy_from_slice(&r.as_slice()[..buf.len()]);
        }
        Ok(r as i64)
    }

    fn map_frames(&self, dom: DomId, frames: &[u64]) -> Result<ForeignMap, Error> {
        let count = frames.len();
        let fail = |index: usize, errno: Errno| Error::MapFrame {
            dom,
            frame: frames.get(index).copied().unwrap_or(0),
            index,
            count,
            errno,
        };
        if count == 0 || count > u32::MAX as usize {
            return Err(fail(0, Errno::EINVAL));
        }
        let region = Region::new(&self.privcmd, count * PAGE_SIZE, ProtFlags::PROT_READ)
            .map_err(|e| fail(0, e))?;
        let mut errs = vec![0i32; count];
        let batch = PrivcmdMmapbatchV2 {
            num: count as u32,
            dom: dom.0,
            addr: region.ptr.as_ptr() as u64,
            arr: frames.as_ptr() as u64,
            err: errs.as_mut_ptr() as u64,
        };
        // SAFETY: `batch` points at `frames` (count entries), `errs` (count
        // entries) and a privcmd VMA of count pages, all alive for the call.
        let r = unsafe { ioctl_privcmd_mmapbatch_v2(self.privcmd.as_raw_fd(), &batch) };
        if let Some(i) = errs.iter().position(|&e| e != 0) {
            return Err(fail(i, Errno::from_raw(-errs[i])));
        }
        r.map_err(|e| fail(0, e))?;
        Ok(ForeignMap { region })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypercall_on_a_non_privcmd_descriptor_fails_cleanly() {
        // /dev/null accepts mmap of no kind and no privcmd ioctl.
        let f = || {
            File::options()
                .read(true)
                .write(true)
                .open("/dev/null")
                .unwrap()
        };
        let p = Privcmd::from_files(f(), f());
        let mut buf = [0u8; 8];
        assert!(p
            .hypercall(xen_sys::__HYPERVISOR_xen_version, 0, &mut buf, &[])
            .is_err());
        let mut none = [0u8; 0];
        let e = p
            .hypercall(xen_sys::__HYPERVISOR_xen_version, 0, &mut none, &[])
            .unwrap_err();
        assert_eq!(e, Errno::ENOTTY);
        assert!(matches!(
            p.map_frames(DomId::SELF, &[1]),
            Err(Error::MapFrame { index: 0, .. })
        ));
    }

    #[test]
    fn a_bad_descriptor_gives_ebadf() {
        use std::os::fd::FromRawFd;
        // A descriptor number far above anything this process opens (tests
        // run in parallel, so a just-closed number could be reused).
        let fd = 1 << 20;
        assert_eq!(
            nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD),
            Err(Errno::EBADF)
        );
        // SAFETY: the number is not open; the File only carries it so that
        // the ioctl sees a bad descriptor, and is forgotten, never closed.
        let bad = unsafe { File::from_raw_fd(fd) };
        let p = Privcmd::from_files(bad, File::open("/dev/null").unwrap());
        let mut none = [0u8; 0];
        let e = p
            .hypercall(xen_sys::__HYPERVISOR_xen_version, 0, &mut none, &[])
            .unwrap_err();
        assert_eq!(e, Errno::EBADF);
        std::mem::forget(p);
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
}
