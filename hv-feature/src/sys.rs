// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The one module of the crate that holds `unsafe` code (the crate root
//! denies it everywhere else):
//!
//! - [`Mem`]: reads of memory that another party (a guest, Xen, another
//!   CPU) may write while we read it, done with volatile loads of aligned
//!   words, never through a `&[u8]` of that memory.
//! - [`Pages`]: owned, word-aligned page buffers that offline backends and
//!   the simulator fill and expose as a [`Mem`].
//! - [`Devices`]: the privcmd and hypercall-buffer device files, with the
//!   few hypercalls this crate makes, each with its argument encoded here
//!   so that no caller can hand Xen a pointer of its choosing, and the
//!   batched foreign map into a [`ForeignMap`] that unmaps on drop.
#![allow(unsafe_code)]

use crate::le;
use crate::types::{DomId, PAGE_SIZE};
use nix::errno::Errno;
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
use std::fs::File;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use xen_sys::domctl_abi::{DomctlAbi, DOMCTL_ABIS};

/// A read-only view of mapped bytes that others may write concurrently.
///
/// Every read is a volatile load of an aligned 4- or 8-byte word, so a
/// concurrent write yields an old or a new value of that word (x86 keeps
/// aligned word accesses whole) and never undefined behaviour; a view of
/// several words is not a snapshot, which is why readers of guest data
/// follow the `p2m_generation` protocol.
///
/// Invariant, kept by the constructors (all in this module): `ptr` is
/// 8-byte aligned and `ptr..ptr + len` stays mapped and readable for `'a`.
#[derive(Clone, Copy)]
pub struct Mem<'a> {
    /// Start of the view, 8-byte aligned.
    ptr: NonNull<u8>,
    len: usize,
    _borrow: PhantomData<&'a [u8]>,
}

impl std::fmt::Debug for Mem<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mem").field("len", &self.len).finish()
    }
}

// SAFETY: a Mem only ever reads (volatile, aligned) from memory that stays
// mapped for 'a; such reads are as sound from any thread as from the one
// that made the view, like a shared `&[u8]`.
unsafe impl Send for Mem<'_> {}
// SAFETY: as above: no method writes through the view or has state.
unsafe impl Sync for Mem<'_> {}

impl<'a> Mem<'a> {
    /// A view of nothing.
    pub fn empty() -> Mem<'static> {
        Mem {
            ptr: NonNull::<u64>::dangling().cast(),
            len: 0,
            _borrow: PhantomData,
        }
    }

    /// Bytes in the view.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The address the view starts at (to tell whether two views share
    /// their memory).
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// True for an empty view.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The little-endian `u64` at byte `at`, which must be a multiple of 8.
    #[inline(always)]
    pub fn u64_at(&self, at: usize) -> Option<u64> {
        if at & 7 != 0 || at.checked_add(8)? > self.len {
            return None;
        }
        // SAFETY: at..at+8 lies within the view (checked), whose memory is
        // mapped and readable for 'a; ptr is 8-aligned and at a multiple
        // of 8, so the load is aligned. Volatile: the memory may change
        // under us, and the compiler must neither merge nor invent loads.
        let v = unsafe { std::ptr::read_volatile(self.ptr.as_ptr().add(at).cast::<u64>()) };
        Some(u64::from_le(v))
    }

    /// The little-endian `u32` at byte `at`, which must be a multiple of 4.
    #[inline(always)]
    pub fn u32_at(&self, at: usize) -> Option<u32> {
        if at & 3 != 0 || at.checked_add(4)? > self.len {
            return None;
        }
        // SAFETY: as in u64_at, with a 4-aligned 4-byte load.
        let v = unsafe { std::ptr::read_volatile(self.ptr.as_ptr().add(at).cast::<u32>()) };
        Some(u32::from_le(v))
    }

    /// A guest word of `w` bytes (4 or 8) at `at` (a multiple of `w`).
    #[inline(always)]
    pub fn word(&self, at: usize, w: usize) -> Option<u64> {
        match w {
            8 => self.u64_at(at),
            4 => self.u32_at(at).map(u64::from),
            _ => None,
        }
    }

    /// Copies `out.len()` bytes from byte `at` into `out`, word by word
    /// (each word read once): `at` and the length must be multiples of 4.
    /// Returns `None`, copying nothing, otherwise or past the end.
    pub fn copy_to(&self, at: usize, out: &mut [u8]) -> Option<()> {
        let end = at.checked_add(out.len())?;
        if end > self.len || (at | out.len()) & 3 != 0 {
            return None;
        }
        if (at | out.len()) & 7 == 0 {
            for (i, c) in out.chunks_exact_mut(8).enumerate() {
                c.copy_from_slice(&self.u64_at(at + i * 8)?.to_le_bytes());
            }
        } else {
            for (i, c) in out.chunks_exact_mut(4).enumerate() {
                c.copy_from_slice(&self.u32_at(at + i * 4)?.to_le_bytes());
            }
        }
        Some(())
    }

    /// Copies page `i` of the view into `out`.
    #[inline]
    pub fn page(&self, i: usize, out: &mut [u8; PAGE_SIZE]) -> Option<()> {
        self.copy_to(i.checked_mul(PAGE_SIZE)?, out)
    }

    /// The first `len` bytes of the view (all of it if shorter).
    pub fn prefix(self, len: usize) -> Mem<'a> {
        Mem {
            len: self.len.min(len),
            ..self
        }
    }

    /// The whole view, copied into an owned buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.len & !3];
        self.copy_to(0, &mut v).map_or(Vec::new(), |()| v)
    }
}

/// Owned page buffers, 8-byte aligned, zeroed when made: what offline
/// backends and the simulator fill and hand out as a [`Mem`].
#[derive(Clone, Default)]
pub struct Pages {
    words: Vec<u64>,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages")
            .field("pages", &(self.words.len() * 8 / PAGE_SIZE))
            .finish()
    }
}

impl Pages {
    /// `n` zeroed pages.
    pub fn zeroed(n: usize) -> Pages {
        Pages {
            words: vec![0u64; n * (PAGE_SIZE / 8)],
        }
    }

    /// The bytes, to fill.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.words.len() * 8;
        // SAFETY: the words are `len` initialised bytes owned by self and
        // borrowed mutably for the slice's life; u8 has no alignment or
        // validity requirement, and every byte pattern is a valid u64.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<u8>(), len) }
    }

    /// The bytes, read-only.
    #[cfg(test)]
    pub fn bytes(&self) -> &[u8] {
        let len = self.words.len() * 8;
        // SAFETY: as in bytes_mut, borrowed shared for the slice's life.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), len) }
    }

    /// A view of the bytes.
    pub fn mem(&self) -> Mem<'_> {
        Mem {
            // A Vec's pointer is never null, and u64-aligned.
            ptr: NonNull::from(self.words.as_slice()).cast(),
            len: self.words.len() * 8,
            _borrow: PhantomData,
        }
    }
}

/// An `mmap`ed region of a device, unmapped on drop.
#[derive(Debug)]
struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a Region is a plain address range owned by this value; munmap
// from any thread is fine, and it is only read through volatile loads
// (foreign maps) or through &mut self (hypercall buffers).
unsafe impl Send for Region {}
// SAFETY: shared access only reads, through volatile loads (see Mem).
unsafe impl Sync for Region {}

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

    fn addr(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    /// The bytes of a hypercall buffer: memory only this process and Xen
    /// (during a hypercall we make while no borrow is alive) touch.
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: ptr..ptr+len is a live read-write mapping owned by self
        // (only hypercall buffers, mapped PROT_READ|PROT_WRITE, call
        // this); nothing else writes it while the borrow lives.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    fn mem(&self) -> Mem<'_> {
        Mem {
            ptr: self.ptr,
            len: self.len,
            _borrow: PhantomData,
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the region mmap returned; no borrow or
        // Mem of it outlives self.
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

/// A read-only mapping of foreign frames; unmapped when dropped.
///
/// `Send` and `Sync`: it owns its address range, and every read of it is
/// a volatile word load ([`Mem`]), sound from any thread.
#[derive(Debug)]
pub struct ForeignMap {
    region: Region,
}

impl ForeignMap {
    /// A view of the mapped frames as they are now.
    pub fn mem(&self) -> Mem<'_> {
        self.region.mem()
    }
}

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
const IOCTL_PRIVCMD_HYPERCALL: u64 = nix::ioc!(
    nix::sys::ioctl::NONE,
    b'P',
    0,
    size_of::<PrivcmdHypercall>()
) as u64;
// #define IOCTL_PRIVCMD_MMAPBATCH_V2 \
//     _IOC(_IOC_NONE, 'P', 4, sizeof(struct privcmd_mmapbatch_v2))
const IOCTL_PRIVCMD_MMAPBATCH_V2: u64 = nix::ioc!(
    nix::sys::ioctl::NONE,
    b'P',
    4,
    size_of::<PrivcmdMmapbatchV2>()
) as u64;

/// The domctls this crate issues. None of them carries a guest handle:
/// their union members are plain integers, so Xen reads and writes only
/// the `struct xen_domctl` itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DomctlCmd {
    /// `XEN_DOMCTL_getdomaininfo`.
    GetDomainInfo,
    /// `XEN_DOMCTL_get_address_size`.
    GetAddressSize,
    /// `XEN_DOMCTL_max_mem`.
    MaxMem,
}

impl DomctlCmd {
    /// The command's number in `abi`.
    pub(crate) fn number(self, abi: &DomctlAbi) -> u32 {
        let l = abi.layout;
        match self {
            DomctlCmd::GetDomainInfo => l.getdomaininfo,
            DomctlCmd::GetAddressSize => l.get_address_size,
            DomctlCmd::MaxMem => l.max_mem,
        }
    }
}

/// The privcmd device and the hypercall-buffer device.
#[derive(Debug)]
pub(crate) struct Devices {
    privcmd: File,
    hcall: File,
}

impl Devices {
    pub(crate) fn new(privcmd: File, hcall: File) -> Devices {
        Devices { privcmd, hcall }
    }

    /// Issues `call` through privcmd.
    ///
    /// # Safety
    /// Xen reads and writes whatever the arguments point to: each pointer
    /// in `call` must be the address of a live hypercall buffer large
    /// enough for what this hypercall reads and writes there, and a
    /// sub-op that takes a pointer must be given one.
    unsafe fn issue(&self, call: &PrivcmdHypercall) -> Result<i64, Errno> {
        // SAFETY: IOCTL_PRIVCMD_HYPERCALL reads one privcmd_hypercall from
        // the pointer, which refers to `call`, alive for the call; what
        // Xen then touches is the caller's promise (see # Safety).
        let r = unsafe {
            nix::libc::ioctl(
                self.privcmd.as_raw_fd(),
                IOCTL_PRIVCMD_HYPERCALL as _,
                call as *const PrivcmdHypercall,
            )
        };
        Errno::result(r).map(|r| r as i64)
    }

    /// Hypercall `op(cmd, NULL)`.
    ///
    /// # Safety
    /// Sub-op `cmd` of `op` must take no argument.
    unsafe fn no_arg(&self, op: u32, cmd: u32) -> Result<i64, Errno> {
        let mut call = PrivcmdHypercall {
            op: op as u64,
            ..Default::default()
        };
        call.arg[0] = cmd as u64;
        // SAFETY: no pointer is passed and `cmd` takes none (# Safety).
        unsafe { self.issue(&call) }
    }

    /// A hypercall buffer of at least `len` bytes (whole pages), holding
    /// `init` at its start.
    fn buffer(&self, len: usize, init: &[u8]) -> Result<Region, Errno> {
        let len = len.max(init.len()).max(1).div_ceil(PAGE_SIZE) * PAGE_SIZE;
        let mut r = Region::new(
            &self.hcall,
            len,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
        )?;
        r.bytes_mut()[..init.len()].copy_from_slice(init);
        Ok(r)
    }

    /// Hypercall `op(cmd, buffer)` where the buffer is `r`.
    ///
    /// # Safety
    /// Sub-op `cmd` of `op` must read and write through its argument only
    /// what `r` holds (and through nothing else).
    unsafe fn with_buffer(&self, op: u32, cmd: u32, r: &Region) -> Result<i64, Errno> {
        let mut call = PrivcmdHypercall {
            op: op as u64,
            ..Default::default()
        };
        call.arg[0] = cmd as u64;
        call.arg[1] = r.addr();
        // SAFETY: the one pointer is `r`, a live hypercall buffer that is
        // large enough for `cmd` (# Safety).
        unsafe { self.issue(&call) }
    }

    /// `XENVER_version`: (major << 16) | minor.
    pub(crate) fn xen_version(&self) -> Result<i64, Errno> {
        // SAFETY: XENVER_version takes no argument.
        unsafe { self.no_arg(xen_sys::__HYPERVISOR_xen_version, xen_sys::XENVER_version) }
    }

    /// `XENVER_extraversion`: Xen writes a 16-byte string.
    pub(crate) fn xen_extraversion(&self) -> Result<[u8; 16], Errno> {
        let r = self.buffer(16, &[])?;
        // SAFETY: XENVER_extraversion writes a 16-byte xen_extraversion_t
        // into its argument; `r` is a page.
        unsafe {
            self.with_buffer(
                xen_sys::__HYPERVISOR_xen_version,
                xen_sys::XENVER_extraversion,
                &r,
            )
        }?;
        let mut out = [0u8; 16];
        r.mem().copy_to(0, &mut out).ok_or(Errno::EFAULT)?;
        Ok(out)
    }

    /// `XENVER_get_features` of submap `idx`: Xen reads and writes one
    /// `struct xen_feature_info { unsigned int submap_idx, submap; }`.
    pub(crate) fn xen_features(&self, idx: u32) -> Result<u32, Errno> {
        let mut arg = [0u8; 8];
        le::put_uint(&mut arg, 0, 4, idx as u64).ok_or(Errno::EFAULT)?;
        let r = self.buffer(arg.len(), &arg)?;
        // SAFETY: XENVER_get_features reads and writes one 8-byte
        // xen_feature_info in its argument; `r` is a page.
        unsafe {
            self.with_buffer(
                xen_sys::__HYPERVISOR_xen_version,
                xen_sys::XENVER_get_features,
                &r,
            )
        }?;
        r.mem().u32_at(4).ok_or(Errno::EFAULT)
    }

    /// `XENMEM_maximum_ram_page`.
    pub(crate) fn maximum_ram_page(&self) -> Result<i64, Errno> {
        // SAFETY: XENMEM_maximum_ram_page takes no argument.
        unsafe {
            self.no_arg(
                xen_sys::__HYPERVISOR_memory_op,
                xen_sys::XENMEM_maximum_ram_page,
            )
        }
    }

    /// `XENMEM_machphys_mfn_list` for at most `max` extents: the base mfn
    /// of each 2 MiB extent of the M2P. The argument
    /// (`struct xen_machphys_mfn_list`) and the array its handle points at
    /// share one hypercall buffer sized for `max` entries.
    pub(crate) fn machphys_mfn_list(&self, max: u32) -> Result<Vec<u64>, Errno> {
        use std::mem::offset_of;
        use xen_sys::xen_machphys_mfn_list as L;
        let head = size_of::<L>().next_multiple_of(8);
        let mut r = self.buffer(head + max as usize * 8, &[])?;
        let base = r.addr();
        let b = r.bytes_mut();
        le::put_uint(b, offset_of!(L, max_extents), 4, max as u64).ok_or(Errno::EFAULT)?;
        le::put_uint(b, offset_of!(L, extent_start), 8, base + head as u64).ok_or(Errno::EFAULT)?;
        // SAFETY: XENMEM_machphys_mfn_list reads and writes the struct at
        // the start of `r` and writes at most max_extents 8-byte entries
        // where its handle points: `r` past the struct, sized for `max`.
        unsafe {
            self.with_buffer(
                xen_sys::__HYPERVISOR_memory_op,
                xen_sys::XENMEM_machphys_mfn_list,
                &r,
            )
        }?;
        let m = r.mem();
        let n = m.u32_at(offset_of!(L, nr_extents)).ok_or(Errno::EFAULT)?;
        if n > max {
            return Err(Errno::E2BIG);
        }
        (0..n as usize)
            .map(|i| m.u64_at(head + i * 8).ok_or(Errno::EFAULT))
            .collect()
    }

    /// Issues domctl `cmd` laid out as `abi` says: `req` is the rest of
    /// the `struct xen_domctl` (domain, interface version, the union),
    /// into whose command field `cmd`'s number is written here, so that it
    /// is one of the handle-free commands of [`DomctlCmd`]. Returns the
    /// struct as Xen left it.
    pub(crate) fn domctl(
        &self,
        abi: &DomctlAbi,
        cmd: DomctlCmd,
        req: &[u8],
    ) -> Result<Vec<u8>, Errno> {
        // Only the known layouts, whose command numbers are those of the
        // handle-free commands. By value: DOMCTL_ABIS is a constant, so
        // two uses of it need not share an address.
        if !DOMCTL_ABIS.contains(abi) {
            return Err(Errno::EINVAL);
        }
        let l = abi.layout;
        if req.len() != l.size {
            return Err(Errno::EINVAL);
        }
        let mut r = self.buffer(l.size, req)?;
        le::put_uint(
            r.bytes_mut(),
            l.cmd.offset,
            l.cmd.size,
            cmd.number(abi) as u64,
        )
        .ok_or(Errno::EINVAL)?;
        let mut call = PrivcmdHypercall {
            op: xen_sys::__HYPERVISOR_domctl as u64,
            ..Default::default()
        };
        call.arg[0] = r.addr();
        // SAFETY: domctl reads and writes one struct xen_domctl (of the
        // running Xen's size, well under the page `r` is) at its argument;
        // the command is one of DomctlCmd's, whose members hold no guest
        // handle, so Xen follows no other pointer.
        unsafe { self.issue(&call) }?;
        let mut out = vec![0u8; l.size.next_multiple_of(8)];
        r.mem().copy_to(0, &mut out).ok_or(Errno::EFAULT)?;
        out.truncate(l.size);
        Ok(out)
    }

    /// Maps `frames` of `dom` read-only with `IOCTL_PRIVCMD_MMAPBATCH_V2`.
    /// On failure: the index of the first failing frame and its errno.
    pub(crate) fn map_foreign(
        &self,
        dom: DomId,
        frames: &[u64],
    ) -> Result<ForeignMap, (usize, Errno)> {
        let count = frames.len();
        if count == 0 || count > u32::MAX as usize {
            return Err((0, Errno::EINVAL));
        }
        let len = count.checked_mul(PAGE_SIZE).ok_or((0, Errno::EINVAL))?;
        let region = Region::new(&self.privcmd, len, ProtFlags::PROT_READ).map_err(|e| (0, e))?;
        let mut errs = vec![0i32; count];
        let batch = PrivcmdMmapbatchV2 {
            num: count as u32,
            dom: dom.0,
            addr: region.addr(),
            arr: frames.as_ptr() as u64,
            err: errs.as_mut_ptr() as u64,
        };
        // SAFETY: `batch` points at `frames` (count entries, read by the
        // kernel), `errs` (count entries, written) and a privcmd VMA of
        // count pages that `region` owns, all alive for the call.
        let r = unsafe {
            nix::libc::ioctl(
                self.privcmd.as_raw_fd(),
                IOCTL_PRIVCMD_MMAPBATCH_V2 as _,
                &batch as *const PrivcmdMmapbatchV2,
            )
        };
        if let Some(i) = errs.iter().position(|&e| e != 0) {
            return Err((i, Errno::from_raw(-errs[i])));
        }
        Errno::result(r).map_err(|e| (0, e))?;
        Ok(ForeignMap { region })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn views_are_send_and_sync() {
        assert_send_sync::<Mem<'static>>();
        assert_send_sync::<ForeignMap>();
        assert_send_sync::<Pages>();
    }

    #[test]
    fn mem_reads_are_aligned_and_bounded() {
        let mut p = Pages::zeroed(1);
        p.bytes_mut()[8..16].copy_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
        let m = p.mem();
        assert_eq!(m.len(), PAGE_SIZE);
        assert_eq!(m.u64_at(8), Some(0x1122_3344_5566_7788));
        assert_eq!(m.u32_at(12), Some(0x1122_3344));
        assert_eq!(m.u64_at(12), None, "unaligned");
        assert_eq!(m.u64_at(PAGE_SIZE), None);
        assert_eq!(m.u32_at(usize::MAX - 3), None);
        assert_eq!(m.word(8, 4), Some(0x5566_7788));
        assert_eq!(m.word(8, 2), None);
        let mut out = [0u8; 12];
        assert_eq!(m.copy_to(4, &mut out), Some(()));
        assert_eq!(out[4..12], 0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(m.copy_to(2, &mut out), None);
        assert_eq!(m.copy_to(PAGE_SIZE - 8, &mut out), None);
        let mut page = [0u8; PAGE_SIZE];
        assert_eq!(m.page(0, &mut page), Some(()));
        assert_eq!(page[..], p.bytes()[..]);
        assert_eq!(m.page(1, &mut page), None);
        assert!(Mem::empty().is_empty());
        assert_eq!(m.to_vec(), p.bytes());
    }

    /// `/dev/null` opened read-write: a descriptor that accepts no mmap
    /// and no privcmd ioctl (the privcmd tests use it too).
    pub(crate) fn dev_null() -> File {
        File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .unwrap()
    }

    fn null_devices() -> Devices {
        Devices::new(dev_null(), dev_null())
    }

    #[test]
    fn calls_on_a_non_privcmd_descriptor_fail_cleanly() {
        // /dev/null accepts mmap of no kind and no privcmd ioctl.
        let d = null_devices();
        assert_eq!(d.xen_version(), Err(Errno::ENOTTY));
        assert_eq!(d.maximum_ram_page(), Err(Errno::ENOTTY));
        assert!(d.xen_features(0).is_err());
        assert!(d.xen_extraversion().is_err());
        assert!(d.machphys_mfn_list(4).is_err());
        assert!(matches!(d.map_foreign(DomId::SELF, &[1]), Err((0, _))));
        assert!(matches!(
            d.map_foreign(DomId::SELF, &[]),
            Err((0, Errno::EINVAL))
        ));
        // Every known layout, also a copy of it, gets past the check to the
        // hypercall buffer (whose mmap /dev/null refuses with ENODEV); one
        // that is not known is refused before (EINVAL).
        for abi in DOMCTL_ABIS {
            let req = vec![0u8; abi.layout.size];
            assert_eq!(
                d.domctl(abi, DomctlCmd::GetDomainInfo, &req),
                Err(Errno::ENODEV)
            );
            let copy: DomctlAbi = *abi;
            assert_eq!(d.domctl(&copy, DomctlCmd::MaxMem, &req), Err(Errno::ENODEV));
            let layout = Box::leak(Box::new(*abi.layout));
            layout.getdomaininfo = 0x7ff;
            let unknown = DomctlAbi { layout, ..*abi };
            assert_eq!(
                d.domctl(&unknown, DomctlCmd::GetDomainInfo, &req),
                Err(Errno::EINVAL)
            );
        }
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
        let d = Devices::new(bad, File::open("/dev/null").unwrap());
        assert_eq!(d.xen_version(), Err(Errno::EBADF));
        std::mem::forget(d);
    }
}
