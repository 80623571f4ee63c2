// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Offline analysis of a Xen host crash dump: the ELF64 core that a kdump
//! kernel saves as `/proc/vmcore` after Xen crashed, as a fourth
//! [`Backend`], so that the same hardened reader ([`crate::p2m::P2m::read`])
//! rebuilds dom0's p2m from the dump's machine memory. [`read()`] picks the
//! structure, rebuilds it and compares the list with the tree.
//!
//! The format: `ET_CORE`, `EM_X86_64`; one `PT_LOAD` per range of machine
//! memory, whose `p_paddr` is the **machine** address (kexec-tools builds
//! the crash kernel's ELF header from Xen's machine memory map; `p_vaddr`
//! is not used); `PT_NOTE` segments (the crash kernel merges them into one)
//! holding, per CPU, a `"CORE"` `NT_PRSTATUS` and a `"Xen"`
//! `XEN_ELFNOTE_CRASH_REGS`; once, with CPU 0's notes, a `"Xen"`
//! `XEN_ELFNOTE_CRASH_INFO` (`crash_xen_info_t`, whose last word is dom0's
//! tree root and the one before `xen_phys_start`) and, on a Xen with this
//! project's patches, a `"Xen"` [`XEN_ELFNOTE_CRASH_DOM0_P2M`] with dom0's
//! `max_pfn`, tree root, `p2m_cr3`, `p2m_vaddr` and `p2m_generation`; and a
//! `"VMCOREINFO_XEN"` text note.
//!
//! The backend answers the reader's calls for dom0 (a paused PV
//! domain of the note's width, whose `shared_info` is a pseudo frame
//! holding the note's values, see [`VmcoreFile::set_dom0`]; the host's
//! largest mfn is the largest frame the dump holds) and maps machine frames
//! from the `PT_LOAD`s. A frame not wholly inside one `PT_LOAD`'s file
//! bytes is [`Error::VmcoreFrameMissing`].
//!
//! Every number in the file is hostile: header fields, program headers
//! (offsets, sizes, overlapping loads), note headers and descriptors are
//! checked with checked arithmetic before anything is read or allocated.
//! Memory is bounded by the program header table (at most 65534 entries),
//! the notes (at most 16 MiB) and what the reader maps (distinct pages
//! that the dump holds); pages are read lazily, one `pread` each.

mod read;

pub use read::{read, ListTree, MaxPfnFrom, NoteState, TreeState, VmcoreReport, NO_NOTE_NOTICE};

use crate::backend::{Backend, Mapping, Mem};
use crate::domain::DomainInfo;
use crate::dump_core::{OfflineDomain, SHARED_INFO_FRAME};
use crate::elf::{self, EHDR_SIZE, EM_X86_64};
use crate::error::Error;
use crate::le::{u16_at, u32_at, u64_at};
use crate::shared_info::ArchSharedInfo;
use crate::sys::Pages;
use crate::types::{DomId, GuestWidth, Mfn, PAGE_SIZE};
use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The domain whose p2m a host crash dump is read for.
pub const DOM0: DomId = DomId(0);

/// `XEN_ELFNOTE_CRASH_INFO`: `crash_xen_info_t`.
pub const XEN_ELFNOTE_CRASH_INFO: u32 = xen_sys::XEN_ELFNOTE_CRASH_INFO;
/// `XEN_ELFNOTE_CRASH_REGS`: per CPU, `crash_xen_core_t`.
pub const XEN_ELFNOTE_CRASH_REGS: u32 = xen_sys::XEN_ELFNOTE_CRASH_REGS;
/// `XEN_ELFNOTE_CRASH_DOM0_P2M`: dom0's linear p2m at the crash.
pub const XEN_ELFNOTE_CRASH_DOM0_P2M: u32 = xen_sys::XEN_ELFNOTE_CRASH_DOM0_P2M;
/// `XEN_CRASH_DOM0_P2M_PV`: a PV hardware domain existed at the crash.
pub const XEN_CRASH_DOM0_P2M_PV: u32 = xen_sys::XEN_CRASH_DOM0_P2M_PV;
/// `XEN_CRASH_DOM0_P2M_COMPAT`: it is a 32-bit PV domain.
pub const XEN_CRASH_DOM0_P2M_COMPAT: u32 = xen_sys::XEN_CRASH_DOM0_P2M_COMPAT;
/// Bytes of a version 1 `xen_crash_dom0_p2m_t`.
pub const DOM0_P2M_V1_SIZE: usize = 48;

// The descriptor is read at the offsets of the patched public header.
const _: () = {
    use std::mem::{offset_of, size_of};
    use xen_sys::xen_crash_dom0_p2m as N;
    assert!(size_of::<N>() == DOM0_P2M_V1_SIZE);
    assert!(offset_of!(N, version) == 0 && offset_of!(N, flags) == 4);
    assert!(offset_of!(N, max_pfn) == 8);
    assert!(offset_of!(N, pfn_to_mfn_frame_list_list) == 16);
    assert!(offset_of!(N, p2m_cr3) == 24 && offset_of!(N, p2m_vaddr) == 32);
    assert!(offset_of!(N, p2m_generation) == 40);
    assert!(xen_sys::XEN_CRASH_DOM0_P2M_VERSION == 1);
};
/// Bytes of an x86_64 `crash_xen_info_t` (ten `unsigned long`s).
pub const CRASH_INFO_SIZE: usize = 80;

const NT_PRSTATUS: u32 = 1;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PHDR_SIZE: usize = 56;
/// `PN_XNUM`: extended program header numbering (not read).
const PN_XNUM: u16 = 0xffff;
/// Most note bytes read, over all `PT_NOTE`s (Xen's notes take about
/// 600 bytes per CPU).
const MAX_NOTE_BYTES: u64 = 16 << 20;
/// Machine addresses end at 2^52, so frames stay below
/// [`SHARED_INFO_FRAME`].
const MAX_MACHINE_ADDR: u64 = 1 << 52;
/// Longest `OSRELEASE` kept from `VMCOREINFO_XEN`.
const MAX_RELEASE: usize = 64;
/// Batches of at least this many frames show progress on a terminal.
const PROGRESS_MIN_FRAMES: usize = 4096;

/// One `PT_LOAD`: machine memory `paddr..paddr + filesz` at file `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Load {
    /// Its index in the program header table.
    pub index: u64,
    /// `p_paddr`: the machine address of its first byte.
    pub paddr: u64,
    /// `p_offset`.
    pub offset: u64,
    /// `p_filesz`: bytes in the file.
    pub filesz: u64,
    /// `p_memsz`.
    pub memsz: u64,
}

/// The `XEN_ELFNOTE_CRASH_DOM0_P2M` descriptor (the fields of version 1;
/// a later version's extra bytes are ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Dom0P2mNote {
    /// `version` (at least 1).
    pub version: u32,
    /// `flags`: [`XEN_CRASH_DOM0_P2M_PV`], [`XEN_CRASH_DOM0_P2M_COMPAT`].
    pub flags: u32,
    /// dom0's `max_pfn`.
    pub max_pfn: u64,
    /// dom0's tree root (`~0` or `0xffffffff`: dropped).
    pub pfn_to_mfn_frame_list_list: u64,
    /// dom0's `p2m_cr3` (0: the list is not published).
    pub p2m_cr3: u64,
    /// dom0's `p2m_vaddr`.
    pub p2m_vaddr: u64,
    /// dom0's `p2m_generation`.
    pub p2m_generation: u64,
    /// The note's `n_descsz`.
    pub descsz: u32,
}

impl Dom0P2mNote {
    /// Decodes and checks a descriptor: at least the 48 bytes of version
    /// 1, a version of at least 1, and for a 32-bit dom0 values that fit
    /// in 32 bits (they are zero-extended).
    pub fn decode(desc: &[u8]) -> Result<Dom0P2mNote, Error> {
        let bad = |what, value| Error::VmcoreNoteField {
            note: "XEN_ELFNOTE_CRASH_DOM0_P2M",
            what,
            value,
        };
        if desc.len() < DOM0_P2M_V1_SIZE {
            return Err(bad(
                "n_descsz (smaller than the 48 bytes of version 1)",
                desc.len() as u64,
            ));
        }
        let n = Dom0P2mNote {
            version: u32_at(desc, 0),
            flags: u32_at(desc, 4),
            max_pfn: u64_at(desc, 8),
            pfn_to_mfn_frame_list_list: u64_at(desc, 16),
            p2m_cr3: u64_at(desc, 24),
            p2m_vaddr: u64_at(desc, 32),
            p2m_generation: u64_at(desc, 40),
            descsz: desc.len() as u32,
        };
        if n.version == 0 {
            return Err(bad("version (must be at least 1)", 0));
        }
        if n.compat() {
            for (what, v) in [
                ("max_pfn of a 32-bit dom0 (above 32 bits)", n.max_pfn),
                (
                    "pfn_to_mfn_frame_list_list of a 32-bit dom0 (above 32 bits)",
                    n.pfn_to_mfn_frame_list_list,
                ),
                ("p2m_cr3 of a 32-bit dom0 (above 32 bits)", n.p2m_cr3),
                ("p2m_vaddr of a 32-bit dom0 (above 32 bits)", n.p2m_vaddr),
                (
                    "p2m_generation of a 32-bit dom0 (above 32 bits)",
                    n.p2m_generation,
                ),
            ] {
                if v > u32::MAX as u64 {
                    return Err(bad(what, v));
                }
            }
        }
        Ok(n)
    }

    /// A PV hardware domain existed at the crash.
    pub fn pv(&self) -> bool {
        self.flags & XEN_CRASH_DOM0_P2M_PV != 0
    }

    /// dom0 is a 32-bit PV domain.
    pub fn compat(&self) -> bool {
        self.flags & XEN_CRASH_DOM0_P2M_COMPAT != 0
    }

    /// dom0's width.
    pub fn width(&self) -> GuestWidth {
        if self.compat() {
            GuestWidth::W32
        } else {
            GuestWidth::W64
        }
    }
}

/// What `XEN_ELFNOTE_CRASH_INFO` says (x86_64 `crash_xen_info_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CrashInfo {
    /// `xen_major_version`.
    pub xen_major_version: u64,
    /// `xen_minor_version`.
    pub xen_minor_version: u64,
    /// `xen_phys_start`: the word before the last.
    pub xen_phys_start: u64,
    /// `dom0_pfn_to_mfn_frame_list_list`: the last word, dom0's tree root.
    pub dom0_pfn_to_mfn_frame_list_list: u64,
    /// The note's `n_descsz`.
    pub descsz: u32,
}

impl CrashInfo {
    /// Decodes a descriptor of at least [`CRASH_INFO_SIZE`] bytes, a
    /// multiple of 8; the tree root is its last word, as `crash` reads it.
    pub fn decode(desc: &[u8]) -> Result<CrashInfo, Error> {
        if desc.len() < CRASH_INFO_SIZE || desc.len() & 7 != 0 {
            return Err(Error::VmcoreNoteField {
                note: "XEN_ELFNOTE_CRASH_INFO",
                what:
                    "n_descsz (must be a multiple of 8 of at least 80, an x86_64 crash_xen_info_t)",
                value: desc.len() as u64,
            });
        }
        let n = desc.len();
        Ok(CrashInfo {
            xen_major_version: u64_at(desc, 0),
            xen_minor_version: u64_at(desc, 8),
            xen_phys_start: u64_at(desc, n - 16),
            dom0_pfn_to_mfn_frame_list_list: u64_at(desc, n - 8),
            descsz: n as u32,
        })
    }
}

/// What the dump's headers and notes say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VmcoreInfo {
    /// The file's length.
    pub file_len: u64,
    /// `PT_LOAD` segments holding bytes.
    pub loads: u64,
    /// Machine memory bytes the loads hold.
    pub dumped_bytes: u64,
    /// The largest machine frame the dump holds wholly.
    pub max_mfn: u64,
    /// `"CORE"` `NT_PRSTATUS` notes (one per CPU).
    pub prstatus_notes: u64,
    /// `"Xen"` `XEN_ELFNOTE_CRASH_REGS` notes (one per CPU).
    pub crash_regs_notes: u64,
    /// The `XEN_ELFNOTE_CRASH_INFO` note.
    pub crash_info: Option<CrashInfo>,
    /// The `XEN_ELFNOTE_CRASH_DOM0_P2M` note (patched Xen only).
    pub dom0_p2m: Option<Dom0P2mNote>,
    /// File offset of that note's header (`n_namesz`; `n_type` is 8 bytes
    /// further), e.g. to make a copy of the dump without it.
    pub dom0_p2m_offset: Option<u64>,
    /// `OSRELEASE` of the `VMCOREINFO_XEN` note: Xen's version.
    pub xen_release: Option<String>,
}

/// An open Xen host crash dump.
#[derive(Debug)]
pub struct VmcoreFile {
    path: PathBuf,
    file: File,
    info: VmcoreInfo,
    /// Loads with bytes, ascending and disjoint.
    loads: Vec<Load>,
    dom0: OfflineDomain,
    /// The pseudo `shared_info` page of dom0.
    shared_info: Vec<u8>,
    progress: bool,
}

/// A copy of frames read from the dump (`Send` and `Sync`: owned bytes
/// nobody writes once read).
#[derive(Debug)]
pub struct VmcoreMap {
    bytes: Pages,
}

impl Mapping for VmcoreMap {
    fn mem(&self) -> Mem<'_> {
        self.bytes.mem()
    }
}

fn bad(what: &'static str, value: u64) -> Error {
    Error::VmcoreFormat { what, value }
}

/// Rounds a note field up to 4 bytes.
fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|v| v & !3)
}

/// Where notes were seen (file offsets), to refuse duplicates.
#[derive(Default)]
struct Seen {
    crash_info: Option<u64>,
    dom0_p2m: Option<u64>,
}

impl VmcoreFile {
    /// Opens and checks a crash dump: ELF header, program headers, every
    /// note. Memory pages are read only when mapped.
    pub fn open(path: &Path) -> Result<VmcoreFile, Error> {
        let io = |source| Error::VmcoreIo {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut v = VmcoreFile {
            path: path.to_path_buf(),
            file,
            info: VmcoreInfo {
                file_len: len,
                loads: 0,
                dumped_bytes: 0,
                max_mfn: 0,
                prstatus_notes: 0,
                crash_regs_notes: 0,
                crash_info: None,
                dom0_p2m: None,
                dom0_p2m_offset: None,
                xen_release: None,
            },
            loads: Vec::new(),
            dom0: OfflineDomain {
                width: GuestWidth::W64,
                max_mfn: 1,
                tot_pages: 0,
                max_pages: 0,
            },
            shared_info: vec![0; PAGE_SIZE],
            progress: false,
        };
        v.parse(len)?;
        v.dom0.max_mfn = v.info.max_mfn;
        Ok(v)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the headers and notes say.
    pub fn info(&self) -> &VmcoreInfo {
        &self.info
    }

    /// The `PT_LOAD`s that hold bytes, by machine address.
    pub fn loads(&self) -> &[Load] {
        &self.loads
    }

    /// Shows the progress of large reads on stderr (the CLI turns it on
    /// when stderr is a terminal and the output is not JSON).
    pub fn set_progress(&mut self, on: bool) {
        self.progress = on;
    }

    /// Sets what the backend says about dom0: its width, and the
    /// `shared_info` arch fields the reader finds in its pseudo
    /// `shared_info` frame (values a 32-bit layout cannot hold are
    /// truncated, so the caller checks them first).
    pub fn set_dom0(&mut self, width: GuestWidth, arch: &ArchSharedInfo) {
        self.dom0.width = width;
        self.shared_info = vec![0; PAGE_SIZE];
        arch.encode(&mut self.shared_info, width);
    }

    /// Reads the whole page of machine frame `mfn`.
    pub fn read_frame(&self, mfn: u64) -> Result<Vec<u8>, Error> {
        let mut page = vec![0u8; PAGE_SIZE];
        let at = self.frame_offset(mfn).ok_or(Error::VmcoreFrameMissing {
            mfn,
            index: 0,
            count: 1,
        })?;
        self.read_at(&mut page, at)?;
        Ok(page)
    }

    /// The file offset of frame `mfn`, if one load holds its whole page.
    pub fn frame_offset(&self, mfn: u64) -> Option<u64> {
        let addr = mfn.checked_mul(PAGE_SIZE as u64)?;
        let end = addr.checked_add(PAGE_SIZE as u64)?;
        let i = self
            .loads
            .partition_point(|l| l.paddr <= addr)
            .checked_sub(1)?;
        let l = &self.loads[i];
        // paddr + filesz was checked not to overflow.
        (end <= l.paddr + l.filesz).then(|| l.offset + (addr - l.paddr))
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), Error> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|source| Error::VmcoreIo {
                path: self.path.clone(),
                source,
            })
    }

    fn parse(&mut self, len: u64) -> Result<(), Error> {
        if len < EHDR_SIZE as u64 {
            return Err(bad("file length (shorter than an ELF64 header)", len));
        }
        let mut eh = [0u8; EHDR_SIZE];
        self.read_at(&mut eh, 0)?;
        let machine = elf::core_machine(
            &eh,
            "EI_CLASS (must be ELFCLASS64 = 2; save the dump with a 64-bit crash kernel)",
        )
        .map_err(|(what, value)| bad(what, value))?;
        if machine != EM_X86_64 {
            return Err(bad("e_machine (must be EM_X86_64 = 62)", machine as u64));
        }
        let phoff = u64_at(&eh, 32);
        let phentsize = u16_at(&eh, 54);
        let phnum = u16_at(&eh, 56);
        if phentsize as usize != PHDR_SIZE {
            return Err(bad("e_phentsize (must be 56)", phentsize as u64));
        }
        if phnum == 0 {
            return Err(bad("e_phnum (a crash dump has program headers)", 0));
        }
        if phnum == PN_XNUM {
            return Err(bad(
                "e_phnum (extended numbering PN_XNUM is not read)",
                phnum as u64,
            ));
        }
        let table = phnum as u64 * PHDR_SIZE as u64;
        match phoff.checked_add(table) {
            Some(end) if end <= len => {}
            _ => {
                return Err(bad(
                    "e_phoff (the program header table is not in the file)",
                    phoff,
                ))
            }
        }
        let mut ph = vec![0u8; table as usize];
        self.read_at(&mut ph, phoff)?;

        let mut notes = Vec::new();
        let mut note_bytes = 0u64;
        for (i, b) in ph.chunks_exact(PHDR_SIZE).enumerate() {
            let kind = u32_at(b, 0);
            let offset = u64_at(b, 8);
            let paddr = u64_at(b, 24);
            let filesz = u64_at(b, 32);
            let memsz = u64_at(b, 40);
            let seg = |kind, what| Error::VmcoreSegment {
                index: i as u64,
                kind,
                what,
                offset,
                size: filesz,
                file_len: len,
            };
            let name = match kind {
                PT_LOAD => "PT_LOAD",
                PT_NOTE => "PT_NOTE",
                _ => continue,
            };
            if !matches!(offset.checked_add(filesz), Some(e) if e <= len) {
                return Err(seg(name, "does not lie inside the file"));
            }
            if kind == PT_NOTE {
                note_bytes += filesz;
                if note_bytes > MAX_NOTE_BYTES {
                    return Err(seg(name, "brings the notes past 16 MiB"));
                }
                notes.push((offset, filesz));
                continue;
            }
            if filesz > memsz {
                return Err(seg(name, "has p_filesz larger than p_memsz"));
            }
            if !matches!(paddr.checked_add(memsz), Some(e) if e <= MAX_MACHINE_ADDR) {
                return Err(seg(
                    name,
                    "reaches past machine address 2^52 (p_paddr + p_memsz)",
                ));
            }
            if filesz > 0 {
                self.loads.push(Load {
                    index: i as u64,
                    paddr,
                    offset,
                    filesz,
                    memsz,
                });
            }
        }
        if self.loads.is_empty() {
            return Err(bad("number of PT_LOAD segments with bytes", 0));
        }
        self.loads.sort_by_key(|l| l.paddr);
        for w in self.loads.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            if b.paddr < a.paddr + a.memsz {
                return Err(Error::VmcoreOverlap {
                    first: a.index,
                    first_start: a.paddr,
                    first_end: a.paddr + a.memsz,
                    second: b.index,
                    second_start: b.paddr,
                });
            }
        }
        self.info.loads = self.loads.len() as u64;
        self.info.dumped_bytes = self.loads.iter().map(|l| l.filesz).sum();
        self.info.max_mfn = self
            .loads
            .iter()
            .filter(|l| l.filesz >= PAGE_SIZE as u64)
            .map(|l| (l.paddr + l.filesz) / PAGE_SIZE as u64 - 1)
            .max()
            .unwrap_or(0);
        if self.info.max_mfn == 0 {
            return Err(bad(
                "largest machine frame held (no whole page above frame 0)",
                0,
            ));
        }

        let mut seen = Seen::default();
        for (offset, size) in notes {
            let mut buf = vec![0u8; size as usize];
            self.read_at(&mut buf, offset)?;
            self.parse_notes(&buf, offset, &mut seen)?;
        }
        Ok(())
    }

    fn parse_notes(&mut self, nb: &[u8], base: u64, seen: &mut Seen) -> Result<(), Error> {
        let mut at = 0usize;
        while at < nb.len() {
            let rest = &nb[at..];
            let offset = base + at as u64;
            if rest.iter().all(|&b| b == 0) {
                // Zero padding after the last note.
                break;
            }
            let note = |what, value| Error::VmcoreNote {
                offset,
                what,
                value,
            };
            if rest.len() < 12 {
                return Err(note(
                    "note header (truncated), bytes left in the PT_NOTE",
                    rest.len() as u64,
                ));
            }
            let namesz = u32_at(rest, 0) as usize;
            let descsz = u32_at(rest, 4) as usize;
            let kind = u32_at(rest, 8);
            let desc_at = align4(namesz)
                .and_then(|n| n.checked_add(12))
                .filter(|&d| d <= rest.len())
                .ok_or(note(
                    "n_namesz (the name runs past the PT_NOTE)",
                    namesz as u64,
                ))?;
            let desc = desc_at
                .checked_add(descsz)
                .and_then(|e| rest.get(desc_at..e))
                .ok_or(note(
                    "n_descsz (the descriptor runs past the PT_NOTE)",
                    descsz as u64,
                ))?;
            // The last note's padding may be cut off.
            let next = align4(descsz)
                .and_then(|d| d.checked_add(desc_at))
                .map_or(rest.len(), |n| n.min(rest.len()));
            let name = &rest[12..12 + namesz];
            let name = name.strip_suffix(b"\0").unwrap_or(name);
            match (name, kind) {
                (b"CORE", NT_PRSTATUS) => self.info.prstatus_notes += 1,
                (b"Xen", XEN_ELFNOTE_CRASH_REGS) => self.info.crash_regs_notes += 1,
                (b"Xen", XEN_ELFNOTE_CRASH_INFO) => {
                    if let Some(first) = seen.crash_info.replace(offset) {
                        return Err(Error::VmcoreDuplicateNote {
                            note: "XEN_ELFNOTE_CRASH_INFO",
                            first,
                            second: offset,
                        });
                    }
                    self.info.crash_info = Some(CrashInfo::decode(desc)?);
                }
                (b"Xen", XEN_ELFNOTE_CRASH_DOM0_P2M) => {
                    if let Some(first) = seen.dom0_p2m.replace(offset) {
                        return Err(Error::VmcoreDuplicateNote {
                            note: "XEN_ELFNOTE_CRASH_DOM0_P2M",
                            first,
                            second: offset,
                        });
                    }
                    self.info.dom0_p2m = Some(Dom0P2mNote::decode(desc)?);
                    self.info.dom0_p2m_offset = Some(offset);
                }
                (b"VMCOREINFO_XEN", _) => self.info.xen_release = os_release(desc),
                // Other notes (e.g. a kernel's VMCOREINFO) are skipped.
                _ => {}
            }
            at += next;
        }
        Ok(())
    }
}

/// The `OSRELEASE=` line of a VMCOREINFO text, printable ASCII only.
fn os_release(desc: &[u8]) -> Option<String> {
    let text = &desc[..desc.iter().position(|&b| b == 0).unwrap_or(desc.len())];
    text.split(|&b| b == b'\n').find_map(|line| {
        let v = line.strip_prefix(b"OSRELEASE=")?;
        let v = &v[..v.len().min(MAX_RELEASE)];
        v.iter()
            .all(|b| b.is_ascii_graphic())
            .then(|| String::from_utf8_lossy(v).into_owned())
    })
}

impl Backend for VmcoreFile {
    type Map = VmcoreMap;

    fn domain_info(&self, dom: DomId) -> Result<DomainInfo, Error> {
        Ok(self.dom0.domain_info(dom))
    }

    fn guest_width(&self, _dom: DomId) -> Result<GuestWidth, Error> {
        Ok(self.dom0.width)
    }

    fn max_mfn(&self) -> Result<Mfn, Error> {
        Ok(self.dom0.max_mfn())
    }

    fn map_frames(&self, _dom: DomId, frames: &[Mfn]) -> Result<VmcoreMap, Error> {
        // Every frame must be in the dump before anything is allocated.
        let mut at = Vec::with_capacity(frames.len());
        for (index, &Mfn(f)) in frames.iter().enumerate() {
            if f == SHARED_INFO_FRAME {
                at.push(None);
                continue;
            }
            let off = self.frame_offset(f).ok_or(Error::VmcoreFrameMissing {
                mfn: f,
                index,
                count: frames.len(),
            })?;
            at.push(Some(off));
        }
        let show = self.progress && frames.len() >= PROGRESS_MIN_FRAMES;
        let mut bytes = Pages::zeroed(frames.len());
        let pages = bytes.bytes_mut().chunks_mut(PAGE_SIZE);
        for (i, (off, out)) in at.iter().zip(pages).enumerate() {
            match off {
                Some(o) => self.read_at(out, *o)?,
                None => out.copy_from_slice(&self.shared_info),
            }
            if show && i % 1024 == 0 {
                eprint!(
                    "\rvmcore: reading frame {} of {} ({}%)",
                    i,
                    frames.len(),
                    i * 100 / frames.len()
                );
                let _ = std::io::stderr().flush();
            }
        }
        if show {
            eprintln!("\rvmcore: read {} frames                    ", frames.len());
        }
        Ok(VmcoreMap { bytes })
    }
}
