// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Offline analysis of an `xl dump-core` file: a third [`Backend`], over
//! the file instead of a hypervisor, so that the same hardened reader
//! ([`crate::p2m::P2m::read`]) rebuilds a PV guest's p2m from the
//! `p2m_cr3`/`p2m_vaddr` in the dump's own `shared_info` and page tables.
//! [`compare`] then checks it against the dump's `.xen_p2m`, which libxc
//! wrote from the live guest when the dump was made.
//!
//! The format (Xen's `docs/misc/dump-core-format.txt`, the notes of
//! `xen/include/public/elfnote.h`): an `ELFCLASS64` `ET_CORE` file with no
//! program headers and these sections, found by name:
//!
//! | section | contents |
//! |---|---|
//! | `.note.Xen` | notes named `"Xen"`: none, header (magic, vcpus, pages, page size), Xen version, format version |
//! | `.xen_prstatus` | `vcpu_guest_context_any_t[nr_vcpus]` |
//! | `.xen_shared_info` | the guest's `shared_info` page (optional) |
//! | `.xen_pages` | `nr_pages` pages |
//! | `.xen_p2m` | `{pfn, gmfn}[nr_pages]` for a PV guest: entry `i` describes page `i`, pfn-ascending, `{~0, ~0}` padding at the end |
//!
//! `e_machine` is `EM_X86_64` for a 64-bit PV guest and `EM_386` for a
//! 32-bit one, whatever the dumping dom0 is.
//!
//! Every number in the file is treated as hostile: offsets, sizes and
//! counts are checked against the file's length with checked arithmetic
//! before anything is read or allocated, so memory is bounded by the
//! file's own size (the page index: about 40 bytes per page of the dump,
//! at most 2^32 pages) and the pages themselves are read lazily, one
//! `pread` per mapped frame.
//! Every failure is a typed [`Error`] naming the value.
//!
//! The backend answers the calls the reader makes: the domain's info (a
//! PV domain whose `shared_info_frame` is [`SHARED_INFO_FRAME`], a pseudo
//! frame that maps `.xen_shared_info`), its width (from `e_machine`) and
//! the host's maximum mfn (the dump's largest gmfn: every frame the
//! guest's page tables name must be in the dump). Other calls fail as a
//! Xen without them would (`ENOSYS`). Mapping a frame that is not in the
//! dump fails with [`Error::CoreFrameMissing`].

mod compare;

pub use compare::{compare, CoreMismatch, CoreReport};

use crate::backend::{Backend, Mapping, Mem};
use crate::domain::DomainInfo;
use crate::elf::{self, EHDR_SIZE, EM_386, EM_X86_64};
use crate::error::Error;
pub(crate) use crate::le::{u16_at, u32_at, u64_at};
use crate::sys::Pages;
use crate::types::{DomId, GuestWidth, Mfn, PAGE_SIZE};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// The domain id the core's guest answers to (any id is accepted; this is
/// the one the CLI uses, and the one errors name).
pub const CORE_DOMID: DomId = DomId(1);

/// The pseudo machine frame of the dump's `shared_info` page: above any
/// frame a page-table entry can name (52-bit physical addresses), so it
/// never collides with a frame of `.xen_pages`.
pub const SHARED_INFO_FRAME: u64 = 1 << 40;

/// `XC_CORE_MAGIC`: a PV guest's dump.
pub const MAGIC_PV: u64 = 0xF00F_EBED;
/// `XC_CORE_MAGIC_HVM`: an HVM guest's dump (no guest p2m to rebuild).
pub const MAGIC_HVM: u64 = 0xF00F_EBEE;

/// `XEN_ELFNOTE_DUMPCORE_NONE`.
const NOTE_NONE: u32 = 0x200_0000;
/// `XEN_ELFNOTE_DUMPCORE_HEADER`.
const NOTE_HEADER: u32 = 0x200_0001;
/// `XEN_ELFNOTE_DUMPCORE_XEN_VERSION`.
const NOTE_XEN_VERSION: u32 = 0x200_0002;
/// `XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION`.
const NOTE_FORMAT_VERSION: u32 = 0x200_0003;

/// `SHT_NOTE`.
const SHT_NOTE: u32 = 7;

/// Bytes of an ELF64 section header.
const SHDR_SIZE: usize = 64;
/// Most sections accepted (libxc writes 7).
const MAX_SECTIONS: u16 = 64;
/// Largest `.shstrtab` and `.note.Xen` accepted.
const MAX_SMALL_SECTION: u64 = 64 << 10;
/// Most vcpus accepted (Xen's limit for a PV guest is far lower).
const MAX_VCPUS: u64 = 1 << 14;
/// Most pages accepted (16 TiB of guest; page indices are 32-bit).
const MAX_PAGES: u64 = u32::MAX as u64;
/// Bytes of one `.xen_p2m` entry.
const P2M_ENTRY: u64 = 16;
/// Frames a page-table entry can name: 40 bits of frame number.
const MAX_FRAME: u64 = (1 << 40) - 1;
/// Smallest `shared_info` per width (x86_64 3136, x86_32 2344 bytes).
const SHARED_INFO_64: u64 = 3136;
const SHARED_INFO_32: u64 = 2344;

/// One section header, as the file says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Section {
    /// `sh_type`.
    pub kind: u32,
    /// `sh_offset`.
    pub offset: u64,
    /// `sh_size`.
    pub size: u64,
    /// `sh_entsize`.
    pub entsize: u64,
}

/// What the dump's notes and header say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CoreInfo {
    /// The guest's width, from `e_machine`.
    pub width: GuestWidth,
    /// `xch_nr_vcpus`.
    pub nr_vcpus: u64,
    /// `xch_nr_pages`: pages in `.xen_pages` (and entries in `.xen_p2m`).
    pub nr_pages: u64,
    /// Valid (non-padding) `.xen_p2m` entries.
    pub dumped_pages: u64,
    /// The dump format's version (major, minor).
    pub format_version: (u32, u32),
    /// The version of the Xen the dump was made on, e.g. `4.17.5`.
    pub xen_version: String,
    /// The largest gmfn in `.xen_p2m` (0 without any).
    pub max_gmfn: u64,
    /// Whether the dump holds the guest's `shared_info`.
    pub has_shared_info: bool,
}

/// An open `xl dump-core` file of a PV guest.
#[derive(Debug)]
pub struct CoreFile {
    path: PathBuf,
    file: File,
    info: CoreInfo,
    /// File offset of page 0 of `.xen_pages`.
    pages_offset: u64,
    /// Valid `.xen_p2m` entries, pfn-ascending.
    p2m: Vec<(u64, u64)>,
    /// gmfn -> page index.
    by_gmfn: HashMap<u64, u32>,
    /// The `shared_info` page (zero-padded to a page).
    shared_info: Option<Vec<u8>>,
    /// Every frame mapped so far (bounded by the pages of the dump).
    mapped: Mutex<BTreeSet<u64>>,
}

/// A copy of frames read from the dump (`Send` and `Sync`: owned bytes
/// nobody writes once read).
#[derive(Debug)]
pub struct CoreMap {
    bytes: Pages,
}

impl Mapping for CoreMap {
    fn mem(&self) -> Mem<'_> {
        self.bytes.mem()
    }
}

fn bad(what: &'static str, value: u64) -> Error {
    Error::CoreFormat { what, value }
}

/// A NUL-terminated string from `b` (lossy, at most `b.len()` bytes).
pub(crate) fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

impl CoreFile {
    /// Opens and checks a dump-core file: ELF header, section table,
    /// notes, section sizes against the header note, and the `.xen_p2m`
    /// index. The pages themselves are read only when mapped.
    pub fn open(path: &Path) -> Result<CoreFile, Error> {
        let file = File::open(path).map_err(|source| Error::CoreIo {
            path: path.to_path_buf(),
            source,
        })?;
        let len = file
            .metadata()
            .map_err(|source| Error::CoreIo {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        let mut c = CoreFile {
            path: path.to_path_buf(),
            file,
            info: CoreInfo {
                width: GuestWidth::W64,
                nr_vcpus: 0,
                nr_pages: 0,
                dumped_pages: 0,
                format_version: (0, 0),
                xen_version: String::new(),
                max_gmfn: 0,
                has_shared_info: false,
            },
            pages_offset: 0,
            p2m: Vec::new(),
            by_gmfn: HashMap::new(),
            shared_info: None,
            mapped: Mutex::new(BTreeSet::new()),
        };
        c.parse(len)?;
        Ok(c)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the header and notes say.
    pub fn info(&self) -> &CoreInfo {
        &self.info
    }

    /// The valid `.xen_p2m` entries, `(pfn, gmfn)`, pfn-ascending.
    pub fn dumped(&self) -> &[(u64, u64)] {
        &self.p2m
    }

    /// The gmfn the dump holds for `pfn`, if any.
    pub fn dumped_gmfn(&self, pfn: u64) -> Option<u64> {
        self.p2m
            .binary_search_by_key(&pfn, |&(p, _)| p)
            .ok()
            .map(|i| self.p2m[i].1)
    }

    /// The gmfns of `.xen_pages` mapped so far through [`Backend::map_frames`]
    /// (what a p2m rebuild read: page tables and leaves), ascending.
    pub fn mapped_frames(&self) -> Vec<u64> {
        let m = self.mapped.lock().unwrap_or_else(PoisonError::into_inner);
        m.iter().copied().collect()
    }

    /// File offset of the page that holds `gmfn`.
    pub fn page_offset(&self, gmfn: u64) -> Option<u64> {
        self.page_index(gmfn)
            .map(|i| self.pages_offset + i * PAGE_SIZE as u64)
    }

    /// The dump's `shared_info` page, if it holds one.
    pub fn shared_info(&self) -> Option<&[u8]> {
        self.shared_info.as_deref()
    }

    /// Reads `buf.len()` bytes at `offset`; the caller checked the range
    /// against the file's length.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), Error> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|source| Error::CoreIo {
                path: self.path.clone(),
                source,
            })
    }

    /// Checks that `s` lies inside a file of `len` bytes.
    /// The bytes of section `s`, one that holds names or notes: refused
    /// above 64 KiB (Xen writes a few hundred bytes).
    fn read_small(&self, name: &'static str, s: &Section, len: u64) -> Result<Vec<u8>, Error> {
        if s.size > MAX_SMALL_SECTION {
            return Err(Error::CoreSection {
                name,
                what: "is larger than 64 KiB",
                offset: s.offset,
                size: s.size,
                file_len: len,
            });
        }
        let mut bytes = vec![0u8; s.size as usize];
        self.read_at(&mut bytes, s.offset)?;
        Ok(bytes)
    }

    fn check_range(name: &'static str, s: &Section, len: u64) -> Result<(), Error> {
        match s.offset.checked_add(s.size) {
            Some(end) if end <= len => Ok(()),
            _ => Err(Error::CoreSection {
                name,
                what: "does not lie inside the file",
                offset: s.offset,
                size: s.size,
                file_len: len,
            }),
        }
    }

    fn parse(&mut self, len: u64) -> Result<(), Error> {
        // ---- ELF header ----
        if len < EHDR_SIZE as u64 {
            return Err(bad("file shorter than an ELF64 header, length", len));
        }
        let mut eh = [0u8; EHDR_SIZE];
        self.read_at(&mut eh, 0)?;
        let machine = elf::core_machine(&eh, "EI_CLASS (must be ELFCLASS64 = 2)")
            .map_err(|(what, value)| bad(what, value))?;
        self.info.width = match machine {
            EM_X86_64 => GuestWidth::W64,
            EM_386 => GuestWidth::W32,
            m => return Err(bad("e_machine (must be EM_X86_64 or EM_386)", m as u64)),
        };
        let shoff = u64_at(&eh, 40);
        let shentsize = u16_at(&eh, 58);
        let shnum = u16_at(&eh, 60);
        let shstrndx = u16_at(&eh, 62);
        if shentsize as usize != SHDR_SIZE {
            return Err(bad("e_shentsize (must be 64)", shentsize as u64));
        }
        if shnum == 0 || shnum > MAX_SECTIONS {
            return Err(bad("e_shnum", shnum as u64));
        }
        if shstrndx >= shnum {
            return Err(bad("e_shstrndx (not below e_shnum)", shstrndx as u64));
        }
        let table = Section {
            kind: 0,
            offset: shoff,
            size: shnum as u64 * SHDR_SIZE as u64,
            entsize: SHDR_SIZE as u64,
        };
        Self::check_range("section header table", &table, len)?;

        // ---- Section headers and names ----
        let mut sh = vec![0u8; table.size as usize];
        self.read_at(&mut sh, shoff)?;
        let header = |i: usize| {
            let b = &sh[i * SHDR_SIZE..(i + 1) * SHDR_SIZE];
            (
                u32_at(b, 0),
                Section {
                    kind: u32_at(b, 4),
                    offset: u64_at(b, 24),
                    size: u64_at(b, 32),
                    entsize: u64_at(b, 56),
                },
            )
        };
        let (_, strtab) = header(shstrndx as usize);
        Self::check_range(".shstrtab", &strtab, len)?;
        let names = self.read_small(".shstrtab", &strtab, len)?;
        let mut found: HashMap<&'static str, Section> = HashMap::new();
        const KNOWN: [&str; 6] = [
            ".note.Xen",
            ".xen_prstatus",
            ".xen_shared_info",
            ".xen_pages",
            ".xen_p2m",
            ".xen_pfn",
        ];
        for i in 0..shnum as usize {
            let (name_at, s) = header(i);
            let Some(rest) = names.get(name_at as usize..) else {
                return Err(bad("sh_name (beyond .shstrtab) of section", i as u64));
            };
            let name = c_string(rest);
            if let Some(k) = KNOWN.iter().find(|k| **k == name) {
                if found.insert(k, s).is_some() {
                    return Err(Error::CoreSection {
                        name: k,
                        what: "appears twice",
                        offset: s.offset,
                        size: s.size,
                        file_len: len,
                    });
                }
                Self::check_range(k, &s, len)?;
            }
        }
        let need = |name: &'static str| {
            found
                .get(name)
                .copied()
                .ok_or(Error::CoreMissingSection { name })
        };
        if found.contains_key(".xen_pfn") {
            return Err(Error::CoreNotPv {
                why: "it has a .xen_pfn section (an auto-translated guest)",
            });
        }

        // ---- Notes ----
        let notes = need(".note.Xen")?;
        if notes.kind != SHT_NOTE {
            return Err(bad(
                ".note.Xen sh_type (must be SHT_NOTE = 7)",
                notes.kind as u64,
            ));
        }
        let nb = self.read_small(".note.Xen", &notes, len)?;
        self.parse_notes(&nb)?;

        // ---- Sections against the header note ----
        let nr_pages = self.info.nr_pages;
        let pages = need(".xen_pages")?;
        let want = nr_pages.checked_mul(PAGE_SIZE as u64);
        if want != Some(pages.size) {
            return Err(Error::CoreSection {
                name: ".xen_pages",
                what: "is not nr_pages pages long",
                offset: pages.offset,
                size: pages.size,
                file_len: len,
            });
        }
        self.pages_offset = pages.offset;
        let p2m = need(".xen_p2m")?;
        if nr_pages.checked_mul(P2M_ENTRY) != Some(p2m.size) {
            return Err(Error::CoreSection {
                name: ".xen_p2m",
                what: "does not hold nr_pages entries of 16 bytes",
                offset: p2m.offset,
                size: p2m.size,
                file_len: len,
            });
        }
        let prstatus = need(".xen_prstatus")?;
        if prstatus.entsize == 0
            || prstatus.size != self.info.nr_vcpus.saturating_mul(prstatus.entsize)
        {
            return Err(Error::CoreSection {
                name: ".xen_prstatus",
                what: "does not hold nr_vcpus contexts of sh_entsize bytes",
                offset: prstatus.offset,
                size: prstatus.size,
                file_len: len,
            });
        }
        if let Some(s) = found.get(".xen_shared_info") {
            let min = match self.info.width {
                GuestWidth::W64 => SHARED_INFO_64,
                GuestWidth::W32 => SHARED_INFO_32,
            };
            if s.size < min || s.size > PAGE_SIZE as u64 {
                return Err(Error::CoreSection {
                    name: ".xen_shared_info",
                    what: "is not the size of a shared_info page",
                    offset: s.offset,
                    size: s.size,
                    file_len: len,
                });
            }
            let mut page = vec![0u8; PAGE_SIZE];
            self.read_at(&mut page[..s.size as usize], s.offset)?;
            self.shared_info = Some(page);
            self.info.has_shared_info = true;
        }

        // ---- The p2m index ----
        // nr_pages pages lie in the file, so the index is bounded by the
        // file's length (about 40 bytes per 4096); .xen_p2m is read in
        // chunks.
        self.index(&p2m)
    }

    fn parse_notes(&mut self, nb: &[u8]) -> Result<(), Error> {
        let mut at = 0usize;
        let (mut none, mut header, mut version, mut format) = (false, false, false, false);
        while at < nb.len() {
            if nb.len() - at < 12 {
                return Err(Error::CoreNote {
                    what: "truncated note header at offset",
                    value: at as u64,
                });
            }
            let namesz = u32_at(nb, at) as usize;
            let descsz = u32_at(nb, at + 4) as usize;
            let kind = u32_at(nb, at + 8);
            let name_at = at + 12;
            let desc_at = name_at
                .checked_add(namesz.div_ceil(4) * 4)
                .filter(|&d| d <= nb.len())
                .ok_or(Error::CoreNote {
                    what: "note name runs past the section, namesz",
                    value: namesz as u64,
                })?;
            let next = desc_at
                .checked_add(descsz.div_ceil(4) * 4)
                .filter(|&n| n <= nb.len().div_ceil(4) * 4)
                .ok_or(Error::CoreNote {
                    what: "note descriptor runs past the section, descsz",
                    value: descsz as u64,
                })?;
            let desc = nb.get(desc_at..desc_at + descsz).ok_or(Error::CoreNote {
                what: "note descriptor runs past the section, descsz",
                value: descsz as u64,
            })?;
            at = next;
            if nb.get(name_at..name_at + namesz) != Some(b"Xen\0".as_slice()) {
                // Notes of other owners are allowed and skipped.
                continue;
            }
            let short = |need: usize| {
                if desc.len() < need {
                    Err(Error::CoreNote {
                        what: "descriptor too short for note type",
                        value: kind as u64,
                    })
                } else {
                    Ok(())
                }
            };
            match kind {
                NOTE_NONE => none = true,
                NOTE_HEADER => {
                    short(32)?;
                    let magic = u64_at(desc, 0);
                    match magic {
                        MAGIC_PV => {}
                        MAGIC_HVM => {
                            return Err(Error::CoreNotPv {
                                why: "its header note has the HVM magic 0xf00febee",
                            })
                        }
                        m => {
                            return Err(Error::CoreNote {
                                what: "header magic (must be 0xf00febed)",
                                value: m,
                            })
                        }
                    }
                    self.info.nr_vcpus = u64_at(desc, 8);
                    self.info.nr_pages = u64_at(desc, 16);
                    let page_size = u64_at(desc, 24);
                    if self.info.nr_vcpus == 0 || self.info.nr_vcpus > MAX_VCPUS {
                        return Err(Error::CoreNote {
                            what: "xch_nr_vcpus",
                            value: self.info.nr_vcpus,
                        });
                    }
                    if self.info.nr_pages > MAX_PAGES {
                        return Err(Error::CoreNote {
                            what: "xch_nr_pages (more than 2^32 pages)",
                            value: self.info.nr_pages,
                        });
                    }
                    if page_size != PAGE_SIZE as u64 {
                        return Err(Error::CoreNote {
                            what: "xch_page_size (must be 4096)",
                            value: page_size,
                        });
                    }
                    header = true;
                }
                NOTE_XEN_VERSION => {
                    short(32)?;
                    let extra = c_string(&desc[16..32]);
                    self.info.xen_version =
                        format!("{}.{}{}", u64_at(desc, 0), u64_at(desc, 8), extra);
                    version = true;
                }
                NOTE_FORMAT_VERSION => {
                    short(8)?;
                    let v = u64_at(desc, 0);
                    let (major, minor) = ((v >> 32) as u32, v as u32);
                    if major != 0 {
                        return Err(Error::CoreNote {
                            what: "format version (major must be 0), version",
                            value: v,
                        });
                    }
                    self.info.format_version = (major, minor);
                    format = true;
                }
                _ => {}
            }
        }
        for (have, what) in [
            (none, "XEN_ELFNOTE_DUMPCORE_NONE"),
            (header, "XEN_ELFNOTE_DUMPCORE_HEADER"),
            (version, "XEN_ELFNOTE_DUMPCORE_XEN_VERSION"),
            (format, "XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION"),
        ] {
            if !have {
                return Err(Error::CoreMissingNote { note: what });
            }
        }
        Ok(())
    }

    /// Builds the pfn-ascending entry list and the gmfn index from
    /// `.xen_p2m` (whose size the caller checked), checking each entry.
    fn index(&mut self, sec: &Section) -> Result<(), Error> {
        const CHUNK: u64 = 1 << 16;
        let n = sec.size / P2M_ENTRY;
        let mut padding = false;
        let mut last_pfn = None;
        // Grow with the entries actually read: `n` is the file's claim.
        let mut p2m = Vec::with_capacity(CHUNK.min(n) as usize);
        let mut by_gmfn = HashMap::with_capacity(CHUNK.min(n) as usize);
        let mut raw = Vec::new();
        for first in (0..n).step_by(CHUNK as usize) {
            let count = CHUNK.min(n - first);
            raw.resize((count * P2M_ENTRY) as usize, 0);
            self.read_at(&mut raw, sec.offset + first * P2M_ENTRY)?;
            for j in 0..count as usize {
                let i = first + j as u64;
                let pfn = u64_at(&raw, j * 16);
                let gmfn = u64_at(&raw, j * 16 + 8);
                let entry = |what| Error::CoreP2mEntry {
                    index: i,
                    pfn,
                    gmfn,
                    what,
                };
                if pfn == u64::MAX && gmfn == u64::MAX {
                    padding = true;
                    continue;
                }
                if padding {
                    return Err(entry(
                        "follows an invalid {~0, ~0} entry (padding is only allowed at the end)",
                    ));
                }
                if last_pfn.is_some_and(|l| pfn <= l) {
                    return Err(entry("is not in pfn-ascending order"));
                }
                if gmfn == 0 || gmfn > MAX_FRAME {
                    return Err(entry("names frame 0 or a frame above 2^40"));
                }
                if by_gmfn.insert(gmfn, i as u32).is_some() {
                    return Err(entry("names a gmfn that an earlier entry names too"));
                }
                last_pfn = Some(pfn);
                p2m.push((pfn, gmfn));
                self.info.max_gmfn = self.info.max_gmfn.max(gmfn);
            }
        }
        self.info.dumped_pages = p2m.len() as u64;
        self.p2m = p2m;
        self.by_gmfn = by_gmfn;
        Ok(())
    }

    /// The page index in `.xen_pages` of `gmfn`.
    pub fn page_index(&self, gmfn: u64) -> Option<u64> {
        self.by_gmfn.get(&gmfn).map(|&i| i as u64)
    }

    /// Reads the page of the dump that holds `gmfn`.
    pub fn read_frame(&self, gmfn: u64) -> Result<Vec<u8>, Error> {
        let mut v = vec![0u8; PAGE_SIZE];
        self.read_frame_into(gmfn, &mut v, 0, 1)?;
        Ok(v)
    }

    fn read_frame_into(
        &self,
        frame: u64,
        out: &mut [u8],
        index: usize,
        count: usize,
    ) -> Result<(), Error> {
        if frame == SHARED_INFO_FRAME {
            let page = self
                .shared_info
                .as_deref()
                .ok_or(Error::CoreMissingSection {
                    name: ".xen_shared_info",
                })?;
            out.copy_from_slice(page);
            return Ok(());
        }
        let i = self.page_index(frame).ok_or(Error::CoreFrameMissing {
            mfn: frame,
            index,
            count,
        })?;
        // i < nr_pages and .xen_pages lies inside the file: no overflow.
        self.read_at(out, self.pages_offset + i * PAGE_SIZE as u64)
    }
}

/// What an offline backend (a dump file) says about the one PV domain it
/// holds: a paused PV domain whose `shared_info_frame` is
/// [`SHARED_INFO_FRAME`], its width, and the largest frame of the file as
/// the host's maximum mfn.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OfflineDomain {
    /// The guest's width.
    pub width: GuestWidth,
    /// The largest frame the file holds (at least 1).
    pub max_mfn: u64,
    /// Pages the domain has.
    pub tot_pages: u64,
    /// Its maximum.
    pub max_pages: u64,
}

impl OfflineDomain {
    /// [`Backend::domain_info`]: any domain id names the one domain.
    pub(crate) fn domain_info(&self, dom: DomId) -> DomainInfo {
        DomainInfo::new(
            dom,
            xen_sys::XEN_DOMINF_paused,
            self.tot_pages,
            self.max_pages,
            Mfn(SHARED_INFO_FRAME),
        )
    }

    /// [`Backend::max_mfn`].
    pub(crate) fn max_mfn(&self) -> Mfn {
        Mfn(self.max_mfn.max(1))
    }
}

impl CoreFile {
    fn domain(&self) -> OfflineDomain {
        OfflineDomain {
            width: self.info.width,
            max_mfn: self.info.max_gmfn.max(1),
            tot_pages: self.info.dumped_pages,
            max_pages: self.info.nr_pages,
        }
    }
}

impl Backend for CoreFile {
    type Map = CoreMap;

    fn domain_info(&self, dom: DomId) -> Result<DomainInfo, Error> {
        Ok(self.domain().domain_info(dom))
    }

    fn guest_width(&self, _dom: DomId) -> Result<GuestWidth, Error> {
        Ok(self.info.width)
    }

    fn max_mfn(&self) -> Result<Mfn, Error> {
        Ok(self.domain().max_mfn())
    }

    fn map_frames(&self, _dom: DomId, frames: &[Mfn]) -> Result<CoreMap, Error> {
        // Every frame must be in the dump before anything is allocated.
        for (index, &Mfn(f)) in frames.iter().enumerate() {
            if f != SHARED_INFO_FRAME && self.page_index(f).is_none() {
                return Err(Error::CoreFrameMissing {
                    mfn: f,
                    index,
                    count: frames.len(),
                });
            }
        }
        {
            let mut m = self.mapped.lock().unwrap_or_else(PoisonError::into_inner);
            m.extend(
                frames
                    .iter()
                    .map(|f| f.0)
                    .filter(|&f| f != SHARED_INFO_FRAME),
            );
        }
        let mut bytes = Pages::zeroed(frames.len());
        let pages = bytes.bytes_mut().chunks_mut(PAGE_SIZE);
        for (index, (&f, out)) in frames.iter().zip(pages).enumerate() {
            self.read_frame_into(f.0, out, index, frames.len())?;
        }
        Ok(CoreMap { bytes })
    }
}
