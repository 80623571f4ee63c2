// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The features word on the real hypervisor.

use crate::{dom0, expect};
use hv_feature::features::{self, Features};

#[test]
fn hypercall_features_word_equals_sysfs() {
    let pc = dom0();
    let hypercall = features::query(&pc).expect("XENVER_get_features");
    let sysfs = features::from_sysfs().expect("read /sys/hypervisor/properties/features");
    assert_eq!(
        hypercall,
        sysfs,
        "hypercall {:#x} vs sysfs {:#x}",
        hypercall.bits(),
        sysfs.bits()
    );
}

#[test]
fn virtual_p2m_bit_is_as_expected() {
    let pc = dom0();
    let f = features::query(&pc).expect("XENVER_get_features");
    let want = expect("VP2M_EXPECT_VIRTUAL_P2M", "1") == "1";
    assert_eq!(
        f.contains(Features::VIRTUAL_P2M),
        want,
        "features word {:#010x}: XENFEAT_virtual_p2m (bit 21) expected {}",
        f.bits(),
        if want { "set" } else { "clear" }
    );
}

#[test]
fn dom0_sees_the_pv_dom0_bits() {
    let f = features::query(&dom0()).expect("XENVER_get_features");
    for b in [
        Features::DOM0,
        Features::MMU_PT_UPDATE_PRESERVE_AD,
        Features::DIRECT_MAPPED,
    ] {
        assert!(f.contains(b), "{b:?} missing from {:#010x}", f.bits());
    }
}
