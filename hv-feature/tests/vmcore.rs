// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `hv-feature vmcore`: dom0's p2m rebuilt from Xen host crash dumps that
//! the tests build here, honest and hostile.
//!
//! A dump is made from a simulated guest (`hv_feature::sim`, which lays out
//! page tables, list and tree as Linux does): every non-zero frame of the
//! simulated machine becomes a page of a `PT_LOAD` at its machine address
//! (runs of frames share one), and the notes are the ones Xen writes at a
//! crash: per CPU `CORE`/PRSTATUS and `Xen`/CRASH_REGS, once `Xen`/
//! CRASH_INFO (tree root in its last word), `Xen`/CRASH_DOM0_P2M (unless a
//! test leaves it out) and `VMCOREINFO_XEN`. RAM pages are zero in the
//! simulation and not dumped, so a dump is a few hundred KiB. The truth is
//! the simulation's own record of each entry
//! ([`SimHost::expected_entry`]), not the pages.

use hv_feature::p2m::{Source, SourcePref};
use hv_feature::shared_info::ArchSharedInfo;
use hv_feature::sim::{GuestSpec, SimHost, TreeMode};
use hv_feature::vmcore::{
    self, MaxPfnFrom, NoteState, TreeState, VmcoreFile, NO_NOTE_NOTICE, XEN_CRASH_DOM0_P2M_COMPAT,
    XEN_CRASH_DOM0_P2M_PV, XEN_ELFNOTE_CRASH_DOM0_P2M, XEN_ELFNOTE_CRASH_INFO,
    XEN_ELFNOTE_CRASH_REGS,
};
use hv_feature::{DomId, Error, GuestWidth, Mfn, Pfn};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const PAGE: usize = 4096;
const DOM: DomId = DomId(0);

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vmcore-tests");
    std::fs::create_dir_all(&d).expect("create the test folder");
    d.join(name)
}

fn note(name: &str, kind: u32, desc: &[u8]) -> Vec<u8> {
    let mut n = Vec::new();
    let name = format!("{name}\0");
    n.extend((name.len() as u32).to_le_bytes());
    n.extend((desc.len() as u32).to_le_bytes());
    n.extend(kind.to_le_bytes());
    n.extend(name.as_bytes());
    n.resize(n.len().div_ceil(4) * 4, 0);
    n.extend(desc);
    n.resize(n.len().div_ceil(4) * 4, 0);
    n
}

fn dom0_p2m_desc(version: u32, flags: u32, a: &ArchSharedInfo, extra: usize) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend(version.to_le_bytes());
    d.extend(flags.to_le_bytes());
    for v in [
        a.max_pfn,
        a.pfn_to_mfn_frame_list_list,
        a.p2m_cr3,
        a.p2m_vaddr,
        a.p2m_generation,
    ] {
        d.extend(v.to_le_bytes());
    }
    d.extend(vec![0xa5u8; extra]);
    d
}

fn crash_info_desc(phys_start: u64, root: u64) -> Vec<u8> {
    let mut d = Vec::new();
    for v in [
        4u64,
        17,
        0xffff_8000_0010_0000,
        0,
        0,
        0,
        0,
        0,
        phys_start,
        root,
    ] {
        d.extend(v.to_le_bytes());
    }
    d
}

/// A crash dump under construction: machine pages and notes.
#[derive(Clone)]
struct Dump {
    pages: BTreeMap<u64, Vec<u8>>,
    notes: Vec<u8>,
}

/// What the dump of a simulated guest says about it.
struct Sim {
    host: SimHost,
    arch: ArchSharedInfo,
    width: GuestWidth,
}

impl Sim {
    fn new(spec: GuestSpec) -> Sim {
        Sim::on_host(spec, 1 << 13)
    }

    fn on_host(spec: GuestSpec, max_mfn: u64) -> Sim {
        let host = SimHost::new(max_mfn).expect("simulated host");
        let width = spec.width;
        host.add_guest(&spec).expect("simulated guest");
        let arch = host.arch(DOM).expect("arch");
        Sim { host, arch, width }
    }

    /// Every entry `0..n` as the simulation recorded it.
    fn truth(&self, n: u64) -> Vec<u64> {
        (0..n)
            .map(|p| self.host.expected_entry(DOM, Pfn(p)).expect("entry"))
            .collect()
    }

    fn flags(&self) -> u32 {
        match self.width {
            GuestWidth::W64 => XEN_CRASH_DOM0_P2M_PV,
            GuestWidth::W32 => XEN_CRASH_DOM0_P2M_PV | XEN_CRASH_DOM0_P2M_COMPAT,
        }
    }

    /// The honest dump: every non-zero frame, all of Xen's notes.
    fn dump(&self) -> Dump {
        let mut pages = BTreeMap::new();
        let max = self.host.max_mfn().0;
        for m in 1..=max {
            if self.host.owner(Mfn(m)).is_none() {
                continue;
            }
            let mut page = vec![0u8; PAGE];
            let mut any = false;
            for i in 0..PAGE / 8 {
                let w = self.host.read_word(Mfn(m), i * 8, 8).expect("word");
                any |= w != 0;
                page[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
            }
            if any {
                pages.insert(m, page);
            }
        }
        let mut d = Dump {
            pages,
            notes: Vec::new(),
        };
        d.cpu_notes(2);
        d.notes.extend(note(
            "Xen",
            XEN_ELFNOTE_CRASH_INFO,
            &crash_info_desc(0x3ea0_0000, self.arch.pfn_to_mfn_frame_list_list),
        ));
        d.notes.extend(note(
            "Xen",
            XEN_ELFNOTE_CRASH_DOM0_P2M,
            &dom0_p2m_desc(1, self.flags(), &self.arch, 0),
        ));
        d.notes.extend(note(
            "VMCOREINFO_XEN",
            0,
            b"OSRELEASE=4.17.5\nPAGESIZE=4096\n\0\0\0\0",
        ));
        d
    }

    /// The dump of a pristine Xen: no CRASH_DOM0_P2M note.
    fn pristine_dump(&self) -> Dump {
        let mut d = self.dump();
        d.notes.clear();
        d.cpu_notes(1);
        d.notes.extend(note(
            "Xen",
            XEN_ELFNOTE_CRASH_INFO,
            &crash_info_desc(0x3ea0_0000, self.arch.pfn_to_mfn_frame_list_list),
        ));
        d
    }
}

impl Dump {
    fn cpu_notes(&mut self, cpus: usize) {
        for _ in 0..cpus {
            self.notes.extend(note("CORE", 1, &[0u8; 336]));
            self.notes
                .extend(note("Xen", XEN_ELFNOTE_CRASH_REGS, &[0u8; 32]));
        }
    }

    /// Replaces the CRASH_DOM0_P2M note's descriptor (or adds one).
    fn with_dom0_p2m(&self, desc: &[u8]) -> Dump {
        let mut d = self.clone();
        d.notes.clear();
        d.cpu_notes(1);
        d.notes
            .extend(note("Xen", XEN_ELFNOTE_CRASH_DOM0_P2M, desc));
        d
    }

    /// The ELF bytes: header, one PT_NOTE (index 0), one PT_LOAD per run
    /// of consecutive frames (indices 1..), notes, pages.
    fn bytes(&self) -> Vec<u8> {
        let mut runs: Vec<(u64, Vec<u8>)> = Vec::new();
        for (&m, page) in &self.pages {
            match runs.last_mut() {
                Some((start, data)) if *start + (data.len() / PAGE) as u64 == m => {
                    data.extend(page)
                }
                _ => runs.push((m, page.clone())),
            }
        }
        let phnum = 1 + runs.len();
        let notes_at = 64 + 56 * phnum;
        let mut data_at = (notes_at + self.notes.len()).div_ceil(PAGE) * PAGE;
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[6] = 1;
        b[16..18].copy_from_slice(&4u16.to_le_bytes());
        b[18..20].copy_from_slice(&62u16.to_le_bytes());
        b[20..24].copy_from_slice(&1u32.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[52..54].copy_from_slice(&64u16.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
        let phdr = |b: &mut Vec<u8>, kind: u32, off: u64, paddr: u64, size: u64| {
            b.extend(kind.to_le_bytes());
            b.extend(0u32.to_le_bytes());
            b.extend(off.to_le_bytes());
            b.extend((paddr.wrapping_add(0xffff_8300_0000_0000)).to_le_bytes());
            b.extend(paddr.to_le_bytes());
            b.extend(size.to_le_bytes());
            b.extend(size.to_le_bytes());
            b.extend(0u64.to_le_bytes());
        };
        phdr(&mut b, 4, notes_at as u64, 0, self.notes.len() as u64);
        for (m, data) in &runs {
            phdr(
                &mut b,
                1,
                data_at as u64,
                m * PAGE as u64,
                data.len() as u64,
            );
            data_at += data.len();
        }
        b.extend(&self.notes);
        b.resize(b.len().div_ceil(PAGE) * PAGE, 0);
        for (_, data) in &runs {
            b.extend(data);
        }
        b
    }

    fn write(&self, name: &str) -> PathBuf {
        write_bytes(name, &self.bytes())
    }
}

fn write_bytes(name: &str, b: &[u8]) -> PathBuf {
    let p = tmp(name);
    std::fs::write(&p, b).expect("write the dump");
    p
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Byte offset of field `field` of program header `i`.
fn ph(i: usize, field: usize) -> usize {
    64 + 56 * i + field
}
const P_OFFSET: usize = 8;
const P_PADDR: usize = 24;
const P_FILESZ: usize = 32;
const P_MEMSZ: usize = 40;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let o = Command::new(env!("CARGO_BIN_EXE_hv-feature"))
        .args(args)
        .output()
        .expect("run hv-feature");
    Run {
        code: o.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn json(args: &[&str]) -> (Run, serde_json::Value) {
    let mut a = vec!["--json"];
    a.extend(args);
    let r = run(&a);
    let v = if r.stdout.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(r.stdout.trim()).expect("stdout is one JSON object")
    };
    (r, v)
}

/// `hv-feature vmcore DUMP OPTS...`.
fn vmcore(dump: impl AsRef<Path>, opts: &[&str]) -> Run {
    let mut args = vec!["vmcore", dump.as_ref().to_str().expect("a UTF-8 path")];
    args.extend(opts);
    run(&args)
}

/// `hv-feature --json vmcore DUMP OPTS...`, and its JSON.
fn vmcore_json(dump: impl AsRef<Path>, opts: &[&str]) -> (Run, serde_json::Value) {
    let mut args = vec!["vmcore", dump.as_ref().to_str().expect("a UTF-8 path")];
    args.extend(opts);
    json(&args)
}

fn entries_file(p: &Path) -> Vec<u64> {
    std::fs::read(p)
        .expect("read the entries")
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// A dom0 as Linux lays it out: RAM, a hole of identity entries, more
/// RAM, a missing tail; list and tree.
fn dom0_spec(width: GuestWidth) -> GuestSpec {
    GuestSpec::new(DOM, width, 3000)
        .ram([0..1200, 1700..2300])
        .identity(std::iter::once(1200..1700))
}

#[test]
fn list_and_tree_rebuild_every_entry() {
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let path = s.dump().write("honest.vmcore");
    let out = tmp("honest.entries");
    let (r, v) = vmcore_json(&path, &["--entries-out", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(v["note"], "present");
    assert_eq!(v["source"], "list");
    assert_eq!(v["max_pfn"], 3000);
    assert_eq!(v["max_pfn_from"], "note");
    assert_eq!(v["generation"], 0);
    assert_eq!(v["tree"], "present");
    assert_eq!(v["list_tree"]["compared"], 3000);
    assert_eq!(v["list_tree"]["mismatches"], 0);
    assert_eq!(v["entries"]["valid"], 1800);
    assert_eq!(v["consistent"], true);
    assert_eq!(v["cpus"], 2);
    assert_eq!(v["xen"], "4.17.5");
    assert_eq!(entries_file(&out), s.truth(3000));

    // The note's offset lets a test make a copy without it: an unknown
    // note type is skipped, and the dump reads as a pristine one.
    let at = v["dom0_p2m_note_offset"].as_u64().unwrap() as usize;
    let mut b = std::fs::read(&path).unwrap();
    assert_eq!(b[at + 8..at + 12], XEN_ELFNOTE_CRASH_DOM0_P2M.to_le_bytes());
    put_u32(&mut b, at + 8, 0x0dea_d000);
    let (r2, v2) = vmcore_json(write_bytes("honest-no-note.vmcore", &b), &[]);
    assert_eq!(r2.code, 0, "{}", r2.stderr);
    assert_eq!(v2["note"], "absent");

    // The tree alone gives the same entries.
    let out_tree = tmp("honest-tree.entries");
    let (r, v) = vmcore_json(
        &path,
        &[
            "--source",
            "tree",
            "--entries-out",
            out_tree.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(v["source"], "tree");
    assert!(v["list_tree"].is_null());
    assert_eq!(entries_file(&out_tree), s.truth(3000));

    // Text report, as verify's.
    let t = vmcore(&path, &[]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert!(
        t.stdout.contains("list vs tree: 3000 compared, 0 differ"),
        "{}",
        t.stdout
    );
    assert!(t.stdout.contains("vmcore: consistent"), "{}", t.stdout);
    assert!(
        t.stdout.contains("XEN_ELFNOTE_CRASH_DOM0_P2M: version 1"),
        "{}",
        t.stdout
    );
}

#[test]
fn library_report_names_what_it_read() {
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let path = s.dump().write("lib.vmcore");
    let mut v = VmcoreFile::open(&path).expect("open");
    assert_eq!(v.info().prstatus_notes, 2);
    assert_eq!(v.info().crash_regs_notes, 2);
    let (r, p) = vmcore::read(&mut v, SourcePref::Auto).expect("read");
    assert_eq!(r.note, NoteState::Present);
    assert_eq!(r.source, Source::List);
    assert_eq!(r.tree, TreeState::Present);
    assert!(r.consistent());
    assert_eq!(
        r.crash_info_tree_root,
        Some(s.arch.pfn_to_mfn_frame_list_list)
    );
    assert_eq!(r.xen_phys_start, Some(0x3ea0_0000));
    // One map for shared_info, then levels + 1.
    assert_eq!(r.stats.walk_map_calls, 5);
    for (pfn, want) in s.truth(3000).into_iter().enumerate() {
        assert_eq!(p.raw(Pfn(pfn as u64)).unwrap(), want, "pfn {pfn}");
    }
}

#[test]
fn dropped_tree_is_read_from_the_list_only() {
    let s = Sim::new(dom0_spec(GuestWidth::W64).tree(TreeMode::Dropped));
    let path = s.dump().write("dropped.vmcore");
    let out = tmp("dropped.entries");
    let (r, v) = vmcore_json(&path, &["--entries-out", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(v["source"], "list");
    assert_eq!(v["tree"], "dropped");
    assert!(v["list_tree"].is_null());
    assert_eq!(entries_file(&out), s.truth(3000));
    let t = vmcore(&path, &["--source", "tree"]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert!(t.stderr.contains("dropped its p2m tree"), "{}", t.stderr);

    // The control: the same dump without the note cannot be read.
    let t = vmcore(
        s.pristine_dump()
            .write("dropped-no-note.vmcore")
            .to_str()
            .unwrap(),
        &[],
    );
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert!(t.stderr.contains(NO_NOTE_NOTICE), "{}", t.stderr);
    assert!(t.stderr.contains("dom0 dropped its tree"), "{}", t.stderr);
    assert!(t.stderr.contains("pv=virt-p2m on"), "{}", t.stderr);
}

#[test]
fn pristine_dump_reads_the_tree_up_to_the_last_entry() {
    // Entries above the last RAM pfn are ~0 up to max_pfn.
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let path = s.pristine_dump().write("pristine.vmcore");
    let out = tmp("pristine.entries");
    let (r, v) = vmcore_json(&path, &["--entries-out", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains(NO_NOTE_NOTICE), "{}", r.stderr);
    assert_eq!(v["note"], "absent");
    assert_eq!(v["source"], "tree");
    assert_eq!(v["max_pfn_from"], "tree_last_entry");
    assert_eq!(v["tree_extent"], 1u64 << 27);
    let truth = s.truth(3000);
    let last = truth.iter().rposition(|&e| e != u64::MAX).unwrap() as u64;
    assert_eq!(last, 2299);
    assert_eq!(v["max_pfn"], last + 1);
    let got = entries_file(&out);
    assert_eq!(got[..], truth[..=last as usize]);
    assert!(truth[last as usize + 1..].iter().all(|&e| e == u64::MAX));
    // Distinct pages bound the work: 2^18 leaf positions, a few pages.
    assert!(v["stats"]["distinct_leaves"].as_u64().unwrap() < 16);

    // The list cannot be asked for without the note.
    let t = vmcore(&path, &["--source", "list"]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert!(t
        .stderr
        .contains("only that note locates dom0's linear list"));
}

#[test]
fn pristine_dump_whose_last_entries_are_identity() {
    // max_pfn ends in identity entries: they count as entries.
    let s = Sim::new(
        GuestSpec::new(DOM, GuestWidth::W64, 2600)
            .ram(std::iter::once(0..2000))
            .identity(std::iter::once(2000..2600)),
    );
    let mut v = VmcoreFile::open(&s.pristine_dump().write("pristine-id.vmcore")).unwrap();
    let (r, p) = vmcore::read(&mut v, SourcePref::Auto).expect("read");
    assert_eq!(r.max_pfn_from, MaxPfnFrom::TreeLastEntry);
    let truth = s.truth(2600);
    let last = truth.iter().rposition(|&e| e != u64::MAX).unwrap() as u64;
    assert_eq!(r.max_pfn, last + 1);
    for pfn in 0..r.max_pfn {
        assert_eq!(p.raw(Pfn(pfn)).unwrap(), truth[pfn as usize], "pfn {pfn}");
    }
}

#[test]
fn no_note_and_no_crash_info_says_why() {
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let mut d = s.dump();
    d.notes.clear();
    d.cpu_notes(1);
    let t = vmcore(d.write("nothing.vmcore"), &[]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert!(
        t.stderr
            .contains("neither the XEN_ELFNOTE_CRASH_DOM0_P2M note nor"),
        "{}",
        t.stderr
    );
}

#[test]
fn note_version_2_with_extra_bytes_works() {
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let d = s
        .dump()
        .with_dom0_p2m(&dom0_p2m_desc(2, XEN_CRASH_DOM0_P2M_PV, &s.arch, 24));
    let out = tmp("v2.entries");
    let (r, v) = vmcore_json(
        d.write("v2.vmcore"),
        &["--entries-out", out.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(v["dom0_p2m_note"]["version"], 2);
    assert_eq!(v["dom0_p2m_note"]["descsz"], 72);
    assert_eq!(entries_file(&out), s.truth(3000));
}

#[test]
fn note_too_small_or_version_0_is_refused() {
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let full = dom0_p2m_desc(1, XEN_CRASH_DOM0_P2M_PV, &s.arch, 0);
    let t = vmcore(
        s.dump()
            .with_dom0_p2m(&full[..40])
            .write("small.vmcore")
            .to_str()
            .unwrap(),
        &[],
    );
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert!(
        t.stderr
            .contains("XEN_ELFNOTE_CRASH_DOM0_P2M: bad n_descsz"),
        "{}",
        t.stderr
    );
    assert!(t.stderr.contains("0x28"), "{}", t.stderr);
    let t = vmcore(
        s.dump()
            .with_dom0_p2m(&dom0_p2m_desc(0, XEN_CRASH_DOM0_P2M_PV, &s.arch, 0))
            .write("v0.vmcore")
            .to_str()
            .unwrap(),
        &[],
    );
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert!(t.stderr.contains("bad version"), "{}", t.stderr);
}

#[test]
fn note_without_pv_flag_is_refused() {
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let zero = ArchSharedInfo::default();
    let t = vmcore(
        s.dump()
            .with_dom0_p2m(&dom0_p2m_desc(1, 0, &zero, 0))
            .write("not-pv.vmcore")
            .to_str()
            .unwrap(),
        &[],
    );
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert!(t.stderr.contains("no PV hardware domain"), "{}", t.stderr);
}

#[test]
fn compat_dom0_is_read_with_32_bit_entries() {
    let s = Sim::new(dom0_spec(GuestWidth::W32));
    let path = s.dump().write("compat.vmcore");
    let out = tmp("compat.entries");
    let (r, v) = vmcore_json(&path, &["--entries-out", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(v["width"], "W32");
    assert_eq!(v["list_tree"]["mismatches"], 0);
    // PAE: 3 levels + leaves.
    assert_eq!(v["stats"]["walk_map_calls"], 4);
    let got = entries_file(&out);
    assert_eq!(got, s.truth(3000));
    assert!(got.contains(&0xffff_ffff));

    // The same note without the compat flag reads 64-bit structures and
    // fails on them (or disagrees), never silently agrees.
    let d = s
        .dump()
        .with_dom0_p2m(&dom0_p2m_desc(1, XEN_CRASH_DOM0_P2M_PV, &s.arch, 0));
    let t = vmcore(d.write("compat-as-64.vmcore"), &[]);
    assert_eq!(t.code, 1, "{}", t.stderr);

    // Compat values above 32 bits are refused.
    let mut a = s.arch;
    a.p2m_vaddr = 1 << 32;
    let d = s.dump().with_dom0_p2m(&dom0_p2m_desc(1, s.flags(), &a, 0));
    let t = vmcore(d.write("compat-wide.vmcore"), &[]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert!(
        t.stderr.contains("p2m_vaddr of a 32-bit dom0"),
        "{}",
        t.stderr
    );
}

#[test]
fn odd_generation_falls_back_to_the_tree() {
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let mut a = s.arch;
    a.p2m_generation = 7;
    let d = s.dump().with_dom0_p2m(&dom0_p2m_desc(1, s.flags(), &a, 0));
    let path = d.write("odd.vmcore");
    let (r, v) = vmcore_json(&path, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(v["source"], "tree");
    assert!(
        r.stderr.contains("is odd); reading the tree"),
        "{}",
        r.stderr
    );
    let t = vmcore(&path, &["--source", "list"]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert!(t.stderr.contains("--source tree"), "{}", t.stderr);
}

#[test]
fn list_tree_disagreement_fails_and_names_the_pfn() {
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let mut d = s.dump();
    // Change entry 5 of the list's first leaf; the tree names the same
    // leaf, so point the tree's first mid entry at a copy instead.
    let leaf = s.host.leaf_frame(DOM, 0).unwrap().0;
    let copy = *d.pages.keys().last().unwrap() + 10;
    let mut page = d.pages[&leaf].clone();
    d.pages.insert(copy, page.clone());
    page[5 * 8..6 * 8].copy_from_slice(&0x1234u64.to_le_bytes());
    d.pages.insert(leaf, page);
    let root = s.arch.pfn_to_mfn_frame_list_list;
    let mid = u64::from_le_bytes(d.pages[&root][..8].try_into().unwrap());
    d.pages.get_mut(&mid).unwrap()[..8].copy_from_slice(&copy.to_le_bytes());
    let (r, v) = vmcore_json(d.write("disagree.vmcore"), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(v["list_tree"]["mismatches"], 1);
    assert_eq!(v["list_tree"]["first_mismatch"], 5);
    assert_eq!(v["consistent"], false);
}

#[test]
fn crash_info_root_that_differs_from_the_note_fails() {
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let mut d = s.dump();
    d.notes.clear();
    d.cpu_notes(1);
    d.notes.extend(note(
        "Xen",
        XEN_ELFNOTE_CRASH_INFO,
        &crash_info_desc(0, s.arch.pfn_to_mfn_frame_list_list + 1),
    ));
    d.notes.extend(note(
        "Xen",
        XEN_ELFNOTE_CRASH_DOM0_P2M,
        &dom0_p2m_desc(1, s.flags(), &s.arch, 0),
    ));
    let (r, v) = vmcore_json(d.write("roots.vmcore"), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(v["crash_info_agrees"], false);
    assert!(
        r.stderr.contains("the dump is inconsistent"),
        "{}",
        r.stderr
    );
}

#[test]
fn duplicate_note_is_refused() {
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let mut d = s.dump();
    d.notes.extend(note(
        "Xen",
        XEN_ELFNOTE_CRASH_DOM0_P2M,
        &dom0_p2m_desc(1, s.flags(), &s.arch, 0),
    ));
    let t = vmcore(d.write("dup.vmcore"), &[]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert!(
        t.stderr.contains("two XEN_ELFNOTE_CRASH_DOM0_P2M notes"),
        "{}",
        t.stderr
    );
}

#[test]
fn page_table_loop_is_caught_by_the_tree() {
    // Leaf 0's level-1 entry names the level-1 table itself: the "leaf"
    // is a page of PTEs. The walk stays bounded, and the list disagrees
    // with the tree.
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let (t1, off) = s.host.pte_location(DOM, 1, s.arch.p2m_vaddr).unwrap();
    let mut d = s.dump();
    let pte = u64::from_le_bytes(d.pages[&t1.0][off..off + 8].try_into().unwrap());
    let looped = (pte & 0xfff) | (t1.0 << 12);
    d.pages.get_mut(&t1.0).unwrap()[off..off + 8].copy_from_slice(&looped.to_le_bytes());
    let (r, v) = vmcore_json(d.write("loop1.vmcore"), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(v["list_tree"]["mismatches"].as_u64().unwrap() > 0);

    // The top level names itself: the walk reads the root as every level.
    let (t4, off4) = s.host.pte_location(DOM, 4, s.arch.p2m_vaddr).unwrap();
    let mut d = s.dump();
    let pte = u64::from_le_bytes(d.pages[&t4.0][off4..off4 + 8].try_into().unwrap());
    let looped = (pte & 0xfff) | (t4.0 << 12);
    d.pages.get_mut(&t4.0).unwrap()[off4..off4 + 8].copy_from_slice(&looped.to_le_bytes());
    let t = vmcore(d.write("loop4.vmcore"), &[]);
    assert_eq!(t.code, 1, "{}", t.stderr);
}

#[test]
fn frame_missing_from_the_dump_is_named() {
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let (t1, _) = s.host.pte_location(DOM, 1, s.arch.p2m_vaddr).unwrap();
    let mut d = s.dump();
    d.pages.remove(&t1.0);
    let t = vmcore(d.write("missing.vmcore"), &["--source", "list"]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert!(
        t.stderr.contains(&format!("machine frame {:#x}", t1.0)),
        "{}",
        t.stderr
    );
    assert!(
        t.stderr.contains("is not in the crash dump"),
        "{}",
        t.stderr
    );
}

#[test]
fn huge_max_pfn_in_the_note_is_refused() {
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let mut a = s.arch;
    a.max_pfn = 1 << 41;
    let d = s.dump().with_dom0_p2m(&dom0_p2m_desc(1, s.flags(), &a, 0));
    let t = vmcore(d.write("huge.vmcore"), &[]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert!(
        t.stderr.contains("max_pfn 0x20000000000 out of range"),
        "{}",
        t.stderr
    );
}

/// Runs the CLI on `bytes` and checks exit 1 with `want` in the message;
/// the library gives the same typed error.
fn hostile(name: &str, bytes: &[u8], want: &str) {
    let p = write_bytes(name, bytes);
    let t = vmcore(&p, &[]);
    assert_eq!(t.code, 1, "{name}: {}", t.stderr);
    assert!(t.stderr.contains(want), "{name}: {}", t.stderr);
    assert!(!t.stderr.contains("panicked"), "{name}: {}", t.stderr);
    let e =
        VmcoreFile::open(&p).and_then(|mut v| vmcore::read(&mut v, SourcePref::Auto).map(|_| ()));
    match e {
        Err(e) => assert!(e.is_guest_data(), "{name}: {e}"),
        Ok(()) => panic!("{name}: the library accepted it"),
    }
}

#[test]
fn hostile_headers_give_typed_errors() {
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let good = s.dump().bytes();

    hostile(
        "trunc-ehdr.vmcore",
        &good[..40],
        "shorter than an ELF64 header",
    );
    let mut b = good.clone();
    b[4] = 1;
    hostile("elf32.vmcore", &b, "EI_CLASS");
    let mut b = good.clone();
    b[18] = 3;
    hostile("machine.vmcore", &b, "e_machine");
    // The program header table runs past the end of the file.
    hostile("trunc-phdr.vmcore", &good[..64 + 30], "e_phoff");
    let mut b = good.clone();
    b[56..58].copy_from_slice(&0xffffu16.to_le_bytes());
    hostile("pn-xnum.vmcore", &b, "PN_XNUM");
    let mut b = good.clone();
    b[56..58].copy_from_slice(&0xfffeu16.to_le_bytes());
    hostile("phnum-huge.vmcore", &b, "e_phoff");
    // A load whose bytes lie beyond the file.
    let mut b = good.clone();
    put_u64(&mut b, ph(1, P_FILESZ), u64::MAX - 0xfff);
    put_u64(&mut b, ph(1, P_MEMSZ), u64::MAX - 0xfff);
    hostile("load-size.vmcore", &b, "does not lie inside the file");
    let mut b = good.clone();
    put_u64(&mut b, ph(1, P_OFFSET), u64::MAX - 10);
    hostile("load-offset.vmcore", &b, "does not lie inside the file");
    // A load past 2^52.
    let mut b = good.clone();
    put_u64(&mut b, ph(1, P_PADDR), u64::MAX - 0xfff);
    hostile("load-paddr.vmcore", &b, "past machine address 2^52");
    // p_filesz > p_memsz.
    let mut b = good.clone();
    let f = u64::from_le_bytes(b[ph(1, P_FILESZ)..ph(1, P_FILESZ) + 8].try_into().unwrap());
    put_u64(&mut b, ph(1, P_MEMSZ), f - 1);
    hostile("filesz.vmcore", &b, "p_filesz larger than p_memsz");
    // Two loads at the same machine address.
    let mut b = good.clone();
    let p1 = u64::from_le_bytes(b[ph(1, P_PADDR)..ph(1, P_PADDR) + 8].try_into().unwrap());
    put_u64(&mut b, ph(2, P_PADDR), p1);
    hostile("overlap.vmcore", &b, "overlaps PT_LOAD");
    // The note segment runs past the end of the file.
    let mut b = good.clone();
    let len = b.len() as u64;
    put_u64(&mut b, ph(0, P_FILESZ), len);
    hostile("note-seg.vmcore", &b, "does not lie inside the file");
}

#[test]
fn hostile_note_headers_give_typed_errors() {
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let good = s.dump().bytes();
    let notes_at = u64::from_le_bytes(
        good[ph(0, P_OFFSET)..ph(0, P_OFFSET) + 8]
            .try_into()
            .unwrap(),
    ) as usize;
    // The first note's descsz past the segment.
    let mut b = good.clone();
    put_u32(&mut b, notes_at + 4, 0x7fff_ffff);
    hostile(
        "note-descsz.vmcore",
        &b,
        "n_descsz (the descriptor runs past the PT_NOTE)",
    );
    let mut b = good.clone();
    put_u32(&mut b, notes_at, u32::MAX);
    hostile("note-namesz.vmcore", &b, "n_namesz");
    // A segment that ends inside a note header.
    let mut b = good.clone();
    let size = u64::from_le_bytes(
        good[ph(0, P_FILESZ)..ph(0, P_FILESZ) + 8]
            .try_into()
            .unwrap(),
    );
    let first = 12 + 8 + 336;
    put_u64(&mut b, ph(0, P_FILESZ), first as u64 + 6);
    hostile("note-trunc.vmcore", &b, "note header (truncated)");
    assert!(size > first as u64 + 6);
    // CRASH_INFO too small to hold xen_phys_start and the root.
    let mut d = s.dump();
    d.notes.clear();
    d.notes
        .extend(note("Xen", XEN_ELFNOTE_CRASH_INFO, &[0u8; 12]));
    hostile(
        "crash-info-small.vmcore",
        &d.bytes(),
        "XEN_ELFNOTE_CRASH_INFO: bad n_descsz",
    );
    // No loads at all.
    let mut b = good[..64 + 56].to_vec();
    b[56..58].copy_from_slice(&1u16.to_le_bytes());
    b.extend(&good[notes_at..notes_at + size as usize]);
    let at = b.len() - size as usize;
    put_u64(&mut b, ph(0, P_OFFSET), at as u64);
    hostile("no-loads.vmcore", &b, "number of PT_LOAD segments");
}

#[test]
fn tree_errors_are_reported_without_losing_the_list() {
    // A mid entry of 0 makes the tree unreadable: the list is still
    // rebuilt and written, and the run fails (exit 1) saying why.
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let mut d = s.dump();
    let root = s.arch.pfn_to_mfn_frame_list_list;
    let mid = u64::from_le_bytes(d.pages[&root][..8].try_into().unwrap());
    d.pages.get_mut(&mid).unwrap()[8..16].copy_from_slice(&0u64.to_le_bytes());
    let out = tmp("tree-bad.entries");
    let (r, v) = vmcore_json(
        d.write("tree-bad.vmcore"),
        &["--entries-out", out.to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(v["tree"], "unreadable");
    assert!(v["tree_error"]
        .as_str()
        .unwrap()
        .contains("mid page entry 1"));
    assert_eq!(entries_file(&out), s.truth(3000));
}

#[test]
fn usage_and_io_errors_exit_2() {
    let t = vmcore("/nonexistent/dump", &[]);
    assert_eq!(t.code, 2, "{}", t.stderr);
    assert!(t.stderr.contains("cannot read crash dump"), "{}", t.stderr);
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let p = s.dump().write("usage.vmcore");
    for opts in [
        &["--source", "both"][..],
        &["--bogus", "x"],
        &["--source"],
        &["--source", "list", "--source", "tree"],
    ] {
        let t = vmcore(&p, opts);
        assert_eq!(t.code, 2, "{opts:?}: {}", t.stderr);
    }
    let t = vmcore(&p, &["--entries-out", "/nonexistent/dir/out"]);
    assert_eq!(t.code, 2, "{}", t.stderr);
    assert!(
        t.stderr.contains("cannot write --entries-out"),
        "{}",
        t.stderr
    );
}

#[test]
fn json_output_is_one_object_and_no_progress() {
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let p = s.dump().write("json.vmcore");
    let (r, _) = vmcore_json(&p, &[]);
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout.lines().count(), 1);
    assert!(!r.stdout.contains("reading frame"));
    assert!(!r.stderr.contains("reading frame"));
}

#[test]
fn library_errors_are_typed() {
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let mut a = s.arch;
    a.p2m_vaddr += 1;
    let d = s.dump().with_dom0_p2m(&dom0_p2m_desc(1, s.flags(), &a, 0));
    let mut v = VmcoreFile::open(&d.write("unaligned.vmcore")).unwrap();
    match vmcore::read(&mut v, SourcePref::List) {
        Err(Error::P2mVaddrUnaligned { dom, vaddr }) => {
            assert_eq!(dom, DomId(0));
            assert_eq!(vaddr, a.p2m_vaddr);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn progress_shows_on_a_terminal_only() {
    // 4096 distinct leaves (one RAM pfn in each): a read large enough to
    // show progress. `script` (bsdutils, essential on Debian) gives the
    // command a terminal.
    let leaves = 4096u64;
    let spec = GuestSpec::new(DOM, GuestWidth::W64, leaves * 512)
        .ram((0..leaves).map(|k| k * 512..k * 512 + 1))
        .tree(TreeMode::Dropped);
    let s = Sim::on_host(spec, 1 << 15);
    let p = s.dump().write("progress.vmcore");
    let bin = env!("CARGO_BIN_EXE_hv-feature");
    let on_tty = |args: &str| {
        let o = Command::new("script")
            .args([
                "-qec",
                &format!("{bin} {args} {}", p.display()),
                "/dev/null",
            ])
            .output()
            .expect("run script(1) from bsdutils");
        assert!(o.status.success(), "{o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let text = on_tty("vmcore");
    assert!(text.contains("vmcore: reading frame"), "{text}");
    assert!(text.contains("vmcore: read 4096 frames"), "{text}");
    let json = on_tty("--json vmcore");
    assert!(!json.contains("reading frame"), "{json}");
    // Without a terminal, no progress either.
    let r = vmcore(&p, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("reading frame"), "{}", r.stderr);
    std::fs::remove_file(&p).expect("remove the 19 MB dump");
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_corruption_gives_typed_data_errors_only() {
    // Honest dumps with a few bytes changed in the headers, the notes or
    // the p2m's own pages: whatever happens, no panic, no I/O error (an
    // I/O error would mean a read past what was checked), and any error
    // is the dump's (exit 1). Entries that survive are the tree's or the
    // list's own, so a success with the note must still be consistent or
    // be reported as inconsistent: never a crash.
    let s = Sim::new(dom0_spec(GuestWidth::W64));
    let honest = s.dump();
    let good = honest.bytes();
    let pristine = s.pristine_dump().bytes();
    let notes_at = u64::from_le_bytes(
        good[ph(0, P_OFFSET)..ph(0, P_OFFSET) + 8]
            .try_into()
            .unwrap(),
    ) as usize;
    let notes_len = honest.notes.len();
    // File offsets of the p2m's own pages (page tables, tree, leaves).
    let data_at = (notes_at + notes_len).div_ceil(PAGE) * PAGE;
    let p2m_pages: Vec<usize> = {
        let mut offs = Vec::new();
        let mut at = data_at;
        for &m in honest.pages.keys() {
            if s.host.owner(Mfn(m)) == Some(DOM) {
                offs.push(at);
            }
            at += PAGE;
        }
        offs
    };
    let interesting = [
        0u64,
        1,
        0xfff,
        0x1000,
        u32::MAX as u64,
        u64::MAX,
        1 << 40,
        1 << 52,
    ];
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let path = tmp("random.vmcore");
    let (mut ok, mut refused) = (0, 0);
    for round in 0..400 {
        let mut b = if round % 8 == 7 {
            pristine.clone()
        } else {
            good.clone()
        };
        for _ in 0..1 + rng.below(3) {
            let at = match rng.below(4) {
                0 => rng.below(64),
                1 => 64 + rng.below(56 * (1 + honest.pages.len().min(8))),
                2 => notes_at + rng.below(notes_len),
                _ => p2m_pages[rng.below(p2m_pages.len())] + rng.below(PAGE),
            };
            let at = at.min(b.len() - 8) & !3;
            if rng.below(2) == 0 {
                let v = interesting[rng.below(interesting.len())];
                b[at..at + 8].copy_from_slice(&v.to_le_bytes());
            } else {
                b[at] ^= 1 << rng.below(8);
            }
        }
        std::fs::write(&path, &b).unwrap();
        for source in [SourcePref::Auto, SourcePref::List, SourcePref::Tree] {
            let r =
                VmcoreFile::open(&path).and_then(|mut v| vmcore::read(&mut v, source).map(|_| ()));
            match r {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert!(e.is_guest_data(), "round {round} {source:?}: {e}");
                    refused += 1;
                }
            }
        }
    }
    // Both outcomes happened, so the corruption reached the checks.
    assert!(ok > 100 && refused > 100, "ok {ok}, refused {refused}");
}

#[test]
fn unpublished_list_reads_the_tree_with_the_notes_max_pfn() {
    // An old dom0 that keeps only its tree, on a patched Xen: the note has
    // p2m_cr3 0, so auto reads the tree with the note's max_pfn (exact,
    // unlike a pristine dump), and list is refused.
    let s = Sim::new(dom0_spec(GuestWidth::W64).publish_list(false));
    assert_eq!(s.arch.p2m_cr3, 0);
    let path = s.dump().write("no-list.vmcore");
    let out = tmp("no-list.entries");
    let (r, v) = vmcore_json(&path, &["--entries-out", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("p2m_cr3 is 0); reading the tree"),
        "{}",
        r.stderr
    );
    assert_eq!(v["source"], "tree");
    assert_eq!(v["max_pfn"], 3000);
    assert_eq!(v["max_pfn_from"], "note");
    assert_eq!(entries_file(&out), s.truth(3000));
    let t = vmcore(&path, &["--source", "list"]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert!(
        t.stderr.contains("does not publish a linear p2m list"),
        "{}",
        t.stderr
    );
}
