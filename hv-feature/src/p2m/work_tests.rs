// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The work of reading, verifying and refreshing follows the distinct
//! pages: counted (not timed) on a hostile guest whose five pages span
//! `max_pfn` = 2^40, i.e. 2^31 leaf positions.

use super::walk::STEPS;
use super::*;
use crate::sim::{GuestSpec, SimHost};

fn steps() -> u64 {
    STEPS.with(|c| c.get())
}

#[test]
fn aliased_guest_costs_its_distinct_pages_not_its_leaf_positions() {
    let host = SimHost::new(1 << 16).unwrap();
    let dom = host
        .add_guest(&GuestSpec::new(DomId(1), GuestWidth::W64, 4096))
        .unwrap();
    let a = host.alias_list(dom, 1 << 40).unwrap();
    let opts = ReadOptions::default();
    let start = steps();

    let mut p = P2m::read(&host, dom, &opts).unwrap();
    assert_eq!(p.max_pfn(), 1 << 40);
    assert_eq!(p.leaf_count(), 1 << 31);
    assert_eq!(p.stats().distinct_leaves, 2);
    assert_eq!(p.leaf_frame(0), Some(a.ram_leaf));
    assert_eq!(p.leaf_frame((1 << 31) - 1), Some(a.missing_leaf));
    assert_eq!(p.leaf_frame((1 << 31) - 2), Some(a.ram_leaf));
    let ram0 = host.ram_mfn(dom, Pfn(5)).unwrap().unwrap();
    assert_eq!(
        p.lookup(Pfn((1 << 40) - 1024 + 5)).unwrap(),
        Entry::Mfn(ram0)
    );
    assert_eq!(p.lookup(Pfn((1 << 40) - 1)).unwrap(), Entry::Invalid);

    let v = verify(&host, dom, &opts).unwrap();
    // 2^30 positions name leaf 0 (512 RAM entries), 2^30 the missing page.
    assert_eq!(v.entries.valid, 1 << 39);
    assert_eq!(v.entries.invalid, 1 << 39);
    assert_eq!(v.m2p_checked, 1 << 39);
    // Only leaf 0's own position round-trips.
    assert_eq!(v.m2p_mismatches, (1 << 39) - 512);
    let m = v.first_m2p_mismatch.unwrap();
    assert_ne!(m.pfn.0 / 512, 0);
    assert_eq!(host.m2p(m.mfn), Some(Pfn(m.pfn.0 % 512)));
    assert_eq!(v.tree, TreeStatus::TooSmall { capacity: 1 << 27 });

    // Entry 1 of the one level-1 table now maps leaf 0 too: leaf 1 of
    // every one of the 2^22 level-1 positions changed.
    host.write_word(a.l1, 8, 8, (a.ram_leaf.0 << 12) | 0x21)
        .unwrap();
    host.update_arch(dom, |x| x.p2m_generation += 2).unwrap();
    let Refresh::Changed {
        changed_leaves,
        changed_count,
        ..
    } = p.refresh().unwrap()
    else {
        panic!("refresh saw no change");
    };
    assert_eq!(changed_count, 1 << 22);
    assert_eq!(changed_leaves.len(), MAX_LEAF_CHANGES);
    assert_eq!(changed_leaves[0].leaf, 1);
    assert_eq!(changed_leaves[1].leaf, 513);
    assert_eq!(changed_leaves[1].before, Some(a.missing_leaf));
    assert_eq!(changed_leaves[1].after, Some(a.ram_leaf));
    assert_eq!(p.refresh().unwrap(), Refresh::Unchanged);

    // Per leaf position this would be 2^31 steps at least; per distinct
    // row it is a few thousand, plus one per listed change (and the
    // interior rows above them).
    let work = steps() - start;
    eprintln!("read + verify + refresh of 2^31 leaf positions: {work} steps");
    assert!(work < 1 << 20, "{work} steps");
}
