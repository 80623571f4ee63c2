// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The command line: argument parsing and the two commands.

use crate::compare::{self, Compiled};
use crate::diff::{self, Verdict};
use crate::error::Error;
use crate::extract::{Extractor, View};
use crate::invariants::{self, Check};
use crate::report::{HeaderSummary, Report};
use crate::tree::PublicHeaders;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Usage text shown on a command-line error.
pub const USAGE: &str = "\
usage: xen-abi diff OLD NEW [--json] [--expect ITEM[=VALUE]]...
       xen-abi check TREE [--json] [--no-reference-size]
       xen-abi history DIR [--expected TABLE]
  OLD, NEW, TREE: a Xen source tree, or its xen/include/public folder
  DIR: a folder of Xen trees (xen-4.6.0, ..., xen-staging-...), diffed pair by pair
  --json               print the report as JSON (the summary line goes to stderr)
  --expect ITEM[=V]    the diff must consist of exactly these items, each changed
                       compatibly on every ABI; ITEM as the report names it (a constant,
                       'struct NAME', 'typedef NAME', 'enum NAME'); =V is a constant's
                       new value or a type's new size (decimal or 0x hex); repeatable
  --no-reference-size  check: skip tools/include/xen-foreign/reference.size
  --expected TABLE     history: the markdown table the per-pair counts must match
  --abi ABI            history: be the worker of one ABI (x86_32, x86_64) and print
                       one JSON report per pair and line; without it history runs
                       one such worker per ABI in parallel
exit status: 0 compatible (history: table matches), 1 break (or unmet expectation,
or a differing table), 2 could not run";

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Compare two trees.
    Diff {
        /// The old tree.
        old: PathBuf,
        /// The new tree.
        new: PathBuf,
        /// Items the diff must consist of: name and optional new value.
        expect: Vec<(String, Option<String>)>,
    },
    /// Diff every consecutive pair of trees in a folder.
    History {
        /// The folder of trees.
        dir: PathBuf,
        /// The expected table.
        expected: Option<PathBuf>,
        /// Run as the worker of this ABI only (JSON lines on stdout).
        abi: Option<crate::Abi>,
    },
    /// Check one tree alone.
    Check {
        /// The tree.
        tree: PathBuf,
        /// Whether to compare with `reference.size`.
        reference_size: bool,
    },
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The command.
    pub command: Command,
    /// Print JSON instead of tables.
    pub json: bool,
}

/// Parses the arguments (without the program name).
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Options, Error> {
    let mut positional = Vec::new();
    let mut json = false;
    let mut reference_size = true;
    let mut expect = Vec::new();
    let mut expected = None;
    let mut abi = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--no-reference-size" => reference_size = false,
            "--expect" => {
                let spec = args
                    .next()
                    .ok_or_else(|| Error::Usage("--expect needs NAME or NAME=VALUE".into()))?;
                expect.push(match spec.split_once('=') {
                    Some((n, v)) => (n.trim().to_string(), Some(v.trim().to_string())),
                    None => (spec, None),
                });
            }
            "--expected" => {
                expected = Some(PathBuf::from(args.next().ok_or_else(|| {
                    Error::Usage("--expected needs the path of a table".into())
                })?));
            }
            "--abi" => {
                let name = args.next().unwrap_or_default();
                abi = Some(
                    crate::Abi::ALL
                        .into_iter()
                        .find(|a| a.name() == name)
                        .ok_or_else(|| {
                            Error::Usage(format!("--abi takes x86_32 or x86_64, not '{name}'"))
                        })?,
                );
            }
            "-h" | "--help" => return Err(Error::Usage(String::new())),
            a if a.starts_with('-') => return Err(Error::Usage(format!("unknown option {a}"))),
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    let command = match positional.next().as_deref() {
        Some("diff") => {
            let (Some(old), Some(new), None) =
                (positional.next(), positional.next(), positional.next())
            else {
                return Err(Error::Usage("diff takes exactly two trees: OLD NEW".into()));
            };
            Command::Diff {
                old: old.into(),
                new: new.into(),
                expect,
            }
        }
        Some("check") => {
            let (Some(tree), None) = (positional.next(), positional.next()) else {
                return Err(Error::Usage("check takes exactly one tree: TREE".into()));
            };
            if !expect.is_empty() {
                return Err(Error::Usage("--expect applies to diff only".into()));
            }
            Command::Check {
                tree: tree.into(),
                reference_size,
            }
        }
        Some("history") => {
            let (Some(dir), None) = (positional.next(), positional.next()) else {
                return Err(Error::Usage("history takes exactly one folder: DIR".into()));
            };
            if !expect.is_empty() || json {
                return Err(Error::Usage("history takes only --expected".into()));
            }
            Command::History {
                dir: dir.into(),
                expected: expected.take(),
                abi: abi.take(),
            }
        }
        Some(other) => return Err(Error::Usage(format!("unknown command {other}"))),
        None => return Err(Error::Usage("no command given".into())),
    };
    if expected.is_some() || abi.is_some() {
        return Err(Error::Usage(
            "--expected and --abi apply to history only".into(),
        ));
    }
    Ok(Options { command, json })
}

/// Runs a command and returns its report (`history` is run by [`crate::history::run`]).
pub fn run(command: &Command) -> Result<Report, Error> {
    match command {
        Command::History { .. } => Err(Error::Usage(
            "history has no report of its own; run it with history::run".into(),
        )),
        Command::Diff { old, new, expect } => run_diff(old, new, expect),
        Command::Check {
            tree,
            reference_size,
        } => run_check(tree, *reference_size),
    }
}

/// The exit status for a finished report: 0 compatible, 1 break.
pub fn exit_status(report: &Report) -> i32 {
    match report.verdict() {
        Verdict::Compatible => 0,
        Verdict::Break => 1,
    }
}

fn run_diff(
    old: &std::path::Path,
    new: &std::path::Path,
    expect: &[(String, Option<String>)],
) -> Result<Report, Error> {
    // Both arguments are located before anything is compiled, so a wrong path fails fast.
    PublicHeaders::locate(old, "OLD")?;
    PublicHeaders::locate(new, "NEW")?;
    let extractor = Extractor::new()?;
    let old = Compiled::new(&extractor, old, "OLD")?;
    let new = Compiled::new(&extractor, new, "NEW")?;
    let mut report = compare::compare(&extractor, &old, &new)?;
    if !expect.is_empty() {
        let checks = expectations(expect, &report.changes);
        report.checks.extend(checks);
    }
    Ok(report)
}

/// The new value an expectation compares with: a constant's value, a type's size.
fn new_value(c: &diff::Change) -> Option<String> {
    let slot = c.new.as_ref()?;
    match c.kind {
        diff::ItemKind::Constant => slot.value.clone(),
        _ if c.member.is_none() => slot.size.clone(),
        _ => None,
    }
}

/// Parses an integer written in decimal or `0x` hexadecimal.
fn parse_int(s: &str) -> Option<i128> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => i128::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Checks that the changes are exactly the expected items, each compatible on every ABI.
/// `NAME=V` also fixes the new value: a constant's value, or the size of a new type.
fn expectations(expect: &[(String, Option<String>)], changes: &[diff::Change]) -> Vec<Check> {
    let mut out = Vec::new();
    for abi in crate::Abi::ALL {
        let on_abi: Vec<&diff::Change> = changes.iter().filter(|c| c.abi == abi).collect();
        for (name, value) in expect {
            let found: Vec<&&diff::Change> = on_abi.iter().filter(|c| &c.item == name).collect();
            let got = found.iter().find_map(|c| new_value(c));
            let compatible = found.iter().all(|c| c.verdict == Verdict::Compatible);
            let value_ok = match (value, &got) {
                (None, _) => true,
                (Some(v), Some(g)) => parse_int(v).is_some() && parse_int(v) == parse_int(g),
                (Some(_), None) => false,
            };
            let passed = !found.is_empty() && compatible && value_ok;
            let spec = match value {
                Some(v) => format!("{name} = {v}"),
                None => name.clone(),
            };
            let detail = if found.is_empty() {
                "expected change missing".to_string()
            } else if !compatible {
                "changed, but not compatibly".to_string()
            } else if !value_ok {
                format!("new value is {}", got.unwrap_or_else(|| "none".into()))
            } else {
                "present, compatible".to_string()
            };
            out.push(Check {
                abi,
                rule: format!("expected change {spec}"),
                passed,
                detail,
            });
        }
        let mut unexpected: Vec<&str> = on_abi
            .iter()
            .map(|c| c.item.as_str())
            .filter(|item| !expect.iter().any(|(n, _)| n == item))
            .collect();
        unexpected.dedup();
        out.push(Check {
            abi,
            rule: "no unexpected change".into(),
            passed: unexpected.is_empty(),
            detail: if unexpected.is_empty() {
                "only the expected items changed".into()
            } else {
                format!("unexpected: {}", unexpected.join(", "))
            },
        });
    }
    out
}

fn run_check(tree: &std::path::Path, reference_size: bool) -> Result<Report, Error> {
    let headers = PublicHeaders::locate(tree, "TREE")?;
    if reference_size {
        // Fail on a missing reference.size before compiling anything.
        compare::reference_checks(&headers, &BTreeMap::new(), true)?;
    }
    let extractor = Extractor::new()?;
    let snapshots = extractor.extract(&headers, View::Tools)?;
    let mut checks = invariants::check_all(&snapshots);
    if reference_size {
        checks.extend(compare::reference_checks(&headers, &snapshots, true)?);
    }
    let name = tree.display().to_string();
    Ok(Report {
        command: "check".into(),
        trees: vec![name.clone()],
        headers: HeaderSummary::of(&name, &snapshots),
        changes: Vec::new(),
        checks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_diff_with_expectations() {
        let o = parse_args(args(&["diff", "a", "b", "--json", "--expect", "X=21"])).unwrap();
        assert!(o.json);
        assert_eq!(
            o.command,
            Command::Diff {
                old: "a".into(),
                new: "b".into(),
                expect: vec![("X".into(), Some("21".into()))],
            }
        );
    }

    #[test]
    fn parses_history_and_its_worker() {
        let o = parse_args(args(&["history", "d", "--expected", "t.md"])).unwrap();
        assert_eq!(
            o.command,
            Command::History {
                dir: "d".into(),
                expected: Some("t.md".into()),
                abi: None,
            }
        );
        let o = parse_args(args(&["history", "d", "--abi", "x86_32"])).unwrap();
        assert!(matches!(
            o.command,
            Command::History {
                abi: Some(crate::Abi::X86_32),
                ..
            }
        ));
        assert!(parse_args(args(&["history", "d", "--abi", "arm64"])).is_err());
        assert!(parse_args(args(&["diff", "a", "b", "--expected", "t.md"])).is_err());
        assert!(parse_args(args(&["check", "t", "--abi", "x86_64"])).is_err());
    }

    #[test]
    fn rejects_wrong_arity_and_unknown_options() {
        assert!(parse_args(args(&["diff", "a"])).is_err());
        assert!(parse_args(args(&["check"])).is_err());
        assert!(parse_args(args(&["check", "t", "--frobnicate"])).is_err());
        assert!(parse_args(args(&["check", "t", "--expect", "X"])).is_err());
        assert!(parse_args(args(&[])).is_err());
    }
}
