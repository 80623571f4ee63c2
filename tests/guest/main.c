// SPDX-License-Identifier: Apache-2.0 OR MIT
/*
 * The test guest: the guest side of the linear p2m contract, done the way a
 * PV kernel does it, on real (Xen-validated) page tables.
 *
 *  1. start     read start_info (the builder's pfn -> mfn array, flags)
 *  2. features  XENVER_get_features itself (bit 21 on a patched Xen)
 *  3. shared    map its own shared_info page
 *  4. list      copy the builder's array into fresh frames and map them at
 *               P2M_VADDR through new L1 tables (pinned, filled with
 *               mmu_update) hooked into the live L2 table
 *  5. tree      build the 3-level tree over the same leaf frames, unless
 *               start_info.flags has SIF_VIRT_P2M_4TOOLS (only that flag
 *               decides; the feature bit plays no part)
 *  6. publish   tree root (or ~0), max_pfn, p2m_vaddr, p2m_generation = 0,
 *               barrier, p2m_cr3
 *  7. remap     move list pages to new frames (copy, then change the L1
 *               entry) inside a generation bump: odd, barrier, PTE, barrier,
 *               even
 *  8. image     with a ramdisk module: the adversarial image (image.c,
 *               docs/guest.md) published over the honest fields
 *  9. result    one VP2M-GUEST-RESULT line, then idle until destroyed
 *
 * Options (xl's extra= string, start_info.cmd_line): remaps=N (default 1).
 * Console input (one byte each, e.g. `printf h > $(xenstore-read
 * /local/domain/N/console/tty)` in dom0):
 *   h  publish the honest fields again (after an image), one
 *      VP2M-GUEST-HONEST line
 *   n  the next image of the module (several may be back to back), one
 *      VP2M-GUEST-IMAGE line with its index and published fields
 *   r  one more remap of a list page (generation + 2), one VP2M-GUEST-REMAP line
 *   R  start racing: every race_ms (option, default 50) flip the last list
 *      page between two frames of equal content, each flip bracketed by the
 *      generation; s stops it with one VP2M-GUEST-RACE line
 */
#include "p2m.h"
#include "image.h"

#ifndef XENFEAT_virtual_p2m
# define XENFEAT_virtual_p2m 21
#endif

/* Where the list is mapped: an empty 2 MiB slot of the first GiB, whose L2
 * table the builder made (it maps the image at 1 MiB). */
#define P2M_VADDR 0x20000000UL
#define MAX_LIST_PAGES 1024UL
#define L1_ENTRIES 512UL

start_info_t *start_info_ptr;
shared_info_t *shared;

static uint8_t shared_slot[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
static uint8_t scratch_slot[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));

unsigned long list_mfn[MAX_LIST_PAGES];
static unsigned long l1_mfn[MAX_LIST_PAGES / L1_ENTRIES + 1];
unsigned long list_pages;
static unsigned long tree_root, mid_mfn[8], mid_pages;
static int tree_kept;

void fail(const char *what, long rc)
{
    printk("VP2M-GUEST-RESULT: status=fail width=%d step=%s rc=%ld", GUEST_WIDTH, what, rc);
    shutdown(SHUTDOWN_crash);
}
#define CHECK(what, expr)                                                                 \
    do {                                                                                  \
        long rc_ = (expr);                                                                \
        if (rc_)                                                                          \
            fail(what, rc_);                                                              \
    } while (0)

/* ---- hypercall helpers ---------------------------------------------------- */
static long update_va(void *va, uint64_t pte)
{
#ifdef __x86_64__
    return HC(__HYPERVISOR_update_va_mapping, va, pte, UVMF_INVLPG, 0, 0);
#else
    return HC(__HYPERVISOR_update_va_mapping, va, (uint32_t)pte, (uint32_t)(pte >> 32),
              UVMF_INVLPG, 0);
#endif
}

static long pt_write(uint64_t maddr, uint64_t val)
{
    mmu_update_t u = { .ptr = maddr | MMU_NORMAL_PT_UPDATE, .val = val };
    return HC(__HYPERVISOR_mmu_update, &u, 1, NULL, DOMID_SELF, 0);
}

static long mmuext(unsigned int cmd, unsigned long arg)
{
    struct mmuext_op op = { .cmd = cmd };
    op.arg1.mfn = arg;
    return HC(__HYPERVISOR_mmuext_op, &op, 1, NULL, DOMID_SELF, 0);
}

/* Map a frame of this domain at the scratch slot (writable) / unmap it. */
void *scratch_map(unsigned long mfn)
{
    CHECK("scratch-map", update_va(scratch_slot, ((uint64_t)mfn << PAGE_SHIFT) | PTE_LEAF));
    return scratch_slot;
}
void scratch_unmap(void) { CHECK("scratch-unmap", update_va(scratch_slot, 0)); }

/* ---- frames: handed out from the top of the pfn space, which the builder
 * leaves unmapped (it maps the image, its own pages and 512 KiB above). ---- */
static unsigned long pool_next, pool_floor;

unsigned long alloc_mfn(void)
{
    if (pool_next <= pool_floor)
        fail("out-of-frames", (long)pool_next);
    return boot_p2m[--pool_next];
}

/* ---- page tables ------------------------------------------------------------ */
unsigned long top_mfn(void) { return boot_p2m[start_info_ptr->pt_base >> PAGE_SHIFT]; }

static uint64_t *table_of(unsigned long mfn)
{
    unsigned long pfn = mfn_to_pfn(mfn);
    if (pfn == ~0UL)
        fail("table-not-own", (long)mfn);
    return (uint64_t *)(pfn << PAGE_SHIFT);
}

/* Machine address of the L2 entry that maps va, walking from the top table
 * (the builder's tables are in the initial mapping, at va = pfn << 12). */
static uint64_t l2_entry_maddr(unsigned long va, uint64_t *cur)
{
    unsigned long mfn = top_mfn();
    for (int level = PT_LEVELS; level >= 2; level--) {
        unsigned int shift = PAGE_SHIFT + 9 * (level - 1);
        unsigned long idx = (va >> shift) & (level == 3 && PT_LEVELS == 3 ? 3 : 511);
        uint64_t e = table_of(mfn)[idx];
        if (level == 2) {
            *cur = e;
            return ((uint64_t)mfn << PAGE_SHIFT) + idx * 8;
        }
        if (!(e & PTE_P) || (e & PTE_PSE))
            fail("walk", level);
        mfn = (unsigned long)((e & PTE_FRAME) >> PAGE_SHIFT);
    }
    fail("walk", 0);
}

static unsigned long p2m_cr3_value(void)
{
    unsigned long mfn = top_mfn();
#ifdef __x86_64__
    return mfn << PAGE_SHIFT;
#else
    /* 32-bit PAE: the "extended cr3" format, mfn bits 20+ folded down. */
    return (mfn << PAGE_SHIFT) | (mfn >> 20);
#endif
}

/* ---- the steps ------------------------------------------------------------- */
static uint32_t query_features(void)
{
    xen_feature_info_t fi = { .submap_idx = 0 };
    CHECK("xenver-get-features", HC(__HYPERVISOR_xen_version, XENVER_get_features, &fi, 0, 0, 0));
    return fi.submap;
}

static void map_shared_info(void)
{
    CHECK("map-shared-info",
          update_va(shared_slot, (uint64_t)start_info_ptr->shared_info | PTE_LEAF));
    shared = (shared_info_t *)shared_slot;
}

static void build_list(void)
{
    list_pages = (nr_pages + EPP - 1) / EPP;
    if (list_pages > MAX_LIST_PAGES)
        fail("too-many-pages", (long)nr_pages);
    for (unsigned long i = 0; i < list_pages; i++) {
        list_mfn[i] = alloc_mfn();
        unsigned long *page = scratch_map(list_mfn[i]);
        for (unsigned long j = 0; j < EPP; j++) {
            unsigned long pfn = i * EPP + j;
            page[j] = pfn < nr_pages ? boot_p2m[pfn] : ~0UL;
        }
        scratch_unmap();
    }
    /* L1 tables: empty, pinned, then filled by Xen-checked updates. */
    static mmu_update_t req[L1_ENTRIES];
    for (unsigned long t = 0; t * L1_ENTRIES < list_pages; t++) {
        unsigned long mfn = alloc_mfn();
        memset(scratch_map(mfn), 0, PAGE_SIZE);
        scratch_unmap();
        CHECK("pin-l1", mmuext(MMUEXT_PIN_L1_TABLE, mfn));
        unsigned int n = 0;
        for (unsigned long i = t * L1_ENTRIES; i < list_pages && n < L1_ENTRIES; i++, n++) {
            req[n].ptr = ((uint64_t)mfn << PAGE_SHIFT) + n * 8 + MMU_NORMAL_PT_UPDATE;
            req[n].val = ((uint64_t)list_mfn[i] << PAGE_SHIFT) | PTE_LEAF;
        }
        CHECK("fill-l1", HC(__HYPERVISOR_mmu_update, req, n, NULL, DOMID_SELF, 0));
        uint64_t cur;
        unsigned long va = P2M_VADDR + t * L1_ENTRIES * PAGE_SIZE;
        uint64_t ma = l2_entry_maddr(va, &cur);
        if (cur & PTE_P)
            fail("l2-slot-in-use", (long)(va >> 21));
        CHECK("hook-l1", pt_write(ma, ((uint64_t)mfn << PAGE_SHIFT) | PTE_TABLE));
        l1_mfn[t] = mfn;
    }
}

/* Every entry as the guest reads it through its own mapping. */
static void check_list(const char *when)
{
    const unsigned long *list = (const unsigned long *)P2M_VADDR;
    for (unsigned long pfn = 0; pfn < nr_pages; pfn++)
        if (list[pfn] != boot_p2m[pfn])
            fail(when, (long)pfn);
}

static void build_tree(void)
{
    mid_pages = (list_pages + EPP - 1) / EPP;
    if (mid_pages > sizeof(mid_mfn) / sizeof(mid_mfn[0]))
        fail("tree-too-big", (long)list_pages);
    for (unsigned long m = 0; m < mid_pages; m++) {
        mid_mfn[m] = alloc_mfn();
        unsigned long *page = scratch_map(mid_mfn[m]);
        for (unsigned long j = 0; j < EPP; j++) {
            unsigned long i = m * EPP + j;
            page[j] = i < list_pages ? list_mfn[i] : ~0UL;
        }
        scratch_unmap();
    }
    tree_root = alloc_mfn();
    unsigned long *page = scratch_map(tree_root);
    for (unsigned long j = 0; j < EPP; j++)
        page[j] = j < mid_pages ? mid_mfn[j] : 0;
    scratch_unmap();
}

static unsigned long honest_generation, remap_count;

static void publish(void)
{
    struct arch_shared_info *a = &shared->arch;
    a->p2m_cr3 = 0;
    wmb();
    a->pfn_to_mfn_frame_list_list = tree_kept ? tree_root : ~0UL;
    a->max_pfn = nr_pages;
    a->p2m_vaddr = P2M_VADDR;
    a->p2m_generation = honest_generation;
    wmb();
    a->p2m_cr3 = p2m_cr3_value();
    wmb();
}

/* Move list page k to a fresh frame: the one change of the list's mappings
 * this guest makes, bracketed by the generation as the contract says. */
static void remap(unsigned long k)
{
    struct arch_shared_info *a = &shared->arch;
    unsigned long old = list_mfn[k], mfn = alloc_mfn();
    memcpy(scratch_map(mfn), (const void *)(P2M_VADDR + k * PAGE_SIZE), PAGE_SIZE);
    scratch_unmap();
    uint64_t ma = ((uint64_t)l1_mfn[k / L1_ENTRIES] << PAGE_SHIFT) + (k % L1_ENTRIES) * 8;

    a->p2m_generation++;
    wmb();
    CHECK("remap-pte", pt_write(ma, ((uint64_t)mfn << PAGE_SHIFT) | PTE_LEAF));
    CHECK("remap-invlpg", mmuext(MMUEXT_INVLPG_LOCAL, P2M_VADDR + k * PAGE_SIZE));
    wmb();
    a->p2m_generation++;
    honest_generation = a->p2m_generation;
    list_mfn[k] = mfn;

    if (tree_kept) {
        unsigned long *page = scratch_map(mid_mfn[k / EPP]);
        page[k % EPP] = mfn;
        scratch_unmap();
    }
    step("remap: list page %lu moved from mfn %#lx to %#lx, generation %lu", k, old, mfn,
         (unsigned long)a->p2m_generation);
}

static unsigned long option(const char *name, unsigned long dflt)
{
    const char *s = (const char *)start_info_ptr->cmd_line;
    size_t n = strlen(name);
    for (; *s; s++) {
        if ((s == (const char *)start_info_ptr->cmd_line || s[-1] == ' ') &&
            !memcmp(s, name, n) && s[n] == '=') {
            unsigned long v = 0;
            for (s += n + 1; *s >= '0' && *s <= '9'; s++)
                v = v * 10 + (unsigned long)(*s - '0');
            return v;
        }
    }
    return dflt;
}

/* Images: the module may hold several back to back; 'n' moves on. */
static const uint8_t *mod_next;
static unsigned long mod_left;
static unsigned int image_index;
static int image_loaded;

static int next_image(void)
{
    if (mod_left == 0)
        return 0;
    if (image_loaded)
        image_index++;
    unsigned long n = load_image(mod_next, mod_left, image_index);
    mod_next += n;
    mod_left -= n < mod_left ? n : mod_left;
    image_loaded = 1;
    return 1;
}

static void print_fields(const char *what)
{
    struct arch_shared_info *a = &shared->arch;
    printk("%s index=%u max_pfn=%lu p2m_cr3=%#lx p2m_vaddr=%#lx generation=%lu root=%#lx", what,
           image_index, (unsigned long)a->max_pfn, (unsigned long)a->p2m_cr3,
           (unsigned long)a->p2m_vaddr, (unsigned long)a->p2m_generation,
           (unsigned long)a->pfn_to_mfn_frame_list_list);
}

/* Racing: the last list page flips between its frame and a spare copy. */
static unsigned long spare_mfn, flips;
static uint64_t race_ns, next_flip;
static int racing;

static void flip(void)
{
    struct arch_shared_info *a = &shared->arch;
    unsigned long k = list_pages - 1;
    if (!spare_mfn) {
        spare_mfn = alloc_mfn();
        memcpy(scratch_map(spare_mfn), (const void *)(P2M_VADDR + k * PAGE_SIZE), PAGE_SIZE);
        scratch_unmap();
    }
    uint64_t ma = ((uint64_t)l1_mfn[k / L1_ENTRIES] << PAGE_SHIFT) + (k % L1_ENTRIES) * 8;
    a->p2m_generation++;
    wmb();
    CHECK("flip-pte", pt_write(ma, ((uint64_t)spare_mfn << PAGE_SHIFT) | PTE_LEAF));
    CHECK("flip-invlpg", mmuext(MMUEXT_INVLPG_LOCAL, P2M_VADDR + k * PAGE_SIZE));
    wmb();
    a->p2m_generation++;
    honest_generation = a->p2m_generation;
    unsigned long old = list_mfn[k];
    list_mfn[k] = spare_mfn;
    spare_mfn = old;
    if (tree_kept) {
        unsigned long *page = scratch_map(mid_mfn[k / EPP]);
        page[k % EPP] = list_mfn[k];
        scratch_unmap();
    }
    flips++;
}

static uint64_t tick(void)
{
    if (!racing)
        return 0;
    uint64_t now = now_ns();
    if (now >= next_flip) {
        flip();
        next_flip = now + race_ns;
    }
    return next_flip;
}

static void on_input(char c)
{
    switch (c) {
    case 'h':
        publish();
        check_list("honest-readback");
        print_fields("VP2M-GUEST-HONEST:");
        break;
    case 'n':
        publish();
        if (next_image())
            print_fields("VP2M-GUEST-IMAGE:");
        else
            printk("VP2M-GUEST-IMAGE: index=%u end", image_index + 1);
        break;
    case 'r':
        remap(list_pages - 1 - remap_count++ % list_pages);
        check_list("remap-readback");
        printk("VP2M-GUEST-REMAP: generation=%lu", (unsigned long)shared->arch.p2m_generation);
        break;
    case 'R':
        racing = 1;
        next_flip = 0;
        printk("VP2M-GUEST-RACE: started every %lu ms", (unsigned long)(race_ns / 1000000));
        break;
    case 's':
        racing = 0;
        check_list("race-readback");
        printk("VP2M-GUEST-RACE: stopped flips=%lu generation=%lu", flips,
               (unsigned long)shared->arch.p2m_generation);
        break;
    default:
        break;
    }
}

void guest_main(void)
{
    start_info_t *si = start_info_ptr;
    boot_p2m = (unsigned long *)si->mfn_list;
    nr_pages = si->nr_pages;
    console_init(si);
    step("start: pv%d, %lu pages, start_info flags %#x, pt_base %#lx (%lu frames), cmdline '%s'",
         GUEST_WIDTH, nr_pages, si->flags, si->pt_base, si->nr_pt_frames,
         (const char *)si->cmd_line);

    uint32_t features = query_features();
    int bit = !!(features & (1u << XENFEAT_virtual_p2m));
    step("features: XENVER_get_features submap 0 = %#010x, XENFEAT_virtual_p2m (bit %d) %s",
         features, XENFEAT_virtual_p2m, bit ? "set" : "clear");

    map_shared_info();
    step("shared: shared_info at machine address %#lx mapped at %#lx", si->shared_info,
         (unsigned long)shared);

    pool_next = nr_pages;
    pool_floor = (si->pt_base >> PAGE_SHIFT) + si->nr_pt_frames + (512 * 1024 / PAGE_SIZE) + 16;
    build_list();
    check_list("list-readback");
    step("list: %lu entries in %lu frames mapped at %#lx by %lu new L1 table(s), cr3 mfn %#lx",
         nr_pages, list_pages, P2M_VADDR, (list_pages + L1_ENTRIES - 1) / L1_ENTRIES, top_mfn());

    tree_kept = !(si->flags & SIF_VIRT_P2M_4TOOLS);
    if (tree_kept) {
        build_tree();
        step("tree: kept (no SIF_VIRT_P2M_4TOOLS): root mfn %#lx, %lu mid page(s)", tree_root,
             mid_pages);
    } else {
        step("tree: dropped (SIF_VIRT_P2M_4TOOLS set): root ~0");
    }

    publish();
    step("publish: max_pfn %lu, p2m_vaddr %#lx, p2m_cr3 %#lx, generation 0", nr_pages,
         P2M_VADDR, (unsigned long)shared->arch.p2m_cr3);

    unsigned long remaps = option("remaps", 1);
    for (unsigned long r = 0; r < remaps; r++)
        remap(list_pages - 1 - remap_count++ % list_pages);
    check_list("remap-readback");

    const char *mode = "honest";
    if (si->mod_len) {
        if (si->flags & SIF_MOD_START_PFN)
            fail("module-as-pfn", (long)si->mod_start);
        mod_next = (const uint8_t *)si->mod_start;
        mod_left = si->mod_len;
        next_image();
        mode = "image";
    }

    printk("VP2M-GUEST-RESULT: status=ok mode=%s index=%u width=%d features=%#010x bit21=%d sif_flags=%#x "
           "tree=%s root=%#lx max_pfn=%lu p2m_cr3=%#lx p2m_vaddr=%#lx generation=%lu "
           "list_frames=%lu",
           mode, image_index, GUEST_WIDTH, features, bit, si->flags, tree_kept ? "kept" : "dropped",
           (unsigned long)shared->arch.pfn_to_mfn_frame_list_list,
           (unsigned long)shared->arch.max_pfn,
           (unsigned long)shared->arch.p2m_cr3, (unsigned long)shared->arch.p2m_vaddr,
           (unsigned long)shared->arch.p2m_generation, list_pages);
    race_ns = option("race_ms", 50) * 1000000ULL;
    idle(on_input, tick);
}
