/* SPDX-License-Identifier: BSD-2-Clause */
/* test_kdump.c — crashpath_load_kdump on a synthetic bzImage: placement, boot_params, e820,
 * command line, ELF core header, hand-off tables and stub; a clear error per bad image; and a dump
 * file from a crash for tools/crashpath_dump.py. */
#define _GNU_SOURCE             /* dl_iterate_phdr */
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cp/internal.h"
#include "sim.h"
#include "testlib.h"

#define MB (1024ull * 1024ull)
#define REGION_PHYS (256 * MB)
#define REGION_SIZE (64 * MB)
#define IMAGE_PHYS (2 * MB)
#define PAYLOAD_SIZE (64 * 1024)
#define SETUP_SECTS 4
#define PAYLOAD_OFF ((SETUP_SECTS + 1) * 512)

extern const uint8_t handoff_stub[], handoff_stub_identity[], handoff_stub_end[], handoff_param_cr4[],
    handoff_param_backup_src[], handoff_param_backup_qwords[], handoff_param_boot_params[], handoff_param_entry[],
    handoff_gdt[], handoff_gdtr[];

static struct crashpath_config cfg;
static struct crashpath_cpu cpus[SIM_MAX_CPUS];
static uint8_t *bz, *region;
static uint64_t bz_size;
static struct crashpath_kdump kd;
static const struct crashpath_mem_range memmap[] = {
    { 0x0, 0x9fc00, CRASHPATH_E820_RAM, 0 },
    { 0x9fc00, 0x400, CRASHPATH_E820_RESERVED, 0 },
    { 0xf0000, 0x10000, CRASHPATH_E820_RESERVED, 0 },
    { 0x100000, 0x1ffe0000 - 0x100000, CRASHPATH_E820_RAM, 0 },
    { 0x1ffe0000, 0x20000, CRASHPATH_E820_ACPI, 0 },
    { 0xfffc0000, 0x40000, CRASHPATH_E820_RESERVED, 0 },
};

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* A bzImage as the 64-bit boot protocol describes it, the payload a pattern. */
static void make_bzimage(void)
{
    bz_size = PAYLOAD_OFF + PAYLOAD_SIZE;
    bz = calloc(1, bz_size);
    bz[0x1f1] = SETUP_SECTS;
    put16(bz + 0x1fe, 0xaa55);
    bz[0x200] = 0xeb;
    bz[0x201] = 0x6a;                  /* header ends at 0x202 + 0x6a = 0x26c */
    memcpy(bz + 0x202, "HdrS", 4);
    put16(bz + 0x206, 0x020f);
    bz[0x211] = 0x01;                  /* LOADED_HIGH */
    put32(bz + 0x230, 0x200000);       /* kernel_alignment */
    bz[0x234] = 1;                     /* relocatable */
    bz[0x235] = 21;
    put16(bz + 0x236, 0x7f);           /* xloadflags */
    put32(bz + 0x238, 0x7ff);          /* cmdline_size */
    put32(bz + 0x260, 4 * MB);         /* init_size */
    for (uint64_t i = 0; i < PAYLOAD_SIZE; i++)
        bz[PAYLOAD_OFF + i] = (uint8_t)(i * 7 + 3);
}

/* n CPUs, every one present; crashpath_init unless the test changes the configuration first. */
static void setup_cpus(int n, int load_init)
{
    uint64_t stub = (uint64_t)(uintptr_t)handoff_stub;

    sim_reset(n, CRASHPATH_APIC_X2APIC, NULL);
    sim_config(&cfg, cpus, n);
    if (load_init)
        CHECK_EQ(crashpath_init(&cfg), CRASHPATH_OK);
    make_bzimage();
    region = aligned_alloc(4096, REGION_SIZE);
    memset(region, 0xcc, REGION_SIZE);
    memset(&kd, 0, sizeof(kd));
    kd.kernel = bz;
    kd.kernel_size = bz_size;
    kd.cmdline = "console=ttyS0 nr_cpus=1";
    kd.region = region;
    kd.region_phys = REGION_PHYS;
    kd.region_size = REGION_SIZE;
    kd.memmap = memmap;
    kd.nr_memmap = sizeof(memmap) / sizeof(memmap[0]);
    /* the "image" is the test binary's text around handoff_stub */
    kd.image_virt = (stub & ~(2 * MB - 1)) - 2 * MB;
    kd.image_size = 8 * MB;
    kd.image_phys = IMAGE_PHYS;
    kd.acpi_rsdp = 0xf5250;
}

static void setup(int load_init)
{
    setup_cpus(3, load_init);
}

static uint8_t *at_phys(uint64_t phys)
{
    return region + (phys - kd.region_phys);
}

/* Walk the hand-off tables as the MMU would (4-level). */
static uint64_t translate(uint64_t cr3, uint64_t va)
{
    uint64_t t = cr3 & ~0xfffull;

    for (int level = 4; level >= 1; level--) {
        uint64_t e = get64(at_phys(t) + ((va >> (12 + 9 * (level - 1))) & 511) * 8);

        if (!(e & 1))
            return ~0ull;
        if (level == 2 && (e & 0x80))
            return (e & 0x000fffffffe00000ull) | (va & (2 * MB - 1));
        t = e & 0x000ffffffffff000ull;
    }
    return t | (va & 0xfff);
}

TEST(kdump_load_before_init_is_refused)
{
    setup(0);
    CHECK_EQ(crashpath_load_kdump(&kd), (uint64_t)(int64_t)CRASHPATH_ERR_NOT_READY);
}

TEST(kdump_kernel_placed_2m_aligned_at_or_above_16m_in_the_region)
{
    uint64_t load;

    setup(1);
    CHECK_EQ(crashpath_load_kdump(&kd), CRASHPATH_OK);
    load = cp_kdump.kernel_entry - 0x200;
    CHECK_EQ(load & (2 * MB - 1), 0);
    CHECK(load >= 16 * MB);
    CHECK(load >= REGION_PHYS && load + 4 * MB <= REGION_PHYS + REGION_SIZE);
    CHECK(memcmp(at_phys(load), bz + PAYLOAD_OFF, PAYLOAD_SIZE) == 0);
    /* crashpath's own pages (tables, boot_params, header, backup) lie before it */
    CHECK(cp_kdump.elfcorehdr >= REGION_PHYS && cp_kdump.elfcorehdr < load);
    CHECK(cp_kdump.cr3 >= REGION_PHYS && cp_kdump.cr3 < load);
}

static const uint8_t *boot_params(void)
{
    return at_phys(get64(at_phys(cp_kdump.identity_entry - (handoff_stub_identity - handoff_stub)) +
                         (handoff_param_boot_params - handoff_stub)));
}

TEST(kdump_boot_params_setup_header_cmdline_and_e820)
{
    const uint8_t *bp;
    const char *cmdline;
    char want[128];
    struct { uint64_t start, size; uint32_t type; } e[16];
    int n;

    setup(1);
    CHECK_EQ(crashpath_load_kdump(&kd), CRASHPATH_OK);
    bp = boot_params();
    /* the setup header, 0x1f1 to its end, as in the file except the fields we own */
    for (int off = 0x1f1; off < 0x26c; off++) {
        if (off == 0x210 || (off >= 0x218 && off < 0x220) || (off >= 0x228 && off < 0x22c))
            continue;
        CHECK_EQ(bp[off], bz[off]);
    }
    CHECK_EQ(bp[0x210], 0xff);                          /* type_of_loader */
    CHECK_EQ(bp[0x1ef], 0);                             /* the sentinel, never copied */
    CHECK_EQ(get64(bp + 0x70), 0xf5250);                /* acpi_rsdp_addr */
    CHECK_EQ(get32(bp + 0x218), 0);                     /* no initrd */
    cmdline = (const char *)at_phys(get32(bp + 0x228) | (uint64_t)get32(bp + 0xc8) << 32);
    snprintf(want, sizeof(want), "console=ttyS0 nr_cpus=1 elfcorehdr=0x%016llx",
             (unsigned long long)cp_kdump.elfcorehdr);
    CHECK(strcmp(cmdline, want) == 0);

    n = bp[0x1e8];
    CHECK_EQ(n, 7);
    for (int i = 0; i < n && i < 16; i++) {
        memcpy(&e[i].start, bp + 0x2d0 + i * 20, 8);
        memcpy(&e[i].size, bp + 0x2d0 + i * 20 + 8, 8);
        memcpy(&e[i].type, bp + 0x2d0 + i * 20 + 16, 4);
    }
    CHECK_EQ(e[0].start, 0);             CHECK_EQ(e[0].size, 0x9fc00); CHECK_EQ(e[0].type, 1);
    CHECK_EQ(e[1].start, 0x9fc00);       CHECK_EQ(e[1].type, 2);
    CHECK_EQ(e[2].start, 0xf0000);       CHECK_EQ(e[2].type, 2);
    CHECK_EQ(e[3].start, REGION_PHYS);   CHECK_EQ(e[3].type, 2);    /* crashpath's pages */
    CHECK_EQ(e[4].start, e[3].start + e[3].size);
    CHECK_EQ(e[4].start + e[4].size, REGION_PHYS + REGION_SIZE);
    CHECK_EQ(e[4].type, 1);
    CHECK(cp_kdump.elfcorehdr < e[4].start);             /* the header is not the kdump's RAM */
    CHECK_EQ(e[5].start, 0x1ffe0000);    CHECK_EQ(e[5].type, 3);
    CHECK_EQ(e[6].start, 0xfffc0000);    CHECK_EQ(e[6].type, 2);
}

TEST(kdump_initrd_placed_after_init_size_and_described)
{
    static uint8_t initrd[12345];
    const uint8_t *bp;
    uint64_t at;

    setup(1);
    memset(initrd, 0x5a, sizeof(initrd));
    kd.initrd = initrd;
    kd.initrd_size = sizeof(initrd);
    CHECK_EQ(crashpath_load_kdump(&kd), CRASHPATH_OK);
    bp = boot_params();
    at = get32(bp + 0x218) | (uint64_t)get32(bp + 0xc0) << 32;
    CHECK_EQ(get32(bp + 0x21c), sizeof(initrd));
    CHECK(at >= cp_kdump.kernel_entry - 0x200 + 4 * MB);  /* beyond the init_size window */
    CHECK_EQ(at & 0xfff, 0);
    CHECK(memcmp(at_phys(at), initrd, sizeof(initrd)) == 0);
}

TEST(kdump_elf_core_header_notes_first_then_ram_outside_the_region)
{
    const uint8_t *h;
    uint16_t phnum;
    uint64_t backup = 0;
    int loads = 0, saw_image = 0, saw_image_ram = 0;

    setup(1);
    CHECK_EQ(crashpath_load_kdump(&kd), CRASHPATH_OK);
    h = at_phys(cp_kdump.elfcorehdr);
    CHECK(memcmp(h, "\x7f" "ELF\x02\x01\x01", 7) == 0);
    CHECK_EQ(h[16] | h[17] << 8, 4);           /* ET_CORE */
    CHECK_EQ(h[18] | h[19] << 8, 62);          /* EM_X86_64 */
    CHECK_EQ(get64(h + 32), 64);               /* e_phoff */
    CHECK_EQ(h[52] | h[53] << 8, 64);          /* e_ehsize */
    CHECK_EQ(h[54] | h[55] << 8, 56);          /* e_phentsize */
    phnum = (uint16_t)(h[56] | h[57] << 8);
    for (int i = 0; i < phnum; i++) {
        const uint8_t *p = h + 64 + i * 56;
        uint32_t type = get32(p);
        uint64_t off = get64(p + 8), va = get64(p + 16), pa = get64(p + 24), sz = get64(p + 32);

        if (i == 0) {                          /* NT_PRPSINFO, inside the header itself */
            CHECK_EQ(type, 4);
            CHECK(off > cp_kdump.elfcorehdr && off + sz <= cp_kdump.elfcorehdr + cp_kdump.where.elfcorehdr_size);
            CHECK_EQ(get32(at_phys(off) + 8), 3);
            CHECK_EQ(get32(at_phys(off) + 4), 136);
            CHECK(memcmp(at_phys(off) + 12, "CORE", 5) == 0);
            CHECK_EQ(get32(at_phys(off) + 156), 0);          /* then namesz 0: the kernel stops there */
            continue;
        }
        if (i < 4) {                           /* one PT_NOTE per CPU buffer */
            CHECK_EQ(type, 4);
            CHECK_EQ(off, cpus[i - 1].notes_phys);
            CHECK_EQ(sz, CRASHPATH_CPU_NOTES_SIZE);
            continue;
        }
        if (i == 4) {                          /* then the crash-info note */
            CHECK_EQ(type, 4);
            CHECK_EQ(off, cfg.info_note_phys);
            continue;
        }
        CHECK_EQ(type, 1);                     /* then only PT_LOADs */
        loads++;
        CHECK(pa + sz <= REGION_PHYS || pa >= REGION_PHYS + REGION_SIZE);
        if (pa == 0) {
            backup = off;                      /* low memory is read from the backup */
            CHECK_EQ(sz, 0x9fc00);
        } else {
            CHECK_EQ(off, pa);
        }
        if (va == kd.image_virt) {
            saw_image = 1;                     /* the image at its virtual address, and last */
            CHECK_EQ(pa, IMAGE_PHYS);
            CHECK_EQ(sz, 8 * MB);
            CHECK_EQ(i, phnum - 1);
        } else if (pa) {
            CHECK_EQ(va, pa);                  /* phys_map_offset 0 */
            /* the image's RAM stays in the RAM map too (Xen reuses freed image pages as RAM) */
            saw_image_ram |= pa <= IMAGE_PHYS && pa + sz >= IMAGE_PHYS + 8 * MB;
        }
    }
    CHECK(backup >= REGION_PHYS && backup + CRASHPATH_LOW_BACKUP_SIZE <= cp_kdump.kernel_entry);
    CHECK(saw_image);
    CHECK(saw_image_ram);
    /* 0-640K, 1M-256M, 320M-0x1ffe0000, and the image again at its virtual address */
    CHECK_EQ(loads, 4);
}

TEST(kdump_handoff_tables_identity_map_and_alias_the_stub)
{
    uint64_t stub = (uint64_t)(uintptr_t)handoff_stub;
    static const uint64_t probes[] = {
        0, 0x9f000, 16 * MB, REGION_PHYS, REGION_PHYS + REGION_SIZE - 8, 0xfee00000, 0xffffffffull,
    };

    setup(1);
    CHECK_EQ(crashpath_load_kdump(&kd), CRASHPATH_OK);
    CHECK_EQ(cp_kdump.cr3 & 0xfff, 0);        /* PCID 0 */
    for (unsigned int i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
        CHECK_EQ(translate(cp_kdump.cr3, probes[i]), probes[i]);
    CHECK_EQ(translate(cp_kdump.cr3, stub), IMAGE_PHYS + (stub - kd.image_virt));
    CHECK_EQ(translate(cp_kdump.cr3, 0x100000000ull), ~0ull);   /* nothing beyond 4 GiB */
}

TEST(kdump_stub_copied_with_its_parameters)
{
    const uint8_t *ctrl;
    uint64_t ctrl_phys;

    setup(1);
    CHECK_EQ(crashpath_load_kdump(&kd), CRASHPATH_OK);
    ctrl_phys = cp_kdump.identity_entry - (uint64_t)(handoff_stub_identity - handoff_stub);
    ctrl = at_phys(ctrl_phys);
    CHECK_EQ(ctrl_phys & 0xfff, 0);
    CHECK(memcmp(ctrl, handoff_stub, (size_t)(handoff_param_cr4 - handoff_stub)) == 0);
    CHECK_EQ(get64(ctrl + (handoff_param_cr4 - handoff_stub)), 1ull << 5);          /* CR4 = PAE alone */
    CHECK_EQ(get64(ctrl + (handoff_param_backup_src - handoff_stub)), 0);           /* backup from 0 ... */
    CHECK_EQ(get64(ctrl + (handoff_param_backup_qwords - handoff_stub)), CRASHPATH_LOW_BACKUP_SIZE / 8);
    CHECK_EQ(get64(ctrl + (handoff_param_entry - handoff_stub)), cp_kdump.kernel_entry); /* load + 0x200 */
    ctrl = at_phys(ctrl_phys) + (handoff_gdtr - handoff_stub);
    CHECK_EQ(ctrl[0] | ctrl[1] << 8, 31);
    CHECK_EQ(get64(ctrl + 2), ctrl_phys + (uint64_t)(handoff_gdt - handoff_stub));
    ctrl = at_phys(ctrl_phys) + (handoff_gdt - handoff_stub);
    CHECK_EQ(get64(ctrl + 0x10), 0x00af9a000000ffffull);
    CHECK_EQ(get64(ctrl + 0x18), 0x00cf92000000ffffull);
}

#define EXPECT_LOAD_ERR(err, mutate)                                          \
    do {                                                                      \
        setup(1);                                                             \
        mutate;                                                               \
        CHECK_EQ(crashpath_load_kdump(&kd), (uint64_t)(int64_t)(err));        \
        CHECK_EQ(cp_kdump.loaded, 0);                                         \
    } while (0)

TEST(kdump_corrupt_bzimage_bad_magic)
{
    EXPECT_LOAD_ERR(CRASHPATH_ERR_BZ_MAGIC, memcpy(bz + 0x202, "HdrX", 4));
    EXPECT_LOAD_ERR(CRASHPATH_ERR_BZ_MAGIC, put16(bz + 0x1fe, 0));
    CHECK(strstr(crashpath_strerror(CRASHPATH_ERR_BZ_MAGIC), "HdrS") != NULL);
}

TEST(kdump_corrupt_bzimage_32_bit_only)
{
    EXPECT_LOAD_ERR(CRASHPATH_ERR_BZ_NOT_64BIT, put16(bz + 0x236, 0x7e));
    EXPECT_LOAD_ERR(CRASHPATH_ERR_BZ_VERSION, put16(bz + 0x206, 0x020b));
    CHECK(strstr(crashpath_strerror(CRASHPATH_ERR_BZ_NOT_64BIT), "64-bit") != NULL);
}

TEST(kdump_corrupt_bzimage_init_size_larger_than_the_region)
{
    EXPECT_LOAD_ERR(CRASHPATH_ERR_REGION_TOO_SMALL, put32(bz + 0x260, REGION_SIZE));
    EXPECT_LOAD_ERR(CRASHPATH_ERR_BZ_INIT_SIZE, put32(bz + 0x260, PAYLOAD_SIZE - 1));
}

TEST(kdump_every_other_load_error)
{
    static uint8_t big_initrd[1];

    EXPECT_LOAD_ERR(CRASHPATH_ERR_KDUMP_ARGS, kd.kernel = NULL);
    EXPECT_LOAD_ERR(CRASHPATH_ERR_KDUMP_ARGS, kd.memmap = NULL);
    EXPECT_LOAD_ERR(CRASHPATH_ERR_BZ_TRUNCATED, kd.kernel_size = 0x200);
    EXPECT_LOAD_ERR(CRASHPATH_ERR_BZ_TRUNCATED, kd.kernel_size = PAYLOAD_OFF + 0x100);
    EXPECT_LOAD_ERR(CRASHPATH_ERR_BZ_NOT_RELOCATABLE, bz[0x234] = 0);
    EXPECT_LOAD_ERR(CRASHPATH_ERR_REGION_ALIGN, kd.region_phys += 0x800);
    EXPECT_LOAD_ERR(CRASHPATH_ERR_REGION_NOT_RAM, kd.region_phys = 0x1ff00000);
    EXPECT_LOAD_ERR(CRASHPATH_ERR_REGION_TOO_SMALL, kd.initrd = big_initrd; kd.initrd_size = REGION_SIZE);
    EXPECT_LOAD_ERR(CRASHPATH_ERR_CMDLINE, put32(bz + 0x238, 30));
    EXPECT_LOAD_ERR(CRASHPATH_ERR_MEMMAP, kd.nr_memmap = 0);
    EXPECT_LOAD_ERR(CRASHPATH_ERR_MEMMAP, kd.nr_memmap = CRASHPATH_MAX_MEMMAP + 1);
    EXPECT_LOAD_ERR(CRASHPATH_ERR_IMAGE_RANGE, kd.image_virt += 16 * MB);
}

TEST(kdump_overlapping_memmap_is_refused)
{
    static const struct crashpath_mem_range bad[] = {
        { 0x0, 0x9fc00, CRASHPATH_E820_RAM, 0 },
        { 0x100000, 0x20000000, CRASHPATH_E820_RAM, 0 },
        { 0x1ff00000, 0x200000, CRASHPATH_E820_ACPI, 0 },
    };

    EXPECT_LOAD_ERR(CRASHPATH_ERR_MEMMAP, kd.memmap = bad; kd.nr_memmap = 3);
}

static int handed_off(void)
{
    return sim_handoff.taken;
}

static volatile int never_stop;

static void spin(struct sim_cpu *c)
{
    (void)c;
    th_spin(&never_stop);
}

static void crash_now(struct sim_cpu *c)
{
    uint64_t rsp;

    (void)c;
    th_crash("kdump test", &rsp);
}

TEST(kdump_crash_hands_off_to_the_prepared_stub)
{
    struct crashpath_info_note info;

    setup(1);
    CHECK_EQ(crashpath_load_kdump(&kd), CRASHPATH_OK);
    sim_start_cpu(&sim_cpus[0], spin);
    sim_start_cpu(&sim_cpus[2], spin);
    sim_start_cpu(&sim_cpus[1], crash_now);
    CHECK(sim_wait(handed_off, 20000));
    CHECK_EQ(sim_handoff.cr3, cp_kdump.cr3);
    CHECK_EQ(sim_handoff.identity_entry, cp_kdump.identity_entry);
    sim_read_info(&info);
    CHECK(info.tsc_handoff >= info.tsc_wait_end);
    CHECK(strstr(sim_console_text, "entering kdump kernel at") != NULL);
    /* crashpath_enable_nmis came before the jump */
    CHECK(sim_count_ops(&sim_cpus[1], OP_ENABLE_NMIS, 0xffffffffu) == 1);
}

TEST(kdump_reinit_drops_the_image_until_it_is_loaded_again)
{
    setup(1);
    CHECK_EQ(crashpath_load_kdump(&kd), CRASHPATH_OK);
    CHECK_EQ(cp_kdump.loaded, 1);
    CHECK_EQ(crashpath_init(&cfg), CRASHPATH_OK);
    CHECK_EQ(cp_kdump.loaded, 0);
}

static void hex(const uint8_t d[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

TEST(kdump_sha256_known_answers)
{
    static uint8_t million_a[1000000];
    uint8_t d[32];
    char h[65];

    cp_sha256("", 0, d);
    hex(d, h);
    CHECK(strcmp(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
    cp_sha256("abc", 3, d);
    hex(d, h);
    CHECK(strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    /* 56 bytes: the padding spills into a second block */
    cp_sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, d);
    hex(d, h);
    CHECK(strcmp(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
    memset(million_a, 'a', sizeof(million_a));
    cp_sha256(million_a, sizeof(million_a), d);
    hex(d, h);
    CHECK(strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
}

static void crash_with_image(int corrupt_what, uint32_t flags)
{
    struct crashpath_kdump_info where;

    setup(1);
    kd.flags = flags;
    CHECK_EQ(crashpath_load_kdump(&kd), CRASHPATH_OK);
    CHECK_EQ(crashpath_kdump_info(&where), CRASHPATH_OK);
    if (corrupt_what == 1)
        at_phys(where.kernel)[PAYLOAD_SIZE / 2] ^= 0x40;      /* a stray write into the kernel */
    if (corrupt_what == 2)
        at_phys(where.cmdline)[3] ^= 1;
    sim_start_cpu(&sim_cpus[0], spin);
    sim_start_cpu(&sim_cpus[2], spin);
    sim_start_cpu(&sim_cpus[1], crash_now);
}

static int crasher_halted_on_corruption(void)
{
    return strstr(sim_console_text, "not entering a corrupt kdump kernel") != NULL;
}

TEST(kdump_corrupt_kernel_is_reported_and_not_entered)
{
    struct crashpath_info_note info;

    crash_with_image(1, 0);
    CHECK(sim_wait(crasher_halted_on_corruption, 20000));
    CHECK(strstr(sim_console_text, "kdump segment kernel corrupt") != NULL);
    CHECK(strstr(sim_console_text, "segment cmdline") == NULL);
    CHECK_EQ(sim_handoff.taken, 0);
    sim_read_info(&info);
    CHECK_EQ(info.integrity, CRASHPATH_INTEGRITY_CORRUPT);
    CHECK_EQ(info.corrupt_segments, CRASHPATH_SEGMENT_KERNEL);
    CHECK(info.integrity_ticks > 0);
}

TEST(kdump_corrupt_cmdline_with_jump_anyway_still_jumps)
{
    struct crashpath_info_note info;

    crash_with_image(2, CRASHPATH_KDUMP_JUMP_IF_CORRUPT);
    CHECK(sim_wait(handed_off, 20000));
    CHECK(strstr(sim_console_text, "kdump segment cmdline corrupt") != NULL);
    sim_read_info(&info);
    CHECK_EQ(info.integrity, CRASHPATH_INTEGRITY_CORRUPT);
    CHECK_EQ(info.corrupt_segments, CRASHPATH_SEGMENT_CMDLINE);
}

TEST(kdump_intact_image_checks_ok)
{
    struct crashpath_info_note info;
    struct crashpath_kdump_info where;

    crash_with_image(0, 0);
    CHECK(sim_wait(handed_off, 20000));
    sim_read_info(&info);
    CHECK_EQ(info.integrity, CRASHPATH_INTEGRITY_OK);
    CHECK_EQ(info.corrupt_segments, 0);
    CHECK_EQ(crashpath_kdump_info(&where), CRASHPATH_OK);
    CHECK_EQ(where.kernel + 0x200, cp_kdump.kernel_entry);
    CHECK_EQ(where.elfcorehdr, cp_kdump.elfcorehdr);
    CHECK_EQ(where.kept, REGION_PHYS);
    CHECK(where.kept + where.kept_size <= where.kernel);
}

/* ---- the boot protocol's placement rules: kernel_alignment, 4 GiB, 5-level paging ---- */

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

static uint64_t kernel_load(void)
{
    return cp_kdump.kernel_entry - 0x200;
}

TEST(kdump_kernel_alignment_16m_is_honoured_and_written_back)
{
    static uint8_t initrd[8192];
    struct crashpath_kdump_info where;
    const uint8_t *bp;
    uint64_t load, initrd_at;

    setup(1);
    put32(bz + 0x230, 16 * MB);        /* CONFIG_PHYSICAL_ALIGN=16M, as distributions build */
    bz[0x235] = 21;
    memset(initrd, 0xa5, sizeof(initrd));
    kd.initrd = initrd;
    kd.initrd_size = sizeof(initrd);
    CHECK_EQ(crashpath_load_kdump(&kd), CRASHPATH_OK);
    CHECK_EQ(crashpath_kdump_info(&where), CRASHPATH_OK);
    /* the first 2 MiB slot after the kept pages is not 16 MiB aligned: the
     * decompressor would have moved up to the next 16 MiB, over the initrd */
    CHECK(align_up(where.kept + where.kept_size, 2 * MB) & (16 * MB - 1));
    load = kernel_load();
    CHECK_EQ(where.kernel, load);
    CHECK_EQ(load & (16 * MB - 1), 0);
    CHECK(load >= where.kept + where.kept_size && load >= 16 * MB);
    CHECK(memcmp(at_phys(load), bz + PAYLOAD_OFF, PAYLOAD_SIZE) == 0);
    bp = boot_params();
    CHECK_EQ(get32(bp + 0x230), 16 * MB);
    initrd_at = get32(bp + 0x218) | (uint64_t)get32(bp + 0xc0) << 32;
    CHECK(initrd_at >= load + 4 * MB);  /* after [load, load + init_size) */
    CHECK(initrd_at + sizeof(initrd) <= REGION_PHYS + REGION_SIZE);
    CHECK(memcmp(at_phys(initrd_at), initrd, sizeof(initrd)) == 0);
}

TEST(kdump_region_too_short_for_16m_lowers_the_alignment_down_to_min_alignment)
{
    struct crashpath_kdump_info where;

    /* 6 MiB: init_size (4 MiB) fits only at the first 2 MiB slot after the
     * kept pages; 16, 8 and 4 MiB alignment all run past the region's end */
    setup(1);
    put32(bz + 0x230, 16 * MB);
    bz[0x235] = 21;
    kd.region_size = 6 * MB;
    CHECK_EQ(crashpath_load_kdump(&kd), CRASHPATH_OK);
    CHECK_EQ(crashpath_kdump_info(&where), CRASHPATH_OK);
    CHECK_EQ(kernel_load(), align_up(where.kept + where.kept_size, 2 * MB));
    CHECK(kernel_load() & (4 * MB - 1));
    CHECK_EQ(get32(boot_params() + 0x230), 2 * MB);     /* the alignment used, not the one asked */
    CHECK(memcmp(at_phys(kernel_load()), bz + PAYLOAD_OFF, PAYLOAD_SIZE) == 0);

    /* 16 MiB: 8 MiB fits, the largest alignment that does is taken */
    setup(1);
    put32(bz + 0x230, 16 * MB);
    bz[0x235] = 21;
    kd.region_size = 16 * MB;
    CHECK_EQ(crashpath_load_kdump(&kd), CRASHPATH_OK);
    CHECK_EQ(kernel_load() & (8 * MB - 1), 0);
    CHECK_EQ(get32(boot_params() + 0x230), 8 * MB);

    /* min_alignment 24: 16 MiB is required, not preferred */
    EXPECT_LOAD_ERR(CRASHPATH_ERR_REGION_TOO_SMALL,
                    put32(bz + 0x230, 16 * MB); bz[0x235] = 24; kd.region_size = 6 * MB);
    /* min_alignment 0: the kernel allows no lowering */
    EXPECT_LOAD_ERR(CRASHPATH_ERR_REGION_TOO_SMALL,
                    put32(bz + 0x230, 16 * MB); bz[0x235] = 0; kd.region_size = 6 * MB);
    /* and not even 2 MiB fits */
    EXPECT_LOAD_ERR(CRASHPATH_ERR_REGION_TOO_SMALL,
                    put32(bz + 0x230, 16 * MB); bz[0x235] = 21; kd.region_size = 4 * MB);
}

TEST(kdump_kernel_alignment_below_2m_is_raised_to_2m)
{
    setup(1);
    put32(bz + 0x230, 0x1000);         /* x86-64 maps the kernel with 2 MiB pages */
    bz[0x235] = 0;
    CHECK_EQ(crashpath_load_kdump(&kd), CRASHPATH_OK);
    CHECK_EQ(kernel_load() & (2 * MB - 1), 0);
    CHECK_EQ(get32(boot_params() + 0x230), 2 * MB);
}

TEST(kdump_bad_kernel_alignment_or_min_alignment_is_refused)
{
    EXPECT_LOAD_ERR(CRASHPATH_ERR_BZ_ALIGN, put32(bz + 0x230, 0x300000));
    EXPECT_LOAD_ERR(CRASHPATH_ERR_BZ_ALIGN, put32(bz + 0x230, 0));
    EXPECT_LOAD_ERR(CRASHPATH_ERR_BZ_ALIGN, put32(bz + 0x230, 0x80000001u));
    /* 1 << min_alignment above kernel_alignment */
    EXPECT_LOAD_ERR(CRASHPATH_ERR_BZ_ALIGN, put32(bz + 0x230, 16 * MB); bz[0x235] = 25);
    EXPECT_LOAD_ERR(CRASHPATH_ERR_BZ_ALIGN, put32(bz + 0x230, 0x1000); bz[0x235] = 21);
    EXPECT_LOAD_ERR(CRASHPATH_ERR_BZ_ALIGN, bz[0x235] = 64);
    EXPECT_LOAD_ERR(CRASHPATH_ERR_BZ_ALIGN, bz[0x235] = 255);
    /* nonzero but below a page */
    EXPECT_LOAD_ERR(CRASHPATH_ERR_BZ_ALIGN, bz[0x235] = 5);
    CHECK(strstr(crashpath_strerror(CRASHPATH_ERR_BZ_ALIGN), "alignment") != NULL);
}

#define GB (1024 * MB)

static const struct crashpath_mem_range memmap_above_4g[] = {
    { 0x0, 0x9fc00, CRASHPATH_E820_RAM, 0 },
    { 0x9fc00, 0x400, CRASHPATH_E820_RESERVED, 0 },
    { 0x100000, 0x1ff00000, CRASHPATH_E820_RAM, 0 },
    { 0xfffc0000, 0x40000, CRASHPATH_E820_RESERVED, 0 },
    { 4 * GB, 4 * GB, CRASHPATH_E820_RAM, 0 },
};

/* One RAM range across the 4 GiB line, the region ending 48 MiB past it. */
static const struct crashpath_mem_range memmap_across_4g[] = {
    { 0x0, 0x9fc00, CRASHPATH_E820_RAM, 0 },
    { 0x100000, 8 * GB - 0x100000, CRASHPATH_E820_RAM, 0 },
};

static void region_at(const struct crashpath_mem_range *map, uint32_t n, uint64_t phys)
{
    kd.memmap = map;
    kd.nr_memmap = n;
    kd.region_phys = phys;
}

TEST(kdump_above_4g_needs_xlf_can_be_loaded_above_4g)
{
    static uint8_t *initrd;

    /* the whole region above 4 GiB */
    EXPECT_LOAD_ERR(CRASHPATH_ERR_BZ_NOT_ABOVE_4G,
                    region_at(memmap_above_4g, 5, 4 * GB + 256 * MB); put16(bz + 0x236, 0x7f & ~0x2));
    setup(1);
    region_at(memmap_above_4g, 5, 4 * GB + 256 * MB);
    CHECK_EQ(crashpath_load_kdump(&kd), CRASHPATH_OK);
    CHECK(kernel_load() >= 4 * GB + 256 * MB);
    CHECK(memcmp(at_phys(kernel_load()), bz + PAYLOAD_OFF, PAYLOAD_SIZE) == 0);

    /* kernel and init_size below 4 GiB, only the initrd across it */
    initrd = calloc(1, 16 * MB);
    EXPECT_LOAD_ERR(CRASHPATH_ERR_BZ_NOT_ABOVE_4G,
                    region_at(memmap_across_4g, 2, 4 * GB - 16 * MB); put16(bz + 0x236, 0x7f & ~0x2);
                    kd.initrd = initrd; kd.initrd_size = 16 * MB);
    setup(1);
    region_at(memmap_across_4g, 2, 4 * GB - 16 * MB);
    put16(bz + 0x236, 0x7f & ~0x2);
    CHECK_EQ(crashpath_load_kdump(&kd), CRASHPATH_OK);      /* no initrd: all below 4 GiB */
    CHECK(kernel_load() + 4 * MB <= 4 * GB);
    setup(1);
    region_at(memmap_across_4g, 2, 4 * GB - 16 * MB);
    kd.initrd = initrd;
    kd.initrd_size = 16 * MB;
    CHECK_EQ(crashpath_load_kdump(&kd), CRASHPATH_OK);
    free(initrd);
}

TEST(kdump_5_level_host_needs_xlf_5level)
{
    EXPECT_LOAD_ERR(CRASHPATH_ERR_BZ_NO_5LEVEL, sim_cpus[0].cr4 |= 1ull << 12; put16(bz + 0x236, 0x7f & ~0x20));
    setup(1);
    sim_cpus[0].cr4 |= 1ull << 12;     /* CR4.LA57 on the loading CPU */
    CHECK_EQ(crashpath_load_kdump(&kd), CRASHPATH_OK);
    CHECK_EQ(get64(at_phys(cp_kdump.identity_entry - (uint64_t)(handoff_stub_identity - handoff_stub)) +
                   (handoff_param_cr4 - handoff_stub)),
             (1ull << 5) | (1ull << 12));        /* the hand-off keeps LA57 */
    /* 4-level host: XLF_5LEVEL does not matter */
    setup(1);
    put16(bz + 0x236, 0x7f & ~0x20);
    CHECK_EQ(crashpath_load_kdump(&kd), CRASHPATH_OK);
}

/* crashpath_init with one note buffer moved to phys, then the load's answer. */
static int load_with_note_at(int which, uint64_t phys)
{
    setup(0);
    if (which < 0)
        cfg.info_note_phys = phys;
    else
        cpus[which].notes_phys = phys;
    CHECK_EQ(crashpath_init(&cfg), CRASHPATH_OK);
    return crashpath_load_kdump(&kd);
}

TEST(kdump_note_buffer_in_kdump_ram_is_refused)
{
    const int64_t in_ram = CRASHPATH_ERR_NOTES_IN_KDUMP_RAM;

    /* the region after crashpath's kept pages, its last bytes included */
    CHECK_EQ(load_with_note_at(1, REGION_PHYS + 32 * MB), (uint64_t)in_ram);
    CHECK_EQ(cp_kdump.loaded, 0);
    CHECK_EQ(load_with_note_at(2, REGION_PHYS + REGION_SIZE - CRASHPATH_CPU_NOTES_SIZE), (uint64_t)in_ram);
    /* the low RAM below 640 KiB */
    CHECK_EQ(load_with_note_at(0, 0x8000), (uint64_t)in_ram);
    CHECK_EQ(load_with_note_at(2, 0x9fc00 - CRASHPATH_CPU_NOTES_SIZE), (uint64_t)in_ram);
    /* the crash-info note likewise */
    CHECK_EQ(load_with_note_at(-1, REGION_PHYS + 40 * MB), (uint64_t)in_ram);
    CHECK_EQ(load_with_note_at(-1, 0x1000), (uint64_t)in_ram);
    CHECK_EQ(cp_kdump.loaded, 0);
    CHECK(strstr(crashpath_strerror(CRASHPATH_ERR_NOTES_IN_KDUMP_RAM), "kdump") != NULL);
}

TEST(kdump_note_buffers_in_ram_the_kdump_kernel_is_not_given_are_accepted)
{
    static const struct crashpath_mem_range odd[] = {
        { 0x0, 0x9fc00, CRASHPATH_E820_RAM, 0 },
        { 0x100000, 0x1ff00000, CRASHPATH_E820_RAM, 0 },
        { 0x7f000100, 0x100000, CRASHPATH_E820_RAM, 0 },  /* starts inside CPU 0's buffer */
    };

    /* the firmware's reserved range at 0x9fc00 (never the kdump kernel's RAM) */
    CHECK_EQ(load_with_note_at(0, 0x9fc00), CRASHPATH_OK);
    /* the hypervisor's own RAM outside the region: read through /proc/vmcore */
    CHECK_EQ(load_with_note_at(1, 16 * MB), CRASHPATH_OK);
    CHECK_EQ(load_with_note_at(-1, REGION_PHYS + REGION_SIZE), CRASHPATH_OK);
    CHECK_EQ(load_with_note_at(2, REGION_PHYS - CRASHPATH_CPU_NOTES_SIZE), CRASHPATH_OK);
    /* a firmware RAM range beginning inside a buffer above 640 KiB gives the
     * kdump kernel nothing there */
    setup(1);
    kd.memmap = odd;
    kd.nr_memmap = 3;
    CHECK_EQ(crashpath_load_kdump(&kd), CRASHPATH_OK);
}

/* ---- a dump file for tools/crashpath_dump.py (make dump-tool-test) ---- */

static int cpu2_parked_late(void)
{
    struct crashpath_cpu_note n;

    sim_read_cpu_note(2, &n);
    return n.outcome == CRASHPATH_OUTCOME_ANSWERED_LATE;
}

static const uint8_t *note_buffer_at(uint64_t phys, int n)
{
    if (phys == cfg.info_note_phys)
        return cfg.info_note;
    if (phys > cp_kdump.elfcorehdr && phys < cp_kdump.elfcorehdr + cp_kdump.where.elfcorehdr_size)
        return at_phys(phys);                   /* NT_PRPSINFO, inside the header itself */
    for (int i = 0; i < n; i++)
        if (cpus[i].notes_phys == phys)
            return cpus[i].notes;
    return NULL;
}

/* The dump as a kdump kernel would give it, memory left out: the ELF core header
 * crashpath_load_kdump wrote, each PT_NOTE pointed at a copy of the buffer its p_offset (a
 * physical address) names, each PT_LOAD without file bytes. Returns the PT_NOTEs written, or
 * -1 for one that names no buffer. */
static int write_core(FILE *out, int n)
{
    const uint8_t *h = at_phys(cp_kdump.elfcorehdr);
    uint16_t phnum = (uint16_t)(h[56] | h[57] << 8);
    uint64_t size = 64 + 56ull * phnum, next = size;
    uint8_t hdr[64 + 56 * 64];
    int notes = 0;

    if (phnum > 64)
        return -1;
    memcpy(hdr, h, size);
    for (int i = 0; i < phnum; i++) {
        uint8_t *p = hdr + 64 + i * 56;
        uint64_t off = 0, filesz = 0;

        if (get32(p) == 4) {
            if (!note_buffer_at(get64(p + 8), n))
                return -1;
            off = next;
            filesz = get64(p + 40);               /* p_memsz: the whole buffer */
            next += filesz;
            notes++;
        }
        memcpy(p + 8, &off, 8);
        memcpy(p + 32, &filesz, 8);
    }
    fwrite(hdr, 1, size, out);
    for (int i = 0; i < phnum; i++)
        if (get32(h + 64 + i * 56) == 4)
            fwrite(note_buffer_at(get64(h + 64 + i * 56 + 8), n), 1, get64(h + 64 + i * 56 + 40), out);
    return notes;
}

/* The test binary is position-independent: a RIP in the dump is its link-time address plus
 * this, which the dump-tool test needs to name it from the binary's symbols. */
static int load_bias(struct dl_phdr_info *info, size_t size, void *bias)
{
    (void)size;
    *(uint64_t *)bias = info->dlpi_addr;       /* the first object is the program itself */
    return 1;
}

/* Every outcome a CPU's note can hold after a crash, in one dump: CPU 0 answers, CPU 1 crashes,
 * CPU 2 is stuck in an NMI handler until after the wait and parks late, CPU 3 was never
 * started, CPU 4 never answers. With CRASHPATH_DUMP_CORE=FILE it writes FILE (write_core)
 * and FILE.bias (load_bias). */
TEST(kdump_core_file_for_crashpath_dump)
{
    static const uint32_t want[5] = { CRASHPATH_OUTCOME_ANSWERED, CRASHPATH_OUTCOME_CRASHER,
                                      CRASHPATH_OUTCOME_ANSWERED_LATE, CRASHPATH_OUTCOME_NOT_PRESENT,
                                      CRASHPATH_OUTCOME_TIMED_OUT };
    const char *path = getenv("CRASHPATH_DUMP_CORE");
    struct crashpath_cpu_note note;
    uint64_t bias = 0;

    setup_cpus(5, 0);
    cfg.timeout_ms = 300;
    cpus[3].flags = 0;
    cpus[3].idt_base = 0;
    sim_cpus[2].stuck_in_nmi = 1;
    sim_cpus[4].stuck_in_nmi = 1;
    CHECK_EQ(crashpath_init(&cfg), CRASHPATH_OK);
    CHECK_EQ(crashpath_load_kdump(&kd), CRASHPATH_OK);
    sim_start_cpu(&sim_cpus[0], spin);
    sim_start_cpu(&sim_cpus[2], spin);
    sim_start_cpu(&sim_cpus[4], spin);
    sim_start_cpu(&sim_cpus[1], crash_now);
    CHECK(sim_wait(handed_off, 20000));
    sim_cpus[2].stuck_in_nmi = 0;
    sim_nmi(&sim_cpus[2]);
    CHECK(sim_wait(cpu2_parked_late, 5000));
    for (int i = 0; i < 5; i++) {
        sim_read_cpu_note(i, &note);
        CHECK_EQ(note.outcome, want[i]);
    }
    if (path) {
        FILE *core = fopen(path, "wb");
        char bias_path[4096];
        FILE *b;

        CHECK(core != NULL);
        if (!core)
            return;
        CHECK_EQ(write_core(core, 5), 1 + 5 + 1);        /* NT_PRPSINFO, CPUs, crash info */
        CHECK_EQ(fclose(core), 0);
        dl_iterate_phdr(load_bias, &bias);
        snprintf(bias_path, sizeof(bias_path), "%s.bias", path);
        b = fopen(bias_path, "w");
        CHECK(b != NULL);
        if (b) {
            fprintf(b, "%#llx\n", (unsigned long long)bias);
            CHECK_EQ(fclose(b), 0);
        }
    }
}
