// SPDX-License-Identifier: Apache-2.0 OR MIT
//! A hostile guest whose few pages span a huge `max_pfn`: every level of
//! its list's page tables names one table again and again.

use super::{SimError, SimHost};
use crate::types::{DomId, Mfn, PAGE_SIZE};

/// Page-table entry flags of a table (present, writable, accessed, dirty).
const TABLE: u64 = 0x63;
/// A leaf mapping: present, accessed, NX.
const LEAF: u64 = 0x21 | 1 << 63;

/// The tables [`SimHost::alias_list`] made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AliasedList {
    /// The level-3 table every used root entry names.
    pub l3: Mfn,
    /// The level-2 table every entry of `l3` names.
    pub l2: Mfn,
    /// The level-1 table every entry of `l2` names: even entries map
    /// `ram_leaf`, odd ones `missing_leaf`.
    pub l1: Mfn,
    /// The guest's leaf 0 (its first RAM pfns).
    pub ram_leaf: Mfn,
    /// The guest's shared page of `~0` entries.
    pub missing_leaf: Mfn,
}

impl SimHost {
    /// Turns 64-bit guest `dom`'s list into a hostile one of `max_pfn`
    /// entries (a multiple of 2^27 up to 2^40, the list's virtual address
    /// aligned to 512 GiB): the root's entries for the whole range name
    /// one level-3 table, whose entries all name one level-2 table, whose
    /// entries all name one level-1 table, which maps the guest's leaf 0
    /// and its missing page alternately. Five distinct pages span
    /// `max_pfn / 512` leaf positions, half of them leaf 0 again.
    pub fn alias_list(&self, dom: DomId, max_pfn: u64) -> Result<AliasedList, SimError> {
        let layout = self.list_layout(dom)?;
        let span = 1u64 << 39; // bytes one root entry covers
        let bytes = max_pfn
            .checked_mul(8)
            .filter(|&b| b != 0 && b % (1 << 30) == 0 && max_pfn <= 1 << 40)
            .ok_or(SimError::BadConfig("max_pfn for an aliased list"))?;
        if layout.levels != 4 || layout.vaddr % span != 0 {
            return Err(SimError::BadConfig(
                "aliased list: 64-bit, vaddr 512 GiB aligned",
            ));
        }
        let ram_leaf = self.leaf_frame(dom, 0)?;
        let a = AliasedList {
            l3: self.alloc_frame(dom)?,
            l2: self.alloc_frame(dom)?,
            l1: self.alloc_frame(dom)?,
            ram_leaf,
            missing_leaf: layout.missing_leaf,
        };
        for i in 0..PAGE_SIZE / 8 {
            let leaf = if i % 2 == 0 { ram_leaf } else { a.missing_leaf };
            self.write_word(a.l3, i * 8, 8, (a.l2.0 << 12) | TABLE)?;
            self.write_word(a.l2, i * 8, 8, (a.l1.0 << 12) | TABLE)?;
            self.write_word(a.l1, i * 8, 8, (leaf.0 << 12) | LEAF)?;
        }
        let first = (layout.vaddr >> 39) & 511;
        for e in 0..bytes.div_ceil(span) {
            let slot = ((first + e) * 8) as usize;
            self.write_word(layout.root, slot, 8, (a.l3.0 << 12) | TABLE)?;
        }
        self.update_arch(dom, |x| {
            x.max_pfn = max_pfn;
            x.p2m_generation += 2;
        })?;
        Ok(a)
    }
}
