// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What the compiler told us about one tree for one ABI.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whether a record is a struct or a union.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// `struct`.
    Struct,
    /// `union`.
    Union,
}

/// One member of a record, with members of anonymous structs and unions flattened into
/// their parent (named `outer.inner`, or just `inner` for C11 anonymous members).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The member's name (dotted path for members of anonymous inner records).
    pub name: String,
    /// Offset from the start of the outermost record, in bits.
    pub offset_bits: u64,
    /// Size of the member's type in bytes (0 for a flexible array member).
    pub size: u64,
    /// Width in bits, for a bit-field.
    pub bit_width: Option<u64>,
    /// The member's canonical type, with anonymous types spelled `struct {…}`.
    pub ty: String,
    /// The named record this member holds directly (not through an array or pointer).
    pub record: Option<String>,
}

impl Member {
    /// The offset in bytes (rounded down for bit-fields).
    pub fn offset(&self) -> u64 {
        self.offset_bits / 8
    }

    /// `offset` for display: bytes, plus `.bit` for a bit-field.
    pub fn offset_text(&self) -> String {
        match self.bit_width {
            Some(_) => format!("{}.{}", self.offset_bits / 8, self.offset_bits % 8),
            None => (self.offset_bits / 8).to_string(),
        }
    }

    /// `size` for display: bytes, or `:width` for a bit-field.
    pub fn size_text(&self) -> String {
        match self.bit_width {
            Some(w) => format!(":{w}"),
            None => self.size.to_string(),
        }
    }
}

/// A struct or union with a name (its tag, or the typedef naming an anonymous one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Struct or union.
    pub kind: RecordKind,
    /// Size in bytes.
    pub size: u64,
    /// Alignment in bytes.
    pub align: u64,
    /// Members in declaration order.
    pub members: Vec<Member>,
    /// The header that defines it, relative to the public folder.
    pub header: String,
}

impl Record {
    /// The top-level member that ends last (the tail member), if any. Members of a union
    /// all start at 0, so a union has no single tail and this returns `None` for it.
    pub fn tail_member(&self) -> Option<&Member> {
        if self.kind == RecordKind::Union {
            return None;
        }
        self.members
            .iter()
            .filter(|m| !m.name.contains('.'))
            .max_by_key(|m| m.offset_bits)
    }
}

/// A typedef: its canonical type and layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typedef {
    /// The canonical type it names.
    pub ty: String,
    /// Size in bytes (0 when incomplete, e.g. a function type).
    pub size: u64,
    /// Alignment in bytes (0 when incomplete).
    pub align: u64,
    /// The named record it stands for, if it names one directly.
    pub record: Option<String>,
    /// The header that defines it.
    pub header: String,
}

/// An enum type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnumType {
    /// Size in bytes of the enum type.
    pub size: u64,
    /// Its constants in declaration order.
    pub constants: Vec<String>,
    /// The header that defines it.
    pub header: String,
}

/// Where a constant comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConstantSource {
    /// An object-like macro, evaluated by the compiler.
    Macro,
    /// An enumerator of the named enum.
    Enumerator(String),
}

/// An integer constant with its value for one ABI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constant {
    /// The value (wide enough for both signed and unsigned 64-bit values).
    pub value: i128,
    /// Macro or enumerator.
    pub source: ConstantSource,
    /// The header that defines it.
    pub header: String,
}

/// A header that did not compile for an ABI and was left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedHeader {
    /// The header, relative to the public folder.
    pub header: String,
    /// The first compiler error in it.
    pub error: String,
}

/// Everything extracted from one tree for one ABI.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// Records by name (`struct foo`, `union bar`, or a typedef name for anonymous ones).
    pub records: BTreeMap<String, Record>,
    /// Typedefs by name.
    pub typedefs: BTreeMap<String, Typedef>,
    /// Enums by name (`enum foo`).
    pub enums: BTreeMap<String, EnumType>,
    /// Integer constants (macros and enumerators) by name.
    pub constants: BTreeMap<String, Constant>,
    /// Headers compiled.
    pub headers: Vec<String>,
    /// Headers left out because they do not compile for this ABI.
    pub skipped: Vec<SkippedHeader>,
}
