/* SPDX-License-Identifier: BSD-2-Clause */
/* pagetables.c — load time: the hand-off's page tables in the crash region: an identity map in
 * 2 MiB pages (4- or 5-level, as the host runs) plus one 4 KiB alias of the page of crashpath's
 * text that executes MOV CR3, so the next instruction is still there. */
#include "cp/load.h"

/* x86 page-table entry bits. */
#define PTE_P 0x1ull
#define PTE_W 0x2ull
#define PTE_PS 0x80ull
#define PTE_ADDR 0x000ffffffffff000ull
#define CR4_PAE (1ull << 5)
#define CR4_LA57 (1ull << 12)

uint64_t cp_pt_pages(uint64_t ident_size, int levels)
{
    uint64_t pds = ident_size / GB, pdpts = align_up(ident_size, 512 * GB) / (512 * GB);

    /* root (+ PML4 under a PML5) + the 4 KiB alias of crashpath's code, which
     * may need a table at every level below the root */
    return pds + pdpts + 1 + (levels == 5 ? 1 : 0) + (uint64_t)(levels - 1);
}

struct pt_alloc {
    uint8_t *virt;          /* first table page, host virtual */
    uint64_t phys;
    uint64_t used, max;
};

static uint64_t *pt_table(const struct pt_alloc *a, uint64_t phys)
{
    return (uint64_t *)(void *)(a->virt + (phys - a->phys));
}

/* A zeroed table page, or 0 when the pages reserved for tables run out. */
static uint64_t pt_new(struct pt_alloc *a)
{
    uint64_t phys = a->phys + a->used * PAGE;

    if (a->used == a->max)
        return 0;
    cp_zero(a->virt + a->used * PAGE, PAGE);
    a->used++;
    return phys;
}

static unsigned int pt_index(uint64_t va, int level)
{
    return (unsigned int)(va >> (12 + 9 * (level - 1))) & 511u;
}

/* The table one level down from entry, created if absent; 0 if the entry is
 * a large page (the alias would collide with the identity map) or no table
 * page is left. */
static uint64_t pt_next(struct pt_alloc *a, uint64_t *entry)
{
    if (*entry & PTE_PS)
        return 0;
    if (!(*entry & PTE_P)) {
        uint64_t t = pt_new(a);

        if (!t)
            return 0;
        *entry = t | PTE_P | PTE_W;
    }
    return *entry & PTE_ADDR;
}

static int build_tables(struct pt_alloc *a, const struct layout *L, uint64_t alias_va, uint64_t alias_pa,
                        uint64_t *root_out)
{
    uint64_t root = pt_new(a), top = root;

    if (L->levels == 5)
        top = pt_next(a, &pt_table(a, root)[0]);
    for (uint64_t pa = 0; pa < L->ident_size; pa += 2 * MB) {
        uint64_t pdpt = pt_next(a, &pt_table(a, top)[pt_index(pa, 4)]);
        uint64_t pd = pdpt ? pt_next(a, &pt_table(a, pdpt)[pt_index(pa, 3)]) : 0;

        if (!pd)
            return CRASHPATH_ERR_MAPPING;
        pt_table(a, pd)[pt_index(pa, 2)] = pa | PTE_P | PTE_W | PTE_PS;
    }
    /* The page of crashpath's text that executes MOV CR3: mapped where it
     * runs, so the instruction after it is still there. */
    if (alias_va != alias_pa) {
        uint64_t t = root;

        for (int level = L->levels; level > 1; level--) {
            t = pt_next(a, &pt_table(a, t)[pt_index(alias_va, level)]);
            if (!t)
                return CRASHPATH_ERR_MAPPING;
        }
        pt_table(a, t)[pt_index(alias_va, 1)] = (alias_pa & PTE_ADDR) | PTE_P | PTE_W;
    }
    *root_out = root;
    return CRASHPATH_OK;
}

int cp_pt_build(const struct crashpath_kdump *k, const struct layout *L, uint64_t alias_va, uint64_t alias_pa,
                uint64_t *root_out)
{
    struct pt_alloc pt;

    pt.virt = (uint8_t *)k->region + L->tables;
    pt.phys = k->region_phys + L->tables;
    pt.used = 0;
    pt.max = L->nr_tables;
    return build_tables(&pt, L, alias_va, alias_pa, root_out);
}
