/* kdump.c — load time of the hand-off: validate a bzImage, place it in the crash region, and
 * prepare boot_params, the command line, the ELF core header and the hand-off page tables. */
#include "cp/hw.h"
#include "cp/internal.h"

struct cp_kdump cp_kdump;

#define PAGE 4096ull
#define MB (1024ull * 1024ull)
#define GB (1024ull * MB)

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
#define ENTRY_64 0x200u

/* x86 page-table entry bits. */
#define PTE_P 0x1ull
#define PTE_W 0x2ull
#define PTE_PS 0x80ull
#define PTE_ADDR 0x000ffffffffff000ull
#define CR4_PAE (1ull << 5)
#define CR4_LA57 (1ull << 12)

/* ELF (the System V gABI and the x86-64 psABI), as kexec-tools writes it. */
#define ET_CORE 4
#define EM_X86_64 62
#define PT_LOAD 1
#define PT_NOTE 4
#define PF_RWX 7

struct elf64_ehdr {
    uint8_t e_ident[16];
    uint16_t e_type, e_machine;
    uint32_t e_version;
    uint64_t e_entry, e_phoff, e_shoff;
    uint32_t e_flags;
    uint16_t e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx;
};

struct elf64_phdr {
    uint32_t p_type, p_flags;
    uint64_t p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align;
};

/* The parameter block inside the copied handoff_stub (entry/handoff.asm). */
struct cp_handoff_params {
    uint64_t cr4, backup_src, backup_dst, backup_qwords, boot_params, entry;
};

extern const uint8_t handoff_stub[], handoff_stub_identity[], handoff_stub_end[], handoff_params[],
    handoff_gdt[], handoff_gdtr[];

/* Offset of a label of entry/handoff.asm from handoff_stub: separate C
 * objects as far as the language knows, so compare addresses as integers. */
static uint64_t stub_offset(const uint8_t *label)
{
    return (uint64_t)(uintptr_t)label - (uint64_t)(uintptr_t)handoff_stub;
}

/* ---- byte access and copies (no libc) ---- */

static uint32_t get8(const uint8_t *p, uint64_t off) { return p[off]; }

static uint32_t get16(const uint8_t *p, uint64_t off)
{
    return (uint32_t)p[off] | (uint32_t)p[off + 1] << 8;
}

static uint32_t get32(const uint8_t *p, uint64_t off)
{
    return get16(p, off) | get16(p, off + 2) << 16;
}

static void put16(uint8_t *p, uint64_t off, uint32_t v)
{
    p[off] = (uint8_t)v;
    p[off + 1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint64_t off, uint32_t v)
{
    put16(p, off, v);
    put16(p, off + 2, v >> 16);
}

static void put64(uint8_t *p, uint64_t off, uint64_t v)
{
    put32(p, off, (uint32_t)v);
    put32(p, off + 4, (uint32_t)(v >> 32));
}

static void copy_bytes(void *dst, const void *src, uint64_t n)
{
    volatile uint8_t *d = dst;
    const uint8_t *s = src;

    for (uint64_t i = 0; i < n; i++)
        d[i] = s[i];
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

static int overlap(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len)
{
    return a < b + b_len && b < a + a_len;
}

/* ---- the bzImage ---- */

struct bz_info {
    uint64_t payload_off, payload_size;
    uint32_t header_end, init_size, cmdline_size;
    uint32_t xloadflags;
    uint64_t align_preferred;   /* kernel_alignment, at least 2 MiB */
    uint64_t align_lowest;      /* how far the loader may lower it: 1 << min_alignment, at least
                                   2 MiB; align_preferred when min_alignment is 0 (no lowering) */
};

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

static int check_bzimage(const uint8_t *k, uint64_t size, struct bz_info *bz)
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

/* ---- the memory map ---- */

static int check_memmap(const struct crashpath_kdump *k)
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

/* ---- region layout ---- */

struct layout {
    uint64_t ctrl, tables, boot_params, cmdline, elfhdr, backup, keep_end;   /* region offsets */
    uint64_t nr_tables, elfhdr_size, max_loads;
    uint64_t ident_size;        /* identity map covers [0, ident_size) */
    uint64_t kernel, initrd;    /* physical */
    uint64_t kernel_align;      /* the alignment chosen for kernel, written back to boot_params */
    int levels;
};

/* Initrd bytes the loader places (build_boot_params describes none without a buffer). */
static uint64_t initrd_bytes(const struct crashpath_kdump *k)
{
    return k->initrd ? k->initrd_size : 0;
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

static uint64_t table_pages(uint64_t ident_size, int levels)
{
    uint64_t pds = ident_size / GB, pdpts = align_up(ident_size, 512 * GB) / (512 * GB);

    /* root (+ PML4 under a PML5) + the 4 KiB alias of crashpath's code, which
     * may need a table at every level below the root */
    return pds + pdpts + 1 + (levels == 5 ? 1 : 0) + (uint64_t)(levels - 1);
}

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
    L->nr_tables = table_pages(L->ident_size, L->levels);
    /* A RAM range can become up to four PT_LOADs: split at 640 KiB, around
     * the image, and around the crash region. */
    L->max_loads = (uint64_t)k->nr_memmap * 4u;
    nr_phdrs = cp_state.nr_cpus + 1u + L->max_loads;
    L->elfhdr_size = align_up(sizeof(struct elf64_ehdr) + nr_phdrs * sizeof(struct elf64_phdr), PAGE);

    L->ctrl = 0;
    L->tables = L->ctrl + PAGE;
    L->boot_params = L->tables + L->nr_tables * PAGE;
    L->cmdline = L->boot_params + PAGE;
    L->elfhdr = L->cmdline + PAGE;
    L->backup = L->elfhdr + L->elfhdr_size;
    L->keep_end = L->backup + CRASHPATH_LOW_BACKUP_SIZE;

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

/* ---- hand-off page tables: identity 2 MiB pages plus one 4 KiB alias ---- */

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

/* ---- boot_params and the command line ---- */

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
 * kept pages. A piece is empty when its size is 0. build_e820 writes exactly
 * these, and check_notes_outside_kdump_ram refuses note buffers in them. */
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
 * build_e820 hands it as RAM, before anything is written to the region. */
static int check_notes_outside_kdump_ram(const struct crashpath_kdump *k, const struct layout *L)
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
static int build_e820(const struct crashpath_kdump *k, const struct layout *L, uint8_t *bp)
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

static uint32_t str_put(char *dst, uint32_t at, uint32_t cap, const char *s)
{
    while (*s && at < cap)
        dst[at++] = *s++;
    return at;
}

static int build_cmdline(const struct crashpath_kdump *k, const struct bz_info *bz, uint64_t elfhdr_phys,
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

static void build_boot_params(const struct crashpath_kdump *k, const uint8_t *kernel, const struct bz_info *bz,
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

/* ---- the ELF core header ---- */

static void phdr_set(struct elf64_phdr *p, uint32_t type, uint64_t offset, uint64_t vaddr, uint64_t paddr,
                     uint64_t size)
{
    p->p_type = type;
    p->p_flags = type == PT_LOAD ? PF_RWX : 0;
    p->p_offset = offset;
    p->p_vaddr = vaddr;
    p->p_paddr = paddr;
    p->p_filesz = size;
    p->p_memsz = size;
    p->p_align = 0;
}

/* One RAM piece [s, e) outside the crash region: split at 640 KiB (the low
 * part is read from the backup) and around the image (which gets the
 * hypervisor's virtual addresses, so gdb finds its symbols). */
static uint32_t add_loads(const struct crashpath_kdump *k, const struct layout *L, struct elf64_phdr *ph,
                          uint32_t n, uint64_t s, uint64_t e)
{
    uint64_t backup = k->region_phys + L->backup;
    uint64_t img_s = k->image_phys, img_e = k->image_phys + k->image_size;

    while (s < e) {
        uint64_t cut = e, off = s, va = s + cp_state.phys_map_offset;

        if (s < CRASHPATH_LOW_BACKUP_SIZE) {
            cut = e < CRASHPATH_LOW_BACKUP_SIZE ? e : CRASHPATH_LOW_BACKUP_SIZE;
            off = backup + s;
        } else if (s >= img_s && s < img_e) {
            cut = e < img_e ? e : img_e;
            va = k->image_virt + (s - img_s);
        } else if (s < img_s && e > img_s) {
            cut = img_s;
        }
        phdr_set(&ph[n++], PT_LOAD, off, va, s, cut - s);
        s = cut;
    }
    return n;
}

static void build_elf_header(const struct crashpath_kdump *k, const struct layout *L, uint8_t *hdr)
{
    struct elf64_ehdr *eh = (struct elf64_ehdr *)(void *)hdr;
    struct elf64_phdr *ph = (struct elf64_phdr *)(void *)(hdr + sizeof(*eh));
    uint64_t r_s = k->region_phys, r_e = k->region_phys + k->region_size;
    uint32_t n = 0;

    cp_zero(hdr, L->elfhdr_size);
    eh->e_ident[0] = 0x7f;
    eh->e_ident[1] = 'E';
    eh->e_ident[2] = 'L';
    eh->e_ident[3] = 'F';
    eh->e_ident[4] = 2;          /* ELFCLASS64 */
    eh->e_ident[5] = 1;          /* ELFDATA2LSB */
    eh->e_ident[6] = 1;          /* EV_CURRENT */
    eh->e_type = ET_CORE;
    eh->e_machine = EM_X86_64;
    eh->e_version = 1;
    eh->e_phoff = sizeof(*eh);   /* the kdump kernel assumes the phdrs follow at 64 */
    eh->e_ehsize = sizeof(*eh);
    eh->e_phentsize = sizeof(*ph);

    /* Every PT_NOTE first: the kdump kernel merges them into slot 0 and
     * assumes nothing else precedes them (fs/proc/vmcore.c). */
    for (uint32_t i = 0; i < cp_state.nr_cpus; i++)
        phdr_set(&ph[n++], PT_NOTE, cp_state.cpus[i].notes_phys, 0, cp_state.cpus[i].notes_phys,
                 CRASHPATH_CPU_NOTES_SIZE);
    phdr_set(&ph[n++], PT_NOTE, cp_state.info_note_phys, 0, cp_state.info_note_phys, CRASHPATH_INFO_NOTE_SIZE);

    for (uint32_t i = 0; i < k->nr_memmap; i++) {
        const struct crashpath_mem_range *m = &k->memmap[i];
        uint64_t s = m->start, e = m->start + m->size;

        if (m->type != CRASHPATH_E820_RAM)
            continue;
        if (overlap(s, e - s, r_s, r_e - r_s)) {
            n = add_loads(k, L, ph, n, s, s < r_s ? r_s : s);
            n = add_loads(k, L, ph, n, e > r_e ? r_e : e, e);
        } else {
            n = add_loads(k, L, ph, n, s, e);
        }
    }
    eh->e_phnum = (uint16_t)n;
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
    struct cp_handoff_params *p =
        (struct cp_handoff_params *)(void *)(ctrl + stub_offset(handoff_params));

    cp_zero(ctrl, PAGE);
    copy_bytes(ctrl, handoff_stub, stub_offset(handoff_stub_end));
    p->cr4 = CR4_PAE | (L->levels == 5 ? CR4_LA57 : 0);
    p->backup_src = 0;
    p->backup_dst = k->region_phys + L->backup;
    p->backup_qwords = CRASHPATH_LOW_BACKUP_SIZE / 8u;
    p->boot_params = k->region_phys + L->boot_params;
    p->entry = L->kernel + ENTRY_64;
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
    struct pt_alloc pt;
    uint64_t stub_va = (uint64_t)(uintptr_t)handoff_stub, stub_pa;
    int err;

    if (!__atomic_load_n(&cp_state.ready, __ATOMIC_ACQUIRE))
        return CRASHPATH_ERR_NOT_READY;
    if (cp_crashing_cpu != CP_NO_CPU)
        return CRASHPATH_ERR_BUSY;
    err = check_args(k);
    if (!err)
        err = check_bzimage(k->kernel, k->kernel_size, &bz);
    if (!err)
        err = check_memmap(k);
    if (!err)
        err = plan_layout(k, &bz, &L);
    if (!err)
        err = check_notes_outside_kdump_ram(k, &L);
    if (err)
        return err;

    /* Nothing is written to the region before every check has passed; an
     * image already loaded stays usable until the new one is complete. */
    __atomic_store_n(&cp_kdump.loaded, 0, __ATOMIC_SEQ_CST);
    kernel = k->kernel;
    region = k->region;
    stub_pa = k->image_phys + (stub_va - k->image_virt);
    pt.virt = region + L.tables;
    pt.phys = k->region_phys + L.tables;
    pt.used = 0;
    pt.max = L.nr_tables;
    err = build_tables(&pt, &L, stub_va, stub_pa, &cp_kdump.cr3);
    if (!err)
        err = build_cmdline(k, &bz, k->region_phys + L.elfhdr, (char *)(region + L.cmdline));
    cp_zero(region + L.boot_params, PAGE);
    if (!err)
        err = build_e820(k, &L, region + L.boot_params);
    if (err)
        return err;
    build_boot_params(k, kernel, &bz, &L, region + L.boot_params);
    build_elf_header(k, &L, region + L.elfhdr);
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
