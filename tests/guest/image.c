// SPDX-License-Identifier: Apache-2.0 OR MIT
/* Image mode: load the adversarial image from the ramdisk module, put its
 * pages into fresh frames, apply its records and publish its fields over
 * the honest ones.  Every value of the image is checked before use; a bad
 * image ends the guest with status=fail step=image-... naming the value. */
#include "guest.h"
#include "image.h"
#include "p2m.h"

static unsigned long img_mfn[IMG_MAX_PAGES];
static uint64_t field_value[FIELD_MAX];
static int field_set[FIELD_MAX];

static uint64_t resolve(const struct img_record *r, uint64_t arg, uint32_t npages)
{
    switch (r->kind) {
    case KIND_NUMBER:
        return arg;
    case KIND_PAGE:
        if (arg >= npages)
            fail("image-page-ref", (long)arg);
        return img_mfn[arg];
    case KIND_PFN:
        if (arg >= nr_pages)
            fail("image-pfn-ref", (long)arg);
        return boot_p2m[arg];
    case KIND_OWN_TOP:
        return top_mfn();
    case KIND_LIST_PAGE:
        if (arg >= list_pages)
            fail("image-list-ref", (long)arg);
        return list_mfn[arg];
    case KIND_OPTION_FRAME: {
        /* frame0= .. frame9= on the command line: a frame the test found
         * at run time (another domain's). */
        char name[] = "frame0";
        if (arg > 9)
            fail("image-option-ref", (long)arg);
        name[5] = (char)('0' + arg);
        unsigned long v = option(name, ~0UL);
        if (v == ~0UL)
            fail("image-option-missing", (long)arg);
        return v;
    }
    }
    fail("image-kind", r->kind);
}

static uint64_t value(const struct img_record *r, uint32_t i, uint32_t npages)
{
    uint64_t x = resolve(r, r->arg + (uint64_t)i * r->step, npages);
    switch (r->format) {
    case FMT_VALUE:
        break;
    case FMT_FRAME_ADDR:
        x <<= PAGE_SHIFT;
        break;
    case FMT_EXT_CR3:
        x = (uint32_t)((x << PAGE_SHIFT) | (x >> 20));
        break;
    default:
        fail("image-format", r->format);
    }
    return x | r->or_bits;
}

unsigned long load_image(const uint8_t *mod, unsigned long len, unsigned int index)
{
    const struct img_header *h = (const void *)mod;
    memset(field_set, 0, sizeof(field_set));
    if (len < sizeof(*h) || memcmp(h->magic, IMG_MAGIC, 8))
        fail("image-magic", (long)len);
    if (h->version != IMG_VERSION)
        fail("image-version", h->version);
    if (h->width != sizeof(unsigned long))
        fail("image-width", h->width);
    if (h->npages > IMG_MAX_PAGES)
        fail("image-npages", h->npages);
    if (h->nrecords > IMG_MAX_RECORDS)
        fail("image-nrecords", h->nrecords);
    unsigned long rec_end = sizeof(*h) + (unsigned long)h->nrecords * sizeof(struct img_record);
    unsigned long pages_at = (rec_end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    if (len < pages_at + (unsigned long)h->npages * PAGE_SIZE)
        fail("image-length", (long)len);
    const struct img_record *rec = (const void *)(mod + sizeof(*h));

    for (uint32_t p = 0; p < h->npages; p++) {
        img_mfn[p] = alloc_mfn();
        memcpy(scratch_map(img_mfn[p]), mod + pages_at + p * PAGE_SIZE, PAGE_SIZE);
        scratch_unmap();
    }
    for (uint32_t n = 0; n < h->nrecords; n++) {
        const struct img_record *r = &rec[n];
        if (r->page == IMG_FIELD_PAGE) {
            if (r->index >= FIELD_MAX || r->count != 1)
                fail("image-field", r->index);
            field_value[r->index] = value(r, 0, h->npages);
            field_set[r->index] = 1;
            continue;
        }
        if (r->page >= h->npages)
            fail("image-record-page", r->page);
        if (r->width != 4 && r->width != 8)
            fail("image-record-width", r->width);
        if (r->count == 0 || r->index >= PAGE_SIZE / r->width ||
            r->count > PAGE_SIZE / r->width - r->index)
            fail("image-record-range", n);
        uint8_t *page = scratch_map(img_mfn[r->page]);
        for (uint32_t i = 0; i < r->count; i++) {
            uint64_t v = value(r, i, h->npages);
            if (r->width == 8)
                ((uint64_t *)page)[r->index + i] = v;
            else
                ((uint32_t *)page)[r->index + i] = (uint32_t)v;
        }
        scratch_unmap();
    }

    /* Publish over the honest fields in the contract's order, cr3 last. */
    struct arch_shared_info *a = &shared->arch;
    if (field_set[FIELD_TREE_ROOT])
        a->pfn_to_mfn_frame_list_list = (unsigned long)field_value[FIELD_TREE_ROOT];
    if (field_set[FIELD_MAX_PFN])
        a->max_pfn = (unsigned long)field_value[FIELD_MAX_PFN];
    if (field_set[FIELD_P2M_VADDR])
        a->p2m_vaddr = (unsigned long)field_value[FIELD_P2M_VADDR];
    if (field_set[FIELD_GENERATION])
        a->p2m_generation = (unsigned long)field_value[FIELD_GENERATION];
    wmb();
    if (field_set[FIELD_P2M_CR3])
        a->p2m_cr3 = (unsigned long)field_value[FIELD_P2M_CR3];
    wmb();
    step("image %u: %u page(s) in frames %#lx.., %u record(s); published tree %#lx max_pfn %#lx "
         "vaddr %#lx generation %lu cr3 %#lx",
         index, h->npages, h->npages ? img_mfn[0] : 0UL, h->nrecords,
         (unsigned long)a->pfn_to_mfn_frame_list_list, (unsigned long)a->max_pfn,
         (unsigned long)a->p2m_vaddr, (unsigned long)a->p2m_generation,
         (unsigned long)a->p2m_cr3);
    return pages_at + (unsigned long)h->npages * PAGE_SIZE;
}
