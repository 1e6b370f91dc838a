/* SPDX-License-Identifier: BSD-2-Clause */
/* memmap.c — load time: the firmware's memory map checked, and the kdump kernel's made from it
 * (boot_params' e820 table): only the low 640 KiB and the crash region beyond crashpath's own
 * pages are RAM to it, and no note buffer may lie in them. */
#include "cp/load.h"

/* boot_params' e820 table (Documentation/arch/x86/zero-page.rst). */
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128u

int cp_memmap_check(const struct crashpath_kdump *k)
{
    const struct crashpath_mem_range *m = k->memmap;
    int in_ram = 0;

    if (!k->nr_memmap || k->nr_memmap > CRASHPATH_MAX_MEMMAP)
        return CRASHPATH_ERR_MEMMAP;
    for (uint32_t i = 0; i < k->nr_memmap; i++) {
        if (!m[i].size || m[i].start + m[i].size < m[i].start)
            return CRASHPATH_ERR_MEMMAP;
        for (uint32_t j = 0; j < i; j++)
            if (overlap(m[i].start, m[i].size, m[j].start, m[j].size))
                return CRASHPATH_ERR_MEMMAP;
        if (m[i].type == CRASHPATH_E820_RAM && k->region_phys >= m[i].start &&
            k->region_phys + k->region_size <= m[i].start + m[i].size)
            in_ram = 1;
    }
    return in_ram ? CRASHPATH_OK : CRASHPATH_ERR_REGION_NOT_RAM;
}

static uint32_t e820_add(uint8_t *bp, uint32_t n, uint64_t start, uint64_t size, uint32_t type)
{
    uint64_t off = BP_E820_TABLE + (uint64_t)n * 20u;

    if (!size || n >= BP_E820_MAX)
        return n;
    put64(bp, off, start);
    put64(bp, off + 8, size);
    put32(bp, off + 16, type);
    return n + 1;
}

/* What the kdump kernel gets as RAM out of one firmware RAM range m: its
 * part below 640 KiB (the kernel needs some for its real-mode trampoline; we
 * back it up) and, if m holds the crash region, the region after crashpath's
 * kept pages. A piece is empty when its size is 0. cp_memmap_build_e820 writes exactly
 * these, and cp_memmap_check_notes refuses note buffers in them. */
struct kdump_ram {
    int holds_region;
    uint64_t low, low_size, high, high_size;
};

static void kdump_ram_of(const struct crashpath_kdump *k, const struct layout *L,
                         const struct crashpath_mem_range *m, struct kdump_ram *r)
{
    uint64_t end = m->start + m->size, keep_end = k->region_phys + L->keep_end;

    r->low = m->start;
    r->low_size = 0;
    if (m->start < CRASHPATH_LOW_BACKUP_SIZE)
        r->low_size = (end < CRASHPATH_LOW_BACKUP_SIZE ? end : CRASHPATH_LOW_BACKUP_SIZE) - m->start;
    r->holds_region = overlap(m->start, m->size, k->region_phys, k->region_size);
    r->high = keep_end;
    r->high_size = r->holds_region ? k->region_phys + k->region_size - keep_end : 0;
}

/* An empty piece holds nothing (overlap() alone would see one that starts
 * inside the buffer). */
static int in_kdump_ram(const struct kdump_ram *r, uint64_t at, uint64_t size)
{
    return (r->low_size && overlap(at, size, r->low, r->low_size)) ||
           (r->high_size && overlap(at, size, r->high, r->high_size));
}

/* The kdump kernel maps each PT_NOTE with ioremap, which refuses RAM of its
 * own memory map (arch/x86/mm/ioremap.c: "ioremap on RAM"): a note buffer
 * there leaves it without /proc/vmcore. Checked against the very pieces
 * cp_memmap_build_e820 hands it as RAM, before anything is written to the region. */
int cp_memmap_check_notes(const struct crashpath_kdump *k, const struct layout *L)
{
    for (uint32_t i = 0; i < k->nr_memmap; i++) {
        struct kdump_ram r;

        if (k->memmap[i].type != CRASHPATH_E820_RAM)
            continue;
        kdump_ram_of(k, L, &k->memmap[i], &r);
        for (uint32_t c = 0; c < cp_state.nr_cpus; c++)
            if (in_kdump_ram(&r, cp_state.cpus[c].notes_phys, CRASHPATH_CPU_NOTES_SIZE))
                return CRASHPATH_ERR_NOTES_IN_KDUMP_RAM;
        if (in_kdump_ram(&r, cp_state.info_note_phys, CRASHPATH_INFO_NOTE_SIZE))
            return CRASHPATH_ERR_NOTES_IN_KDUMP_RAM;
    }
    return CRASHPATH_OK;
}

/* The kdump kernel's memory map: the RAM of kdump_ram_of, the firmware's
 * non-RAM ranges as they were, the region's pages crashpath keeps as
 * reserved, and no other RAM: the old hypervisor's memory stays out of its
 * reach (and readable through /proc/vmcore). Sorted by address. */
int cp_memmap_build_e820(const struct crashpath_kdump *k, const struct layout *L, uint8_t *bp)
{
    uint64_t cursor = 0;
    uint32_t n = 0;

    for (;;) {
        /* next range by start address after cursor: a selection, to stay
         * allocation-free and leave the host's array alone */
        const struct crashpath_mem_range *m = 0;
        struct kdump_ram r;

        for (uint32_t i = 0; i < k->nr_memmap; i++)
            if (k->memmap[i].start >= cursor && (!m || k->memmap[i].start < m->start))
                m = &k->memmap[i];
        if (!m)
            break;
        cursor = m->start + 1;
        if (m->type != CRASHPATH_E820_RAM) {
            n = e820_add(bp, n, m->start, m->size, m->type);
            continue;
        }
        kdump_ram_of(k, L, m, &r);
        n = e820_add(bp, n, r.low, r.low_size, CRASHPATH_E820_RAM);
        if (r.holds_region)
            n = e820_add(bp, n, k->region_phys, L->keep_end, CRASHPATH_E820_RESERVED);
        n = e820_add(bp, n, r.high, r.high_size, CRASHPATH_E820_RAM);
    }
    if (n >= BP_E820_MAX)
        return CRASHPATH_ERR_MEMMAP;
    bp[BP_E820_ENTRIES] = (uint8_t)n;
    return CRASHPATH_OK;
}
