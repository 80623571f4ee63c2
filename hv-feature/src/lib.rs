// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The tool side of Xen's virtually mapped linear p2m list.
//!
//! - [`features`]: `XENVER_get_features` as a typed set, and the Xen version.
//! - [`domain`]: facts about a domain (getdomaininfo, guest width, the host's
//!   maximum mfn, the M2P).
//! - [`shared_info`]: a domain's `shared_info` arch fields, for either width.
//! - [`p2m`]: the hardened reader of the linear list and the 3-level tree,
//!   guarded by `p2m_generation`.
//!
//! - [`dump_core`]: an `xl dump-core` file as a backend, and its p2m rebuilt from
//!   the dump's own `shared_info` and page tables, checked against `.xen_p2m`.
//! - [`vmcore`]: a Xen host crash dump (`/proc/vmcore` after Xen crashed)
//!   as a backend, and dom0's p2m rebuilt from it with the crash note
//!   `XEN_ELFNOTE_CRASH_DOM0_P2M`, or from the tree without it.
//!
//! Every operation is written once against [`backend::Backend`]:
//! [`privcmd::Privcmd`] on a real dom0, [`dump_core::CoreFile`] on a
//! guest's dump, [`vmcore::VmcoreFile`] on a host crash dump, and with the
//! `sim` feature (off by default) `sim::SimHost` on simulated machine
//! memory, with the fuzzing harness `sim::fuzz`.
//!
//! All `unsafe` code of the crate is in one private module (the privcmd
//! system calls and the volatile reads of guest-shared memory); the lint
//! denies it everywhere else.
//!
//! # Example
//!
//! On a Xen dom0 (as root): the features Xen reports, a domain's p2m read
//! and checked, a lookup, its runs of frames, and the whole-p2m check.
//! `hv-feature/examples/verify_domain.rs` is the same as a program.
//!
//! ```no_run
//! use hv_feature::features::{self, Features};
//! use hv_feature::p2m::{self, P2m, ReadOptions, SourcePref};
//! use hv_feature::privcmd::Privcmd;
//! use hv_feature::{DomId, Pfn};
//!
//! fn main() -> Result<(), hv_feature::Error> {
//!     let xen = Privcmd::open()?;
//!     let f = features::query(&xen)?;
//!     println!("Xen {}, XENFEAT_virtual_p2m {}", features::version(&xen)?,
//!              f.contains(Features::VIRTUAL_P2M));
//!
//!     // The list when the guest publishes it, else its tree; every value
//!     // the guest wrote is checked, and each entry against the M2P.
//!     let dom = DomId(1);
//!     let opts = ReadOptions::default().with_source(SourcePref::Auto).with_verify_m2p(true);
//!     let view = P2m::read(&xen, dom, &opts)?;
//!     println!("{} entries from the {}: {}", view.max_pfn(), view.source(), view.stats());
//!     println!("pfn 0: {}", view.lookup(Pfn(0))?);
//!     if let Some(mfn) = view.mfn(Pfn(1))? {
//!         println!("pfn 1 is in machine frame {mfn}");
//!     }
//!     for run in view.runs().take(8) {
//!         println!("{run}");
//!     }
//!
//!     // List against tree against M2P, every pfn, under one generation.
//!     let report = p2m::verify(&xen, dom, &ReadOptions::default())?;
//!     println!("{report}");
//!     Ok(())
//! }
//! ```

#![deny(unsafe_code)]

pub mod backend;
pub mod domain;
pub mod dump_core;
mod elf;
pub mod error;
pub mod features;
mod le;
pub mod p2m;
pub mod privcmd;
pub mod shared_info;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
mod sys;
pub mod types;
pub mod vmcore;

pub use backend::{Backend, Mapping, Mem};
pub use error::{Error, ErrorClass};
pub use types::{DomId, GuestWidth, Mfn, Pfn};
