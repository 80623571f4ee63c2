// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Items that not every supported tree has: the XENFEAT bits later than Xen
//! 4.17 and what this project's patch series adds (the feature bit and the
//! crash note). They are defined here, under their C names, so that the
//! crate builds against any Xen tree from 4.17 on, patched or not; bindgen
//! is told to leave them out. Where a tree's headers do define them, a test
//! (`c_layout` in lib.rs) checks these values against the C compiler's.

/// `VCPUOP_register_runstate_phys_area` is available (Xen 4.19).
pub const XENFEAT_runstate_phys_area: u32 = 18;
/// `VCPUOP_register_vcpu_time_phys_area` is available (Xen 4.19).
pub const XENFEAT_vcpu_time_phys_area: u32 = 19;
/// Xen passes every MSI-X vector control write to the device model
/// (Xen 4.19).
pub const XENFEAT_dm_msix_all_writes: u32 = 20;
/// Xen understands PV guests' linear p2m lists (this project's series).
pub const XENFEAT_virtual_p2m: u32 = 21;

/// ELF note type of the hardware domain's p2m in a host crash dump (this
/// project's series; name "Xen").
pub const XEN_ELFNOTE_CRASH_DOM0_P2M: u32 = 0x100_0003;
/// The descriptor version this crate knows.
pub const XEN_CRASH_DOM0_P2M_VERSION: u32 = 1;
/// Flag: a PV hardware domain existed at the crash.
pub const XEN_CRASH_DOM0_P2M_PV: u32 = 1 << 0;
/// Flag: that domain is 32-bit PV (compat values, extended cr3 format).
pub const XEN_CRASH_DOM0_P2M_COMPAT: u32 = 1 << 1;

/// Descriptor of the `XEN_ELFNOTE_CRASH_DOM0_P2M` note, version 1: the same
/// 48 bytes for 32- and 64-bit tools.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
pub struct xen_crash_dom0_p2m {
    /// `XEN_CRASH_DOM0_P2M_VERSION` of the writer.
    pub version: u32,
    /// `XEN_CRASH_DOM0_P2M_*` flags.
    pub flags: u32,
    /// `arch_shared_info.max_pfn`.
    pub max_pfn: u64,
    /// `arch_shared_info.pfn_to_mfn_frame_list_list` (the tree root).
    pub pfn_to_mfn_frame_list_list: u64,
    /// `arch_shared_info.p2m_cr3`.
    pub p2m_cr3: u64,
    /// `arch_shared_info.p2m_vaddr`.
    pub p2m_vaddr: u64,
    /// `arch_shared_info.p2m_generation`.
    pub p2m_generation: u64,
}

/// The C typedef of [`xen_crash_dom0_p2m`].
pub type xen_crash_dom0_p2m_t = xen_crash_dom0_p2m;

/// The items of this module by C name, for the check against a tree's
/// headers.
pub const CONSTANTS: &[(&str, u32)] = &[
    ("XENFEAT_runstate_phys_area", XENFEAT_runstate_phys_area),
    ("XENFEAT_vcpu_time_phys_area", XENFEAT_vcpu_time_phys_area),
    ("XENFEAT_dm_msix_all_writes", XENFEAT_dm_msix_all_writes),
    ("XENFEAT_virtual_p2m", XENFEAT_virtual_p2m),
    ("XEN_ELFNOTE_CRASH_DOM0_P2M", XEN_ELFNOTE_CRASH_DOM0_P2M),
    ("XEN_CRASH_DOM0_P2M_VERSION", XEN_CRASH_DOM0_P2M_VERSION),
    ("XEN_CRASH_DOM0_P2M_PV", XEN_CRASH_DOM0_P2M_PV),
    ("XEN_CRASH_DOM0_P2M_COMPAT", XEN_CRASH_DOM0_P2M_COMPAT),
];
