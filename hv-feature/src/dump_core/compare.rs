// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The p2m rebuilt from a dump's page tables against the dump's own
//! `.xen_p2m`.
//!
//! libxc's dump-core writes one `.xen_p2m` entry per page it dumps: every
//! pfn below the guest's `max_pfn` whose entry is a plain mfn no larger
//! than the host's largest frame, in pfn order, until `nr_pages` entries
//! are written (a guest that gained pages while it was dumped loses the
//! rest: they are "beyond nr_pages", not a disagreement). Invalid,
//! identity and foreign entries are not dumped.
//!
//! Work is bounded by the p2m's structure: each distinct leaf page is
//! summarised once, a leaf without plain mfns costs one lookup per
//! position, a page of plain entries is compared entry by entry at its
//! first position (and at further ones until a million mismatches are
//! counted), and [`MAX_RECORDED`] mismatches are listed.

use super::CoreFile;
use crate::error::Error;
use crate::p2m::Entry;
use crate::p2m::{EntryCounts, P2m, ReadOptions, ReadStats, Source, SourcePref};
use crate::shared_info::ArchSharedInfo;
use crate::types::{GuestWidth, Mfn, Pfn};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Mismatches listed in a report (all are counted).
pub const MAX_RECORDED: usize = 16;
/// Entries looked at after which a leaf page of plain entries that was
/// already compared at another position is counted without a look at each
/// entry.
const BULK_AFTER: u64 = 1 << 20;

/// One pfn on which the rebuilt p2m and `.xen_p2m` disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CoreMismatch {
    /// The pfn.
    pub pfn: Pfn,
    /// What `.xen_p2m` holds for it (`None`: not dumped).
    pub dumped: Option<Mfn>,
    /// The rebuilt entry (`None`: beyond the rebuilt `max_pfn`).
    pub rebuilt: Option<Entry>,
}

/// What [`compare`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CoreReport {
    /// The guest's width.
    pub width: GuestWidth,
    /// Xen's version when the dump was made.
    pub xen_version: String,
    /// vcpus in the dump.
    pub nr_vcpus: u64,
    /// Pages in the dump (`xch_nr_pages`).
    pub nr_pages: u64,
    /// Valid `.xen_p2m` entries.
    pub dumped_pages: u64,
    /// The dump's `shared_info` arch fields the p2m was rebuilt from.
    pub arch: ArchSharedInfo,
    /// The structure the p2m was rebuilt from.
    pub source: Source,
    /// Entries of the rebuilt p2m.
    pub max_pfn: u64,
    /// What the rebuild cost.
    pub stats: ReadStats,
    /// Entries of the rebuilt p2m by kind.
    pub entries: EntryCounts,
    /// `.xen_p2m` entries compared with the rebuilt p2m.
    pub compared: u64,
    /// Pfns on which they disagree (either way).
    pub mismatches: u64,
    /// Plain entries of the rebuilt p2m that are not dumped because the
    /// dump was full (`nr_pages` entries, none spare) before their pfn.
    pub beyond_nr_pages: u64,
    /// The first mismatches found.
    pub first_mismatches: Vec<CoreMismatch>,
}

impl CoreReport {
    /// True when every dumped entry equals the rebuilt one and every plain
    /// rebuilt entry that could have been dumped was.
    pub fn agree(&self) -> bool {
        self.mismatches == 0
    }
}

/// Per distinct leaf page: entries by kind, and whether any is a plain
/// mfn (only those pages need an entry-by-entry look).
#[derive(Clone, Copy)]
struct Leaf {
    counts: EntryCounts,
    plain: bool,
}

/// Rebuilds the dump's p2m with the hardened reader from the structure
/// `source` names ([`SourcePref::List`]: from `p2m_cr3`/`p2m_vaddr`) and
/// compares it with `.xen_p2m`, every pfn. A hostile dump gives the
/// reader's typed errors (bad `shared_info` fields, page-table entries,
/// frames missing from the dump).
pub fn compare(core: &CoreFile, source: SourcePref) -> Result<CoreReport, Error> {
    if core.shared_info().is_none() {
        return Err(Error::CoreMissingSection {
            name: ".xen_shared_info",
        });
    }
    let opts = ReadOptions {
        source,
        verify_m2p: false,
        attempts: 1,
        ..ReadOptions::default()
    };
    let p = P2m::read(core, super::CORE_DOMID, &opts)?;
    let width = p.width();
    let fpp = p.entries_per_page();
    let max_pfn = p.max_pfn();
    let info = core.info();
    let max_gmfn = info.max_gmfn;
    // libxc stops at nr_pages entries; with no spare entry left, plain
    // entries above the last dumped pfn were lost, not omitted.
    let full = info.dumped_pages == info.nr_pages;
    let last_dumped = core.dumped().last().map(|&(pfn, _)| pfn);

    let mut r = CoreReport {
        width,
        xen_version: info.xen_version.clone(),
        nr_vcpus: info.nr_vcpus,
        nr_pages: info.nr_pages,
        dumped_pages: info.dumped_pages,
        arch: *p.arch(),
        source: p.source(),
        max_pfn,
        stats: *p.stats(),
        entries: EntryCounts::default(),
        compared: 0,
        mismatches: 0,
        beyond_nr_pages: 0,
        first_mismatches: Vec::new(),
    };
    let record = |r: &mut CoreReport, m: CoreMismatch| {
        r.mismatches += 1;
        if r.first_mismatches.len() < MAX_RECORDED {
            r.first_mismatches.push(m);
        }
    };

    // Direction 1: every dumped entry against the rebuilt p2m.
    for &(pfn, gmfn) in core.dumped() {
        r.compared += 1;
        let rebuilt = p.lookup(Pfn(pfn)).ok();
        if rebuilt != Some(Entry::Mfn(Mfn(gmfn))) {
            record(
                &mut r,
                CoreMismatch {
                    pfn: Pfn(pfn),
                    dumped: Some(Mfn(gmfn)),
                    rebuilt,
                },
            );
        }
    }

    // Direction 2: every plain rebuilt entry must be dumped (entries of
    // frames above the dump's largest cannot be told from frames above the
    // host's, which libxc skips, and count as not dumped too).
    let mut leaves: HashMap<Mfn, Leaf> = HashMap::new();
    let mut last: Option<(Mfn, Leaf)> = None;
    let mut plain_seen: HashSet<Mfn> = HashSet::new();
    let mut looked = 0u64;
    for k in 0..p.leaf_count() {
        let first = k * fpp;
        let used = (max_pfn - first).min(fpp);
        let frame = p.leaf_frame(k).ok_or(Error::Unexpected {
            what: "leaf position without a frame (internal)",
            value: k,
        })?;
        let leaf = if used < fpp {
            // A partial last leaf: summarise its used part only.
            summarise(&p, first, used, width)
        } else if let Some((f, l)) = last.filter(|(f, _)| *f == frame) {
            debug_assert_eq!(f, frame);
            l
        } else {
            *leaves
                .entry(frame)
                .or_insert_with(|| summarise(&p, first, used, width))
        };
        last = Some((frame, leaf));
        add(&mut r.entries, &leaf.counts);
        if !leaf.plain {
            continue;
        }
        // A page of plain entries at a second position: a gmfn is dumped at
        // one pfn at most, so these are mismatches but for odd cases; once
        // BULK_AFTER entries have been looked at they are counted in bulk,
        // so a hostile dump aliasing one page everywhere costs bounded work.
        if !plain_seen.insert(frame) && looked >= BULK_AFTER {
            r.mismatches += leaf.counts.valid;
            continue;
        }
        looked += used;
        for pfn in first..first + used {
            let Ok(Entry::Mfn(mfn)) = p.lookup(Pfn(pfn)) else {
                continue;
            };
            match core.dumped_gmfn(pfn) {
                Some(g) if g == mfn.0 => {}
                // Counted in direction 1.
                Some(_) => {}
                None if full && last_dumped.is_some_and(|l| pfn > l) && mfn.0 <= max_gmfn => {
                    r.beyond_nr_pages += 1
                }
                None => record(
                    &mut r,
                    CoreMismatch {
                        pfn: Pfn(pfn),
                        dumped: None,
                        rebuilt: Some(Entry::Mfn(mfn)),
                    },
                ),
            }
        }
    }
    Ok(r)
}

fn summarise<B: crate::Backend>(p: &P2m<B>, first: u64, used: u64, width: GuestWidth) -> Leaf {
    let mut l = Leaf {
        counts: EntryCounts::default(),
        plain: false,
    };
    for pfn in first..first + used {
        let raw = p.raw(Pfn(pfn)).unwrap_or(crate::p2m::all_ones(width));
        match Entry::decode(raw, width) {
            Entry::Mfn(_) => {
                l.counts.valid += 1;
                l.plain = true;
            }
            Entry::Invalid => l.counts.invalid += 1,
            Entry::Identity(_) => l.counts.identity += 1,
            Entry::Foreign(_) => l.counts.foreign += 1,
        }
    }
    l
}

fn add(total: &mut EntryCounts, c: &EntryCounts) {
    total.valid += c.valid;
    total.invalid += c.invalid;
    total.identity += c.identity;
    total.foreign += c.foreign;
}

impl std::fmt::Display for CoreMismatch {
    /// `pfn 0x5: .xen_p2m 0x1234, rebuilt mfn 0x1235`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pfn {}: .xen_p2m ", self.pfn)?;
        match self.dumped {
            Some(g) => write!(f, "{g}")?,
            None => f.write_str("(not dumped)")?,
        }
        match self.rebuilt {
            Some(e) => write!(f, ", rebuilt {e}"),
            None => f.write_str(", rebuilt (beyond max_pfn)"),
        }
    }
}

impl std::fmt::Display for CoreReport {
    /// Lines, the first describing the dump (a caller puts the file's
    /// name before it), the last the verdict: `core: agrees with
    /// .xen_p2m` or `core: DISAGREES with .xen_p2m`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bits = self.width.bytes() * 8;
        writeln!(
            f,
            "{bits}-bit PV guest, Xen {}, {} vcpu(s), {} pages dumped (nr_pages {})",
            self.xen_version, self.nr_vcpus, self.dumped_pages, self.nr_pages
        )?;
        let a = &self.arch;
        write!(f, "  shared_info: max_pfn {:#x}, tree ", a.max_pfn)?;
        match a.pfn_to_mfn_frame_list_list {
            0 => f.write_str("not set up")?,
            v if v == crate::p2m::all_ones(self.width) => f.write_str("~0 (dropped)")?,
            v => write!(f, "{v:#x}")?,
        }
        writeln!(
            f,
            ", p2m_cr3 {:#x}, p2m_vaddr {:#x}, generation {}",
            a.p2m_cr3, a.p2m_vaddr, a.p2m_generation
        )?;
        writeln!(
            f,
            "core: p2m read from the {} ({bits}-bit), max_pfn {:#x}, generation {}",
            self.source, self.max_pfn, self.stats.generation
        )?;
        writeln!(f, "  {}", self.stats)?;
        writeln!(f, "  entries: {}", self.entries)?;
        writeln!(
            f,
            "  .xen_p2m: {} compared, {} differ, {} beyond nr_pages",
            self.compared, self.mismatches, self.beyond_nr_pages
        )?;
        for m in &self.first_mismatches {
            writeln!(f, "    {m}")?;
        }
        let verdict = if self.agree() {
            "agrees with"
        } else {
            "DISAGREES with"
        };
        write!(f, "core: {verdict} .xen_p2m")
    }
}
