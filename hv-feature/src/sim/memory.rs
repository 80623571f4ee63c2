// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Simulated machine memory: frames by mfn, each with an owner and a
//! copy-on-write page, so that one page can back many frames cheaply and a
//! mapping can keep the version it has shown; and the M2P, stored in
//! Xen-owned frames of that memory.

use super::SimError;
use crate::types::{DomId, PAGE_SIZE};
use std::sync::Arc;

/// One page of simulated memory.
pub(super) type Page = [u8; PAGE_SIZE];

/// Owner value of a frame nobody has.
pub(super) const FREE: u16 = xen_sys::DOMID_INVALID as u16;
/// Owner of Xen's own frames (the M2P).
pub(super) const XEN: u16 = xen_sys::DOMID_XEN as u16;
/// Frames per M2P extent (`XENMEM_machphys_mfn_list` hands out 2 MiB).
pub(super) const M2P_EXTENT: u64 = 512;
/// Bytes of one M2P entry (Xen's `unsigned long`).
const M2P_ENTRY: u64 = 8;

/// One machine frame.
#[derive(Clone, Debug)]
pub(super) struct Frame {
    /// Owning domain, or [`FREE`].
    pub owner: u16,
    /// Contents; `None` for a free frame.
    pub page: Option<Arc<Page>>,
}

/// The host's memory.
#[derive(Debug)]
pub(super) struct Memory {
    frames: Vec<Frame>,
    /// Allocatable mfns are `1..=usable`; mfn 0 is never handed out.
    usable: u64,
    stride: u64,
    next: u64,
    allocated: u64,
    /// First M2P frame; the M2P fills `m2p_first..=max_mfn`.
    m2p_first: u64,
    m2p_frames: u64,
    /// A page of zeros, shared by every fresh frame.
    pub zero: Arc<Page>,
    /// A page of `0xff` bytes: every entry `~0`, of either width.
    pub ones: Arc<Page>,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Memory {
    /// Memory of `max_mfn + 1` frames, with the M2P at the top.
    pub fn new(max_mfn: u64) -> Result<Memory, SimError> {
        if !(1024..=1 << 28).contains(&max_mfn) {
            return Err(SimError::BadConfig("max_mfn must be in 1024..=2^28"));
        }
        let entries_per_frame = PAGE_SIZE as u64 / M2P_ENTRY;
        let m2p_frames = (max_mfn + 1)
            .div_ceil(entries_per_frame)
            .div_ceil(M2P_EXTENT)
            * M2P_EXTENT;
        if m2p_frames * 2 > max_mfn {
            return Err(SimError::BadConfig("max_mfn too small for its M2P"));
        }
        let m2p_first = max_mfn + 1 - m2p_frames;
        let usable = m2p_first - 1;
        // A stride coprime with `usable` walks every allocatable mfn once,
        // in an order unrelated to pfns.
        let mut stride = 7919 % usable;
        while stride == 0 || gcd(stride, usable) != 1 {
            stride += 1;
        }
        let zero = Arc::new([0u8; PAGE_SIZE]);
        let ones = Arc::new([0xffu8; PAGE_SIZE]);
        let mut frames = vec![
            Frame {
                owner: FREE,
                page: None
            };
            (max_mfn + 1) as usize
        ];
        for f in &mut frames[m2p_first as usize..] {
            *f = Frame {
                owner: XEN,
                page: Some(ones.clone()),
            };
        }
        Ok(Memory {
            frames,
            usable,
            stride,
            next: 0,
            allocated: 0,
            m2p_first,
            m2p_frames,
            zero,
            ones,
        })
    }

    /// The largest mfn.
    pub fn max_mfn(&self) -> u64 {
        self.frames.len() as u64 - 1
    }

    /// Frames handed out so far (M2P not counted).
    pub fn allocated(&self) -> u64 {
        self.allocated
    }

    /// Base mfn of each M2P extent.
    pub fn m2p_extents(&self) -> Vec<u64> {
        (0..self.m2p_frames / M2P_EXTENT)
            .map(|e| self.m2p_first + e * M2P_EXTENT)
            .collect()
    }

    /// The frame `mfn`, if it exists.
    pub fn frame(&self, mfn: u64) -> Option<&Frame> {
        self.frames.get(usize::try_from(mfn).ok()?)
    }

    /// The page of `mfn` if `mfn` exists and is owned.
    pub fn page(&self, mfn: u64) -> Option<&Arc<Page>> {
        self.frame(mfn)?.page.as_ref()
    }

    /// Allocates a frame for `owner` with contents `page`.
    pub fn alloc(&mut self, owner: u16, page: Arc<Page>) -> Result<u64, SimError> {
        if self.allocated >= self.usable {
            return Err(SimError::OutOfMemory);
        }
        let mfn = 1 + (self.next * self.stride) % self.usable;
        self.next += 1;
        self.allocated += 1;
        self.frames[mfn as usize] = Frame {
            owner,
            page: Some(page),
        };
        Ok(mfn)
    }

    /// Allocates a frame whose page is built by `fill`.
    pub fn alloc_with(
        &mut self,
        owner: u16,
        fill: impl FnOnce(&mut Page),
    ) -> Result<u64, SimError> {
        let mut page = [0u8; PAGE_SIZE];
        fill(&mut page);
        self.alloc(owner, Arc::new(page))
    }

    /// Changes the page of an owned frame (copying it first if a mapping
    /// or another frame shares it).
    pub fn write(&mut self, mfn: u64, f: impl FnOnce(&mut Page)) -> Result<(), SimError> {
        let frame = usize::try_from(mfn)
            .ok()
            .and_then(|i| self.frames.get_mut(i))
            .ok_or(SimError::NoSuchFrame(mfn))?;
        let page = frame.page.as_mut().ok_or(SimError::NoSuchFrame(mfn))?;
        f(Arc::make_mut(page));
        Ok(())
    }

    /// Reads the little-endian `width`-byte word at byte `off` of `mfn`.
    pub fn read_word(&self, mfn: u64, off: usize, width: usize) -> Option<u64> {
        crate::le::word(&self.page(mfn)?[..], off, width)
    }

    /// Writes the little-endian `width`-byte word at byte `off` of `mfn`.
    pub fn write_word(
        &mut self,
        mfn: u64,
        off: usize,
        width: usize,
        v: u64,
    ) -> Result<(), SimError> {
        if off + width > PAGE_SIZE || !(width == 4 || width == 8) {
            return Err(SimError::BadConfig("word outside the page"));
        }
        self.write(mfn, |p| put_word(p, off, width, v))
    }

    /// Records `m2p[mfn] = pfn` in the M2P frames.
    pub fn set_m2p(&mut self, mfn: u64, pfn: u64) -> Result<(), SimError> {
        let at = mfn
            .checked_mul(M2P_ENTRY)
            .ok_or(SimError::NoSuchFrame(mfn))?;
        let frame = self.m2p_first + at / PAGE_SIZE as u64;
        if mfn > self.max_mfn() {
            return Err(SimError::NoSuchFrame(mfn));
        }
        self.write_word(frame, (at % PAGE_SIZE as u64) as usize, 8, pfn)
    }

    /// `m2p[mfn]`.
    pub fn m2p(&self, mfn: u64) -> Option<u64> {
        if mfn > self.max_mfn() {
            return None;
        }
        let at = mfn * M2P_ENTRY;
        self.read_word(
            self.m2p_first + at / PAGE_SIZE as u64,
            (at % PAGE_SIZE as u64) as usize,
            8,
        )
    }

    /// Checks that `mfn` may be mapped by a caller naming domain `dom`;
    /// the errno Xen's foreign map would give otherwise.
    pub fn check_mappable(&self, dom: u16, mfn: u64) -> Result<(), nix::errno::Errno> {
        match self.frame(mfn) {
            None => Err(nix::errno::Errno::EFAULT),
            Some(f) if f.owner != dom || f.page.is_none() => Err(nix::errno::Errno::EINVAL),
            Some(_) => Ok(()),
        }
    }

    /// Owner of `mfn` as a [`DomId`], if owned.
    pub fn owner(&self, mfn: u64) -> Option<DomId> {
        self.frame(mfn)
            .filter(|f| f.owner != FREE)
            .map(|f| DomId(f.owner))
    }
}

/// Stores `v` as a little-endian `width`-byte word at `off` of `p`.
pub(super) fn put_word(p: &mut Page, off: usize, width: usize, v: u64) {
    let _ = crate::le::put_uint(p, off, width.min(8), v);
}
