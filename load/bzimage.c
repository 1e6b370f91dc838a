/* SPDX-License-Identifier: BSD-2-Clause */
/* bzimage.c — load time: the Linux x86 boot protocol (Documentation/arch/x86/boot.rst) for a
 * bzImage: its setup header checked, where the kernel may go, boot_params and the command line. */
#include "cp/hw.h"
#include "cp/load.h"

/* Setup header fields (Documentation/x86/boot.rst), as offsets in the bzImage
 * file and, from 0x1f1 on, in boot_params. */
#define BZ_SETUP_SECTS 0x1f1
#define BZ_BOOT_FLAG 0x1fe
#define BZ_JUMP 0x200           /* its second byte gives the header's end */
#define BZ_HEADER 0x202
#define BZ_VERSION 0x206
#define BZ_TYPE_OF_LOADER 0x210
#define BZ_RAMDISK_IMAGE 0x218
#define BZ_RAMDISK_SIZE 0x21c
#define BZ_CMD_LINE_PTR 0x228
#define BZ_KERNEL_ALIGNMENT 0x230
#define BZ_RELOCATABLE 0x234
#define BZ_MIN_ALIGNMENT 0x235
#define BZ_XLOADFLAGS 0x236
#define BZ_CMDLINE_SIZE 0x238
#define BZ_INIT_SIZE 0x260
#define BP_ACPI_RSDP 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128u
#define HDRS_MAGIC 0x53726448u  /* "HdrS" */
#define XLF_KERNEL_64 0x1u
#define XLF_CAN_BE_LOADED_ABOVE_4G 0x2u
#define XLF_5LEVEL 0x20u
#define MIN_PROTOCOL 0x020cu    /* 2.12: xloadflags exists */
#define LOADER_UNDEFINED 0xffu  /* type_of_loader: not a registered boot loader */
#define KERNEL_MIN_LOAD (16 * MB)   /* startup_64 decompresses at 16 MiB or above */
/* x86-64 maps the kernel with 2 MiB pages: no load address is less aligned
 * (boot.rst: min_alignment is 21 on 64-bit; CONFIG_PHYSICAL_ALIGN a multiple). */
#define KERNEL_ALIGN_64_MIN (2 * MB)
#define MIN_ALIGNMENT_LOG2_FLOOR 12u    /* a nonzero min_alignment below a page is nonsense */

static int is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

/* boot.rst: kernel_alignment is the alignment the kernel asks for; with
 * protocol 2.10+ a loader may lower it when memory is short, down to
 * 1 << min_alignment (0: the kernel gives no minimum, so we never lower).
 * The decompressor rounds its load address up to boot_params.kernel_alignment
 * and extracts at [rounded, rounded + init_size): an address less aligned
 * than that would put the kernel's extraction over whatever follows it. */
static int check_alignment(const uint8_t *k, struct bz_info *bz)
{
    uint32_t kernel_alignment = get32(k, BZ_KERNEL_ALIGNMENT);
    uint32_t min_log2 = get8(k, BZ_MIN_ALIGNMENT);

    if (!is_pow2(kernel_alignment))
        return CRASHPATH_ERR_BZ_ALIGN;
    if (min_log2 && (min_log2 < MIN_ALIGNMENT_LOG2_FLOOR || min_log2 > 31u ||
                     (1ull << min_log2) > kernel_alignment))
        return CRASHPATH_ERR_BZ_ALIGN;
    bz->align_preferred = kernel_alignment > KERNEL_ALIGN_64_MIN ? kernel_alignment : KERNEL_ALIGN_64_MIN;
    bz->align_lowest = bz->align_preferred;
    if (min_log2)
        bz->align_lowest = (1ull << min_log2) > KERNEL_ALIGN_64_MIN ? 1ull << min_log2 : KERNEL_ALIGN_64_MIN;
    return CRASHPATH_OK;
}

int cp_bz_check(const uint8_t *k, uint64_t size, struct bz_info *bz)
{
    uint32_t setup_sects;

    if (size < BZ_INIT_SIZE + 4)
        return CRASHPATH_ERR_BZ_TRUNCATED;
    if (get16(k, BZ_BOOT_FLAG) != 0xaa55u || get32(k, BZ_HEADER) != HDRS_MAGIC)
        return CRASHPATH_ERR_BZ_MAGIC;
    if (get16(k, BZ_VERSION) < MIN_PROTOCOL)
        return CRASHPATH_ERR_BZ_VERSION;
    bz->xloadflags = get16(k, BZ_XLOADFLAGS);
    if (!(bz->xloadflags & XLF_KERNEL_64))
        return CRASHPATH_ERR_BZ_NOT_64BIT;
    /* We choose the load address, so the kernel must accept any. */
    if (!get8(k, BZ_RELOCATABLE))
        return CRASHPATH_ERR_BZ_NOT_RELOCATABLE;
    setup_sects = get8(k, BZ_SETUP_SECTS);
    if (!setup_sects)
        setup_sects = 4;        /* boot.rst: 0 means 4 */
    bz->payload_off = (uint64_t)(setup_sects + 1) * 512u;
    bz->header_end = BZ_HEADER + get8(k, BZ_JUMP + 1);
    if (size <= bz->payload_off + ENTRY_64 || bz->header_end > bz->payload_off)
        return CRASHPATH_ERR_BZ_TRUNCATED;
    bz->payload_size = size - bz->payload_off;
    bz->init_size = get32(k, BZ_INIT_SIZE);
    bz->cmdline_size = get32(k, BZ_CMDLINE_SIZE);
    /* The kernel decompresses in place within init_size: it must at least
     * hold what we copy there. */
    if (bz->init_size < bz->payload_size)
        return CRASHPATH_ERR_BZ_INIT_SIZE;
    return check_alignment(k, bz);
}

/* The kernel at align after crashpath's kept pages and at or above 16 MiB,
 * the initrd after its init_size window; whether both fit in the region. */
static int place_kernel(const struct crashpath_kdump *k, const struct bz_info *bz, struct layout *L,
                        uint64_t align)
{
    uint64_t region_end = k->region_phys + k->region_size, lowest = k->region_phys + L->keep_end;

    L->kernel = align_up(lowest > KERNEL_MIN_LOAD ? lowest : KERNEL_MIN_LOAD, align);
    L->initrd = align_up(L->kernel + bz->init_size, PAGE);
    L->kernel_align = align;
    return lowest <= region_end && L->kernel + bz->init_size <= region_end &&
           L->initrd + initrd_bytes(k) <= region_end;
}

/* Where the kernel and initrd go once crashpath's own pages are laid out. */
int cp_bz_place_kernel(const struct crashpath_kdump *k, const struct bz_info *bz, struct layout *L)
{
    /* A 4-level-only kernel cannot start with CR4.LA57 set, and the hand-off
     * cannot clear LA57: CR4.LA57 changes only with paging off (SDM 4.1.1),
     * which the 64-bit entry never has. boot.rst: XLF_5LEVEL says the kernel
     * can be entered in 5-level mode. */
    if (L->levels == 5 && !(bz->xloadflags & XLF_5LEVEL))
        return CRASHPATH_ERR_BZ_NO_5LEVEL;

    /* The alignment the kernel asks for, halved while the region is too
     * short for it, never below what it allows (boot.rst, kernel_alignment). */
    for (uint64_t align = bz->align_preferred;; align >>= 1) {
        if (place_kernel(k, bz, L, align))
            break;
        if (align >> 1 < bz->align_lowest)
            return CRASHPATH_ERR_REGION_TOO_SMALL;
    }
    /* boot.rst: without XLF_CAN_BE_LOADED_ABOVE_4G the kernel, its
     * decompression window and the initrd must all lie below 4 GiB. */
    if (!(bz->xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G) &&
        (L->kernel + bz->init_size > 4 * GB || (initrd_bytes(k) && L->initrd + initrd_bytes(k) > 4 * GB)))
        return CRASHPATH_ERR_BZ_NOT_ABOVE_4G;
    return CRASHPATH_OK;
}

static uint32_t str_put(char *dst, uint32_t at, uint32_t cap, const char *s)
{
    while (*s && at < cap)
        dst[at++] = *s++;
    return at;
}

int cp_bz_build_cmdline(const struct crashpath_kdump *k, const struct bz_info *bz, uint64_t elfhdr_phys,
                        char *dst)
{
    static const char hex[] = "0123456789abcdef";
    char num[19] = "0x";
    uint32_t cap = bz->cmdline_size ? bz->cmdline_size : 255u, at = 0;

    if (cap > PAGE - 1)
        cap = PAGE - 1;
    for (int i = 0; i < 16; i++)
        num[2 + i] = hex[(elfhdr_phys >> (60 - 4 * i)) & 0xfu];
    num[18] = 0;
    if (k->cmdline && *k->cmdline) {
        at = str_put(dst, at, cap, k->cmdline);
        at = str_put(dst, at, cap, " ");
    }
    at = str_put(dst, at, cap, "elfcorehdr=");
    at = str_put(dst, at, cap, num);
    if (at >= cap)
        return CRASHPATH_ERR_CMDLINE;     /* truncated: elfcorehdr= would be lost */
    dst[at] = 0;
    return CRASHPATH_OK;
}

void cp_bz_build_boot_params(const struct crashpath_kdump *k, const uint8_t *kernel, const struct bz_info *bz,
                             const struct layout *L, uint8_t *bp)
{
    uint64_t cmdline = k->region_phys + L->cmdline;

    /* From a zeroed page: the setup header from 0x1f1 to its end, nothing
     * before it (boot.rst: the sentinel at 0x1ef must not be copied). */
    copy_bytes(bp + BZ_SETUP_SECTS, kernel + BZ_SETUP_SECTS, bz->header_end - BZ_SETUP_SECTS);
    bp[BZ_TYPE_OF_LOADER] = LOADER_UNDEFINED;
    /* boot.rst: a loader that lowers the alignment writes the one it used
     * here; the decompressor rounds its load address up to this value. */
    put32(bp, BZ_KERNEL_ALIGNMENT, (uint32_t)L->kernel_align);
    put32(bp, BZ_CMD_LINE_PTR, (uint32_t)cmdline);
    put32(bp, BP_EXT_CMD_LINE_PTR, (uint32_t)(cmdline >> 32));
    if (k->initrd && k->initrd_size) {
        put32(bp, BZ_RAMDISK_IMAGE, (uint32_t)L->initrd);
        put32(bp, BP_EXT_RAMDISK_IMAGE, (uint32_t)(L->initrd >> 32));
        put32(bp, BZ_RAMDISK_SIZE, (uint32_t)k->initrd_size);
        put32(bp, BP_EXT_RAMDISK_SIZE, (uint32_t)(k->initrd_size >> 32));
    }
    put64(bp, BP_ACPI_RSDP, k->acpi_rsdp);
}
