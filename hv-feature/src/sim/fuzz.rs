// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Fuzz cases: a simulated guest built from arbitrary bytes, read with the
//! hardened reader and [`verify`], and judged against the simulation.
//!
//! The same decoder serves the coverage-guided fuzz targets
//! (`hv-feature/fuzz/`) and the regression test that replays what they
//! found (`hv-feature/tests/fuzz_regressions.rs`), so a saved input means
//! the same guest in both.
//!
//! One input describes, in order: the guest (width, `max_pfn`, RAM,
//! identity and foreign ranges, tree mode, list address, page-table
//! noise); hostile changes made before the read (any `shared_info` field,
//! any page-table entry, any word of an interesting frame, the M2P, a
//! churning generation, a wrong address size) and honest ones (populate,
//! set an entry, remap a leaf under the generation protocol); and, for
//! [`Target::Race`], a concurrent writer's schedule: changes made right
//! after the reader's n-th map call, so the interleaving is deterministic
//! and every crash replays.
//!
//! Properties checked by [`run`] (a failure is a [`Violation`]; a panic is
//! the fuzzer's crash):
//! - every error is typed and names guest data or a refused map, never
//!   [`Error::Unexpected`] (an internal inconsistency);
//! - bounded work: map calls per read and per verify within the
//!   generation protocol's attempts;
//! - bounded memory (with a [`Meter`]): peak heap growth during read and
//!   verify within [`memory_bound`];
//! - a successful read agrees with an independent, naive walk of the
//!   simulated memory (leaf frames and entries), and under a concurrent
//!   writer that follows the protocol, with one stable state the writer
//!   passed through (never a mixed view);
//! - a successful [`verify`] of a small guest counts exactly what the
//!   naive walk counts (entry kinds, list/tree and M2P mismatches).
//!
//! ```
//! use hv_feature::sim::fuzz::{run, Target};
//! let outcome = run(Target::Read, &[0, 0, 0x10, 0x20], None).unwrap();
//! assert!(outcome.built);
//! ```

use super::{GuestSpec, SimHost, TreeMode};
use crate::backend::Backend;
use crate::domain::DomainInfo;
use crate::error::Error;
use crate::p2m::{verify, P2m, ReadOptions, Source, TreeStatus, VerifyReport};
use crate::shared_info::ArchSharedInfo;
use crate::types::{DomId, GuestWidth, Mfn, Pfn, PAGE_SIZE};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::ops::Range;
use std::time::Duration;

/// Largest mfn of the fuzz host (its frame table costs 16 bytes a frame).
pub const HOST_MAX_MFN: u64 = 1 << 17;
/// Attempts the generation protocol gets in a fuzz case.
pub const ATTEMPTS: u32 = 3;
/// RAM pfns a fuzz guest may have (each costs a simulated frame).
const RAM_BUDGET: u64 = 6000;
/// Guests up to this many pfns are compared entry by entry in full.
const FULL_CHECK: u64 = 1 << 15;
/// Frame bits of a page-table entry.
const FRAME_MASK: u64 = 0x000f_ffff_ffff_f000;
/// The guest the reader reads (unless the input asks for dom0).
const GUEST: DomId = DomId(1);
/// A small second guest whose frames hostile entries may name.
const OTHER: DomId = DomId(5);

/// Which fuzz target a case is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A static hostile guest: build, change, then read and verify.
    Read,
    /// As `Read`, plus a concurrent writer's schedule during the reads.
    Race,
}

impl Target {
    /// The target's name (its directory under `fuzz/regressions/`).
    pub fn name(self) -> &'static str {
        match self {
            Target::Read => "p2m_read",
            Target::Race => "p2m_race",
        }
    }

    /// The target named `name`.
    pub fn from_name(name: &str) -> Option<Target> {
        match name {
            "p2m_read" => Some(Target::Read),
            "p2m_race" => Some(Target::Race),
            _ => None,
        }
    }
}

/// Measures heap growth, e.g. with a counting global allocator.
pub trait Meter {
    /// Takes the current heap size as the base and resets the peak.
    fn start(&self);
    /// Highest heap size since [`Meter::start`], minus the base.
    fn peak(&self) -> usize;
}

/// A broken property: what was expected and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Violation {}

/// What a case did (for logs and tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The simulation accepted the guest (else nothing was read).
    pub built: bool,
    /// The read's result: `list`, `tree` or the error's variant.
    pub read: String,
    /// The verify's result: `consistent`, `inconsistent` or the error.
    pub verify: String,
    /// The read's result was compared with the naive walk.
    pub checked: bool,
    /// Map calls of the read and of the verify.
    pub map_calls: (u64, u64),
    /// Peak heap growth during read and verify (0 without a meter).
    pub peak_bytes: usize,
    /// The bound it was held to.
    pub bound_bytes: usize,
}

/// The memory a read plus a verify may use: a constant, the frames they
/// mapped (the simulation copies each mapped frame once per version it
/// shows; privcmd maps them without heap), and the leaf index, which
/// has a few words per level-1 table position (`max_pfn / 2^18` on
/// 64-bit, checked to be at most 2^40 / 2^18).
pub fn memory_bound(frames_mapped: u64, max_pfn: u64) -> usize {
    let frames = frames_mapped.saturating_mul(3 * PAGE_SIZE as u64);
    let index = (max_pfn.min(crate::p2m::MAX_PFN_BOUND) >> 17).saturating_mul(64);
    (4u64 << 20)
        .saturating_add(frames)
        .saturating_add(index)
        .try_into()
        .unwrap_or(usize::MAX)
}

/// Bytes of fuzz input, read front to back; zeros once exhausted.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        for x in &mut b {
            *x = self.data.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
        }
        b
    }
    fn u8(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.bytes())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }
    /// A value below `n` (0 for `n == 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.u64().checked_rem(n).unwrap_or(0)
    }
}

/// The guest as decoded, with what the checks need.
struct Case {
    host: SimHost,
    dom: DomId,
    width: GuestWidth,
    /// Leaf positions the list's mappings cover.
    positions: u64,
    /// Changes that a naive walk cannot follow (a wrong address size).
    unchecked: bool,
    /// Frames worth naming in hostile values.
    frames: Vec<u64>,
}

fn decode_spec(inp: &mut Input<'_>) -> GuestSpec {
    let flags = inp.u8();
    let width = if flags & 1 == 0 {
        GuestWidth::W64
    } else {
        GuestWidth::W32
    };
    let dom = if flags & 0x80 != 0 { DomId(0) } else { GUEST };
    let class = inp.u8();
    let mut max_pfn = match class % 4 {
        0 => 1 + inp.u16() as u64,
        1 => 1 + ((inp.u16() as u64) << 6),
        2 => ((1u64 << (18 + inp.u8() % 14)) + inp.u16() as u64).saturating_sub(1 << 15),
        _ => 512 * (1 + inp.u16() as u64 % 4096),
    }
    .max(1);
    if width == GuestWidth::W32 {
        max_pfn = max_pfn.min(1 << 26);
    }
    let mut spec = GuestSpec::new(dom, width, max_pfn);
    spec.tree = match (flags >> 1) & 3 {
        1 => TreeMode::Dropped,
        2 => TreeMode::NotSetUp,
        _ => spec.tree,
    };
    spec.publish_list = flags & 8 == 0;
    spec.noise = flags & 0x10 != 0;
    spec.hvm = flags & 0x60 == 0x60;
    let default_va: u64 = if width == GuestWidth::W64 {
        0xffff_c900_0000_0000
    } else {
        0xd000_0000
    };
    let small = max_pfn <= 1 << 20;
    spec.vaddr = match inp.u8() % 8 {
        5 if small => Some(default_va + ((inp.u16() as u64) << 12)),
        6 if small => Some(inp.u64() & !0xfff),
        7 if width == GuestWidth::W64 => Some(default_va + ((inp.u8() as u64) << 30)),
        7 => Some(default_va - ((inp.u8() as u64 % 32) << 22)),
        _ => None,
    };
    // RAM: all of a small guest, or a few ranges within the budget.
    let nram = inp.u8() % 6;
    spec.ram = if nram == 5 && max_pfn <= RAM_BUDGET {
        std::iter::once(0..max_pfn).collect()
    } else {
        let mut budget = RAM_BUDGET;
        let mut v = Vec::new();
        for _ in 0..nram {
            let start = inp.below(max_pfn);
            let len = (inp.u16() as u64 % 2048).min(budget).min(max_pfn - start);
            budget -= len;
            v.push(start..start + len);
        }
        v
    };
    let range = |inp: &mut Input<'_>, cap: u64| -> Range<u64> {
        let start = inp.below(max_pfn);
        let len = (inp.u32() as u64 % cap).min(max_pfn - start);
        start..start + len
    };
    spec.identity = (0..inp.u8() % 3).map(|_| range(inp, 1 << 32)).collect();
    spec.foreign = (0..inp.u8() % 2).map(|_| range(inp, 64)).collect();
    spec
}

impl Case {
    fn build(inp: &mut Input<'_>) -> Result<Option<Case>, Violation> {
        let host = SimHost::new(HOST_MAX_MFN).map_err(|e| Violation(format!("host: {e}")))?;
        host.add_guest(&GuestSpec::new(OTHER, GuestWidth::W64, 64))
            .map_err(|e| Violation(format!("second guest: {e}")))?;
        let spec = decode_spec(inp);
        // The simulation refuses some layouts (a list past 4 GiB for a
        // 32-bit guest, one that wraps): nothing to read then.
        if host.add_guest(&spec).is_err() {
            return Ok(None);
        }
        let layout = host
            .list_layout(spec.domid)
            .map_err(|e| Violation(format!("layout: {e}")))?;
        let fpp = (PAGE_SIZE / spec.width.bytes()) as u64;
        let mut frames = vec![
            layout.root.0,
            layout.missing_leaf.0,
            layout.identity_leaf.0,
            layout.missing_l1.0,
            layout.identity_l1.0,
            0,
            HOST_MAX_MFN,
            HOST_MAX_MFN + 1,
        ];
        frames.extend(layout.tree_root.map(|m| m.0));
        frames.extend(layout.tree_mid_missing.map(|m| m.0));
        for d in [spec.domid, OTHER] {
            if let Ok(m) = host.shared_info_frame(d) {
                frames.push(m.0);
            }
        }
        for k in [0, 1, layout.capacity / fpp - 1] {
            if let Ok(m) = host.leaf_frame(spec.domid, k) {
                frames.push(m.0);
            }
        }
        Ok(Some(Case {
            host,
            dom: spec.domid,
            width: spec.width,
            positions: layout.capacity / fpp,
            unchecked: false,
            frames,
        }))
    }

    fn levels(&self) -> u32 {
        if self.width == GuestWidth::W64 {
            4
        } else {
            3
        }
    }

    fn fpp(&self) -> u64 {
        (PAGE_SIZE / self.width.bytes()) as u64
    }

    fn frame(&self, inp: &mut Input<'_>) -> u64 {
        match inp.u8() % 4 {
            0 => inp.u64() % (HOST_MAX_MFN + 2),
            1 => self
                .host
                .leaf_frame(self.dom, inp.below(self.positions))
                .map(|m| m.0)
                .unwrap_or(0),
            _ => self.frames[inp.u8() as usize % self.frames.len()],
        }
    }

    fn value(&self, inp: &mut Input<'_>, cur: u64) -> u64 {
        match inp.u8() % 9 {
            0 => inp.u64(),
            1 => cur ^ (1 << (inp.u8() % 64)),
            2 => cur.wrapping_add(inp.u16() as i16 as i64 as u64),
            3 => 0,
            4 => u64::MAX,
            5 => u32::MAX as u64,
            6 => self.frame(inp) << 12,
            7 => 1 << (inp.u8() % 64),
            _ => cur.wrapping_mul(1 << (inp.u8() % 8)),
        }
    }

    /// One change of the guest. Returns whether it follows the
    /// generation protocol (a naive walk of the result is still the
    /// truth either way; a concurrent one is only judged if honest).
    fn change(&mut self, inp: &mut Input<'_>, op: u8) -> bool {
        let (h, dom) = (&self.host, self.dom);
        match op {
            0 => {
                let field = inp.u8() % 6;
                let Ok(mut a) = h.arch(dom) else { return false };
                let v = self.value(inp, *arch_field(&mut a, field));
                let _ = h.update_arch(dom, |a| *arch_field(a, field) = v);
                false
            }
            1 => {
                let level = 1 + inp.u8() as u32 % self.levels();
                let k = inp.below(self.positions);
                let Ok(a) = h.arch(dom) else { return false };
                let va = a.p2m_vaddr.wrapping_add(k.wrapping_mul(PAGE_SIZE as u64));
                let Ok((t, off)) = h.pte_location(dom, level, va) else {
                    return false;
                };
                let cur = h.read_word(t, off, 8).unwrap_or(0);
                let v = match inp.u8() % 6 {
                    0 => cur ^ (1 << (inp.u8() % 64)),
                    1 => inp.u64(),
                    2 => (self.frame(inp) << 12) | (cur & 0xfff),
                    3 => 0,
                    4 => cur | 0x80,
                    _ => cur & !1,
                };
                let _ = h.write_word(t, off, 8, v);
                false
            }
            2 => {
                let m = self.frame(inp);
                let ww = if inp.u8() & 1 == 0 { 8 } else { 4 };
                let off = inp.u16() as usize % (PAGE_SIZE - ww + 1);
                let cur = h.read_word(Mfn(m), off, ww).unwrap_or(0);
                let v = self.value(inp, cur);
                let _ = h.write_word(Mfn(m), off, ww, v);
                false
            }
            3 => {
                let m = self.frame(inp);
                let max = h.arch(dom).map(|a| a.max_pfn).unwrap_or(1);
                let p = if inp.u8() & 1 == 0 {
                    inp.below(max)
                } else {
                    inp.u64()
                };
                let _ = h.set_m2p(Mfn(m), Pfn(p));
                false
            }
            4 => {
                let _ = h.set_churn(dom, inp.u8() & 1 == 0);
                true
            }
            5 => {
                let bits = inp.u8() as u32;
                if GuestWidth::from_bytes(bits as u64 / 8) != Some(self.width) {
                    self.unchecked = true;
                }
                let _ = h.set_address_bits(dom, bits);
                false
            }
            6 => {
                let start = inp.below(self.positions * self.fpp());
                let end = start + 1 + inp.u16() as u64 % 600;
                let _ = h.populate(dom, start..end);
                true
            }
            7 => {
                let max = h.arch(dom).map(|a| a.max_pfn).unwrap_or(1);
                let pfn = inp.below(max);
                let v = self.value(inp, u64::MAX) & crate::p2m::all_ones(self.width);
                let _ = h.set_entry(dom, Pfn(pfn), v);
                true
            }
            8 => {
                let k = inp.below(self.positions);
                let to = match inp.u8() % 3 {
                    0 => self.frames[1],
                    1 => self.frames[2],
                    _ => {
                        let salt = inp.u64();
                        match h.new_leaf_page(dom, k, |p| p.0 ^ salt) {
                            Ok(m) => m.0,
                            Err(_) => return true,
                        }
                    }
                };
                let _ = h.begin_p2m_update(dom);
                let _ = h.map_leaf(dom, k, Mfn(to));
                let _ = h.end_p2m_update(dom);
                true
            }
            9 => {
                let _ = h.begin_p2m_update(dom);
                true
            }
            10 => {
                let _ = h.end_p2m_update(dom);
                true
            }
            _ => {
                // A leaf remapped without the protocol.
                let k = inp.below(self.positions);
                let to = self.frame(inp);
                let _ = h.map_leaf(dom, k, Mfn(to));
                false
            }
        }
    }
}

/// One of the six arch fields, by number.
fn arch_field(a: &mut ArchSharedInfo, field: u8) -> &mut u64 {
    match field {
        0 => &mut a.max_pfn,
        1 => &mut a.pfn_to_mfn_frame_list_list,
        2 => &mut a.nmi_reason,
        3 => &mut a.p2m_cr3,
        4 => &mut a.p2m_vaddr,
        _ => &mut a.p2m_generation,
    }
}

/// The naive truth: what the simulated memory says now, walked one leaf
/// at a time with no cleverness (and no checks: only asked where the
/// reader said all was well).
struct Naive<'a> {
    h: &'a SimHost,
    width: GuestWidth,
    arch: ArchSharedInfo,
}

impl Naive<'_> {
    fn w(&self) -> usize {
        self.width.bytes()
    }
    fn fpp(&self) -> u64 {
        (PAGE_SIZE / self.w()) as u64
    }
    fn list_leaf(&self, k: u64) -> Option<u64> {
        let cr3 = self.arch.p2m_cr3;
        let (mut table, levels) = match self.width {
            GuestWidth::W64 => (cr3 >> 12, 4),
            GuestWidth::W32 => ((cr3 as u32).rotate_right(12) as u64, 3),
        };
        let va = self
            .arch
            .p2m_vaddr
            .wrapping_add(k.wrapping_mul(PAGE_SIZE as u64));
        for level in (1..=levels).rev() {
            let i = (va >> (12 + 9 * (level - 1))) & 511;
            let e = self.h.read_word(Mfn(table), i as usize * 8, 8)?;
            table = (e & FRAME_MASK) >> 12;
        }
        Some(table)
    }
    fn tree_leaf(&self, k: u64) -> Option<u64> {
        let (w, fpp) = (self.w(), self.fpp());
        let root = self.arch.pfn_to_mfn_frame_list_list;
        let mid = self.h.read_word(Mfn(root), (k / fpp) as usize * w, w)?;
        self.h.read_word(Mfn(mid), (k % fpp) as usize * w, w)
    }
    fn leaf(&self, source: Source, k: u64) -> Option<u64> {
        match source {
            Source::List => self.list_leaf(k),
            Source::Tree => self.tree_leaf(k),
        }
    }
    fn entry(&self, leaf: u64, pfn: u64) -> Option<u64> {
        let w = self.w();
        self.h
            .read_word(Mfn(leaf), (pfn % self.fpp()) as usize * w, w)
    }
}

/// Leaf positions and pfns to compare for a guest of `max_pfn` entries.
fn sample(max_pfn: u64, fpp: u64, salt: u64) -> (Vec<u64>, Vec<u64>) {
    let leaves = max_pfn.div_ceil(fpp);
    let mut ks: Vec<u64> = if leaves <= 1024 {
        (0..leaves).collect()
    } else {
        let step = leaves / 512;
        (0..512)
            .map(|i| i * step)
            .chain(leaves - 8..leaves)
            .collect()
    };
    ks.push(salt % leaves);
    let pfns = if max_pfn <= FULL_CHECK {
        (0..max_pfn).collect()
    } else {
        ks.iter()
            .flat_map(|&k| {
                [0, 1, salt % fpp, fpp - 1]
                    .into_iter()
                    .map(move |i| k * fpp + i)
            })
            .filter(|&p| p < max_pfn)
            .chain([max_pfn - 1])
            .collect()
    };
    (ks, pfns)
}

fn fail<T>(msg: String) -> Result<T, Violation> {
    Err(Violation(msg))
}

/// Typed errors only: an `Unexpected` is the reader contradicting itself.
fn judge_error(what: &str, e: &Error) -> Result<String, Violation> {
    if let Error::Unexpected { .. } = e {
        return fail(format!("{what}: internal error on guest data: {e}"));
    }
    let s = format!("{e:?}");
    Ok(s.split([' ', '{', '(']).next().unwrap_or("").to_string())
}

/// A successful read against the naive walk of `arch`'s state.
fn check_read(
    h: &SimHost,
    p: &P2m<FuzzBackend>,
    width: GuestWidth,
    arch: &ArchSharedInfo,
    salt: u64,
) -> Result<(), Violation> {
    let n = Naive {
        h,
        width,
        arch: *arch,
    };
    if p.max_pfn() != arch.max_pfn {
        return fail(format!("max_pfn {} != {}", p.max_pfn(), arch.max_pfn));
    }
    let fpp = p.entries_per_page();
    let (ks, pfns) = sample(arch.max_pfn, fpp, salt);
    for &k in &ks {
        let (got, want) = (p.leaf_frame(k).map(|m| m.0), n.leaf(p.source(), k));
        if got != want {
            return fail(format!(
                "{:?} leaf {k}: reader {got:x?}, memory {want:x?}",
                p.source()
            ));
        }
    }
    for &pfn in &pfns {
        let got = p.raw(Pfn(pfn)).ok();
        let want = p.leaf_frame(pfn / fpp).and_then(|l| n.entry(l.0, pfn));
        if got != want {
            return fail(format!("pfn {pfn:#x}: reader {got:x?}, memory {want:x?}"));
        }
    }
    if p.raw(Pfn(arch.max_pfn)).is_ok() {
        return fail("entry past max_pfn readable".into());
    }
    if arch.max_pfn <= FULL_CHECK && p.entries().count() as u64 != arch.max_pfn {
        return fail("entries() does not yield max_pfn entries".into());
    }
    Ok(())
}

/// A successful verify of a small static guest against the naive walk.
fn check_verify(
    h: &SimHost,
    r: &VerifyReport,
    width: GuestWidth,
    arch: &ArchSharedInfo,
) -> Result<(), Violation> {
    let n = Naive {
        h,
        width,
        arch: *arch,
    };
    let max = arch.max_pfn;
    let total = r.entries.valid + r.entries.invalid + r.entries.identity + r.entries.foreign;
    if total != max || r.max_pfn != max {
        return fail(format!("verify counted {total} entries of {max}"));
    }
    if max > FULL_CHECK {
        return Ok(());
    }
    let fpp = n.fpp();
    let mut counts = crate::p2m::EntryCounts::default();
    let (mut m2p_bad, mut lt_bad) = (0, 0);
    for pfn in 0..max {
        let k = pfn / fpp;
        let raw = n.leaf(r.source, k).and_then(|l| n.entry(l, pfn));
        let Some(raw) = raw else {
            return fail(format!("verify passed but pfn {pfn:#x} is unreadable"));
        };
        match crate::p2m::Entry::decode(raw, width) {
            crate::p2m::Entry::Mfn(m) => {
                counts.valid += 1;
                if h.m2p(m) != Some(Pfn(pfn)) {
                    m2p_bad += 1;
                }
            }
            crate::p2m::Entry::Invalid => counts.invalid += 1,
            crate::p2m::Entry::Identity(_) => counts.identity += 1,
            crate::p2m::Entry::Foreign(_) => counts.foreign += 1,
        }
        if r.tree == TreeStatus::Present && r.source == Source::List {
            let t = n.tree_leaf(k).and_then(|l| n.entry(l, pfn));
            if t != Some(raw) {
                lt_bad += 1;
            }
        }
    }
    if counts != r.entries || m2p_bad != r.m2p_mismatches || lt_bad != r.list_tree_mismatches {
        return fail(format!(
            "verify {:?}, m2p {} bad, list/tree {} bad; memory {counts:?}, m2p {m2p_bad}, list/tree {lt_bad}",
            r.entries, r.m2p_mismatches, r.list_tree_mismatches
        ));
    }
    Ok(())
}

/// A [`SimHost`] with a writer that acts right after given map calls.
#[derive(Debug)]
struct FuzzBackend {
    host: SimHost,
    calls: Cell<u32>,
    /// (after map call n, op, its input bytes), in order.
    schedule: RefCell<Vec<(u32, u8, Vec<u8>)>>,
    case: RefCell<Option<Case>>,
    /// States the writer passed through with an even generation.
    snapshots: RefCell<Vec<(ArchSharedInfo, Vec<Option<u64>>)>>,
    /// Leaf positions snapshots record.
    ks: Vec<u64>,
    honest: Cell<bool>,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case").field("dom", &self.dom).finish()
    }
}

impl FuzzBackend {
    fn snapshot(&self, width: GuestWidth, dom: DomId) {
        let Ok(arch) = self.host.arch(dom) else {
            return;
        };
        if arch.p2m_generation & 1 == 1 {
            return;
        }
        let n = Naive {
            h: &self.host,
            width,
            arch,
        };
        let leaves = self.ks.iter().map(|&k| n.list_leaf(k)).collect();
        self.snapshots.borrow_mut().push((arch, leaves));
    }

    fn act(&self) {
        let n = self.calls.get() + 1;
        self.calls.set(n);
        let due: Vec<(u8, Vec<u8>)> = {
            let mut s = self.schedule.borrow_mut();
            let (now, later): (Vec<_>, Vec<_>) = s.drain(..).partition(|x| x.0 <= n);
            *s = later;
            now.into_iter().map(|(_, op, b)| (op, b)).collect()
        };
        for (op, bytes) in due {
            let (width, dom) = {
                let mut c = self.case.borrow_mut();
                let Some(c) = c.as_mut() else { return };
                let mut inp = Input {
                    data: &bytes,
                    pos: 0,
                };
                if !c.change(&mut inp, op) {
                    self.honest.set(false);
                }
                (c.width, c.dom)
            };
            self.snapshot(width, dom);
        }
    }
}

impl Backend for FuzzBackend {
    type Map = super::SimMap;

    fn domain_info(&self, dom: DomId) -> Result<DomainInfo, Error> {
        self.host.domain_info(dom)
    }

    fn guest_width(&self, dom: DomId) -> Result<GuestWidth, Error> {
        self.host.guest_width(dom)
    }

    fn max_mfn(&self) -> Result<Mfn, Error> {
        Backend::max_mfn(&self.host)
    }

    fn m2p_extents(&self, max_extents: u32) -> Result<Vec<Mfn>, Error> {
        self.host.m2p_extents(max_extents)
    }

    fn map_frames(&self, dom: DomId, frames: &[Mfn]) -> Result<Self::Map, Error> {
        let r = self.host.map_frames(dom, frames);
        self.act();
        r
    }
}

/// Runs one fuzz case. `Ok` when every property held (including when the
/// simulation refused the guest); a [`Violation`] says which did not.
/// Panics only if the code under test panics.
pub fn run(target: Target, data: &[u8], meter: Option<&dyn Meter>) -> Result<Outcome, Violation> {
    let mut inp = Input { data, pos: 0 };
    let Some(mut case) = Case::build(&mut inp)? else {
        return Ok(Outcome::default());
    };
    for _ in 0..inp.u8() % 9 {
        let op = inp.u8() % 12;
        case.change(&mut inp, op);
    }
    let salt = inp.u64();
    let mut schedule = Vec::new();
    if target == Target::Race {
        for _ in 0..inp.u8() % 12 {
            let at = (inp.u8() % 24) as u32;
            // Mostly the protocol's own steps.
            let op = match inp.u8() % 16 {
                0..=3 => 8,
                4..=5 => 9,
                6..=7 => 10,
                8..=9 => 6,
                10 => 7,
                11 => 4,
                x => x % 12,
            };
            let bytes: [u8; 24] = inp.bytes();
            schedule.push((at, op, bytes.to_vec()));
        }
        schedule.sort_by_key(|x| x.0);
    }
    let (dom, width, unchecked) = (case.dom, case.width, case.unchecked);
    let host = case.host.clone();
    let fpp = case.fpp();
    let ks = sample(case.positions * fpp, fpp, salt).0;
    let racing = !schedule.is_empty();
    let b = FuzzBackend {
        host: host.clone(),
        calls: Cell::new(0),
        schedule: RefCell::new(schedule),
        case: RefCell::new(Some(case)),
        snapshots: RefCell::new(Vec::new()),
        ks,
        honest: Cell::new(true),
    };
    if racing {
        b.snapshot(width, dom);
    }
    let opts = ReadOptions {
        attempts: ATTEMPTS,
        retry_delay: Duration::ZERO,
        ..Default::default()
    };
    let arch = host
        .arch(dom)
        .map_err(|e| Violation(format!("arch: {e}")))?;
    let mut out = Outcome {
        built: true,
        ..Default::default()
    };
    if let Some(m) = meter {
        m.start();
    }
    let (calls0, frames0) = (host.map_calls(), host.frames_mapped());
    let read = P2m::read(&b, dom, &opts);
    let calls1 = host.map_calls();
    let verified = verify(&b, dom, &opts);
    let calls2 = host.map_calls();
    let peak = meter.map(|m| m.peak()).unwrap_or(0);
    out.map_calls = (calls1 - calls0, calls2 - calls1);
    out.peak_bytes = peak;
    out.bound_bytes = memory_bound(host.frames_mapped() - frames0, arch.max_pfn);

    // Bounded work: shared_info, then per attempt the list's levels and
    // leaves, and for verify also the tree's three levels and the M2P.
    let list = 5;
    if out.map_calls.0 > 1 + (ATTEMPTS * list) as u64
        || out.map_calls.1 > 1 + (ATTEMPTS * (list + 3 + 1)) as u64
    {
        return fail(format!("too many map calls: {:?}", out.map_calls));
    }
    if peak > out.bound_bytes {
        return fail(format!(
            "peak heap {peak} bytes above the bound {} (max_pfn {:#x})",
            out.bound_bytes, arch.max_pfn
        ));
    }

    match &read {
        Ok(p) => {
            out.read = format!("{:?}", p.source()).to_lowercase();
            if racing {
                if b.honest.get() && p.source() == Source::List {
                    check_race(&host, &b, p, width, salt)?;
                    out.checked = true;
                }
            } else if !unchecked {
                check_read(&host, p, width, &arch, salt)?;
                out.checked = true;
            }
        }
        Err(e) => out.read = judge_error("read", e)?,
    }
    match &verified {
        Ok(r) => {
            out.verify = if r.consistent() {
                "consistent".into()
            } else {
                "inconsistent".into()
            };
            if !racing && !unchecked {
                check_verify(&host, r, width, &arch)?;
            }
        }
        Err(e) => out.verify = judge_error("verify", e)?,
    }
    Ok(out)
}

/// A view read while an honest writer worked is one stable state it
/// passed through, and its entries are the live contents of its leaves.
fn check_race(
    h: &SimHost,
    b: &FuzzBackend,
    p: &P2m<FuzzBackend>,
    width: GuestWidth,
    salt: u64,
) -> Result<(), Violation> {
    let a = p.arch();
    let snaps = b.snapshots.borrow();
    let leaves = p.leaf_count();
    let seen: Vec<Option<u64>> =
        b.ks.iter()
            .map(|&k| {
                if k < leaves {
                    p.leaf_frame(k).map(|m| m.0)
                } else {
                    None
                }
            })
            .collect();
    // The structure must be one the writer left stable (a churning
    // guest also moves the generation without changing anything).
    let matches = a.p2m_generation & 1 == 0
        && snaps.iter().any(|(s, l)| {
            (s.p2m_cr3, s.p2m_vaddr, s.max_pfn) == (a.p2m_cr3, a.p2m_vaddr, a.max_pfn)
                && l.iter()
                    .zip(&seen)
                    .zip(&b.ks)
                    .all(|((want, got), &k)| k >= leaves || want == got)
        });
    if !matches {
        return fail(format!(
            "list view at generation {} matches no stable state of {} the writer passed",
            a.p2m_generation,
            snaps.len()
        ));
    }
    let n = Naive { h, width, arch: *a };
    let fpp = p.entries_per_page();
    for pfn in sample(a.max_pfn, fpp, salt).1 {
        let got = p.raw(Pfn(pfn)).ok();
        let want = p.leaf_frame(pfn / fpp).and_then(|l| n.entry(l.0, pfn));
        if got != want {
            return fail(format!(
                "pfn {pfn:#x}: reader {got:x?}, live leaf {want:x?}"
            ));
        }
    }
    Ok(())
}
