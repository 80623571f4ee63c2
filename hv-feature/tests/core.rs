// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `hv-feature core`: the p2m rebuilt from a real `xl dump-core` file's own
//! shared_info and page tables, against its `.xen_p2m`; and malformed or
//! hostile core files, each of which must give a typed error (never a
//! panic, never an allocation sized by an unchecked number).
//!
//! Fixtures (`tests/fixtures/`):
//! - `domu-list.core.gz`: a real dump, made with `xl dump-core` on the
//!   patched Xen 4.17.5 in the QEMU dom0 of `make test`, of a 128 MiB
//!   64-bit PV domU (Debian's 6.1 kernel) created with
//!   `SIF_VIRT_P2M_4TOOLS`, so it publishes its linear list and dropped its
//!   tree (`pfn_to_mfn_frame_list_list == ~0`). To keep it small, the
//!   contents of every page the p2m rebuild does not read are zeroed (the
//!   ELF structure, notes, vcpu context, shared_info, every `.xen_p2m`
//!   entry, and the page tables and p2m leaves on the way to the list are
//!   the dump's own); gzip makes the 128 MiB about 150 KiB. Remade from a
//!   new dump with `VP2M_CORE_SRC=FILE cargo test -p hv-feature --test
//!   core -- --ignored make_fixtures`.
//! - `crafted-*.core`: small broken files (a truncated ELF header, the
//!   real dump's first section headers and notes without the rest, a
//!   header whose section table lies beyond the end).
//!
//! The other broken cores are made here from the real one by changing a
//! few bytes (sparse copies, so each costs little disk).

use hv_feature::dump_core::{compare, CoreFile, CORE_DOMID, SHARED_INFO_FRAME};
use hv_feature::p2m::{Entry, Source, SourcePref};
use hv_feature::{Error, GuestWidth, Pfn};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

const PAGE: usize = 4096;
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("core-tests");
    std::fs::create_dir_all(&d).expect("create the test folder");
    d.join(name)
}

/// Copies `from` to `to` page by page, leaving holes for zero pages;
/// returns the length and the non-zero pages.
fn sparse_copy(mut from: impl Read, to: &Path) -> (u64, Vec<(u64, Vec<u8>)>) {
    let out = File::create(to).expect("create a core copy");
    let mut buf = vec![0u8; PAGE];
    let mut len = 0u64;
    let mut data = Vec::new();
    loop {
        let mut n = 0;
        while n < PAGE {
            match from.read(&mut buf[n..]).expect("read") {
                0 => break,
                k => n += k,
            }
        }
        if n == 0 {
            break;
        }
        let words = buf[..n].chunks(8);
        if words
            .into_iter()
            .any(|w| w.iter().fold(0, |a, &b| a | b) != 0)
        {
            out.write_all_at(&buf[..n], len).expect("write");
            data.push((len, buf[..n].to_vec()));
        }
        len += n as u64;
        if n < PAGE {
            break;
        }
    }
    out.set_len(len).expect("set the copy's length");
    (len, data)
}

/// The real dump, decompressed once per test run (`gzip -dc`), and its
/// non-zero pages.
struct Real {
    path: PathBuf,
    len: u64,
    data: Vec<(u64, Vec<u8>)>,
}

fn real_dump() -> &'static Real {
    static REAL: OnceLock<Real> = OnceLock::new();
    REAL.get_or_init(|| {
        let gz = Path::new(FIXTURES).join("domu-list.core.gz");
        let to = tmp("domu-list.core");
        let mut child = Command::new("gzip")
            .arg("-dc")
            .arg(&gz)
            .stdout(Stdio::piped())
            .spawn()
            .expect("run gzip -dc (gzip is needed to unpack the fixture)");
        let stdout = child.stdout.take().expect("gzip's stdout");
        let (len, data) = sparse_copy(stdout, &to);
        assert!(
            child.wait().expect("gzip").success(),
            "gzip -dc {gz:?} failed"
        );
        Real {
            path: to,
            len,
            data,
        }
    })
}

fn real() -> &'static Path {
    &real_dump().path
}

/// A sparse copy of the first `cut` bytes of the real dump.
fn prefix(name: &str, cut: u64) -> PathBuf {
    let r = real_dump();
    let to = tmp(name);
    let out = File::create(&to).expect("create a core copy");
    for (at, page) in &r.data {
        if *at < cut {
            let n = (page.len() as u64).min(cut - at) as usize;
            out.write_all_at(&page[..n], *at).expect("write");
        }
    }
    out.set_len(cut.min(r.len)).expect("set the copy's length");
    to
}

/// A copy of the real dump, changed by `f`.
fn mutant(name: &str, f: impl FnOnce(&File, &CoreFile)) -> PathBuf {
    let to = prefix(&format!("{name}.core"), u64::MAX);
    let orig = CoreFile::open(real()).expect("open the real dump");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&to)
        .expect("open the copy");
    f(&file, &orig);
    to
}

/// A change of a mutant file.
type Patch = Box<dyn Fn(&File)>;
/// A change of a page-table entry.
type Change = fn(u64) -> u64;

fn put(f: &File, at: u64, bytes: &[u8]) {
    f.write_all_at(bytes, at).expect("patch the copy");
}

fn get64(f: &File, at: u64) -> u64 {
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, at).expect("read the copy");
    u64::from_le_bytes(b)
}

/// Section header table offset and one section's header offset by name.
fn section(f: &File, want: &str) -> u64 {
    let shoff = get64(f, 40);
    let mut h = [0u8; 64];
    f.read_exact_at(&mut h, 0).expect("ELF header");
    let shnum = u16::from_le_bytes([h[60], h[61]]) as u64;
    let shstrndx = u16::from_le_bytes([h[62], h[63]]) as u64;
    let strtab_off = get64(f, shoff + shstrndx * 64 + 24);
    for i in 0..shnum {
        let mut n = [0u8; 4];
        f.read_exact_at(&mut n, shoff + i * 64).expect("sh_name");
        let mut name = [0u8; 24];
        f.read_at(&mut name, strtab_off + u32::from_le_bytes(n) as u64)
            .expect("name");
        let end = name.iter().position(|&c| c == 0).unwrap_or(24);
        if &name[..end] == want.as_bytes() {
            return shoff + i * 64;
        }
    }
    panic!("no section {want}");
}

fn open_err(p: &Path) -> Error {
    match CoreFile::open(p) {
        Ok(c) => panic!("{p:?} opened: {:?}", c.info()),
        Err(e) => e,
    }
}

fn compare_err(p: &Path) -> Error {
    let c = CoreFile::open(p).expect("the core opens");
    match compare(&c, SourcePref::List) {
        Ok(r) => panic!("{p:?} rebuilt: {r:?}"),
        Err(e) => e,
    }
}

/// The page-table entry for the list's first byte at `level` (4..=1),
/// as (file offset of the entry, its value).
fn pte(f: &File, c: &CoreFile, level: u32) -> (u64, u64) {
    let si = c.shared_info().expect("shared_info");
    let word = |at: usize| u64::from_le_bytes(si[at..at + 8].try_into().expect("8 bytes"));
    let (cr3, vaddr) = (word(3112), word(3120));
    let mut frame = cr3 >> 12;
    for l in (level..=4).rev() {
        let idx = (vaddr >> (12 + 9 * (l - 1))) & 511;
        let at = c.page_offset(frame).expect("page table in the dump") + idx * 8;
        let v = get64(f, at);
        if l == level {
            return (at, v);
        }
        frame = (v & 0x000f_ffff_ffff_f000) >> 12;
    }
    unreachable!()
}

// ---- The real dump ------------------------------------------------------

#[test]
fn real_dump_rebuilt_from_its_list_equals_xen_p2m_for_every_pfn() {
    let c = CoreFile::open(real()).expect("open the real dump");
    let i = c.info();
    assert_eq!(i.width, GuestWidth::W64);
    assert_eq!(i.xen_version, "4.17.5");
    assert_eq!((i.nr_vcpus, i.nr_pages, i.dumped_pages), (1, 32768, 32768));
    assert_eq!(i.format_version, (0, 1));
    let r = compare(&c, SourcePref::List).expect("rebuild the p2m");
    assert!(r.agree(), "{r:?}");
    assert_eq!(r.source, Source::List);
    assert_eq!(r.arch.pfn_to_mfn_frame_list_list, u64::MAX, "tree dropped");
    assert_ne!(r.arch.p2m_cr3, 0);
    assert_eq!(r.arch.p2m_generation, 0);
    assert_eq!(r.max_pfn, 0x8000);
    assert_eq!(r.compared, 32768);
    assert_eq!(r.entries.valid, 32768);
    assert_eq!(r.beyond_nr_pages, 0);
    // One batch per level plus the leaves; shared_info besides.
    assert_eq!(r.stats.walk_map_calls, 5);
    assert_eq!(r.stats.leaves, 64);
    // Spot check through the reader's own API: pfn 0 and the last pfn.
    for (pfn, gmfn) in [c.dumped()[0], *c.dumped().last().expect("entries")] {
        assert_eq!(c.dumped_gmfn(pfn), Some(gmfn));
        let p = hv_feature::p2m::P2m::read(&c, CORE_DOMID, &Default::default()).expect("read");
        assert_eq!(
            p.lookup(Pfn(pfn)).expect("lookup"),
            Entry::Mfn(hv_feature::Mfn(gmfn))
        );
    }
}

#[test]
fn real_dump_has_no_tree_to_fall_back_to() {
    let c = CoreFile::open(real()).expect("open");
    assert!(matches!(
        compare(&c, SourcePref::Tree),
        Err(Error::TreeDropped { list: true, .. })
    ));
}

#[test]
fn real_dump_backend_answers_only_what_the_reader_asks() {
    let c = CoreFile::open(real()).expect("open");
    let info = hv_feature::domain::domain_info(&c, CORE_DOMID).expect("getdomaininfo");
    assert_eq!(info.shared_info_frame.0, SHARED_INFO_FRAME);
    assert!(!info.hvm);
    assert_eq!(
        hv_feature::domain::guest_width(&c, CORE_DOMID).expect("width"),
        GuestWidth::W64
    );
    assert_eq!(
        hv_feature::domain::max_mfn(&c).expect("max").0,
        c.info().max_gmfn
    );
    // Not a hypervisor: the M2P and the features are not there.
    assert!(hv_feature::features::query(&c).is_err());
    assert!(hv_feature::domain::map_m2p(&c, hv_feature::Mfn(c.info().max_gmfn)).is_err());
}

// ---- The comparison can fail ----------------------------------------------

#[test]
fn swapped_xen_p2m_entries_are_two_mismatches() {
    let p = mutant("swapped", |f, c| {
        let walk: Vec<u64> = {
            compare(c, SourcePref::List).expect("rebuild");
            c.mapped_frames()
        };
        // Two data pages the walk does not touch.
        let (a, b) = {
            let mut it = c.dumped().iter().filter(|(_, g)| !walk.contains(g));
            (*it.next().expect("a"), *it.next().expect("b"))
        };
        let p2m_off = get64(f, section(f, ".xen_p2m") + 24);
        let ia = c.dumped().iter().position(|e| *e == a).expect("a") as u64;
        let ib = c.dumped().iter().position(|e| *e == b).expect("b") as u64;
        put(f, p2m_off + ia * 16 + 8, &b.1.to_le_bytes());
        put(f, p2m_off + ib * 16 + 8, &a.1.to_le_bytes());
    });
    let c = CoreFile::open(&p).expect("open");
    let r = compare(&c, SourcePref::List).expect("rebuild");
    assert!(!r.agree());
    assert_eq!(r.mismatches, 2, "{r:?}");
    assert_eq!(r.first_mismatches.len(), 2);
}

// ---- Malformed files ------------------------------------------------------------

#[test]
fn committed_crafted_cores_give_typed_errors() {
    for (name, check) in [
        ("crafted-truncated-ehdr.core", "CoreFormat"),
        ("crafted-headers-only.core", "CoreSection"),
        ("crafted-shoff-beyond-eof.core", "CoreSection"),
        ("crafted-hvm.core", "CoreNotPv"),
    ] {
        let e = open_err(&Path::new(FIXTURES).join(name));
        assert!(format!("{e:?}").starts_with(check), "{name}: {e:?}");
        assert_eq!(e.is_guest_data(), check != "CoreNotPv", "{name}: {e:?}");
    }
}

#[test]
fn every_truncation_is_a_typed_error() {
    let len = real_dump().len;
    for cut in [
        0,
        1,
        4,
        63,
        64,
        0x100,
        0x200,
        0x300,
        0x768,
        0x1b98,
        0x3000,
        len / 2,
        len - 0x80000,
        len - 1,
    ] {
        let p = prefix(&format!("cut-{cut}.core"), cut);
        let e = open_err(&p);
        assert!(e.is_guest_data(), "cut at {cut:#x}: {e:?}");
        assert!(
            matches!(e, Error::CoreFormat { .. } | Error::CoreSection { .. }),
            "cut at {cut:#x}: {e:?}"
        );
    }
}

#[test]
fn hostile_elf_headers_give_typed_errors() {
    let cases: [(&str, u64, &[u8]); 8] = [
        ("magic", 0, b"\x7fELX"),
        ("class32", 4, &[1]),
        ("bigendian", 5, &[2]),
        ("exec", 16, &4u16.to_be_bytes()),
        ("arm", 18, &183u16.to_le_bytes()),
        ("shentsize", 58, &40u16.to_le_bytes()),
        ("shnum", 60, &0xffffu16.to_le_bytes()),
        ("shstrndx", 62, &7u16.to_le_bytes()),
    ];
    for (name, at, bytes) in cases {
        let p = mutant(&format!("ehdr-{name}"), |f, _| put(f, at, bytes));
        let e = open_err(&p);
        assert!(matches!(e, Error::CoreFormat { .. }), "{name}: {e:?}");
    }
    let p = mutant("ehdr-shoff", |f, _| {
        put(f, 40, &(u64::MAX - 8).to_le_bytes())
    });
    assert!(matches!(open_err(&p), Error::CoreSection { .. }));
}

#[test]
fn hostile_section_headers_give_typed_errors() {
    // sh_offset + sh_size wraps; a size beyond the file; a wrong size.
    for (name, field, value) in [
        (".xen_pages", 24, u64::MAX - 4095),
        (".xen_pages", 32, 1 << 62),
        (".xen_p2m", 32, 32768 * 16 + 16),
        (".xen_p2m", 32, 32768 * 16 - 16),
        (".xen_prstatus", 32, 8),
        (".xen_shared_info", 32, 16),
        (".note.Xen", 32, 1 << 40),
        (".shstrtab", 24, 1 << 50),
    ] {
        let p = mutant(&format!("shdr{name}-{field}"), |f, _| {
            let at = section(f, name) + field;
            put(f, at, &value.to_le_bytes())
        });
        let e = open_err(&p);
        assert!(
            matches!(e, Error::CoreSection { .. }),
            "{name} +{field} = {value:#x}: {e:?}"
        );
    }
    // Renamed sections: a missing one, an HVM-only one.
    let rename = |tag: &str, from: &str, to: &str| {
        mutant(tag, |f, _| {
            let sh = section(f, from);
            let strtab = get64(f, section(f, ".shstrtab") + 24);
            let mut n = [0u8; 4];
            f.read_exact_at(&mut n, sh).expect("sh_name");
            let mut s = to.as_bytes().to_vec();
            s.push(0);
            assert_eq!(s.len(), from.len() + 1);
            put(f, strtab + u32::from_le_bytes(n) as u64, &s);
        })
    };
    let e = open_err(&rename("no-p2m", ".xen_p2m", ".xen_xxx"));
    assert!(
        matches!(e, Error::CoreMissingSection { name: ".xen_p2m" }),
        "{e:?}"
    );
    let e = open_err(&rename("pfn", ".xen_p2m", ".xen_pfn"));
    assert!(
        matches!(e, Error::CoreNotPv { .. }) && !e.is_guest_data(),
        "{e:?}"
    );
    let p = rename("no-shinfo", ".xen_shared_info", ".xen_shared_xxxx");
    let c = CoreFile::open(&p).expect("shared_info is optional in the format");
    assert!(matches!(
        compare(&c, SourcePref::List),
        Err(Error::CoreMissingSection {
            name: ".xen_shared_info"
        })
    ));
}

#[test]
fn hostile_notes_give_typed_errors() {
    // The header note's descriptor starts 16 bytes into it; the notes are
    // none (16 bytes), header (48), Xen version (16 + 1280), format (24).
    fn notes(f: &File) -> u64 {
        get64(f, section(f, ".note.Xen") + 24)
    }
    fn header_desc(f: &File) -> u64 {
        notes(f) + 16 + 16
    }
    let cases: [(&str, Patch); 7] = [
        (
            "nr-pages-overflow",
            Box::new(move |f| put(f, header_desc(f) + 16, &(1u64 << 60).to_le_bytes())),
        ),
        (
            "nr-pages-more",
            Box::new(move |f| put(f, header_desc(f) + 16, &32769u64.to_le_bytes())),
        ),
        (
            "nr-vcpus-0",
            Box::new(move |f| put(f, header_desc(f) + 8, &0u64.to_le_bytes())),
        ),
        (
            "page-size",
            Box::new(move |f| put(f, header_desc(f) + 24, &8192u64.to_le_bytes())),
        ),
        (
            "magic",
            Box::new(move |f| put(f, header_desc(f), &0x1234u64.to_le_bytes())),
        ),
        (
            "descsz",
            Box::new(move |f| put(f, notes(f) + 16 + 4, &u32::MAX.to_le_bytes())),
        ),
        (
            "no-header",
            Box::new(move |f| put(f, notes(f) + 16 + 8, &0x1234u32.to_le_bytes())),
        ),
    ];
    for (name, patch) in cases {
        let p = mutant(&format!("note-{name}"), |f, _| patch(f));
        let e = open_err(&p);
        assert!(e.is_guest_data(), "{name}: {e:?}");
        assert!(
            matches!(
                e,
                Error::CoreNote { .. } | Error::CoreMissingNote { .. } | Error::CoreSection { .. }
            ),
            "{name}: {e:?}"
        );
    }
    let p = mutant("note-hvm", |f, _| {
        put(f, header_desc(f), &0xF00F_EBEEu64.to_le_bytes())
    });
    assert!(matches!(open_err(&p), Error::CoreNotPv { .. }));
}

#[test]
fn hostile_xen_p2m_entries_give_typed_errors() {
    let cases: [(&str, u64, u64, u64); 5] = [
        // (name, entry, pfn, gmfn); u64::MAX keeps the field.
        ("descending", 5, 2, u64::MAX),
        ("duplicate-gmfn", 6, u64::MAX, 0),
        ("gmfn-0", 7, u64::MAX, 1 << 60),
        ("padding-inside", 8, u64::MAX - 1, u64::MAX - 1),
        ("gmfn-huge", 9, u64::MAX, 1 << 41),
    ];
    for (name, entry, pfn, gmfn) in cases {
        let p = mutant(&format!("p2m-{name}"), |f, c| {
            let at = get64(f, section(f, ".xen_p2m") + 24) + entry * 16;
            let (pfn, gmfn) = match name {
                "duplicate-gmfn" => (c.dumped()[entry as usize].0, c.dumped()[0].1),
                "gmfn-0" => (c.dumped()[entry as usize].0, 0),
                "padding-inside" => (u64::MAX, u64::MAX),
                _ => (
                    if pfn == u64::MAX {
                        c.dumped()[entry as usize].0
                    } else {
                        pfn
                    },
                    if gmfn == u64::MAX {
                        c.dumped()[entry as usize].1
                    } else {
                        gmfn
                    },
                ),
            };
            put(f, at, &pfn.to_le_bytes());
            put(f, at + 8, &gmfn.to_le_bytes());
        });
        let e = open_err(&p);
        assert!(matches!(e, Error::CoreP2mEntry { .. }), "{name}: {e:?}");
    }
    // The page of the top-level page table renamed: the walk's first
    // frame is no longer in the dump.
    let p = mutant("p2m-cr3-page-gone", |f, c| {
        let cr3 = u64::from_le_bytes(
            c.shared_info().expect("si")[3112..3120]
                .try_into()
                .expect("8"),
        );
        let i = c
            .dumped()
            .iter()
            .position(|e| e.1 == cr3 >> 12)
            .expect("cr3 page") as u64;
        let at = get64(f, section(f, ".xen_p2m") + 24) + i * 16 + 8;
        put(f, at, &((1u64 << 39) + 1).to_le_bytes());
    });
    let e = compare_err(&p);
    assert!(
        matches!(e, Error::CoreFrameMissing { .. }) && e.is_guest_data(),
        "{e:?}"
    );
}

#[test]
fn hostile_page_tables_give_typed_errors() {
    let cases: [(&str, u32, Change); 5] = [
        ("l4-not-present", 4, |v| v & !1),
        ("l3-superpage", 3, |v| v | 0x80),
        ("l2-frame-huge", 2, |v| (v & 0xfff) | (1 << 45)),
        ("l2-frame-0", 2, |v| v & 0xfff),
        ("l1-frame-missing", 1, |v| (v & 0xfff) | (3 << 12)),
    ];
    for (name, level, change) in cases {
        let p = mutant(&format!("pt-{name}"), |f, c| {
            let (at, v) = pte(f, c, level);
            put(f, at, &change(v).to_le_bytes());
        });
        let e = compare_err(&p);
        let ok = match name {
            "l4-not-present" => matches!(e, Error::PteNotPresent { level: 4, .. }),
            "l3-superpage" => matches!(e, Error::PteSuperpage { level: 3, .. }),
            "l2-frame-huge" | "l2-frame-0" => matches!(e, Error::PteFrame { level: 2, .. }),
            _ => matches!(e, Error::CoreFrameMissing { .. }),
        };
        assert!(ok && e.is_guest_data(), "{name}: {e:?}");
    }
}

#[test]
fn hostile_shared_info_gives_typed_errors() {
    let cases: [(&str, usize, u64); 5] = [
        ("max-pfn-0", 3088, 0),
        ("max-pfn-huge", 3088, 1 << 41),
        ("cr3-0", 3112, 0),
        ("cr3-stray", 3112, 0x5e41_0001),
        ("vaddr-unaligned", 3120, 0xffff_c900_0000_0008),
    ];
    for (name, off, value) in cases {
        let p = mutant(&format!("si-{name}"), |f, _| {
            let at = get64(f, section(f, ".xen_shared_info") + 24) + off as u64;
            put(f, at, &value.to_le_bytes());
        });
        let e = compare_err(&p);
        let ok = match name {
            "max-pfn-0" | "max-pfn-huge" => matches!(e, Error::BadMaxPfn { .. }),
            "cr3-0" => matches!(e, Error::ListNotPublished { .. }),
            "cr3-stray" => matches!(e, Error::P2mCr3StrayBits { .. }),
            _ => matches!(e, Error::P2mVaddrUnaligned { .. }),
        };
        assert!(ok && e.is_guest_data(), "{name}: {e:?}");
    }
}

// ---- The CLI ----------------------------------------------------------------

fn cli(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hv-feature"))
        .args(args)
        .output()
        .expect("run hv-feature");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn cli_core_exit_status_says_agree_disagree_or_cannot() {
    let real = real().to_str().expect("utf-8 path");
    let (rc, out) = cli(&["core", real]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("core: agrees with .xen_p2m"), "{out}");
    assert!(out.contains("entries: 32768 valid, 0 invalid"), "{out}");
    let (rc, out) = cli(&["--json", "core", real]);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.contains("\"agree\":true") && out.contains("\"compared\":32768"),
        "{out}"
    );
    let cut = prefix("cli-cut.core", 0x768);
    let (rc, out) = cli(&["core", cut.to_str().expect("utf-8")]);
    assert_eq!(rc, 1, "{out}");
    let (rc, out) = cli(&["core", "/nonexistent/core"]);
    assert_eq!(rc, 2, "{out}");
    let (rc, out) = cli(&["core", real, "--source", "tree"]);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("dropped its p2m tree"), "{out}");
}

// ---- Making the fixtures ---------------------------------------------------------

/// Makes `domu-list.core.gz` and the crafted cores from a real dump named
/// by `VP2M_CORE_SRC`.
#[test]
#[ignore = "remakes the committed fixtures from VP2M_CORE_SRC"]
fn make_fixtures() {
    let src = PathBuf::from(std::env::var("VP2M_CORE_SRC").expect("VP2M_CORE_SRC=FILE"));
    let c = CoreFile::open(&src).expect("open the dump");
    let r = compare(&c, SourcePref::List).expect("rebuild");
    assert!(r.agree(), "the dump disagrees with itself: {r:?}");
    let keep: std::collections::BTreeSet<u64> = c
        .mapped_frames()
        .iter()
        .filter_map(|&g| c.page_offset(g))
        .collect();
    let pages_off = get64(
        &File::open(&src).expect("open"),
        section(&File::open(&src).expect("open"), ".xen_pages") + 24,
    );
    let pages_len = c.info().nr_pages * PAGE as u64;
    let mut input = File::open(&src).expect("open");
    let pruned = tmp("pruned.core");
    let mut out = File::create(&pruned).expect("create");
    let len = input.metadata().expect("len").len();
    let mut buf = vec![0u8; PAGE];
    let mut at = 0u64;
    while at < len {
        let n = PAGE.min((len - at) as usize);
        input.seek(SeekFrom::Start(at)).expect("seek");
        input.read_exact(&mut buf[..n]).expect("read");
        let in_pages = at >= pages_off && at < pages_off + pages_len;
        if in_pages && !keep.contains(&(at - (at - pages_off) % PAGE as u64)) {
            buf[..n].fill(0);
        }
        out.write_all(&buf[..n]).expect("write");
        at += n as u64;
    }
    drop(out);
    let gz = Path::new(FIXTURES).join("domu-list.core.gz");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -9nc {} > {}", pruned.display(), gz.display()))
        .status()
        .expect("gzip");
    assert!(st.success());
    let head = std::fs::read(&pruned).expect("read");
    std::fs::write(
        Path::new(FIXTURES).join("crafted-truncated-ehdr.core"),
        &head[..40],
    )
    .expect("write");
    std::fs::write(
        Path::new(FIXTURES).join("crafted-headers-only.core"),
        &head[..0x768],
    )
    .expect("write");
    let mut beyond = head[..0x768].to_vec();
    beyond[40..48].copy_from_slice(&0x1_0000u64.to_le_bytes());
    std::fs::write(
        Path::new(FIXTURES).join("crafted-shoff-beyond-eof.core"),
        &beyond,
    )
    .expect("write");
    // A small PV-looking file whose header note has the HVM magic: the
    // real headers and notes, the names right after them, every other
    // section empty.
    let shoff = u64::from_le_bytes(head[40..48].try_into().expect("8")) as usize;
    let shstrndx = u16::from_le_bytes([head[62], head[63]]) as usize;
    let sh = |i: usize, field: usize| shoff + i * 64 + field;
    let word =
        |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8")) as usize;
    let (str_off, str_len) = (word(&head, sh(shstrndx, 24)), word(&head, sh(shstrndx, 32)));
    let mut hvm = head[..0x768].to_vec();
    hvm.extend_from_slice(&head[str_off..str_off + str_len]);
    hvm[sh(shstrndx, 24)..sh(shstrndx, 32)].copy_from_slice(&0x768u64.to_le_bytes());
    let shnum = u16::from_le_bytes([head[60], head[61]]) as usize;
    let mut notes = 0;
    for i in 1..shnum {
        let kind = u32::from_le_bytes(head[sh(i, 4)..sh(i, 8)].try_into().expect("4"));
        if i == shstrndx {
            continue;
        }
        if kind == 7 {
            notes = word(&head, sh(i, 24));
            continue;
        }
        hvm[sh(i, 24)..sh(i, 40)].fill(0);
    }
    hvm[notes + 32..notes + 40].copy_from_slice(&0xF00F_EBEEu64.to_le_bytes());
    let out = Path::new(FIXTURES).join("crafted-hvm.core");
    std::fs::write(&out, &hvm).expect("write");
    assert!(matches!(open_err(&out), Error::CoreNotPv { .. }));
}
