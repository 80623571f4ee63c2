// SPDX-License-Identifier: Apache-2.0 OR MIT
//! dom0's own shared_info on the real hypervisor.

use crate::{dom0, expect};
use hv_feature::shared_info::{self, ArchSharedInfo};
use hv_feature::{domain, DomId, GuestWidth};

fn dom0_arch() -> (ArchSharedInfo, u64) {
    let pc = dom0();
    let info = domain::domain_info(&pc, DomId(0)).expect("getdomaininfo 0");
    assert!(!info.hvm, "these tests expect a PV dom0");
    let width = domain::guest_width(&pc, DomId(0)).expect("get_address_size 0");
    assert_eq!(width, GuestWidth::W64, "64-bit dom0 expected");
    let a = shared_info::read(&pc, DomId::SELF, info.shared_info_frame, width)
        .expect("map dom0's shared_info with DOMID_SELF");
    let max_mfn = domain::max_mfn(&pc).expect("maximum_ram_page").0;
    (a, max_mfn)
}

#[test]
fn dom0_tree_root_is_as_expected() {
    let (a, max_mfn) = dom0_arch();
    let root = a.pfn_to_mfn_frame_list_list;
    let present = root != 0 && root != u64::MAX && root <= max_mfn;
    let dropped = root == u64::MAX;
    match expect("VP2M_EXPECT_DOM0_TREE", "any").as_str() {
        "present" => assert!(
            present,
            "expected a tree root frame, got {root:#x} (max mfn {max_mfn:#x})"
        ),
        "dropped" => assert!(dropped, "expected ~0 (tree dropped), got {root:#x}"),
        _ => assert!(
            present || dropped,
            "tree root {root:#x} is neither a frame nor ~0"
        ),
    }
}

#[test]
fn dom0_publishes_its_linear_list() {
    let (a, max_mfn) = dom0_arch();
    assert_ne!(a.p2m_cr3, 0, "p2m_cr3 not published");
    assert!(
        a.p2m_cr3 >> 12 <= max_mfn,
        "p2m_cr3 {:#x} beyond max mfn {max_mfn:#x}",
        a.p2m_cr3
    );
    assert_eq!(
        a.p2m_vaddr & 0xfff,
        0,
        "p2m_vaddr {:#x} not page aligned",
        a.p2m_vaddr
    );
    let top = a.p2m_vaddr >> 47;
    assert!(
        top == 0 || top == 0x1ffff,
        "p2m_vaddr {:#x} not canonical",
        a.p2m_vaddr
    );
    assert_eq!(
        a.p2m_generation % 2,
        0,
        "generation {} is odd at rest",
        a.p2m_generation
    );
    assert_ne!(a.max_pfn, 0, "max_pfn is 0");
}
