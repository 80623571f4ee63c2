// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Live mappings of simulated memory.
//!
//! A privcmd mapping is live: the guest's later writes show through it.
//! [`SimMap`] behaves the same: each [`Mapping::mem`] call returns the
//! frames as they are now. Simulated guests never write a version in
//! place (a guest's write makes a new copy of the page), so a version of
//! the contents, once shown, must stay put while the mapping lives;
//! versions are therefore kept in an append-only list and a new one is
//! made only when one of the mapped frames really changed. A `SimMap` is
//! `Send` and `Sync`: its versions are immutable once pushed, and the
//! list grows under a lock.
//!
//! A version's bytes are a copy of its frames, as the kernel's privcmd
//! mapping is not. With [`super::SimHost::set_zero_copy`] on, mappings of
//! the same frames whose pages have not changed share one copy, so only
//! the first mapping of a frame list copies: what benchmarks measure then
//! is the reader's work, as on privcmd, not the simulator's copying.

use super::memory::Page;
use super::Inner;
use crate::backend::{Mapping, Mem};
use crate::sys::Pages;
use crate::types::PAGE_SIZE;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Buckets of [`AppendOnly`]: bucket `b` holds `2^b` elements.
const BUCKETS: usize = 40;

/// A list that grows through `&self` and never moves its elements, so
/// references to them live as long as the list.
struct AppendOnly<T> {
    buckets: [OnceLock<Box<[OnceLock<T>]>>; BUCKETS],
    len: AtomicUsize,
    push_lock: Mutex<()>,
}

/// Bucket and offset of element `i`.
fn locate(i: usize) -> (usize, usize) {
    let n = i + 1;
    let b = (usize::BITS - 1 - n.leading_zeros()) as usize;
    (b, n - (1 << b))
}

impl<T> AppendOnly<T> {
    fn new() -> Self {
        AppendOnly {
            buckets: std::array::from_fn(|_| OnceLock::new()),
            len: AtomicUsize::new(0),
            push_lock: Mutex::new(()),
        }
    }

    fn get(&self, i: usize) -> Option<&T> {
        if i >= self.len.load(Ordering::Acquire) {
            return None;
        }
        let (b, o) = locate(i);
        self.buckets.get(b)?.get()?.get(o)?.get()
    }

    fn last(&self) -> Option<&T> {
        let n = self.len.load(Ordering::Acquire);
        self.get(n.checked_sub(1)?)
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    fn push(&self, v: T) -> Option<&T> {
        let _g = self
            .push_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let i = self.len.load(Ordering::Relaxed);
        let (b, o) = locate(i);
        let bucket = self
            .buckets
            .get(b)?
            .get_or_init(|| (0..1usize << b).map(|_| OnceLock::new()).collect());
        let slot = bucket.get(o)?;
        let _ = slot.set(v);
        self.len.store(i + 1, Ordering::Release);
        slot.get()
    }
}

/// The frames' pages and a copy of them side by side.
pub(super) struct Contents {
    /// The pages, to tell whether a frame changed since.
    pages: Vec<Arc<Page>>,
    bytes: Pages,
}

impl fmt::Debug for Contents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contents")
            .field("frames", &self.pages.len())
            .finish()
    }
}

impl Contents {
    /// Copies `pages` once.
    pub(super) fn new(pages: Vec<Arc<Page>>) -> Contents {
        let mut bytes = Pages::zeroed(pages.len());
        for (p, out) in pages
            .iter()
            .zip(bytes.bytes_mut().chunks_exact_mut(PAGE_SIZE))
        {
            out.copy_from_slice(&p[..]);
        }
        Contents { pages, bytes }
    }

    /// True when these are exactly `pages` (the same page objects).
    pub(super) fn holds(&self, pages: &[Arc<Page>]) -> bool {
        self.pages.len() == pages.len()
            && self.pages.iter().zip(pages).all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

/// The contents of a mapping at one moment.
struct Version {
    /// Memory epoch at which these contents were last confirmed current.
    seen: AtomicU64,
    contents: Arc<Contents>,
}

/// A live read-only mapping of simulated frames.
pub struct SimMap {
    inner: Arc<Inner>,
    mfns: Vec<u64>,
    versions: AppendOnly<Version>,
}

impl fmt::Debug for SimMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimMap")
            .field("frames", &self.mfns.len())
            .field("versions", &self.versions.len())
            .finish()
    }
}

impl SimMap {
    /// A mapping of `mfns` whose current contents at `epoch` are
    /// `contents`.
    pub(super) fn new(
        inner: Arc<Inner>,
        mfns: Vec<u64>,
        contents: Arc<Contents>,
        epoch: u64,
    ) -> SimMap {
        let versions = AppendOnly::new();
        versions.push(Version {
            seen: AtomicU64::new(epoch),
            contents,
        });
        SimMap {
            inner,
            mfns,
            versions,
        }
    }

    /// Versions of the contents this mapping has kept so far.
    pub fn versions(&self) -> usize {
        self.versions.len()
    }

    /// Mapped frames, in order.
    pub fn frames(&self) -> &[u64] {
        &self.mfns
    }
}

impl Mapping for SimMap {
    fn mem(&self) -> Mem<'_> {
        let Some(last) = self.versions.last() else {
            return Mem::empty();
        };
        if last.seen.load(Ordering::Acquire) == self.inner.epoch.load(Ordering::Acquire) {
            return last.contents.bytes.mem();
        }
        let state = self
            .inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        // A frame that was freed keeps the page the mapping holds, as a
        // real foreign mapping keeps its page referenced.
        let current: Vec<Arc<Page>> = self
            .mfns
            .iter()
            .zip(&last.contents.pages)
            .map(|(&m, old)| state.mem.page(m).unwrap_or(old).clone())
            .collect();
        drop(state);
        if last.contents.holds(&current) {
            last.seen.store(epoch, Ordering::Release);
            return last.contents.bytes.mem();
        }
        let v = Version {
            seen: AtomicU64::new(epoch),
            contents: Arc::new(Contents::new(current)),
        };
        match self.versions.push(v) {
            Some(v) => v.contents.bytes.mem(),
            None => last.contents.bytes.mem(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;
    use crate::sim::{GuestSpec, SimHost};
    use crate::types::{DomId, GuestWidth, Mfn};

    #[test]
    fn zero_copy_shares_unchanged_frames_and_stays_live() {
        let host = SimHost::new(1 << 14).unwrap();
        let dom = host
            .add_guest(&GuestSpec::new(DomId(1), GuestWidth::W64, 4096))
            .unwrap();
        let frames: Vec<Mfn> = (0..8).map(|k| host.leaf_frame(dom, k).unwrap()).collect();
        let ptr = |m: &SimMap| m.mem().addr();
        let (a, b) = (
            host.map_frames(dom, &frames).unwrap(),
            host.map_frames(dom, &frames).unwrap(),
        );
        assert_ne!(ptr(&a), ptr(&b), "copies unless zero-copy is on");
        host.set_zero_copy(true);
        let (c, d) = (
            host.map_frames(dom, &frames).unwrap(),
            host.map_frames(dom, &frames).unwrap(),
        );
        assert_eq!(ptr(&c), ptr(&d));
        host.write_word(frames[3], 16, 8, 0x1234).unwrap();
        // Live: both show the write; a new mapping shares nothing stale.
        let e = host.map_frames(dom, &frames).unwrap();
        for m in [&c, &d, &e] {
            let at = 3 * PAGE_SIZE + 16;
            assert_eq!(m.mem().u64_at(at), Some(0x1234));
        }
        assert_ne!(ptr(&e), ptr(&a));
    }

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn a_simulated_view_is_send_and_sync() {
        assert_send_sync::<SimMap>();
        assert_send_sync::<SimHost>();
    }

    #[test]
    fn append_only_keeps_elements_in_place() {
        let a = AppendOnly::new();
        let first: *const u32 = a.push(7).unwrap();
        for i in 0..1000u32 {
            a.push(i);
        }
        assert_eq!(a.len(), 1001);
        assert_eq!(a.get(0).map(|r| r as *const u32), Some(first));
        assert_eq!(a.last(), Some(&999));
        assert_eq!(a.get(500), Some(&499));
        assert_eq!(a.get(1001), None);
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(1), (1, 0));
        assert_eq!(locate(2), (1, 1));
        assert_eq!(locate(3), (2, 0));
    }
}
