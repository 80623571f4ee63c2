// SPDX-License-Identifier: Apache-2.0 OR MIT
/*
 * LD_PRELOAD shim for `xl create`: make libxl's PV domain builder pass
 * SIF_VIRT_P2M_4TOOLS to the guest.
 *
 * libxenguest's xc_dom_allocate() sets SIF_VIRT_P2M_4TOOLS in dom->flags, but
 * libxl__build_pv() (Xen 4.17, and upstream) then overwrites dom->flags with
 * its own 0, so a PV domU created with xl never sees the flag and Linux keeps
 * its 3-level p2m tree.  This shim wraps xc_dom_boot_image(), the step that
 * writes start_info from dom->flags, and adds the flag there.  Test harness
 * only: built against the pinned tree's headers (the same Xen version as
 * Debian's libxenguest), and it refuses to touch a structure that does not
 * look like that version's.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <xenctrl.h>
#include <xenguest.h>

int xc_dom_boot_image(struct xc_dom_image *dom)
{
    static int (*real)(struct xc_dom_image *);
    const unsigned long known = SIF_MOD_START_PFN | SIF_VIRT_P2M_4TOOLS;

    if (!real)
        real = (int (*)(struct xc_dom_image *))dlsym(RTLD_NEXT, "xc_dom_boot_image");
    if (!real) {
        fprintf(stderr, "vp2m-sif-virt-p2m: xc_dom_boot_image not found\n");
        return -1;
    }
    if (dom->container_type == XC_DOM_PV_CONTAINER && dom->guest_type &&
        strncmp(dom->guest_type, "xen-3.0-", 8) == 0 && !(dom->flags & ~known)) {
        fprintf(stderr, "vp2m-sif-virt-p2m: domain %u (%s): start_info flags %#lx -> %#lx\n",
                dom->guest_domid, dom->guest_type, (unsigned long)dom->flags,
                (unsigned long)(dom->flags | SIF_VIRT_P2M_4TOOLS));
        dom->flags |= SIF_VIRT_P2M_4TOOLS;
    } else {
        fprintf(stderr, "vp2m-sif-virt-p2m: unexpected xc_dom_image (flags %#lx); left alone\n",
                (unsigned long)dom->flags);
        return -1;
    }
    return real(dom);
}
