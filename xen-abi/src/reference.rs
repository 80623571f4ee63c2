// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `tools/include/xen-foreign/reference.size`: the sizes Xen's tools build expects.
//!
//! The file is a table: a header line naming the columns (`structs | arm32 arm64 x86_32
//! x86_64`), then one line per struct with its size per ABI, `-` where it does not exist.

use crate::abi::Abi;
use crate::invariants::Check;
use crate::model::Snapshot;
use std::collections::BTreeMap;

/// One row of the table: a struct and its expected size per ABI column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceRow {
    /// The struct name, without `struct`.
    pub name: String,
    /// Expected size per column name; `None` for `-`.
    pub sizes: BTreeMap<String, Option<u64>>,
}

/// Parses the file's text. Returns a description of the first malformed line on error.
pub fn parse(text: &str) -> Result<Vec<ReferenceRow>, String> {
    let mut columns: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((name, rest)) = line.split_once('|') else {
            return Err(format!("line {}: no '|' column separator", n + 1));
        };
        let cells: Vec<&str> = rest.split_whitespace().collect();
        match &columns {
            None => columns = Some(cells.iter().map(|c| c.to_string()).collect()),
            Some(cols) => {
                if cells.len() != cols.len() {
                    return Err(format!(
                        "line {}: {} values for {} columns",
                        n + 1,
                        cells.len(),
                        cols.len()
                    ));
                }
                let mut sizes = BTreeMap::new();
                for (col, cell) in cols.iter().zip(cells) {
                    let size = if cell == "-" {
                        None
                    } else {
                        Some(
                            cell.parse::<u64>()
                                .map_err(|_| format!("line {}: '{cell}' is not a size", n + 1))?,
                        )
                    };
                    sizes.insert(col.clone(), size);
                }
                rows.push(ReferenceRow {
                    name: name.trim().to_string(),
                    sizes,
                });
            }
        }
    }
    if columns.is_none() {
        return Err("empty file: no header line".into());
    }
    Ok(rows)
}

/// Compares the x86 columns of the table with the computed sizes.
pub fn compare(rows: &[ReferenceRow], snapshots: &BTreeMap<Abi, Snapshot>) -> Vec<Check> {
    let mut out = Vec::new();
    for (abi, snapshot) in snapshots {
        for row in rows {
            let Some(expected) = row.sizes.get(abi.name()) else {
                continue;
            };
            let computed = snapshot
                .records
                .get(&format!("struct {}", row.name))
                .map(|r| r.size);
            let (passed, detail) = match (expected, computed) {
                (None, None) => continue,
                (Some(e), Some(c)) if *e == c => (true, format!("{c} bytes")),
                (Some(e), Some(c)) => (
                    false,
                    format!(
                        "reference.size says {e}, the compiler says {c}: update reference.size"
                    ),
                ),
                (Some(e), None) => (
                    false,
                    format!("reference.size says {e}, but the type does not exist for {abi}"),
                ),
                (None, Some(c)) => (
                    false,
                    format!("reference.size says '-', but the type exists for {abi} ({c} bytes)"),
                ),
            };
            out.push(Check {
                abi: *abi,
                rule: format!("reference.size {}", row.name),
                passed,
                detail,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "
structs                   |   arm32   arm64  x86_32  x86_64

vcpu_info                 |      48      48      64      64
arch_shared_info          |       0       0      28      48
trap_info                 |       -       -       8      16
";

    #[test]
    fn parses_columns_and_dashes() {
        let rows = parse(SAMPLE).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].name, "arch_shared_info");
        assert_eq!(rows[1].sizes["x86_32"], Some(28));
        assert_eq!(rows[2].sizes["arm64"], None);
    }

    #[test]
    fn rejects_a_short_row() {
        let err = parse("structs | x86_32 x86_64\nfoo | 1\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }
}
