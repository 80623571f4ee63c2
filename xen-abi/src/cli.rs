// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The command line: argument parsing and the two commands.

use crate::diff::{self, Verdict};
use crate::error::Error;
use crate::extract::Extractor;
use crate::invariants::{self, Check};
use crate::reference;
use crate::report::{HeaderSummary, Report};
use crate::tree::PublicHeaders;
use std::path::PathBuf;

/// Usage text shown on a command-line error.
pub const USAGE: &str = "\
usage: xen-abi diff OLD NEW [--json] [--expect NAME[=VALUE]]...
       xen-abi check TREE [--json] [--no-reference-size]
  OLD, NEW, TREE: a Xen source tree, or its xen/include/public folder
  --json               print the report as JSON (the summary line goes to stderr)
  --expect NAME[=V]    the diff must consist of exactly these items, each changed
                       compatibly on every ABI (and, with =V, to value V)
  --no-reference-size  check: skip tools/include/xen-foreign/reference.size
exit status: 0 compatible, 1 break (or unmet expectation), 2 could not run";

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
        Some(other) => return Err(Error::Usage(format!("unknown command {other}"))),
        None => return Err(Error::Usage("no command given".into())),
    };
    Ok(Options { command, json })
}

/// Runs a command and returns its report.
pub fn run(command: &Command) -> Result<Report, Error> {
    match command {
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
    let old_tree = PublicHeaders::locate(old, "OLD")?;
    let new_tree = PublicHeaders::locate(new, "NEW")?;
    let extractor = Extractor::new()?;
    let old_snap = extractor.extract(&old_tree)?;
    let new_snap = extractor.extract(&new_tree)?;
    let changes = diff::diff(&old_snap, &new_snap);
    let mut checks = invariants::check_all(&new_snap);
    if !expect.is_empty() {
        checks.extend(expectations(expect, &changes));
    }
    let (o, n) = (old.display().to_string(), new.display().to_string());
    let mut headers = HeaderSummary::of(&o, &old_snap);
    headers.extend(HeaderSummary::of(&n, &new_snap));
    Ok(Report {
        command: "diff".into(),
        trees: vec![o, n],
        headers,
        changes,
        checks,
    })
}

/// Checks that the changes are exactly the expected items, each compatible on every ABI.
fn expectations(expect: &[(String, Option<String>)], changes: &[diff::Change]) -> Vec<Check> {
    let mut out = Vec::new();
    for abi in crate::Abi::ALL {
        let on_abi: Vec<&diff::Change> = changes.iter().filter(|c| c.abi == abi).collect();
        for (name, value) in expect {
            let found: Vec<&&diff::Change> = on_abi.iter().filter(|c| &c.item == name).collect();
            let new_value = found
                .iter()
                .find_map(|c| c.new.as_ref().and_then(|s| s.value.clone()));
            let compatible = found.iter().all(|c| c.verdict == Verdict::Compatible);
            let value_ok = value.is_none() || value.as_ref() == new_value.as_ref();
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
                format!(
                    "new value is {}",
                    new_value.unwrap_or_else(|| "none".into())
                )
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
    let rows = if reference_size {
        let Some(path) = headers.reference_size() else {
            return Err(Error::Reference {
                path: tree.to_path_buf(),
                reason: "is a public headers folder, so it has no \
                         tools/include/xen-foreign/reference.size; pass the top of the Xen \
                         tree, or --no-reference-size"
                    .into(),
            });
        };
        let text = std::fs::read_to_string(&path).map_err(|e| Error::Reference {
            path: path.clone(),
            reason: format!(
                "cannot read it ({e}); pass --no-reference-size to check the headers alone"
            ),
        })?;
        Some(reference::parse(&text).map_err(|reason| Error::Reference { path, reason })?)
    } else {
        None
    };
    let extractor = Extractor::new()?;
    let snapshots = extractor.extract(&headers)?;
    let mut checks = invariants::check_all(&snapshots);
    if let Some(rows) = rows {
        checks.extend(reference::compare(&rows, &snapshots));
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
    fn rejects_wrong_arity_and_unknown_options() {
        assert!(parse_args(args(&["diff", "a"])).is_err());
        assert!(parse_args(args(&["check"])).is_err());
        assert!(parse_args(args(&["check", "t", "--frobnicate"])).is_err());
        assert!(parse_args(args(&["check", "t", "--expect", "X"])).is_err());
        assert!(parse_args(args(&[])).is_err());
    }
}
