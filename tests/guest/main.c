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
 *   b  switch to state B (below) with the generation bumps; a back to A;
 *      x a mix (second half of the list pages in B, first in A), bumped;
 *      each prints one VP2M-GUEST-STATE line
 *   T  tear race: every race_ms switch A <-> B, the list pages remapped one
 *      at a time page_us (option, default 1000) apart, bracketed by the
 *      generation; U the same without bumps and back to back, no race_ms
 *      pause (the control); A the same but
 *      the generation restored to its old even value (ABA); L / M switch
 *      by one L2 entry (a mid-level change) with / without bumps; each
 *      state it enters is one VP2M-GUEST-STATE line; s stops, back in A
 *   O  balloon race: every race_ms give a free pfn back to Xen
 *      (XENMEM_decrease_reservation, entry INVALID) or take a new frame for
 *      it (XENMEM_populate_physmap, entry = the new mfn), each bracketed by
 *      the generation; s stops with the page in, one VP2M-GUEST-BALLOON line
 *
 * States A and B: two complete p2m lists of this guest.  A is the honest
 * one; B swaps two pfns' frames in every list page (the M2P too, so B is as
 * consistent as A) and lives in its own frames, so that a reader's view of
 * any list page tells which state it came from.
 */
#include "p2m.h"
#include "image.h"

#include <public/memory.h>

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

unsigned long option(const char *name, unsigned long dflt)
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

/* ---- states A and B, the tear race, the balloon race ------------------------ */
static unsigned long b_mfn[MAX_LIST_PAGES], swap_pfn[MAX_LIST_PAGES][2], l1b_mfn;
static int state_b, states_ready;

/* One free pfn per list page pair: two pfns of page k nobody uses (above
 * the builder's mapping, below the frames handed out so far). */
static void setup_states(void)
{
    if (states_ready)
        return;
    if (list_pages > L1_ENTRIES)
        fail("states-too-many-pages", (long)list_pages);
    for (unsigned long k = 0; k < list_pages; k++) {
        unsigned long p = k * EPP < pool_floor ? pool_floor : k * EPP;
        if (p + 1 >= (k + 1) * EPP || p + 1 + 64 >= pool_next)
            fail("states-no-free-pfn", (long)k);
        swap_pfn[k][0] = p;
        swap_pfn[k][1] = p + 1;
    }
    /* B's frames: A's page with the pair swapped. */
    for (unsigned long k = 0; k < list_pages; k++) {
        b_mfn[k] = alloc_mfn();
        unsigned long *page = scratch_map(b_mfn[k]);
        memcpy(page, (const void *)(P2M_VADDR + k * PAGE_SIZE), PAGE_SIZE);
        unsigned long i = swap_pfn[k][0] % EPP, j = swap_pfn[k][1] % EPP, t = page[i];
        page[i] = page[j];
        page[j] = t;
        scratch_unmap();
    }
    /* An L1 table mapping B's frames, for the switch by one L2 entry. */
    static mmu_update_t req[L1_ENTRIES];
    l1b_mfn = alloc_mfn();
    memset(scratch_map(l1b_mfn), 0, PAGE_SIZE);
    scratch_unmap();
    CHECK("pin-l1b", mmuext(MMUEXT_PIN_L1_TABLE, l1b_mfn));
    for (unsigned long k = 0; k < list_pages; k++) {
        req[k].ptr = ((uint64_t)l1b_mfn << PAGE_SHIFT) + k * 8 + MMU_NORMAL_PT_UPDATE;
        req[k].val = ((uint64_t)b_mfn[k] << PAGE_SHIFT) | PTE_LEAF;
    }
    CHECK("fill-l1b", HC(__HYPERVISOR_mmu_update, req, list_pages, NULL, DOMID_SELF, 0));
    states_ready = 1;
}

/* The M2P of the swapped pairs as state B (to_b) or A has them. */
static void m2p_swap(int to_b)
{
    static mmu_update_t req[2 * MAX_LIST_PAGES];
    for (unsigned long k = 0; k < list_pages; k++)
        for (int n = 0; n < 2; n++) {
            unsigned long pfn = swap_pfn[k][n];
            req[2 * k + n].ptr = ((uint64_t)boot_p2m[pfn] << PAGE_SHIFT) | MMU_MACHPHYS_UPDATE;
            req[2 * k + n].val = to_b ? swap_pfn[k][!n] : pfn;
        }
    CHECK("m2p-swap", HC(__HYPERVISOR_mmu_update, req, 2 * list_pages, NULL, DOMID_SELF, 0));
}


enum bumps { BUMPS_NONE, BUMPS_NORMAL, BUMPS_ABA };

/* Enter state B (to_b) or A: pages from..list_pages-1 (all: from = 0; the
 * mix 'x': the second half), one L1 entry each page_ns apart, or all at
 * once through the L2 entry (l2); bumps as asked. */
static void set_state(int to_b, unsigned long from, enum bumps bumps, int l2, uint64_t page_ns)
{
    struct arch_shared_info *a = &shared->arch;
    unsigned long g0 = a->p2m_generation;
    if (bumps != BUMPS_NONE) {
        a->p2m_generation = g0 + 1;
        wmb();
    }
    if (from == 0)
        m2p_swap(to_b);
    if (l2) {
        uint64_t cur, ma = l2_entry_maddr(P2M_VADDR, &cur);
        CHECK("state-l2", pt_write(ma, ((uint64_t)(to_b ? l1b_mfn : l1_mfn[0]) << PAGE_SHIFT) |
                                           PTE_TABLE));
        CHECK("state-flush", mmuext(MMUEXT_TLB_FLUSH_LOCAL, 0));
    } else {
        for (unsigned long k = from; k < list_pages; k++) {
            uint64_t ma = ((uint64_t)l1_mfn[0] << PAGE_SHIFT) + k * 8;
            CHECK("state-pte",
                  pt_write(ma, ((uint64_t)(to_b ? b_mfn[k] : list_mfn[k]) << PAGE_SHIFT) | PTE_LEAF));
            CHECK("state-invlpg", mmuext(MMUEXT_INVLPG_LOCAL, P2M_VADDR + k * PAGE_SIZE));
            if (page_ns && k + 1 < list_pages)
                sleep_until(now_ns() + page_ns);
        }
    }
    if (tree_kept) {
        unsigned long *page = scratch_map(mid_mfn[0]);
        for (unsigned long k = from; k < list_pages; k++)
            page[k] = to_b ? b_mfn[k] : list_mfn[k];
        scratch_unmap();
    }
    wmb();
    if (bumps == BUMPS_NORMAL)
        a->p2m_generation = g0 + 2;
    else if (bumps == BUMPS_ABA)
        a->p2m_generation = g0;
    wmb();
    honest_generation = a->p2m_generation;
    if (from == 0)
        state_b = to_b;
}

static void print_state(const char *name)
{
    printk("VP2M-GUEST-STATE: %s generation=%lu", name, (unsigned long)shared->arch.p2m_generation);
}

/* The tear race (T U A L M) and the balloon race (O). */
static int tearing, tear_l2, ballooning, balloon_out;
static enum bumps tear_bumps;
static unsigned long tear_switches, balloon_pfn, balloon_cycles;
static uint64_t page_ns, tear_pause_ns;

static void tear_step(void)
{
    set_state(!state_b, 0, tear_bumps, tear_l2, tear_l2 ? 0 : page_ns);
    tear_switches++;
    print_state(state_b ? "B" : "A");
}

static long memory_op(unsigned int cmd, unsigned long *frame)
{
    struct xen_memory_reservation r = { .nr_extents = 1, .domid = DOMID_SELF };
    set_xen_guest_handle(r.extent_start, (xen_pfn_t *)frame);
    return HC(__HYPERVISOR_memory_op, cmd, &r, 0, 0, 0);
}

/* Out: entry INVALID, the frame back to Xen.  In: a new frame from Xen
 * (which sets its M2P), the entry = it.  Each inside one generation bump. */
static void balloon_step(void)
{
    struct arch_shared_info *a = &shared->arch;
    unsigned long *list = (unsigned long *)P2M_VADDR, pfn = balloon_pfn;
    a->p2m_generation++;
    wmb();
    if (!balloon_out) {
        unsigned long mfn = boot_p2m[pfn];
        list[pfn] = ~0UL;
        boot_p2m[pfn] = ~0UL;
        if (memory_op(XENMEM_decrease_reservation, &mfn) != 1)
            fail("balloon-decrease", (long)mfn);
        balloon_out = 1;
    } else {
        unsigned long frame = pfn;
        if (memory_op(XENMEM_populate_physmap, &frame) != 1)
            fail("balloon-populate", (long)pfn);
        list[pfn] = frame;
        boot_p2m[pfn] = frame;
        balloon_out = 0;
        balloon_cycles++;
    }
    wmb();
    a->p2m_generation++;
    honest_generation = a->p2m_generation;
}

static uint64_t tick(void)
{
    if (!racing && !tearing && !ballooning)
        return 0;
    uint64_t now = now_ns();
    if (now >= next_flip) {
        if (racing)
            flip();
        else if (tearing)
            tear_step();
        else
            balloon_step();
        next_flip = now_ns() + (tearing ? tear_pause_ns : race_ns);
    }
    return next_flip;
}

static void start_tear(enum bumps bumps, int l2, const char *what)
{
    setup_states();
    if (state_b)
        set_state(0, 0, BUMPS_NORMAL, 0, 0);
    tear_bumps = bumps;
    tear_l2 = l2;
    tear_switches = 0;
    /* The control switches back to back: a read then almost always finds
     * the list half switched, and nothing stops it. */
    tear_pause_ns = bumps == BUMPS_NONE && !l2 ? 0 : race_ns;
    tearing = 1;
    next_flip = 0;
    printk("VP2M-GUEST-TEAR: started %s every %lu ms, page_us %lu, state A generation=%lu", what,
           (unsigned long)(tear_pause_ns / 1000000), (unsigned long)(page_ns / 1000),
           (unsigned long)shared->arch.p2m_generation);
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
    case 'b':
    case 'a':
        setup_states();
        set_state(c == 'b', 0, BUMPS_NORMAL, 0, 0);
        if (!state_b)
            check_list("state-a-readback");
        print_state(state_b ? "B" : "A");
        break;
    case 'x':
        setup_states();
        if (state_b)
            set_state(0, 0, BUMPS_NORMAL, 0, 0);
        set_state(1, list_pages / 2, BUMPS_NORMAL, 0, 0);
        print_state("mix");
        break;
    case 'T':
        start_tear(BUMPS_NORMAL, 0, "l1 bumps");
        break;
    case 'U':
        start_tear(BUMPS_NONE, 0, "l1 no-bumps");
        break;
    case 'A':
        start_tear(BUMPS_ABA, 0, "l1 aba");
        break;
    case 'L':
        start_tear(BUMPS_NORMAL, 1, "l2 bumps");
        break;
    case 'M':
        start_tear(BUMPS_NONE, 1, "l2 no-bumps");
        break;
    case 'O':
        balloon_pfn = pool_floor + 8;
        if (balloon_pfn >= pool_next)
            fail("balloon-no-free-pfn", (long)balloon_pfn);
        /* The builder's initial mapping may still map the pfn: a mapped
         * frame that is given back stays the domain's until unmapped (Xen
         * keeps it while referenced), so unmap it first (no L1 for it at
         * all fails, and is as good). */
        update_va((void *)(balloon_pfn << PAGE_SHIFT), 0);
        ballooning = 1;
        next_flip = 0;
        printk("VP2M-GUEST-BALLOON: started pfn %#lx every %lu ms, generation=%lu", balloon_pfn,
               (unsigned long)(race_ns / 1000000), (unsigned long)shared->arch.p2m_generation);
        break;
    case 's':
        if (tearing) {
            tearing = 0;
            if (state_b) {
                set_state(0, 0, tear_bumps == BUMPS_NONE ? BUMPS_NORMAL : tear_bumps, tear_l2, 0);
                print_state("A");
            }
            if (tear_l2)
                set_state(0, 0, BUMPS_NORMAL, 0, 0); /* back on A's own L1 table */
            tear_l2 = 0;
            check_list("tear-readback");
            printk("VP2M-GUEST-TEAR: stopped switches=%lu generation=%lu", tear_switches,
                   (unsigned long)shared->arch.p2m_generation);
            break;
        }
        if (ballooning) {
            ballooning = 0;
            if (balloon_out)
                balloon_step();
            check_list("balloon-readback");
            printk("VP2M-GUEST-BALLOON: stopped cycles=%lu pfn=%#lx mfn=%#lx generation=%lu",
                   balloon_cycles, balloon_pfn, boot_p2m[balloon_pfn],
                   (unsigned long)shared->arch.p2m_generation);
            break;
        }
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
    page_ns = option("page_us", 1000) * 1000ULL;
    idle(on_input, tick);
}
