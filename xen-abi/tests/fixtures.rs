// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Runs `xen-abi diff` on each fixture pair under `tests/fixtures/<case>/{old,new}` and
//! checks the verdict, the exit status and the key lines of the report.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn fixture(case: &str) -> (PathBuf, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(case);
    (dir.join("old"), dir.join("new"))
}

/// Exit status and stdout of `xen-abi ARGS`.
fn xen_abi(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xen-abi"))
        .args(args)
        .output()
        .expect("xen-abi runs");
    (
        out.status.code().expect("xen-abi exits normally"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Exit status, text report and JSON report of the diff of a fixture pair.
fn diff(case: &str) -> (i32, String, Value) {
    let (old, new) = fixture(case);
    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());
    let (code, text, _) = xen_abi(&["diff", old, new]);
    let (json_code, json, _) = xen_abi(&["diff", old, new, "--json"]);
    assert_eq!(
        code, json_code,
        "text and JSON runs disagree on the exit status"
    );
    (code, text, serde_json::from_str(&json).expect("valid JSON"))
}

/// The changes of a JSON report as (abi, item, member, verdict).
fn changes(report: &Value) -> Vec<(String, String, String, String)> {
    report["changes"]
        .as_array()
        .expect("changes array")
        .iter()
        .map(|c| {
            (
                c["abi"].as_str().unwrap().to_string(),
                c["item"].as_str().unwrap().to_string(),
                c["member"].as_str().unwrap_or("").to_string(),
                c["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn failed_rules(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| format!("{} {}: {}", c["abi"], c["rule"], c["detail"]))
        .collect()
}

fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or("")
}

#[test]
fn unchanged_tree_reports_nothing_and_passes() {
    let (code, text, json) = diff("unchanged");
    assert_eq!(code, 0, "{text}");
    assert!(changes(&json).is_empty(), "{text}");
    assert!(text.contains("no ABI difference"), "{text}");
    assert_eq!(last_line(&text), "ABI: 12 passed, 0 failed");
}

#[test]
fn new_feature_bit_is_one_compatible_constant_on_both_abis() {
    let (code, text, json) = diff("feature_bit");
    assert_eq!(code, 0, "{text}");
    let got = changes(&json);
    assert_eq!(
        got,
        vec![
            (
                "x86_32".into(),
                "XENFEAT_virtual_p2m".into(),
                "".into(),
                "compatible".into()
            ),
            (
                "x86_64".into(),
                "XENFEAT_virtual_p2m".into(),
                "".into(),
                "compatible".into()
            ),
        ]
    );
    assert_eq!(json["changes"][0]["new"]["value"], "21");
    assert_eq!(json["verdict"], "compatible");
    assert!(last_line(&text).ends_with(", 0 failed"), "{text}");
}

#[test]
fn expectation_of_the_feature_bit_is_met() {
    let (old, new) = fixture("feature_bit");
    let (code, text, _) = xen_abi(&[
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        "--expect",
        "XENFEAT_virtual_p2m=21",
    ]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn expectation_fails_on_any_other_change() {
    let (old, new) = fixture("new_struct");
    let (code, text, _) = xen_abi(&[
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        "--expect",
        "XENFEAT_virtual_p2m=21",
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("expected change missing"), "{text}");
    assert!(text.contains("unexpected: struct fixture_new_op"), "{text}");
}

#[test]
fn historical_p2m_fields_replacing_pad_are_compatible() {
    let (code, text, json) = diff("historical_p2m");
    assert_eq!(code, 0, "{text}");
    let got = changes(&json);
    assert!(got.iter().all(|c| c.3 == "compatible"), "{text}");
    for abi in ["x86_32", "x86_64"] {
        for member in ["p2m_cr3", "p2m_vaddr", "p2m_generation"] {
            assert!(
                got.contains(&(
                    abi.into(),
                    "struct arch_shared_info".into(),
                    member.into(),
                    "compatible".into()
                )),
                "{abi} {member} missing:\n{text}"
            );
        }
        assert!(got.contains(&(
            abi.into(),
            "struct shared_info".into(),
            "(size)".into(),
            "compatible".into()
        )));
    }
    assert!(text.contains("padding removed"), "{text}");
    assert!(
        text.contains("struct shared_info is a page of its own"),
        "{text}"
    );
}

#[test]
fn reordered_member_breaks_on_both_abis() {
    let (code, text, json) = diff("reordered_member");
    assert_eq!(code, 1, "{text}");
    for abi in ["x86_32", "x86_64"] {
        for member in ["p2m_cr3", "p2m_vaddr"] {
            assert!(changes(&json).contains(&(
                abi.into(),
                "struct arch_shared_info".into(),
                member.into(),
                "break".into()
            )));
        }
    }
    assert!(text.contains("member moved"), "{text}");
    assert!(text.contains("=> BREAK on x86_32, x86_64"), "{text}");
    assert_eq!(last_line(&text), "ABI: 12 passed, 4 failed");
}

#[test]
fn member_after_p2m_generation_breaks_x86_32_only() {
    let (code, text, json) = diff("appended_after_generation");
    assert_eq!(code, 1, "{text}");
    let breaks: Vec<_> = changes(&json)
        .into_iter()
        .filter(|c| c.3 == "break")
        .collect();
    assert_eq!(
        breaks,
        vec![(
            "x86_32".into(),
            "struct arch_shared_info".into(),
            "wc_sec_hi".into(),
            "break".into()
        )],
        "{text}"
    );
    assert!(text.contains("=> BREAK on x86_32 only"), "{text}");
    // On x86_64 the same change is a tail growth of a tail member.
    assert!(changes(&json).contains(&(
        "x86_64".into(),
        "struct shared_info".into(),
        "arch".into(),
        "compatible".into()
    )));
}

#[test]
fn changed_constant_breaks() {
    let (code, text, json) = diff("changed_constant");
    assert_eq!(code, 1, "{text}");
    assert_eq!(
        changes(&json),
        vec![
            (
                "x86_32".into(),
                "FIXTURE_HYPERCALL_sched_op".into(),
                "".into(),
                "break".into()
            ),
            (
                "x86_64".into(),
                "FIXTURE_HYPERCALL_sched_op".into(),
                "".into(),
                "break".into()
            ),
        ]
    );
    assert_eq!(json["changes"][0]["old"]["value"], "29");
    assert_eq!(json["changes"][0]["new"]["value"], "30");
    assert!(text.contains("constant value changed"), "{text}");
}

#[test]
fn duplicated_xenfeat_bit_breaks() {
    let (code, text, json) = diff("duplicated_xenfeat");
    assert_eq!(code, 1, "{text}");
    let failed = failed_rules(&json);
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed
            .iter()
            .all(|f| f.contains("XENFEAT_dom0, XENFEAT_virtual_p2m")),
        "{failed:?}"
    );
    assert!(text.contains("duplicated bit 11"), "{text}");
}

#[test]
fn xenfeat_bit_not_below_32_breaks() {
    let (code, text, json) = diff("xenfeat_not_below_32");
    assert_eq!(code, 1, "{text}");
    assert_eq!(failed_rules(&json).len(), 2);
    assert!(
        text.contains("not below 32: XENFEAT_virtual_p2m = 32"),
        "{text}"
    );
}

#[test]
fn new_struct_is_compatible() {
    let (code, text, json) = diff("new_struct");
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        changes(&json),
        vec![
            (
                "x86_32".into(),
                "struct fixture_new_op".into(),
                "".into(),
                "compatible".into()
            ),
            (
                "x86_64".into(),
                "struct fixture_new_op".into(),
                "".into(),
                "compatible".into()
            ),
        ]
    );
    assert!(text.contains("new type (xen.h)"), "{text}");
}

#[test]
fn not_a_tree_exits_2_and_says_what_to_pass() {
    let (old, _) = fixture("unchanged");
    let here = env!("CARGO_MANIFEST_DIR");
    let (code, stdout, stderr) = xen_abi(&["diff", old.to_str().unwrap(), here]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("NEW"), "{stderr}");
    assert!(stderr.contains("is not a Xen tree"), "{stderr}");
}

#[test]
fn bad_command_line_exits_2_with_usage() {
    let (code, _, stderr) = xen_abi(&["diff", "only-one"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("usage: xen-abi diff OLD NEW"), "{stderr}");
}

#[test]
fn check_of_a_public_folder_needs_a_tree_for_reference_size() {
    let (old, _) = fixture("unchanged");
    let (code, _, stderr) = xen_abi(&["check", old.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--no-reference-size"), "{stderr}");
    let (code, text, _) = xen_abi(&["check", old.to_str().unwrap(), "--no-reference-size"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(last_line(&text), "ABI: 8 passed, 0 failed");
}

#[test]
fn check_flags_a_broken_invariant() {
    let (_, new) = fixture("duplicated_xenfeat");
    let (code, text, _) = xen_abi(&["check", new.to_str().unwrap(), "--no-reference-size"]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(last_line(&text), "ABI: 6 passed, 2 failed");
}

/// The exact expectation of this project's crash note series: every new constant, the new
/// struct and its typedef, with their values and sizes.
const CRASH_NOTE_EXPECT: &[&str] = &[
    "--expect",
    "XENFEAT_virtual_p2m=21",
    "--expect",
    "XEN_ELFNOTE_CRASH_DOM0_P2M=0x1000003",
    "--expect",
    "XEN_CRASH_DOM0_P2M_VERSION=1",
    "--expect",
    "XEN_CRASH_DOM0_P2M_PV=1",
    "--expect",
    "XEN_CRASH_DOM0_P2M_COMPAT=2",
    "--expect",
    "struct xen_crash_dom0_p2m=48",
    "--expect",
    "typedef xen_crash_dom0_p2m_t=48",
];

#[test]
fn crash_note_series_meets_its_exact_expectation() {
    let (old, new) = fixture("crash_note");
    let mut args = vec!["diff", old.to_str().unwrap(), new.to_str().unwrap()];
    args.extend_from_slice(CRASH_NOTE_EXPECT);
    let (code, text, _) = xen_abi(&args);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("expected change struct xen_crash_dom0_p2m = 48"),
        "{text}"
    );
    assert!(!text.contains("FAILED"), "{text}");
    let (_, _, json) = diff("crash_note");
    let record = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["item"] == "struct xen_crash_dom0_p2m")
        .expect("the struct from elfnote.h is extracted");
    assert_eq!(record["header"], "elfnote.h");
}

#[test]
fn crash_note_expectation_fails_on_a_wrong_size_or_a_missing_item() {
    let (old, new) = fixture("crash_note");
    let mut args = vec!["diff", old.to_str().unwrap(), new.to_str().unwrap()];
    args.extend_from_slice(&CRASH_NOTE_EXPECT[..CRASH_NOTE_EXPECT.len() - 4]);
    args.extend_from_slice(&["--expect", "struct xen_crash_dom0_p2m=40"]);
    let (code, text, _) = xen_abi(&args);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("new value is 48"), "{text}");
    assert!(
        text.contains("unexpected: typedef xen_crash_dom0_p2m_t"),
        "{text}"
    );
}

#[test]
fn flexible_array_and_page_growth_are_compatible() {
    let (code, text, json) = diff("flexible_ring");
    assert_eq!(code, 0, "{text}");
    assert!(changes(&json).iter().all(|c| c.3 == "compatible"), "{text}");
    assert!(
        text.contains("one-element array became a flexible array member"),
        "{text}"
    );
    assert!(
        text.contains("it shrank only because its last member ring became a flexible array"),
        "{text}"
    );
    assert!(
        text.contains("struct xencons_interface is a page of its own"),
        "{text}"
    );
}

#[test]
fn tools_only_change_with_a_bump_is_compatible() {
    let (code, text, json) = diff("tools_bumped");
    assert_eq!(code, 0, "{text}");
    let versioning: Vec<&str> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["versioning"].as_str().unwrap_or(""))
        .collect();
    assert!(
        versioning.contains(&"bump") && versioning.contains(&"bumped"),
        "{text}"
    );
    assert!(text.contains("old tools are refused cleanly"), "{text}");
}

#[test]
fn tools_only_change_without_a_bump_breaks() {
    let (code, text, json) = diff("tools_not_bumped");
    assert_eq!(code, 1, "{text}");
    assert!(changes(&json).iter().all(|c| c.3 == "break"), "{text}");
    assert!(
        text.contains("interface version not bumped (XEN_DOMCTL_INTERFACE_VERSION still 0xa)"),
        "{text}"
    );
    assert!(json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["scope"] == "tools" && c["versioning"] == "not_bumped"));
}

#[test]
fn header_that_stops_compiling_is_a_failed_rule_not_removals() {
    let (code, text, json) = diff("header_breaks");
    assert_eq!(code, 1, "{text}");
    assert!(changes(&json).is_empty(), "{text}");
    let failed = failed_rules(&json);
    assert_eq!(failed.len(), 4, "{failed:?}");
    assert!(
        failed
            .iter()
            .all(|f| f.contains("elfnote.h") && f.contains("2 items were not compared")),
        "{failed:?}"
    );
}
