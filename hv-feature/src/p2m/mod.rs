// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The hardened reader of a PV guest's p2m: the virtually mapped linear
//! list (walked through the guest's page tables from `p2m_cr3`), or the
//! 3-level tree when the list is not published, guarded by
//! `p2m_generation`.
//!
//! Every guest value is checked as docs/design.md section 4 says, with a typed
//! [`Error`] naming the value. Memory is bounded by the p2m's own
//! structure: each distinct leaf page is mapped once, and an index maps
//! leaf positions to those pages, so a huge guest whose unpopulated
//! ranges share one "missing" page costs little.
//!
//! ```
//! use hv_feature::p2m::{P2m, ReadOptions, Entry};
//! use hv_feature::sim::{GuestSpec, SimHost};
//! use hv_feature::{DomId, GuestWidth, Pfn};
//! let host = SimHost::new(1 << 20).unwrap();
//! let dom = host.add_guest(&GuestSpec::new(DomId(3), GuestWidth::W64, 2048)).unwrap();
//! let p2m = P2m::read(&host, dom, &ReadOptions::default()).unwrap();
//! let mfn = host.ram_mfn(dom, Pfn(7)).unwrap().unwrap();
//! assert_eq!(p2m.lookup(Pfn(7)).unwrap(), Entry::Mfn(mfn));
//! ```

#[cfg(test)]
mod api_tests;
mod changes;
mod runs;
mod verify;
mod walk;
#[cfg(test)]
mod work_tests;

pub use runs::{Run, Runs};
pub(crate) use verify::fmt_list_tree;
pub use verify::{verify, EntryCounts, M2pMismatch, TreeStatus, VerifyReport};
pub use walk::{all_ones, tree_capacity, MAX_PFN_BOUND};

use crate::backend::{Backend, Mapping};
use crate::domain;
use crate::error::Error;
use crate::shared_info::ArchSharedInfo;
use crate::types::{DomId, GuestWidth, Mfn, Pfn};
use serde::Serialize;
use std::fmt;
use std::time::Duration;
use walk::Walk;

/// Which structure a p2m was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Source {
    /// The virtually mapped linear list.
    List,
    /// The 3-level tree.
    Tree,
}

impl fmt::Display for Source {
    /// `list` or `tree`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::List => "list",
            Source::Tree => "tree",
        })
    }
}

/// Which structure to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourcePref {
    /// The list when published (`p2m_cr3 != 0`), else the tree.
    #[default]
    Auto,
    /// The list only.
    List,
    /// The tree only.
    Tree,
}

/// How to read: [`ReadOptions::default`] (auto source, no M2P check, 8
/// attempts 1 ms apart at first), changed with the `with_` methods.
///
/// ```
/// use hv_feature::p2m::{ReadOptions, SourcePref};
/// let opts = ReadOptions::default()
///     .with_source(SourcePref::List)
///     .with_verify_m2p(true);
/// assert_eq!(opts.attempts, 8);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReadOptions {
    /// Which structure.
    pub source: SourcePref,
    /// Check every valid entry against the M2P (rule 6) and fail with
    /// [`Error::M2pMismatch`] on the first that does not round-trip.
    pub verify_m2p: bool,
    /// Attempts when the generation is odd or moves during a read
    /// (at least 1).
    pub attempts: u32,
    /// Pause before the second attempt; it doubles for each further one
    /// (up to 64 times this).
    pub retry_delay: Duration,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            source: SourcePref::Auto,
            verify_m2p: false,
            attempts: 8,
            retry_delay: Duration::from_millis(1),
        }
    }
}

impl ReadOptions {
    /// Reads `source`.
    pub fn with_source(mut self, source: SourcePref) -> Self {
        self.source = source;
        self
    }

    /// Checks every valid entry against the M2P (or not).
    pub fn with_verify_m2p(mut self, on: bool) -> Self {
        self.verify_m2p = on;
        self
    }

    /// Makes at most `attempts` attempts (at least 1 is made).
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// Pauses `delay` before the second attempt (doubling after).
    pub fn with_retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }
}

/// A decoded p2m entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum Entry {
    /// Backed by this machine frame.
    Mfn(Mfn),
    /// `~0`: not populated (or inside the shared identity page, which
    /// Linux fills with `~0` too).
    Invalid,
    /// 1:1 mapped (IDENTITY bit: 62 on 64-bit, 30 on 32-bit); the value
    /// with the bit cleared.
    Identity(Mfn),
    /// Another domain's frame (FOREIGN bit: 63 on 64-bit, 31 on 32-bit);
    /// the value with the type bits cleared.
    Foreign(Mfn),
}

impl Entry {
    /// Decodes a raw entry of a guest of `width`.
    pub fn decode(raw: u64, width: GuestWidth) -> Entry {
        let bits = width.bytes() as u32 * 8;
        let foreign = 1u64 << (bits - 1);
        let identity = 1u64 << (bits - 2);
        if raw == all_ones(width) {
            Entry::Invalid
        } else if raw & foreign != 0 {
            Entry::Foreign(Mfn(raw & !(foreign | identity)))
        } else if raw & identity != 0 {
            Entry::Identity(Mfn(raw & !identity))
        } else {
            Entry::Mfn(Mfn(raw))
        }
    }

    /// The machine frame of a plain entry; `None` for an invalid,
    /// identity or foreign one (not a frame of this domain).
    pub fn mfn(self) -> Option<Mfn> {
        match self {
            Entry::Mfn(m) => Some(m),
            Entry::Invalid | Entry::Identity(_) | Entry::Foreign(_) => None,
        }
    }
}

impl fmt::Display for Entry {
    /// `mfn 0x1234`, `invalid (~0)`, `identity 0x1234`, `foreign mfn 0x1234`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Mfn(m) => write!(f, "mfn {m}"),
            Entry::Invalid => f.write_str("invalid (~0)"),
            Entry::Identity(m) => write!(f, "identity {m}"),
            Entry::Foreign(m) => write!(f, "foreign mfn {m}"),
        }
    }
}

/// What one read cost and found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReadStats {
    /// The structure read.
    pub source: Source,
    /// Map calls of the successful walk (list: levels + 1; tree: 3).
    pub walk_map_calls: u32,
    /// All map calls of this read: shared_info, every attempt, the M2P.
    pub map_calls: u32,
    /// Frames mapped by all those calls.
    pub frames_mapped: u64,
    /// Leaf positions (`ceil(max_pfn / entries per page)`).
    pub leaves: u64,
    /// Distinct leaf frames among them (each mapped once).
    pub distinct_leaves: u64,
    /// Attempts the generation protocol needed.
    pub attempts: u32,
    /// `p2m_generation` of the view.
    pub generation: u64,
}

impl fmt::Display for ReadStats {
    /// One line: `map calls 6 (walk 5), frames mapped 9, leaves 4 (4
    /// distinct), attempts 1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "map calls {} (walk {}), frames mapped {}, leaves {} ({} distinct), attempts {}",
            self.map_calls,
            self.walk_map_calls,
            self.frames_mapped,
            self.leaves,
            self.distinct_leaves,
            self.attempts
        )
    }
}

/// One leaf position whose frame differs between two views.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LeafChange {
    /// Leaf position.
    pub leaf: u64,
    /// First pfn it holds.
    pub first_pfn: Pfn,
    /// Its frame before (`None`: beyond the old `max_pfn`).
    pub before: Option<Mfn>,
    /// Its frame now (`None`: beyond the new `max_pfn`).
    pub after: Option<Mfn>,
}

/// What [`P2m::refresh`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum Refresh {
    /// Nothing moved; no map call was made.
    Unchanged,
    /// The p2m was walked again.
    Changed {
        /// Generation of the old view.
        generation_before: u64,
        /// Generation of the new view.
        generation_after: u64,
        /// `max_pfn` of the old view.
        max_pfn_before: u64,
        /// `max_pfn` of the new view.
        max_pfn_after: u64,
        /// Leaf positions whose frame changed, the first
        /// [`MAX_LEAF_CHANGES`] of them.
        changed_leaves: Vec<LeafChange>,
        /// How many leaf positions changed in all.
        changed_count: u64,
    },
}

impl fmt::Display for LeafChange {
    /// `leaf 0x3 (pfn 0x600): mfn 0x1234 -> mfn 0x5678` (`-` beyond
    /// `max_pfn`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frame = |m: Option<Mfn>| m.map_or("-".to_string(), |m| format!("mfn {m}"));
        write!(
            f,
            "leaf {:#x} (pfn {}): {} -> {}",
            self.leaf,
            self.first_pfn,
            frame(self.before),
            frame(self.after)
        )
    }
}

impl fmt::Display for Refresh {
    /// `unchanged`, or `changed: generation 2 -> 4, max_pfn 0x800 ->
    /// 0x1000, 3 leaf positions changed frame`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refresh::Unchanged => f.write_str("unchanged"),
            Refresh::Changed {
                generation_before,
                generation_after,
                max_pfn_before,
                max_pfn_after,
                changed_count,
                ..
            } => write!(
                f,
                "changed: generation {generation_before} -> {generation_after}, \
                 max_pfn {max_pfn_before:#x} -> {max_pfn_after:#x}, \
                 {changed_count} leaf positions changed frame"
            ),
        }
    }
}

/// Most leaf changes a [`Refresh`] lists: the guest controls how many
/// positions differ (e.g. by shrinking `max_pfn`), so the list is capped
/// and the total counted.
pub const MAX_LEAF_CHANGES: usize = 1 << 16;

/// The facts a read needs, and its map-call count.
struct Ctx<'a, B: Backend> {
    b: &'a B,
    dom: DomId,
    map_dom: DomId,
    width: GuestWidth,
    max_mfn: u64,
    map_calls: u32,
    frames_mapped: u64,
}

impl<B: Backend> Ctx<'_, B> {
    fn map(&mut self, frames: &[u64]) -> Result<B::Map, Error> {
        self.map_calls += 1;
        let frames: Vec<Mfn> = frames.iter().copied().map(Mfn).collect();
        let m = self.b.map_frames(self.map_dom, &frames)?;
        self.frames_mapped += frames.len() as u64;
        Ok(m)
    }

    /// Maps frames the guest named (page tables, list and tree pages): a
    /// frame Xen refuses to map is the guest's fault, not the host's.
    fn map_guest(&mut self, frames: &[u64]) -> Result<B::Map, Error> {
        self.map(frames).map_err(|e| match e {
            Error::MapFrame { frame, errno, .. } => Error::GuestFrameUnmappable {
                dom: self.dom,
                frame,
                errno,
            },
            e => e,
        })
    }
}

/// Opens `dom` ([`domain::PvDomain::open`]: domain facts, width, a kept
/// mapping of its shared_info) and asks the host's maximum mfn.
fn open<B: Backend>(b: &B, dom: DomId) -> Result<(Ctx<'_, B>, B::Map), Error> {
    let pv = domain::PvDomain::open(b, dom)?;
    let max_mfn = domain::max_mfn(b)?;
    let cx = Ctx {
        b,
        dom,
        map_dom: pv.map_dom,
        width: pv.width,
        max_mfn: max_mfn.0,
        // The shared_info map.
        map_calls: 1,
        frames_mapped: 1,
    };
    Ok((cx, pv.into_shared_info()))
}

/// The shared_info arch fields now, fenced for the generation protocol
/// ([`ArchSharedInfo::from_mem`]).
fn decode_arch<M: Mapping>(shinfo: &M, width: GuestWidth) -> Result<ArchSharedInfo, Error> {
    ArchSharedInfo::from_mem(shinfo.mem(), width)
}

/// What must not move while a view is read.
fn key(a: &ArchSharedInfo, source: Source) -> (u64, u64, u64, u64) {
    match source {
        Source::List => (a.p2m_generation, a.p2m_cr3, a.p2m_vaddr, a.max_pfn),
        Source::Tree => (a.pfn_to_mfn_frame_list_list, a.max_pfn, 0, 0),
    }
}

fn choose(pref: SourcePref, a: &ArchSharedInfo, dom: DomId) -> Result<Source, Error> {
    match pref {
        SourcePref::List if a.p2m_cr3 == 0 => Err(Error::ListNotPublished { dom }),
        SourcePref::List => Ok(Source::List),
        SourcePref::Tree => Ok(Source::Tree),
        SourcePref::Auto if a.p2m_cr3 != 0 => Ok(Source::List),
        SourcePref::Auto => Ok(Source::Tree),
    }
}

/// The generation protocol (rule 7) around one walk: odd = try again
/// later; moved during the walk = try again; a bounded number of times.
/// An error found while nothing moved is the guest's, and returned.
fn read_stable<B: Backend>(
    cx: &mut Ctx<'_, B>,
    shinfo: &B::Map,
    pref: SourcePref,
    opts: &ReadOptions,
) -> Result<(ArchSharedInfo, Walk<B::Map>, u32), Error> {
    let attempts = opts.attempts.max(1);
    let mut odd = None;
    let mut moved = (0, 0);
    for attempt in 1..=attempts {
        if attempt > 1 {
            std::thread::sleep(opts.retry_delay * (1 << (attempt - 2).min(6)));
        }
        let before = decode_arch(shinfo, cx.width)?;
        let source = choose(pref, &before, cx.dom)?;
        if source == Source::List && before.p2m_generation & 1 == 1 {
            odd = Some(before.p2m_generation);
            continue;
        }
        let r = match source {
            Source::List => walk::walk_list(cx, &before),
            Source::Tree => walk::walk_tree(cx, &before),
        };
        let after = decode_arch(shinfo, cx.width)?;
        if key(&before, source) == key(&after, source) {
            return r.map(|w| (before, w, attempt));
        }
        odd = None;
        moved = (before.p2m_generation, after.p2m_generation);
    }
    Err(match odd {
        Some(generation) => Error::GenerationOdd {
            dom: cx.dom,
            generation,
            attempts,
        },
        None => Error::GenerationUnstable {
            dom: cx.dom,
            first: moved.0,
            last: moved.1,
            attempts,
        },
    })
}

/// A domain's p2m, read and checked; the leaf pages stay mapped (live).
/// The view keeps the backend it was read from: [`P2m::refresh`] and
/// [`P2m::check_m2p`] go to the same one.
pub struct P2m<'b, B: Backend> {
    b: &'b B,
    dom: DomId,
    map_dom: DomId,
    width: GuestWidth,
    max_mfn: u64,
    opts: ReadOptions,
    shinfo: B::Map,
    arch: ArchSharedInfo,
    walk: Walk<B::Map>,
    stats: ReadStats,
}

impl<B: Backend> fmt::Debug for P2m<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("P2m")
            .field("dom", &self.dom)
            .field("width", &self.width)
            .field("arch", &self.arch)
            .field("stats", &self.stats)
            .finish()
    }
}

impl<'b, B: Backend> P2m<'b, B> {
    /// Reads domain `dom`'s p2m (dom 0: the caller's own, mapped with
    /// `DOMID_SELF`). A 64-bit list costs 5 map calls (4 levels and the
    /// leaves), a PAE list 4, the tree 3, plus one for shared_info and,
    /// with [`ReadOptions::verify_m2p`], one for the M2P.
    pub fn read(b: &'b B, dom: DomId, opts: &ReadOptions) -> Result<P2m<'b, B>, Error> {
        let (mut cx, shinfo) = open(b, dom)?;
        let (arch, walk, attempts) = read_stable(&mut cx, &shinfo, opts.source, opts)?;
        let mut p = P2m {
            b,
            dom,
            map_dom: cx.map_dom,
            width: cx.width,
            max_mfn: cx.max_mfn,
            opts: opts.clone(),
            shinfo,
            arch,
            stats: stats(&walk, &arch, attempts, &cx),
            walk,
        };
        if opts.verify_m2p {
            let (calls, frames) = p.verify_m2p()?;
            p.stats.map_calls += calls;
            p.stats.frames_mapped += frames;
        }
        Ok(p)
    }

    fn verify_m2p(&self) -> Result<(u32, u64), Error> {
        let m2p = domain::map_m2p(self.b, Mfn(self.max_mfn))?;
        let frames = (m2p.len() as usize * 8).div_ceil(crate::types::PAGE_SIZE) as u64;
        let scan = verify::m2p_scan(&self.walk, &m2p);
        match scan.first {
            Some(m) => Err(Error::M2pMismatch {
                dom: self.dom,
                pfn: m.pfn,
                mfn: m.mfn,
                m2p: m.m2p,
            }),
            None => Ok((1, frames)),
        }
    }

    /// The backend the view was read from.
    pub fn backend(&self) -> &'b B {
        self.b
    }

    /// The domain.
    pub fn dom(&self) -> DomId {
        self.dom
    }

    /// Its width.
    pub fn width(&self) -> GuestWidth {
        self.width
    }

    /// Entries of this view.
    pub fn max_pfn(&self) -> u64 {
        self.walk.max_pfn
    }

    /// The structure read.
    pub fn source(&self) -> Source {
        self.walk.source
    }

    /// `p2m_generation` of this view.
    pub fn generation(&self) -> u64 {
        self.arch.p2m_generation
    }

    /// The shared_info arch fields this view was read under.
    pub fn arch(&self) -> &ArchSharedInfo {
        &self.arch
    }

    /// What the read cost.
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    /// The raw entry of `pfn`, as the guest's leaf page holds it now.
    pub fn raw(&self, pfn: Pfn) -> Result<u64, Error> {
        if pfn.0 >= self.walk.max_pfn {
            return Err(Error::PfnOutOfRange {
                pfn,
                max_pfn: self.walk.max_pfn,
            });
        }
        self.walk.raw(pfn.0).ok_or(Error::Unexpected {
            what: "p2m index (internal)",
            value: pfn.0,
        })
    }

    /// The decoded entry of `pfn`.
    pub fn lookup(&self, pfn: Pfn) -> Result<Entry, Error> {
        Ok(Entry::decode(self.raw(pfn)?, self.width))
    }

    /// The machine frame backing `pfn`: `Some` for a plain entry, `None`
    /// for an invalid, identity or foreign one ([`P2m::lookup`] says
    /// which); [`Error::PfnOutOfRange`] for a pfn not below
    /// [`P2m::max_pfn`].
    pub fn mfn(&self, pfn: Pfn) -> Result<Option<Mfn>, Error> {
        Ok(self.lookup(pfn)?.mfn())
    }

    /// The plain entries as maximal [`Run`]s of consecutive pfns backed by
    /// consecutive frames, in pfn order. Invalid, identity and foreign
    /// entries are not in any run (they end one).
    ///
    /// Work follows the p2m's pages, not `max_pfn`: creating the iterator
    /// reads each distinct leaf page and index row once; iterating enters
    /// only the index rows and leaf positions whose page holds a plain
    /// entry, and reads those pages entry by entry. A guest whose
    /// unpopulated range spans 2^40 pfns through shared pages costs a few
    /// steps for all of it. (A page that holds plain entries and that the
    /// guest's structure names at many positions is read at each: it
    /// yields runs at each.)
    pub fn runs(&self) -> Runs<'_> {
        Runs::new(&self.walk)
    }

    /// Entries by kind, counted once per distinct leaf page (cost follows
    /// the distinct pages, not `max_pfn`).
    pub fn entry_counts(&self) -> EntryCounts {
        verify::count_entries(&self.walk)
    }

    /// Every entry, in pfn order (one borrow of the leaf mapping): one
    /// step per pfn up to `max_pfn`, which the guest chose (up to 2^40);
    /// [`P2m::runs`] costs what the guest's pages hold instead.
    pub fn entries(&self) -> impl Iterator<Item = (Pfn, Entry)> + '_ {
        let leaves = self.walk.leaves.mem();
        let w = self.width;
        (0..self.walk.max_pfn).map(move |p| {
            let raw = self.walk.raw_in(leaves, p).unwrap_or(all_ones(w));
            (Pfn(p), Entry::decode(raw, w))
        })
    }

    /// Leaf positions.
    pub fn leaf_count(&self) -> u64 {
        self.walk.nleaves
    }

    /// The frame of leaf position `k` (entries `k * entries_per_page ..`).
    pub fn leaf_frame(&self, k: u64) -> Option<Mfn> {
        self.walk.leaf_frame(k).map(Mfn)
    }

    /// Entries per leaf page (512 on 64-bit, 1024 on 32-bit).
    pub fn entries_per_page(&self) -> u64 {
        self.walk.fpp
    }

    /// Compares this view with `other` (e.g. the list with the tree of
    /// the same guest) over the pfns both hold, each distinct pair of leaf
    /// pages once, as [`verify`] does. Returns (entries compared,
    /// entries that differ, the first pfn that differs).
    pub fn compare_entries(&self, other: &P2m<'_, B>) -> (u64, u64, Option<Pfn>) {
        verify::compare(&self.walk, &other.walk)
    }

    /// Checks every valid entry against the M2P now (of the view's
    /// backend); the first that does not round-trip is an
    /// [`Error::M2pMismatch`].
    pub fn check_m2p(&self) -> Result<(), Error> {
        self.verify_m2p().map(|_| ())
    }

    /// For long readers: if the generation and the list's fields have not
    /// moved, returns [`Refresh::Unchanged`] without any map call (the
    /// kept shared_info mapping is live). Otherwise walks again (a tree
    /// view, which has no generation, always walks again) and reports the
    /// leaf positions whose frame changed. Entry values inside a leaf are
    /// not covered by the generation; lookups always show their current
    /// value. The walk goes to the backend the view was read from.
    pub fn refresh(&mut self) -> Result<Refresh, Error> {
        let now = decode_arch(&self.shinfo, self.width)?;
        if self.walk.source == Source::List
            && key(&now, Source::List) == key(&self.arch, Source::List)
        {
            return Ok(Refresh::Unchanged);
        }
        let mut cx = Ctx {
            b: self.b,
            dom: self.dom,
            map_dom: self.map_dom,
            width: self.width,
            max_mfn: self.max_mfn,
            map_calls: 0,
            frames_mapped: 0,
        };
        let (arch, walk, attempts) =
            read_stable(&mut cx, &self.shinfo, self.opts.source, &self.opts)?;
        let (changed, changed_count) = changes::leaf_changes(&self.walk, &walk);
        let r = Refresh::Changed {
            generation_before: self.arch.p2m_generation,
            generation_after: arch.p2m_generation,
            max_pfn_before: self.walk.max_pfn,
            max_pfn_after: walk.max_pfn,
            changed_leaves: changed,
            changed_count,
        };
        self.stats = stats(&walk, &arch, attempts, &cx);
        self.arch = arch;
        self.walk = walk;
        if self.opts.verify_m2p {
            self.verify_m2p()?;
        }
        Ok(r)
    }
}

fn stats<B: Backend>(
    walk: &Walk<B::Map>,
    arch: &ArchSharedInfo,
    attempts: u32,
    cx: &Ctx<'_, B>,
) -> ReadStats {
    ReadStats {
        source: walk.source,
        walk_map_calls: walk.map_calls,
        map_calls: cx.map_calls,
        frames_mapped: cx.frames_mapped,
        leaves: walk.nleaves,
        distinct_leaves: walk.leaf_mfns.len() as u64,
        attempts,
        generation: arch.p2m_generation,
    }
}
