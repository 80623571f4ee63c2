// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Choosing the headers that compile for an ABI.
//!
//! All candidates are compiled together: `xen.h` first, then the common headers, then the
//! `arch-x86/` ones (so that `arch-x86/hvm/save.h` is first reached through `hvm/save.h`,
//! which it needs), and not the other ABI's `xen-x86_32.h`/`xen-x86_64.h`. The first header
//! in which the compiler reports an error is dropped and recorded with that error (later
//! errors may be its side effects), and the rest are compiled again, until the set
//! compiles cleanly. An error outside the remaining headers (e.g. in a header only reached
//! through another) is pinned down by compiling each header alone.

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
pub(crate) fn select<'u>(
    unit: &'u Unit<'_>,
    candidates: &[String],
) -> Result<Selection<'u>, Error> {
    let other_abi = match unit.abi {
        crate::Abi::X86_32 => "arch-x86/xen-x86_64.h",
        crate::Abi::X86_64 => "arch-x86/xen-x86_32.h",
    };
    let wanted = |c: &&String| *c != "xen.h" && *c != other_abi;
    let mut included: Vec<String> = Vec::new();
    if candidates.iter().any(|c| c == "xen.h") {
        included.push("xen.h".to_string());
    }
    included.extend(
        candidates
            .iter()
            .filter(wanted)
            .filter(|c| !c.starts_with("arch-x86/"))
            .cloned(),
    );
    included.extend(
        candidates
            .iter()
            .filter(wanted)
            .filter(|c| c.starts_with("arch-x86/"))
            .cloned(),
    );
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
        // Only the first failing header is dropped per round: its side effects (e.g. macros
        // it redefines) can be what breaks the headers after it.
        let first_named = errs
            .iter()
            .filter_map(|(header, message)| {
                let h = header.as_ref()?;
                let pos = included.iter().position(|i| i == h)?;
                Some((pos, message.clone()))
            })
            .min_by_key(|(pos, _)| *pos);
        if let Some((pos, message)) = first_named {
            let header = included.remove(pos);
            skipped.push(SkippedHeader {
                header,
                error: message,
            });
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
