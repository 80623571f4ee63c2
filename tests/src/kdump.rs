// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Stand-in for `hv-feature p2m 0 --entries-out FILE` (not there yet):
//! the kdump boots save dom0's live p2m before crashing it.

use crate::dom0;
use hv_feature::p2m::{P2m, ReadOptions};
use hv_feature::{DomId, Pfn};
use std::io::Write;

/// Writes dom0's p2m, one little-endian u64 per pfn, to `VP2M_P2M_OUT`.
#[test]
#[ignore = "run by the kdump boots: writes the file named by VP2M_P2M_OUT"]
fn save_live_p2m() {
    let path = std::env::var("VP2M_P2M_OUT").expect("VP2M_P2M_OUT names the output file");
    let pc = dom0();
    let p = P2m::read(&pc, DomId(0), &ReadOptions::default()).expect("read dom0's p2m");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("create output"));
    for pfn in 0..p.max_pfn() {
        let raw = p.raw(Pfn(pfn)).expect("entry below max_pfn");
        out.write_all(&raw.to_le_bytes()).expect("write entry");
    }
    out.flush().expect("flush output");
}
