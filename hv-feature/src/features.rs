// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `XENVER_get_features` as a typed set, and the Xen version.

use crate::backend::Backend;
use crate::error::Error;
use serde::Serialize;

bitflags::bitflags! {
    /// Submap 0 of the feature bits Xen reports to the calling domain.
    /// Bits without a name here are kept (see [`Features::unknown_bits`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Features: u32 {
        /// Guest may write its page tables directly.
        const WRITABLE_PAGE_TABLES = 1 << xen_sys::XENFEAT_writable_page_tables;
        /// Guest may write its descriptor tables directly.
        const WRITABLE_DESCRIPTOR_TABLES = 1 << xen_sys::XENFEAT_writable_descriptor_tables;
        /// Guest pfns are translated by Xen (HVM, PVH).
        const AUTO_TRANSLATED_PHYSMAP = 1 << xen_sys::XENFEAT_auto_translated_physmap;
        /// Guest kernel runs in ring 0.
        const SUPERVISOR_MODE_KERNEL = 1 << xen_sys::XENFEAT_supervisor_mode_kernel;
        /// PAE page directories may live above 4 GiB.
        const PAE_PGDIR_ABOVE_4GB = 1 << xen_sys::XENFEAT_pae_pgdir_above_4gb;
        /// MMU_PT_UPDATE_PRESERVE_AD is supported.
        const MMU_PT_UPDATE_PRESERVE_AD = 1 << xen_sys::XENFEAT_mmu_pt_update_preserve_ad;
        /// Highmem assist hypercalls are available.
        const HIGHMEM_ASSIST = 1 << xen_sys::XENFEAT_highmem_assist;
        /// Grant map PTEs have available bits.
        const GNTTAB_MAP_AVAIL_BITS = 1 << xen_sys::XENFEAT_gnttab_map_avail_bits;
        /// HVM callback vector is available.
        const HVM_CALLBACK_VECTOR = 1 << xen_sys::XENFEAT_hvm_callback_vector;
        /// HVM guest may use the PV clock safely.
        const HVM_SAFE_PVCLOCK = 1 << xen_sys::XENFEAT_hvm_safe_pvclock;
        /// HVM guest has PIRQs.
        const HVM_PIRQS = 1 << xen_sys::XENFEAT_hvm_pirqs;
        /// The domain is dom0.
        const DOM0 = 1 << xen_sys::XENFEAT_dom0;
        /// XENMEM_get_vnumainfo is supported.
        const MEMORY_OP_VNODE_SUPPORTED = 1 << xen_sys::XENFEAT_memory_op_vnode_supported;
        /// ARM SMCCC is supported.
        const ARM_SMCCC_SUPPORTED = 1 << xen_sys::XENFEAT_ARM_SMCCC_supported;
        /// Linux may place the RSDP anywhere.
        const LINUX_RSDP_UNRESTRICTED = 1 << xen_sys::XENFEAT_linux_rsdp_unrestricted;
        /// The domain is not direct mapped.
        const NOT_DIRECT_MAPPED = 1 << xen_sys::XENFEAT_not_direct_mapped;
        /// The domain is direct mapped (gfn == mfn).
        const DIRECT_MAPPED = 1 << xen_sys::XENFEAT_direct_mapped;
        /// VCPUOP_register_runstate_phys_area is available (Xen 4.19).
        const RUNSTATE_PHYS_AREA = 1 << xen_sys::XENFEAT_runstate_phys_area;
        /// VCPUOP_register_vcpu_time_phys_area is available (Xen 4.19).
        const VCPU_TIME_PHYS_AREA = 1 << xen_sys::XENFEAT_vcpu_time_phys_area;
        /// Every MSI-X vector control write reaches the device model
        /// (Xen 4.19).
        const DM_MSIX_ALL_WRITES = 1 << xen_sys::XENFEAT_dm_msix_all_writes;
        /// Xen understands PV guests' linear p2m lists: its crash dumps
        /// record dom0's, and it can build dom0 with SIF_VIRT_P2M_4TOOLS
        /// (bit 21, this project's addition).
        const VIRTUAL_P2M = 1 << xen_sys::XENFEAT_virtual_p2m;
    }
}

/// The C name (`XENFEAT_...`) of each named bit, by bit number.
pub const NAMES: &[(u32, &str)] = &[
    (
        xen_sys::XENFEAT_writable_page_tables,
        "XENFEAT_writable_page_tables",
    ),
    (
        xen_sys::XENFEAT_writable_descriptor_tables,
        "XENFEAT_writable_descriptor_tables",
    ),
    (
        xen_sys::XENFEAT_auto_translated_physmap,
        "XENFEAT_auto_translated_physmap",
    ),
    (
        xen_sys::XENFEAT_supervisor_mode_kernel,
        "XENFEAT_supervisor_mode_kernel",
    ),
    (
        xen_sys::XENFEAT_pae_pgdir_above_4gb,
        "XENFEAT_pae_pgdir_above_4gb",
    ),
    (
        xen_sys::XENFEAT_mmu_pt_update_preserve_ad,
        "XENFEAT_mmu_pt_update_preserve_ad",
    ),
    (xen_sys::XENFEAT_highmem_assist, "XENFEAT_highmem_assist"),
    (
        xen_sys::XENFEAT_gnttab_map_avail_bits,
        "XENFEAT_gnttab_map_avail_bits",
    ),
    (
        xen_sys::XENFEAT_hvm_callback_vector,
        "XENFEAT_hvm_callback_vector",
    ),
    (
        xen_sys::XENFEAT_hvm_safe_pvclock,
        "XENFEAT_hvm_safe_pvclock",
    ),
    (xen_sys::XENFEAT_hvm_pirqs, "XENFEAT_hvm_pirqs"),
    (xen_sys::XENFEAT_dom0, "XENFEAT_dom0"),
    (
        xen_sys::XENFEAT_memory_op_vnode_supported,
        "XENFEAT_memory_op_vnode_supported",
    ),
    (
        xen_sys::XENFEAT_ARM_SMCCC_supported,
        "XENFEAT_ARM_SMCCC_supported",
    ),
    (
        xen_sys::XENFEAT_linux_rsdp_unrestricted,
        "XENFEAT_linux_rsdp_unrestricted",
    ),
    (
        xen_sys::XENFEAT_not_direct_mapped,
        "XENFEAT_not_direct_mapped",
    ),
    (xen_sys::XENFEAT_direct_mapped, "XENFEAT_direct_mapped"),
    (
        xen_sys::XENFEAT_runstate_phys_area,
        "XENFEAT_runstate_phys_area",
    ),
    (
        xen_sys::XENFEAT_vcpu_time_phys_area,
        "XENFEAT_vcpu_time_phys_area",
    ),
    (
        xen_sys::XENFEAT_dm_msix_all_writes,
        "XENFEAT_dm_msix_all_writes",
    ),
    (xen_sys::XENFEAT_virtual_p2m, "XENFEAT_virtual_p2m"),
];

impl Features {
    /// Set bits that have no name here (a newer Xen's additions).
    pub fn unknown_bits(self) -> u32 {
        self.bits() & !Features::all().bits()
    }

    /// `(bit, C name or None)` for every set bit, lowest first.
    pub fn set_bits(self) -> Vec<(u32, Option<&'static str>)> {
        (0..32)
            .filter(|b| self.bits() & (1 << b) != 0)
            .map(|b| (b, NAMES.iter().find(|(n, _)| *n == b).map(|(_, s)| *s)))
            .collect()
    }
}

/// Asks Xen for submap 0 of the calling domain's features
/// ([`Backend::features`]).
pub fn query<B: Backend>(b: &B) -> Result<Features, Error> {
    b.features()
}

/// Where Linux publishes the same word in dom0 (hex).
pub const SYSFS_FEATURES: &str = "/sys/hypervisor/properties/features";

/// Reads the features word Linux shows in [`SYSFS_FEATURES`].
pub fn from_sysfs() -> Result<Features, Error> {
    let text = std::fs::read_to_string(SYSFS_FEATURES).map_err(|source| Error::Open {
        path: SYSFS_FEATURES,
        source,
    })?;
    let v = u32::from_str_radix(text.trim(), 16).map_err(|_| Error::Unexpected {
        what: "sysfs features word",
        value: 0,
    })?;
    Ok(Features::from_bits_retain(v))
}

/// The running Xen's version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct XenVersion {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Extra version string (e.g. `.5`).
    pub extra: String,
}

impl std::fmt::Display for XenVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}{}", self.major, self.minor, self.extra)
    }
}

/// `XENVER_version` and `XENVER_extraversion` ([`Backend::xen_version`]).
pub fn version<B: Backend>(b: &B) -> Result<XenVersion, Error> {
    b.xen_version()
}

impl XenVersion {
    /// Decodes `XENVER_version`'s `(major << 16) | minor` and the
    /// NUL-terminated `XENVER_extraversion` string.
    pub fn from_raw(version: u32, extra: &[u8]) -> XenVersion {
        let end = extra.iter().position(|&c| c == 0).unwrap_or(extra.len());
        XenVersion {
            major: version >> 16,
            minor: version & 0xffff,
            extra: String::from_utf8_lossy(&extra[..end]).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_bit_has_a_flag_and_bit_21_is_virtual_p2m() {
        let named: u32 = NAMES.iter().map(|(b, _)| 1u32 << b).sum();
        assert_eq!(named, Features::all().bits());
        assert_eq!(Features::VIRTUAL_P2M.bits(), 1 << 21);
    }

    #[test]
    fn the_unpatched_dom0_word_decodes_to_its_known_bits() {
        // 4.17.5 PV dom0: bits 4,5,6,7,11,13,17.
        let f = Features::from_bits_retain(0x0002_28f0);
        let bits: Vec<u32> = f.set_bits().iter().map(|(b, _)| *b).collect();
        assert_eq!(bits, [4, 5, 6, 7, 11, 13, 17]);
        assert!(!f.contains(Features::VIRTUAL_P2M));
        let g = Features::from_bits_retain(0x0022_28f0 | 1 << 30);
        assert!(g.contains(Features::VIRTUAL_P2M));
        assert_eq!(g.unknown_bits(), 1 << 30);
        assert_eq!(g.set_bits().last(), Some(&(30, None)));
    }

    #[test]
    fn the_staging_dom0_word_has_every_bit_named() {
        // Staging c447b7308b PV dom0: bits 4 5 6 7 11 13 17 18 19 20, and
        // 21 with this project's series.
        let f = Features::from_bits_retain(0x001e_28f0 | 1 << 21);
        assert_eq!(f.unknown_bits(), 0);
        let names: Vec<&str> = f.set_bits().iter().filter_map(|(_, n)| *n).collect();
        assert_eq!(names.len(), 11);
        assert_eq!(
            &names[7..],
            [
                "XENFEAT_runstate_phys_area",
                "XENFEAT_vcpu_time_phys_area",
                "XENFEAT_dm_msix_all_writes",
                "XENFEAT_virtual_p2m"
            ]
        );
    }

    #[test]
    fn every_name_is_the_c_name_of_its_bit() {
        // Every named bit is below 32 (one submap) and named once.
        for (i, (b, n)) in NAMES.iter().enumerate() {
            assert!(*b < 32 && n.starts_with("XENFEAT_"), "{n}");
            assert!(NAMES[i + 1..].iter().all(|(c, m)| c != b && m != n), "{n}");
        }
    }
}
