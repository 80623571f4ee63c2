// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Simulated PV guests: how one is built (the way Linux builds its p2m
//! list and tree) and how it changes its p2m at run time.

use super::memory::{put_word, Memory, Page};
use super::{SimError, SimHost, State};
use crate::shared_info::ArchSharedInfo;
use crate::types::{DomId, GuestWidth, Mfn, Pfn, PAGE_SIZE};
use std::collections::BTreeMap;
use std::ops::Range;

/// Present, writable, accessed, dirty: a page-table page entry.
const TABLE: u64 = 0x63;
/// A PAE page-directory-pointer entry has only the present bit.
const PAE_L3: u64 = 0x1;
/// No-execute.
const NX: u64 = 1 << 63;
/// A writable kernel data page (present, RW, accessed, dirty, global).
const LEAF_RW: u64 = 0x163 | NX;
/// A read-only kernel data page (the shared missing/identity pages).
const LEAF_RO: u64 = 0x161 | NX;
/// Frame bits of a page-table entry.
const FRAME_MASK: u64 = 0x000f_ffff_ffff_f000;
/// Owner of the frames that foreign entries point at.
const DONOR: u16 = 0x7fef;

/// Whether and how a guest keeps the 3-level p2m tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeMode {
    /// Build it and publish its root (what dom0 does).
    Keep,
    /// Publish `~0` (what a domU does when the toolstack understands the
    /// list).
    Dropped,
    /// Publish 0 (a guest that never set one up).
    NotSetUp,
}

/// Description of a simulated PV guest.
#[derive(Clone, Debug)]
pub struct GuestSpec {
    /// Its domain id (0 for a dom0 whose own p2m is read).
    pub domid: DomId,
    /// Guest width.
    pub width: GuestWidth,
    /// Entries of the p2m, as published in `shared_info.arch.max_pfn`.
    pub max_pfn: u64,
    /// Pfn ranges backed by RAM (each gets its own mfn).
    pub ram: Vec<Range<u64>>,
    /// Pfn ranges mapped 1:1 (IDENTITY entries, or the shared identity
    /// page for whole leaves).
    pub identity: Vec<Range<u64>>,
    /// Pfn ranges holding FOREIGN entries (grant-mapped frames of another
    /// domain).
    pub foreign: Vec<Range<u64>>,
    /// The tree.
    pub tree: TreeMode,
    /// Publish `p2m_cr3`/`p2m_vaddr` (false: an old guest, tree only).
    pub publish_list: bool,
    /// Virtual address of the list; default 0xffffc90000000000 (64-bit)
    /// or 0xd0000000 (32-bit). Must be page aligned; when it is not
    /// aligned to a mid page's worth of list, no page-table page is shared.
    pub vaddr: Option<u64>,
    /// An HVM guest (getdomaininfo says so; it has no PV p2m to read).
    pub hvm: bool,
    /// Fill page-table slots outside the list with unrelated entries
    /// (present mappings, junk), as a real kernel's tables have.
    pub noise: bool,
}

impl GuestSpec {
    /// A guest with all of `0..max_pfn` in RAM, the list published, the
    /// tree kept when it can describe the guest (dropped otherwise).
    pub fn new(domid: DomId, width: GuestWidth, max_pfn: u64) -> GuestSpec {
        let fits = match width {
            GuestWidth::W64 => max_pfn <= 1 << 27,
            GuestWidth::W32 => max_pfn <= 1 << 30,
        };
        GuestSpec {
            domid,
            width,
            max_pfn,
            ram: std::iter::once(0..max_pfn).collect(),
            identity: Vec::new(),
            foreign: Vec::new(),
            tree: if fits {
                TreeMode::Keep
            } else {
                TreeMode::Dropped
            },
            publish_list: true,
            vaddr: None,
            hvm: false,
            noise: true,
        }
    }

    /// Sets the RAM ranges.
    pub fn ram(mut self, ram: impl IntoIterator<Item = Range<u64>>) -> Self {
        self.ram = ram.into_iter().collect();
        self
    }

    /// Sets the identity ranges.
    pub fn identity(mut self, identity: impl IntoIterator<Item = Range<u64>>) -> Self {
        self.identity = identity.into_iter().collect();
        self
    }

    /// Sets the foreign ranges.
    pub fn foreign(mut self, foreign: impl IntoIterator<Item = Range<u64>>) -> Self {
        self.foreign = foreign.into_iter().collect();
        self
    }

    /// Sets the tree mode.
    pub fn tree(mut self, tree: TreeMode) -> Self {
        self.tree = tree;
        self
    }

    /// Publishes the list or not.
    pub fn publish_list(mut self, on: bool) -> Self {
        self.publish_list = on;
        self
    }

    /// Sets the list's virtual address.
    pub fn vaddr(mut self, vaddr: u64) -> Self {
        self.vaddr = Some(vaddr);
        self
    }

    /// Makes it an HVM guest.
    pub fn hvm(mut self, on: bool) -> Self {
        self.hvm = on;
        self
    }
}

/// Where a simulated guest's p2m structures live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListLayout {
    /// Root page table (what `p2m_cr3` names).
    pub root: Mfn,
    /// Virtual address of entry 0.
    pub vaddr: u64,
    /// Entries the list's mappings cover (max_pfn rounded up to a whole
    /// mid page, as Linux sizes its virtual area).
    pub capacity: u64,
    /// Page-table levels (4 or 3).
    pub levels: u32,
    /// The shared page of `~0` entries.
    pub missing_leaf: Mfn,
    /// The shared identity page (also `~0` entries, as in Linux).
    pub identity_leaf: Mfn,
    /// The shared level-1 table whose entries all map `missing_leaf`.
    pub missing_l1: Mfn,
    /// The shared level-1 table whose entries all map `identity_leaf`.
    pub identity_l1: Mfn,
    /// Tree root page, if the guest keeps a tree.
    pub tree_root: Option<Mfn>,
    /// The tree's shared mid page whose entries all name `missing_leaf`.
    pub tree_mid_missing: Option<Mfn>,
}

/// Per-width constants.
#[derive(Clone, Copy, Debug)]
struct Geo {
    w: usize,
    fpp: u64,
    levels: u32,
}

impl Geo {
    fn new(width: GuestWidth) -> Geo {
        let w = width.bytes();
        Geo {
            w,
            fpp: (PAGE_SIZE / w) as u64,
            levels: if w == 8 { 4 } else { 3 },
        }
    }
    fn mid_pfns(self) -> u64 {
        self.fpp * self.fpp
    }
    fn ones(self) -> u64 {
        if self.w == 8 {
            u64::MAX
        } else {
            u32::MAX as u64
        }
    }
    fn identity_bit(self) -> u64 {
        1 << (self.w * 8 - 2)
    }
    fn foreign_bit(self) -> u64 {
        1 << (self.w * 8 - 1)
    }
    fn table_flags(self, level: u32) -> u64 {
        if self.levels == 3 && level == 3 {
            PAE_L3
        } else {
            TABLE
        }
    }
}

fn index(va: u64, level: u32) -> u64 {
    (va >> (12 + 9 * (level - 1))) & 511
}

/// The simulation's record of one guest.
#[derive(Debug)]
pub(super) struct Guest {
    pub id: u16,
    pub width: GuestWidth,
    pub hvm: bool,
    pub address_bits: u32,
    pub shared_info: u64,
    pub tot_pages: u64,
    pub max_pages: u64,
    pub churn: bool,
    geo: Geo,
    layout: ListLayout,
    /// Tree pfns covered (0 without a tree).
    tree_covered: u64,
    ram: BTreeMap<u64, u64>,
    identity: Vec<Range<u64>>,
    foreign: BTreeMap<u64, u64>,
    overrides: BTreeMap<u64, u64>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Missing,
    Identity,
    Mixed,
}

impl Guest {
    pub fn flags(&self) -> u32 {
        let mut f = xen_sys::XEN_DOMINF_running;
        if self.hvm {
            f |= xen_sys::XEN_DOMINF_hvm_guest | xen_sys::XEN_DOMINF_hap;
        }
        f
    }

    fn identity_overlap(&self, lo: u64, hi: u64) -> u64 {
        self.identity
            .iter()
            .map(|r| r.end.min(hi).saturating_sub(r.start.max(lo)))
            .sum()
    }

    fn kind(&self, lo: u64, hi: u64) -> Kind {
        if self.ram.range(lo..hi).next().is_some()
            || self.foreign.range(lo..hi).next().is_some()
            || self.overrides.range(lo..hi).next().is_some()
        {
            return Kind::Mixed;
        }
        match self.identity_overlap(lo, hi) {
            0 => Kind::Missing,
            n if n == hi - lo => Kind::Identity,
            _ => Kind::Mixed,
        }
    }

    /// The entry Linux keeps for `pfn` in a page of its own.
    fn logical(&self, pfn: u64) -> u64 {
        if let Some(&v) = self.overrides.get(&pfn) {
            return v;
        }
        if let Some(&m) = self.foreign.get(&pfn) {
            return m | self.geo.foreign_bit();
        }
        if let Some(&m) = self.ram.get(&pfn) {
            return m;
        }
        if self.identity.iter().any(|r| r.contains(&pfn)) {
            return pfn | self.geo.identity_bit();
        }
        self.geo.ones()
    }

    fn leaf_page(&self, k: u64) -> Page {
        let mut p = [0u8; PAGE_SIZE];
        for i in 0..self.geo.fpp {
            put_word(
                &mut p,
                i as usize * self.geo.w,
                self.geo.w,
                self.logical(k * self.geo.fpp + i),
            );
        }
        p
    }
}

fn table_page(entry: u64) -> Page {
    let mut p = [0u8; PAGE_SIZE];
    for i in 0..512 {
        put_word(&mut p, i * 8, 8, entry);
    }
    p
}

fn word_page(w: usize, entry: u64) -> Page {
    let mut p = [0u8; PAGE_SIZE];
    for i in 0..PAGE_SIZE / w {
        put_word(&mut p, i * w, w, entry);
    }
    p
}

/// Reads a guest's shared_info arch fields.
pub(super) fn read_arch(mem: &Memory, g: &Guest) -> Result<ArchSharedInfo, SimError> {
    let page = mem
        .page(g.shared_info)
        .ok_or(SimError::NoSuchFrame(g.shared_info))?;
    ArchSharedInfo::decode(&page[..], g.width).ok_or(SimError::BadConfig("shared_info layout"))
}

/// Writes a guest's shared_info arch fields.
pub(super) fn write_arch(mem: &mut Memory, g: &Guest, a: &ArchSharedInfo) -> Result<(), SimError> {
    let w = g.width;
    mem.write(g.shared_info, |p| a.encode(&mut p[..], w))
}

/// Adds `by` to a guest's `p2m_generation`.
pub(super) fn bump_generation(s: &mut State, dom: u16, by: u64) -> Result<u64, SimError> {
    let g = s
        .domains
        .get(&dom)
        .ok_or(SimError::NoSuchDomain(DomId(dom)))?;
    let mut a = read_arch(&s.mem, g)?;
    a.p2m_generation = a.p2m_generation.wrapping_add(by) & g.geo.ones();
    write_arch(&mut s.mem, g, &a)?;
    Ok(a.p2m_generation)
}

/// The page-table slot (table frame, byte offset) of `va` at `level`,
/// creating missing tables above it when `create` is set.
fn pte_slot(
    mem: &mut Memory,
    g: &Guest,
    va: u64,
    level: u32,
    create: bool,
) -> Result<(u64, usize), SimError> {
    let mut table = g.layout.root.0;
    for l in (level + 1..=g.geo.levels).rev() {
        let off = index(va, l) as usize * 8;
        let e = mem
            .read_word(table, off, 8)
            .ok_or(SimError::NoSuchFrame(table))?;
        if e & 1 == 0 {
            if !create {
                return Err(SimError::NotMapped(va));
            }
            let zero = mem.zero.clone();
            let new = mem.alloc(g.id, zero)?;
            mem.write_word(table, off, 8, (new << 12) | g.geo.table_flags(l))?;
            table = new;
        } else {
            table = (e & FRAME_MASK) >> 12;
        }
    }
    Ok((table, index(va, level) as usize * 8))
}

/// Like [`pte_slot`] without creating anything.
fn pte_slot_ro(mem: &Memory, g: &Guest, va: u64, level: u32) -> Result<(u64, usize), SimError> {
    let mut table = g.layout.root.0;
    for l in (level + 1..=g.geo.levels).rev() {
        let e = mem
            .read_word(table, index(va, l) as usize * 8, 8)
            .ok_or(SimError::NoSuchFrame(table))?;
        if e & 1 == 0 {
            return Err(SimError::NotMapped(va));
        }
        table = (e & FRAME_MASK) >> 12;
    }
    Ok((table, index(va, level) as usize * 8))
}

/// Virtual address of leaf `k`; leaves past the list's capacity are
/// refused (found by fuzzing: a pfn past a hostile `max_pfn` overflowed).
fn leaf_va(g: &Guest, k: u64) -> Result<u64, SimError> {
    if k >= g.layout.capacity / g.geo.fpp {
        return Err(SimError::BadConfig("leaf beyond the list"));
    }
    Ok(g.layout.vaddr + k * PAGE_SIZE as u64)
}

/// The frame the list maps for leaf `k`, as the guest's tables say.
fn leaf_frame(mem: &Memory, g: &Guest, k: u64) -> Result<u64, SimError> {
    let va = leaf_va(g, k)?;
    let (t, off) = pte_slot_ro(mem, g, va, 1)?;
    let e = mem.read_word(t, off, 8).ok_or(SimError::NoSuchFrame(t))?;
    if e & 1 == 0 {
        return Err(SimError::NotMapped(va));
    }
    Ok((e & FRAME_MASK) >> 12)
}

/// `ranges` sorted, without empty ones, overlapping ones merged: the
/// leaf classification counts identity pfns by summing overlaps, which
/// must not count a pfn twice (found by fuzzing: two overlapping ranges
/// made every leaf they share a page of its own).
fn merged(ranges: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut v: Vec<Range<u64>> = ranges.iter().filter(|r| r.start < r.end).cloned().collect();
    v.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::with_capacity(v.len());
    for r in v {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// Builds a guest into `s`.
fn build(s: &mut State, spec: &GuestSpec) -> Result<(), SimError> {
    let id = spec.domid.0;
    if s.domains.contains_key(&id) {
        return Err(SimError::DomainExists(spec.domid));
    }
    if id >= xen_sys::DOMID_FIRST_RESERVED as u16 || id == DONOR {
        return Err(SimError::BadConfig("reserved domain id"));
    }
    let geo = Geo::new(spec.width);
    if spec.max_pfn == 0 || spec.max_pfn > 1 << 40 {
        return Err(SimError::BadConfig("max_pfn must be in 1..=2^40"));
    }
    let all = spec.ram.iter().chain(&spec.identity).chain(&spec.foreign);
    if all.clone().any(|r| r.start > r.end || r.end > spec.max_pfn) {
        return Err(SimError::BadConfig("range beyond max_pfn"));
    }
    let capacity = spec.max_pfn.div_ceil(geo.mid_pfns()) * geo.mid_pfns();
    let list_bytes = capacity * geo.w as u64;
    let vaddr = spec.vaddr.unwrap_or(if geo.w == 8 {
        0xffff_c900_0000_0000
    } else {
        0xd000_0000
    });
    if vaddr & (PAGE_SIZE as u64 - 1) != 0 {
        return Err(SimError::BadConfig("vaddr not page aligned"));
    }
    let va_end = vaddr
        .checked_add(list_bytes)
        .ok_or(SimError::BadConfig("list wraps"))?;
    if geo.w == 4 && va_end > 1 << 32 {
        return Err(SimError::BadConfig("32-bit list beyond 4 GiB"));
    }
    let mem = &mut s.mem;
    let ones = mem.ones.clone();
    let zero = mem.zero.clone();
    let missing_leaf = mem.alloc(id, ones.clone())?;
    let identity_leaf = mem.alloc(id, ones.clone())?;
    let missing_l1 = mem.alloc_with(id, |p| *p = table_page((missing_leaf << 12) | LEAF_RO))?;
    let identity_l1 = mem.alloc_with(id, |p| *p = table_page((identity_leaf << 12) | LEAF_RO))?;
    let root = mem.alloc(id, zero.clone())?;
    let shared_info = mem.alloc(id, zero.clone())?;
    let mut g = Guest {
        id,
        width: spec.width,
        hvm: spec.hvm,
        address_bits: geo.w as u32 * 8,
        shared_info,
        tot_pages: 0,
        max_pages: spec.max_pfn,
        churn: false,
        geo,
        layout: ListLayout {
            root: Mfn(root),
            vaddr,
            capacity,
            levels: geo.levels,
            missing_leaf: Mfn(missing_leaf),
            identity_leaf: Mfn(identity_leaf),
            missing_l1: Mfn(missing_l1),
            identity_l1: Mfn(identity_l1),
            tree_root: None,
            tree_mid_missing: None,
        },
        tree_covered: 0,
        ram: BTreeMap::new(),
        identity: merged(&spec.identity),
        foreign: BTreeMap::new(),
        overrides: BTreeMap::new(),
    };
    for r in &spec.ram {
        for pfn in r.clone() {
            let m = mem.alloc(id, zero.clone())?;
            mem.set_m2p(m, pfn)?;
            g.ram.insert(pfn, m);
        }
    }
    for (i, pfn) in spec.foreign.iter().flat_map(|r| r.clone()).enumerate() {
        let m = mem.alloc(DONOR, zero.clone())?;
        mem.set_m2p(m, 0x1000 + i as u64)?;
        g.foreign.insert(pfn, m);
    }

    // The list: a whole mid page's worth of uniform entries shares a
    // level-1 table; else each leaf is the shared missing page, the
    // shared identity page, or a page of its own.
    let mid_va = geo.fpp * PAGE_SIZE as u64;
    let share_l1 = vaddr & (mid_va - 1) == 0;
    for c in 0..capacity / geo.mid_pfns() {
        let lo = c * geo.mid_pfns();
        let kind = g.kind(lo, lo + geo.mid_pfns());
        if share_l1 && kind != Kind::Mixed {
            let l1 = if kind == Kind::Missing {
                missing_l1
            } else {
                identity_l1
            };
            for j in 0..geo.fpp / 512 {
                let va = vaddr + lo * geo.w as u64 + j * (512 * PAGE_SIZE as u64);
                let (t, off) = pte_slot(mem, &g, va, 2, true)?;
                mem.write_word(t, off, 8, (l1 << 12) | TABLE)?;
            }
            continue;
        }
        for k in lo / geo.fpp..(lo + geo.mid_pfns()) / geo.fpp {
            let plo = k * geo.fpp;
            let (leaf, flags) = match g.kind(plo, plo + geo.fpp) {
                Kind::Missing => (missing_leaf, LEAF_RO),
                Kind::Identity => (identity_leaf, LEAF_RO),
                Kind::Mixed => {
                    let page = g.leaf_page(k);
                    (mem.alloc_with(id, |p| *p = page)?, LEAF_RW)
                }
            };
            let (t, off) = pte_slot(mem, &g, leaf_va(&g, k)?, 1, true)?;
            mem.write_word(t, off, 8, (leaf << 12) | flags)?;
        }
    }

    if spec.noise {
        add_noise(mem, &g, va_end)?;
    }

    // The tree, pointing at the list's leaves as Linux's does.
    let mut fll = 0;
    match spec.tree {
        TreeMode::NotSetUp => {}
        TreeMode::Dropped => fll = geo.ones(),
        TreeMode::Keep => {
            let w = geo.w;
            let mid_missing = mem.alloc_with(id, |p| *p = word_page(w, missing_leaf))?;
            let top = mem.alloc_with(id, |p| *p = word_page(w, mid_missing))?;
            let covered = capacity.min(geo.fpp * geo.mid_pfns());
            for c in 0..covered / geo.mid_pfns() {
                let k0 = c * geo.fpp;
                let (l1, _) = pte_slot_ro(mem, &g, leaf_va(&g, k0)?, 1)?;
                if l1 == missing_l1 || l1 == identity_l1 {
                    continue;
                }
                let mut page = [0u8; PAGE_SIZE];
                for m in 0..geo.fpp {
                    put_word(&mut page, m as usize * w, w, leaf_frame(mem, &g, k0 + m)?);
                }
                let mid = mem.alloc(id, std::sync::Arc::new(page))?;
                mem.write_word(top, c as usize * w, w, mid)?;
            }
            g.layout.tree_root = Some(Mfn(top));
            g.layout.tree_mid_missing = Some(Mfn(mid_missing));
            g.tree_covered = covered;
            fll = top;
        }
    }

    let cr3 = if !spec.publish_list {
        0
    } else if geo.w == 8 {
        root << 12
    } else {
        // Xen's "extended cr3" for 32-bit guests (xen_pfn_to_cr3).
        let r = root as u32;
        (r.wrapping_shl(12) | (r >> 20)) as u64
    };
    let arch = ArchSharedInfo {
        max_pfn: spec.max_pfn,
        pfn_to_mfn_frame_list_list: fll,
        nmi_reason: 0,
        p2m_cr3: cr3,
        p2m_vaddr: if spec.publish_list { vaddr } else { 0 },
        p2m_generation: 0,
    };
    write_arch(mem, &g, &arch)?;
    g.tot_pages = g.ram.len() as u64;
    s.domains.insert(id, g);
    Ok(())
}

/// Unrelated entries around the list, which a reader must not look at.
fn add_noise(mem: &mut Memory, g: &Guest, va_end: u64) -> Result<(), SimError> {
    let zero = mem.zero.clone();
    let root = g.layout.root.0;
    let slots: &[usize] = if g.geo.levels == 4 {
        &[0, 1, 272, 511]
    } else {
        &[0, 1, 2, 3]
    };
    for (n, &slot) in slots.iter().enumerate() {
        if mem.read_word(root, slot * 8, 8) != Some(0) {
            continue;
        }
        let v = if n == 1 {
            0x8000_0000_0000_0080 // not present, PSE, NX: junk
        } else {
            let f = mem.alloc(g.id, zero.clone())?;
            (f << 12) | g.geo.table_flags(g.geo.levels)
        };
        mem.write_word(root, slot * 8, 8, v)?;
    }
    // Just before the list and just past its mapped end, inside the same
    // tables: junk that is not present and claims a superpage.
    for level in 1..g.geo.levels {
        for (va, step) in [(g.layout.vaddr, -1i64), (va_end - 1, 1)] {
            if let Ok((t, off)) = pte_slot_ro(mem, g, va, level) {
                let i = off as i64 / 8 + step;
                if (0..512).contains(&i) && mem.read_word(t, i as usize * 8, 8) == Some(0) {
                    mem.write_word(t, i as usize * 8, 8, 0xdead_0000_0080)?;
                }
            }
        }
    }
    Ok(())
}

fn guest(d: &BTreeMap<u16, Guest>, dom: DomId) -> Result<&Guest, SimError> {
    d.get(&dom.0).ok_or(SimError::NoSuchDomain(dom))
}

impl SimHost {
    /// Builds a guest per `spec` in simulated memory and returns its id.
    pub fn add_guest(&self, spec: &GuestSpec) -> Result<DomId, SimError> {
        self.write(|s| build(s, spec))?;
        Ok(spec.domid)
    }

    /// Where `dom`'s p2m structures live.
    pub fn list_layout(&self, dom: DomId) -> Result<ListLayout, SimError> {
        Ok(guest(&self.read().domains, dom)?.layout)
    }

    /// `dom`'s shared_info frame.
    pub fn shared_info_frame(&self, dom: DomId) -> Result<Mfn, SimError> {
        Ok(Mfn(guest(&self.read().domains, dom)?.shared_info))
    }

    /// The frame `dom`'s list maps as leaf `k` (entries `k * fpp ..`).
    pub fn leaf_frame(&self, dom: DomId, k: u64) -> Result<Mfn, SimError> {
        let s = self.read();
        leaf_frame(&s.mem, guest(&s.domains, dom)?, k).map(Mfn)
    }

    /// The mfn `dom`'s RAM pfn `pfn` was given, if it is RAM.
    pub fn ram_mfn(&self, dom: DomId, pfn: Pfn) -> Result<Option<Mfn>, SimError> {
        Ok(guest(&self.read().domains, dom)?
            .ram
            .get(&pfn.0)
            .copied()
            .map(Mfn))
    }

    /// The raw entry Linux's layout puts at `pfn` of `dom`'s list (and
    /// tree): the RAM mfn, `FOREIGN | mfn`, `IDENTITY | pfn`, or `~0` for
    /// a missing pfn and for a pfn whose whole leaf is the shared identity
    /// page. Computed from the simulation's records, not from the pages.
    pub fn expected_entry(&self, dom: DomId, pfn: Pfn) -> Result<u64, SimError> {
        let s = self.read();
        let g = guest(&s.domains, dom)?;
        if pfn.0 >= g.layout.capacity {
            return Err(SimError::BadConfig("pfn beyond the list"));
        }
        let leaf = leaf_frame(&s.mem, g, pfn.0 / g.geo.fpp)?;
        if leaf == g.layout.identity_leaf.0 {
            return Ok(g.geo.ones());
        }
        Ok(g.logical(pfn.0))
    }

    /// The page-table entry location (table frame, byte offset) that maps
    /// `vaddr` at `level` (1 = the entry naming a leaf) in `dom`'s list
    /// address space; write it with [`SimHost::write_word`] (8 bytes).
    pub fn pte_location(
        &self,
        dom: DomId,
        level: u32,
        vaddr: u64,
    ) -> Result<(Mfn, usize), SimError> {
        let s = self.read();
        let g = guest(&s.domains, dom)?;
        if level == 0 || level > g.geo.levels {
            return Err(SimError::BadConfig("level"));
        }
        pte_slot_ro(&s.mem, g, vaddr, level).map(|(t, o)| (Mfn(t), o))
    }

    /// Starts a change of `dom`'s list mappings: generation to odd.
    pub fn begin_p2m_update(&self, dom: DomId) -> Result<u64, SimError> {
        self.write(|s| bump_generation(s, dom.0, 1))
    }

    /// Ends a change of `dom`'s list mappings: generation to even.
    pub fn end_p2m_update(&self, dom: DomId) -> Result<u64, SimError> {
        self.write(|s| bump_generation(s, dom.0, 1))
    }

    /// Allocates a page for leaf `k` of `dom` with entries `f(pfn)`,
    /// without mapping it.
    pub fn new_leaf_page(
        &self,
        dom: DomId,
        k: u64,
        f: impl Fn(Pfn) -> u64,
    ) -> Result<Mfn, SimError> {
        self.write(|s| {
            let g = guest(&s.domains, dom)?;
            let (w, fpp) = (g.geo.w, g.geo.fpp);
            s.mem
                .alloc_with(dom.0, |p| {
                    for i in 0..fpp {
                        put_word(p, i as usize * w, w, f(Pfn(k * fpp + i)));
                    }
                })
                .map(Mfn)
        })
    }

    /// Makes leaf `k` of `dom`'s list map `mfn` (and the tree name it):
    /// a change of the list's mappings, to be wrapped in
    /// [`SimHost::begin_p2m_update`]/[`SimHost::end_p2m_update`]. A shared
    /// level-1 table is first replaced by a copy of its own. Each step
    /// takes the lock separately, so readers can see the steps. Returns
    /// the frame mapped before.
    pub fn map_leaf(&self, dom: DomId, k: u64, mfn: Mfn) -> Result<Mfn, SimError> {
        let va = {
            let s = self.read();
            let g = guest(&s.domains, dom)?;
            leaf_va(g, k)?
        };
        self.write(|s| {
            let g = guest(&s.domains, dom)?;
            let (t2, off2) = pte_slot_ro(&s.mem, g, va, 2)?;
            let pmd = s
                .mem
                .read_word(t2, off2, 8)
                .ok_or(SimError::NoSuchFrame(t2))?;
            let l1 = (pmd & FRAME_MASK) >> 12;
            if l1 == g.layout.missing_l1.0 || l1 == g.layout.identity_l1.0 {
                let copy = s.mem.page(l1).ok_or(SimError::NoSuchFrame(l1))?.clone();
                let new = s.mem.alloc(dom.0, std::sync::Arc::new(*copy))?;
                s.mem.write_word(t2, off2, 8, (new << 12) | TABLE)?;
            }
            Ok::<(), SimError>(())
        })?;
        let old = self.write(|s| {
            let g = guest(&s.domains, dom)?;
            let (t, off) = pte_slot_ro(&s.mem, g, va, 1)?;
            let old = s.mem.read_word(t, off, 8).ok_or(SimError::NoSuchFrame(t))?;
            s.mem.write_word(t, off, 8, (mfn.0 << 12) | LEAF_RW)?;
            Ok::<u64, SimError>((old & FRAME_MASK) >> 12)
        })?;
        self.write(|s| tree_set_leaf(s, dom, k, mfn.0))?;
        Ok(Mfn(old))
    }

    /// Gives `dom`'s leaf `k` a page of its own if it maps a shared one,
    /// the way Linux does before writing an entry (with a generation bump
    /// pair around the mapping change).
    fn own_leaf(&self, dom: DomId, k: u64) -> Result<u64, SimError> {
        let (cur, shared) = {
            let s = self.read();
            let g = guest(&s.domains, dom)?;
            let cur = leaf_frame(&s.mem, g, k)?;
            (
                cur,
                cur == g.layout.missing_leaf.0 || cur == g.layout.identity_leaf.0,
            )
        };
        if !shared {
            return Ok(cur);
        }
        let new = self.write(|s| {
            let g = guest(&s.domains, dom)?;
            let page = g.leaf_page(k);
            s.mem.alloc_with(dom.0, |p| *p = page)
        })?;
        self.begin_p2m_update(dom)?;
        let r = self.map_leaf(dom, k, Mfn(new));
        self.end_p2m_update(dom)?;
        r?;
        Ok(new)
    }

    /// Populates `pfns` of `dom` with fresh RAM, as a balloon driver
    /// would: leaves still on a shared page get pages of their own (a
    /// list mapping change, under the generation protocol), entries are
    /// written, the M2P follows, and `max_pfn` grows when the range ends
    /// past it (up to the list's capacity).
    pub fn populate(&self, dom: DomId, pfns: Range<u64>) -> Result<(), SimError> {
        let (fpp, capacity) = {
            let s = self.read();
            let g = guest(&s.domains, dom)?;
            (g.geo.fpp, g.layout.capacity)
        };
        if pfns.end > capacity || pfns.start >= pfns.end {
            return Err(SimError::BadConfig("populate range"));
        }
        for k in pfns.start / fpp..pfns.end.div_ceil(fpp) {
            let leaf = self.own_leaf(dom, k)?;
            let lo = pfns.start.max(k * fpp);
            let hi = pfns.end.min((k + 1) * fpp);
            self.write(|s| {
                for pfn in lo..hi {
                    let zero = s.mem.zero.clone();
                    let m = s.mem.alloc(dom.0, zero)?;
                    s.mem.set_m2p(m, pfn)?;
                    let g = s
                        .domains
                        .get_mut(&dom.0)
                        .ok_or(SimError::NoSuchDomain(dom))?;
                    g.ram.insert(pfn, m);
                    g.tot_pages += 1;
                    let w = g.geo.w;
                    s.mem.write_word(leaf, (pfn % fpp) as usize * w, w, m)?;
                }
                Ok::<(), SimError>(())
            })?;
        }
        self.write(|s| {
            let g = guest(&s.domains, dom)?;
            let mut a = read_arch(&s.mem, g)?;
            if pfns.end > a.max_pfn {
                a.max_pfn = (pfns.end.div_ceil(fpp) * fpp).min(capacity);
                write_arch(&mut s.mem, g, &a)?;
            }
            Ok(())
        })
    }

    /// Writes entry `pfn` of `dom`'s list (giving its leaf a page of its
    /// own first). Entry values are not covered by the generation, so
    /// there is no bump for the write itself.
    pub fn set_entry(&self, dom: DomId, pfn: Pfn, raw: u64) -> Result<(), SimError> {
        let fpp = self.write(|s| {
            let g = s
                .domains
                .get_mut(&dom.0)
                .ok_or(SimError::NoSuchDomain(dom))?;
            g.overrides.insert(pfn.0, raw);
            Ok::<u64, SimError>(g.geo.fpp)
        })?;
        let leaf = self.own_leaf(dom, pfn.0 / fpp)?;
        self.write(|s| {
            let w = guest(&s.domains, dom)?.geo.w;
            s.mem.write_word(leaf, (pfn.0 % fpp) as usize * w, w, raw)
        })
    }
}

/// Points the tree's entry for leaf `k` at `mfn`, giving the mid page a
/// page of its own if it is the shared missing one.
fn tree_set_leaf(s: &mut State, dom: DomId, k: u64, mfn: u64) -> Result<(), SimError> {
    let g = guest(&s.domains, dom)?;
    let (Some(top), Some(mid_missing)) = (g.layout.tree_root, g.layout.tree_mid_missing) else {
        return Ok(());
    };
    let (w, fpp) = (g.geo.w, g.geo.fpp);
    if k * fpp >= g.tree_covered {
        return Ok(());
    }
    let c = (k / fpp) as usize;
    let mut mid = s
        .mem
        .read_word(top.0, c * w, w)
        .ok_or(SimError::NoSuchFrame(top.0))?;
    if mid == mid_missing.0 {
        let copy = s.mem.page(mid).ok_or(SimError::NoSuchFrame(mid))?.clone();
        mid = s.mem.alloc(dom.0, std::sync::Arc::new(*copy))?;
        s.mem.write_word(top.0, c * w, w, mid)?;
    }
    s.mem.write_word(mid, (k % fpp) as usize * w, w, mfn)
}
