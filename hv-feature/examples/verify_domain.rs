// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Reads a PV domain's p2m through `/dev/xen/privcmd` and checks it, as a
//! toolstack would: run as root in dom0.
//!
//! ```text
//! cargo run --example verify_domain -- DOMID
//! ```
//!
//! Prints what the read cost, the first runs of machine frames, and the
//! report of the whole-p2m check. Exit status as the `hv-feature` CLI's:
//! 0 consistent, 1 the domain's data failed a check, 2 usage or
//! environment.

use hv_feature::p2m::{self, P2m, ReadOptions};
use hv_feature::privcmd::Privcmd;
use hv_feature::{DomId, Error, ErrorClass};
use std::process::ExitCode;

fn run(dom: DomId) -> Result<bool, Error> {
    let xen = Privcmd::open()?;
    let view = P2m::read(&xen, dom, &ReadOptions::default())?;
    println!(
        "domain {dom}: {} entries from the {} ({}-bit)",
        view.max_pfn(),
        view.source(),
        view.width().bytes() * 8
    );
    println!("  {}", view.stats());
    println!("  entries: {}", view.entry_counts());
    for run in view.runs().take(8) {
        println!("  {run}");
    }
    // The M2P check of the view, against the backend it was read from.
    view.check_m2p()?;
    let report = p2m::verify(&xen, dom, &ReadOptions::default())?;
    println!("{report}");
    Ok(report.consistent())
}

fn main() -> ExitCode {
    let Some(dom) = std::env::args()
        .nth(1)
        .and_then(|a| a.parse::<u16>().ok())
        .map(DomId)
    else {
        eprintln!("usage: verify_domain DOMID");
        return ExitCode::from(2);
    };
    match run(dom) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("verify_domain: {e}");
            match e.class() {
                ErrorClass::GuestData => ExitCode::from(1),
                _ => ExitCode::from(2),
            }
        }
    }
}
