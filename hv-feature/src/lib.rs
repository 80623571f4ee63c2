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
//! - [`core`]: an `xl dump-core` file as a backend, and its p2m rebuilt from
//!   the dump's own `shared_info` and page tables, checked against `.xen_p2m`.
//! - [`vmcore`]: a Xen host crash dump (`/proc/vmcore` after Xen crashed)
//!   as a backend, and dom0's p2m rebuilt from it with the crash note
//!   `XEN_ELFNOTE_CRASH_DOM0_P2M`, or from the tree without it.
//!
//! Every operation is written once against [`backend::Backend`]:
//! [`privcmd::Privcmd`] on a real dom0, [`sim::SimHost`] on simulated
//! machine memory, [`core::CoreFile`] on a guest's dump, [`vmcore::VmcoreFile`]
//! on a host crash dump.

pub mod backend;
pub mod core;
pub mod domain;
pub mod error;
pub mod features;
pub mod p2m;
pub mod privcmd;
pub mod shared_info;
pub mod sim;
pub mod types;
pub mod vmcore;

pub use backend::{Backend, Mapping};
pub use error::{Error, ErrorClass};
pub use types::{DomId, GuestWidth, Mfn, Pfn};
