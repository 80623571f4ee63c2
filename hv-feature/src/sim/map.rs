// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Live mappings of simulated memory.
//!
//! A privcmd mapping is live: the guest's later writes show through it.
//! [`SimMap`] behaves the same: each [`Mapping::bytes`] call returns the
//! frames as they are now. Because `bytes` hands out a plain `&[u8]`, a
//! version of the contents, once shown, must stay put while the mapping
//! lives; versions are therefore kept in an append-only list and a new one
//! is made only when one of the mapped frames really changed.

use super::memory::Page;
use super::Inner;
use crate::backend::Mapping;
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

/// The contents of a mapping at one moment.
struct Version {
    /// Memory epoch at which these contents were last confirmed current.
    seen: AtomicU64,
    /// The pages, to tell whether a frame changed since.
    pages: Vec<Arc<Page>>,
    bytes: Vec<u8>,
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
    /// A mapping of `mfns` whose current pages are `pages` at `epoch`.
    pub(super) fn new(
        inner: Arc<Inner>,
        mfns: Vec<u64>,
        pages: Vec<Arc<Page>>,
        epoch: u64,
    ) -> SimMap {
        let versions = AppendOnly::new();
        versions.push(make_version(pages, epoch));
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

fn make_version(pages: Vec<Arc<Page>>, epoch: u64) -> Version {
    let mut bytes = Vec::with_capacity(pages.len() * PAGE_SIZE);
    for p in &pages {
        bytes.extend_from_slice(&p[..]);
    }
    Version {
        seen: AtomicU64::new(epoch),
        pages,
        bytes,
    }
}

impl Mapping for SimMap {
    fn bytes(&self) -> &[u8] {
        let Some(last) = self.versions.last() else {
            return &[];
        };
        if last.seen.load(Ordering::Acquire) == self.inner.epoch.load(Ordering::Acquire) {
            return &last.bytes;
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
            .zip(&last.pages)
            .map(|(&m, old)| state.mem.page(m).unwrap_or(old).clone())
            .collect();
        drop(state);
        if current
            .iter()
            .zip(&last.pages)
            .all(|(a, b)| Arc::ptr_eq(a, b))
        {
            last.seen.store(epoch, Ordering::Release);
            return &last.bytes;
        }
        match self.versions.push(make_version(current, epoch)) {
            Some(v) => &v.bytes,
            None => &last.bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
