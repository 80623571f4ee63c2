// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Choosing the headers that compile for an ABI.
//!
//! All candidates are compiled together, `xen.h` first. Every header in which the compiler
//! reports an error is dropped and recorded with its first error, and the rest are
//! compiled again, until the set compiles cleanly (the skipped headers and their errors
//! are part of every report, so a header that only failed because of another shows up).
//! An error outside the remaining headers (e.g. in a header only reached through another)
//! is pinned down by compiling each header alone.

use super::{header_of, Unit};
use crate::error::Error;
use crate::model::SkippedHeader;
use clang::diagnostic::Severity;
use clang::TranslationUnit;

/// Compiler errors of a translation unit: (header or `None` when outside the public
/// folder, message).
fn errors(tu: &TranslationUnit<'_>, unit: &Unit<'_>) -> Vec<(Option<String>, String)> {
    tu.get_diagnostics()
        .iter()
        .filter(|d| d.get_severity() >= Severity::Error)
        .map(|d| (header_of(Some(d.get_location()), unit.public), d.get_text()))
        .collect()
}

/// The headers that compile together, the skipped ones, and the clean translation unit.
pub(crate) type Selection<'u> = (Vec<String>, Vec<SkippedHeader>, TranslationUnit<'u>);

/// Splits `candidates` into the headers that compile together for the unit's ABI and the
/// skipped ones, and returns the translation unit of the former.
pub(crate) fn select<'u>(unit: &'u Unit<'_>, candidates: &[String]) -> Result<Selection<'u>, Error> {
    let mut included: Vec<String> = Vec::new();
    if candidates.iter().any(|c| c == "xen.h") {
        included.push("xen.h".to_string());
    }
    included.extend(candidates.iter().filter(|c| *c != "xen.h").cloned());
    let mut skipped: Vec<SkippedHeader> = Vec::new();
    let mut first_error = String::new();
    loop {
        if included.is_empty() {
            return Err(Error::NothingCompiles {
                path: unit.public.to_path_buf(),
                abi: unit.abi,
                first_error,
            });
        }
        let tu = unit.parse(&included, "")?;
        let errs = errors(&tu, unit);
        if errs.is_empty() {
            return Ok((included, skipped, tu));
        }
        if first_error.is_empty() {
            first_error = errs[0].1.clone();
        }
        let mut failing: Vec<(String, String)> = Vec::new();
        for (header, message) in &errs {
            if let Some(h) = header {
                if included.contains(h) && !failing.iter().any(|(f, _)| f == h) {
                    failing.push((h.clone(), message.clone()));
                }
            }
        }
        if !failing.is_empty() {
            included.retain(|h| !failing.iter().any(|(f, _)| f == h));
            for (header, error) in failing {
                skipped.push(SkippedHeader { header, error });
            }
        } else {
            // The errors are in files we did not name: find the culprits one by one.
            let mut keep = Vec::new();
            let tried = included.len();
            for h in included.drain(..) {
                let tu = unit.parse(std::slice::from_ref(&h), "")?;
                match errors(&tu, unit).into_iter().next() {
                    None => keep.push(h),
                    Some((_, message)) => skipped.push(SkippedHeader {
                        header: h,
                        error: message,
                    }),
                }
            }
            if keep.len() == tried {
                return Err(Error::Parse {
                    path: unit.public.to_path_buf(),
                    abi: unit.abi,
                    reason: format!(
                        "every header compiles alone but not together ({}); \
                         report this with the tree",
                        errs[0].1
                    ),
                });
            }
            included = keep;
        }
    }
}
