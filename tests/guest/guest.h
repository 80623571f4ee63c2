// SPDX-License-Identifier: Apache-2.0 OR MIT
/*
 * The test guest's few primitives: hypercalls through the page the builder
 * filled, barriers, the console and a small formatter.  Built freestanding
 * for 64-bit PV and 32-bit PAE PV from the same source; the Xen public
 * headers of the pinned tree give the ABI types (their native layout per
 * width is the guest's layout).
 */
#ifndef VP2M_GUEST_H
#define VP2M_GUEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <public/xen.h>
#include <public/features.h>
#include <public/version.h>
#include <public/sched.h>
#include <public/event_channel.h>
#include <public/io/console.h>

#define PAGE_SIZE 4096UL
#define PAGE_SHIFT 12
/* Entries of the guest's own width in one page (p2m list and tree). */
#define EPP (PAGE_SIZE / sizeof(unsigned long))

#ifdef __x86_64__
# define GUEST_WIDTH 64
# define PT_LEVELS 4
#else
# define GUEST_WIDTH 32
# define PT_LEVELS 3
#endif

/* Page-table entry bits (both widths use 8-byte entries: 4-level, PAE). */
#define PTE_P 0x001ULL
#define PTE_RW 0x002ULL
#define PTE_US 0x004ULL
#define PTE_A 0x020ULL
#define PTE_D 0x040ULL
#define PTE_PSE 0x080ULL
#define PTE_FRAME 0x000ffffffffff000ULL
#define PTE_LEAF (PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D)
#define PTE_TABLE (PTE_P | PTE_RW | PTE_US | PTE_A)

extern uint8_t hypercall_page[4096];

static inline long hypercall5(unsigned int nr, unsigned long a1, unsigned long a2,
                              unsigned long a3, unsigned long a4, unsigned long a5)
{
    long ret;
    void *fn = hypercall_page + nr * 32;
#ifdef __x86_64__
    register unsigned long r10 __asm__("r10") = a4;
    register unsigned long r8 __asm__("r8") = a5;
    __asm__ volatile("call *%%rax"
                     : "=a"(ret), "+D"(a1), "+S"(a2), "+d"(a3), "+r"(r10), "+r"(r8)
                     : "0"(fn)
                     : "memory", "rcx", "r11");
#else
    __asm__ volatile("call *%%eax"
                     : "=a"(ret), "+b"(a1), "+c"(a2), "+d"(a3), "+S"(a4), "+D"(a5)
                     : "0"(fn)
                     : "memory");
#endif
    return ret;
}
#define HC(nr, a1, a2, a3, a4, a5)                                                       \
    hypercall5(nr, (unsigned long)(a1), (unsigned long)(a2), (unsigned long)(a3),        \
               (unsigned long)(a4), (unsigned long)(a5))

/* Stores before it are visible before stores after it. */
static inline void wmb(void) { __asm__ volatile("sfence" ::: "memory"); }
static inline void rmb(void) { __asm__ volatile("lfence" ::: "memory"); }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* Console: the PV console ring (xenconsoled logs it in dom0), plus Xen's
 * console_io where Xen allows it (debug builds; not for a domU otherwise). */
void console_init(start_info_t *si);
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
void printk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One "VP2M-GUEST: ..." line per step. */
#define step(...) printk("VP2M-GUEST: " __VA_ARGS__)

/* Idle forever, waking only when dom0 notifies the console channel; each
 * byte typed on the guest's console (its pty in dom0) goes to on_input.
 * tick (may be NULL) runs on every wake and returns the next absolute
 * deadline in Xen system time, or 0 for none. */
void idle(void (*on_input)(char), uint64_t (*tick)(void)) __attribute__((noreturn));
/* Block until Xen system time reaches deadline (ns). */
void sleep_until(uint64_t deadline);
/* Xen system time in ns (vcpu 0's time info in shared_info). */
uint64_t now_ns(void);
void shutdown(unsigned int reason) __attribute__((noreturn));

/* Xen's shared_info page of this domain, once mapped (NULL before). */
extern shared_info_t *shared;

/* The builder's pfn -> mfn array (start_info.mfn_list). */
extern unsigned long *boot_p2m;
extern unsigned long nr_pages;
/* pfn of an mfn of this domain from the builder's array; ~0 if none. */
unsigned long mfn_to_pfn(unsigned long mfn);

#endif
