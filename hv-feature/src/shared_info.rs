// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The arch part of a PV guest's `shared_info`, decoded for either guest
//! width from the raw page. Values are the guest's, not yet checked.

use crate::backend::{Backend, Mapping, Mem};
use crate::error::Error;
use crate::types::{DomId, GuestWidth, Mfn};
use serde::Serialize;
use std::sync::atomic::{fence, Ordering};

/// Byte offset of `shared_info.arch` and of the fields inside it, per width.
struct ArchLayout {
    arch: usize,
    word: usize,
}

/// Offset of `arch` inside `shared_info`: 3088 on x86_64, 2316 on x86_32
/// (see docs/design.md; the x86_64 value is asserted against the headers by
/// xen-sys).
const LAYOUT_64: ArchLayout = ArchLayout {
    arch: 3088,
    word: 8,
};
const LAYOUT_32: ArchLayout = ArchLayout {
    arch: 2316,
    word: 4,
};

// The x86_64 numbers come from the bindings of the patched headers.
const _: () = assert!(core::mem::offset_of!(xen_sys::shared_info, arch) == LAYOUT_64.arch);
const _: () = assert!(core::mem::size_of::<xen_sys::arch_shared_info>() == 6 * 8);

/// The fields of `struct arch_shared_info`, as C names them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ArchSharedInfo {
    /// Number of entries of the p2m (a count, despite the name).
    pub max_pfn: u64,
    /// Root of the 3-level p2m tree: 0 = not set up, `~0` (of the guest's
    /// width) = dropped, use the linear list.
    pub pfn_to_mfn_frame_list_list: u64,
    /// NMI reason bits.
    pub nmi_reason: u64,
    /// Address space root (guest cr3 format) in which `p2m_vaddr` is valid;
    /// 0 = the linear list is not published.
    pub p2m_cr3: u64,
    /// Virtual address of entry 0 of the linear p2m list.
    pub p2m_vaddr: u64,
    /// Seqlock-style generation of the list's mappings.
    pub p2m_generation: u64,
}

impl ArchSharedInfo {
    /// Decodes the arch fields from a `shared_info` page of a guest of
    /// `width`. Returns `None` if `page` is too short.
    pub fn decode(page: &[u8], width: GuestWidth) -> Option<ArchSharedInfo> {
        let l = match width {
            GuestWidth::W64 => LAYOUT_64,
            GuestWidth::W32 => LAYOUT_32,
        };
        ArchSharedInfo::fields(page.get(l.arch..)?, l.word)
    }

    /// The fields from `arch`, the start of `struct arch_shared_info`
    /// whose words are `w` bytes.
    fn fields(arch: &[u8], w: usize) -> Option<ArchSharedInfo> {
        let word = |i: usize| crate::le::word(arch, i * w, w);
        Some(ArchSharedInfo {
            max_pfn: word(0)?,
            pfn_to_mfn_frame_list_list: word(1)?,
            nmi_reason: word(2)?,
            p2m_cr3: word(3)?,
            p2m_vaddr: word(4)?,
            p2m_generation: word(5)?,
        })
    }

    /// Reads the arch fields from a live mapping of a `shared_info` page
    /// of a guest of `width`: each field is one volatile word load, and
    /// the sample is fenced on both sides (docs/design.md, reading rules):
    /// an acquire fence before it keeps every read made before it (the
    /// walk of the list) from moving after it, and one after it keeps
    /// every read made after it (the walk) from moving before it. So the
    /// generation read before a walk and the one re-read after it bracket
    /// the walk's reads, as the generation protocol needs.
    pub fn from_mem(page: Mem<'_>, width: GuestWidth) -> Result<ArchSharedInfo, Error> {
        let l = match width {
            GuestWidth::W64 => LAYOUT_64,
            GuestWidth::W32 => LAYOUT_32,
        };
        let mut arch = [0u8; 6 * 8];
        let arch = &mut arch[..6 * l.word];
        fence(Ordering::Acquire);
        let copied = page.copy_to(l.arch, arch);
        fence(Ordering::Acquire);
        copied
            .and_then(|()| ArchSharedInfo::fields(arch, l.word))
            .ok_or(Error::Unexpected {
                what: "shared_info mapping length",
                value: page.len() as u64,
            })
    }

    /// Encodes the fields into a `shared_info` page (the simulated guest
    /// writes its shared_info this way).
    pub fn encode(&self, page: &mut [u8], width: GuestWidth) {
        let l = match width {
            GuestWidth::W64 => LAYOUT_64,
            GuestWidth::W32 => LAYOUT_32,
        };
        let vals = [
            self.max_pfn,
            self.pfn_to_mfn_frame_list_list,
            self.nmi_reason,
            self.p2m_cr3,
            self.p2m_vaddr,
            self.p2m_generation,
        ];
        for (i, v) in vals.into_iter().enumerate() {
            let _ = crate::le::put_uint(page, l.arch + i * l.word, l.word, v);
        }
    }
}

/// Maps domain `dom`'s `shared_info` frame read-only and decodes its arch
/// fields. `map_dom` is the domain id to map with (`DomId::SELF` when a
/// domain reads its own page).
pub fn read<B: Backend>(
    b: &B,
    map_dom: DomId,
    frame: Mfn,
    width: GuestWidth,
) -> Result<ArchSharedInfo, Error> {
    let map = b.map_frames(map_dom, &[frame])?;
    ArchSharedInfo::from_mem(map.mem(), width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_inverts_encode_for_both_widths() {
        let a = ArchSharedInfo {
            max_pfn: 0x20000,
            pfn_to_mfn_frame_list_list: 0x1234,
            nmi_reason: 0,
            p2m_cr3: 0x32a10000,
            p2m_vaddr: 0xffff_c900_0000_0000,
            p2m_generation: 6,
        };
        let mut page = vec![0u8; 4096];
        a.encode(&mut page, GuestWidth::W64);
        assert_eq!(ArchSharedInfo::decode(&page, GuestWidth::W64), Some(a));
        assert_eq!(&page[3112..3120], &0x32a10000u64.to_le_bytes());
        let a32 = ArchSharedInfo {
            p2m_vaddr: 0xc000_0000,
            ..a
        };
        let mut page = vec![0u8; 4096];
        a32.encode(&mut page, GuestWidth::W32);
        assert_eq!(ArchSharedInfo::decode(&page, GuestWidth::W32), Some(a32));
        // x86_32: p2m_cr3/p2m_vaddr/p2m_generation at 2328/2332/2336.
        assert_eq!(&page[2328..2332], &0x32a10000u32.to_le_bytes());
        assert_eq!(&page[2336..2340], &6u32.to_le_bytes());
    }
}
