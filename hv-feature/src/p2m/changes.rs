// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Which leaf positions changed frame between two views, for
//! [`super::P2m::refresh`], with work that follows the distinct index
//! rows: a guest whose few pages span 2^40 entries costs as little as its
//! pages.

use super::verify::{joint_runs, run_cells, RunAt};
use super::walk::{cell, count_step, Walk, UNUSED};
use super::{LeafChange, MAX_LEAF_CHANGES};
use crate::backend::Mapping;
use crate::types::{Mfn, Pfn};
use std::collections::HashMap;

/// The leaf positions whose frame differs between `old` and `new` (the
/// first [`MAX_LEAF_CHANGES`] of them) and how many in all.
pub(super) fn leaf_changes<M: Mapping>(old: &Walk<M>, new: &Walk<M>) -> (Vec<LeafChange>, u64) {
    let (a, b) = (&old.index, &new.index);
    let aligned = a.first == b.first
        && a.levels.len() == b.levels.len()
        && a.levels
            .iter()
            .zip(&b.levels)
            .all(|(x, y)| x.shift == y.shift && x.fan == y.fan);
    let mut changed = Vec::new();
    let count = if aligned {
        let mut d = Pairs {
            old,
            new,
            counts: vec![HashMap::new(); a.levels.len()],
            bottom: HashMap::new(),
        };
        let count = d.count(0, 0, 0);
        d.emit(0, 0, 0, 0, &mut changed);
        count
    } else {
        by_runs(old, new, &mut changed)
    };
    (changed, count)
}

fn change<M: Mapping>(old: &Walk<M>, new: &Walk<M>, leaf: u64) -> LeafChange {
    LeafChange {
        leaf,
        first_pfn: Pfn(leaf * new.fpp),
        before: old.leaf_frame(leaf).map(Mfn),
        after: new.leaf_frame(leaf).map(Mfn),
    }
}

/// Both views have the same index shape: walk the two indexes together,
/// each distinct pair of rows once.
struct Pairs<'a, M> {
    old: &'a Walk<M>,
    new: &'a Walk<M>,
    /// Per level: (old row, new row) -> changed positions below.
    counts: Vec<HashMap<(u32, u32), u64>>,
    /// (old bottom row, new bottom row) -> entries whose frame differs.
    bottom: HashMap<(u32, u32), Vec<u32>>,
}

impl<M: Mapping> Pairs<'_, M> {
    /// Child of `row` at entry `i` of `level` in `w`'s index.
    fn child(w: &Walk<M>, level: usize, row: u32, i: usize) -> u32 {
        let Some(l) = w.index.levels.get(level) else {
            return UNUSED;
        };
        if row == UNUSED {
            return UNUSED;
        }
        l.cells
            .get(row as usize * l.fan as usize + i)
            .copied()
            .unwrap_or(UNUSED)
    }

    fn fan(&self, level: usize) -> usize {
        self.old
            .index
            .levels
            .get(level)
            .map_or(0, |l| l.fan as usize)
    }

    fn frame(w: &Walk<M>, slot: u32) -> Option<u64> {
        cell(slot).and_then(|s| w.leaf_mfns.get(s).copied())
    }

    fn bottom_diff(&mut self, ra: u32, rb: u32) -> &[u32] {
        let level = self.old.index.levels.len() - 1;
        let fan = self.fan(level);
        let (old, new) = (self.old, self.new);
        self.bottom.entry((ra, rb)).or_insert_with(|| {
            (0..fan)
                .filter(|&i| {
                    count_step();
                    Self::frame(old, Self::child(old, level, ra, i))
                        != Self::frame(new, Self::child(new, level, rb, i))
                })
                .map(|i| i as u32)
                .collect()
        })
    }

    /// Changed positions under rows `ra` (old) and `rb` (new) of `level`.
    fn count(&mut self, level: usize, ra: u32, rb: u32) -> u64 {
        if ra == UNUSED && rb == UNUSED {
            return 0;
        }
        if level + 1 == self.old.index.levels.len() {
            return self.bottom_diff(ra, rb).len() as u64;
        }
        if let Some(&c) = self.counts[level].get(&(ra, rb)) {
            return c;
        }
        let mut c = 0;
        for i in 0..self.fan(level) {
            count_step();
            let (ca, cb) = (
                Self::child(self.old, level, ra, i),
                Self::child(self.new, level, rb, i),
            );
            c += self.count(level + 1, ca, cb);
        }
        self.counts[level].insert((ra, rb), c);
        c
    }

    /// Lists the changed positions under the rows, from bottom-level
    /// position `p`, until `out` is full.
    fn emit(&mut self, level: usize, ra: u32, rb: u32, p: u64, out: &mut Vec<LeafChange>) {
        if out.len() == MAX_LEAF_CHANGES || self.count(level, ra, rb) == 0 {
            return;
        }
        let first = self.old.index.first;
        if level + 1 == self.old.index.levels.len() {
            let (old, new) = (self.old, self.new);
            for &t in self.bottom_diff(ra, rb).to_vec().iter() {
                if out.len() == MAX_LEAF_CHANGES {
                    return;
                }
                count_step();
                out.push(change(old, new, p + t as u64 - first));
            }
            return;
        }
        let shift = self.old.index.levels[level].shift;
        for i in 0..self.fan(level) {
            if out.len() == MAX_LEAF_CHANGES {
                return;
            }
            count_step();
            let (ca, cb) = (
                Self::child(self.old, level, ra, i),
                Self::child(self.new, level, rb, i),
            );
            self.emit(level + 1, ca, cb, p + ((i as u64) << shift), out);
        }
    }
}

/// Views of different shapes (the list moved, or list against tree):
/// one step per run of bottom rows, each distinct pair of runs compared
/// once.
fn by_runs<M: Mapping>(old: &Walk<M>, new: &Walk<M>, out: &mut Vec<LeafChange>) -> u64 {
    let n = old.nleaves.max(new.nleaves);
    let mut memo: HashMap<(RunAt, RunAt, u64), Vec<u32>> = HashMap::new();
    let mut count = 0u64;
    let frame = |w: &Walk<M>, c: Option<&[u32]>, t: usize| {
        c.and_then(|c| cell(c[t]))
            .and_then(|s| w.leaf_mfns.get(s).copied())
    };
    joint_runs(
        &old.index,
        &new.index,
        n,
        [old.nleaves, new.nleaves],
        false,
        |k, len, ra, rb| {
            let offsets = memo.entry((ra, rb, len)).or_insert_with(|| {
                let ca = run_cells(&old.index, ra, len);
                let cb = run_cells(&new.index, rb, len);
                (0..len as usize)
                    .filter(|&t| frame(old, ca, t) != frame(new, cb, t))
                    .map(|t| t as u32)
                    .collect()
            });
            count += offsets.len() as u64;
            for &t in offsets.iter() {
                if out.len() == MAX_LEAF_CHANGES {
                    break;
                }
                out.push(change(old, new, k + t as u64));
            }
        },
    );
    count
}
