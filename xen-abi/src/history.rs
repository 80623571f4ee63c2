// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `xen-abi history DIR`: the diff of every consecutive pair of Xen trees in a folder,
//! summed up as one table row per pair and compared with an expected table.
//!
//! Each tree is compiled once per view and ABI and reused for both pairs it is part of;
//! each pair is judged by exactly the code `xen-abi diff` runs ([`compare::compare`]). The
//! two ABIs are independent, so each runs in a worker process of its own
//! (`xen-abi history DIR --abi ABI`, one JSON report per pair and line).

use crate::abi::Abi;
use crate::compare::{self, Compiled};
use crate::diff::{Change, ItemKind, Verdict, Versioning};
use crate::error::Error;
use crate::extract::Extractor;
use crate::report::Report;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The counted columns of a row, in table order.
pub const COLUMNS: [&str; 7] = [
    "breaks",
    "removals",
    "bumps",
    "bumped",
    "not bumped",
    "compatible",
    "rules failed",
];

/// One pair summed up. Counts are of items (a type, typedef, enum or constant), both ABIs
/// together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `OLD -> NEW`, the folder names without `xen-`.
    pub pair: String,
    /// The counts, in [`COLUMNS`] order.
    pub counts: [usize; 7],
    /// The one-line explanation (from the expected table).
    pub why: String,
}

/// Sums up a pair's report:
/// - breaks: items with a BREAK on some ABI;
/// - removals: items that are gone on some ABI, whatever the verdict;
/// - bumps: interface versions raised;
/// - bumped / not bumped: tools-only items changed incompatibly, with / without a bump
///   of their interface version;
/// - compatible: the other changed items (all their changes compatible);
/// - rules failed: `check` rules (and header rules) that do not hold on the new tree.
pub fn summarize(pair: &str, report: &Report) -> Row {
    let mut items: BTreeMap<(ItemKind, &str), Vec<&Change>> = BTreeMap::new();
    for c in &report.changes {
        items.entry((c.kind, c.item.as_str())).or_default().push(c);
    }
    let mut counts = [0usize; 7];
    for changes in items.values() {
        let any = |f: &dyn Fn(&Change) -> bool| changes.iter().any(|c| f(c));
        let broken = any(&|c| c.verdict == Verdict::Break);
        let bump = any(&|c| c.versioning == Some(Versioning::Bump));
        let bumped = any(&|c| c.versioning == Some(Versioning::Bumped));
        if broken {
            counts[0] += 1;
        }
        if any(&|c| c.is_removal()) {
            counts[1] += 1;
        }
        if bump && !broken {
            counts[2] += 1;
        }
        if bumped && !broken {
            counts[3] += 1;
        }
        if any(&|c| c.versioning == Some(Versioning::NotBumped)) {
            counts[4] += 1;
        }
        if !broken && !bump && !bumped {
            counts[5] += 1;
        }
    }
    counts[6] = report.checks.iter().filter(|c| !c.passed).count();
    Row {
        pair: pair.to_string(),
        counts,
        why: String::new(),
    }
}

/// The markdown table of rows.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from("| pair |");
    for c in COLUMNS {
        let _ = write!(s, " {c} |");
    }
    s.push_str(" why |\n|---|");
    for _ in COLUMNS {
        s.push_str("---:|");
    }
    s.push_str("---|\n");
    for r in rows {
        let _ = write!(s, "| {} |", r.pair);
        for n in r.counts {
            let _ = write!(s, " {n} |");
        }
        let _ = writeln!(s, " {} |", r.why);
    }
    s
}

/// Parses an expected table: the markdown rows whose first cell is a pair (`A -> B`).
pub fn parse_table(text: &str) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if !line.starts_with('|') {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if !cells.first().is_some_and(|c| c.contains("->")) {
            continue;
        }
        if cells.len() != COLUMNS.len() + 2 {
            return Err(format!(
                "line {}: {} cells, expected {} (pair, {}, why)",
                n + 1,
                cells.len(),
                COLUMNS.len() + 2,
                COLUMNS.join(", ")
            ));
        }
        let mut counts = [0usize; 7];
        for (i, cell) in cells[1..=COLUMNS.len()].iter().enumerate() {
            counts[i] = cell
                .parse()
                .map_err(|_| format!("line {}: '{cell}' is not a count", n + 1))?;
        }
        rows.push(Row {
            pair: cells[0].to_string(),
            counts,
            why: cells[COLUMNS.len() + 1].to_string(),
        });
    }
    if rows.is_empty() {
        return Err("no table rows (| A -> B | counts... | why |)".into());
    }
    Ok(rows)
}

/// The trees of a folder in release order: `xen-4.6.0`, ..., `xen-4.22.0`, then names
/// that are not versions (e.g. `xen-staging-…`) in name order.
pub fn trees(dir: &Path) -> Result<Vec<(String, PathBuf)>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if path.join("xen/include/public/xen.h").is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let short = name.strip_prefix("xen-").unwrap_or(&name).to_string();
            out.push((short, path));
        }
    }
    let key = |name: &str| -> (u8, Vec<u64>, String) {
        let nums: Option<Vec<u64>> = name.split('.').map(|p| p.parse().ok()).collect();
        match nums {
            Some(v) => (0, v, String::new()),
            None => (1, Vec::new(), name.to_string()),
        }
    };
    out.sort_by_key(|(name, _)| key(name));
    if out.len() < 2 {
        return Err(Error::Usage(format!(
            "{} holds {} Xen tree(s) (folders with xen/include/public/xen.h); history needs \
             at least two",
            dir.display(),
            out.len()
        )));
    }
    Ok(out)
}

/// What a history run found.
#[derive(Debug)]
pub struct Outcome {
    /// The full text: per pair its breaks and removals, then the table.
    pub text: String,
    /// The rows.
    pub rows: Vec<Row>,
    /// Differences from the expected table (empty when it matches or none was given).
    pub mismatches: Vec<String>,
    /// Seconds the run took.
    pub seconds: f64,
}

/// One pair's report, as a worker prints it (one JSON object per line).
#[derive(Debug, Serialize, Deserialize)]
pub struct PairReport {
    /// `OLD -> NEW`.
    pub pair: String,
    /// The report of that pair for the worker's ABI.
    pub report: Report,
}

/// The per-pair reports of the trees in `dir`, for the extractor's ABIs, in order.
pub fn pair_reports(dir: &Path, extractor: &Extractor) -> Result<Vec<PairReport>, Error> {
    let trees = trees(dir)?;
    let mut out = Vec::new();
    let mut previous: Option<(String, Compiled)> = None;
    for (name, path) in &trees {
        let compiled = Compiled::new(extractor, path, "TREE")?;
        if let Some((old_name, old)) = &previous {
            out.push(PairReport {
                pair: format!("{old_name} -> {name}"),
                report: compare::compare(extractor, old, &compiled)?,
            });
        }
        previous = Some((name.clone(), compiled));
    }
    Ok(out)
}

/// The worker of one ABI: prints each pair's report as one JSON line.
pub fn run_worker(dir: &Path, abi: Abi) -> Result<(), Error> {
    let extractor = Extractor::for_abis(&[abi])?;
    for r in pair_reports(dir, &extractor)? {
        let line = serde_json::to_string(&r).map_err(|e| Error::Parse {
            path: dir.to_path_buf(),
            abi,
            reason: format!("cannot encode the report of {}: {e}", r.pair),
        })?;
        println!("{line}");
    }
    Ok(())
}

/// Runs one worker process per ABI (this program with `history DIR --abi ABI`), so the
/// two ABIs are compiled in parallel, and merges their reports pair by pair.
fn parallel_reports(dir: &Path) -> Result<Vec<PairReport>, Error> {
    let exe = std::env::current_exe().map_err(|source| Error::Io {
        path: PathBuf::from("/proc/self/exe"),
        source,
    })?;
    let children: Vec<(Abi, std::process::Child)> = Abi::ALL
        .iter()
        .map(|&abi| {
            Command::new(&exe)
                .arg("history")
                .arg(dir)
                .args(["--abi", abi.name()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map(|c| (abi, c))
                .map_err(|source| Error::Io {
                    path: exe.clone(),
                    source,
                })
        })
        .collect::<Result<_, _>>()?;
    let mut merged: Vec<PairReport> = Vec::new();
    for (abi, child) in children {
        let out = child.wait_with_output().map_err(|source| Error::Io {
            path: exe.clone(),
            source,
        })?;
        if !out.status.success() {
            return Err(Error::Parse {
                path: dir.to_path_buf(),
                abi,
                reason: format!(
                    "the {abi} worker failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let r: PairReport = serde_json::from_str(line).map_err(|e| Error::Parse {
                path: dir.to_path_buf(),
                abi,
                reason: format!("the {abi} worker printed an unreadable report: {e}"),
            })?;
            match merged.iter_mut().find(|m| m.pair == r.pair) {
                Some(m) => {
                    m.report.changes.extend(r.report.changes);
                    m.report.checks.extend(r.report.checks);
                    m.report.headers.extend(r.report.headers);
                }
                None => merged.push(r),
            }
        }
    }
    Ok(merged)
}

/// Diffs every consecutive pair of the trees in `dir` (both ABIs in parallel worker
/// processes) and compares with `expected`.
pub fn run(dir: &Path, expected: Option<&Path>) -> Result<Outcome, Error> {
    let start = Instant::now();
    let expected_rows = match expected {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
            Some(parse_table(&text).map_err(|reason| Error::Reference {
                path: path.to_path_buf(),
                reason,
            })?)
        }
        None => None,
    };
    let trees = trees(dir)?;
    let mut text = String::new();
    let mut rows = Vec::new();
    for PairReport { pair, report } in parallel_reports(dir)? {
        details(&mut text, &pair, &report);
        let mut row = summarize(&pair, &report);
        if let Some(e) = expected_rows
            .as_ref()
            .and_then(|rows| rows.iter().find(|r| r.pair == pair))
        {
            row.why = e.why.clone();
        }
        rows.push(row);
    }
    let mut mismatches = Vec::new();
    if let Some(expected) = &expected_rows {
        for r in &rows {
            match expected.iter().find(|e| e.pair == r.pair) {
                None => mismatches.push(format!("{}: not in the expected table", r.pair)),
                Some(e) if e.counts != r.counts => {
                    let diffs: Vec<String> = COLUMNS
                        .iter()
                        .zip(e.counts.iter().zip(r.counts.iter()))
                        .filter(|(_, (a, b))| a != b)
                        .map(|(c, (a, b))| format!("{c} expected {a}, got {b}"))
                        .collect();
                    mismatches.push(format!("{}: {}", r.pair, diffs.join(", ")));
                }
                Some(_) => {}
            }
        }
        for e in expected {
            if !rows.iter().any(|r| r.pair == e.pair) {
                mismatches.push(format!("{}: expected, but not in the corpus", e.pair));
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let _ = writeln!(text, "{}", table(&rows));
    let _ = writeln!(
        text,
        "{} pairs ({} trees, x86_32 and x86_64) in {seconds:.1} s",
        rows.len(),
        trees.len()
    );
    match (&expected_rows, mismatches.is_empty()) {
        (None, _) => {}
        (Some(_), true) => {
            let _ = writeln!(text, "history: the table matches the expected one");
        }
        (Some(_), false) => {
            let _ = writeln!(
                text,
                "history: the table differs from the expected one:\n  {}\n\
                 check each difference against the headers, then fix the rules or the \
                 expected table",
                mismatches.join("\n  ")
            );
        }
    }
    Ok(Outcome {
        text,
        rows,
        mismatches,
        seconds,
    })
}

/// Per pair: every breaking item, removal and bump, one line each.
fn details(text: &mut String, pair: &str, report: &Report) {
    let _ = writeln!(text, "## {pair}");
    let mut lines: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for c in &report.changes {
        let tag = if c.verdict == Verdict::Break {
            "BREAK"
        } else if c.versioning == Some(Versioning::Bump) {
            "bump"
        } else if c.is_removal() {
            "removed"
        } else {
            continue;
        };
        let member = c
            .member
            .as_deref()
            .map(|m| format!(".{m}"))
            .unwrap_or_default();
        let old = c
            .old
            .as_ref()
            .and_then(|o| o.value.clone().or(o.ty.clone()))
            .unwrap_or_default();
        let line = format!(
            "{tag:8} {}{member} [{}, {:?}] {} (was {old})",
            c.item, c.header, c.scope, c.reason
        );
        lines.entry(line).or_default().push(c.abi.name());
    }
    for (line, abis) in lines {
        let _ = writeln!(text, "  {line} on {}", abis.join(", "));
    }
    for c in report.checks.iter().filter(|c| !c.passed) {
        let _ = writeln!(text, "  RULE     {} {}: {}", c.abi, c.rule, c.detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_table_round_trips() {
        let rows = vec![Row {
            pair: "4.6.0 -> 4.7.0".into(),
            counts: [1, 2, 3, 4, 5, 6, 0],
            why: "because".into(),
        }];
        assert_eq!(parse_table(&table(&rows)).unwrap(), rows);
    }

    #[test]
    fn malformed_rows_are_refused() {
        assert!(parse_table("no table here").is_err());
        let err = parse_table("| 4.6.0 -> 4.7.0 | 1 | x | 0 | 0 | 0 | 0 | 0 | why |").unwrap_err();
        assert!(err.contains("'x' is not a count"), "{err}");
        assert!(parse_table("| 4.6.0 -> 4.7.0 | 1 | why |").is_err());
    }

    #[test]
    fn trees_sort_by_release_then_name() {
        let dir = std::env::temp_dir().join(format!("xen-abi-trees-{}", std::process::id()));
        for name in [
            "xen-4.10.0",
            "xen-4.9.0",
            "xen-staging-abc",
            "xen-4.22.0",
            "notes",
        ] {
            let public = dir.join(name).join("xen/include/public");
            std::fs::create_dir_all(&public).unwrap();
            if name != "notes" {
                std::fs::write(public.join("xen.h"), "").unwrap();
            }
        }
        let names: Vec<String> = trees(&dir).unwrap().into_iter().map(|(n, _)| n).collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names, ["4.9.0", "4.10.0", "4.22.0", "staging-abc"]);
    }
}
