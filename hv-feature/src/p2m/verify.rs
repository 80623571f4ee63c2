// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Whole-p2m checks: the list against the tree against the M2P, with
//! work proportional to the distinct leaf pages rather than to `max_pfn`
//! wherever pages repeat (a huge guest's shared "missing" page).

use super::walk::{self, Walk};
use super::{open, read_stable, Entry, ReadOptions, ReadStats, Source, SourcePref};
use crate::backend::{Backend, Mapping};
use crate::domain::{self, M2p};
use crate::error::Error;
use crate::types::{DomId, GuestWidth, Mfn, Pfn, PAGE_SIZE};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;

/// Entries by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct EntryCounts {
    /// Plain mfns.
    pub valid: u64,
    /// `~0`.
    pub invalid: u64,
    /// IDENTITY entries.
    pub identity: u64,
    /// FOREIGN entries.
    pub foreign: u64,
}

impl EntryCounts {
    fn add(&mut self, e: Entry, times: u64) {
        match e {
            Entry::Mfn(_) => self.valid += times,
            Entry::Invalid => self.invalid += times,
            Entry::Identity(_) => self.identity += times,
            Entry::Foreign(_) => self.foreign += times,
        }
    }

    fn add_all(&mut self, o: &EntryCounts, times: u64) {
        self.valid += o.valid * times;
        self.invalid += o.invalid * times;
        self.identity += o.identity * times;
        self.foreign += o.foreign * times;
    }
}

impl fmt::Display for EntryCounts {
    /// `1800 valid, 700 invalid, 500 identity, 0 foreign`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} valid, {} invalid, {} identity, {} foreign",
            self.valid, self.invalid, self.identity, self.foreign
        )
    }
}

/// One entry that does not round-trip through the M2P.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct M2pMismatch {
    /// The pfn.
    pub pfn: Pfn,
    /// Its p2m entry.
    pub mfn: Mfn,
    /// `m2p[mfn]` (`None`: beyond the M2P).
    pub m2p: Option<Pfn>,
}

impl fmt::Display for M2pMismatch {
    /// `pfn 0x5 -> mfn 0x1234 -> pfn 0x7` (or `-> beyond the M2P`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pfn {} -> mfn {} -> ", self.pfn, self.mfn)?;
        match self.m2p {
            Some(p) => write!(f, "pfn {p}"),
            None => f.write_str("beyond the M2P"),
        }
    }
}

/// `N compared, M differ` and the first pfn that differs: how list and tree
/// compare, in every report that compares them.
pub(crate) fn fmt_list_tree(
    f: &mut fmt::Formatter<'_>,
    compared: u64,
    differ: u64,
    first: Option<Pfn>,
) -> fmt::Result {
    write!(f, "list vs tree: {compared} compared, {differ} differ")?;
    match first {
        Some(p) => write!(f, " (first at pfn {p})"),
        None => Ok(()),
    }
}

/// The state of a guest's tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TreeStatus {
    /// Read and compared.
    Present,
    /// Root 0.
    NotSetUp,
    /// Root `~0`.
    Dropped,
    /// The guest is larger than a tree can describe.
    TooSmall {
        /// Entries a tree of this width can describe.
        capacity: u64,
    },
}

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The domain.
    pub dom: DomId,
    /// Its width.
    pub width: GuestWidth,
    /// Entries.
    pub max_pfn: u64,
    /// `p2m_generation` during the check.
    pub generation: u64,
    /// The structure the entry counts come from (the list when published).
    pub source: Source,
    /// The list's read, if published.
    pub list: Option<ReadStats>,
    /// The tree's state.
    pub tree: TreeStatus,
    /// The tree's read, if present.
    pub tree_stats: Option<ReadStats>,
    /// All map calls (shared_info, both walks, the M2P).
    pub map_calls: u32,
    /// All frames mapped.
    pub frames_mapped: u64,
    /// Entries by kind.
    pub entries: EntryCounts,
    /// Entries compared between list and tree (0 without both).
    pub list_tree_compared: u64,
    /// Entries where they differ.
    pub list_tree_mismatches: u64,
    /// The first such pfn found.
    pub first_list_tree_mismatch: Option<Pfn>,
    /// Valid entries checked against the M2P.
    pub m2p_checked: u64,
    /// Those that do not round-trip.
    pub m2p_mismatches: u64,
    /// One of them.
    pub first_m2p_mismatch: Option<M2pMismatch>,
    /// Attempts the generation protocol needed for the whole check.
    pub attempts: u32,
    /// Pages Xen says the domain owns (`tot_pages`), read after the check.
    pub owned_pages: u64,
}

impl VerifyReport {
    /// Valid entries whose mfn maps back to their pfn in the M2P: each is
    /// one distinct page of the domain that the p2m accounts for.
    pub fn round_trips(&self) -> u64 {
        self.m2p_checked - self.m2p_mismatches
    }

    /// Pages the domain owns that no entry of its p2m accounts for. A p2m
    /// that leaves some out hides them from the tools (a save would lose
    /// them), however consistent it is in itself.
    pub fn uncovered_pages(&self) -> u64 {
        self.owned_pages.saturating_sub(self.round_trips())
    }

    /// True when list, tree and M2P agree everywhere they were compared and
    /// the p2m accounts for every page the domain owns.
    pub fn consistent(&self) -> bool {
        self.list_tree_mismatches == 0 && self.m2p_mismatches == 0 && self.uncovered_pages() == 0
    }
}

impl fmt::Display for VerifyReport {
    /// Lines, the last one the verdict: `verify: consistent` or
    /// `verify: INCONSISTENT`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "domain {}: {}-bit, max_pfn {:#x}, generation {}, entries from the {}",
            self.dom,
            self.width.bytes() * 8,
            self.max_pfn,
            self.generation,
            self.source
        )?;
        writeln!(f, "  tree: {:?}", self.tree)?;
        f.write_str("  ")?;
        fmt_list_tree(
            f,
            self.list_tree_compared,
            self.list_tree_mismatches,
            self.first_list_tree_mismatch,
        )?;
        write!(
            f,
            "\n  M2P round trip: {} checked, {} differ",
            self.m2p_checked, self.m2p_mismatches
        )?;
        if let Some(m) = self.first_m2p_mismatch {
            write!(f, " (first: {m})")?;
        }
        writeln!(f, "\n  entries: {}", self.entries)?;
        writeln!(
            f,
            "  coverage: {} of the {} pages the domain owns round-trip, {} not in its p2m",
            self.round_trips(),
            self.owned_pages,
            self.uncovered_pages()
        )?;
        writeln!(
            f,
            "  map calls {}, frames mapped {}, attempts {}",
            self.map_calls, self.frames_mapped, self.attempts
        )?;
        let verdict = if self.consistent() {
            "consistent"
        } else {
            "INCONSISTENT"
        };
        write!(f, "verify: {verdict}")
    }
}

/// Per distinct leaf page: how many full positions use it, and two of
/// them (to name a mismatching pfn without a second pass).
pub(super) struct Uses {
    pub full: Vec<u64>,
    pub pos: Vec<[u64; 2]>,
    /// Position of a partial last leaf.
    pub partial: Option<u64>,
}

/// Up to three distinct positions, in the order met.
#[derive(Clone, Copy)]
struct Few([u64; 3]);

impl Few {
    const NONE: Few = Few([u64::MAX; 3]);
    fn add(&mut self, p: u64) {
        for x in &mut self.0 {
            if *x == p {
                return;
            }
            if *x == u64::MAX {
                *x = p;
                return;
            }
        }
    }
}

/// How often each distinct leaf page is used, found from the index top
/// down (a row's count is the sum over the cells that name it), so the
/// work is one step per used cell of a distinct row, not one per leaf
/// position.
pub(super) fn uses<M: Mapping>(w: &Walk<M>) -> Uses {
    let nslots = w.leaf_mfns.len();
    let levels = &w.index.levels;
    // Rows of the current level: how many positions reach each, and up
    // to three of its bases (bottom-level position of its entry 0).
    let mut mult = vec![1u64];
    let mut bases = vec![{
        let mut f = Few::NONE;
        f.add(0);
        f
    }];
    for (li, l) in levels.iter().enumerate() {
        let n = levels.get(li + 1).map_or(nslots, |x| x.rows());
        let (mut nm, mut nb) = (vec![0u64; n], vec![Few::NONE; n]);
        for (r, row) in l.cells.chunks_exact(l.fan as usize).enumerate() {
            let (m, b) = (mult[r], bases[r]);
            for (i, &v) in row.iter().enumerate() {
                let Some(c) = walk::cell(v) else { continue };
                walk::count_step();
                let Some(slot) = nm.get_mut(c) else { continue };
                *slot += m;
                for &base in b.0.iter().filter(|&&x| x != u64::MAX) {
                    nb[c].add(base + ((i as u64) << l.shift));
                }
            }
        }
        mult = nm;
        bases = nb;
    }
    let partial = (w.nleaves * w.fpp != w.max_pfn).then(|| w.nleaves - 1);
    let first = w.index.first;
    let mut u = Uses {
        full: mult,
        pos: vec![[u64::MAX; 2]; nslots],
        partial,
    };
    if let Some(s) = partial.and_then(|k| w.index.slot(k)) {
        u.full[s] = u.full[s].saturating_sub(1);
    }
    for (s, f) in bases.iter().enumerate() {
        let mut n = 0;
        for &p in f.0.iter().filter(|&&x| x != u64::MAX) {
            let k = p - first;
            if Some(k) != partial && n < 2 {
                u.pos[s][n] = k;
                n += 1;
            }
        }
    }
    u
}

/// Reads entry `i` of leaf slot `s`.
#[inline(always)]
fn entry(page: &[u8], i: usize, wb: usize) -> u64 {
    crate::le::word(page, i * wb, wb).unwrap_or(u64::MAX)
}

/// Counts entries by kind.
pub(super) fn count_entries<M: Mapping>(w: &Walk<M>) -> EntryCounts {
    let u = uses(w);
    let leaves = w.leaves.mem();
    let mut buf = [0u8; PAGE_SIZE];
    let wb = w.width.bytes();
    let mut total = EntryCounts::default();
    for (s, &times) in u.full.iter().enumerate() {
        if times == 0 {
            continue;
        }
        // One read of the guest's page: a copy of its words.
        let Some(page) = leaves.page(s, &mut buf).map(|()| &buf) else {
            continue;
        };
        let mut c = EntryCounts::default();
        for i in 0..w.fpp as usize {
            walk::count_step();
            c.add(Entry::decode(entry(page, i, wb), w.width), 1);
        }
        total.add_all(&c, times);
    }
    if let Some(k) = u.partial {
        for pfn in k * w.fpp..w.max_pfn {
            if let Some(raw) = w.raw_in(leaves, pfn) {
                total.add(Entry::decode(raw, w.width), 1);
            }
        }
    }
    total
}

/// Result of an M2P scan.
pub(super) struct M2pScan {
    pub checked: u64,
    pub mismatches: u64,
    pub first: Option<M2pMismatch>,
    /// Entries by kind (found by the same pass).
    pub entries: EntryCounts,
}

/// Counts entries by kind and checks `m2p[mfn] == pfn` for every valid
/// entry, in one pass over each distinct leaf page. A page used at
/// several positions is read once: an mfn's M2P entry names one pfn, so
/// at most one of those positions can match.
pub(super) fn m2p_scan<M: Mapping, N: Mapping>(w: &Walk<M>, m2p: &M2p<N>) -> M2pScan {
    let u = uses(w);
    let leaves = w.leaves.mem();
    let wb = w.width.bytes();
    let (fpp, width) = (w.fpp, w.width);
    let ones = walk::all_ones(width);
    let bits = wb as u32 * 8;
    let types = (1u64 << (bits - 1)) | (1u64 << (bits - 2));
    // One borrow of the M2P for all lookups.
    let table = m2p.mem();
    let m2p_at = |mfn: u64| {
        let at = usize::try_from(mfn).ok()?.checked_mul(8)?;
        table.u64_at(at).map(Pfn)
    };
    let mut r = M2pScan {
        checked: 0,
        mismatches: 0,
        first: None,
        entries: EntryCounts::default(),
    };
    for (s, &times) in u.full.iter().enumerate() {
        if times == 0 {
            continue;
        }
        // Each entry of the guest's page read once, as a volatile word.
        let page = s * PAGE_SIZE;
        if leaves.len() < page + PAGE_SIZE {
            continue;
        }
        let mut c = EntryCounts::default();
        let base = u.pos[s][0].wrapping_mul(fpp);
        for i in 0..fpp {
            walk::count_step();
            let raw = leaves.word(page + i as usize * wb, wb).unwrap_or(u64::MAX);
            if raw == ones || raw & types != 0 {
                c.add(Entry::decode(raw, width), 1);
                continue;
            }
            c.valid += 1;
            let back = m2p_at(raw);
            if times == 1 {
                // Used at one position only: its pfn is the one home.
                if back != Some(Pfn(base + i)) {
                    r.mismatches += 1;
                    r.first.get_or_insert(M2pMismatch {
                        pfn: Pfn(base + i),
                        mfn: Mfn(raw),
                        m2p: back,
                    });
                }
                continue;
            }
            // The one position at which this entry could round-trip.
            let home = back.filter(|p| p.0 % fpp == i).map(|p| p.0 / fpp);
            let matched =
                home.filter(|&q| q < w.nleaves && w.used(q) == fpp && w.index.slot(q) == Some(s));
            let bad = times - matched.is_some() as u64;
            r.mismatches += bad;
            if bad > 0 && r.first.is_none() {
                let k = if Some(u.pos[s][0]) == matched {
                    u.pos[s][1]
                } else {
                    u.pos[s][0]
                };
                r.first = Some(M2pMismatch {
                    pfn: Pfn(k * fpp + i),
                    mfn: Mfn(raw),
                    m2p: back,
                });
            }
        }
        r.checked += c.valid * times;
        r.entries.add_all(&c, times);
    }
    if let Some(k) = u.partial {
        for pfn in k * fpp..w.max_pfn {
            let Some(raw) = w.raw_in(leaves, pfn) else {
                continue;
            };
            let e = Entry::decode(raw, width);
            r.entries.add(e, 1);
            let Entry::Mfn(mfn) = e else {
                continue;
            };
            let back = m2p_at(mfn.0);
            r.checked += 1;
            if back != Some(Pfn(pfn)) {
                r.mismatches += 1;
                r.first.get_or_insert(M2pMismatch {
                    pfn: Pfn(pfn),
                    mfn,
                    m2p: back,
                });
            }
        }
    }
    r
}

/// Where a run of leaf positions lies in an index: its bottom row and
/// first entry, or `None` where the structure names no leaf.
pub(super) type RunAt = Option<(usize, usize)>;

/// Splits leaf positions `0..n` into runs that stay in one bottom row of
/// both indexes and on one side of both `ends` (and of `n - 1` when
/// `split_last`), and calls `f(k, len, a, b)` for each: one step per run,
/// a run being up to a bottom row of positions.
pub(super) fn joint_runs(
    a: &walk::LeafIndex,
    b: &walk::LeafIndex,
    n: u64,
    ends: [u64; 2],
    split_last: bool,
    mut f: impl FnMut(u64, u64, RunAt, RunAt),
) {
    let mut k = 0;
    while k < n {
        walk::count_step();
        let mut len = a.run_from(k).min(b.run_from(k)).min(n - k);
        for e in ends.into_iter().chain(split_last.then(|| n - 1)) {
            if e > k && e < k + len {
                len = e - k;
            }
        }
        let at = |x: &walk::LeafIndex, end: u64| {
            if k < end {
                x.bottom(k)
            } else {
                None
            }
        };
        f(k, len, at(a, ends[0]), at(b, ends[1]));
        k += len;
    }
}

/// The cells of a run: `len` leaf slots from `at` in `x`'s bottom level.
pub(super) fn run_cells(x: &walk::LeafIndex, at: RunAt, len: u64) -> Option<&[u32]> {
    let (row, i) = at?;
    let l = x.leaf_level()?;
    let start = row * l.fan as usize + i;
    l.cells.get(start..start + len as usize)
}

/// A run of [`joint_runs`]: where in each index, its length, the entries
/// used of its last leaf.
type RunKey = (RunAt, RunAt, u64, u64);

/// Compares two views entry by entry, each distinct pair of pages once
/// and each distinct pair of bottom-row runs once.
/// Returns (entries compared, mismatches, first mismatching pfn).
pub(super) fn compare<M: Mapping>(a: &Walk<M>, b: &Walk<M>) -> (u64, u64, Option<Pfn>) {
    let (am, bm) = (a.leaves.mem(), b.leaves.mem());
    let wb = a.width.bytes();
    let fpp = a.fpp;
    let n = a.max_pfn.min(b.max_pfn);
    let leaves = n.div_ceil(fpp);
    let used_last = n - (leaves.max(1) - 1) * fpp;
    let mut pages: HashMap<(usize, usize, u64), (u64, Option<u64>)> = HashMap::new();
    let mut runs: HashMap<RunKey, (u64, Option<u64>)> = HashMap::new();
    let (mut compared, mut bad, mut first) = (0, 0, None);
    let mut page_diff = |sa: usize, sb: usize, used: u64| {
        *pages.entry((sa, sb, used)).or_insert_with(|| {
            // The guests' words, read as volatile loads.
            let x = |i: usize| am.word(sa * PAGE_SIZE + i * wb, wb);
            let y = |i: usize| bm.word(sb * PAGE_SIZE + i * wb, wb);
            if (0..used as usize).all(|i| matches!((x(i), y(i)), (Some(p), Some(q)) if p == q)) {
                return (0, None);
            }
            let (mut d, mut at) = (0, None);
            for i in 0..used as usize {
                walk::count_step();
                let (x, y) = (x(i), y(i));
                if x != y {
                    d += 1;
                    at.get_or_insert(i as u64);
                }
            }
            (d, at)
        })
    };
    joint_runs(
        &a.index,
        &b.index,
        leaves,
        [leaves, leaves],
        true,
        |k, len, ra, rb| {
            let used = if k + len == leaves { used_last } else { fpp };
            compared += (len - 1) * fpp + used;
            let (diff, at) = *runs.entry((ra, rb, len, used)).or_insert_with(|| {
                let (ca, cb) = (run_cells(&a.index, ra, len), run_cells(&b.index, rb, len));
                let (mut d, mut at) = (0, None);
                for t in 0..len as usize {
                    let u = if t as u64 == len - 1 { used } else { fpp };
                    let sa = ca.and_then(|c| walk::cell(c[t]));
                    let sb = cb.and_then(|c| walk::cell(c[t]));
                    let (pd, pat) = match (sa, sb) {
                        (Some(sa), Some(sb)) => page_diff(sa, sb, u),
                        _ => (u, Some(0)),
                    };
                    d += pd;
                    if let (None, Some(i)) = (at, pat) {
                        at = Some(t as u64 * fpp + i);
                    }
                }
                (d, at)
            });
            bad += diff;
            if let Some(i) = at {
                first.get_or_insert(Pfn(k * fpp + i));
            }
        },
    );
    (compared, bad, first)
}

/// Reads `dom`'s list and tree (whichever exist), compares them with each
/// other for every pfn and every valid entry with the M2P, all under one
/// stable generation. Guest-data errors of either structure are returned
/// as such; disagreements are counted in the report.
pub fn verify<B: Backend>(b: &B, dom: DomId, opts: &ReadOptions) -> Result<VerifyReport, Error> {
    let (mut cx, shinfo) = open(b, dom)?;
    let attempts = opts.attempts.max(1);
    let one = ReadOptions {
        attempts: 1,
        ..opts.clone()
    };
    let mut last_err = None;
    let mut m2p_map: Option<M2p<B::Map>> = None;
    for attempt in 1..=attempts {
        if attempt > 1 {
            std::thread::sleep(opts.retry_delay * (1 << (attempt - 2).min(6)));
        }
        let before = super::decode_arch(&shinfo, cx.width)?;
        let list = if before.p2m_cr3 != 0 {
            match read_stable(&mut cx, &shinfo, SourcePref::List, &one) {
                Ok(r) => Some(r),
                // The guest may also unpublish the list between the two
                // decodes: a change under us like the others, so retry.
                Err(
                    e @ (Error::GenerationOdd { .. }
                    | Error::GenerationUnstable { .. }
                    | Error::ListNotPublished { .. }),
                ) => {
                    last_err = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let fll = before.pfn_to_mfn_frame_list_list;
        let capacity = walk::tree_capacity(cx.width);
        let (status, tree) = if fll == 0 {
            (TreeStatus::NotSetUp, None)
        } else if fll == walk::all_ones(cx.width) {
            (TreeStatus::Dropped, None)
        } else if before.max_pfn > capacity && list.is_some() {
            (TreeStatus::TooSmall { capacity }, None)
        } else {
            match read_stable(&mut cx, &shinfo, SourcePref::Tree, &one) {
                Ok(r) => (TreeStatus::Present, Some(r)),
                Err(e @ Error::GenerationUnstable { .. }) => {
                    last_err = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            }
        };
        if list.is_none() && tree.is_none() {
            return Err(match status {
                TreeStatus::Dropped => Error::TreeDropped { dom, list: false },
                _ => Error::TreeNotSetUp { dom, list: false },
            });
        }
        // The M2P is the host's, not the guest's: map it once, whatever
        // the number of attempts.
        if m2p_map.is_none() {
            let m = domain::map_m2p(b, Mfn(cx.max_mfn))?;
            cx.map_calls += 1;
            cx.frames_mapped += (m.len() as usize * 8).div_ceil(PAGE_SIZE) as u64;
            m2p_map = Some(m);
        }
        let Some(m2p) = m2p_map.as_ref() else {
            continue;
        };
        let stats_of = |w: &Walk<B::Map>, a: u32| ReadStats {
            source: w.source,
            walk_map_calls: w.map_calls,
            map_calls: w.map_calls,
            frames_mapped: w.leaf_mfns.len() as u64,
            leaves: w.nleaves,
            distinct_leaves: w.leaf_mfns.len() as u64,
            attempts: a,
            generation: before.p2m_generation,
        };
        let Some((_, primary, _)) = list.as_ref().or(tree.as_ref()) else {
            continue;
        };
        let (compared, mism, first) = match (&list, &tree) {
            (Some((_, l, _)), Some((_, t, _))) => compare(l, t),
            _ => (0, 0, None),
        };
        let scan = m2p_scan(primary, m2p);
        let owned_pages = domain::domain_info(b, dom)?.tot_pages;
        // The entries (read from the live mapping), the M2P and the page
        // count are all sampled above: the second read of the generation
        // comes after them, so a change bracketed by the guest's bumps
        // (a balloon step) is retried, not reported as a disagreement.
        let after = super::decode_arch(&shinfo, cx.width)?;
        if super::key(&before, Source::List) != super::key(&after, Source::List)
            || before.pfn_to_mfn_frame_list_list != after.pfn_to_mfn_frame_list_list
        {
            last_err = Some(Error::GenerationUnstable {
                dom,
                first: before.p2m_generation,
                last: after.p2m_generation,
                attempts: attempt,
            });
            continue;
        }
        return Ok(VerifyReport {
            dom,
            width: cx.width,
            max_pfn: before.max_pfn,
            generation: before.p2m_generation,
            source: primary.source,
            list: list.as_ref().map(|(_, w, a)| stats_of(w, *a)),
            tree: status,
            tree_stats: tree.as_ref().map(|(_, w, a)| stats_of(w, *a)),
            map_calls: cx.map_calls,
            frames_mapped: cx.frames_mapped,
            entries: scan.entries,
            list_tree_compared: compared,
            list_tree_mismatches: mism,
            first_list_tree_mismatch: first,
            m2p_checked: scan.checked,
            m2p_mismatches: scan.mismatches,
            first_m2p_mismatch: scan.first,
            attempts: attempt,
            owned_pages,
        });
    }
    // Each inner read made one attempt: the error counts verify's.
    Err(match last_err {
        Some(Error::GenerationOdd { generation, .. }) => Error::GenerationOdd {
            dom,
            generation,
            attempts,
        },
        Some(Error::GenerationUnstable { first, last, .. }) => Error::GenerationUnstable {
            dom,
            first,
            last,
            attempts,
        },
        Some(e) => e,
        None => Error::GenerationUnstable {
            dom,
            first: 0,
            last: 0,
            attempts,
        },
    })
}
