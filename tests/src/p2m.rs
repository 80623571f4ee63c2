// SPDX-License-Identifier: Apache-2.0 OR MIT
//! dom0's own p2m, read through the linear list on the real hypervisor.

use crate::{dom0, expect};
use hv_feature::p2m::{self, Entry, P2m, ReadOptions, Source, SourcePref, TreeStatus};
use hv_feature::{domain, DomId, Pfn};

#[test]
fn dom0_list_equals_its_tree_and_the_m2p_for_every_pfn() {
    let pc = dom0();
    let r = p2m::verify(&pc, DomId(0), &ReadOptions::default()).expect("verify dom0");
    assert_eq!(r.source, Source::List, "dom0 publishes its list");
    assert!(r.consistent(), "dom0's p2m is inconsistent: {r:?}");
    assert!(r.entries.valid > 0, "no valid entries: {r:?}");
    assert_eq!(
        r.m2p_checked, r.entries.valid,
        "not every valid entry was checked against the M2P"
    );
    match expect("VP2M_EXPECT_DOM0_TREE", "any").as_str() {
        "present" => {
            assert_eq!(r.tree, TreeStatus::Present, "{r:?}");
            assert_eq!(
                r.list_tree_compared, r.max_pfn,
                "list and tree not compared for every pfn"
            );
        }
        "dropped" => {
            assert_eq!(r.tree, TreeStatus::Dropped, "{r:?}");
            assert_eq!(r.list_tree_compared, 0);
        }
        _ => {
            if r.tree == TreeStatus::Present {
                assert_eq!(
                    r.list_tree_compared, r.max_pfn,
                    "list and tree not compared for every pfn"
                );
            }
        }
    }
}

#[test]
fn dom0_list_walk_maps_one_batch_per_level_plus_the_leaves() {
    let pc = dom0();
    let opts = ReadOptions::default()
        .with_source(SourcePref::List)
        .with_verify_m2p(true);
    let p = P2m::read(&pc, DomId(0), &opts).expect("read dom0's list");
    assert_eq!(p.source(), Source::List);
    assert_eq!(p.stats().walk_map_calls, 5, "{:?}", p.stats());
    assert_eq!(p.generation() % 2, 0);
}

#[test]
fn dom0_has_one_valid_entry_per_page_it_owns() {
    let pc = dom0();
    let info = domain::domain_info(&pc, DomId(0)).expect("getdomaininfo");
    let p = P2m::read(&pc, DomId(0), &ReadOptions::default()).expect("read dom0's p2m");
    let valid = p
        .entries()
        .filter(|(_, e)| matches!(e, Entry::Mfn(_)))
        .count() as u64;
    // What the page count implies: every page dom0 owns is in its p2m once,
    // so the list covers at least that many pfns.
    assert_eq!(valid, info.tot_pages, "valid entries vs pages owned");
    assert!(
        p.max_pfn() >= info.tot_pages,
        "max_pfn {:#x} below the {:#x} pages owned",
        p.max_pfn(),
        info.tot_pages
    );
}

#[test]
fn a_pfn_past_max_pfn_is_a_typed_error() {
    let pc = dom0();
    let p = P2m::read(&pc, DomId(0), &ReadOptions::default()).expect("read dom0's p2m");
    let e = p.lookup(Pfn(p.max_pfn())).unwrap_err();
    assert!(matches!(e, hv_feature::Error::PfnOutOfRange { .. }), "{e}");
}
