// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The valid entries of a view as runs of consecutive frames, found by
//! walking the leaf index top down and skipping every row (and leaf page)
//! that holds no valid entry, so a huge guest's unpopulated ranges cost one
//! step per index cell, not one per pfn.

use super::walk::{self, cell, LeafIndex, Walk};
use super::Entry;
use crate::backend::{Mapping, Mem};
use crate::types::{GuestWidth, Mfn, Pfn, PAGE_SIZE};
use serde::Serialize;
use std::fmt;

/// A maximal run of valid entries: `pfn + i` is backed by machine frame
/// `mfn + i` for every `i` in `0..len`, the entry before `pfn` and the one
/// after the run are not (they are invalid, identity, foreign, beyond the
/// view, or a plain mfn that does not continue the run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Run {
    /// First pfn.
    pub pfn: Pfn,
    /// Its machine frame.
    pub mfn: Mfn,
    /// Entries (at least 1).
    pub len: u64,
}

impl fmt::Display for Run {
    /// `pfn 0x100 -> mfn 0x5400, 0x20 pages`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pfn {} -> mfn {}, {:#x} pages",
            self.pfn, self.mfn, self.len
        )
    }
}

/// One row of the index being walked: level, row, next entry, and the
/// bottom-level position of its entry 0.
#[derive(Clone, Copy)]
struct Frame {
    level: usize,
    row: usize,
    next: u64,
    base: u64,
}

/// The leaf page being read: its slot, its leaf position, the next entry
/// and the entries used.
#[derive(Clone, Copy)]
struct Page {
    slot: usize,
    leaf: u64,
    next: u64,
    used: u64,
}

/// Iterator over the [`Run`]s of a view, in pfn order (see
/// [`super::P2m::runs`]).
pub struct Runs<'a> {
    leaves: Mem<'a>,
    index: &'a LeafIndex,
    width: GuestWidth,
    fpp: u64,
    max_pfn: u64,
    nleaves: u64,
    /// Per leaf slot: the page holds a valid entry.
    slot_live: Vec<bool>,
    /// Per index level, per row: a leaf below it holds a valid entry.
    row_live: Vec<Vec<bool>>,
    stack: Vec<Frame>,
    page: Option<Page>,
    pending: Option<Run>,
}

impl fmt::Debug for Runs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runs")
            .field("max_pfn", &self.max_pfn)
            .field("pending", &self.pending)
            .finish()
    }
}

impl<'a> Runs<'a> {
    /// Marks the live slots and rows: one step per entry of each distinct
    /// leaf page and per cell of each distinct row.
    pub(super) fn new<M: Mapping>(w: &'a Walk<M>) -> Runs<'a> {
        let leaves = w.leaves.mem();
        let wb = w.width.bytes();
        let mut buf = [0u8; PAGE_SIZE];
        let slot_live: Vec<bool> = (0..w.leaf_mfns.len())
            .map(|s| {
                // One read of the guest's page: a copy of its words.
                let page: &[u8] = match leaves.page(s, &mut buf) {
                    Some(()) => &buf,
                    None => &[],
                };
                page.chunks_exact(wb).any(|e| {
                    walk::count_step();
                    let raw = crate::le::word(e, 0, wb).unwrap_or(u64::MAX);
                    matches!(Entry::decode(raw, w.width), Entry::Mfn(_))
                })
            })
            .collect();
        let levels = &w.index.levels;
        let mut row_live = vec![Vec::new(); levels.len()];
        for (l, level) in levels.iter().enumerate().rev() {
            let below = row_live.get(l + 1).unwrap_or(&slot_live);
            let live: Vec<bool> = level
                .cells
                .chunks_exact(level.fan as usize)
                .map(|row| {
                    row.iter().any(|&v| {
                        walk::count_step();
                        cell(v).is_some_and(|c| below.get(c).copied().unwrap_or(false))
                    })
                })
                .collect();
            row_live[l] = live;
        }
        let top_live = row_live.first().is_some_and(|r| r.first() == Some(&true));
        Runs {
            leaves,
            index: &w.index,
            width: w.width,
            fpp: w.fpp,
            max_pfn: w.max_pfn,
            nleaves: w.nleaves,
            slot_live,
            row_live,
            stack: if top_live {
                vec![Frame {
                    level: 0,
                    row: 0,
                    next: 0,
                    base: 0,
                }]
            } else {
                Vec::new()
            },
            page: None,
            pending: None,
        }
    }

    /// The next leaf position whose page holds a valid entry: its slot and
    /// position. Dead rows are not entered.
    fn next_leaf(&mut self) -> Option<(usize, u64)> {
        let levels = &self.index.levels;
        while let Some(top) = self.stack.last_mut() {
            let level = levels.get(top.level)?;
            if top.next >= level.fan {
                self.stack.pop();
                continue;
            }
            let i = top.next;
            top.next += 1;
            walk::count_step();
            let at = top.row * level.fan as usize + i as usize;
            let Some(c) = level.cells.get(at).copied().and_then(cell) else {
                continue;
            };
            let pos = top.base + (i << level.shift);
            let child = top.level + 1;
            if child == levels.len() {
                let leaf = pos.checked_sub(self.index.first);
                match leaf {
                    Some(k) if k < self.nleaves && self.slot_live.get(c) == Some(&true) => {
                        return Some((c, k))
                    }
                    _ => continue,
                }
            }
            if self.row_live.get(child).and_then(|r| r.get(c)) == Some(&true) {
                self.stack.push(Frame {
                    level: child,
                    row: c,
                    next: 0,
                    base: pos,
                });
            }
        }
        None
    }
}

impl Iterator for Runs<'_> {
    type Item = Run;

    fn next(&mut self) -> Option<Run> {
        let wb = self.width.bytes();
        loop {
            if let Some(pg) = self.page.as_mut() {
                while pg.next < pg.used {
                    walk::count_step();
                    let off = pg.slot * PAGE_SIZE + pg.next as usize * wb;
                    let raw = self.leaves.word(off, wb).unwrap_or(u64::MAX);
                    let pfn = pg.leaf * self.fpp + pg.next;
                    pg.next += 1;
                    let Entry::Mfn(mfn) = Entry::decode(raw, self.width) else {
                        if let Some(r) = self.pending.take() {
                            return Some(r);
                        }
                        continue;
                    };
                    match self.pending.as_mut() {
                        Some(r)
                            if r.pfn.0 + r.len == pfn
                                && r.mfn.0.checked_add(r.len) == Some(mfn.0) =>
                        {
                            r.len += 1;
                        }
                        _ => {
                            let done = self.pending.replace(Run {
                                pfn: Pfn(pfn),
                                mfn,
                                len: 1,
                            });
                            if done.is_some() {
                                return done;
                            }
                        }
                    }
                }
                self.page = None;
            }
            let Some((slot, leaf)) = self.next_leaf() else {
                return self.pending.take();
            };
            let used = self.max_pfn.saturating_sub(leaf * self.fpp).min(self.fpp);
            self.page = Some(Page {
                slot,
                leaf,
                next: 0,
                used,
            });
        }
    }
}
