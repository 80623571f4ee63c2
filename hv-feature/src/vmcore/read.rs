// SPDX-License-Identifier: Apache-2.0 OR MIT
//! dom0's p2m rebuilt from a host crash dump, and the list compared with
//! the tree.
//!
//! With the `XEN_ELFNOTE_CRASH_DOM0_P2M` note, the note is dom0's
//! `shared_info` arch fields at the crash: `max_pfn` is known and the
//! reader walks the list from `p2m_cr3`/`p2m_vaddr` (or the tree, or
//! both).
//!
//! Without it (pristine Xen, or `pv=virt-p2m=no`), only the tree root of
//! `XEN_ELFNOTE_CRASH_INFO` is known, not `max_pfn`, and dom0's width is
//! taken to be 64-bit (the only PV dom0 Linux still supports). The extent
//! is found from the tree itself, soundly and with work bounded by its
//! distinct pages:
//! 1. the root page's entries are taken up to the first one that is 0 or
//!    `~0` (Linux fills all of them; a missing mid page is a shared
//!    "missing" mid page, not a 0): `n` entries describe `n * 512 * 512`
//!    pfns;
//! 2. the hardened reader walks the tree over all of that (each distinct
//!    mid and leaf page once, so the shared "missing" pages cost one
//!    read, whatever their number of uses) and checks every mid entry;
//! 3. `max_pfn` is one past the last entry that is not `~0` (what a leaf
//!    holds beyond dom0's own `max_pfn` is the shared all-`~0` page), and
//!    the tree is read again with that `max_pfn`.
//!
//! The p2m is then exactly dom0's up to its last populated (or identity
//! or foreign) pfn; the entries dom0 had above that, up to its own
//! `max_pfn`, were all `~0` and are not reported.

use super::{Dom0P2mNote, VmcoreFile, DOM0};
use crate::error::Error;
use crate::le::{u32_at, u64_at};
use crate::p2m::{self, EntryCounts, P2m, ReadOptions, ReadStats, Source, SourcePref};
use crate::shared_info::ArchSharedInfo;
use crate::types::{GuestWidth, Mfn, Pfn};
use serde::Serialize;
use std::collections::HashMap;

/// What is printed when a dump has no `XEN_ELFNOTE_CRASH_DOM0_P2M` note.
pub const NO_NOTE_NOTICE: &str = "no XEN_ELFNOTE_CRASH_DOM0_P2M note: Xen did not record dom0's linear p2m (pristine Xen or pv=virt-p2m=no); reading the tree from CRASH_INFO";

/// Whether the dump has the new note.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum NoteState {
    /// `XEN_ELFNOTE_CRASH_DOM0_P2M` is there.
    Present,
    /// It is not (pristine Xen, or `pv=virt-p2m=no`).
    Absent,
}

/// Where the reported `max_pfn` comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MaxPfnFrom {
    /// The note's `max_pfn`, dom0's own.
    Note,
    /// No note: one past the tree's last entry that is not `~0`.
    TreeLastEntry,
}

/// dom0's tree, as far as the comparison is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TreeState {
    /// Read (and compared with the list when both were read).
    Present,
    /// Root 0: dom0 had not set one up.
    NotSetUp,
    /// Root `~0`: dom0 dropped it.
    Dropped,
    /// `max_pfn` is beyond what a tree describes.
    TooSmall,
    /// A tree is there but could not be read (see `tree_error`).
    Unreadable,
    /// Not looked at (`--source list`).
    NotRead,
}

/// The list against the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ListTree {
    /// Entries compared.
    pub compared: u64,
    /// Entries that differ.
    pub mismatches: u64,
    /// The first pfn that differs.
    pub first_mismatch: Option<Pfn>,
}

/// What [`read`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VmcoreReport {
    /// Xen's version (`VMCOREINFO_XEN`'s `OSRELEASE`, else CRASH_INFO's).
    pub xen: Option<String>,
    /// CPUs (PRSTATUS notes).
    pub cpus: u64,
    /// `PT_LOAD`s with bytes.
    pub loads: u64,
    /// Machine memory bytes in the dump.
    pub dumped_bytes: u64,
    /// The largest machine frame in the dump.
    pub max_mfn: u64,
    /// Whether the new note is there.
    pub note: NoteState,
    /// Its contents.
    pub dom0_p2m_note: Option<Dom0P2mNote>,
    /// File offset of its header.
    pub dom0_p2m_note_offset: Option<u64>,
    /// The tree root in `XEN_ELFNOTE_CRASH_INFO` (what `crash` uses).
    pub crash_info_tree_root: Option<u64>,
    /// `xen_phys_start` of `XEN_ELFNOTE_CRASH_INFO`.
    pub xen_phys_start: Option<u64>,
    /// False when both notes are there and name different tree roots.
    pub crash_info_agrees: bool,
    /// dom0's width.
    pub width: GuestWidth,
    /// The structure the entries come from.
    pub source: Source,
    /// Entries of the rebuilt p2m.
    pub max_pfn: u64,
    /// Where `max_pfn` comes from.
    pub max_pfn_from: MaxPfnFrom,
    /// Without the note: pfns the tree's root describes (read to find
    /// `max_pfn`).
    pub tree_extent: Option<u64>,
    /// `p2m_generation` (0 without the note).
    pub generation: u64,
    /// What the rebuild cost.
    pub stats: ReadStats,
    /// Entries by kind.
    pub entries: EntryCounts,
    /// The tree's state.
    pub tree: TreeState,
    /// Why the tree could not be read, if so.
    pub tree_error: Option<String>,
    /// The list against the tree, when both were read.
    pub list_tree: Option<ListTree>,
    /// What the user should know (also printed on stderr).
    pub notices: Vec<String>,
}

impl VmcoreReport {
    /// True when nothing disagrees: list and tree (where both were read),
    /// the two notes' tree roots, and the tree was readable.
    pub fn consistent(&self) -> bool {
        self.crash_info_agrees
            && self.tree != TreeState::Unreadable
            && !matches!(self.list_tree, Some(c) if c.mismatches != 0)
    }
}

impl std::fmt::Display for VmcoreReport {
    /// Lines, the first describing the dump (a caller puts the file's
    /// name before it), the last the verdict: `vmcore: consistent` or
    /// `vmcore: INCONSISTENT`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v:#x}"));
        writeln!(
            f,
            "Xen {}, {} CPU(s), {} loads, {} MiB of machine memory (max mfn {:#x})",
            self.xen.as_deref().unwrap_or("(unknown)"),
            self.cpus,
            self.loads,
            self.dumped_bytes >> 20,
            self.max_mfn
        )?;
        match (&self.note, &self.dom0_p2m_note) {
            (NoteState::Present, Some(n)) => writeln!(
                f,
                "  XEN_ELFNOTE_CRASH_DOM0_P2M: version {}, flags {:#x}{}, max_pfn {:#x}, tree {:#x}, p2m_cr3 {:#x}, p2m_vaddr {:#x}, generation {}",
                n.version,
                n.flags,
                if n.compat() { " (PV, 32-bit)" } else if n.pv() { " (PV)" } else { "" },
                n.max_pfn,
                n.pfn_to_mfn_frame_list_list,
                n.p2m_cr3,
                n.p2m_vaddr,
                n.p2m_generation
            )?,
            _ => writeln!(f, "  XEN_ELFNOTE_CRASH_DOM0_P2M: absent")?,
        }
        writeln!(
            f,
            "  XEN_ELFNOTE_CRASH_INFO: dom0 tree root {}, xen_phys_start {}",
            hex(self.crash_info_tree_root),
            hex(self.xen_phys_start)
        )?;
        let from = match self.max_pfn_from {
            MaxPfnFrom::Note => "from the note".to_string(),
            MaxPfnFrom::TreeLastEntry => format!(
                "last entry that is not ~0, of the tree's {} pfns",
                hex(self.tree_extent)
            ),
        };
        writeln!(
            f,
            "dom0: {}-bit, max_pfn {:#x} ({from}), generation {}, entries from the {}",
            self.width.bytes() * 8,
            self.max_pfn,
            self.generation,
            self.source
        )?;
        write!(f, "  tree: {:?}", self.tree)?;
        if let Some(e) = &self.tree_error {
            write!(f, " ({e})")?;
        }
        f.write_str("\n  ")?;
        match self.list_tree {
            Some(c) => p2m::fmt_list_tree(f, c.compared, c.mismatches, c.first_mismatch)?,
            None => f.write_str("list vs tree: not compared")?,
        }
        writeln!(f, "\n  entries: {}", self.entries)?;
        writeln!(f, "  {}", self.stats)?;
        let verdict = if self.consistent() {
            "consistent"
        } else {
            "INCONSISTENT"
        };
        write!(f, "vmcore: {verdict}")
    }
}

fn opts(source: SourcePref) -> ReadOptions {
    ReadOptions {
        source,
        verify_m2p: false,
        attempts: 1,
        ..ReadOptions::default()
    }
}

fn tree_state(root: u64, width: GuestWidth, max_pfn: u64) -> TreeState {
    if root == 0 {
        TreeState::NotSetUp
    } else if root == p2m::all_ones(width) {
        TreeState::Dropped
    } else if max_pfn > p2m::tree_capacity(width) {
        TreeState::TooSmall
    } else {
        TreeState::Present
    }
}

/// Rebuilds dom0's p2m from the dump with the hardened reader.
///
/// `source`: [`SourcePref::Auto`] reads the list when the note has one
/// (and its generation is even), else the tree, and compares the list with
/// the tree when both are there; [`SourcePref::List`] and
/// [`SourcePref::Tree`] read that structure only. Returns the report and
/// the view (for its entries).
pub fn read(
    v: &mut VmcoreFile,
    source: SourcePref,
) -> Result<(VmcoreReport, P2m<'_, VmcoreFile>), Error> {
    let info = v.info().clone();
    let ci = info.crash_info;
    let xen = info
        .xen_release
        .clone()
        .or_else(|| ci.map(|c| format!("{}.{}", c.xen_major_version, c.xen_minor_version)));
    let mut r = VmcoreReport {
        xen,
        cpus: info.prstatus_notes,
        loads: info.loads,
        dumped_bytes: info.dumped_bytes,
        max_mfn: info.max_mfn,
        note: NoteState::Absent,
        dom0_p2m_note: info.dom0_p2m,
        dom0_p2m_note_offset: info.dom0_p2m_offset,
        crash_info_tree_root: ci.map(|c| c.dom0_pfn_to_mfn_frame_list_list),
        xen_phys_start: ci.map(|c| c.xen_phys_start),
        crash_info_agrees: true,
        width: GuestWidth::W64,
        source: Source::Tree,
        max_pfn: 0,
        max_pfn_from: MaxPfnFrom::Note,
        tree_extent: None,
        generation: 0,
        stats: ReadStats {
            source: Source::Tree,
            walk_map_calls: 0,
            map_calls: 0,
            frames_mapped: 0,
            leaves: 0,
            distinct_leaves: 0,
            attempts: 0,
            generation: 0,
        },
        entries: EntryCounts::default(),
        tree: TreeState::NotRead,
        tree_error: None,
        list_tree: None,
        notices: Vec::new(),
    };
    let p = match info.dom0_p2m {
        Some(n) => with_note(v, &n, source, &mut r)?,
        None => without_note(v, source, &mut r)?,
    };
    r.width = p.width();
    r.source = p.source();
    r.max_pfn = p.max_pfn();
    r.generation = p.generation();
    r.stats = *p.stats();
    r.entries = p.entry_counts();
    Ok((r, p))
}

fn with_note<'v>(
    v: &'v mut VmcoreFile,
    n: &Dom0P2mNote,
    pref: SourcePref,
    r: &mut VmcoreReport,
) -> Result<P2m<'v, VmcoreFile>, Error> {
    r.note = NoteState::Present;
    if !n.pv() {
        return Err(Error::VmcoreNoP2m {
            why: format!(
                "the XEN_ELFNOTE_CRASH_DOM0_P2M note has flags {:#x} without XEN_CRASH_DOM0_P2M_PV: \
                 no PV hardware domain existed at the crash (a PVH dom0 has no guest p2m to read)",
                n.flags
            ),
        });
    }
    let width = n.width();
    let root = n.pfn_to_mfn_frame_list_list;
    if let Some(c) = r.crash_info_tree_root {
        r.crash_info_agrees = c == root;
        if c != root {
            r.notices.push(format!(
                "XEN_ELFNOTE_CRASH_INFO names dom0's tree root {c:#x} but XEN_ELFNOTE_CRASH_DOM0_P2M names {root:#x}: Xen wrote both at once, so the dump is inconsistent"
            ));
        }
    }
    let arch = ArchSharedInfo {
        max_pfn: n.max_pfn,
        pfn_to_mfn_frame_list_list: root,
        nmi_reason: 0,
        p2m_cr3: n.p2m_cr3,
        p2m_vaddr: n.p2m_vaddr,
        p2m_generation: n.p2m_generation,
    };
    v.set_dom0(width, &arch);
    let tree = tree_state(root, width, n.max_pfn);
    let list = n.p2m_cr3 != 0;
    let odd = n.p2m_generation & 1 == 1;
    let primary = match pref {
        SourcePref::Tree => SourcePref::Tree,
        SourcePref::List => {
            if list && odd {
                return Err(Error::VmcoreGenerationOdd {
                    generation: n.p2m_generation,
                    hint: if tree == TreeState::Present {
                        "read the tree instead (--source tree)"
                    } else {
                        "dom0 kept no tree, so this dump holds no consistent p2m of dom0"
                    },
                });
            }
            SourcePref::List
        }
        SourcePref::Auto if list && !odd => SourcePref::List,
        SourcePref::Auto if tree == TreeState::Present => {
            r.notices.push(if list {
                format!(
                    "dom0 was changing its list's mappings at the crash (p2m_generation {:#x} is odd); reading the tree",
                    n.p2m_generation
                )
            } else {
                "dom0 did not publish a linear p2m list (p2m_cr3 is 0); reading the tree".to_string()
            });
            SourcePref::Tree
        }
        SourcePref::Auto if list => {
            return Err(Error::VmcoreGenerationOdd {
                generation: n.p2m_generation,
                hint: "dom0 kept no tree, so this dump holds no consistent p2m of dom0",
            })
        }
        SourcePref::Auto => {
            return Err(Error::VmcoreNoP2m {
                why: format!(
                    "dom0 published no linear p2m list (p2m_cr3 is 0) and its tree root is {root:#x} ({})",
                    if root == 0 { "not set up" } else { "dropped" }
                ),
            })
        }
    };
    let p = P2m::read(&*v, DOM0, &opts(primary))?;
    if primary == SourcePref::Tree {
        r.tree = TreeState::Present;
    } else if pref == SourcePref::Auto {
        r.tree = tree;
        if tree == TreeState::Present {
            match P2m::read(&*v, DOM0, &opts(SourcePref::Tree)) {
                Ok(t) => {
                    let (compared, mismatches, first_mismatch) = p.compare_entries(&t);
                    r.list_tree = Some(ListTree {
                        compared,
                        mismatches,
                        first_mismatch,
                    });
                }
                Err(e) if e.is_guest_data() => {
                    r.tree = TreeState::Unreadable;
                    r.tree_error = Some(e.to_string());
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(p)
}

fn without_note<'v>(
    v: &'v mut VmcoreFile,
    pref: SourcePref,
    r: &mut VmcoreReport,
) -> Result<P2m<'v, VmcoreFile>, Error> {
    r.note = NoteState::Absent;
    r.max_pfn_from = MaxPfnFrom::TreeLastEntry;
    if pref == SourcePref::List {
        return Err(Error::VmcoreNoP2m {
            why: "there is no XEN_ELFNOTE_CRASH_DOM0_P2M note, and only that note locates dom0's linear list \
                  (pristine Xen or pv=virt-p2m=no); read the tree with --source tree or auto"
                .to_string(),
        });
    }
    r.notices.push(NO_NOTE_NOTICE.to_string());
    let Some(root) = r.crash_info_tree_root else {
        return Err(Error::VmcoreNoP2m {
            why: "it has neither the XEN_ELFNOTE_CRASH_DOM0_P2M note nor a XEN_ELFNOTE_CRASH_INFO note \
                  (is this the /proc/vmcore of a kdump kernel started by Xen?)"
                .to_string(),
        });
    };
    let width = GuestWidth::W64;
    if root == 0 {
        return Err(Error::VmcoreNoP2m {
            why:
                "there is no XEN_ELFNOTE_CRASH_DOM0_P2M note and CRASH_INFO's dom0 tree root is 0: \
                  dom0 had not set up its tree (or there was no PV dom0)"
                    .to_string(),
        });
    }
    if root == u64::MAX || root == u32::MAX as u64 {
        r.tree = TreeState::Dropped;
        return Err(Error::VmcoreNoP2m {
            why: format!(
                "there is no XEN_ELFNOTE_CRASH_DOM0_P2M note and CRASH_INFO's dom0 tree root is {root:#x}: \
                 dom0 dropped its tree (dom0=virt-p2m), so nothing in the dump locates its p2m. \
                 Take the dump on a Xen with the CRASH_DOM0_P2M patch and pv=virt-p2m on (the default), \
                 or start dom0 without dom0=virt-p2m so that it keeps its tree"
            ),
        });
    }
    let extent = tree_extent(v, root, width)?;
    r.tree_extent = Some(extent);
    let mut arch = ArchSharedInfo {
        max_pfn: extent,
        pfn_to_mfn_frame_list_list: root,
        ..ArchSharedInfo::default()
    };
    v.set_dom0(width, &arch);
    let whole = P2m::read(&*v, DOM0, &opts(SourcePref::Tree))?;
    let Some(last) = last_entry(&whole) else {
        return Err(Error::VmcoreNoP2m {
            why: format!(
                "there is no XEN_ELFNOTE_CRASH_DOM0_P2M note and every entry of the tree at {root:#x} \
                 (its {extent:#x} pfns) is ~0, so dom0's max_pfn cannot be told"
            ),
        });
    };
    drop(whole);
    arch.max_pfn = last + 1;
    v.set_dom0(width, &arch);
    let p = P2m::read(&*v, DOM0, &opts(SourcePref::Tree))?;
    r.tree = TreeState::Present;
    Ok(p)
}

/// Pfns the tree rooted at `root` describes: its root entries up to the
/// first that is 0 or `~0`, each naming a mid page of `fpp` leaves.
fn tree_extent(v: &VmcoreFile, root: u64, width: GuestWidth) -> Result<u64, Error> {
    let page = v.read_frame(root)?;
    let w = width.bytes();
    let fpp = (crate::types::PAGE_SIZE / w) as u64;
    let ones = p2m::all_ones(width);
    let n = (0..fpp as usize)
        .map(|i| match width {
            GuestWidth::W64 => u64_at(&page, i * w),
            GuestWidth::W32 => u32_at(&page, i * w) as u64,
        })
        .take_while(|&e| e != 0 && e != ones)
        .count() as u64;
    if n == 0 {
        return Err(Error::VmcoreNoP2m {
            why: format!(
                "there is no XEN_ELFNOTE_CRASH_DOM0_P2M note and the first entry of the tree root page {root:#x} is 0 or ~0: the tree is empty"
            ),
        });
    }
    Ok(n * fpp * fpp)
}

/// The last pfn whose entry is not `~0`, looking at each distinct leaf
/// page once.
fn last_entry(p: &P2m<VmcoreFile>) -> Option<u64> {
    let fpp = p.entries_per_page();
    let ones = p2m::all_ones(p.width());
    let mut last_in: HashMap<Mfn, Option<u64>> = HashMap::new();
    for k in (0..p.leaf_count()).rev() {
        let frame = p.leaf_frame(k)?;
        let first = k * fpp;
        let used = (p.max_pfn() - first).min(fpp);
        let at = *last_in.entry(frame).or_insert_with(|| {
            (0..used)
                .rev()
                .find(|&i| p.raw(Pfn(first + i)).is_ok_and(|e| e != ones))
        });
        if let Some(i) = at {
            return Some(first + i);
        }
    }
    None
}
