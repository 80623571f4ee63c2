// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `cargo bench -p hv-feature --bench p2m_walk`: the list walk and
//! `verify` on simulated 64-bit guests of 4 GiB, 64 GiB, 512 GiB and
//! 2 TiB, the tree walk where a tree exists, an unchanged `refresh`, and
//! the baseline: a plain sequential read of as many bytes as the list
//! holds (`max_pfn * 8`), in the same process and run.
//!
//! The 4 GiB guest has all its pfns in RAM. The larger ones are laid out
//! the way Linux lays out a guest whose `max_pfn` is far above its RAM
//! (and above this machine's memory): 4 GiB of RAM (3 GiB low, 1 GiB above
//! a 1 GiB identity-mapped hole), every other leaf the shared "missing"
//! page, every all-missing level-1 table shared too.
//!
//! Besides criterion's timings (with pfns/s as throughput), it prints one
//! summary table: pfns/s of walk + verify and of the baseline and their
//! ratio, map calls per walk and per unchanged refresh, and peak heap
//! (measured by a counting allocator) against the p2m's own size.

#[path = "../fuzz/counting_alloc.rs"]
mod counting_alloc;

use criterion::{black_box, Criterion, Throughput};
use hv_feature::p2m::{verify, P2m, ReadOptions, Refresh, SourcePref};
use hv_feature::sim::fuzz::Meter;
use hv_feature::sim::{GuestSpec, SimHost};
use hv_feature::{DomId, GuestWidth};
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
    host
}

fn opts(source: SourcePref) -> ReadOptions {
    ReadOptions {
        source,
        ..Default::default()
    }
}

/// A plain sequential read of `bytes` bytes from a buffer of up to 64 MiB
/// (read again as often as needed).
struct Baseline {
    buf: Vec<u64>,
}

impl Baseline {
    fn new() -> Baseline {
        Baseline {
            buf: (0..8u64 << 20)
                .map(|i| i.wrapping_mul(0x9e37_79b9))
                .collect(),
        }
    }
    fn read(&self, bytes: u64) -> u64 {
        let mut words = bytes / 8;
        let mut sum = 0u64;
        while words > 0 {
            let n = words.min(self.buf.len() as u64) as usize;
            sum = self.buf[..n].iter().fold(sum, |a, &x| a.wrapping_add(x));
            words -= n as u64;
        }
        sum
    }
}

fn walk_verify(host: &SimHost) -> u64 {
    let p = P2m::read(host, DOM, &opts(SourcePref::List)).expect("read");
    let v = verify(host, DOM, &ReadOptions::default()).expect("verify");
    assert!(v.consistent());
    p.max_pfn() + v.entries.valid
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

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

fn summary(g: &Guest, host: &SimHost, base: &Baseline) -> String {
    let p = P2m::read(host, DOM, &opts(SourcePref::List)).expect("read");
    let st = *p.stats();
    let mut p = p;
    let before = host.map_calls();
    let r = p.refresh(host).expect("refresh");
    let refresh_calls = host.map_calls() - before;
    assert_eq!(r, Refresh::Unchanged);
    drop(p);

    HEAP.start();
    let frames0 = host.frames_mapped();
    let p = P2m::read(host, DOM, &opts(SourcePref::List)).expect("read");
    let read_peak = HEAP.peak() as u64;
    let read_frames = host.frames_mapped() - frames0;
    let v = verify(host, DOM, &ReadOptions::default()).expect("verify");
    let total_peak = HEAP.peak() as u64;
    let total_frames = host.frames_mapped() - frames0;
    drop((p, v));

    let t = median(5, || {
        black_box(walk_verify(host));
    });
    let bytes = g.max_pfn * 8;
    let tb = median(5, || {
        black_box(base.read(bytes));
    });
    let (rate, brate) = (g.max_pfn as f64 / t, g.max_pfn as f64 / tb);
    format!(
        "| {} | {:#x} | {} / {} | {} | {} | {:.3e} | {:.3e} | {:.2} | {} ({} mapped) | {} ({} mapped) | {} |",
        g.name,
        g.max_pfn,
        st.distinct_leaves,
        st.leaves,
        st.walk_map_calls,
        refresh_calls,
        rate,
        brate,
        rate / brate,
        mib(read_peak),
        mib(read_frames * 4096),
        mib(total_peak),
        mib(total_frames * 4096),
        mib(bytes),
    )
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let base = Baseline::new();
    let mut rows = Vec::new();
    for g in &GUESTS {
        let t = Instant::now();
        let host = build(g);
        eprintln!("built {} in {:.1?}", g.name, t.elapsed());
        rows.push(summary(g, &host, &base));
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
            b.iter(|| p.refresh(&host).expect("refresh"))
        });
        let bytes = g.max_pfn * 8;
        grp.bench_function("baseline_sequential_read", |b| {
            b.iter(|| base.read(black_box(bytes)))
        });
        grp.finish();
    }
    c.final_summary();
    println!();
    println!("| guest | max_pfn | distinct leaves / positions | map calls per walk | map calls per unchanged refresh | walk+verify pfns/s | baseline pfns/s | ratio | peak heap, walk | peak heap, walk+verify | list size (max_pfn*8) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}
