// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Rules one tree must obey on its own, per ABI.

use crate::abi::Abi;
use crate::model::Snapshot;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The largest `struct shared_info` allowed: it is one page.
pub const SHARED_INFO_LIMIT: u64 = 4096;
/// The exact size of `struct vcpu_info`: guests index arrays of it.
pub const VCPU_INFO_SIZE: u64 = 64;
/// Feature bits must fit the one 32-bit submap (`XENFEAT_NR_SUBMAPS` is 1).
pub const XENFEAT_BITS: i128 = 32;

/// The result of one rule on one ABI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// The ABI checked.
    pub abi: Abi,
    /// Short name of the rule.
    pub rule: String,
    /// Whether the rule holds.
    pub passed: bool,
    /// What was found.
    pub detail: String,
}

/// Checks the layout invariants and the `XENFEAT_*` bits of one snapshot.
pub fn check(abi: Abi, snapshot: &Snapshot) -> Vec<Check> {
    let mut out = Vec::new();
    let mut push = |rule: &str, passed: bool, detail: String| {
        out.push(Check {
            abi,
            rule: rule.to_string(),
            passed,
            detail,
        })
    };
    match snapshot.records.get("struct shared_info") {
        Some(r) => push(
            "shared_info fits a page",
            r.size <= SHARED_INFO_LIMIT,
            format!(
                "struct shared_info is {} bytes (limit {SHARED_INFO_LIMIT})",
                r.size
            ),
        ),
        None => push(
            "shared_info fits a page",
            false,
            "struct shared_info not found".into(),
        ),
    }
    match snapshot.records.get("struct vcpu_info") {
        Some(r) => push(
            "vcpu_info is 64 bytes",
            r.size == VCPU_INFO_SIZE,
            format!("struct vcpu_info is {} bytes", r.size),
        ),
        None => push(
            "vcpu_info is 64 bytes",
            false,
            "struct vcpu_info not found".into(),
        ),
    }
    let mut by_bit: BTreeMap<i128, Vec<&str>> = BTreeMap::new();
    for (name, c) in &snapshot.constants {
        if name.starts_with("XENFEAT_") && name != "XENFEAT_NR_SUBMAPS" {
            by_bit.entry(c.value).or_default().push(name);
        }
    }
    let too_high: Vec<String> = by_bit
        .iter()
        .filter(|(bit, _)| !(0..XENFEAT_BITS).contains(*bit))
        .flat_map(|(bit, names)| names.iter().map(move |n| format!("{n} = {bit}")))
        .collect();
    push(
        "XENFEAT bits below 32",
        too_high.is_empty(),
        if too_high.is_empty() {
            format!(
                "{} feature bits, all below {XENFEAT_BITS}",
                by_bit.values().map(Vec::len).sum::<usize>()
            )
        } else {
            format!("not below {XENFEAT_BITS}: {}", too_high.join(", "))
        },
    );
    let duplicated: Vec<String> = by_bit
        .iter()
        .filter(|(_, names)| names.len() > 1)
        .map(|(bit, names)| format!("bit {bit}: {}", names.join(", ")))
        .collect();
    push(
        "XENFEAT bits unique",
        duplicated.is_empty(),
        if duplicated.is_empty() {
            "no bit is used twice".into()
        } else {
            format!("duplicated {}", duplicated.join("; "))
        },
    );
    out
}

/// Checks every ABI of a tree.
pub fn check_all(snapshots: &BTreeMap<Abi, Snapshot>) -> Vec<Check> {
    snapshots
        .iter()
        .flat_map(|(abi, s)| check(*abi, s))
        .collect()
}
