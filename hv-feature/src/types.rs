// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Small typed newtypes for the integers Xen passes around, so that a pfn
//! and an mfn can never be swapped silently.

use serde::Serialize;
use std::fmt;

macro_rules! newtype {
    ($(#[$doc:meta])* $name:ident($inner:ty), $fmt:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "(", $fmt, ")"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, $fmt, self.0)
            }
        }
    };
}

newtype!(
    /// A domain id.
    DomId(u16), "{}"
);
newtype!(
    /// A machine frame number: a frame of host memory.
    Mfn(u64), "{:#x}"
);
newtype!(
    /// A guest (pseudo-)physical frame number: an index into the p2m.
    Pfn(u64), "{:#x}"
);

impl DomId {
    /// `DOMID_SELF`: the calling domain, how dom0 names its own frames
    /// (naming domid 0 in a foreign map is refused with `ESRCH`).
    pub const SELF: DomId = DomId(xen_sys::DOMID_SELF as u16);
    /// `DOMID_XEN`: Xen's own pages, e.g. the M2P table.
    pub const XEN: DomId = DomId(xen_sys::DOMID_XEN as u16);
}

/// Width of a PV guest's `unsigned long`: the ABI its shared_info and page
/// tables follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum GuestWidth {
    /// 32-bit PV guest: 4-byte fields, 3-level PAE page tables.
    W32,
    /// 64-bit PV guest: 8-byte fields, 4-level page tables.
    W64,
}

impl GuestWidth {
    /// Bytes of a guest `unsigned long` (and of one p2m entry).
    pub fn bytes(self) -> usize {
        match self {
            GuestWidth::W32 => 4,
            GuestWidth::W64 => 8,
        }
    }

    /// The width for a guest address size in bytes (4 or 8), as returned
    /// by `XEN_DOMCTL_get_address_size` divided by 8.
    pub fn from_bytes(bytes: u64) -> Option<GuestWidth> {
        match bytes {
            4 => Some(GuestWidth::W32),
            8 => Some(GuestWidth::W64),
            _ => None,
        }
    }
}

/// Size of a guest page and of a frame.
pub const PAGE_SIZE: usize = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;
