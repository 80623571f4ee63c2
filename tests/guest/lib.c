// SPDX-License-Identifier: Apache-2.0 OR MIT
/* Library pieces of the test guest: memory and string helpers, a small
 * printf, the PV console ring, idling and shutdown. */
#include "guest.h"

unsigned long *boot_p2m;
unsigned long nr_pages;

void *memset(void *d, int c, size_t n)
{
    unsigned char *p = d;
    while (n--)
        *p++ = (unsigned char)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    unsigned char *p = d;
    const unsigned char *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *p = a, *q = b;
    for (; n; n--, p++, q++)
        if (*p != *q)
            return *p - *q;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

unsigned long mfn_to_pfn(unsigned long mfn)
{
    for (unsigned long pfn = 0; pfn < nr_pages; pfn++)
        if (boot_p2m[pfn] == mfn)
            return pfn;
    return ~0UL;
}

/* ---- formatter: %s %c %d %u %x with l/ll, '#' and a zero-padded width ---- */
struct out {
    char *buf;
    size_t size, len;
};

static void put(struct out *o, char c)
{
    if (o->len + 1 < o->size)
        o->buf[o->len] = c;
    o->len++;
}

static void put_num(struct out *o, unsigned long long v, unsigned int base, int width, int alt)
{
    char tmp[24];
    int n = 0;
    if (alt && base == 16 && v) {
        /* As in C, the width counts the 0x. */
        put(o, '0');
        put(o, 'x');
        width -= 2;
    }
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (width-- > n)
        put(o, '0');
    while (n)
        put(o, tmp[--n]);
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct out o = { buf, size, 0 };
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            put(&o, *fmt);
            continue;
        }
        int alt = 0, width = 0, lng = 0;
        fmt++;
        if (*fmt == '#') {
            alt = 1;
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') {
            lng++;
            fmt++;
        }
        unsigned long long v;
        switch (*fmt) {
        case 's':
            for (const char *s = va_arg(ap, const char *); *s; s++)
                put(&o, *s);
            break;
        case 'c':
            put(&o, (char)va_arg(ap, int));
            break;
        case 'd': {
            long long sv = lng >= 2 ? va_arg(ap, long long) : lng ? va_arg(ap, long) : va_arg(ap, int);
            if (sv < 0) {
                put(&o, '-');
                v = (unsigned long long)-sv;
            } else {
                v = (unsigned long long)sv;
            }
            put_num(&o, v, 10, width, 0);
            break;
        }
        case 'u':
        case 'x':
            v = lng >= 2 ? va_arg(ap, unsigned long long)
                : lng    ? va_arg(ap, unsigned long)
                         : va_arg(ap, unsigned int);
            put_num(&o, v, *fmt == 'x' ? 16 : 10, width, alt);
            break;
        case '%':
            put(&o, '%');
            break;
        default:
            put(&o, '?');
            break;
        }
    }
    if (o.size)
        o.buf[o.len < o.size ? o.len : o.size - 1] = 0;
    return (int)o.len;
}

/* ---- console -------------------------------------------------------------- */
static struct xencons_interface *cons;
static evtchn_port_t cons_port;
static int use_console_io;

static void notify(evtchn_port_t port)
{
    struct evtchn_send send = { .port = port };
    HC(__HYPERVISOR_event_channel_op, EVTCHNOP_send, &send, 0, 0, 0);
}

static void ring_write(const char *s, size_t n)
{
    while (n) {
        XENCONS_RING_IDX c = cons->out_cons, p = cons->out_prod;
        rmb();
        if (p - c >= sizeof(cons->out)) {
            /* Full: let xenconsoled drain it. */
            notify(cons_port);
            HC(__HYPERVISOR_sched_op, SCHEDOP_yield, 0, 0, 0, 0);
            continue;
        }
        while (n && p - c < sizeof(cons->out)) {
            cons->out[MASK_XENCONS_IDX(p, cons->out)] = *s++;
            p++;
            n--;
        }
        wmb();
        cons->out_prod = p;
    }
    notify(cons_port);
}

void console_init(start_info_t *si)
{
    unsigned long pfn = mfn_to_pfn(si->console.domU.mfn);
    if (pfn != ~0UL) {
        cons = (struct xencons_interface *)(pfn << PAGE_SHIFT);
        cons_port = si->console.domU.evtchn;
    }
    /* Xen refuses console_io to an unprivileged domU unless it is a debug
     * build; use it only where it works. */
    use_console_io = HC(__HYPERVISOR_console_io, CONSOLEIO_write, 0, "", 0, 0) == 0;
}

void printk(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n < sizeof(buf) - 2 ? (size_t)n : sizeof(buf) - 2;
    buf[len++] = '\n';
    if (cons)
        ring_write(buf, len);
    if (use_console_io)
        HC(__HYPERVISOR_console_io, CONSOLEIO_write, len, buf, 0, 0);
}

void shutdown(unsigned int reason)
{
    struct sched_shutdown sd = { .reason = reason };
    for (;;)
        HC(__HYPERVISOR_sched_op, SCHEDOP_shutdown, &sd, 0, 0, 0);
}

uint64_t now_ns(void)
{
    volatile struct vcpu_time_info *t = &shared->vcpu_info[0].time;
    uint32_t ver, mul;
    uint64_t ts, st;
    int8_t shift;
    do {
        ver = t->version;
        rmb();
        ts = t->tsc_timestamp;
        st = t->system_time;
        mul = t->tsc_to_system_mul;
        shift = t->tsc_shift;
        rmb();
    } while ((ver & 1) || ver != t->version);
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    uint64_t d = (((uint64_t)hi << 32) | lo) - ts;
    d = shift >= 0 ? d << shift : d >> -shift;
    /* (d * mul) >> 32 without a 128-bit product */
    return st + (d >> 32) * mul + (((d & 0xffffffffULL) * mul) >> 32);
}

void sleep_until(uint64_t deadline)
{
    /* Block (SCHEDOP_poll on the console channel with a timeout) rather
     * than spin: a spinning guest vCPU is preempted by Xen, and while ours
     * spun dom0's programs died of SIGSEGV now and then (docs/guest.md).
     * Console input stays in the ring for idle(). */
    evtchn_port_t port = cons_port;
    struct sched_poll poll = { .nr_ports = 1, .timeout = deadline };
    set_xen_guest_handle(poll.ports, &port);
    while (now_ns() < deadline) {
        HC(__HYPERVISOR_sched_op, SCHEDOP_poll, &poll, 0, 0, 0);
        if (shared) {
            unsigned int bits = sizeof(shared->evtchn_pending[0]) * 8;
            __atomic_fetch_and(&shared->evtchn_pending[port / bits],
                               ~((xen_ulong_t)1 << (port % bits)), __ATOMIC_SEQ_CST);
        }
    }
}

void idle(void (*on_input)(char), uint64_t (*tick)(void))
{
    /* Events stay masked (the builder set evtchn_upcall_mask): poll the
     * console channel, which xenconsoled signals when it has read the ring
     * or put input (from the console's pty in dom0) into it; with a
     * deadline from tick, until then. */
    evtchn_port_t port = cons_port;
    struct sched_poll poll = { .nr_ports = 1 };
    set_xen_guest_handle(poll.ports, &port);
    for (;;) {
        poll.timeout = tick ? tick() : 0;
        if (HC(__HYPERVISOR_sched_op, SCHEDOP_poll, &poll, 0, 0, 0) != 0)
            HC(__HYPERVISOR_sched_op, SCHEDOP_yield, 0, 0, 0, 0);
        if (shared) {
            unsigned int bits = sizeof(shared->evtchn_pending[0]) * 8;
            __atomic_fetch_and(&shared->evtchn_pending[port / bits],
                               ~((xen_ulong_t)1 << (port % bits)), __ATOMIC_SEQ_CST);
        }
        if (!cons)
            continue;
        XENCONS_RING_IDX c = cons->in_cons, p = cons->in_prod;
        rmb();
        if (p - c > sizeof(cons->in))
            c = p; /* a bogus index from the other side: drop it all */
        int got = c != p;
        while (c != p) {
            char ch = cons->in[MASK_XENCONS_IDX(c, cons->in)];
            c++;
            barrier();
            cons->in_cons = c;
            if (on_input)
                on_input(ch);
        }
        if (got)
            notify(cons_port);
    }
}
