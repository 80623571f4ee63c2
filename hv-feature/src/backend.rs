// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The interface every operation of this crate is written against: the
//! typed questions the reader asks about the host and a domain, and a
//! read-only map of a batch of frames.
//!
//! [`crate::privcmd::Privcmd`] implements it on a real Xen dom0 (it alone
//! encodes hypercall buffers); the dump backends ([`crate::dump_core`],
//! [`crate::vmcore`]) and, with the `sim` feature, the simulator answer
//! the same calls from their own data.

use crate::domain::DomainInfo;
use crate::error::Error;
use crate::features::{Features, XenVersion};
use crate::types::{DomId, GuestWidth, Mfn};
use nix::errno::Errno;

pub use crate::sys::Mem;

/// A read-only mapping of consecutive pages, unmapped when dropped.
///
/// Mappings are `Send` and `Sync`: they are read only through [`Mem`],
/// whose volatile word loads are sound from any thread.
pub trait Mapping: Send + Sync {
    /// The mapped bytes as they are now, `PAGE_SIZE` bytes per frame in
    /// request order. Another party may write them while they are read.
    fn mem(&self) -> Mem<'_>;
}

/// The error of an operation a backend does not offer (a dump file has no
/// running Xen to ask for its features, say): what a Xen without the
/// hypercall answers.
pub fn unsupported(name: &'static str) -> Error {
    Error::Hypercall {
        name,
        errno: Errno::ENOSYS,
        hint: " (not available from this backend)",
    }
}

/// Where domain facts and foreign frames come from.
pub trait Backend {
    /// The guard type of a mapping.
    type Map: Mapping;

    /// What getdomaininfo says about `dom` ([`Error::NoSuchDomain`] if it
    /// does not exist).
    fn domain_info(&self, dom: DomId) -> Result<DomainInfo, Error>;

    /// The width of PV domain `dom` (its address size).
    fn guest_width(&self, dom: DomId) -> Result<GuestWidth, Error>;

    /// The host's largest machine frame number.
    fn max_mfn(&self) -> Result<Mfn, Error>;

    /// The base mfn of each 2 MiB extent of the host's M2P table, at most
    /// `max_extents` of them, in mfn order.
    fn m2p_extents(&self, max_extents: u32) -> Result<Vec<Mfn>, Error> {
        let _ = max_extents;
        Err(unsupported("memory_op machphys_mfn_list"))
    }

    /// Submap 0 of the features Xen reports to the caller.
    fn features(&self) -> Result<Features, Error> {
        Err(unsupported("xen_version get_features"))
    }

    /// The running Xen's version.
    fn xen_version(&self) -> Result<XenVersion, Error> {
        Err(unsupported("xen_version version"))
    }

    /// Sets `dom`'s maximum reservation, in KiB (what `xl mem-max` does).
    fn set_max_mem(&self, dom: DomId, max_kb: u64) -> Result<(), Error> {
        let _ = (dom, max_kb);
        Err(unsupported("domctl max_mem"))
    }

    /// Maps `frames` of domain `dom` read-only, one page each, in order.
    /// Every per-frame error is checked: if any frame fails, the call
    /// returns [`Error::MapFrame`] naming the first failing frame.
    fn map_frames(&self, dom: DomId, frames: &[Mfn]) -> Result<Self::Map, Error>;
}

#[cfg(test)]
mod tests {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn every_view_is_send_and_sync() {
        assert_send_sync::<crate::privcmd::ForeignMap>();
        assert_send_sync::<crate::dump_core::CoreMap>();
        assert_send_sync::<crate::vmcore::VmcoreMap>();
        assert_send_sync::<crate::sim::SimMap>();
        assert_send_sync::<super::Mem<'static>>();
    }
}
