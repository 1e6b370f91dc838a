/* mini.h — what the mini verifier's C files share: port and MSR access, the TSC, and the
 * console line writer. */
#ifndef MINI_H
#define MINI_H

#include <stdint.h>

/* Everything resolves inside one image: no GOT, RIP-relative only. */
#pragma GCC visibility push(hidden)

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return (uint64_t)hi << 32 | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}
static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

/* verify.c: one console line, "mini: " before it. */
void say(const char *s);

/* initsipi.c: INIT-SIPI-SIPI to every CPU the dump says parked but the BSP; how many did not
 * answer, and the first of them described in `first` (size bytes). */
struct check_expect;
uint32_t wake_parked_cpus(const struct check_expect *e, uint64_t tsc_khz, char *first, uint32_t size);

#pragma GCC visibility pop

#endif
