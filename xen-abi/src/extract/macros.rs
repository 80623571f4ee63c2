// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Object-like integer macros of the public headers, evaluated by the compiler.
//!
//! The preprocessing record of the translation unit lists every macro definition with its
//! location; the object-like ones defined in the public folder are probed in a second
//! translation unit as `static const __auto_type probe = (NAME);`, and libclang evaluates
//! each probe in the macro's own type for this ABI. Macros that are not integer constant
//! expressions (include guards, strings, type names, attribute spellings) fail to evaluate
//! and are left out.

use super::{header_of, Unit};
use crate::error::Error;
use crate::model::{Constant, ConstantSource, Snapshot};
use clang::{EntityKind, EvaluationResult, TranslationUnit};
use std::collections::BTreeMap;
use std::path::Path;

const PROBE_PREFIX: &str = "__xen_abi_probe_";

/// Object-like macros defined in the public folder, with their headers (last definition
/// wins). Definitions whose tokens could disturb the probes (unbalanced brackets, `;`,
/// braces) are left out; none of them can be an integer constant.
pub(crate) fn object_like_macros(
    tu: &TranslationUnit<'_>,
    public: &Path,
) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for entity in tu.get_entity().get_children() {
        if entity.get_kind() != EntityKind::MacroDefinition || entity.is_function_like_macro() {
            continue;
        }
        let Some(header) = header_of(entity.get_location(), public) else {
            continue;
        };
        let Some(name) = entity.get_name() else {
            continue;
        };
        let Some(range) = entity.get_range() else {
            continue;
        };
        let tokens: Vec<String> = range.tokenize().iter().map(|t| t.get_spelling()).collect();
        // tokens[0] is the macro's name; an empty body is a guard or a flag.
        if tokens.len() < 2 || !safe_body(&tokens[1..]) {
            continue;
        }
        found.insert(name, header);
    }
    found
}

/// Whether a macro body can be put inside `( … )` without disturbing what follows.
fn safe_body(tokens: &[String]) -> bool {
    let mut depth: i64 = 0;
    for t in tokens {
        match t.as_str() {
            "(" | "[" => depth += 1,
            ")" | "]" => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            ";" | "{" | "}" | "#" | "##" => return false,
            _ => {}
        }
    }
    depth == 0
}

/// Evaluates `macros` for the unit's ABI and adds the integer ones to the snapshot's
/// constants (an enumerator of the same name keeps its entry).
pub(crate) fn evaluate(
    unit: &Unit<'_>,
    headers: &[String],
    macros: &BTreeMap<String, String>,
    snapshot: &mut Snapshot,
) -> Result<(), Error> {
    let mut probes = String::new();
    for name in macros.keys() {
        probes.push_str(&format!(
            "static const __auto_type {PROBE_PREFIX}{name} = ({name});\n"
        ));
    }
    let tu = unit.parse(headers, &probes)?;
    for entity in tu.get_entity().get_children() {
        if entity.get_kind() != EntityKind::VarDecl {
            continue;
        }
        let Some(var) = entity.get_name() else {
            continue;
        };
        let Some(name) = var.strip_prefix(PROBE_PREFIX) else {
            continue;
        };
        let Some(header) = macros.get(name) else {
            continue;
        };
        let value = match entity.evaluate() {
            Some(EvaluationResult::SignedInteger(v)) => i128::from(v),
            Some(EvaluationResult::UnsignedInteger(v)) => i128::from(v),
            _ => continue,
        };
        snapshot
            .constants
            .entry(name.to_string())
            .or_insert(Constant {
                value,
                source: ConstantSource::Macro,
                header: header.clone(),
            });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::safe_body;

    fn body(tokens: &[&str]) -> bool {
        safe_body(&tokens.iter().map(|t| t.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn only_balanced_expressions_are_probed() {
        assert!(body(&["(", "1", "<<", "4", ")"]));
        assert!(body(&["sizeof", "(", "struct", "foo", ")"]));
        assert!(!body(&["(", "1"]));
        assert!(!body(&[")"]));
        assert!(!body(&["do", "{", "}", "while", "(", "0", ")"]));
        assert!(!body(&["int", "x", ";"]));
    }
}
