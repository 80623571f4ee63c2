// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Replays every saved fuzz input (`hv-feature/fuzz/regressions/<target>/`)
//! through the same decoder and property checks as the fuzz targets,
//! with the heap measured by a counting allocator. Runs anywhere.

#[path = "../fuzz/counting_alloc.rs"]
mod counting_alloc;

use hv_feature::sim::fuzz::{run, Target};
use std::path::Path;

#[global_allocator]
static HEAP: counting_alloc::Counting = counting_alloc::Counting::new();

/// One test, so that no other test's allocations count in a case's peak.
#[test]
fn saved_fuzz_inputs_hold_every_property() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut cases = 0;
    let mut failed = Vec::new();
    for target in [Target::Read, Target::Race] {
        let tdir = dir.join(target.name());
        let mut files: Vec<_> = std::fs::read_dir(&tdir)
            .unwrap_or_else(|e| panic!("{}: {e}", tdir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| f.is_file())
            .collect();
        files.sort();
        assert!(
            !files.is_empty(),
            "no saved inputs under {}",
            tdir.display()
        );
        for f in &files {
            let data = std::fs::read(f).unwrap();
            cases += 1;
            match run(target, &data, Some(&HEAP)) {
                Ok(o) => {
                    eprintln!(
                        "{}: read {}, verify {}, peak {} KiB (bound {} KiB)",
                        f.display(),
                        o.read,
                        o.verify,
                        o.peak_bytes / 1024,
                        o.bound_bytes / 1024
                    );
                    // An input that once found something must still reach
                    // the reader, or it no longer tests what it found.
                    let name = f.file_name().unwrap().to_string_lossy();
                    if !name.starts_with("seed-") && !o.built {
                        failed.push(format!("{}: the guest no longer builds", f.display()));
                    }
                }
                Err(v) => failed.push(format!("{}: {v}", f.display())),
            }
        }
    }
    assert!(cases > 0, "no saved inputs under {}", dir.display());
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn empty_and_tiny_inputs_are_cases_too() {
    for data in [&[][..], &[0], &[1, 2, 3], &[0xff; 64]] {
        for t in [Target::Read, Target::Race] {
            run(t, data, None).unwrap();
        }
    }
}
