// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Classification of the differences between two trees, ABI by ABI.

use crate::abi::Abi;
use crate::model::{Member, Record, RecordKind, Snapshot};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Whether a difference keeps existing binaries working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Existing users are unaffected.
    Compatible,
    /// Existing users break.
    Break,
}

impl Verdict {
    /// `compatible` or `BREAK`, as shown in tables.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Compatible => "compatible",
            Verdict::Break => "BREAK",
        }
    }
}

/// What kind of item changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    /// A struct or union.
    Record,
    /// A typedef.
    Typedef,
    /// An enum type.
    Enum,
    /// An integer macro or enumerator.
    Constant,
}

/// One side (old or new) of a difference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Slot {
    /// Offset in bytes (`byte.bit` for a bit-field), for members.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
    /// Size in bytes (`:width` for a bit-field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Type spelling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ty: Option<String>,
    /// Value, for constants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl Slot {
    fn member(m: &Member) -> Self {
        Slot {
            offset: Some(m.offset_text()),
            size: Some(m.size_text()),
            ty: Some(m.ty.clone()),
            value: None,
        }
    }

    fn size(size: u64, ty: Option<&str>) -> Self {
        Slot {
            size: Some(size.to_string()),
            ty: ty.map(str::to_string),
            ..Slot::default()
        }
    }

    fn value(v: i128) -> Self {
        Slot {
            value: Some(v.to_string()),
            ..Slot::default()
        }
    }
}

/// One classified difference on one ABI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The ABI on which it was seen.
    pub abi: Abi,
    /// Kind of the item.
    pub kind: ItemKind,
    /// The item: `struct shared_info`, `typedef xen_pfn_t`, `enum foo`, or a constant name.
    pub item: String,
    /// The member, for a change inside a record (`(size)`/`(align)` for the record itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// The old side (absent when added).
    pub old: Option<Slot>,
    /// The new side (absent when removed).
    pub new: Option<Slot>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in a few words.
    pub reason: String,
}

/// Size limits of records that live in a fixed place: the key, and the largest size allowed
/// (`shared_info` is one page).
/// A tail member may grow or shrink only if every container up the chain ends in one of these
/// and stays within it.
pub const SIZE_LIMITS: &[(&str, u64)] = &[("struct shared_info", 4096)];

/// Whether a removed member was only padding (its space may be reused).
fn is_padding(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    let bare = last.trim_start_matches('_');
    bare.starts_with("pad") || bare.starts_with("_pad")
}

/// Compares two snapshots of one ABI.
pub fn diff_abi(abi: Abi, old: &Snapshot, new: &Snapshot) -> Vec<Change> {
    let mut d = Differ {
        abi,
        old,
        new,
        out: Vec::new(),
    };
    d.records();
    d.typedefs();
    d.enums();
    d.constants();
    d.out
}

/// Compares two trees on every ABI both were extracted for.
pub fn diff(old: &BTreeMap<Abi, Snapshot>, new: &BTreeMap<Abi, Snapshot>) -> Vec<Change> {
    let mut out = Vec::new();
    for (abi, o) in old {
        if let Some(n) = new.get(abi) {
            out.extend(diff_abi(*abi, o, n));
        }
    }
    out
}

struct Differ<'a> {
    abi: Abi,
    old: &'a Snapshot,
    new: &'a Snapshot,
    out: Vec<Change>,
}

impl Differ<'_> {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        kind: ItemKind,
        item: &str,
        member: Option<&str>,
        old: Option<Slot>,
        new: Option<Slot>,
        verdict: Verdict,
        reason: impl Into<String>,
    ) {
        self.out.push(Change {
            abi: self.abi,
            kind,
            item: item.to_string(),
            member: member.map(str::to_string),
            old,
            new,
            verdict,
            reason: reason.into(),
        });
    }

    /// Whether a size change of record `key` is harmless: it is the tail member of every
    /// container that holds it, and each container's own size change is harmless or it has
    /// a limit it stays within. Returns the explanation when harmless.
    fn size_change_ok(&self, key: &str, depth: usize) -> Result<String, String> {
        if depth > 16 {
            return Err("containers nest too deeply to judge".into());
        }
        let new_size = self.new.records.get(key).map(|r| r.size).unwrap_or(0);
        if let Some((_, limit)) = SIZE_LIMITS.iter().find(|(k, _)| *k == key) {
            return if new_size <= *limit {
                Ok(format!("{key} stays within its {limit}-byte limit"))
            } else {
                Err(format!("{key} exceeds its {limit}-byte limit"))
            };
        }
        let mut reasons = Vec::new();
        let mut held_by_any = false;
        for (ckey, container) in &self.new.records {
            for m in container.members.iter().filter(|m| !m.name.contains('.')) {
                if m.ty.starts_with(&format!("{key}[")) {
                    return Err(format!("{ckey}.{} is an array of it", m.name));
                }
                if m.record.as_deref() != Some(key) {
                    continue;
                }
                held_by_any = true;
                if !self.is_tail(ckey, container, &m.name) {
                    return Err(format!("it is not the last member of {ckey}"));
                }
                let old_size = self.old.records.get(ckey).map(|r| r.size);
                if old_size == Some(container.size) {
                    reasons.push(format!("last member of {ckey}, whose size is unchanged"));
                } else {
                    let why = self.size_change_ok(ckey, depth + 1)?;
                    reasons.push(format!("last member of {ckey}; {why}"));
                }
            }
        }
        if held_by_any {
            Ok(reasons.join("; "))
        } else {
            Err("the type is used on its own, so its size is part of the ABI".into())
        }
    }

    /// Whether `member` is the tail of `container` in the new tree and (if it existed) in
    /// the old one. Every member of a union is at its tail.
    fn is_tail(&self, key: &str, container: &Record, member: &str) -> bool {
        let tail_of = |r: &Record| {
            r.kind == RecordKind::Union || r.tail_member().map(|m| m.name.as_str()) == Some(member)
        };
        tail_of(container) && self.old.records.get(key).map(tail_of).unwrap_or(true)
    }

    fn records(&mut self) {
        for (key, old) in &self.old.records {
            let Some(new) = self.new.records.get(key) else {
                self.push(
                    ItemKind::Record,
                    key,
                    None,
                    Some(Slot::size(old.size, None)),
                    None,
                    Verdict::Break,
                    "type removed",
                );
                continue;
            };
            self.record(key, old, new);
        }
        for (key, new) in &self.new.records {
            if !self.old.records.contains_key(key) {
                self.push(
                    ItemKind::Record,
                    key,
                    None,
                    None,
                    Some(Slot::size(new.size, None)),
                    Verdict::Compatible,
                    format!("new type ({})", new.header),
                );
            }
        }
    }

    fn record(&mut self, key: &str, old: &Record, new: &Record) {
        let new_members: BTreeMap<&str, &Member> =
            new.members.iter().map(|m| (m.name.as_str(), m)).collect();
        let old_names: BTreeSet<&str> = old.members.iter().map(|m| m.name.as_str()).collect();
        for om in &old.members {
            let Some(nm) = new_members.get(om.name.as_str()) else {
                let (verdict, reason) = if is_padding(&om.name) {
                    (
                        Verdict::Compatible,
                        "padding removed (its space may be reused)",
                    )
                } else {
                    (Verdict::Break, "member removed")
                };
                self.push(
                    ItemKind::Record,
                    key,
                    Some(&om.name),
                    Some(Slot::member(om)),
                    None,
                    verdict,
                    reason,
                );
                continue;
            };
            let (old_slot, new_slot) = (Slot::member(om), Slot::member(nm));
            if om.offset_bits != nm.offset_bits {
                self.push(
                    ItemKind::Record,
                    key,
                    Some(&om.name),
                    Some(old_slot),
                    Some(new_slot),
                    Verdict::Break,
                    "member moved",
                );
            } else if om.ty != nm.ty || om.bit_width != nm.bit_width {
                self.push(
                    ItemKind::Record,
                    key,
                    Some(&om.name),
                    Some(old_slot),
                    Some(new_slot),
                    Verdict::Break,
                    "member type changed",
                );
            } else if om.size != nm.size {
                let judged = match nm.record.as_deref() {
                    Some(inner) if !om.name.contains('.') && self.is_tail(key, new, &om.name) => {
                        self.size_change_ok(inner, 0)
                    }
                    _ => Err("member size changed".to_string()),
                };
                let (verdict, reason) = match judged {
                    Ok(why) => (Verdict::Compatible, format!("tail member resized; {why}")),
                    Err(why) => (Verdict::Break, format!("member resized: {why}")),
                };
                self.push(
                    ItemKind::Record,
                    key,
                    Some(&om.name),
                    Some(old_slot),
                    Some(new_slot),
                    verdict,
                    reason,
                );
            }
        }
        for nm in &new.members {
            if !old_names.contains(nm.name.as_str()) {
                self.push(
                    ItemKind::Record,
                    key,
                    Some(&nm.name),
                    None,
                    Some(Slot::member(nm)),
                    Verdict::Compatible,
                    "member added",
                );
            }
        }
        if old.size != new.size {
            let (verdict, reason) = match self.size_change_ok(key, 0) {
                Ok(why) => (Verdict::Compatible, format!("size changed; {why}")),
                Err(why) => (Verdict::Break, format!("size changed: {why}")),
            };
            self.push(
                ItemKind::Record,
                key,
                Some("(size)"),
                Some(Slot::size(old.size, None)),
                Some(Slot::size(new.size, None)),
                verdict,
                reason,
            );
        }
        if old.align != new.align {
            self.push(
                ItemKind::Record,
                key,
                Some("(align)"),
                Some(Slot::size(old.align, None)),
                Some(Slot::size(new.align, None)),
                Verdict::Break,
                "alignment changed",
            );
        }
    }

    fn typedefs(&mut self) {
        for (name, old) in &self.old.typedefs {
            let item = format!("typedef {name}");
            let old_slot = Slot::size(old.size, Some(&old.ty));
            match self.new.typedefs.get(name) {
                None => self.push(
                    ItemKind::Typedef,
                    &item,
                    None,
                    Some(old_slot),
                    None,
                    Verdict::Break,
                    "typedef removed",
                ),
                Some(new) => {
                    let new_slot = Slot::size(new.size, Some(&new.ty));
                    if old.ty != new.ty {
                        self.push(
                            ItemKind::Typedef,
                            &item,
                            None,
                            Some(old_slot),
                            Some(new_slot),
                            Verdict::Break,
                            "typedef names another type",
                        );
                    } else if old.size != new.size && new.record.is_none() {
                        self.push(
                            ItemKind::Typedef,
                            &item,
                            None,
                            Some(old_slot),
                            Some(new_slot),
                            Verdict::Break,
                            "typedef size changed",
                        );
                    }
                }
            }
        }
        for (name, new) in &self.new.typedefs {
            if !self.old.typedefs.contains_key(name) {
                self.push(
                    ItemKind::Typedef,
                    &format!("typedef {name}"),
                    None,
                    None,
                    Some(Slot::size(new.size, Some(&new.ty))),
                    Verdict::Compatible,
                    format!("new typedef ({})", new.header),
                );
            }
        }
    }

    fn enums(&mut self) {
        for (name, old) in &self.old.enums {
            match self.new.enums.get(name) {
                None => self.push(
                    ItemKind::Enum,
                    name,
                    None,
                    Some(Slot::size(old.size, None)),
                    None,
                    Verdict::Break,
                    "enum removed",
                ),
                Some(new) if new.size != old.size => self.push(
                    ItemKind::Enum,
                    name,
                    Some("(size)"),
                    Some(Slot::size(old.size, None)),
                    Some(Slot::size(new.size, None)),
                    Verdict::Break,
                    "enum size changed",
                ),
                Some(_) => {}
            }
        }
        for (name, new) in &self.new.enums {
            if !self.old.enums.contains_key(name) {
                self.push(
                    ItemKind::Enum,
                    name,
                    None,
                    None,
                    Some(Slot::size(new.size, None)),
                    Verdict::Compatible,
                    format!("new enum ({})", new.header),
                );
            }
        }
    }

    fn constants(&mut self) {
        for (name, old) in &self.old.constants {
            match self.new.constants.get(name) {
                None => self.push(
                    ItemKind::Constant,
                    name,
                    None,
                    Some(Slot::value(old.value)),
                    None,
                    Verdict::Break,
                    "constant removed",
                ),
                Some(new) if new.value != old.value => self.push(
                    ItemKind::Constant,
                    name,
                    None,
                    Some(Slot::value(old.value)),
                    Some(Slot::value(new.value)),
                    Verdict::Break,
                    "constant value changed",
                ),
                Some(_) => {}
            }
        }
        for (name, new) in &self.new.constants {
            if !self.old.constants.contains_key(name) {
                self.push(
                    ItemKind::Constant,
                    name,
                    None,
                    None,
                    Some(Slot::value(new.value)),
                    Verdict::Compatible,
                    format!("new constant ({})", new.header),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_padding;

    #[test]
    fn padding_names() {
        for name in ["pad", "pad0", "_pad", "__pad[2]", "u.pad1"] {
            assert!(is_padding(name), "{name}");
        }
        for name in ["p2m_cr3", "spad", "u.data"] {
            assert!(!is_padding(name), "{name}");
        }
    }
}
