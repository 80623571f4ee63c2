// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The two walks: the linear list through the guest's page tables, and
//! the 3-level tree. Both check every guest value they use (docs/design.md
//! section 4) and map each level with one batched call.

use super::{Ctx, Source};
use crate::backend::{Backend, Mapping};
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
const UNUSED: u32 = u32::MAX;

/// The width-sized all-ones value: an invalid entry, a dropped tree.
pub fn all_ones(width: GuestWidth) -> u64 {
    match width {
        GuestWidth::W64 => u64::MAX,
        GuestWidth::W32 => u32::MAX as u64,
    }
}

/// Reads a little-endian word of `w` bytes at `off`.
pub(super) fn word(bytes: &[u8], off: usize, w: usize) -> Option<u64> {
    let b = bytes.get(off..off.checked_add(w)?)?;
    Some(match w {
        8 => u64::from_le_bytes(b.try_into().ok()?),
        4 => u32::from_le_bytes(b.try_into().ok()?) as u64,
        _ => return None,
    })
}

fn short_mapping(len: usize) -> Error {
    Error::Unexpected {
        what: "length of a mapping (shorter than the frames asked for)",
        value: len as u64,
    }
}

/// Where each leaf position's page is: leaf positions are grouped by the
/// page that names them (a level-1 table or a tree mid page), and pages
/// used with the same range share one row of slots.
#[derive(Debug, Clone)]
pub(crate) struct LeafIndex {
    /// Position of leaf 0 inside group 0.
    first: u64,
    /// Leaf positions per group.
    per_group: u64,
    /// Group -> row.
    groups: Vec<u32>,
    /// Row * per_group + position -> slot in the leaf mapping.
    rows: Vec<u32>,
}

impl LeafIndex {
    pub fn slot(&self, k: u64) -> Option<usize> {
        let pos = self.first.checked_add(k)?;
        let row = *self
            .groups
            .get(usize::try_from(pos / self.per_group).ok()?)? as usize;
        let at = row.checked_mul(self.per_group as usize)? + (pos % self.per_group) as usize;
        match *self.rows.get(at)? {
            UNUSED => None,
            s => Some(s as usize),
        }
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
        self.raw_in(self.leaves.bytes(), pfn)
    }

    /// Raw entry of `pfn` from an already borrowed `bytes()`.
    pub fn raw_in(&self, bytes: &[u8], pfn: u64) -> Option<u64> {
        let slot = self.index.slot(pfn / self.fpp)?;
        let w = self.width.bytes();
        word(bytes, slot * PAGE_SIZE + (pfn % self.fpp) as usize * w, w)
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
    let mut calls = 0u32;

    let mut tables = cx.map(&[root])?;
    calls += 1;
    // Table slot of each position at the current level, first position.
    let mut slots: Vec<u32> = vec![0];
    let mut first: u64 = 0;
    for level in (2..=levels).rev() {
        let shift = 12 + 9 * (level - 1);
        let (lo, hi) = (va >> shift, ve >> shift);
        let bytes = tables.bytes();
        let mut seen = HashMap::new();
        let mut distinct = Vec::new();
        let mut next = Vec::with_capacity((hi - lo + 1) as usize);
        for j in lo..=hi {
            let t = *slots
                .get(((j / PTES) - first) as usize)
                .ok_or(short_mapping(bytes.len()))? as usize;
            let pte = word(bytes, t * PAGE_SIZE + (j % PTES) as usize * 8, 8)
                .ok_or(short_mapping(bytes.len()))?;
            let mfn = check_pte(cx, level, full(j << shift), pte)?;
            next.push(intern(&mut seen, &mut distinct, mfn));
        }
        tables = cx.map(&distinct)?;
        calls += 1;
        slots = next;
        first = lo;
    }

    // Level 1: the entries that name leaves, one row per distinct
    // (table, used range).
    let (lo, hi) = (va >> 12, ve >> 12);
    let nleaves = a.max_pfn.div_ceil(fpp);
    let bytes = tables.bytes();
    let mut rows_of: HashMap<(u32, u64, u64), u32> = HashMap::new();
    let mut rows: Vec<u32> = Vec::new();
    let mut groups = Vec::with_capacity(slots.len());
    let mut seen = HashMap::new();
    let mut leaf_mfns = Vec::new();
    let last = slots.len() - 1;
    for (p, &t) in slots.iter().enumerate() {
        let i_lo = if p == 0 { lo % PTES } else { 0 };
        let i_hi = if p == last { hi % PTES } else { PTES - 1 };
        if let Some(&r) = rows_of.get(&(t, i_lo, i_hi)) {
            groups.push(r);
            continue;
        }
        let r = (rows.len() as u64 / PTES) as u32;
        rows.resize(rows.len() + PTES as usize, UNUSED);
        for i in i_lo..=i_hi {
            let j = (first + p as u64) * PTES + i;
            let pte = word(bytes, t as usize * PAGE_SIZE + i as usize * 8, 8)
                .ok_or(short_mapping(bytes.len()))?;
            let mfn = check_pte(cx, 1, full(j << 12), pte)?;
            rows[r as usize * PTES as usize + i as usize] = intern(&mut seen, &mut leaf_mfns, mfn);
        }
        rows_of.insert((t, i_lo, i_hi), r);
        groups.push(r);
    }
    drop(tables);
    let leaves = cx.map(&leaf_mfns)?;
    calls += 1;
    if leaves.bytes().len() < leaf_mfns.len() * PAGE_SIZE {
        return Err(short_mapping(leaves.bytes().len()));
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
            first: lo % PTES,
            per_group: PTES,
            groups,
            rows,
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

    let top = cx.map(&[root])?;
    let tb = top.bytes();
    let mut seen = HashMap::new();
    let mut mids = Vec::new();
    let mut mid_slot = Vec::with_capacity(nmids as usize);
    for t in 0..nmids {
        let v = word(tb, t as usize * w, w).ok_or(short_mapping(tb.len()))?;
        if v == 0 || v > max_mfn {
            return Err(bad("root", t, v));
        }
        mid_slot.push(intern(&mut seen, &mut mids, v));
    }
    drop(top);
    let midmap = cx.map(&mids)?;
    let mb = midmap.bytes();
    let mut rows_of: HashMap<(u32, u64), u32> = HashMap::new();
    let mut rows: Vec<u32> = Vec::new();
    let mut groups = Vec::with_capacity(nmids as usize);
    let mut seen = HashMap::new();
    let mut leaf_mfns = Vec::new();
    for (t, &s) in mid_slot.iter().enumerate() {
        let used = (nleaves - t as u64 * fpp).min(fpp);
        if let Some(&r) = rows_of.get(&(s, used)) {
            groups.push(r);
            continue;
        }
        let r = (rows.len() as u64 / fpp) as u32;
        rows.resize(rows.len() + fpp as usize, UNUSED);
        for i in 0..used {
            let v = word(mb, s as usize * PAGE_SIZE + i as usize * w, w)
                .ok_or(short_mapping(mb.len()))?;
            if v == 0 || v > max_mfn {
                return Err(bad("mid", t as u64 * fpp + i, v));
            }
            rows[(r as u64 * fpp + i) as usize] = intern(&mut seen, &mut leaf_mfns, v);
        }
        rows_of.insert((s, used), r);
        groups.push(r);
    }
    drop(midmap);
    let leaves = cx.map(&leaf_mfns)?;
    if leaves.bytes().len() < leaf_mfns.len() * PAGE_SIZE {
        return Err(short_mapping(leaves.bytes().len()));
    }
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
            per_group: fpp,
            groups,
            rows,
        },
        map_calls: 3,
    })
}
