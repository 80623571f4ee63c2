// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `cargo bench -p hv-feature --bench p2m_walk`: the list walk and
//! `verify` on simulated 64-bit guests of 4 GiB, 64 GiB, 512 GiB and
//! 2 TiB, the tree walk where a tree exists, an unchanged `refresh`, and
//! the roofline, in the same process and run: a plain loop over the same
//! in-memory arrays `verify` reads (the list's distinct leaf pages and the
//! tree's, sequentially, one M2P load per valid entry, in verify's order),
//! doing exactly those reads and nothing else. The host runs in zero-copy
//! mode (a mapping of unchanged frames shares the bytes an earlier one
//! copied), as privcmd copies nothing.
//!
//! The 4 GiB guest has all its pfns in RAM. The larger ones are laid out
//! the way Linux lays out a guest whose `max_pfn` is far above its RAM
//! (and above this machine's memory): 4 GiB of RAM (3 GiB low, 1 GiB above
//! a 1 GiB identity-mapped hole), every other leaf the shared "missing"
//! page, every all-missing level-1 table shared too.
//!
//! Last, a hostile guest whose five distinct pages span `max_pfn` = 2^40
//! (2^31 leaf positions, every page-table level aliased): read + verify.
//!
//! Besides criterion's timings (with pfns/s as throughput), it prints one
//! summary table: the medians (of 21) of walk + verify and of the roofline, taken
//! alternately, and their ratio (roofline time / walk + verify time; 1 =
//! as fast as the plain loop), map calls per walk and per unchanged
//! refresh, and the reader's peak heap (a counting allocator; zero-copy
//! mappings of frames already shown take none) against the p2m's size.

#[path = "../fuzz/counting_alloc.rs"]
mod counting_alloc;

use criterion::{black_box, Criterion, Throughput};
use hv_feature::p2m::{verify, P2m, ReadOptions, Refresh, SourcePref};
use hv_feature::sim::fuzz::Meter;
use hv_feature::sim::{GuestSpec, SimHost, SimMap};
use hv_feature::{Backend, DomId, GuestWidth, Mapping, Mfn};
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[global_allocator]
static HEAP: counting_alloc::Counting = counting_alloc::Counting::new();

const DOM: DomId = DomId(1);
const GIB: u64 = 1 << 18; // pfns per GiB

struct Guest {
    name: &'static str,
    max_pfn: u64,
}

const GUESTS: [Guest; 4] = [
    Guest {
        name: "4GiB",
        max_pfn: 4 * GIB,
    },
    Guest {
        name: "64GiB",
        max_pfn: 64 * GIB,
    },
    Guest {
        name: "512GiB",
        max_pfn: 512 * GIB,
    },
    Guest {
        name: "2TiB",
        max_pfn: 2048 * GIB,
    },
];

fn build(g: &Guest) -> SimHost {
    let host = SimHost::new(1 << 21).expect("host");
    let mut spec = GuestSpec::new(DOM, GuestWidth::W64, g.max_pfn);
    if g.max_pfn > 4 * GIB {
        spec = spec
            .ram([0..3 * GIB, 4 * GIB..5 * GIB])
            .identity(std::iter::once(3 * GIB..4 * GIB));
    }
    host.add_guest(&spec).expect("guest");
    host.set_zero_copy(true);
    host
}

/// The hostile guest: 4096 pfns of RAM, its list aliased to 2^40 entries.
fn build_aliased() -> SimHost {
    let host = SimHost::new(1 << 16).expect("host");
    host.add_guest(&GuestSpec::new(DOM, GuestWidth::W64, 4096))
        .expect("guest");
    host.alias_list(DOM, 1 << 40).expect("alias");
    host.set_zero_copy(true);
    host
}

fn opts(source: SourcePref) -> ReadOptions {
    ReadOptions::default().with_source(source)
}

/// The arrays verify reads, mapped as verify maps them: the list's
/// distinct leaf pages and the tree's (each in first-use order, verify's
/// order), the M2P, and the pfn of each list page's first use.
struct Arrays {
    list: Vec<u8>,
    base: Vec<u64>,
    tree: Option<Vec<u8>>,
    m2p: Vec<u8>,
}

fn distinct_leaves(p: &P2m<SimHost>) -> (Vec<Mfn>, Vec<u64>) {
    let mut seen = HashSet::new();
    let (mut frames, mut base) = (Vec::new(), Vec::new());
    for k in 0..p.leaf_count() {
        let f = p.leaf_frame(k).expect("leaf");
        if seen.insert(f) {
            frames.push(f);
            base.push(k * p.entries_per_page());
        }
    }
    (frames, base)
}

fn arrays(host: &SimHost) -> Arrays {
    let l = P2m::read(host, DOM, &opts(SourcePref::List)).expect("list");
    let (frames, base) = distinct_leaves(&l);
    // Plain owned copies of what verify reads through its mappings.
    let copy = |m: SimMap| m.mem().to_vec();
    let list = copy(host.map_frames(DOM, &frames).expect("map list"));
    let tree = P2m::read(host, DOM, &opts(SourcePref::Tree)).ok().map(|t| {
        let (frames, _) = distinct_leaves(&t);
        copy(host.map_frames(DOM, &frames).expect("map tree"))
    });
    let m2p = copy(
        host.map_frames(DomId::XEN, &host.m2p_frames())
            .expect("map m2p"),
    );
    Arrays {
        list,
        base,
        tree,
        m2p,
    }
}

fn le(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i * 8..i * 8 + 8]);
    u64::from_le_bytes(w)
}

/// The roofline: exactly the reads verify must do, in its order, as a
/// plain loop; returns what it found so none of it is optimised away.
fn roofline(a: &Arrays) -> [u64; 4] {
    let (list, m2p) = (&a.list[..], &a.m2p[..]);
    let tree = a.tree.as_deref();
    let mut acc = [0u64; 4];
    for (s, &base) in a.base.iter().enumerate() {
        let lp = &list[s * 4096..(s + 1) * 4096];
        let tp = tree.and_then(|t| t.get(s * 4096..(s + 1) * 4096));
        for i in 0..512 {
            let l = le(lp, i);
            if let Some(tp) = tp {
                acc[0] += (le(tp, i) != l) as u64;
            }
            if l == u64::MAX || l >> 62 != 0 {
                acc[1] += 1;
            } else {
                let back = m2p
                    .get(l as usize * 8..l as usize * 8 + 8)
                    .map_or(u64::MAX, |b| le(b, 0));
                acc[2] += 1;
                acc[3] += (back != base + i as u64) as u64;
            }
        }
    }
    // Tree pages beyond the list's count are read too.
    if let Some(t) = tree {
        for x in t.chunks_exact(8).skip(a.base.len() * 512) {
            acc[0] += (x[0] == 0) as u64;
        }
    }
    acc
}

fn walk_verify(host: &SimHost) -> u64 {
    let p = P2m::read(host, DOM, &opts(SourcePref::List)).expect("read");
    let v = verify(host, DOM, &ReadOptions::default()).expect("verify");
    p.max_pfn() + v.entries.valid + v.m2p_mismatches
}

/// Median seconds of `f` over `n` runs.
fn median(n: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..n)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[n / 2]
}

/// Medians of `f` and `g` over `n` runs each, taken alternately so that
/// both see the same machine load.
fn medians(n: usize, mut f: impl FnMut(), mut g: impl FnMut()) -> (f64, f64) {
    let (mut tf, mut tg) = (Vec::new(), Vec::new());
    for _ in 0..n {
        tf.push(median(1, &mut f));
        tg.push(median(1, &mut g));
    }
    tf.sort_by(f64::total_cmp);
    tg.sort_by(f64::total_cmp);
    (tf[n / 2], tg[n / 2])
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

fn ms(t: f64) -> String {
    format!("{:.2} ms", t * 1e3)
}

fn summary(g: &Guest, host: &SimHost) -> String {
    let mut p = P2m::read(host, DOM, &opts(SourcePref::List)).expect("read");
    let st = *p.stats();
    let before = host.map_calls();
    let r = p.refresh().expect("refresh");
    let refresh_calls = host.map_calls() - before;
    assert_eq!(r, Refresh::Unchanged);
    drop(p);

    let v = verify(host, DOM, &ReadOptions::default()).expect("verify");
    assert!(v.consistent());
    HEAP.start();
    let p = P2m::read(host, DOM, &opts(SourcePref::List)).expect("read");
    let read_peak = HEAP.peak() as u64;
    let v = verify(host, DOM, &ReadOptions::default()).expect("verify");
    let total_peak = HEAP.peak() as u64;
    drop((p, v));

    let arr = arrays(host);
    let (t, tr) = medians(
        21,
        || {
            black_box(walk_verify(host));
        },
        || {
            black_box(roofline(&arr));
        },
    );
    format!(
        "| {} | {:#x} | {} / {} | {} | {} | {} | {} | {:.2} | {} | {} | {} |",
        g.name,
        g.max_pfn,
        st.distinct_leaves,
        st.leaves,
        st.walk_map_calls,
        refresh_calls,
        ms(t),
        ms(tr),
        tr / t,
        mib(read_peak),
        mib(total_peak),
        mib(g.max_pfn * 8),
    )
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut rows = Vec::new();
    for g in &GUESTS {
        let t = Instant::now();
        let host = build(g);
        eprintln!("built {} in {:.1?}", g.name, t.elapsed());
        rows.push(summary(g, &host));
        let arr = arrays(&host);
        let mut grp = c.benchmark_group(g.name);
        grp.throughput(Throughput::Elements(g.max_pfn));
        grp.bench_function("list_walk", |b| {
            b.iter(|| P2m::read(&host, DOM, &opts(SourcePref::List)).expect("read"))
        });
        grp.bench_function("list_walk+verify", |b| b.iter(|| walk_verify(&host)));
        if host.arch(DOM).expect("arch").pfn_to_mfn_frame_list_list != u64::MAX {
            grp.bench_function("tree_walk", |b| {
                b.iter(|| P2m::read(&host, DOM, &opts(SourcePref::Tree)).expect("tree"))
            });
        }
        let mut p = P2m::read(&host, DOM, &opts(SourcePref::List)).expect("read");
        grp.bench_function("refresh_unchanged", |b| {
            b.iter(|| p.refresh().expect("refresh"))
        });
        grp.bench_function("roofline", |b| b.iter(|| roofline(black_box(&arr))));
        grp.finish();
    }

    let host = build_aliased();
    let t = median(5, || {
        black_box(walk_verify(&host));
    });
    let v = verify(&host, DOM, &ReadOptions::default()).expect("verify");
    let aliased = format!(
        "aliased guest, max_pfn 2^40 (2^31 leaf positions, 5 distinct pages): \
         read + verify {} (median of 5); {} entries checked against the M2P, \
         {} mismatches, {} map calls",
        ms(t),
        v.m2p_checked,
        v.m2p_mismatches,
        v.map_calls
    );
    let mut grp = c.benchmark_group("aliased_2^40");
    grp.bench_function("list_walk+verify", |b| b.iter(|| walk_verify(&host)));
    grp.finish();
    c.final_summary();

    println!();
    println!(
        "| guest | max_pfn | distinct leaves / positions | map calls per walk | \
         map calls per unchanged refresh | walk+verify | roofline | \
         ratio (roofline / walk+verify) | reader's peak heap, walk | \
         reader's peak heap, walk+verify | list size (max_pfn*8) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    println!();
    println!("{aliased}");
}
