// SPDX-License-Identifier: Apache-2.0 OR MIT
//! A real PV domU created by the real toolstack (`xl create`, Debian's Xen
//! 4.17.5 tools): its linear list, `xl dump-core` as an independent oracle,
//! `xl save`/`xl restore`, and `xl mem-set` while a reader holds its p2m.
//!
//! The harness creates the domU first (`vp2m-domu-start --sif-virt-p2m
//! vp2m-domu`: created with `SIF_VIRT_P2M_4TOOLS`, so it drops its tree)
//! and names it in `VP2M_DOMU`. The tests dump, save,
//! restore and balloon that guest, so they are `#[ignore]`d: run them with
//! `-- --ignored domu::` where such a guest may be changed (`make test`
//! does, in its own boot). They run in name order (`--test-threads=1`):
//! dump-core, list, mem-set, save/restore last (the restored guest keeps
//! its tree: see there).

use crate::dom0;
use hv_feature::core::{compare, CoreFile};
use hv_feature::p2m::{self, Entry, P2m, ReadOptions, Refresh, Source, SourcePref, TreeStatus};
use hv_feature::privcmd::Privcmd;
use hv_feature::shared_info::{self, ArchSharedInfo};
use hv_feature::{domain, DomId, Mfn, Pfn};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const WHY: &str =
    "needs the PV domU named by VP2M_DOMU, which it dumps, saves, restores or balloons \
                   (make test creates one)";

fn name() -> String {
    std::env::var("VP2M_DOMU").unwrap_or_else(|_| panic!("set VP2M_DOMU: these tests {WHY}"))
}

/// Runs `xl ARGS`, which must succeed; returns its stdout.
fn xl(args: &[&str]) -> String {
    let out = Command::new("xl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run xl {args:?}: {e}"));
    assert!(
        out.status.success(),
        "xl {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn domid() -> DomId {
    let n = name();
    let s = xl(&["domid", &n]);
    DomId(
        s.trim()
            .parse()
            .unwrap_or_else(|_| panic!("xl domid {n}: {s:?}")),
    )
}

fn arch(pc: &Privcmd, dom: DomId) -> ArchSharedInfo {
    let info = domain::domain_info(pc, dom).expect("getdomaininfo");
    let w = domain::guest_width(pc, dom).expect("get_address_size");
    shared_info::read(pc, dom, info.shared_info_frame, w).expect("shared_info")
}

fn list_opts() -> ReadOptions {
    ReadOptions {
        source: SourcePref::List,
        verify_m2p: true,
        ..ReadOptions::default()
    }
}

fn valid(p: &P2m<Privcmd>) -> u64 {
    p.entries()
        .filter(|(_, e)| matches!(e, Entry::Mfn(_)))
        .count() as u64
}

/// Polls `f` every 200 ms until it is true or `secs` have passed.
fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "needs the PV domU named by VP2M_DOMU (make test creates one)"]
fn domu_list_equals_the_m2p_and_its_tree_is_dropped() {
    let pc = dom0();
    let dom = domid();
    let a = arch(&pc, dom);
    assert_eq!(
        a.pfn_to_mfn_frame_list_list,
        u64::MAX,
        "tree not dropped: {a:?}"
    );
    assert_ne!(a.p2m_cr3, 0, "no list published: {a:?}");
    let r = p2m::verify(&pc, dom, &ReadOptions::default()).expect("verify the domU");
    assert_eq!(r.source, Source::List, "{r:?}");
    assert_eq!(r.tree, TreeStatus::Dropped, "{r:?}");
    assert!(r.consistent(), "{r:?}");
    let info = domain::domain_info(&pc, dom).expect("getdomaininfo");
    assert_eq!(
        r.entries.valid, info.tot_pages,
        "one valid entry per page: {r:?}"
    );
    assert_eq!(r.m2p_checked, r.entries.valid, "{r:?}");
    let p = P2m::read(&pc, dom, &list_opts()).expect("read the list");
    assert_eq!(p.stats().walk_map_calls, 5, "{:?}", p.stats());
}

#[test]
#[ignore = "runs xl dump-core of the PV domU named by VP2M_DOMU (make test creates one)"]
fn dump_core_xen_p2m_equals_the_p2m_rebuilt_from_the_dump_and_the_live_list() {
    let pc = dom0();
    let dom = domid();
    let file = std::env::temp_dir().join("vp2m-domu.core");
    let path = file.to_str().expect("utf-8 path");
    xl(&["dump-core", &name(), path]);
    let core = CoreFile::open(&file).expect("open the dump");
    let r = compare(&core, SourcePref::List).expect("rebuild the p2m from the dump");
    let info = domain::domain_info(&pc, dom).expect("getdomaininfo");
    // The dump's own p2m, rebuilt from its shared_info and page tables,
    // equals libxc's .xen_p2m for every pfn.
    assert!(r.agree(), "{r:?}");
    assert_eq!(r.source, Source::List);
    assert_eq!(r.arch.pfn_to_mfn_frame_list_list, u64::MAX, "{r:?}");
    assert_eq!(r.compared, info.tot_pages, "{r:?}");
    assert_eq!(r.entries.valid, info.tot_pages, "{r:?}");
    // And the live list (read through privcmd) says the same.
    let live = P2m::read(&pc, dom, &list_opts()).expect("read the live list");
    assert_eq!(live.max_pfn(), r.max_pfn);
    for &(pfn, gmfn) in core.dumped() {
        assert_eq!(
            live.lookup(Pfn(pfn)).expect("lookup"),
            Entry::Mfn(Mfn(gmfn)),
            "pfn {pfn:#x}"
        );
    }
    // The CLI says it too (exit 0), from the same file.
    let out = Command::new("hv-feature")
        .args(["core", path])
        .output()
        .expect("run hv-feature core (on PATH in the harness's dom0)");
    let text = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_file(&file);
    assert!(out.status.success(), "hv-feature core: {text}");
    assert!(text.contains("core: agrees with .xen_p2m"), "{text}");
}

#[test]
#[ignore = "balloons the PV domU named by VP2M_DOMU up to its maxmem (make test creates one)"]
fn mem_set_grows_the_list_and_the_reader_sees_the_generation_move() {
    let pc = dom0();
    let dom = domid();
    // The held view: no M2P check on refresh (entries change while the
    // balloon driver works; the fresh read below checks the M2P).
    let held = ReadOptions {
        source: SourcePref::List,
        ..ReadOptions::default()
    };
    let mut p = P2m::read(&pc, dom, &held).expect("read the list");
    let g0 = p.generation();
    let before = valid(&p);
    let info = domain::domain_info(&pc, dom).expect("getdomaininfo");
    // libxl sets Xen's maximum to `memory` at creation and raises it on
    // mem-set up to `maxmem`, which it keeps in xenstore as static-max.
    let key = format!("/local/domain/{}/memory/static-max", dom.0);
    let out = Command::new("xenstore-read")
        .arg(&key)
        .output()
        .expect("run xenstore-read");
    let text = String::from_utf8_lossy(&out.stdout);
    let static_max_kb: u64 = text
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("xenstore-read {key}: {text:?}"));
    // Linux gives a PV domU real p2m leaves up to its static maximum at
    // boot (measured: ballooning from memory=96 to maxmem=128 moves no
    // generation), so grow it past that: raise the maximum (xl mem-max
    // writes static-max too) and the target; the balloon driver hotplugs
    // a memory block above the old max_pfn (the domU's kernel command line
    // has memhp_default_state=online), whose frames need new leaves.
    let target_kb = static_max_kb + 128 * 1024;
    xl(&["mem-max", &name(), &format!("{target_kb}k")]);
    xl(&["mem-set", &name(), &format!("{target_kb}k")]);
    let info_before_kb = info.tot_pages * 4;
    eprintln!("mem-set: {info_before_kb} -> {target_kb} KiB");
    let mut changes = Vec::new();
    let mut busy = 0u32;
    let mut look = |p: &mut P2m<Privcmd>, changes: &mut Vec<Refresh>| match p.refresh(&pc) {
        Ok(Refresh::Unchanged) => {}
        Ok(c) => changes.push(c),
        // The guest is mid-update: the reader refuses, and looks again.
        Err(
            hv_feature::Error::GenerationOdd { .. } | hv_feature::Error::GenerationUnstable { .. },
        ) => busy += 1,
        Err(e) => panic!("refresh while ballooning: {e}"),
    };
    let grown = wait_for(120, || {
        look(&mut p, &mut changes);
        domain::domain_info(&pc, dom).is_ok_and(|i| i.tot_pages * 4 + 1024 >= target_kb)
    });
    assert!(grown, "the domU did not grow to {target_kb} KiB");
    // Let the guest finish, then one more look.
    std::thread::sleep(Duration::from_secs(2));
    look(&mut p, &mut changes);
    eprintln!(
        "mem-set: {} changes seen, {busy} refused mid-update",
        changes.len()
    );
    let Some(Refresh::Changed {
        generation_before,
        changed_leaves,
        ..
    }) = changes.first()
    else {
        panic!("the reader saw no change of generation {g0}");
    };
    assert_eq!(*generation_before, g0);
    assert!(!changed_leaves.is_empty(), "{changes:?}");
    assert_ne!(p.generation(), g0, "generation did not move");
    assert_eq!(p.generation() % 2, 0, "settled on an odd generation");
    // A fresh read sees the new pages and still round-trips the M2P.
    let fresh = P2m::read(&pc, dom, &list_opts()).expect("fresh read");
    assert_eq!(fresh.generation(), p.generation());
    let info = domain::domain_info(&pc, dom).expect("getdomaininfo");
    assert_eq!(valid(&fresh), info.tot_pages);
    assert!(valid(&fresh) > before, "{} -> {}", before, valid(&fresh));
    // Back to where it was, so that the save image stays small.
    let back_kb = info_before_kb;
    xl(&["mem-set", &name(), &format!("{back_kb}k")]);
    let shrunk = wait_for(120, || {
        domain::domain_info(&pc, dom).is_ok_and(|i| i.tot_pages * 4 <= back_kb + 1024)
    });
    assert!(shrunk, "the domU did not shrink back to {back_kb} KiB");
}

#[test]
#[ignore = "saves and restores the PV domU named by VP2M_DOMU (make test creates one)"]
fn save_restore_republishes_the_fields_and_a_read_before_resume_fails_cleanly() {
    let pc = dom0();
    let n = name();
    let old = domid();
    let a0 = arch(&pc, old);
    let file = std::env::temp_dir().join("vp2m-domu.save");
    let path = file.to_str().expect("utf-8 path");
    xl(&["save", &n, path]);
    // Restored paused: the guest has not run its resume path yet.
    xl(&["restore", "-p", path]);
    let _ = std::fs::remove_file(&file);
    let dom = domid();
    assert_ne!(dom, old, "restore made a new domain");
    let a1 = arch(&pc, dom);
    // libxc copies the old arch fields (the old p2m_cr3, a machine frame
    // of the saved domain) and clears the tree root until the guest runs.
    assert_eq!(a1.p2m_cr3, a0.p2m_cr3, "{a1:?}");
    assert_eq!(a1.pfn_to_mfn_frame_list_list, 0, "{a1:?}");
    // A read now must fail with a typed error (measured: the stale root
    // frame now belongs to the new domain and holds no page-table entry
    // for the list, PteNotPresent), never return a p2m.
    match P2m::read(&pc, dom, &list_opts()) {
        Err(e) => {
            eprintln!("read before resume: {e}");
            assert!(e.is_guest_data(), "not a guest-data error: {e}");
        }
        Ok(p) => panic!("read before resume returned a p2m: {p:?}"),
    }
    xl(&["unpause", &n]);
    let mut a2 = a1;
    let resumed = wait_for(60, || {
        a2 = arch(&pc, dom);
        a2.pfn_to_mfn_frame_list_list != 0 && a2.p2m_cr3 != a0.p2m_cr3
    });
    assert!(resumed, "fields not republished after resume: {a2:?}");
    assert_eq!(a2.p2m_generation, 0, "generation restarts at 0: {a2:?}");
    assert_eq!(a2.p2m_vaddr, a0.p2m_vaddr);
    // libxc's restore writes start_info.flags = 0, so the resumed guest no
    // longer sees SIF_VIRT_P2M_4TOOLS and republishes a tree.
    assert_ne!(a2.pfn_to_mfn_frame_list_list, u64::MAX, "{a2:?}");
    let r = p2m::verify(&pc, dom, &ReadOptions::default()).expect("verify after resume");
    assert!(r.consistent(), "{r:?}");
    assert_eq!(r.tree, TreeStatus::Present, "{r:?}");
    assert_eq!(r.list_tree_compared, r.max_pfn, "{r:?}");
    let info = domain::domain_info(&pc, dom).expect("getdomaininfo");
    assert_eq!(r.entries.valid, info.tot_pages, "{r:?}");
    let p = P2m::read(&pc, dom, &list_opts()).expect("read after resume");
    assert_eq!(p.generation(), 0);
    assert!(Path::new("/proc/xen").exists());
}
