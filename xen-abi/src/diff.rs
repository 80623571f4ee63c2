// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Classification of the differences between two trees, ABI by ABI.
//!
//! Every tree is compiled twice per ABI (see [`crate::extract::View`]): as a guest sees it
//! (no `__XEN_TOOLS__`, at the old tree's interface version) and as the tools see it. An
//! item the tools see but a guest does not is *tools-only*; everything a guest sees is
//! *stable*. Stable items are compared in the guest views, tools-only items in the tools
//! views, with the same layout rules; then a breaking change of a tools-only item is
//! judged by the interface version of its header (see [`judge_tools`]). The rules and their
//! reasons are written down in `docs/abi-rules.md`.

use crate::abi::Abi;
use crate::invariants::Check;
use crate::model::{Member, Record, RecordKind, Snapshot};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Whether a difference keeps existing binaries working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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

/// Which promise an item is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Seen by guests: may only change compatibly.
    Stable,
    /// Seen only with `__XEN_TOOLS__`: judged by its header's interface version.
    Tools,
}

/// How an interface version took part in a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Versioning {
    /// The change is an interface version being raised.
    Bump,
    /// A tools-only layout change whose interface version was raised with it.
    Bumped,
    /// A tools-only layout change whose interface version stayed the same.
    NotBumped,
    /// A tools-only layout change in a header without an interface version.
    Unversioned,
}

/// One side (old or new) of a difference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// Offset in bytes (`byte.bit` for a bit-field), for members.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
    /// Size in bytes (`:width` for a bit-field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Type spelling (for a removed record: its definition).
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The header that defines the item (in the old tree when it was removed).
    pub header: String,
    /// Stable or tools-only.
    pub scope: Scope,
    /// How an interface version decided the verdict, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versioning: Option<Versioning>,
    /// The old side (absent when added).
    pub old: Option<Slot>,
    /// The new side (absent when removed).
    pub new: Option<Slot>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in a few words.
    pub reason: String,
}

impl Change {
    /// Whether the item itself (not one of its members) was removed.
    pub fn is_removal(&self) -> bool {
        self.member.is_none() && self.old.is_some() && self.new.is_none()
    }

    /// Whether the item itself was added.
    pub fn is_addition(&self) -> bool {
        self.member.is_none() && self.old.is_none() && self.new.is_some()
    }
}

/// The size of a page on x86: the limit of every page-overlaid structure.
pub const PAGE_SIZE: u64 = 4096;

/// Structures that Xen or a toolstack hands to a guest as one frame of their own, found in
/// `start_info`: `shared_info` (`start_info.shared_info`, `XENMAPSPACE_shared_info`), the
/// xenstore ring page (`start_info.store_mfn`) and the console ring page
/// (`start_info.console.domU.mfn`). Shared rings (`*_sring`) are recognised by shape, see
/// [`is_shared_ring`].
pub const PAGE_OVERLAID: &[&str] = &[
    "struct shared_info",
    "struct xenstore_domain_interface",
    "struct xencons_interface",
];

/// The HVM save records that Xen loads zero-extended (`hvm_load_entry_zeroextend` in the
/// hypervisor, not in the headers): a stream from an older Xen may carry them shorter.
pub const ZERO_EXTENDED_SAVE_RECORDS: &[&str] = &[
    "CPU",
    "VIRIDIAN_DOMAIN",
    "VIRIDIAN_VCPU",
    "RTC",
    "LAPIC",
    "VMCE_VCPU",
];

/// The prefix of the structs `DECLARE_HVM_SAVE_TYPE` declares to encode a save record's
/// type code and compat flag in array lengths: never laid out in memory.
const SAVE_TYPE_PREFIX: &str = "struct __HVM_SAVE_TYPE_";

/// Whether a removed or changed member was only padding (its space may be reused).
fn is_padding(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    let last = last.split('[').next().unwrap_or(last);
    let bare = last.trim_start_matches('_');
    ["pad", "reserved", "rsvd", "res", "spare", "unused"]
        .iter()
        .any(|p| {
            bare.strip_prefix(p)
                .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '_'))
        })
}

/// Whether a record is a shared ring (`DEFINE_RING_TYPES`): a struct named `*_sring` whose
/// last member is an array of `union *_sring_entry`. Its entry count is computed from the
/// page it is overlaid on, so the ring lives in a page of its own.
fn is_shared_ring(key: &str, record: &Record) -> bool {
    key.starts_with("struct ")
        && key.ends_with("_sring")
        && record
            .tail_member()
            .is_some_and(|m| m.ty.starts_with("union ") && m.ty.contains("_sring_entry["))
}

/// Whether a constant names a bound of a set that grows by adding members (a count, a
/// maximum, a mask or union of all flags): raising it is how new members are added.
fn is_growing_bound(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.ends_with("_MAX")
        || upper.ends_with("_COUNT")
        || upper.ends_with("_ALL")
        || upper.ends_with("_MASK")
        || upper.contains("NR_")
        || upper.contains("_MAX_")
}

/// Whether a constant is an interface version (`XEN_DOMCTL_INTERFACE_VERSION`,
/// `__XEN_LATEST_INTERFACE_VERSION__`, ...).
pub fn is_interface_version(name: &str) -> bool {
    name.trim_end_matches('_').ends_with("INTERFACE_VERSION") && name != "__XEN_INTERFACE_VERSION__"
}

/// One element type `T` of a one-element array spelling `T[1]`.
fn one_element(ty: &str) -> Option<&str> {
    ty.strip_suffix("[1]")
}

/// The item keys (kind and name as shown in changes) of a snapshot.
pub fn item_keys(s: &Snapshot) -> BTreeSet<(ItemKind, String)> {
    let mut out = BTreeSet::new();
    out.extend(s.records.keys().map(|k| (ItemKind::Record, k.clone())));
    out.extend(
        s.typedefs
            .keys()
            .map(|k| (ItemKind::Typedef, format!("typedef {k}"))),
    );
    out.extend(s.enums.keys().map(|k| (ItemKind::Enum, k.clone())));
    out.extend(s.constants.keys().map(|k| (ItemKind::Constant, k.clone())));
    out
}

/// Compares two snapshots of one ABI with the layout rules (no interface versions).
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
    fold_guest_handles(&mut d.out);
    d.out
}

/// The two compilations of one tree, per ABI.
#[derive(Debug, Clone, Copy)]
pub struct Views<'a> {
    /// With `__XEN_TOOLS__`.
    pub tools: &'a BTreeMap<Abi, Snapshot>,
    /// As a guest at the old tree's interface version.
    pub guest: &'a BTreeMap<Abi, Snapshot>,
}

/// Compares two trees on every ABI both were extracted for: stable items in the guest
/// views, tools-only items in the tools views, judged by their interface versions.
pub fn diff(old: Views<'_>, new: Views<'_>) -> Vec<Change> {
    let mut out = Vec::new();
    for abi in Abi::ALL {
        let (Some(to), Some(tn), Some(go), Some(gn)) = (
            old.tools.get(&abi),
            new.tools.get(&abi),
            old.guest.get(&abi),
            new.guest.get(&abi),
        ) else {
            continue;
        };
        let (ko, kn) = (item_keys(go), item_keys(gn));
        // Tools-only: what the tools see and guests do not. An item guests saw in the old
        // tree stays stable even if the new tree hides it from them (that is a removal).
        let mut tools_keys: BTreeSet<(ItemKind, String)> =
            item_keys(to).difference(&ko).cloned().collect();
        tools_keys.extend(
            item_keys(tn)
                .into_iter()
                .filter(|k| !kn.contains(k) && !ko.contains(k)),
        );
        let key = |c: &Change| (c.kind, c.item.clone());
        let (lost_g, lost_t) = (no_longer_compiles(go, gn), no_longer_compiles(to, tn));
        let mut changes: Vec<Change> = diff_abi(abi, go, gn)
            .into_iter()
            .filter(|c| !tools_keys.contains(&key(c)))
            .filter(|c| !(c.is_removal() && lost_g.contains(&c.header)))
            .collect();
        for c in &mut changes {
            if c.is_removal() && tn_has(tn, c) {
                c.reason = format!("{}; guests no longer see it (now tools-only)", c.reason);
            }
        }
        let mut tools: Vec<Change> = diff_abi(abi, to, tn)
            .into_iter()
            .filter(|c| tools_keys.contains(&key(c)))
            .filter(|c| !(c.is_removal() && lost_t.contains(&c.header)))
            .collect();
        for c in &mut tools {
            c.scope = Scope::Tools;
        }
        let versioned = wholly_tools_only(&[to, tn], &tools_keys);
        judge_tools(&mut tools, to, tn, &versioned);
        changes.extend(tools);
        judge_bumps(&mut changes);
        out.extend(changes);
    }
    out
}

/// Headers that compiled in the old snapshot and do not in the new one. Their items are
/// not reported as removed: [`header_checks`] reports the header instead.
pub fn no_longer_compiles(old: &Snapshot, new: &Snapshot) -> BTreeSet<String> {
    new.skipped
        .iter()
        .filter(|s| old.headers.contains(&s.header))
        .map(|s| s.header.clone())
        .collect()
}

/// One rule per ABI and view: every header that compiled in the old tree still compiles
/// in the new one (a header that stops compiling breaks every user's build, and its
/// types cannot be compared).
pub fn header_checks(old: Views<'_>, new: Views<'_>) -> Vec<Check> {
    let mut out = Vec::new();
    for abi in Abi::ALL {
        for (view, o, n) in [
            ("guest", old.guest.get(&abi), new.guest.get(&abi)),
            ("tools", old.tools.get(&abi), new.tools.get(&abi)),
        ] {
            let (Some(o), Some(n)) = (o, n) else { continue };
            let lost: Vec<String> = n
                .skipped
                .iter()
                .filter(|s| o.headers.contains(&s.header))
                .map(|s| {
                    let items = o.records.values().filter(|r| r.header == s.header).count()
                        + o.typedefs.values().filter(|t| t.header == s.header).count()
                        + o.enums.values().filter(|e| e.header == s.header).count()
                        + o.constants
                            .values()
                            .filter(|c| c.header == s.header)
                            .count();
                    format!(
                        "{} ({}; its {items} items were not compared)",
                        s.header, s.error
                    )
                })
                .collect();
            out.push(Check {
                abi,
                rule: format!("headers still compile ({view} view)"),
                passed: lost.is_empty(),
                detail: if lost.is_empty() {
                    format!("all {} headers of the old tree compile", o.headers.len())
                } else {
                    format!("no longer compile: {}", lost.join("; "))
                },
            });
        }
    }
    out
}

fn tn_has(tn: &Snapshot, c: &Change) -> bool {
    item_keys(tn).contains(&(c.kind, c.item.clone()))
}

/// The interface versions defined in each header: `*_INTERFACE_VERSION` constants other
/// than the guest interface's own, with their values.
fn versions_by_header(s: &Snapshot) -> BTreeMap<&str, Vec<(&str, i128)>> {
    let mut out: BTreeMap<&str, Vec<(&str, i128)>> = BTreeMap::new();
    for (name, c) in &s.constants {
        if is_interface_version(name) && !name.starts_with("__") {
            out.entry(c.header.as_str())
                .or_default()
                .push((name.as_str(), c.value));
        }
    }
    out
}

/// The headers all of whose items (apart from interface version constants) are tools-only,
/// in every snapshot given: an interface version they define covers the whole header.
/// A header that mixes stable and tools-only items (e.g. `hvm/hvm_op.h`, whose
/// `HVMOP_ALTP2M_INTERFACE_VERSION` covers altp2m only) gives its tools-only parts no
/// version.
fn wholly_tools_only(
    snapshots: &[&Snapshot],
    tools_keys: &BTreeSet<(ItemKind, String)>,
) -> BTreeSet<String> {
    let mut headers: BTreeMap<&str, bool> = BTreeMap::new();
    for s in snapshots {
        let items = s
            .records
            .iter()
            .map(|(k, r)| ((ItemKind::Record, k.clone()), &r.header))
            .chain(
                s.typedefs
                    .iter()
                    .map(|(k, t)| ((ItemKind::Typedef, format!("typedef {k}")), &t.header)),
            )
            .chain(
                s.enums
                    .iter()
                    .map(|(k, e)| ((ItemKind::Enum, k.clone()), &e.header)),
            )
            .chain(
                s.constants
                    .iter()
                    .filter(|(k, _)| !is_interface_version(k))
                    .map(|(k, c)| ((ItemKind::Constant, k.clone()), &c.header)),
            );
        for (key, header) in items {
            let tools = tools_keys.contains(&key);
            let entry = headers.entry(header.as_str()).or_insert(true);
            *entry &= tools;
        }
    }
    headers
        .into_iter()
        .filter(|(_, all)| *all)
        .map(|(h, _)| h.to_string())
        .collect()
}

/// How the reasons of the rules that keep every existing byte and value begin: renames,
/// aliases, respellings, signedness, flexible arrays, zero-size members, growing bounds,
/// widening into padding, new members and padding reuse. Every other change of an existing
/// item changes its layout or a value.
const KEEPS_EVERY_BYTE: &[&str] = &[
    "renamed: ",
    "retyped, but its old bytes",
    "the name moved; its old bytes",
    "its anonymous parent is now",
    "the anonymous type is now",
    "a zero-size member was removed",
    "one-element array became a flexible array member",
    "size changed; it shrank only because its last member",
    "respelled ",
    "same 32 bits",
    "a bound of a set that grows",
    "widened into the padding",
    // A member added changes no existing byte by itself (a new union alternative, or a
    // field in former padding); a record that grows has its own size change.
    "member added",
    "padding ",
];

/// Whether a change alters the layout or a value that existing users rely on: anything
/// but an addition or a rule that keeps every byte ([`KEEPS_EVERY_BYTE`]).
pub fn changes_layout(c: &Change) -> bool {
    !c.is_addition() && !KEEPS_EVERY_BYTE.iter().any(|p| c.reason.starts_with(p))
}

/// Judges the layout changes of tools-only items (see [`changes_layout`]; additions need
/// no bump) by the interface version of their header (one of `versioned`, see
/// [`wholly_tools_only`]): raised with them, they are compatible (old tools are refused
/// cleanly); not raised, they are a BREAK, even where the stable rules would allow them
/// (a member added, a sub-op struct grown inside its union): Xen compares the version, not
/// the layout. A header without one gives tools built with the hypervisor.
pub fn judge_tools(
    changes: &mut [Change],
    old: &Snapshot,
    new: &Snapshot,
    versioned: &BTreeSet<String>,
) {
    let (mut vo, mut vn) = (versions_by_header(old), versions_by_header(new));
    vo.retain(|h, _| versioned.contains(*h));
    vn.retain(|h, _| versioned.contains(*h));
    for c in changes.iter_mut() {
        if !changes_layout(c) || (c.kind == ItemKind::Constant && is_interface_version(&c.item)) {
            continue;
        }
        let header = c.header.as_str();
        let olds = vo.get(header).cloned().unwrap_or_default();
        let news = vn.get(header).cloned().unwrap_or_default();
        if olds.is_empty() && news.is_empty() {
            if c.verdict != Verdict::Break {
                continue;
            }
            c.verdict = Verdict::Compatible;
            c.versioning = Some(Versioning::Unversioned);
            c.reason = format!(
                "{}; tools-only, and {header} has no interface version: the tools are \
                 built with the hypervisor",
                c.reason
            );
            continue;
        }
        let bumped = olds.iter().find_map(|(name, ov)| {
            news.iter()
                .find(|(n, nv)| n == name && nv > ov)
                .map(|(_, nv)| format!("{name} {ov:#x} -> {nv:#x}"))
        });
        match bumped {
            Some(bump) => {
                c.verdict = Verdict::Compatible;
                c.versioning = Some(Versioning::Bumped);
                c.reason = format!("{}; {bump}: old tools are refused cleanly", c.reason);
            }
            None => {
                c.verdict = Verdict::Break;
                let names: Vec<String> = olds
                    .iter()
                    .map(|(n, v)| format!("{n} still {v:#x}"))
                    .collect();
                c.versioning = Some(Versioning::NotBumped);
                c.reason = format!(
                    "{}; interface version not bumped ({})",
                    c.reason,
                    if names.is_empty() {
                        "the old tree has none".to_string()
                    } else {
                        names.join(", ")
                    }
                );
            }
        }
    }
}

/// An interface version that was raised is compatible (a bump); lowered, a BREAK.
fn judge_bumps(changes: &mut [Change]) {
    for c in changes.iter_mut() {
        if c.kind != ItemKind::Constant || !is_interface_version(&c.item) {
            continue;
        }
        let value = |s: &Option<Slot>| {
            s.as_ref()
                .and_then(|s| s.value.as_ref())
                .and_then(|v| v.parse::<i128>().ok())
        };
        if let (Some(o), Some(n)) = (value(&c.old), value(&c.new)) {
            c.versioning = Some(Versioning::Bump);
            if n > o {
                c.verdict = Verdict::Compatible;
                c.reason = format!("interface version bumped {o:#x} -> {n:#x}");
            } else {
                c.verdict = Verdict::Break;
                c.reason = format!("interface version lowered {o:#x} -> {n:#x}");
            }
        }
    }
}

/// The guest handle names `DEFINE_XEN_GUEST_HANDLE(name)` declares.
fn guest_handle_base(name: &str) -> Option<&str> {
    let bare = name.strip_prefix("typedef ").unwrap_or(name);
    [
        "__guest_handle_64_const_",
        "__guest_handle_64_",
        "__guest_handle_const_",
        "__guest_handle_",
    ]
    .iter()
    .find_map(|p| bare.strip_prefix(p))
}

/// Removed guest handles of a removed typedef are reported with that typedef, not as
/// removals of their own.
fn fold_guest_handles(changes: &mut Vec<Change>) {
    let removed: BTreeSet<String> = changes
        .iter()
        .filter(|c| c.is_removal() && c.kind == ItemKind::Typedef)
        .map(|c| c.item.trim_start_matches("typedef ").to_string())
        .collect();
    let mut folded: BTreeMap<String, usize> = BTreeMap::new();
    changes.retain(|c| {
        let base = guest_handle_base(&c.item).filter(|b| c.is_removal() && removed.contains(*b));
        match base {
            Some(b) => {
                *folded.entry(b.to_string()).or_default() += 1;
                false
            }
            None => true,
        }
    });
    for c in changes.iter_mut() {
        if c.kind != ItemKind::Typedef || !c.is_removal() {
            continue;
        }
        if let Some(n) = folded.get(c.item.trim_start_matches("typedef ")) {
            c.reason = format!("{} (with its {n} guest handle types)", c.reason);
        }
    }
}

/// The definition of a removed record, for the report.
fn definition(r: &Record) -> String {
    const SHOWN: usize = 12;
    let top: Vec<&Member> = r.members.iter().filter(|m| !m.name.contains('.')).collect();
    let mut parts: Vec<String> = top
        .iter()
        .take(SHOWN)
        .map(|m| format!("{} {} @{}", m.ty, m.name, m.offset_text()))
        .collect();
    if top.len() > SHOWN {
        parts.push(format!("… {} more", top.len() - SHOWN));
    }
    format!("{{ {} }}", parts.join("; "))
}

struct Differ<'a> {
    abi: Abi,
    old: &'a Snapshot,
    new: &'a Snapshot,
    out: Vec<Change>,
}

/// Why a size change is harmless (`Ok`) or not (`Err`).
type Judged = Result<String, String>;

impl Differ<'_> {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        kind: ItemKind,
        item: &str,
        header: &str,
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
            header: header.to_string(),
            scope: Scope::Stable,
            versioning: None,
            old,
            new,
            verdict,
            reason: reason.into(),
        });
    }

    /// Whether a record's size change is harmless, by the record's own nature or by where
    /// it is held.
    fn size_change_ok(&self, key: &str, depth: usize) -> Judged {
        if depth > 16 {
            return Err("containers nest too deeply to judge".into());
        }
        let (Some(old), Some(new)) = (self.old.records.get(key), self.new.records.get(key)) else {
            return Err("the type is new or gone".into());
        };
        if new.size < old.size {
            if let Some(m) = self.flexible_tail(old, new) {
                return Ok(format!(
                    "it shrank only because its last member {m} became a flexible array"
                ));
            }
        }
        if let Some(why) = self.page_overlaid(key, new) {
            return if new.size <= PAGE_SIZE {
                Ok(format!(
                    "{key} {why}; it stays within its {PAGE_SIZE}-byte limit"
                ))
            } else {
                Err(format!(
                    "{key} {why}, but exceeds its {PAGE_SIZE}-byte limit"
                ))
            };
        }
        if let Some(why) = self.own_size_ok(key) {
            return Ok(why);
        }
        let mut reasons = Vec::new();
        let mut held_by_any = false;
        for (ckey, container) in &self.new.records {
            for m in &container.members {
                if m.ty.starts_with(&format!("{key}[")) {
                    return Err(format!("{ckey}.{} is an array of it", m.name));
                }
                if m.record.as_deref() != Some(key) {
                    continue;
                }
                held_by_any = true;
                let Some(om) = self
                    .old
                    .records
                    .get(ckey)
                    .and_then(|o| o.members.iter().find(|x| x.name == m.name))
                else {
                    reasons.push(format!("{ckey}.{} is new", m.name));
                    continue;
                };
                let why = self.resize_ok(ckey, container, om, m, depth + 1)?;
                reasons.push(format!("{ckey}.{}: {why}", m.name));
            }
        }
        if held_by_any {
            Ok(reasons.join("; "))
        } else {
            Err("the type is used on its own, so its size is part of the ABI".into())
        }
    }

    /// Whether a record's size change is harmless by the record's own nature, wherever it
    /// is held: a flexible-array conversion, or appended members of a zero-extended save
    /// record or of a structure with its own version field.
    fn own_size_ok(&self, key: &str) -> Option<String> {
        let (old, new) = (self.old.records.get(key)?, self.new.records.get(key)?);
        if new.size < old.size {
            if let Some(m) = self.flexible_tail(old, new) {
                return Some(format!(
                    "it shrank only because its last member {m} became a flexible array"
                ));
            }
        }
        if new.size > old.size && self.appended_only(old, new) {
            if let Some(code) = self.zero_extended_save_record(key) {
                return Some(format!(
                    "it is the HVM save record {code}, which Xen loads zero-extended, and \
                     members were only appended"
                ));
            }
            if let Some(v) = self.self_versioned(old) {
                return Some(format!(
                    "members were appended to a structure that carries its own {v} field"
                ));
            }
        }
        None
    }

    /// Whether member `m` of `container` (old form `om`) may change size: shrinking never
    /// moves anything; growing must not reach the next member, and must stay within the
    /// container or be a harmless size change of the container.
    fn resize_ok(
        &self,
        ckey: &str,
        container: &Record,
        om: &Member,
        m: &Member,
        depth: usize,
    ) -> Judged {
        if m.size < om.size {
            if let Some(why) = m
                .record
                .as_deref()
                .and_then(|inner| self.own_size_ok(inner))
            {
                return Ok(format!("shrank: {why}"));
            }
        }
        let (start, end) = (m.offset_bits, m.offset_bits + m.size * 8);
        let old_end = om.offset_bits + om.size * 8;
        let inner = format!("{}.", m.name);
        let in_union = self.in_union(container, &m.name);
        if let Some(next) = container.members.iter().find(|n| {
            n.name != m.name
                && !n.name.starts_with(&inner)
                && !m.name.starts_with(&format!("{}.", n.name))
                && n.offset_bits >= old_end.max(start + 1)
                && n.offset_bits < end
        }) {
            return Err(format!("it now reaches {ckey}.{}", next.name));
        }
        let old_size = self.old.records.get(ckey).map(|r| r.size);
        if end <= container.size * 8 && old_size == Some(container.size) {
            return Ok(if in_union {
                "it changed size within a union whose size is unchanged".into()
            } else {
                "it changed size within the space the container already had".into()
            });
        }
        self.size_change_ok(ckey, depth)
            .map(|why| format!("it is at the end of {ckey}; {why}"))
    }

    /// Whether a (possibly dotted) member lies inside an anonymous or named union of its
    /// container.
    fn in_union(&self, container: &Record, name: &str) -> bool {
        if container.kind == RecordKind::Union {
            return true;
        }
        let mut prefix = name;
        while let Some((parent, _)) = prefix.rsplit_once('.') {
            if let Some(p) = container.members.iter().find(|x| x.name == parent) {
                if p.ty.starts_with("union ") {
                    return true;
                }
            }
            prefix = parent;
        }
        false
    }

    /// Why a record is overlaid on a page of its own, if it is.
    fn page_overlaid(&self, key: &str, record: &Record) -> Option<&'static str> {
        if PAGE_OVERLAID.contains(&key) {
            Some("is a page of its own (start_info hands it to the guest as one frame)")
        } else if is_shared_ring(key, record) {
            Some("is a shared ring (its entry count is computed from its page)")
        } else {
            None
        }
    }

    /// The last member that turned from `T x[1]` into `T x[]`, if that is so.
    fn flexible_tail(&self, old: &Record, new: &Record) -> Option<String> {
        let (ot, nt) = (old.tail_member()?, new.tail_member()?);
        (ot.name == nt.name && ot.offset_bits == nt.offset_bits && is_flexible_of(&ot.ty, &nt.ty))
            .then(|| nt.name.clone())
    }

    /// Whether every old member keeps its place and type (under its name or another) or
    /// was padding, and every other new member lies past the old end.
    fn appended_only(&self, old: &Record, new: &Record) -> bool {
        let same = |a: &Member, b: &Member| {
            a.offset_bits == b.offset_bits && a.ty == b.ty && a.bit_width == b.bit_width
        };
        old.members
            .iter()
            .all(|om| is_padding(&om.name) || new.members.iter().any(|nm| same(nm, om)))
            && new.members.iter().all(|nm| {
                old.members.iter().any(|om| same(om, nm)) || nm.offset_bits >= old.size * 8
            })
    }

    /// The save record code (`CPU`, ...) whose type `key` is, if Xen loads it zero-extended.
    fn zero_extended_save_record(&self, key: &str) -> Option<&'static str> {
        ZERO_EXTENDED_SAVE_RECORDS.iter().copied().find(|code| {
            self.new
                .records
                .get(&format!("{SAVE_TYPE_PREFIX}{code}"))
                .and_then(|r| r.members.iter().find(|m| m.name == "t"))
                .is_some_and(|t| t.record.as_deref() == Some(key))
        })
    }

    /// A `DECLARE_HVM_SAVE_TYPE` struct: only its type code (the length of `c`) is ABI.
    fn save_type(&mut self, key: &str, old: &Record, new: &Record) {
        let code = |r: &Record| {
            r.members
                .iter()
                .find(|m| m.name == "c")
                .map(|m| m.ty.clone())
        };
        if code(old) != code(new) {
            self.push(
                ItemKind::Record,
                key,
                &new.header,
                Some("c"),
                code(old).map(|ty| Slot {
                    ty: Some(ty),
                    ..Slot::default()
                }),
                code(new).map(|ty| Slot {
                    ty: Some(ty),
                    ..Slot::default()
                }),
                Verdict::Break,
                "save record type code changed (the length of c is the code)",
            );
        }
    }

    /// Whether an integer member grew in place over padding members of the old record that
    /// the new one no longer has.
    fn widened_into_padding(&self, om: &Member, nm: &Member) -> bool {
        let scalar = |m: &Member| {
            m.bit_width.is_none() && !m.ty.contains(['[', '{', '*']) && !m.ty.starts_with("struct")
        };
        if !scalar(om) || !scalar(nm) || nm.size <= om.size || nm.offset_bits != om.offset_bits {
            return false;
        }
        let Some(old) = self.old.records.values().find(|r| r.members.contains(om)) else {
            return false;
        };
        let (from, to) = (om.offset_bits + om.size * 8, nm.offset_bits + nm.size * 8);
        let mut covered = from;
        let mut pads: Vec<&Member> = old
            .members
            .iter()
            .filter(|m| is_padding(&m.name) && m.offset_bits >= from && m.offset_bits < to)
            .collect();
        pads.sort_by_key(|m| m.offset_bits);
        for p in pads {
            if p.offset_bits > covered {
                return false;
            }
            covered = covered.max(p.offset_bits + p.size * 8);
        }
        covered >= to
    }

    /// Whether the old anonymous member `om` (flattened as `om.name.*` in the old record)
    /// has the layout of the named record `r` of the new tree (ignoring padding and
    /// zero-size members, allowing renames at the same place and type).
    fn same_layout_as_named(&self, om: &Member, r: &str) -> bool {
        let Some(named) = self.new.records.get(r) else {
            return false;
        };
        let Some(container) = self.old.records.values().find(|c| c.members.contains(om)) else {
            return false;
        };
        let prefix = format!("{}.", om.name);
        container
            .members
            .iter()
            .filter(|m| m.name.starts_with(&prefix) && m.size > 0 && !is_padding(&m.name))
            .all(|m| {
                let rel = m.offset_bits - om.offset_bits;
                named
                    .members
                    .iter()
                    .any(|n| n.offset_bits == rel && n.ty == m.ty && n.bit_width == m.bit_width)
            })
    }

    /// For a gone member `a.b.c` whose ancestor `a.b` now holds a named record with the old
    /// anonymous layout, that record's name.
    fn now_named(&self, new: &Record, name: &str) -> Option<String> {
        let mut prefix = name;
        while let Some((parent, _)) = prefix.rsplit_once('.') {
            if let Some(p) = new.members.iter().find(|m| m.name == parent) {
                let r = p.record.as_ref()?;
                let old_parent = self
                    .old
                    .records
                    .values()
                    .flat_map(|c| c.members.iter())
                    .find(|m| m.name == parent && m.ty.ends_with("{…}"))?;
                return self.same_layout_as_named(old_parent, r).then(|| r.clone());
            }
            prefix = parent;
        }
        None
    }

    /// The name of a top-level `version` member, if the record carries one.
    fn self_versioned(&self, old: &Record) -> Option<String> {
        old.members
            .iter()
            .find(|m| m.name == "version" && m.bit_width.is_none())
            .map(|m| m.name.clone())
    }

    /// A member of the new record at the old member's place with the given type, other than
    /// `name`, that is either new or was already at that place (an alias of it, as in a
    /// union): then the old bytes keep their meaning under that name. A member that merely
    /// moved there (two members swapped) does not count.
    fn alias<'r>(&self, new: &'r Record, at: &Member, ty: &str, name: &str) -> Option<&'r Member> {
        let old = self.old.records.values().find(|r| r.members.contains(at));
        new.members.iter().find(|m| {
            m.name != name
                && m.offset_bits == at.offset_bits
                && m.ty == ty
                && m.bit_width == at.bit_width
                && old.is_none_or(|o| {
                    o.members
                        .iter()
                        .find(|x| x.name == m.name)
                        .is_none_or(|x| x.offset_bits == at.offset_bits)
                })
        })
    }

    fn records(&mut self) {
        for (key, old) in &self.old.records {
            let Some(new) = self.new.records.get(key) else {
                self.push(
                    ItemKind::Record,
                    key,
                    &old.header,
                    None,
                    Some(Slot::size(old.size, Some(&definition(old)))),
                    None,
                    Verdict::Break,
                    "removed",
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
                    &new.header,
                    None,
                    None,
                    Some(Slot::size(new.size, None)),
                    Verdict::Compatible,
                    format!("new type ({})", new.header),
                );
            }
        }
    }

    /// The verdict on an old member that is gone from the new record.
    fn member_gone(&self, new: &Record, om: &Member) -> (Verdict, String) {
        if is_padding(&om.name) {
            return (
                Verdict::Compatible,
                "padding removed (its space may be reused)".into(),
            );
        }
        if let Some(a) = self.alias(new, om, &om.ty, &om.name) {
            return (
                Verdict::Compatible,
                format!("renamed: the same bytes and type are now {}", a.name),
            );
        }
        if om.size == 0 && !om.ty.ends_with("[]") {
            return (
                Verdict::Compatible,
                "a zero-size member was removed: it held no bytes".into(),
            );
        }
        if let Some(r) = self.now_named(new, &om.name) {
            return (
                Verdict::Compatible,
                format!("its anonymous parent is now {r} with the same layout"),
            );
        }
        (Verdict::Break, "member removed".into())
    }

    /// The verdict on a member whose type spelling changed in place.
    fn member_retyped(&self, new: &Record, om: &Member, nm: &Member) -> (Verdict, String) {
        if is_padding(&om.name) {
            return (Verdict::Compatible, "padding changed".into());
        }
        if is_flexible_of(&om.ty, &nm.ty) && new.tail_member().map(|t| &t.name) == Some(&nm.name) {
            return (
                Verdict::Compatible,
                "one-element array became a flexible array member: same offset and element \
                 type, no byte moves"
                    .into(),
            );
        }
        if let Some(a) = self.alias(new, om, &om.ty, &om.name) {
            return (
                Verdict::Compatible,
                format!("retyped, but its old bytes and type are still {}", a.name),
            );
        }
        if self.widened_into_padding(om, nm) {
            return (
                Verdict::Compatible,
                "widened into the padding that followed it: on little-endian x86 (and Arm) \
                 its old bytes keep their meaning, the padding was zero"
                    .into(),
            );
        }
        if let Some(r) = nm.record.as_ref().filter(|_| om.ty.ends_with("{…}")) {
            if self.same_layout_as_named(om, r) {
                return (
                    Verdict::Compatible,
                    format!("the anonymous type is now {r} with the same layout"),
                );
            }
        }
        (Verdict::Break, "member type changed".into())
    }

    fn record(&mut self, key: &str, old: &Record, new: &Record) {
        if key.starts_with(SAVE_TYPE_PREFIX) {
            return self.save_type(key, old, new);
        }
        let new_members: BTreeMap<&str, &Member> =
            new.members.iter().map(|m| (m.name.as_str(), m)).collect();
        let old_names: BTreeSet<&str> = old.members.iter().map(|m| m.name.as_str()).collect();
        let header = new.header.clone();
        for om in &old.members {
            let Some(nm) = new_members.get(om.name.as_str()) else {
                let (verdict, reason) = self.member_gone(new, om);
                self.push(
                    ItemKind::Record,
                    key,
                    &header,
                    Some(&om.name),
                    Some(Slot::member(om)),
                    None,
                    verdict,
                    reason,
                );
                continue;
            };
            let (old_slot, new_slot) = (Slot::member(om), Slot::member(nm));
            let judged = if om.offset_bits != nm.offset_bits {
                if is_padding(&om.name) {
                    Some((Verdict::Compatible, "padding moved".to_string()))
                } else if let Some(a) = self.alias(new, om, &om.ty, &om.name) {
                    Some((
                        Verdict::Compatible,
                        format!(
                            "the name moved; its old bytes and type are still {}",
                            a.name
                        ),
                    ))
                } else {
                    Some((Verdict::Break, "member moved".to_string()))
                }
            } else if om.ty != nm.ty || om.bit_width != nm.bit_width {
                Some(self.member_retyped(new, om, nm))
            } else if om.size != nm.size {
                Some(match self.resize_ok(key, new, om, nm, 0) {
                    Ok(why) => (Verdict::Compatible, format!("member resized: {why}")),
                    Err(why) => (Verdict::Break, format!("member resized: {why}")),
                })
            } else {
                None
            };
            if let Some((verdict, reason)) = judged {
                self.push(
                    ItemKind::Record,
                    key,
                    &header,
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
                    &header,
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
                &header,
                Some("(size)"),
                Some(Slot::size(old.size, None)),
                Some(Slot::size(new.size, None)),
                verdict,
                reason,
            );
        }
        if old.align != new.align && self.zero_extended_save_record(key).is_none() {
            self.push(
                ItemKind::Record,
                key,
                &header,
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
            // A typedef naming an anonymous record shares its name with it: the record's
            // entry reports it.
            if old.record.as_deref() == Some(name.as_str()) {
                continue;
            }
            let item = format!("typedef {name}");
            let old_slot = Slot::size(old.size, Some(&old.ty));
            match self.new.typedefs.get(name) {
                None => self.push(
                    ItemKind::Typedef,
                    &item,
                    &old.header,
                    None,
                    Some(old_slot),
                    None,
                    Verdict::Break,
                    "removed",
                ),
                Some(new) => {
                    let new_slot = Slot::size(new.size, Some(&new.ty));
                    if old.ty != new.ty {
                        self.push(
                            ItemKind::Typedef,
                            &item,
                            &new.header,
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
                            &new.header,
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
            if new.record.as_deref() == Some(name.as_str()) {
                continue;
            }
            if !self.old.typedefs.contains_key(name) {
                self.push(
                    ItemKind::Typedef,
                    &format!("typedef {name}"),
                    &new.header,
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
                    &old.header,
                    None,
                    Some(Slot::size(old.size, Some(&old.constants.join(", ")))),
                    None,
                    Verdict::Break,
                    "removed",
                ),
                Some(new) if new.size != old.size => self.push(
                    ItemKind::Enum,
                    name,
                    &new.header,
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
                    &new.header,
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
        // The interface version a consumer chose is not a fact of the headers.
        let chosen = |name: &str| name == "__XEN_INTERFACE_VERSION__";
        for (name, old) in self.old.constants.iter().filter(|(n, _)| !chosen(n)) {
            match self.new.constants.get(name) {
                None => {
                    // Respelled: a constant new in the same header, with the old value and
                    // the same name but for underscores and case (AVX512IFMA -> AVX512_IFMA).
                    let renamed = self.new.constants.iter().find(|(n, c)| {
                        c.header == old.header
                            && c.value == old.value
                            && !self.old.constants.contains_key(*n)
                            && same_spelling(n, name)
                    });
                    let (verdict, reason) = match renamed {
                        Some((n, _)) => (
                            Verdict::Compatible,
                            format!("respelled {n} (same value, same header)"),
                        ),
                        None => (Verdict::Break, "removed".to_string()),
                    };
                    self.push(
                        ItemKind::Constant,
                        name,
                        &old.header,
                        None,
                        Some(Slot::value(old.value)),
                        None,
                        verdict,
                        reason,
                    )
                }
                Some(new) if new.value != old.value => {
                    let (verdict, reason) = constant_change(name, old.value, new.value);
                    self.push(
                        ItemKind::Constant,
                        name,
                        &new.header,
                        None,
                        Some(Slot::value(old.value)),
                        Some(Slot::value(new.value)),
                        verdict,
                        reason,
                    )
                }
                Some(_) => {}
            }
        }
        for (name, new) in self.new.constants.iter().filter(|(n, _)| !chosen(n)) {
            if !self.old.constants.contains_key(name) {
                self.push(
                    ItemKind::Constant,
                    name,
                    &new.header,
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

/// Whether two names differ only in underscores and case.
fn same_spelling(a: &str, b: &str) -> bool {
    let bare = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    bare(a) == bare(b)
}

/// Whether `new` is the flexible array form (`T[]`) of the one-element array `old` (`T[1]`).
fn is_flexible_of(old: &str, new: &str) -> bool {
    one_element(old).is_some_and(|t| new.strip_suffix("[]") == Some(t))
}

/// The verdict on a constant whose value changed.
fn constant_change(name: &str, old: i128, new: i128) -> (Verdict, String) {
    let fits32 = |v: i128| (-(1i128 << 31)..(1i128 << 32)).contains(&v);
    if fits32(old) && fits32(new) && (old & 0xffff_ffff) == (new & 0xffff_ffff) {
        return (
            Verdict::Compatible,
            "same 32 bits, only the C type's signedness changed".into(),
        );
    }
    if is_growing_bound(name) && new > old {
        return (
            Verdict::Compatible,
            "a bound of a set that grows (count, maximum or mask) rose with new members".into(),
        );
    }
    (Verdict::Break, "constant value changed".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_names() {
        for name in [
            "pad",
            "pad0",
            "_pad",
            "__pad[2]",
            "u.pad1",
            "reserved1",
            "rsvd",
            "_pad_0",
        ] {
            assert!(is_padding(name), "{name}");
        }
        for name in ["p2m_cr3", "spad", "u.data", "result", "padding_mode"] {
            assert!(!is_padding(name), "{name}");
        }
    }

    #[test]
    fn flexible_array_spellings() {
        assert!(is_flexible_of(
            "union blkif_sring_entry[1]",
            "union blkif_sring_entry[]"
        ));
        assert!(!is_flexible_of("unsigned int[2]", "unsigned int[]"));
        assert!(!is_flexible_of("unsigned int[1]", "unsigned long[]"));
    }

    #[test]
    fn constant_rules() {
        assert_eq!(
            constant_change("GNTTAB_X", -(1 << 31), 1 << 31).0,
            Verdict::Compatible
        );
        assert_eq!(
            constant_change("HVM_NR_PARAMS", 38, 39).0,
            Verdict::Compatible
        );
        assert_eq!(constant_change("HVM_NR_PARAMS", 39, 38).0, Verdict::Break);
        assert_eq!(
            constant_change("XENMEM_access_default", 10, 11).0,
            Verdict::Break
        );
    }

    #[test]
    fn interface_versions() {
        assert!(is_interface_version("XEN_DOMCTL_INTERFACE_VERSION"));
        assert!(is_interface_version("__XEN_LATEST_INTERFACE_VERSION__"));
        assert!(!is_interface_version("__XEN_INTERFACE_VERSION__"));
        assert!(!is_interface_version("XEN_DOMCTL_INTERFACE_VERSION_X"));
    }

    #[test]
    fn guest_handles_of_a_typedef() {
        assert_eq!(
            guest_handle_base("__guest_handle_64_const_foo_t"),
            Some("foo_t")
        );
        assert_eq!(
            guest_handle_base("typedef __guest_handle_foo_t"),
            Some("foo_t")
        );
        assert_eq!(guest_handle_base("struct foo"), None);
    }
}
