/* SPDX-License-Identifier: BSD-2-Clause */
/* cp/load.h — load time's internal interfaces (load/): the region layout the loader plans and the
 * jobs that fill it in (boot protocol, memory map, page tables, ELF core header). Crash-time code
 * (crash/, apic/, entry/) never includes this. */
#ifndef CP_LOAD_H
#define CP_LOAD_H

#include "cp/internal.h"

#pragma GCC visibility push(hidden)

#define PAGE 4096ull
#define MB (1024ull * 1024ull)
#define GB (1024ull * MB)
#define ENTRY_64 0x200u         /* the 64-bit boot protocol's entry: load address + 0x200 */
#define CR4_PAE (1ull << 5)
#define CR4_LA57 (1ull << 12)

/* ---- byte access and copies (no libc) ---- */

static inline uint32_t get8(const uint8_t *p, uint64_t off) { return p[off]; }

static inline uint32_t get16(const uint8_t *p, uint64_t off)
{
    return (uint32_t)p[off] | (uint32_t)p[off + 1] << 8;
}

static inline uint32_t get32(const uint8_t *p, uint64_t off)
{
    return get16(p, off) | get16(p, off + 2) << 16;
}

static inline void put16(uint8_t *p, uint64_t off, uint32_t v)
{
    p[off] = (uint8_t)v;
    p[off + 1] = (uint8_t)(v >> 8);
}

static inline void put32(uint8_t *p, uint64_t off, uint32_t v)
{
    put16(p, off, v);
    put16(p, off + 2, v >> 16);
}

static inline void put64(uint8_t *p, uint64_t off, uint64_t v)
{
    put32(p, off, (uint32_t)v);
    put32(p, off + 4, (uint32_t)(v >> 32));
}

static inline void copy_bytes(void *dst, const void *src, uint64_t n)
{
    volatile uint8_t *d = dst;
    const uint8_t *s = src;

    for (uint64_t i = 0; i < n; i++)
        d[i] = s[i];
}

static inline uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

static inline int overlap(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len)
{
    return a < b + b_len && b < a + a_len;
}

/* ---- what the bzImage says (load/bzimage.c) ---- */

struct bz_info {
    uint64_t payload_off, payload_size;
    uint32_t header_end, init_size, cmdline_size;
    uint32_t xloadflags;
    uint64_t align_preferred;   /* kernel_alignment, at least 2 MiB */
    uint64_t align_lowest;      /* how far the loader may lower it: 1 << min_alignment, at least
                                   2 MiB; align_preferred when min_alignment is 0 (no lowering) */
};

/* ---- where everything goes in the crash region (load/kdump.c) ---- */

struct layout {
    uint64_t ctrl, tables, boot_params, cmdline, elfhdr, backup, keep_end;   /* region offsets */
    uint64_t nr_tables, elfhdr_size, max_loads;
    uint64_t ident_size;        /* identity map covers [0, ident_size) */
    uint64_t kernel, initrd;    /* physical */
    uint64_t kernel_align;      /* the alignment chosen for kernel, written back to boot_params */
    int levels;
};

/* Initrd bytes the loader places (build_boot_params describes none without a buffer). */
static inline uint64_t initrd_bytes(const struct crashpath_kdump *k)
{
    return k->initrd ? k->initrd_size : 0;
}

/* load/bzimage.c: the Linux x86 boot protocol (Documentation/arch/x86/boot.rst) */
int cp_bz_check(const uint8_t *k, uint64_t size, struct bz_info *bz);
int cp_bz_place_kernel(const struct crashpath_kdump *k, const struct bz_info *bz, struct layout *L);
int cp_bz_build_cmdline(const struct crashpath_kdump *k, const struct bz_info *bz, uint64_t elfhdr_phys,
                        char *dst);
void cp_bz_build_boot_params(const struct crashpath_kdump *k, const uint8_t *kernel, const struct bz_info *bz,
                             const struct layout *L, uint8_t *bp);

/* load/memmap.c: the firmware's map checked, and the kdump kernel's made from it */
int cp_memmap_check(const struct crashpath_kdump *k);
int cp_memmap_check_notes(const struct crashpath_kdump *k, const struct layout *L);
int cp_memmap_build_e820(const struct crashpath_kdump *k, const struct layout *L, uint8_t *bp);

/* load/pagetables.c: the hand-off's identity map plus the alias of crashpath's stub page */
uint64_t cp_pt_pages(uint64_t ident_size, int levels);
int cp_pt_build(const struct crashpath_kdump *k, const struct layout *L, uint64_t alias_va, uint64_t alias_pa,
                uint64_t *root_out);

/* load/elfcore.c: the ELF core header the kdump kernel reads through elfcorehdr= */
uint64_t cp_elfcore_size(uint64_t nr_phdrs);
void cp_elfcore_build(const struct crashpath_kdump *k, const struct layout *L, uint8_t *hdr);

#pragma GCC visibility pop

#endif
