// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Rendering a run as readable tables or as JSON.

use crate::abi::Abi;
use crate::diff::{Change, ItemKind, Slot, Verdict};
use crate::invariants::Check;
use crate::model::{SkippedHeader, Snapshot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Everything a run found: the classified changes and the checked rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// `diff` or `check`.
    pub command: String,
    /// The trees compared (one for `check`).
    pub trees: Vec<String>,
    /// Headers compiled and skipped, per tree and ABI.
    pub headers: Vec<HeaderSummary>,
    /// The classified differences (empty for `check`).
    pub changes: Vec<Change>,
    /// Rules checked (invariants, `reference.size`, expectations).
    pub checks: Vec<Check>,
}

/// How many headers of one tree compiled for one ABI, and which did not.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeaderSummary {
    /// The tree.
    pub tree: String,
    /// The ABI.
    pub abi: Abi,
    /// Number of headers compiled.
    pub compiled: usize,
    /// Headers left out, with the compiler's first error.
    pub skipped: Vec<SkippedHeader>,
}

impl HeaderSummary {
    /// Summaries of every ABI of one tree.
    pub fn of(tree: &str, snapshots: &BTreeMap<Abi, Snapshot>) -> Vec<Self> {
        snapshots
            .iter()
            .map(|(abi, s)| HeaderSummary {
                tree: tree.to_string(),
                abi: *abi,
                compiled: s.headers.len(),
                skipped: s.skipped.clone(),
            })
            .collect()
    }
}

impl Report {
    /// Number of passed items: compatible changes and rules that hold.
    pub fn passed(&self) -> usize {
        self.changes
            .iter()
            .filter(|c| c.verdict == Verdict::Compatible)
            .count()
            + self.checks.iter().filter(|c| c.passed).count()
    }

    /// Number of failed items: breaking changes and rules that do not hold.
    pub fn failed(&self) -> usize {
        self.changes
            .iter()
            .filter(|c| c.verdict == Verdict::Break)
            .count()
            + self.checks.iter().filter(|c| !c.passed).count()
    }

    /// The overall verdict: a break if anything failed.
    pub fn verdict(&self) -> Verdict {
        if self.failed() == 0 {
            Verdict::Compatible
        } else {
            Verdict::Break
        }
    }

    /// The last line of every report.
    pub fn summary_line(&self) -> String {
        format!("ABI: {} passed, {} failed", self.passed(), self.failed())
    }

    /// The report as JSON (the summary line is included as `summary`).
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            report: &'a Report,
            verdict: Verdict,
            passed: usize,
            failed: usize,
            summary: String,
        }
        let out = Out {
            report: self,
            verdict: self.verdict(),
            passed: self.passed(),
            failed: self.failed(),
            summary: self.summary_line(),
        };
        serde_json::to_string_pretty(&out).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The report as text: header notes, one table per changed item, the rules, and the
    /// summary line last.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "xen-abi {}: {}", self.command, self.trees.join(" -> "));
        for h in &self.headers {
            let skipped: Vec<&str> = h.skipped.iter().map(|k| k.header.as_str()).collect();
            let _ = write!(s, "  {} {}: {} headers compiled", h.tree, h.abi, h.compiled);
            if skipped.is_empty() {
                let _ = writeln!(s);
            } else {
                let _ = writeln!(
                    s,
                    "; skipped (they do not compile on their own for this ABI): {}",
                    skipped.join(", ")
                );
            }
        }
        let _ = writeln!(s);
        let mut groups: BTreeMap<(ItemKind, &str), Vec<&Change>> = BTreeMap::new();
        for c in &self.changes {
            groups.entry((c.kind, c.item.as_str())).or_default().push(c);
        }
        if self.command == "diff" {
            if groups.is_empty() {
                let _ = writeln!(s, "no ABI difference\n");
            }
            for ((kind, item), changes) in &groups {
                let title = match kind {
                    ItemKind::Constant => format!("constant {item}"),
                    _ => item.to_string(),
                };
                let _ = writeln!(s, "{title}");
                s.push_str(&change_table(*kind, changes));
                let _ = writeln!(s, "  => {}\n", item_verdict(changes));
            }
        }
        if !self.checks.is_empty() {
            let _ = writeln!(s, "rules");
            let mut rows = vec![row(&["ABI", "rule", "result", "detail"])];
            for c in &self.checks {
                rows.push(vec![
                    c.abi.to_string(),
                    c.rule.clone(),
                    if c.passed { "ok" } else { "FAILED" }.to_string(),
                    c.detail.clone(),
                ]);
            }
            s.push_str(&table(&rows));
            let _ = writeln!(s);
        }
        let breaks = self
            .changes
            .iter()
            .filter(|c| c.verdict == Verdict::Break)
            .count();
        if self.command == "diff" {
            let _ = writeln!(
                s,
                "changes: {} compatible, {} breaking, over {} item(s)",
                self.changes.len() - breaks,
                breaks,
                groups.len()
            );
        }
        let _ = writeln!(s, "{}", self.summary_line());
        s
    }
}

/// One line for an item: compatible, or on which ABIs it breaks.
fn item_verdict(changes: &[&Change]) -> String {
    let mut abis: Vec<Abi> = changes.iter().map(|c| c.abi).collect();
    abis.dedup();
    let mut broken: Vec<Abi> = changes
        .iter()
        .filter(|c| c.verdict == Verdict::Break)
        .map(|c| c.abi)
        .collect();
    broken.dedup();
    let names = |v: &[Abi]| v.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ");
    if broken.is_empty() {
        format!("compatible on {}", names(&abis))
    } else if broken.len() < Abi::ALL.len() {
        format!("BREAK on {} only", names(&broken))
    } else {
        format!("BREAK on {}", names(&broken))
    }
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

fn or_dash(v: Option<&String>) -> String {
    v.cloned().unwrap_or_else(|| "-".to_string())
}

fn change_table(kind: ItemKind, changes: &[&Change]) -> String {
    let empty = Slot::default();
    let mut rows = if kind == ItemKind::Constant {
        vec![row(&["ABI", "old value", "new value", "verdict", "why"])]
    } else {
        vec![row(&[
            "ABI", "member", "old off", "old size", "new off", "new size", "type", "verdict", "why",
        ])]
    };
    for c in changes {
        let old = c.old.as_ref().unwrap_or(&empty);
        let new = c.new.as_ref().unwrap_or(&empty);
        if kind == ItemKind::Constant {
            rows.push(vec![
                c.abi.to_string(),
                or_dash(old.value.as_ref()),
                or_dash(new.value.as_ref()),
                c.verdict.label().to_string(),
                c.reason.clone(),
            ]);
            continue;
        }
        let ty = match (&old.ty, &new.ty) {
            (Some(o), Some(n)) if o != n => format!("{o} -> {n}"),
            (Some(t), _) | (None, Some(t)) => t.clone(),
            (None, None) => String::new(),
        };
        rows.push(vec![
            c.abi.to_string(),
            or_dash(c.member.as_ref()),
            or_dash(old.offset.as_ref()),
            or_dash(old.size.as_ref()),
            or_dash(new.offset.as_ref()),
            or_dash(new.size.as_ref()),
            ty,
            c.verdict.label().to_string(),
            c.reason.clone(),
        ]);
    }
    table(&rows)
}

/// Left-aligned columns, two spaces apart, indented by two.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map(|c| c.chars().count()).unwrap_or(0))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    for r in rows {
        let mut line = String::from(" ");
        for (i, cell) in r.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            line.push(' ');
            line.push_str(cell);
            if i + 1 < r.len() {
                line.push_str(&" ".repeat(pad + 1));
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}
