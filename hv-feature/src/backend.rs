// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The small interface every operation of this crate is written against:
//! issue a hypercall with a buffer, and map a batch of frames read-only.
//!
//! [`crate::privcmd::Privcmd`] implements it on a real Xen dom0;
//! [`crate::sim::SimHost`] implements it on simulated machine memory.

use crate::error::Error;
use crate::types::DomId;
use nix::errno::Errno;

/// The offset into `buf` held by the 8-byte guest handle at `handle` (see
/// [`Backend::hypercall`]), checked to lie within `buf`: `EFAULT` if not.
pub fn handle_offset(buf: &[u8], handle: usize) -> Result<usize, Errno> {
    let field = buf
        .get(handle..handle.checked_add(8).ok_or(Errno::EFAULT)?)
        .ok_or(Errno::EFAULT)?;
    let off = u64::from_le_bytes(field.try_into().map_err(|_| Errno::EFAULT)?);
    usize::try_from(off)
        .ok()
        .filter(|&o| o <= buf.len())
        .ok_or(Errno::EFAULT)
}

/// A read-only mapping of consecutive pages, unmapped when dropped.
pub trait Mapping {
    /// The mapped bytes: `PAGE_SIZE` bytes per frame, in request order.
    fn bytes(&self) -> &[u8];
}

/// Where hypercalls go and foreign frames come from.
pub trait Backend {
    /// The guard type of a mapping.
    type Map: Mapping;

    /// Issues hypercall `op` as `op(cmd, buf)` (`domctl` takes `buf`
    /// alone and ignores `cmd`). `buf` holds the C argument structure,
    /// optionally followed by arrays it points to: each offset in
    /// `handles` is the position in `buf` of an 8-byte guest handle whose
    /// value, on entry, is an offset into `buf`; the backend turns it into
    /// the address where that part of `buf` lives during the call. `buf`
    /// is copied in and back out. Returns the hypercall's non-negative
    /// result, or the errno.
    fn hypercall(&self, op: u32, cmd: u64, buf: &mut [u8], handles: &[usize])
        -> Result<i64, Errno>;

    /// Maps `frames` of domain `dom` read-only, one page each, in order.
    /// Every per-frame error is checked: if any frame fails, the call
    /// returns [`Error::MapFrame`] naming the first failing frame.
    fn map_frames(&self, dom: DomId, frames: &[u64]) -> Result<Self::Map, Error>;
}
