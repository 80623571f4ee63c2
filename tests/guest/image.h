// SPDX-License-Identifier: Apache-2.0 OR MIT
/* The adversarial image format (docs/guest.md, "Image format"): what the
 * guest loads from its ramdisk module and publishes instead of, or on top
 * of, its honest p2m.  Little-endian; the sizes are fixed for both widths. */
#ifndef VP2M_IMAGE_H
#define VP2M_IMAGE_H

#include <stdint.h>

#define IMG_MAGIC "VP2MIMG1"
#define IMG_VERSION 1
#define IMG_MAX_PAGES 256
#define IMG_MAX_RECORDS 4096
#define IMG_FIELD_PAGE 0xffffffffu

struct img_header {
    char magic[8];
    uint32_t version;
    uint32_t width;     /* 4 or 8: the guest width the image is for */
    uint32_t npages;
    uint32_t nrecords;
    uint32_t reserved[2];
};

enum img_kind { KIND_NUMBER, KIND_PAGE, KIND_PFN, KIND_OWN_TOP, KIND_LIST_PAGE, KIND_OPTION_FRAME,
                KIND_MAX };
enum img_format { FMT_VALUE, FMT_FRAME_ADDR, FMT_EXT_CR3, FMT_MAX };
enum img_field { FIELD_TREE_ROOT, FIELD_MAX_PFN, FIELD_P2M_VADDR, FIELD_GENERATION, FIELD_P2M_CR3,
                 FIELD_MAX };

struct img_record {
    uint32_t page;      /* image page, or IMG_FIELD_PAGE for a shared_info field */
    uint32_t index;     /* word index in the page / field number */
    uint32_t count;     /* words written */
    uint8_t width;      /* 4 or 8 bytes per word (fields: the guest's width) */
    uint8_t kind;       /* enum img_kind */
    uint8_t format;     /* enum img_format */
    uint8_t reserved;
    uint64_t arg;       /* word i uses arg + i * step */
    uint64_t step;
    uint64_t or_bits;   /* ORed into every value after formatting */
};

_Static_assert(sizeof(struct img_header) == 32, "header size");
_Static_assert(sizeof(struct img_record) == 40, "record size");

#endif
