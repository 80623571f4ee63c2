// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `xen-abi`: header ABI diff of two Xen trees (see `xen-abi --help`).

use std::process::ExitCode;
use xen_abi::cli;

fn main() -> ExitCode {
    if let Ok(cli::Options {
        command: cli::Command::History { dir, expected, abi },
        ..
    }) = cli::parse_args(std::env::args().skip(1))
    {
        if let Some(abi) = abi {
            return match xen_abi::history::run_worker(&dir, abi) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("xen-abi: {e}");
                    ExitCode::from(2)
                }
            };
        }
        return match xen_abi::history::run(&dir, expected.as_deref()) {
            Ok(outcome) => {
                print!("{}", outcome.text);
                ExitCode::from(if outcome.mismatches.is_empty() { 0 } else { 1 })
            }
            Err(e) => {
                eprintln!("xen-abi: {e}");
                ExitCode::from(2)
            }
        };
    }
    let outcome = cli::parse_args(std::env::args().skip(1)).and_then(|options| {
        let report = cli::run(&options.command)?;
        Ok((options, report))
    });
    match outcome {
        Ok((options, report)) => {
            if options.json {
                println!("{}", report.to_json());
                eprintln!("{}", report.summary_line());
            } else {
                print!("{}", report.to_text());
            }
            ExitCode::from(cli::exit_status(&report) as u8)
        }
        Err(e) => {
            eprintln!("xen-abi: {e}");
            ExitCode::from(2)
        }
    }
}
