// SPDX-License-Identifier: Apache-2.0 OR MIT
//! dom0's p2m rebuilt from a Xen host crash dump, printed as runs of
//! machine frames: no Xen needed.
//!
//! ```text
//! cargo run --example vmcore_runs -- /var/crash/vmcore
//! ```

use hv_feature::p2m::SourcePref;
use hv_feature::vmcore::{self, VmcoreFile};
use hv_feature::ErrorClass;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: vmcore_runs FILE");
        return ExitCode::from(2);
    };
    let read = VmcoreFile::open(Path::new(&path)).and_then(|mut dump| {
        let (report, view) = vmcore::read(&mut dump, SourcePref::Auto)?;
        println!("{path}: {report}");
        let (mut runs, mut pages) = (0u64, 0u64);
        for run in view.runs() {
            if runs < 8 {
                println!("  {run}");
            }
            runs += 1;
            pages += run.len;
        }
        println!("dom0: {pages} pages in {runs} runs of consecutive machine frames");
        Ok(())
    });
    match read {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmcore_runs: {e}");
            match e.class() {
                ErrorClass::GuestData => ExitCode::from(1),
                _ => ExitCode::from(2),
            }
        }
    }
}
