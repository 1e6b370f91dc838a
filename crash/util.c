/* SPDX-License-Identifier: BSD-2-Clause */
/* util.c — the few freestanding helpers crashpath needs (no libc): zeroing, bounded string
 * copy, crash-time message lines in a fixed buffer, and the final halt loop. */
#include "cp/hw.h"
#include "cp/internal.h"

void cp_zero(void *p, uint64_t n)
{
    /* Volatile stores: the compiler must not turn this loop back into a
     * call to memset, which a freestanding host need not provide. */
    volatile uint8_t *b = p;

    for (uint64_t i = 0; i < n; i++)
        b[i] = 0;
}

uint32_t cp_strlcpy(char *dst, const char *src, uint32_t size)
{
    uint32_t i = 0;

    if (!size)
        return 0;
    for (; i + 1 < size && src[i]; i++)
        dst[i] = src[i];
    dst[i] = '\0';
    return i;
}

void cp_line_str(struct cp_line *l, const char *s)
{
    /* Truncates silently: a crash-time line never grows past its buffer. */
    while (*s && l->len < sizeof(l->buf))
        l->buf[l->len++] = *s++;
}

void cp_line_dec(struct cp_line *l, uint64_t v)
{
    char digits[20];
    uint32_t n = 0;

    do {
        digits[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n && l->len < sizeof(l->buf))
        l->buf[l->len++] = digits[--n];
}

void cp_line_hex(struct cp_line *l, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    int shift = 60;

    cp_line_str(l, "0x");
    while (shift > 0 && !((v >> shift) & 0xfu))
        shift -= 4;
    for (; shift >= 0 && l->len < sizeof(l->buf); shift -= 4)
        l->buf[l->len++] = hex[(v >> shift) & 0xfu];
}

void cp_line_emit(struct cp_line *l)
{
    if (cp_state.console)
        cp_state.console(l->buf, l->len);
}

void cp_halt_forever(void)
{
    for (;;)
        cp_hw_halt();
}
