// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `hv-feature vmcore` on a real Xen host crash dump.
//!
//! Fixtures (`tests/fixtures/`):
//! - `dom0-kdump.vmcore.gz`: made from the `/proc/vmcore` that the kdump
//!   kernel saved in this project's QEMU kdump boot (the patched Xen 4.17.5,
//!   which writes `XEN_ELFNOTE_CRASH_DOM0_P2M`; Debian's 6.1 dom0 with
//!   `max_pfn` 0x10061, keeping its tree; 384 MiB of machine memory), by
//!   `make-vmcore-fixture.py`: the dump's own notes and the 138 machine
//!   pages of dom0's tree and of its list's page tables and leaves, each at
//!   its machine address; every other page left out (570 KB, 100 KB
//!   gzipped).
//! - `dom0-kdump-live-p2m.bin.gz`: dom0's p2m as dom0 read it just before
//!   the crash (`hv-feature p2m 0 --entries-out`): the truth.

use std::path::{Path, PathBuf};
use std::process::Command;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const MAX_PFN: usize = 0x10061;
const IDENTITY: u64 = 1 << 62;

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vmcore-real");
    std::fs::create_dir_all(&d).expect("create the test folder");
    d.join(name)
}

fn gunzip(name: &str) -> Vec<u8> {
    let o = Command::new("gzip")
        .arg("-dc")
        .arg(Path::new(FIXTURES).join(name))
        .output()
        .expect("run gzip");
    assert!(o.status.success(), "gzip -dc {name}");
    o.stdout
}

fn entries(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn vmcore(file: &Path, source: &str, out: &Path) -> (i32, serde_json::Value, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_hv-feature"))
        .args(["--json", "vmcore"])
        .arg(file)
        .args(["--source", source, "--entries-out"])
        .arg(out)
        .output()
        .expect("run hv-feature");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (o.status.code().expect("exit code"), v, stderr)
}

#[test]
fn real_dump_list_and_tree_equal_dom0s_live_p2m() {
    let live = entries(&gunzip("dom0-kdump-live-p2m.bin.gz"));
    assert_eq!(live.len(), MAX_PFN);
    let dump = tmp("dom0.vmcore");
    std::fs::write(&dump, gunzip("dom0-kdump.vmcore.gz")).unwrap();
    for (source, got_source) in [("auto", "list"), ("list", "list"), ("tree", "tree")] {
        let out = tmp(&format!("dom0-{source}.entries"));
        let (code, v, err) = vmcore(&dump, source, &out);
        assert_eq!(code, 0, "{source}: {err}");
        assert_eq!(v["note"], "present");
        assert_eq!(v["source"], got_source);
        assert_eq!(v["max_pfn"], MAX_PFN);
        assert_eq!(v["xen_phys_start"], 0x2780_0000u64);
        let got = entries(&std::fs::read(&out).unwrap());
        assert!(
            got == live,
            "{source}: rebuilt p2m differs from the live one"
        );
        if source == "auto" {
            assert_eq!(v["list_tree"]["compared"], MAX_PFN);
            assert_eq!(v["list_tree"]["mismatches"], 0);
            // 4 levels of page tables and the leaves.
            assert_eq!(v["stats"]["walk_map_calls"], 5);
            assert_eq!(v["entries"]["valid"], 65536);
            assert_eq!(v["entries"]["identity"], 97);
        }
    }
}

#[test]
fn real_dump_without_the_note_reads_the_tree_past_max_pfn() {
    // The same dump with the note's type changed: what a pristine Xen
    // leaves. The tree gives every live entry, then the IDENTITY entries
    // Linux left in the rest of its last leaf.
    let live = entries(&gunzip("dom0-kdump-live-p2m.bin.gz"));
    let dump = tmp("dom0-b.vmcore");
    std::fs::write(&dump, gunzip("dom0-kdump.vmcore.gz")).unwrap();
    let (code, v, err) = vmcore(&dump, "auto", &tmp("probe.entries"));
    assert_eq!(code, 0, "{err}");
    let at = v["dom0_p2m_note_offset"].as_u64().unwrap() as usize;
    let mut b = std::fs::read(&dump).unwrap();
    assert_eq!(b[at + 8..at + 12], 0x100_0003u32.to_le_bytes());
    b[at + 8..at + 12].copy_from_slice(&0x0dea_d000u32.to_le_bytes());
    let pristine = tmp("dom0-no-note.vmcore");
    std::fs::write(&pristine, &b).unwrap();
    let out = tmp("dom0-no-note.entries");
    let (code, v, err) = vmcore(&pristine, "auto", &out);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("no XEN_ELFNOTE_CRASH_DOM0_P2M note"), "{err}");
    assert_eq!(v["note"], "absent");
    assert_eq!(v["source"], "tree");
    assert_eq!(v["max_pfn_from"], "tree_last_entry");
    assert_eq!(v["max_pfn"], 0x10200);
    let got = entries(&std::fs::read(&out).unwrap());
    assert!(
        got[..MAX_PFN] == live[..],
        "the tree's entries differ from the live ones"
    );
    for (pfn, &e) in got.iter().enumerate().skip(MAX_PFN) {
        assert_eq!(e, IDENTITY | pfn as u64, "pfn {pfn:#x}");
    }
    let (code, _, err) = vmcore(&pristine, "list", &tmp("x.entries"));
    assert_eq!(code, 1, "{err}");
}
