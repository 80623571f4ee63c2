// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Growing dom0 makes Linux add p2m pages, announced through
//! `p2m_generation`.
//!
//! Linux gives dom0 real leaf pages for its whole `dom0_mem=...,max:...`
//! range at boot (measured: every leaf distinct, the headroom as invalid
//! entries), so ballooning within `max` adds no p2m page. Growth beyond it
//! does: the tests raise dom0's maximum reservation (what `xl mem-max`
//! does), and the balloon driver hotplugs a memory block above the old
//! `max_pfn`, onlined here, whose frames need new leaves in the list.

use crate::dom0;
use hv_feature::p2m::{Entry, P2m, ReadOptions, SourcePref};
use hv_feature::shared_info::ArchSharedInfo;
use hv_feature::{domain, DomId, Error};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const BALLOON: &str = "/sys/devices/system/xen_memory/xen_memory0";
const MEMORY: &str = "/sys/devices/system/memory";

fn read_kb(file: &str) -> u64 {
    let path = format!("{BALLOON}/{file}");
    let s = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    s.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{path}: not a number: {s:?}"))
}

fn arch() -> ArchSharedInfo {
    let pc = dom0();
    let pv = domain::PvDomain::open(&pc, DomId(0)).expect("getdomaininfo 0, width, shared_info");
    pv.arch().expect("shared_info")
}

/// Onlines every hotplugged memory block the kernel left offline.
fn online_new_blocks() {
    let Ok(dir) = std::fs::read_dir(MEMORY) else {
        return;
    };
    for e in dir.flatten() {
        let state = e.path().join("state");
        if std::fs::read_to_string(&state).is_ok_and(|s| s.trim() == "offline") {
            let _ = std::fs::write(&state, "online");
        }
    }
}

/// Grows dom0 by `mb` MiB past its current maximum and waits (bounded) for
/// the balloon driver to get there. Returns the pages gained.
fn grow_past_max(mb: u64) -> u64 {
    let pc = dom0();
    let before = domain::domain_info(&pc, DomId(0)).expect("getdomaininfo 0");
    let max_kb = before.max_pages * 4 + mb * 1024;
    domain::set_max_mem(&pc, DomId(0), max_kb).expect("raise dom0's maximum reservation");
    let target = read_kb("target_kb") + mb * 1024;
    std::fs::write(format!("{BALLOON}/target_kb"), target.to_string()).expect("write target_kb");
    let deadline = Instant::now() + Duration::from_secs(120);
    while read_kb("info/current_kb") < target && Instant::now() < deadline {
        online_new_blocks();
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = domain::domain_info(&pc, DomId(0)).expect("getdomaininfo 0");
    after.tot_pages.saturating_sub(before.tot_pages)
}

fn valid_entries(p: &P2m<hv_feature::privcmd::Privcmd>) -> u64 {
    p.entries()
        .filter(|(_, e)| matches!(e, Entry::Mfn(_)))
        .count() as u64
}

#[test]
#[ignore = "grows dom0 by 192 MiB past its maximum; run with --ignored on a disposable host (make test does)"]
fn growing_dom0_adds_p2m_pages_and_bumps_the_generation_evenly() {
    let pc = dom0();
    let opts = ReadOptions::default()
        .with_source(SourcePref::List)
        .with_verify_m2p(true);
    let a0 = arch();
    assert_eq!(
        a0.p2m_generation % 2,
        0,
        "generation {} odd",
        a0.p2m_generation
    );
    let p0 = P2m::read(&pc, DomId(0), &opts).expect("read before");
    let gained = grow_past_max(128);
    assert!(gained >= 16384, "dom0 gained only {gained} pages of 32768");
    let a1 = arch();
    assert_eq!(
        a1.p2m_generation % 2,
        0,
        "generation {} odd at rest",
        a1.p2m_generation
    );
    assert!(
        a1.p2m_generation > a0.p2m_generation,
        "generation did not move ({} -> {}) although {gained} pages were added",
        a0.p2m_generation,
        a1.p2m_generation
    );
    assert_eq!(a1.p2m_vaddr, a0.p2m_vaddr, "the list moved");
    let p1 = P2m::read(&pc, DomId(0), &opts).expect("fresh read after growing");
    assert!(p1.max_pfn() > p0.max_pfn(), "max_pfn did not grow");
    assert_eq!(
        valid_entries(&p1),
        valid_entries(&p0) + gained,
        "the new frames are not all valid in a fresh read"
    );
}

#[test]
#[ignore = "grows dom0 by 64 MiB past its maximum; run with --ignored on a disposable host (make test does)"]
fn reads_while_ballooning_are_consistent_or_fail_as_changed() {
    let done = AtomicBool::new(false);
    let opts = ReadOptions::default()
        .with_source(SourcePref::List)
        .with_verify_m2p(true)
        .with_attempts(3);
    let (mut ok, mut changed) = (0u32, 0u32);
    let before = arch().p2m_generation;
    std::thread::scope(|s| {
        let grower = s.spawn(|| {
            let g = grow_past_max(64);
            done.store(true, Ordering::SeqCst);
            g
        });
        let pc = dom0();
        let deadline = Instant::now() + Duration::from_secs(150);
        while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
            match P2m::read(&pc, DomId(0), &opts) {
                Ok(p) => {
                    assert_eq!(p.generation() % 2, 0);
                    ok += 1;
                }
                Err(Error::GenerationUnstable { .. } | Error::GenerationOdd { .. }) => changed += 1,
                Err(e) => panic!("a read during ballooning failed with {e}"),
            }
        }
        let gained = grower.join().expect("grower thread");
        assert!(gained >= 8192, "dom0 gained only {gained} pages of 16384");
    });
    let after = arch().p2m_generation;
    println!(
        "reads during ballooning: {ok} consistent, {changed} changed under us, \
         generation {before} -> {after}"
    );
    assert!(ok + changed > 0, "no read completed while ballooning");
    assert!(after > before, "the list did not change during the reads");
}
