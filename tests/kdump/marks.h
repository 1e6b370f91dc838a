/* SPDX-License-Identifier: BSD-2-Clause */
/* marks.h — what the reference hypervisor leaves in memory and registers for the dump checker to
 * find, defined once for both (tests/hv writes them, tests/kdump/check.c looks for them). */
#ifndef MARKS_H
#define MARKS_H

#include <stdint.h>

/* A 4 KiB pattern in the low memory the kdump kernel reuses: the dump must show it, read from
 * crashpath's backup of that memory. */
#define MARK_LOWMEM_ADDR 0x70000ull
#define MARK_LOWMEM_SIZE 4096u
static inline uint8_t mark_lowmem_byte(uint32_t i)
{
    return (uint8_t)(((i * 0x9e3779b1u) >> 24) ^ i);
}

/* The value a spinning victim keeps in register rN (N = 8..15): its saved registers must hold
 * them. The hypervisor passes mark_sentinel(cpu, 0) to its spin loop, which adds N. */
static inline uint64_t mark_sentinel(uint32_t cpu, uint32_t reg)
{
    return 0x5e00000000000000ull | (uint64_t)cpu << 16 | reg;
}

/* The canaries a victim running on its own IST stack keeps above its RSP: a frame pushed at the
 * IST top would overwrite them. */
#define MARK_CANARY_QWORDS 32u
static inline uint64_t mark_canary(uint32_t cpu, uint32_t i)
{
    return 0xca4a000000000000ull | (uint64_t)cpu << 16 | i;
}

#endif
