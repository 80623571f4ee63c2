// SPDX-License-Identifier: Apache-2.0 OR MIT
/*
 * The C compiler's view of the layouts that hv-feature relies on.  The
 * static assertions pin the fixed ABI (offsets inside shared_info that
 * every tool reads); the table lets a Rust test compare bindgen's layout
 * with the compiler's, member by member.
 */
#include <stddef.h>
#include "wrapper.h"

#define CHECK(cond) _Static_assert(cond, #cond)

#if defined(__x86_64__)
CHECK(sizeof(struct shared_info) == 3136);
CHECK(offsetof(struct shared_info, arch) == 3088);
CHECK(sizeof(struct arch_shared_info) == 48);
CHECK(offsetof(struct shared_info, arch.p2m_cr3) == 3112);
CHECK(offsetof(struct shared_info, arch.p2m_vaddr) == 3120);
CHECK(offsetof(struct shared_info, arch.p2m_generation) == 3128);
#endif
CHECK(sizeof(struct vcpu_info) == 64);
CHECK(sizeof(struct shared_info) <= 4096);
CHECK(XENFEAT_virtual_p2m < 32 * XENFEAT_NR_SUBMAPS);
/* The crash note descriptor is the same for 32-bit and 64-bit tools. */
CHECK(sizeof(struct xen_crash_dom0_p2m) == 48);
CHECK(offsetof(struct xen_crash_dom0_p2m, max_pfn) == 8);
CHECK(offsetof(struct xen_crash_dom0_p2m, p2m_generation) == 40);

#define ENTRY(type, member) \
    { #type "." #member, offsetof(struct type, member), \
      sizeof(((struct type *)0)->member) }
#define SIZE(type) { #type, 0, sizeof(struct type) }

const struct xen_sys_layout_entry {
    const char *name;
    unsigned long offset;
    unsigned long size;
} xen_sys_layout[] = {
    SIZE(shared_info),
    ENTRY(shared_info, vcpu_info),
    ENTRY(shared_info, evtchn_pending),
    ENTRY(shared_info, evtchn_mask),
    ENTRY(shared_info, wc_version),
    ENTRY(shared_info, wc_sec),
    ENTRY(shared_info, wc_nsec),
    ENTRY(shared_info, arch),
    SIZE(arch_shared_info),
    ENTRY(arch_shared_info, max_pfn),
    ENTRY(arch_shared_info, pfn_to_mfn_frame_list_list),
    ENTRY(arch_shared_info, nmi_reason),
    ENTRY(arch_shared_info, p2m_cr3),
    ENTRY(arch_shared_info, p2m_vaddr),
    ENTRY(arch_shared_info, p2m_generation),
    SIZE(vcpu_info),
    ENTRY(vcpu_info, evtchn_upcall_pending),
    ENTRY(vcpu_info, evtchn_pending_sel),
    ENTRY(vcpu_info, arch),
    ENTRY(vcpu_info, time),
    SIZE(xen_feature_info),
    ENTRY(xen_feature_info, submap_idx),
    ENTRY(xen_feature_info, submap),
    SIZE(xen_domctl),
    ENTRY(xen_domctl, cmd),
    ENTRY(xen_domctl, interface_version),
    ENTRY(xen_domctl, domain),
    ENTRY(xen_domctl, u),
    SIZE(xen_domctl_getdomaininfo),
    ENTRY(xen_domctl_getdomaininfo, domain),
    ENTRY(xen_domctl_getdomaininfo, flags),
    ENTRY(xen_domctl_getdomaininfo, tot_pages),
    ENTRY(xen_domctl_getdomaininfo, max_pages),
    ENTRY(xen_domctl_getdomaininfo, shr_pages),
    ENTRY(xen_domctl_getdomaininfo, shared_info_frame),
    ENTRY(xen_domctl_getdomaininfo, max_vcpu_id),
    SIZE(xen_domctl_address_size),
    ENTRY(xen_domctl_address_size, size),
    SIZE(xen_crash_dom0_p2m),
    ENTRY(xen_crash_dom0_p2m, version),
    ENTRY(xen_crash_dom0_p2m, flags),
    ENTRY(xen_crash_dom0_p2m, max_pfn),
    ENTRY(xen_crash_dom0_p2m, pfn_to_mfn_frame_list_list),
    ENTRY(xen_crash_dom0_p2m, p2m_cr3),
    ENTRY(xen_crash_dom0_p2m, p2m_vaddr),
    ENTRY(xen_crash_dom0_p2m, p2m_generation),
    { 0, 0, 0 }
};
