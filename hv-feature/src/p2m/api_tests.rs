// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The view's lookups for users: `mfn`, `runs` (checked against a plain
//! loop over every entry, and counted on guests whose pages span 2^40
//! pfns), and the Display text of entries.

use super::walk::STEPS;
use super::*;
use crate::sim::{GuestSpec, SimHost};
use std::time::Instant;

fn steps() -> u64 {
    STEPS.with(|c| c.get())
}

/// The runs of `p` found the slow way: every pfn in order.
fn runs_by_every_pfn<B: Backend>(p: &P2m<B>) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for (pfn, e) in p.entries() {
        let Entry::Mfn(mfn) = e else { continue };
        match out.last_mut() {
            Some(r) if r.pfn.0 + r.len == pfn.0 && r.mfn.0 + r.len == mfn.0 => r.len += 1,
            _ => out.push(Run { pfn, mfn, len: 1 }),
        }
    }
    out
}

/// A guest with RAM, identity and foreign ranges, a partial last leaf,
/// and stretches of consecutive frames (one across a leaf boundary).
fn mixed_guest(host: &SimHost, width: GuestWidth) -> DomId {
    let fpp = (crate::types::PAGE_SIZE / width.bytes()) as u64;
    let max_pfn = 5 * fpp + 77;
    let spec = GuestSpec::new(DomId(2), width, max_pfn)
        .ram([0..fpp + 40, 2 * fpp..3 * fpp + 3, 4 * fpp + 9..max_pfn])
        .identity([fpp + 40..fpp + 60, 3 * fpp + 3..4 * fpp + 9])
        .foreign(std::iter::once(fpp + 60..fpp + 64));
    let dom = host.add_guest(&spec).unwrap();
    for (start, len, base) in [(fpp - 5, 12, 0x300), (20, 9, 0x400), (2 * fpp, 1, 0x500)] {
        for i in 0..len {
            host.set_entry(dom, Pfn(start + i), base + i).unwrap();
        }
    }
    dom
}

#[test]
fn runs_are_the_maximal_stretches_of_consecutive_frames() {
    for width in [GuestWidth::W64, GuestWidth::W32] {
        for source in [SourcePref::List, SourcePref::Tree] {
            let host = SimHost::new(1 << 16).unwrap();
            let dom = mixed_guest(&host, width);
            let opts = ReadOptions {
                source,
                ..ReadOptions::default()
            };
            let p = P2m::read(&host, dom, &opts).unwrap();
            let runs: Vec<Run> = p.runs().collect();
            assert_eq!(runs, runs_by_every_pfn(&p), "{width:?} {source:?}");
            // The stretch written across the first leaf boundary is one run.
            let fpp = p.entries_per_page();
            assert!(
                runs.contains(&Run {
                    pfn: Pfn(fpp - 5),
                    mfn: Mfn(0x300),
                    len: 12
                }),
                "{width:?} {source:?}: {runs:?}"
            );
            let covered: u64 = runs.iter().map(|r| r.len).sum();
            assert_eq!(covered, p.entry_counts().valid);
        }
    }
}

#[test]
fn mfn_gives_the_frame_of_plain_entries_only() {
    let host = SimHost::new(1 << 16).unwrap();
    let dom = mixed_guest(&host, GuestWidth::W64);
    let p = P2m::read(&host, dom, &ReadOptions::default()).unwrap();
    let ram = host.ram_mfn(dom, Pfn(3)).unwrap().unwrap();
    assert_eq!(p.mfn(Pfn(3)).unwrap(), Some(ram));
    assert_eq!(p.mfn(Pfn(20)).unwrap(), Some(Mfn(0x400)));
    // Identity (pfn 512 + 45), foreign (512 + 61), invalid (512 + 100:
    // not populated).
    assert!(matches!(p.lookup(Pfn(557)).unwrap(), Entry::Identity(_)));
    assert_eq!(p.mfn(Pfn(557)).unwrap(), None);
    assert!(matches!(p.lookup(Pfn(573)).unwrap(), Entry::Foreign(_)));
    assert_eq!(p.mfn(Pfn(573)).unwrap(), None);
    assert_eq!(p.lookup(Pfn(612)).unwrap(), Entry::Invalid);
    assert_eq!(p.mfn(Pfn(612)).unwrap(), None);
    let e = p.mfn(Pfn(p.max_pfn())).unwrap_err();
    assert!(matches!(e, Error::PfnOutOfRange { .. }), "{e}");
    assert_eq!(e.class(), crate::error::ErrorClass::Usage);
}

/// A 64-bit guest of `max_pfn` = 2^40 whose only RAM is its leaf 0: the
/// rest of its list is shared tables that end in the missing page.
fn sparse_huge_guest(host: &SimHost) -> DomId {
    let dom = host
        .add_guest(&GuestSpec::new(DomId(1), GuestWidth::W64, 4096))
        .unwrap();
    let a = host.alias_list(dom, 1 << 40).unwrap();
    let table = |m: Mfn| (m.0 << 12) | 0x63;
    let (l3b, l2b, l1b) = (
        host.alloc_frame(dom).unwrap(),
        host.alloc_frame(dom).unwrap(),
        host.alloc_frame(dom).unwrap(),
    );
    let w = |m: Mfn, i: usize, v: u64| host.write_word(m, i * 8, 8, v).unwrap();
    for i in 0..512 {
        w(l1b, i, (a.missing_leaf.0 << 12) | 0x21);
        w(l2b, i, table(l1b));
        w(l3b, i, table(l2b));
        if i > 0 {
            w(a.l1, i, (a.missing_leaf.0 << 12) | 0x21);
            w(a.l2, i, table(l1b));
            w(a.l3, i, table(l2b));
        }
    }
    let layout = host.list_layout(dom).unwrap();
    let first = ((layout.vaddr >> 39) & 511) as usize;
    for e in 1..16 {
        w(layout.root, first + e, table(l3b));
    }
    host.update_arch(dom, |x| x.p2m_generation += 2).unwrap();
    dom
}

#[test]
fn runs_of_a_sparse_guest_spanning_2_40_cost_its_pages() {
    let host = SimHost::new(1 << 16).unwrap();
    let dom = sparse_huge_guest(&host);
    let p = P2m::read(&host, dom, &ReadOptions::default()).unwrap();
    assert_eq!(p.max_pfn(), 1 << 40);
    let (t, start) = (Instant::now(), steps());
    let runs: Vec<Run> = p.runs().collect();
    let (work, time) = (steps() - start, t.elapsed());
    eprintln!("runs of a sparse 2^40-pfn guest: {work} steps, {time:?}");
    // Leaf 0 is the guest's first 512 RAM pfns, nothing else is valid.
    let mut want: Vec<Run> = Vec::new();
    for pfn in 0..512 {
        let mfn = host.ram_mfn(dom, Pfn(pfn)).unwrap().unwrap();
        match want.last_mut() {
            Some(r) if r.mfn.0 + r.len == mfn.0 => r.len += 1,
            _ => want.push(Run {
                pfn: Pfn(pfn),
                mfn,
                len: 1,
            }),
        }
    }
    assert_eq!(runs, want);
    // Per pfn position this would be 2^40 steps; per distinct page and
    // row it is a few thousand.
    assert!(work < 1 << 16, "{work} steps");
    assert!(time.as_secs_f64() < 1.0, "{time:?}");
}

#[test]
fn runs_of_the_aliased_guest_are_yielded_lazily() {
    let host = SimHost::new(1 << 16).unwrap();
    let dom = host
        .add_guest(&GuestSpec::new(DomId(1), GuestWidth::W64, 4096))
        .unwrap();
    host.alias_list(dom, 1 << 40).unwrap();
    let p = P2m::read(&host, dom, &ReadOptions::default()).unwrap();
    // Leaf 0's RAM page is named at every even leaf position (2^30 of
    // them): the runs repeat there, and the first thousand cost about a
    // thousand pages' worth of steps, not a walk over 2^40 pfns.
    let start = steps();
    let t = Instant::now();
    let first: Vec<Run> = p.runs().take(1000).collect();
    let work = steps() - start;
    eprintln!(
        "first 1000 runs of the aliased guest: {work} steps, {:?}",
        t.elapsed()
    );
    assert_eq!(first.len(), 1000);
    for r in &first {
        assert_eq!((r.pfn.0 / 512) % 2, 0, "{r}");
        for i in 0..r.len {
            assert_eq!(p.mfn(Pfn(r.pfn.0 + i)).unwrap(), Some(Mfn(r.mfn.0 + i)));
        }
    }
    assert!(first
        .windows(2)
        .all(|w| w[0].pfn.0 + w[0].len <= w[1].pfn.0));
    assert!(work < 1 << 22, "{work} steps");
}

#[test]
fn entries_read_as_words() {
    assert_eq!(Entry::Mfn(Mfn(0x1234)).to_string(), "mfn 0x1234");
    assert_eq!(Entry::Invalid.to_string(), "invalid (~0)");
    assert_eq!(Entry::Identity(Mfn(0x80)).to_string(), "identity 0x80");
    assert_eq!(Entry::Foreign(Mfn(0x9)).to_string(), "foreign mfn 0x9");
    assert_eq!(Source::List.to_string(), "list");
    let r = Run {
        pfn: Pfn(0x100),
        mfn: Mfn(0x5400),
        len: 32,
    };
    assert_eq!(r.to_string(), "pfn 0x100 -> mfn 0x5400, 0x20 pages");
    let c = LeafChange {
        leaf: 3,
        first_pfn: Pfn(0x600),
        before: Some(Mfn(0x12)),
        after: None,
    };
    assert_eq!(c.to_string(), "leaf 0x3 (pfn 0x600): mfn 0x12 -> -");
    let r = Refresh::Changed {
        generation_before: 2,
        generation_after: 4,
        max_pfn_before: 0x800,
        max_pfn_after: 0x1000,
        changed_leaves: vec![c],
        changed_count: 1,
    };
    assert_eq!(
        r.to_string(),
        "changed: generation 2 -> 4, max_pfn 0x800 -> 0x1000, 1 leaf positions changed frame"
    );
    assert_eq!(Refresh::Unchanged.to_string(), "unchanged");
}
