// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The one error type of this crate. Each variant names the value that was
//! wrong and, where a user can act, what to do.

use crate::types::{DomId, Mfn, Pfn};

/// Everything that can go wrong, from a missing device to a hostile guest.
/// [`Error::class`] says whose fault each is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- Environment: the host, the device, the hypervisor interface ----
    /// `/dev/xen/privcmd` (or `/dev/xen/hypercall`) does not exist.
    #[error("{path} not found: this is not a Xen dom0, or the xen-privcmd module is not loaded (try `modprobe xen-privcmd`)")]
    NoPrivcmd {
        /// The missing device node.
        path: &'static str,
    },
    /// Opening a device failed for another reason.
    #[error("cannot open {path}: {source} (run as root in dom0)")]
    Open {
        /// The device node.
        path: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// A hypercall returned an error.
    #[error("hypercall {name} failed: {errno}{hint}")]
    Hypercall {
        /// Which hypercall (e.g. `domctl getdomaininfo`).
        name: &'static str,
        /// The errno Xen or the kernel returned.
        errno: nix::errno::Errno,
        /// What to do about it, or empty.
        hint: &'static str,
    },
    /// Mapping a frame failed (a per-frame error of a batched map, or the
    /// mmap itself).
    #[error("mapping frame {frame:#x} (entry {index} of a batch of {count}) of domain {dom} failed: {errno}")]
    MapFrame {
        /// The domain whose frame was mapped.
        dom: DomId,
        /// The frame number.
        frame: u64,
        /// Its index in the batch.
        index: usize,
        /// Frames in the batch.
        count: usize,
        /// The error.
        errno: nix::errno::Errno,
    },
    /// The domain does not exist.
    #[error("domain {0} does not exist")]
    NoSuchDomain(DomId),
    /// The domain is not a PV guest, so it has no guest-maintained p2m.
    #[error("domain {0} is not a PV guest (HVM and PVH guests have no guest p2m to read)")]
    NotPv(DomId),
    /// Xen reported a guest address size that is neither 32 nor 64 bits.
    #[error("domain {dom} has guest address size {bits} bits; only 32 and 64 are understood")]
    BadGuestWidth {
        /// The domain.
        dom: DomId,
        /// What Xen reported.
        bits: u64,
    },
    /// A value read from the hypervisor is out of the range we understand.
    #[error("hypervisor returned an unexpected {what}: {value:#x}")]
    Unexpected {
        /// What the value is.
        what: &'static str,
        /// The value.
        value: u64,
    },

    // ---- Guest data: shared_info, page tables, list, tree ----
    // (reading rules of docs/design.md section 4; each names the bad value)
    /// Xen refused to map a frame that the guest's page tables or tree
    /// named: the guest pointed at memory it does not own (Xen's, another
    /// domain's, or a hole).
    #[error("frame {frame:#x} named by domain {dom}'s p2m structures cannot be mapped ({errno}): the guest points at memory it does not own")]
    GuestFrameUnmappable {
        /// The domain.
        dom: DomId,
        /// The frame the guest named.
        frame: u64,
        /// Xen's per-frame error.
        errno: nix::errno::Errno,
    },
    /// `max_pfn` is 0 or above the bound.
    #[error("max_pfn {value:#x} out of range (must be 1..={bound:#x})")]
    BadMaxPfn {
        /// The guest's value.
        value: u64,
        /// The largest value accepted.
        bound: u64,
    },
    /// A pfn outside `[0, max_pfn)` was asked for.
    #[error("pfn {pfn} is not below max_pfn {max_pfn:#x}")]
    PfnOutOfRange {
        /// The pfn asked for.
        pfn: Pfn,
        /// The p2m's entry count.
        max_pfn: u64,
    },
    /// `p2m_cr3` has bits set outside the frame field (64-bit guests).
    #[error("p2m_cr3 {cr3:#x} of domain {dom} has stray bits {stray:#x} outside the frame field")]
    P2mCr3StrayBits {
        /// The guest.
        dom: DomId,
        /// The guest's value.
        cr3: u64,
        /// The bits that must be clear.
        stray: u64,
    },
    /// `p2m_cr3` names mfn 0 or an mfn above the host's maximum.
    #[error("p2m_cr3 {cr3:#x} of domain {dom} names mfn {mfn}, which is 0 or above the host's maximum {max_mfn}")]
    P2mCr3Frame {
        /// The guest.
        dom: DomId,
        /// The guest's value.
        cr3: u64,
        /// The mfn it decodes to.
        mfn: Mfn,
        /// The host's largest mfn.
        max_mfn: Mfn,
    },
    /// `p2m_vaddr` is not page aligned.
    #[error("p2m_vaddr {vaddr:#x} of domain {dom} is not page aligned")]
    P2mVaddrUnaligned {
        /// The guest.
        dom: DomId,
        /// The guest's value.
        vaddr: u64,
    },
    /// The list of `max_pfn` entries at `p2m_vaddr` wraps around the
    /// address space.
    #[error("p2m list of domain {dom} at {vaddr:#x} with {max_pfn:#x} entries overflows the address space")]
    P2mListOverflow {
        /// The guest.
        dom: DomId,
        /// The guest's `p2m_vaddr`.
        vaddr: u64,
        /// The guest's `max_pfn`.
        max_pfn: u64,
    },
    /// A 64-bit guest's list starts or ends at a non-canonical address,
    /// or spans the non-canonical gap.
    #[error("p2m list of domain {dom} at {vaddr:#x}..={end:#x} is not canonical")]
    P2mVaddrNonCanonical {
        /// The guest.
        dom: DomId,
        /// First byte of the list.
        vaddr: u64,
        /// Last byte of the list.
        end: u64,
    },
    /// A 64-bit guest's list overlaps Xen's hole
    /// `0xffff800000000000..=0xffff87ffffffffff`.
    #[error("p2m list of domain {dom} at {vaddr:#x}..={end:#x} overlaps the Xen hole 0xffff800000000000..=0xffff87ffffffffff")]
    P2mVaddrXenHole {
        /// The guest.
        dom: DomId,
        /// First byte of the list.
        vaddr: u64,
        /// Last byte of the list.
        end: u64,
    },
    /// A 32-bit guest's list reaches Xen's area at `0xf5800000`.
    #[error("p2m list of 32-bit domain {dom} at {vaddr:#x}..={end:#x} is not below {limit:#x}")]
    P2mVaddrAbove32 {
        /// The guest.
        dom: DomId,
        /// First byte of the list.
        vaddr: u64,
        /// Last byte of the list.
        end: u64,
        /// The first address the list must stay below.
        limit: u64,
    },
    /// A page-table entry on the way to the list is not present.
    #[error("level-{level} page-table entry {pte:#x} for vaddr {vaddr:#x} of domain {dom} is not present")]
    PteNotPresent {
        /// The guest.
        dom: DomId,
        /// Page-table level of the entry (1 = maps a leaf).
        level: u8,
        /// Virtual address the entry maps.
        vaddr: u64,
        /// The entry.
        pte: u64,
    },
    /// A page-table entry on the way to the list maps a superpage (PSE),
    /// which the list format does not allow.
    #[error("level-{level} page-table entry {pte:#x} for vaddr {vaddr:#x} of domain {dom} has the superpage (PSE) bit set")]
    PteSuperpage {
        /// The guest.
        dom: DomId,
        /// Page-table level of the entry.
        level: u8,
        /// Virtual address the entry maps.
        vaddr: u64,
        /// The entry.
        pte: u64,
    },
    /// A page-table entry names frame 0 or a frame above the host's
    /// maximum.
    #[error("level-{level} page-table entry {pte:#x} for vaddr {vaddr:#x} of domain {dom} names mfn {mfn}, which is 0 or above the host's maximum {max_mfn}")]
    PteFrame {
        /// The guest.
        dom: DomId,
        /// Page-table level of the entry.
        level: u8,
        /// Virtual address the entry maps.
        vaddr: u64,
        /// The entry.
        pte: u64,
        /// The frame it names.
        mfn: Mfn,
        /// The host's largest mfn.
        max_mfn: Mfn,
    },
    /// `p2m_generation` stayed odd (an update in progress) on every
    /// attempt.
    #[error("p2m_generation of domain {dom} was odd ({generation:#x}: an update in progress) on all {attempts} attempts; the guest may be stuck mid-update, try again later")]
    GenerationOdd {
        /// The guest.
        dom: DomId,
        /// The last value seen.
        generation: u64,
        /// Attempts made.
        attempts: u32,
    },
    /// The p2m changed during every attempt to read it.
    #[error("p2m of domain {dom} changed during each of {attempts} reads (generation {first:#x} before, {last:#x} after the last one); the guest is changing its p2m too fast, try again later")]
    GenerationUnstable {
        /// The guest.
        dom: DomId,
        /// Generation before the last attempt.
        first: u64,
        /// Generation after the last attempt.
        last: u64,
        /// Attempts made.
        attempts: u32,
    },
    /// A p2m entry does not round-trip through the M2P.
    #[error("p2m of domain {dom} maps pfn {pfn} to mfn {mfn}, but the M2P says {m2p:?}")]
    M2pMismatch {
        /// The guest.
        dom: DomId,
        /// The pfn.
        pfn: Pfn,
        /// Its p2m entry.
        mfn: Mfn,
        /// What the M2P holds for `mfn` (`None`: beyond the M2P).
        m2p: Option<Pfn>,
    },
    /// The linear list was asked for, but `p2m_cr3` is 0.
    #[error("domain {dom} does not publish a linear p2m list (p2m_cr3 is 0)")]
    ListNotPublished {
        /// The guest.
        dom: DomId,
    },
    /// The tree root is 0: the guest has not set up its p2m tree.
    #[error("domain {dom} has not set up its p2m tree (pfn_to_mfn_frame_list_list is 0; linear list published: {list})")]
    TreeNotSetUp {
        /// The guest.
        dom: DomId,
        /// Whether the guest publishes the linear list instead.
        list: bool,
    },
    /// The tree root is `~0`: the guest dropped its tree.
    #[error("domain {dom} dropped its p2m tree (pfn_to_mfn_frame_list_list is ~0; linear list published: {list})")]
    TreeDropped {
        /// The guest.
        dom: DomId,
        /// Whether the guest publishes the linear list instead.
        list: bool,
    },
    /// The tree root names an mfn above the host's maximum.
    #[error("p2m tree root {root:#x} of domain {dom} is above the host's maximum mfn {max_mfn}")]
    TreeRoot {
        /// The guest.
        dom: DomId,
        /// The guest's `pfn_to_mfn_frame_list_list`.
        root: u64,
        /// The host's largest mfn.
        max_mfn: Mfn,
    },
    /// `max_pfn` needs more root entries than one page holds.
    #[error("max_pfn {max_pfn:#x} of domain {dom} exceeds what a 3-level p2m tree can describe ({capacity:#x} entries); read the linear list instead")]
    TreeTooSmall {
        /// The guest.
        dom: DomId,
        /// The guest's `max_pfn`.
        max_pfn: u64,
        /// Entries a tree of this width can describe.
        capacity: u64,
    },
    /// An entry of the tree's root or mid pages is 0 or above the host's
    /// maximum.
    #[error("p2m tree {level} page entry {index} of domain {dom} is {value:#x}, which is 0 or above the host's maximum mfn {max_mfn}")]
    TreeEntry {
        /// The guest.
        dom: DomId,
        /// `"root"` (entries name mid pages) or `"mid"` (entries name
        /// leaves).
        level: &'static str,
        /// Index of the entry (mid: counted over all mid pages).
        index: u64,
        /// The entry.
        value: u64,
        /// The host's largest mfn.
        max_mfn: Mfn,
    },

    // ---- Dump-core files (`hv-feature core`): every number in the file
    // is hostile. `CoreIo` is an environment error (the file cannot be
    // read), `CoreNotPv` a usage one (a dump of a guest kind without a
    // guest p2m); the others are data errors.
    /// The core file cannot be opened or read.
    #[error("cannot read core file {path:?}: {source}")]
    CoreIo {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The core file is the dump of a guest without a guest-maintained p2m.
    #[error("the core file is not the dump of a PV guest: {why}")]
    CoreNotPv {
        /// What shows it.
        why: &'static str,
    },
    /// The ELF header or a section header of a core file is malformed.
    #[error("not a valid Xen dump-core file: bad {what} {value:#x}")]
    CoreFormat {
        /// The field.
        what: &'static str,
        /// Its value.
        value: u64,
    },
    /// A section of a core file is out of bounds or of the wrong size.
    #[error("core file section {name} (offset {offset:#x}, size {size:#x}, file length {file_len:#x}) {what}")]
    CoreSection {
        /// The section's name.
        name: &'static str,
        /// What is wrong with it.
        what: &'static str,
        /// Its `sh_offset`.
        offset: u64,
        /// Its `sh_size`.
        size: u64,
        /// The file's length.
        file_len: u64,
    },
    /// A section a PV guest's core must have is missing.
    #[error("core file has no {name} section")]
    CoreMissingSection {
        /// The section's name.
        name: &'static str,
    },
    /// A note of `.note.Xen` is malformed.
    #[error("core file .note.Xen: bad {what} {value:#x}")]
    CoreNote {
        /// What is wrong.
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// A note the format requires is missing.
    #[error("core file .note.Xen has no {note} note")]
    CoreMissingNote {
        /// The note type's name.
        note: &'static str,
    },
    /// An entry of `.xen_p2m` is malformed.
    #[error("core file .xen_p2m entry {index} {{pfn {pfn:#x}, gmfn {gmfn:#x}}} {what}")]
    CoreP2mEntry {
        /// The entry's index.
        index: u64,
        /// Its pfn.
        pfn: u64,
        /// Its gmfn.
        gmfn: u64,
        /// What is wrong.
        what: &'static str,
    },
    /// The guest's page tables (or p2m) name a frame the dump does not
    /// hold.
    #[error(
        "frame {mfn:#x} (entry {index} of a batch of {count}) is not in the core file's .xen_p2m"
    )]
    CoreFrameMissing {
        /// The frame.
        mfn: u64,
        /// Its index in the batch.
        index: usize,
        /// Frames in the batch.
        count: usize,
    },

    // ---- Xen host crash dumps (`hv-feature vmcore`): every number in the
    // file is hostile. `VmcoreIo` is an environment error (the file cannot
    // be read); the others are data errors.
    /// The crash dump cannot be opened or read.
    #[error("cannot read crash dump {path:?}: {source}")]
    VmcoreIo {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The ELF header of a crash dump is malformed or of a kind not read.
    #[error("not a Xen host crash dump this tool reads (an ELF64 x86_64 core such as /proc/vmcore after a Xen crash): bad {what} {value:#x}")]
    VmcoreFormat {
        /// The field.
        what: &'static str,
        /// Its value.
        value: u64,
    },
    /// A program header of a crash dump is out of bounds or inconsistent.
    #[error("crash dump program header {index} ({kind}, offset {offset:#x}, file size {size:#x}, file length {file_len:#x}) {what}")]
    VmcoreSegment {
        /// Its index in the program header table.
        index: u64,
        /// `PT_LOAD` or `PT_NOTE`.
        kind: &'static str,
        /// What is wrong with it.
        what: &'static str,
        /// Its `p_offset`.
        offset: u64,
        /// Its `p_filesz`.
        size: u64,
        /// The file's length.
        file_len: u64,
    },
    /// Two `PT_LOAD` segments describe the same machine memory.
    #[error("crash dump PT_LOAD {first} (machine {first_start:#x}..{first_end:#x}) overlaps PT_LOAD {second} (machine {second_start:#x}..): each machine address may be dumped once; the dump is corrupt")]
    VmcoreOverlap {
        /// Program header index of the lower segment.
        first: u64,
        /// Its first machine address.
        first_start: u64,
        /// Its end (exclusive).
        first_end: u64,
        /// Program header index of the other segment.
        second: u64,
        /// Its first machine address.
        second_start: u64,
    },
    /// A note header of a crash dump is malformed.
    #[error("crash dump note at file offset {offset:#x}: bad {what} {value:#x}")]
    VmcoreNote {
        /// File offset of the note header.
        offset: u64,
        /// What is wrong.
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// A note Xen writes once appears twice.
    #[error("crash dump has two {note} notes (at file offsets {first:#x} and {second:#x}); Xen writes one, so the dump is corrupt")]
    VmcoreDuplicateNote {
        /// The note type's name.
        note: &'static str,
        /// File offset of the first.
        first: u64,
        /// File offset of the second.
        second: u64,
    },
    /// The descriptor of a known note holds a value that cannot be right.
    #[error("crash dump note {note}: bad {what} {value:#x}")]
    VmcoreNoteField {
        /// The note type's name.
        note: &'static str,
        /// The field, and what is wrong with it.
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// Nothing in the dump locates dom0's p2m.
    #[error("cannot locate dom0's p2m in this crash dump: {why}")]
    VmcoreNoP2m {
        /// Why, and what to do.
        why: String,
    },
    /// dom0's list was being changed when Xen crashed.
    #[error("dom0 was changing the mappings of its p2m list when Xen crashed (p2m_generation {generation:#x} is odd), so the list in the dump may be torn; {hint}")]
    VmcoreGenerationOdd {
        /// The generation recorded in the note.
        generation: u64,
        /// What to do.
        hint: &'static str,
    },
    /// dom0's page tables (or p2m) name a machine frame the dump does not
    /// hold.
    #[error("machine frame {mfn:#x} (entry {index} of a batch of {count}) is not in the crash dump (no PT_LOAD holds its whole page)")]
    VmcoreFrameMissing {
        /// The frame.
        mfn: u64,
        /// Its index in the batch.
        index: usize,
        /// Frames in the batch.
        count: usize,
    },
}

/// Whose fault an [`Error`] is, which decides what a caller does about it
/// (the CLI: exit 1 for [`ErrorClass::GuestData`], 2 for the others).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Data a guest or a dump file controls failed a check: its
    /// shared_info, page tables, list, tree, M2P round trip, generation, or
    /// a dump's headers and notes. Nothing about the host is wrong.
    GuestData,
    /// The host: the device, permissions, the hypervisor interface, a file
    /// that cannot be read.
    Environment,
    /// The caller's request does not fit what exists: a domain that is
    /// not there or not PV, a pfn beyond the view, a dump of a guest kind
    /// without a guest p2m.
    Usage,
}

impl Error {
    /// The class of this error. Every variant is classified here on
    /// purpose (no wildcard): a new variant does not compile until it is.
    pub fn class(&self) -> ErrorClass {
        use ErrorClass::{Environment, GuestData, Usage};
        match self {
            Error::NoPrivcmd { .. }
            | Error::Open { .. }
            | Error::Hypercall { .. }
            | Error::MapFrame { .. }
            | Error::BadGuestWidth { .. }
            | Error::Unexpected { .. }
            | Error::CoreIo { .. }
            | Error::VmcoreIo { .. } => Environment,
            Error::NoSuchDomain(_)
            | Error::NotPv(_)
            | Error::PfnOutOfRange { .. }
            | Error::CoreNotPv { .. } => Usage,
            Error::GuestFrameUnmappable { .. }
            | Error::BadMaxPfn { .. }
            | Error::P2mCr3StrayBits { .. }
            | Error::P2mCr3Frame { .. }
            | Error::P2mVaddrUnaligned { .. }
            | Error::P2mListOverflow { .. }
            | Error::P2mVaddrNonCanonical { .. }
            | Error::P2mVaddrXenHole { .. }
            | Error::P2mVaddrAbove32 { .. }
            | Error::PteNotPresent { .. }
            | Error::PteSuperpage { .. }
            | Error::PteFrame { .. }
            | Error::GenerationOdd { .. }
            | Error::GenerationUnstable { .. }
            | Error::M2pMismatch { .. }
            | Error::ListNotPublished { .. }
            | Error::TreeNotSetUp { .. }
            | Error::TreeDropped { .. }
            | Error::TreeRoot { .. }
            | Error::TreeTooSmall { .. }
            | Error::TreeEntry { .. }
            | Error::CoreFormat { .. }
            | Error::CoreSection { .. }
            | Error::CoreMissingSection { .. }
            | Error::CoreNote { .. }
            | Error::CoreMissingNote { .. }
            | Error::CoreP2mEntry { .. }
            | Error::CoreFrameMissing { .. }
            | Error::VmcoreFormat { .. }
            | Error::VmcoreSegment { .. }
            | Error::VmcoreOverlap { .. }
            | Error::VmcoreNote { .. }
            | Error::VmcoreDuplicateNote { .. }
            | Error::VmcoreNoteField { .. }
            | Error::VmcoreNoP2m { .. }
            | Error::VmcoreGenerationOdd { .. }
            | Error::VmcoreFrameMissing { .. } => GuestData,
        }
    }

    /// True when the error is about data the guest (or dump) controls:
    /// `self.class() == ErrorClass::GuestData`.
    pub fn is_guest_data(&self) -> bool {
        self.class() == ErrorClass::GuestData
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::errno::Errno;

    #[test]
    fn only_the_host_and_the_caller_are_not_guest_data() {
        let io = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let env = [
            Error::NoPrivcmd { path: "/dev/x" },
            Error::Open {
                path: "/dev/x",
                source: io(),
            },
            Error::Hypercall {
                name: "x",
                errno: Errno::EPERM,
                hint: "",
            },
            Error::MapFrame {
                dom: DomId(1),
                frame: 1,
                index: 0,
                count: 1,
                errno: Errno::EFAULT,
            },
            Error::BadGuestWidth {
                dom: DomId(1),
                bits: 16,
            },
            Error::Unexpected {
                what: "x",
                value: 0,
            },
            Error::CoreIo {
                path: "f".into(),
                source: io(),
            },
            Error::VmcoreIo {
                path: "f".into(),
                source: io(),
            },
        ];
        for e in &env {
            assert_eq!(e.class(), ErrorClass::Environment, "{e}");
            assert!(!e.is_guest_data(), "{e}");
        }
        let usage = [
            Error::NoSuchDomain(DomId(9)),
            Error::NotPv(DomId(9)),
            Error::PfnOutOfRange {
                pfn: Pfn(5),
                max_pfn: 5,
            },
            Error::CoreNotPv { why: "HVM" },
        ];
        for e in &usage {
            assert_eq!(e.class(), ErrorClass::Usage, "{e}");
        }
        // Values a guest writes, and values a dump holds.
        let dom = DomId(3);
        let data = [
            Error::GuestFrameUnmappable {
                dom,
                frame: 7,
                errno: Errno::EPERM,
            },
            Error::BadMaxPfn { value: 0, bound: 1 },
            Error::P2mCr3StrayBits {
                dom,
                cr3: 1,
                stray: 1,
            },
            Error::PteFrame {
                dom,
                level: 1,
                vaddr: 0,
                pte: 1,
                mfn: Mfn(0),
                max_mfn: Mfn(9),
            },
            Error::GenerationOdd {
                dom,
                generation: 1,
                attempts: 8,
            },
            Error::M2pMismatch {
                dom,
                pfn: Pfn(1),
                mfn: Mfn(2),
                m2p: None,
            },
            Error::ListNotPublished { dom },
            Error::TreeDropped { dom, list: true },
            Error::CoreFrameMissing {
                mfn: 1,
                index: 0,
                count: 1,
            },
            Error::VmcoreNoP2m { why: "x".into() },
            Error::VmcoreGenerationOdd {
                generation: 3,
                hint: "",
            },
        ];
        for e in &data {
            assert_eq!(e.class(), ErrorClass::GuestData, "{e}");
            assert!(e.is_guest_data(), "{e}");
        }
    }
}
