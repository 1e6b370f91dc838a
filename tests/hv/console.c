/* SPDX-License-Identifier: BSD-2-Clause */
/* console.c — the reference hypervisor's serial console (COM1, 115200 8N1), a small printf,
 * and the exit through QEMU's isa-debug-exit device. */
#include <stdarg.h>
#include "hv.h"

#define COM1 0x3f8
#define DEBUG_EXIT_PORT 0xf4

static volatile uint32_t console_lock;

void console_init(void)
{
    outb(COM1 + 1, 0x00);   /* no interrupts */
    outb(COM1 + 3, 0x80);   /* DLAB */
    outb(COM1 + 0, 0x01);   /* 115200 baud */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03);   /* 8N1 */
    outb(COM1 + 2, 0xc7);   /* FIFO on, cleared */
    outb(COM1 + 4, 0x03);   /* DTR, RTS */
}

static void serial_putc(char c)
{
    for (int i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++)
        cpu_relax();
    outb(COM1, (uint8_t)c);
}

/* No lock: crashpath calls this on the crashing CPU while the others may be
 * parked anywhere, even inside hv_printf holding console_lock. */
void console_write(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\n')
            serial_putc('\r');
        serial_putc(s[i]);
    }
}

struct out {
    char *buf;
    size_t size, len;
};

static void out_c(struct out *o, char c)
{
    if (o->len + 1 < o->size)
        o->buf[o->len] = c;
    o->len++;
}

static void out_num(struct out *o, uint64_t v, unsigned int base, int width, char pad, int neg)
{
    char tmp[24];
    int n = 0;

    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (neg)
        tmp[n++] = '-';
    while (n < width--)
        out_c(o, pad);
    while (n)
        out_c(o, tmp[--n]);
}

static void vformat(struct out *o, const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        int longs = 0, width = 0;
        char pad = ' ';

        if (*fmt != '%') {
            out_c(o, *fmt);
            continue;
        }
        fmt++;
        if (*fmt == '0')
            pad = '0';
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') {
            longs++;
            fmt++;
        }
        if (*fmt == 'z') {
            longs = 1;
            fmt++;
        }
        switch (*fmt) {
        case 'd': {
            int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
            out_num(o, v < 0 ? (uint64_t)-v : (uint64_t)v, 10, width, pad, v < 0);
            break;
        }
        case 'u':
            out_num(o, longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int), 10, width, pad, 0);
            break;
        case 'x':
            out_num(o, longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int), 16, width, pad, 0);
            break;
        case 'p':
            out_c(o, '0');
            out_c(o, 'x');
            out_num(o, (uint64_t)(uintptr_t)va_arg(ap, void *), 16, 16, '0', 0);
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            for (s = s ? s : "(null)"; *s; s++)
                out_c(o, *s);
            break;
        }
        case 'c':
            out_c(o, (char)va_arg(ap, int));
            break;
        default:
            out_c(o, *fmt);
            break;
        }
    }
}

size_t hv_snprintf(char *buf, size_t size, const char *fmt, ...)
{
    struct out o = { buf, size, 0 };
    va_list ap;

    va_start(ap, fmt);
    vformat(&o, fmt, ap);
    va_end(ap);
    if (size)
        buf[o.len < size ? o.len : size - 1] = 0;
    return o.len;
}

static void vprint(const char *fmt, va_list ap)
{
    char buf[1024];
    struct out o = { buf, sizeof(buf), 0 };

    vformat(&o, fmt, ap);
    while (__atomic_exchange_n(&console_lock, 1, __ATOMIC_ACQUIRE))
        cpu_relax();
    console_write(buf, o.len < sizeof(buf) ? o.len : sizeof(buf) - 1);
    __atomic_store_n(&console_lock, 0, __ATOMIC_RELEASE);
}

void hv_printf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprint(fmt, ap);
    va_end(ap);
}

void hv_exit(uint32_t code)
{
    outl(DEBUG_EXIT_PORT, code);
    for (;;)
        __asm__ volatile("cli; hlt");
}

void hv_skip(const char *fmt, ...)
{
    va_list ap;

    hv_printf("hv: SKIP: ");
    va_start(ap, fmt);
    vprint(fmt, ap);
    va_end(ap);
    hv_printf("\n");
    hv_exit(HV_EXIT_SKIP);
}

void hv_fail(const char *fmt, ...)
{
    va_list ap;

    hv_printf("hv: FAIL: ");
    va_start(ap, fmt);
    vprint(fmt, ap);
    va_end(ap);
    hv_printf("\n");
    hv_exit(HV_EXIT_FAIL);
}
