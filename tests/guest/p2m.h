// SPDX-License-Identifier: Apache-2.0 OR MIT
/* What main.c (the honest p2m) shares with image.c (the adversarial one). */
#ifndef VP2M_P2M_H
#define VP2M_P2M_H

#include "guest.h"

/* End the guest with a status=fail result line naming the step and value. */
void fail(const char *what, long value) __attribute__((noreturn));
/* A fresh frame of this domain (from the top of its pfn space). */
unsigned long alloc_mfn(void);
/* Map a frame of this domain writable at the scratch slot / unmap it. */
void *scratch_map(unsigned long mfn);
void scratch_unmap(void);
/* mfn of the guest's top-level page table (its cr3). */
unsigned long top_mfn(void);
/* The decimal value of NAME=VALUE on the guest's command line (xl extra=),
 * or dflt. */
unsigned long option(const char *name, unsigned long dflt);
/* The honest list's frames. */
extern unsigned long list_mfn[];
extern unsigned long list_pages;

/* Image mode (image.c): load, apply and publish the image at mod (len bytes
 * left in the module); returns the image's size (a multiple of 4096, so a
 * module may hold several images back to back). */
unsigned long load_image(const uint8_t *mod, unsigned long len, unsigned int index);

#endif
