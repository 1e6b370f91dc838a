/* SPDX-License-Identifier: BSD-2-Clause */
/* kdump.c — load time: crashpath_load_kdump, the loader that lays out the crash region and calls
 * each job (load/bzimage.c, memmap.c, pagetables.c, elfcore.c), then copies the hand-off stub and
 * records what the crash path checks and jumps to. Nothing is written before every check passed. */
#include "cp/hw.h"
#include "cp/load.h"

/* The hand-off stub (entry/handoff.asm): copied into the control page, its
 * parameters written in place; each parameter is a label there, defined once. */
extern const uint8_t handoff_stub[], handoff_stub_identity[], handoff_stub_end[], handoff_gdt[], handoff_gdtr[],
    handoff_param_cr4[], handoff_param_backup_src[], handoff_param_backup_dst[], handoff_param_backup_qwords[],
    handoff_param_boot_params[], handoff_param_entry[];

/* Offset of a label of entry/handoff.asm from handoff_stub: separate C
 * objects as far as the language knows, so compare addresses as integers. */
static uint64_t stub_offset(const uint8_t *label)
{
    return (uint64_t)(uintptr_t)label - (uint64_t)(uintptr_t)handoff_stub;
}

/* ---- region layout ---- */

static int plan_layout(const struct crashpath_kdump *k, const struct bz_info *bz, struct layout *L)
{
    uint64_t region_end = k->region_phys + k->region_size;
    uint64_t nr_phdrs;

    /* Identity map everything up to the region's end and at least 4 GiB, so
     * the kdump kernel can reach its own image, boot_params, the LAPIC and
     * the notes wherever the host keeps them below that. */
    L->ident_size = align_up(region_end > 4 * GB ? region_end : 4 * GB, GB);
    if (L->ident_size > 512 * GB)
        return CRASHPATH_ERR_REGION_TOO_SMALL;
    L->levels = (cp_hw_read_cr4() & CR4_LA57) ? 5 : 4;
    L->nr_tables = cp_pt_pages(L->ident_size, L->levels);
    /* A RAM range can become up to three PT_LOADs (split at 640 KiB and
     * around the crash region); the image adds one. */
    L->max_loads = (uint64_t)k->nr_memmap * 3u + 1u;
    nr_phdrs = 1u + cp_state.nr_cpus + 1u + L->max_loads;     /* NT_PRPSINFO, CPUs, crash info */
    L->elfhdr_size = cp_elfcore_size(nr_phdrs);

    L->ctrl = 0;
    L->tables = L->ctrl + PAGE;
    L->boot_params = L->tables + L->nr_tables * PAGE;
    L->cmdline = L->boot_params + PAGE;
    L->elfhdr = L->cmdline + PAGE;
    L->backup = L->elfhdr + L->elfhdr_size;
    L->keep_end = L->backup + CRASHPATH_LOW_BACKUP_SIZE;
    return cp_bz_place_kernel(k, bz, L);
}

/* ---- putting it together ---- */

static int check_args(const struct crashpath_kdump *k)
{
    uint64_t stub = (uint64_t)(uintptr_t)handoff_stub;

    if (!k || !k->kernel || !k->region || !k->region_size || !k->memmap)
        return CRASHPATH_ERR_KDUMP_ARGS;
    if (((uintptr_t)k->region | k->region_phys | k->region_size) & (PAGE - 1))
        return CRASHPATH_ERR_REGION_ALIGN;
    /* The page holding handoff_stub is mapped by the hand-off tables at the
     * address it runs at, translated through the image range. */
    if (stub < k->image_virt || stub + 16 > k->image_virt + k->image_size)
        return CRASHPATH_ERR_IMAGE_RANGE;
    return CRASHPATH_OK;
}

static void install_stub(const struct crashpath_kdump *k, const struct layout *L, uint8_t *ctrl)
{
    uint64_t ctrl_phys = k->region_phys + L->ctrl;

    cp_zero(ctrl, PAGE);
    copy_bytes(ctrl, handoff_stub, stub_offset(handoff_stub_end));
    put64(ctrl, stub_offset(handoff_param_cr4), CR4_PAE | (L->levels == 5 ? CR4_LA57 : 0));
    put64(ctrl, stub_offset(handoff_param_backup_src), 0);
    put64(ctrl, stub_offset(handoff_param_backup_dst), k->region_phys + L->backup);
    put64(ctrl, stub_offset(handoff_param_backup_qwords), CRASHPATH_LOW_BACKUP_SIZE / 8u);
    put64(ctrl, stub_offset(handoff_param_boot_params), k->region_phys + L->boot_params);
    put64(ctrl, stub_offset(handoff_param_entry), L->kernel + ENTRY_64);
    put64(ctrl, stub_offset(handoff_gdtr) + 2, ctrl_phys + stub_offset(handoff_gdt));
}

static uint64_t str_len(const char *s)
{
    uint64_t n = 0;

    while (s[n])
        n++;
    return n;
}

/* What the crash path will check before it jumps: each segment's bytes in
 * the region and their SHA-256 now. */
static void record_segments(const struct crashpath_kdump *k, const struct layout *L, const struct bz_info *bz)
{
    uint8_t *region = k->region;
    const char *cmdline = (const char *)(region + L->cmdline);
    struct cp_segment *s = cp_kdump.segments;

    s[0].virt = region + (L->kernel - k->region_phys);
    s[0].size = bz->payload_size;
    s[1].virt = region + (L->initrd - k->region_phys);
    s[1].size = k->initrd ? k->initrd_size : 0;
    s[2].virt = region + L->boot_params;
    s[2].size = PAGE;
    s[3].virt = (const uint8_t *)cmdline;
    s[3].size = str_len(cmdline) + 1;
    for (int i = 0; i < CP_NR_SEGMENTS; i++)
        cp_sha256(s[i].virt, s[i].size, s[i].sha256);

    cp_kdump.flags = k->flags;
    cp_kdump.where.kernel = L->kernel;
    cp_kdump.where.kernel_size = bz->payload_size;
    cp_kdump.where.initrd = k->initrd ? L->initrd : 0;
    cp_kdump.where.initrd_size = s[1].size;
    cp_kdump.where.boot_params = k->region_phys + L->boot_params;
    cp_kdump.where.cmdline = k->region_phys + L->cmdline;
    cp_kdump.where.elfcorehdr = k->region_phys + L->elfhdr;
    cp_kdump.where.elfcorehdr_size = L->elfhdr_size;
    cp_kdump.where.kept = k->region_phys;
    cp_kdump.where.kept_size = L->keep_end;
}

int crashpath_kdump_info(struct crashpath_kdump_info *info)
{
    if (!info || !__atomic_load_n(&cp_kdump.loaded, __ATOMIC_ACQUIRE))
        return CRASHPATH_ERR_NOT_READY;
    *info = cp_kdump.where;
    return CRASHPATH_OK;
}

int crashpath_load_kdump(const struct crashpath_kdump *k)
{
    const uint8_t *kernel;
    uint8_t *region;
    struct bz_info bz;
    struct layout L;
    uint64_t stub_va = (uint64_t)(uintptr_t)handoff_stub, stub_pa;
    int err;

    if (!__atomic_load_n(&cp_state.ready, __ATOMIC_ACQUIRE))
        return CRASHPATH_ERR_NOT_READY;
    if (cp_crashing_cpu != CP_NO_CPU)
        return CRASHPATH_ERR_BUSY;
    err = check_args(k);
    if (!err)
        err = cp_bz_check(k->kernel, k->kernel_size, &bz);
    if (!err)
        err = cp_memmap_check(k);
    if (!err)
        err = plan_layout(k, &bz, &L);
    if (!err)
        err = cp_memmap_check_notes(k, &L);
    if (err)
        return err;

    /* Nothing is written to the region before every check has passed; an
     * image already loaded stays usable until the new one is complete. */
    __atomic_store_n(&cp_kdump.loaded, 0, __ATOMIC_SEQ_CST);
    kernel = k->kernel;
    region = k->region;
    stub_pa = k->image_phys + (stub_va - k->image_virt);
    err = cp_pt_build(k, &L, stub_va, stub_pa, &cp_kdump.cr3);
    if (!err)
        err = cp_bz_build_cmdline(k, &bz, k->region_phys + L.elfhdr, (char *)(region + L.cmdline));
    cp_zero(region + L.boot_params, PAGE);
    if (!err)
        err = cp_memmap_build_e820(k, &L, region + L.boot_params);
    if (err)
        return err;
    cp_bz_build_boot_params(k, kernel, &bz, &L, region + L.boot_params);
    cp_elfcore_build(k, &L, region + L.elfhdr);
    copy_bytes(region + (L.kernel - k->region_phys), kernel + bz.payload_off, bz.payload_size);
    if (k->initrd && k->initrd_size)
        copy_bytes(region + (L.initrd - k->region_phys), k->initrd, k->initrd_size);
    install_stub(k, &L, region + L.ctrl);
    record_segments(k, &L, &bz);

    cp_kdump.identity_entry = k->region_phys + L.ctrl + stub_offset(handoff_stub_identity);
    cp_kdump.kernel_entry = L.kernel + ENTRY_64;
    cp_kdump.elfcorehdr = k->region_phys + L.elfhdr;
    __atomic_store_n(&cp_kdump.loaded, 1, __ATOMIC_RELEASE);
    return CRASHPATH_OK;
}
