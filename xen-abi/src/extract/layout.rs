// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Records, typedefs and enums, as laid out by the compiler.

use super::header_of;
use crate::model::{
    Constant, ConstantSource, EnumType, Member, Record, RecordKind, Snapshot, Typedef,
};
use clang::{Entity, EntityKind, EntityVisitResult, TranslationUnit, Type, TypeKind};
use std::path::Path;

/// Walks a translation unit and collects every named record, typedef and enum (and the
/// enumerators as constants) defined in the public folder.
pub(crate) fn walk(tu: &TranslationUnit<'_>, public: &Path) -> Snapshot {
    let mut snapshot = Snapshot::default();
    tu.get_entity().visit_children(|entity, _parent| {
        // Only declarations can define types; macro records and the system headers'
        // declarations are not walked into.
        let kind = entity.get_kind();
        if !matches!(
            kind,
            EntityKind::StructDecl
                | EntityKind::UnionDecl
                | EntityKind::TypedefDecl
                | EntityKind::EnumDecl
                | EntityKind::FieldDecl
                | EntityKind::VarDecl
        ) {
            return EntityVisitResult::Continue;
        }
        let Some(header) = header_of(entity.get_location(), public) else {
            return EntityVisitResult::Continue;
        };
        match kind {
            EntityKind::StructDecl | EntityKind::UnionDecl if entity.is_definition() => {
                add_record(&mut snapshot, entity, header);
            }
            EntityKind::TypedefDecl => add_typedef(&mut snapshot, entity, header),
            EntityKind::EnumDecl if entity.is_definition() => {
                add_enum(&mut snapshot, entity, header)
            }
            _ => {}
        }
        EntityVisitResult::Recurse
    });
    snapshot
}

/// Whether the text names an anonymous type (`struct (anonymous at …)`, `(unnamed …)`).
fn is_anonymous_spelling(s: &str) -> bool {
    s.contains("(anonymous") || s.contains("(unnamed")
}

/// Replaces each `(anonymous at file:line:col)` or `(unnamed … at …)` by `{…}`, so that a
/// type's spelling does not depend on where the tree lies.
fn scrub(spelling: &str) -> String {
    let mut out = String::new();
    let mut rest = spelling;
    while let Some(start) = rest.find("(anonymous").or_else(|| rest.find("(unnamed")) {
        out.push_str(&rest[..start]);
        match rest[start..].find(')') {
            Some(end) => {
                out.push_str("{…}");
                rest = &rest[start + end + 1..];
            }
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The name under which a record declaration is known: `struct tag`, `union tag`, or the
/// typedef name of an anonymous one. `None` for a truly anonymous record.
pub(crate) fn record_key(decl: Entity<'_>) -> Option<String> {
    let kind = match decl.get_kind() {
        EntityKind::StructDecl => "struct",
        EntityKind::UnionDecl => "union",
        _ => return None,
    };
    match decl.get_name() {
        Some(name) if !name.is_empty() && !is_anonymous_spelling(&name) => {
            Some(format!("{kind} {name}"))
        }
        _ => {
            let shown = decl.get_type()?.get_display_name();
            if is_anonymous_spelling(&shown) || shown.is_empty() {
                None
            } else {
                Some(shown)
            }
        }
    }
}

/// The named record a canonical type is, if it is one.
fn named_record(ty: Type<'_>) -> Option<String> {
    let canonical = ty.get_canonical_type();
    if canonical.get_kind() != TypeKind::Record {
        return None;
    }
    record_key(canonical.get_declaration()?)
}

/// Whether a canonical type is a record without a name.
fn anonymous_record(ty: Type<'_>) -> bool {
    let canonical = ty.get_canonical_type();
    canonical.get_kind() == TypeKind::Record && named_record(canonical).is_none()
}

/// The canonical spelling of a type, location-free.
pub(crate) fn describe(ty: Type<'_>) -> String {
    let canonical = ty.get_canonical_type();
    match canonical.get_kind() {
        TypeKind::ConstantArray | TypeKind::IncompleteArray => {
            let mut dims = String::new();
            let mut t = canonical;
            loop {
                match t.get_kind() {
                    TypeKind::ConstantArray => {
                        dims.push_str(&format!("[{}]", t.get_size().unwrap_or(0)));
                    }
                    TypeKind::IncompleteArray => dims.push_str("[]"),
                    _ => break,
                }
                match t.get_element_type() {
                    Some(e) => t = e.get_canonical_type(),
                    None => break,
                }
            }
            format!("{}{dims}", describe(t))
        }
        TypeKind::Record if named_record(canonical).is_none() => {
            match canonical.get_declaration().map(|d| d.get_kind()) {
                Some(EntityKind::UnionDecl) => "union {…}".to_string(),
                _ => "struct {…}".to_string(),
            }
        }
        TypeKind::Pointer => match canonical.get_pointee_type() {
            Some(p) => format!("{} *", describe(p)),
            None => scrub(&canonical.get_display_name()),
        },
        _ => scrub(&canonical.get_display_name()),
    }
}

fn size_of(ty: Type<'_>) -> u64 {
    ty.get_sizeof().map(|s| s as u64).unwrap_or(0)
}

fn align_of(ty: Type<'_>) -> u64 {
    ty.get_alignof().map(|s| s as u64).unwrap_or(0)
}

/// The element type of a (possibly nested) array, or the type itself.
fn innermost_element(ty: Type<'_>) -> Type<'_> {
    let mut t = ty.get_canonical_type();
    while matches!(
        t.get_kind(),
        TypeKind::ConstantArray | TypeKind::IncompleteArray
    ) {
        match t.get_element_type() {
            Some(e) => t = e.get_canonical_type(),
            None => break,
        }
    }
    t
}

/// Appends the members of record type `ty`, placed at `base_bits`, named with `prefix`.
/// Members of anonymous inner records are flattened (arrays of them: element 0).
fn collect_members(ty: Type<'_>, base_bits: u64, prefix: &str, out: &mut Vec<Member>) {
    for field in ty.get_fields().unwrap_or_default() {
        let Some(fty) = field.get_type() else {
            continue;
        };
        let name = field.get_name().unwrap_or_default();
        let offset = base_bits + field.get_offset_of_field().map(|o| o as u64).unwrap_or(0);
        let unnamed = name.is_empty() || is_anonymous_spelling(&name);
        if unnamed && anonymous_record(fty) {
            collect_members(fty.get_canonical_type(), offset, prefix, out);
            continue;
        }
        let full = format!("{prefix}{name}");
        out.push(Member {
            name: full.clone(),
            offset_bits: offset,
            size: size_of(fty),
            bit_width: if field.is_bit_field() {
                field.get_bit_field_width().map(|w| w as u64)
            } else {
                None
            },
            ty: describe(fty),
            record: named_record(fty),
        });
        let element = innermost_element(fty);
        if anonymous_record(element) {
            let is_array = element != fty.get_canonical_type();
            let inner = if is_array {
                format!("{full}[0].")
            } else {
                format!("{full}.")
            };
            collect_members(element, offset, &inner, out);
        }
    }
}

fn add_record(snapshot: &mut Snapshot, entity: Entity<'_>, header: String) {
    let Some(key) = record_key(entity) else {
        return;
    };
    if snapshot.records.contains_key(&key) {
        return;
    }
    let Some(ty) = entity.get_type() else { return };
    let Ok(size) = ty.get_sizeof() else { return };
    let mut members = Vec::new();
    collect_members(ty, 0, "", &mut members);
    let kind = if entity.get_kind() == EntityKind::UnionDecl {
        RecordKind::Union
    } else {
        RecordKind::Struct
    };
    snapshot.records.insert(
        key,
        Record {
            kind,
            size: size as u64,
            align: align_of(ty),
            members,
            header,
        },
    );
}

fn add_typedef(snapshot: &mut Snapshot, entity: Entity<'_>, header: String) {
    let Some(name) = entity.get_name() else {
        return;
    };
    let Some(underlying) = entity.get_typedef_underlying_type() else {
        return;
    };
    snapshot.typedefs.entry(name).or_insert_with(|| Typedef {
        ty: describe(underlying),
        size: size_of(underlying),
        align: align_of(underlying),
        record: named_record(underlying),
        header,
    });
}

fn add_enum(snapshot: &mut Snapshot, entity: Entity<'_>, header: String) {
    let name = entity
        .get_name()
        .filter(|n| !n.is_empty() && !is_anonymous_spelling(n));
    let unsigned = entity
        .get_enum_underlying_type()
        .map(|t| {
            matches!(
                t.get_canonical_type().get_kind(),
                TypeKind::UInt
                    | TypeKind::ULong
                    | TypeKind::ULongLong
                    | TypeKind::UChar
                    | TypeKind::UShort
            )
        })
        .unwrap_or(false);
    let owner = name
        .as_ref()
        .map(|n| format!("enum {n}"))
        .unwrap_or_else(|| "enum {…}".into());
    let mut constants = Vec::new();
    for child in entity.get_children() {
        if child.get_kind() != EntityKind::EnumConstantDecl {
            continue;
        }
        let (Some(cname), Some((signed, uvalue))) =
            (child.get_name(), child.get_enum_constant_value())
        else {
            continue;
        };
        let value = if unsigned {
            i128::from(uvalue)
        } else {
            i128::from(signed)
        };
        constants.push(cname.clone());
        snapshot.constants.entry(cname).or_insert(Constant {
            value,
            source: ConstantSource::Enumerator(owner.clone()),
            header: header.clone(),
        });
    }
    if let (Some(n), Some(ty)) = (name, entity.get_type()) {
        snapshot
            .enums
            .entry(format!("enum {n}"))
            .or_insert(EnumType {
                size: size_of(ty),
                constants,
                header,
            });
    }
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn anonymous_spellings_lose_their_location() {
        assert_eq!(
            scrub("struct (anonymous at /a/b/xen.h:12:5)[4]"),
            "struct {…}[4]"
        );
        assert_eq!(scrub("union (unnamed union at x.h:1:1) *"), "union {…} *");
        assert_eq!(scrub("unsigned long"), "unsigned long");
    }
}
