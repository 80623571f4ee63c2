// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The two walks: the linear list through the guest's page tables, and
//! the 3-level tree. Both check every guest value they use (docs/design.md
//! section 4) and map each level with one batched call.

use super::{Ctx, Source};
use crate::backend::{Backend, Mapping, Mem};
use crate::error::Error;
use crate::shared_info::ArchSharedInfo;
use crate::types::{GuestWidth, Mfn, PAGE_SIZE};
use std::collections::HashMap;

/// Largest `max_pfn` accepted (rule 2): 2^40 entries, 4 PiB of guest.
pub const MAX_PFN_BOUND: u64 = 1 << 40;
/// Frame bits of a page-table entry (and of a 64-bit cr3).
const FRAME_MASK: u64 = 0x000f_ffff_ffff_f000;
/// Present bit.
const PRESENT: u64 = 1;
/// Superpage bit.
const PSE: u64 = 1 << 7;
/// Xen's hole in a 64-bit guest's address space.
const XEN_HOLE: (u64, u64) = (0xffff_8000_0000_0000, 0xffff_87ff_ffff_ffff);
/// A 32-bit PV guest's list must end below Xen's area.
const LIMIT_32: u64 = 0xf580_0000;
/// Entries per page-table page.
const PTES: u64 = 512;
/// Marks a slot of the index that no leaf position uses.
pub(crate) const UNUSED: u32 = u32::MAX;

/// The width-sized all-ones value: an invalid entry, a dropped tree.
pub fn all_ones(width: GuestWidth) -> u64 {
    match width {
        GuestWidth::W64 => u64::MAX,
        GuestWidth::W32 => u32::MAX as u64,
    }
}

fn short_mapping(len: usize) -> Error {
    Error::Unexpected {
        what: "length of a mapping (shorter than the frames asked for)",
        value: len as u64,
    }
}

/// One level of a [`LeafIndex`]: rows of `fan` cells, one row per
/// distinct node (a page-table page, or tree page, with the range of it
/// that is used). A cell names a row of the next level, or at the bottom
/// a slot of the leaf mapping.
#[derive(Debug, Clone)]
pub(crate) struct IndexLevel {
    /// Bits of a position below this level.
    pub shift: u32,
    /// Cells per row (a power of two).
    pub fan: u64,
    /// Row * fan + entry -> next row (or leaf slot); [`UNUSED`] outside
    /// the range the guest's structure covers.
    pub cells: Vec<u32>,
}

impl IndexLevel {
    /// Rows of this level.
    pub fn rows(&self) -> usize {
        self.cells.len() / self.fan as usize
    }
}

/// Where each leaf position's page is: the guest's structure above the
/// leaves, with every distinct node read and stored once, so memory and
/// work follow the distinct pages, not the leaf positions.
#[derive(Debug, Clone)]
pub(crate) struct LeafIndex {
    /// Position (in bottom-level entries) of leaf 0.
    pub first: u64,
    /// Levels, top first; the top has one row.
    pub levels: Vec<IndexLevel>,
}

/// The cell value of a used entry, if used.
pub(crate) fn cell(v: u32) -> Option<usize> {
    (v != UNUSED).then_some(v as usize)
}

impl LeafIndex {
    /// Bottom row and entry of leaf position `k`.
    pub fn bottom(&self, k: u64) -> Option<(usize, usize)> {
        let p = self.first.checked_add(k)?;
        let (top, rest) = self.levels.split_first()?;
        if p >> top.shift >= top.fan {
            return None;
        }
        let mut row = 0usize;
        let mut level = top;
        for next in rest {
            let i = ((p >> level.shift) & (level.fan - 1)) as usize;
            row = cell(*level.cells.get(row * level.fan as usize + i)?)?;
            level = next;
        }
        Some((row, (p & (level.fan - 1)) as usize))
    }

    /// The bottom level.
    pub fn leaf_level(&self) -> Option<&IndexLevel> {
        self.levels.last()
    }

    /// Slot of leaf position `k` in the leaf mapping.
    pub fn slot(&self, k: u64) -> Option<usize> {
        let (row, i) = self.bottom(k)?;
        let b = self.leaf_level()?;
        cell(*b.cells.get(row * b.fan as usize + i)?)
    }

    /// Leaf positions from `k` on that stay in the bottom row of `k`.
    pub fn run_from(&self, k: u64) -> u64 {
        let fan = self.leaf_level().map_or(1, |b| b.fan);
        fan - (self.first.wrapping_add(k) & (fan - 1))
    }
}

/// A walked p2m: the distinct leaf pages, mapped once each, and the index.
#[derive(Debug)]
pub(crate) struct Walk<M> {
    pub source: Source,
    pub width: GuestWidth,
    pub max_pfn: u64,
    /// Entries per leaf page.
    pub fpp: u64,
    /// Leaf positions (`ceil(max_pfn / fpp)`).
    pub nleaves: u64,
    pub leaves: M,
    /// Slot -> leaf mfn.
    pub leaf_mfns: Vec<u64>,
    pub index: LeafIndex,
    /// Map calls of this walk.
    pub map_calls: u32,
}

impl<M: Mapping> Walk<M> {
    /// Raw entry of `pfn` (caller checked `pfn < max_pfn`).
    pub fn raw(&self, pfn: u64) -> Option<u64> {
        self.raw_in(self.leaves.mem(), pfn)
    }

    /// Raw entry of `pfn` from an already taken view of the leaves.
    pub fn raw_in(&self, leaves: Mem<'_>, pfn: u64) -> Option<u64> {
        let slot = self.index.slot(pfn / self.fpp)?;
        let w = self.width.bytes();
        leaves.word(slot * PAGE_SIZE + (pfn % self.fpp) as usize * w, w)
    }

    /// Mfn of leaf position `k`.
    pub fn leaf_frame(&self, k: u64) -> Option<u64> {
        if k >= self.nleaves {
            return None;
        }
        self.leaf_mfns.get(self.index.slot(k)?).copied()
    }

    /// Entries used of leaf position `k` (the last one may be partial).
    pub fn used(&self, k: u64) -> u64 {
        (self.max_pfn - k * self.fpp).min(self.fpp)
    }
}

/// Rule 2: `max_pfn` in `1..=2^40`.
pub(super) fn check_max_pfn(max_pfn: u64) -> Result<(), Error> {
    if max_pfn == 0 || max_pfn > MAX_PFN_BOUND {
        return Err(Error::BadMaxPfn {
            value: max_pfn,
            bound: MAX_PFN_BOUND,
        });
    }
    Ok(())
}

/// Rule 3: decodes `p2m_cr3` (non-zero) per width and checks the frame.
pub(super) fn decode_cr3<B: Backend>(cx: &Ctx<'_, B>, cr3: u64) -> Result<u64, Error> {
    let dom = cx.dom;
    let mfn = match cx.width {
        GuestWidth::W64 => {
            let stray = cr3 & !FRAME_MASK;
            if stray != 0 {
                return Err(Error::P2mCr3StrayBits { dom, cr3, stray });
            }
            cr3 >> 12
        }
        GuestWidth::W32 => {
            let stray = cr3 & !0xffff_ffff;
            if stray != 0 {
                return Err(Error::P2mCr3StrayBits { dom, cr3, stray });
            }
            // Xen's "extended cr3" (xen_cr3_to_pfn): the top 12 bits of a
            // 32-bit mfn are folded into the low 12 bits.
            let c = cr3 as u32;
            c.rotate_right(12) as u64
        }
    };
    if mfn == 0 || mfn > cx.max_mfn {
        return Err(Error::P2mCr3Frame {
            dom,
            cr3,
            mfn: Mfn(mfn),
            max_mfn: Mfn(cx.max_mfn),
        });
    }
    Ok(mfn)
}

/// Rule 4: the list's virtual range. Returns (first byte, last byte).
pub(super) fn check_vaddr<B: Backend>(
    cx: &Ctx<'_, B>,
    vaddr: u64,
    max_pfn: u64,
) -> Result<(u64, u64), Error> {
    let dom = cx.dom;
    if vaddr & (PAGE_SIZE as u64 - 1) != 0 {
        return Err(Error::P2mVaddrUnaligned { dom, vaddr });
    }
    // max_pfn <= 2^40 was checked, so this product cannot overflow.
    let bytes = max_pfn * cx.width.bytes() as u64;
    let len = bytes.div_ceil(PAGE_SIZE as u64) * PAGE_SIZE as u64;
    let end = vaddr.checked_add(len - 1).ok_or(Error::P2mListOverflow {
        dom,
        vaddr,
        max_pfn,
    })?;
    match cx.width {
        GuestWidth::W64 => {
            let half = |x: u64| x >> 47;
            let canonical = |x: u64| half(x) == 0 || half(x) == 0x1_ffff;
            if !canonical(vaddr) || !canonical(end) || half(vaddr) != half(end) {
                return Err(Error::P2mVaddrNonCanonical { dom, vaddr, end });
            }
            if vaddr <= XEN_HOLE.1 && end >= XEN_HOLE.0 {
                return Err(Error::P2mVaddrXenHole { dom, vaddr, end });
            }
        }
        GuestWidth::W32 => {
            if end >= LIMIT_32 {
                return Err(Error::P2mVaddrAbove32 {
                    dom,
                    vaddr,
                    end,
                    limit: LIMIT_32,
                });
            }
        }
    }
    Ok((vaddr, end))
}

/// Rule 5: one page-table entry on the way to the list.
fn check_pte<B: Backend>(cx: &Ctx<'_, B>, level: u32, vaddr: u64, pte: u64) -> Result<u64, Error> {
    let (dom, level8) = (cx.dom, level as u8);
    if pte & PRESENT == 0 {
        return Err(Error::PteNotPresent {
            dom,
            level: level8,
            vaddr,
            pte,
        });
    }
    if level >= 2 && pte & PSE != 0 {
        return Err(Error::PteSuperpage {
            dom,
            level: level8,
            vaddr,
            pte,
        });
    }
    let mfn = (pte & FRAME_MASK) >> 12;
    if mfn == 0 || mfn > cx.max_mfn {
        return Err(Error::PteFrame {
            dom,
            level: level8,
            vaddr,
            pte,
            mfn: Mfn(mfn),
            max_mfn: Mfn(cx.max_mfn),
        });
    }
    Ok(mfn)
}

// Steps of the loops whose count must follow the distinct pages (the
// work-bound tests read it; nothing is counted outside tests).
#[cfg(test)]
thread_local! {
    pub(crate) static STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts one step of such a loop (tests only).
#[inline(always)]
pub(crate) fn count_step() {
    #[cfg(test)]
    STEPS.with(|c| c.set(c.get() + 1));
}

/// Numbers `frame` in `distinct`, once.
fn intern(seen: &mut HashMap<u64, u32>, distinct: &mut Vec<u64>, frame: u64) -> u32 {
    *seen.entry(frame).or_insert_with(|| {
        distinct.push(frame);
        (distinct.len() - 1) as u32
    })
}

/// Walks the linear list described by `a` (whose `p2m_cr3` is non-zero):
/// one map per page-table level, one for the leaves.
pub(super) fn walk_list<B: Backend>(
    cx: &mut Ctx<'_, B>,
    a: &ArchSharedInfo,
) -> Result<Walk<B::Map>, Error> {
    check_max_pfn(a.max_pfn)?;
    let root = decode_cr3(cx, a.p2m_cr3)?;
    let (vaddr, end) = check_vaddr(cx, a.p2m_vaddr, a.max_pfn)?;
    let w = cx.width.bytes();
    let fpp = (PAGE_SIZE / w) as u64;
    let levels: u32 = if w == 8 { 4 } else { 3 };
    // Page-table indices use the low 48 (or 32) bits; errors name the
    // address as the guest sees it.
    let mask: u64 = if w == 8 { (1 << 48) - 1 } else { 0xffff_ffff };
    let (va, ve) = (vaddr & mask, end & mask);
    let full = |x: u64| {
        if w == 8 && x & (1 << 47) != 0 {
            x | !mask
        } else {
            x
        }
    };
    let nleaves = a.max_pfn.div_ceil(fpp);

    // Level by level from the root: one row per distinct node, a node
    // being a table with the edge of the range it lies on (the first and
    // last path use part of their table; every other node all of it).
    let mut tables = cx.map_guest(&[root])?;
    let mut calls = 1u32;
    let mut nodes: Vec<(u32, bool, bool)> = vec![(0, true, true)];
    // Global entry index (at the node's level) of each node's entry 0,
    // where the node was first met: it names addresses in errors.
    let mut bases: Vec<u64> = vec![0];
    let mut index_levels = Vec::with_capacity(levels as usize);
    let leaf_mfns = loop {
        let level = levels - index_levels.len() as u32;
        let shift = 12 + 9 * (level - 1);
        let (lo, hi) = ((va >> shift) % PTES, (ve >> shift) % PTES);
        let mem = tables.mem();
        let mut seen = HashMap::new();
        let mut distinct = Vec::new();
        let mut child_ids: HashMap<(u32, bool, bool), u32> = HashMap::new();
        let (mut child_nodes, mut child_bases) = (Vec::new(), Vec::new());
        let mut cells = vec![UNUSED; nodes.len() * PTES as usize];
        for (r, &(t, left, right)) in nodes.iter().enumerate() {
            let i_lo = if left { lo } else { 0 };
            let i_hi = if right { hi } else { PTES - 1 };
            for i in i_lo..=i_hi {
                count_step();
                let j = bases[r] + i;
                let pte = mem
                    .u64_at(t as usize * PAGE_SIZE + i as usize * 8)
                    .ok_or(short_mapping(mem.len()))?;
                let mfn = check_pte(cx, level, full(j << shift), pte)?;
                let s = intern(&mut seen, &mut distinct, mfn);
                let at = r * PTES as usize + i as usize;
                if level == 1 {
                    cells[at] = s;
                    continue;
                }
                let key = (s, left && i == i_lo, right && i == i_hi);
                cells[at] = *child_ids.entry(key).or_insert_with(|| {
                    child_nodes.push(key);
                    child_bases.push(j * PTES);
                    (child_nodes.len() - 1) as u32
                });
            }
        }
        index_levels.push(IndexLevel {
            shift: 9 * (level - 1),
            fan: PTES,
            cells,
        });
        if level == 1 {
            break distinct;
        }
        tables = cx.map_guest(&distinct)?;
        calls += 1;
        nodes = child_nodes;
        bases = child_bases;
    };
    drop(tables);
    let leaves = cx.map_guest(&leaf_mfns)?;
    calls += 1;
    if leaves.mem().len() < leaf_mfns.len() * PAGE_SIZE {
        return Err(short_mapping(leaves.mem().len()));
    }
    Ok(Walk {
        source: Source::List,
        width: cx.width,
        max_pfn: a.max_pfn,
        fpp,
        nleaves,
        leaves,
        leaf_mfns,
        index: LeafIndex {
            first: va >> 12,
            levels: index_levels,
        },
        map_calls: calls,
    })
}

/// Entries a tree of `width` can describe (one root page).
pub fn tree_capacity(width: GuestWidth) -> u64 {
    let fpp = (PAGE_SIZE / width.bytes()) as u64;
    fpp * fpp * fpp
}

/// Walks the 3-level tree rooted at `a.pfn_to_mfn_frame_list_list`
/// (rule 8): root, mid pages, leaves, one map each.
pub(super) fn walk_tree<B: Backend>(
    cx: &mut Ctx<'_, B>,
    a: &ArchSharedInfo,
) -> Result<Walk<B::Map>, Error> {
    check_max_pfn(a.max_pfn)?;
    let dom = cx.dom;
    let w = cx.width.bytes();
    let fpp = (PAGE_SIZE / w) as u64;
    let root = a.pfn_to_mfn_frame_list_list;
    let list = a.p2m_cr3 != 0;
    if root == 0 {
        return Err(Error::TreeNotSetUp { dom, list });
    }
    if root == all_ones(cx.width) {
        return Err(Error::TreeDropped { dom, list });
    }
    let capacity = tree_capacity(cx.width);
    if a.max_pfn > capacity {
        return Err(Error::TreeTooSmall {
            dom,
            max_pfn: a.max_pfn,
            capacity,
        });
    }
    if root > cx.max_mfn {
        return Err(Error::TreeRoot {
            dom,
            root,
            max_mfn: Mfn(cx.max_mfn),
        });
    }
    let max_mfn = cx.max_mfn;
    let bad = |level: &'static str, index: u64, value: u64| Error::TreeEntry {
        dom,
        level,
        index,
        value,
        max_mfn: Mfn(max_mfn),
    };
    let nleaves = a.max_pfn.div_ceil(fpp);
    let nmids = nleaves.div_ceil(fpp);

    let top = cx.map_guest(&[root])?;
    let tb = top.mem();
    let mut seen = HashMap::new();
    let mut mids = Vec::new();
    // Mid nodes: the page, and whether it is the last (partly used) one.
    let mut mid_ids: HashMap<(u32, bool), u32> = HashMap::new();
    let mut mid_nodes: Vec<(u32, bool, u64)> = Vec::new();
    let mut top_cells = vec![UNUSED; fpp as usize];
    for t in 0..nmids {
        count_step();
        let v = tb.word(t as usize * w, w).ok_or(short_mapping(tb.len()))?;
        if v == 0 || v > max_mfn {
            return Err(bad("root", t, v));
        }
        let key = (intern(&mut seen, &mut mids, v), t == nmids - 1);
        top_cells[t as usize] = *mid_ids.entry(key).or_insert_with(|| {
            mid_nodes.push((key.0, key.1, t));
            (mid_nodes.len() - 1) as u32
        });
    }
    drop(top);
    let midmap = cx.map_guest(&mids)?;
    let mb = midmap.mem();
    let mut seen = HashMap::new();
    let mut leaf_mfns = Vec::new();
    let mut mid_cells = vec![UNUSED; mid_nodes.len() * fpp as usize];
    let last_used = nleaves - (nmids - 1) * fpp;
    for (r, &(s, last, t)) in mid_nodes.iter().enumerate() {
        let used = if last { last_used } else { fpp };
        for i in 0..used {
            count_step();
            let v = mb
                .word(s as usize * PAGE_SIZE + i as usize * w, w)
                .ok_or(short_mapping(mb.len()))?;
            if v == 0 || v > max_mfn {
                return Err(bad("mid", t * fpp + i, v));
            }
            mid_cells[r * fpp as usize + i as usize] = intern(&mut seen, &mut leaf_mfns, v);
        }
    }
    drop(midmap);
    let leaves = cx.map_guest(&leaf_mfns)?;
    if leaves.mem().len() < leaf_mfns.len() * PAGE_SIZE {
        return Err(short_mapping(leaves.mem().len()));
    }
    let bits = fpp.trailing_zeros();
    Ok(Walk {
        source: Source::Tree,
        width: cx.width,
        max_pfn: a.max_pfn,
        fpp,
        nleaves,
        leaves,
        leaf_mfns,
        index: LeafIndex {
            first: 0,
            levels: vec![
                IndexLevel {
                    shift: bits,
                    fan: fpp,
                    cells: top_cells,
                },
                IndexLevel {
                    shift: 0,
                    fan: fpp,
                    cells: mid_cells,
                },
            ],
        },
        map_calls: 3,
    })
}
