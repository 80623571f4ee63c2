//! The one error type of this crate. Each variant names the value that was
//! wrong and, where a user can act, what to do.

use crate::types::{DomId, Pfn};

/// Everything that can go wrong, from a missing device to a hostile guest.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- Environment: the host, the device, the hypervisor interface ----
    /// `/dev/xen/privcmd` (or `/dev/xen/hypercall`) does not exist.
    #[error("{path} not found: this is not a Xen dom0, or the xen-privcmd module is not loaded (try `modprobe xen-privcmd`)")]
    NoPrivcmd {
        /// The missing device node.
        path: &'static str,
    },
    /// Opening a device failed for another reason.
    #[error("cannot open {path}: {source} (run as root in dom0)")]
    Open {
        /// The device node.
        path: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// A hypercall returned an error.
    #[error("hypercall {name} failed: {errno}{hint}")]
    Hypercall {
        /// Which hypercall (e.g. `domctl getdomaininfo`).
        name: &'static str,
        /// The errno Xen or the kernel returned.
        errno: nix::errno::Errno,
        /// What to do about it, or empty.
        hint: &'static str,
    },
    /// Mapping a frame failed (a per-frame error of a batched map, or the
    /// mmap itself).
    #[error("mapping frame {frame:#x} (entry {index} of a batch of {count}) of domain {dom} failed: {errno}")]
    MapFrame {
        /// The domain whose frame was mapped.
        dom: DomId,
        /// The frame number.
        frame: u64,
        /// Its index in the batch.
        index: usize,
        /// Frames in the batch.
        count: usize,
        /// The error.
        errno: nix::errno::Errno,
    },
    /// The domain does not exist.
    #[error("domain {0} does not exist")]
    NoSuchDomain(DomId),
    /// The domain is not a PV guest, so it has no guest-maintained p2m.
    #[error("domain {0} is not a PV guest (HVM and PVH guests have no guest p2m to read)")]
    NotPv(DomId),
    /// Xen reported a guest address size that is neither 32 nor 64 bits.
    #[error("domain {dom} has guest address size {bits} bits; only 32 and 64 are understood")]
    BadGuestWidth {
        /// The domain.
        dom: DomId,
        /// What Xen reported.
        bits: u64,
    },
    /// A value read from the hypervisor is out of the range we understand.
    #[error("hypervisor returned an unexpected {what}: {value:#x}")]
    Unexpected {
        /// What the value is.
        what: &'static str,
        /// The value.
        value: u64,
    },

    // ---- Guest data: shared_info, page tables, list, tree ----
    // (reading rules of DESIGN.md section 1; each names the bad value)
    /// `max_pfn` is 0 or above the bound.
    #[error("max_pfn {value:#x} out of range (must be 1..={bound:#x})")]
    BadMaxPfn {
        /// The guest's value.
        value: u64,
        /// The largest value accepted.
        bound: u64,
    },
    /// A pfn outside `[0, max_pfn)` was asked for.
    #[error("pfn {pfn} is not below max_pfn {max_pfn:#x}")]
    PfnOutOfRange {
        /// The pfn asked for.
        pfn: Pfn,
        /// The p2m's entry count.
        max_pfn: u64,
    },
}

impl Error {
    /// True when the error is about data the guest controls (its p2m,
    /// page tables or shared_info failed a check), false when it is about
    /// the environment (device, permissions, hypervisor interface). The
    /// CLI exits 1 for the former and 2 for the latter.
    pub fn is_guest_data(&self) -> bool {
        !matches!(
            self,
            Error::NoPrivcmd { .. }
                | Error::Open { .. }
                | Error::Hypercall { .. }
                | Error::MapFrame { .. }
                | Error::NoSuchDomain(_)
                | Error::NotPv(_)
                | Error::BadGuestWidth { .. }
                | Error::Unexpected { .. }
        )
    }
}
