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

/// Entries by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
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

/// One entry that does not round-trip through the M2P.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct M2pMismatch {
    /// The pfn.
    pub pfn: Pfn,
    /// Its p2m entry.
    pub mfn: Mfn,
    /// `m2p[mfn]` (`None`: beyond the M2P).
    pub m2p: Option<Pfn>,
}

/// The state of a guest's tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
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
}

impl VerifyReport {
    /// True when list, tree and M2P agree everywhere they were compared.
    pub fn consistent(&self) -> bool {
        self.list_tree_mismatches == 0 && self.m2p_mismatches == 0
    }
}

/// Per distinct leaf page: how many full positions use it, and two of
/// them (to name a mismatching pfn without a second pass).
struct Uses {
    full: Vec<u64>,
    pos: Vec<[u64; 2]>,
    /// Position of a partial last leaf.
    partial: Option<u64>,
}

fn uses<M: Mapping>(w: &Walk<M>) -> Uses {
    let n = w.leaf_mfns.len();
    let mut u = Uses {
        full: vec![0; n],
        pos: vec![[u64::MAX; 2]; n],
        partial: None,
    };
    for k in 0..w.nleaves {
        if w.used(k) < w.fpp {
            u.partial = Some(k);
            continue;
        }
        if let Some(s) = w.index.slot(k) {
            match u.full[s] {
                0 => u.pos[s][0] = k,
                1 => u.pos[s][1] = k,
                _ => {}
            }
            u.full[s] += 1;
        }
    }
    u
}

/// Counts entries by kind.
pub(super) fn count_entries<M: Mapping>(w: &Walk<M>) -> EntryCounts {
    let u = uses(w);
    let bytes = w.leaves.bytes();
    let wb = w.width.bytes();
    let mut total = EntryCounts::default();
    for (s, &times) in u.full.iter().enumerate() {
        if times == 0 {
            continue;
        }
        let mut c = EntryCounts::default();
        for i in 0..w.fpp as usize {
            if let Some(raw) = walk::word(bytes, s * PAGE_SIZE + i * wb, wb) {
                c.add(Entry::decode(raw, w.width), 1);
            }
        }
        total.add_all(&c, times);
    }
    if let Some(k) = u.partial {
        for pfn in k * w.fpp..w.max_pfn {
            if let Some(raw) = w.raw_in(bytes, pfn) {
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
}

/// Checks `m2p[mfn] == pfn` for every valid entry. A page used at several
/// positions is checked once: an mfn's M2P entry names one pfn, so at most
/// one of those positions can match.
pub(super) fn m2p_scan<M: Mapping, N: Mapping>(w: &Walk<M>, m2p: &M2p<N>) -> M2pScan {
    let u = uses(w);
    let bytes = w.leaves.bytes();
    let wb = w.width.bytes();
    let mut r = M2pScan {
        checked: 0,
        mismatches: 0,
        first: None,
    };
    for (s, &times) in u.full.iter().enumerate() {
        if times == 0 {
            continue;
        }
        for i in 0..w.fpp {
            let Some(raw) = walk::word(bytes, s * PAGE_SIZE + i as usize * wb, wb) else {
                continue;
            };
            let Entry::Mfn(mfn) = Entry::decode(raw, w.width) else {
                continue;
            };
            let back = m2p.get(mfn);
            // The one position at which this entry could round-trip.
            let home = back.filter(|p| p.0 % w.fpp == i).map(|p| p.0 / w.fpp);
            let matched =
                home.filter(|&q| q < w.nleaves && w.used(q) == w.fpp && w.index.slot(q) == Some(s));
            let bad = times - matched.is_some() as u64;
            r.checked += times;
            r.mismatches += bad;
            if bad > 0 && r.first.is_none() {
                let k = if Some(u.pos[s][0]) == matched {
                    u.pos[s][1]
                } else {
                    u.pos[s][0]
                };
                r.first = Some(M2pMismatch {
                    pfn: Pfn(k * w.fpp + i),
                    mfn,
                    m2p: back,
                });
            }
        }
    }
    if let Some(k) = u.partial {
        for pfn in k * w.fpp..w.max_pfn {
            let Some(raw) = w.raw_in(bytes, pfn) else {
                continue;
            };
            let Entry::Mfn(mfn) = Entry::decode(raw, w.width) else {
                continue;
            };
            let back = m2p.get(mfn);
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

/// Compares two views entry by entry, each distinct pair of pages once.
/// Returns (entries compared, mismatches, first mismatching pfn).
pub(super) fn compare<M: Mapping>(a: &Walk<M>, b: &Walk<M>) -> (u64, u64, Option<Pfn>) {
    let (ab, bb) = (a.leaves.bytes(), b.leaves.bytes());
    let wb = a.width.bytes();
    let n = a.max_pfn.min(b.max_pfn);
    let leaves = n.div_ceil(a.fpp);
    let mut memo: HashMap<(usize, usize, u64), (u64, Option<u64>)> = HashMap::new();
    let (mut compared, mut bad, mut first) = (0, 0, None);
    for k in 0..leaves {
        let used = (n - k * a.fpp).min(a.fpp);
        compared += used;
        let (Some(sa), Some(sb)) = (a.index.slot(k), b.index.slot(k)) else {
            bad += used;
            first.get_or_insert(Pfn(k * a.fpp));
            continue;
        };
        let (diff, at) = *memo.entry((sa, sb, used)).or_insert_with(|| {
            let (mut d, mut at) = (0, None);
            for i in 0..used as usize {
                let x = walk::word(ab, sa * PAGE_SIZE + i * wb, wb);
                let y = walk::word(bb, sb * PAGE_SIZE + i * wb, wb);
                if x != y {
                    d += 1;
                    at.get_or_insert(i as u64);
                }
            }
            (d, at)
        });
        bad += diff;
        if let Some(i) = at {
            first.get_or_insert(Pfn(k * a.fpp + i));
        }
    }
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
        let entries = count_entries(primary);
        let (compared, mism, first) = match (&list, &tree) {
            (Some((_, l, _)), Some((_, t, _))) => compare(l, t),
            _ => (0, 0, None),
        };
        let scan = m2p_scan(primary, m2p);
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
            entries,
            list_tree_compared: compared,
            list_tree_mismatches: mism,
            first_list_tree_mismatch: first,
            m2p_checked: scan.checked,
            m2p_mismatches: scan.mismatches,
            first_m2p_mismatch: scan.first,
            attempts: attempt,
        });
    }
    Err(last_err.unwrap_or(Error::GenerationUnstable {
        dom,
        first: 0,
        last: 0,
        attempts,
    }))
}
