/* SPDX-License-Identifier: BSD-2-Clause */
/* platform.c — what the reference hypervisor learns at boot: the multiboot information (command
 * line, memory map, modules), the CPUs from the ACPI MADT, and the TSC frequency from the PIT. */
#include "hv.h"

struct hv_platform platform;

/* Multiboot v1 information structure (offsets from the specification). */
#define MBI_FLAGS 0
#define MBI_CMDLINE 16
#define MBI_MODS_COUNT 20
#define MBI_MODS_ADDR 24
#define MBI_MMAP_LENGTH 44
#define MBI_MMAP_ADDR 48
#define MBI_F_CMDLINE (1u << 2)
#define MBI_F_MODS (1u << 3)
#define MBI_F_MMAP (1u << 6)

/* Physical memory below 4 GiB is identity-mapped. The empty asm hides the
 * constant address from the compiler, which would take a read of the BIOS
 * data area at 0x40e for a null-pointer access. */
static uint64_t launder(uint64_t phys)
{
    __asm__("" : "+r"(phys));
    return phys;
}
static uint16_t rd16(uint64_t phys) { return *(volatile uint16_t *)(uintptr_t)launder(phys); }
static uint32_t rd32(uint64_t phys) { return *(volatile uint32_t *)(uintptr_t)phys; }
static uint64_t rd64(uint64_t phys) { return *(volatile uint64_t *)(uintptr_t)phys; }
static uint8_t rd8(uint64_t phys) { return *(volatile uint8_t *)(uintptr_t)phys; }

static int mem_eq(uint64_t phys, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (rd8(phys + i) != (uint8_t)s[i])
            return 0;
    return 1;
}

static int checksum_ok(uint64_t phys, size_t n)
{
    uint8_t sum = 0;

    for (size_t i = 0; i < n; i++)
        sum = (uint8_t)(sum + rd8(phys + i));
    return sum == 0;
}

uint64_t parse_u64(const char *s, const char **end)
{
    uint64_t v = 0;
    unsigned int base = 10;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    for (;; s++) {
        unsigned int d;

        if (*s >= '0' && *s <= '9')
            d = (unsigned int)(*s - '0');
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            d = (unsigned int)(*s - 'a' + 10);
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            d = (unsigned int)(*s - 'A' + 10);
        else
            break;
        v = v * base + d;
    }
    if (*s == 'K' || *s == 'k') { v <<= 10; s++; }
    else if (*s == 'M' || *s == 'm') { v <<= 20; s++; }
    else if (*s == 'G' || *s == 'g') { v <<= 30; s++; }
    if (end)
        *end = s;
    return v;
}

const char *cmdline_get(const char *key, char *buf, size_t size)
{
    const char *p = platform.cmdline;
    size_t klen = 0;

    while (key[klen])
        klen++;
    while (p && *p) {
        const char *w = p;
        size_t i;

        while (*p && *p != ' ')
            p++;
        for (i = 0; i < klen && w + i < p && w[i] == key[i]; i++)
            ;
        if (i == klen && w[klen] == '=') {
            size_t n = 0;

            for (w += klen + 1; w < p && n + 1 < size; w++)
                buf[n++] = *w;
            buf[n] = 0;
            return buf;
        }
        while (*p == ' ')
            p++;
    }
    return NULL;
}

static void parse_multiboot(uint32_t mbi)
{
    uint32_t flags = rd32(mbi + MBI_FLAGS);

    platform.cmdline = (flags & MBI_F_CMDLINE) ? (const char *)(uintptr_t)rd32(mbi + MBI_CMDLINE) : "";
    if (flags & MBI_F_MMAP) {
        uint64_t p = rd32(mbi + MBI_MMAP_ADDR), end = p + rd32(mbi + MBI_MMAP_LENGTH);

        while (p < end && platform.nr_memmap < CRASHPATH_MAX_MEMMAP) {
            struct crashpath_mem_range *m = &platform.memmap[platform.nr_memmap++];

            m->start = rd64(p + 4);
            m->size = rd64(p + 12);
            m->type = rd32(p + 20);
            p += rd32(p) + 4;
        }
    }
    if (flags & MBI_F_MODS) {
        uint64_t mods = rd32(mbi + MBI_MODS_ADDR);
        uint32_t n = rd32(mbi + MBI_MODS_COUNT);

        for (uint32_t i = 0; i < n && i < 4; i++) {
            struct hv_module *m = &platform.modules[platform.nr_modules++];
            const char *s = (const char *)(uintptr_t)rd32(mods + i * 16 + 8);

            m->start = rd32(mods + i * 16);
            m->size = rd32(mods + i * 16 + 4) - m->start;
            /* the string is "file args...": keep the args */
            while (s && *s && *s != ' ')
                s++;
            while (s && *s == ' ')
                s++;
            m->args = s ? s : "";
        }
    }
}

/* ACPI: the RSDP by the legacy scan (EBDA's first KiB, then 0xe0000-0xfffff),
 * then RSDT or XSDT, then the MADT's enabled local APICs and x2APICs. */
static uint64_t find_rsdp(void)
{
    uint64_t ebda = (uint64_t)rd16(0x40e) << 4;     /* the BIOS data area's EBDA segment */

    for (uint64_t p = ebda; ebda && p < ebda + 1024; p += 16)
        if (mem_eq(p, "RSD PTR ", 8) && checksum_ok(p, 20))
            return p;
    for (uint64_t p = 0xe0000; p < 0x100000; p += 16)
        if (mem_eq(p, "RSD PTR ", 8) && checksum_ok(p, 20))
            return p;
    return 0;
}

static void parse_madt(uint64_t madt)
{
    uint64_t end = madt + rd32(madt + 4);

    for (uint64_t p = madt + 44; p + 2 <= end && rd8(p + 1); p += rd8(p + 1)) {
        uint8_t type = rd8(p);
        uint32_t id, flags;

        if (type == 0) {                 /* processor local APIC */
            id = rd8(p + 3);
            flags = rd32(p + 4);
        } else if (type == 9) {          /* processor local x2APIC */
            id = rd32(p + 4);
            flags = rd32(p + 8);
        } else {
            continue;
        }
        if ((flags & 1) && platform.nr_madt < HV_MAX_CPUS)
            platform.madt_ids[platform.nr_madt++] = id;
    }
}

static void parse_acpi(void)
{
    uint64_t rsdp = find_rsdp(), sdt;
    int xsdt;
    uint32_t entries;

    if (!rsdp)
        hv_fail("no ACPI RSDP");
    platform.rsdp = rsdp;
    xsdt = rd8(rsdp + 15) >= 2 && rd64(rsdp + 24);
    sdt = xsdt ? rd64(rsdp + 24) : rd32(rsdp + 16);
    entries = (rd32(sdt + 4) - 36) / (xsdt ? 8 : 4);
    for (uint32_t i = 0; i < entries; i++) {
        uint64_t t = xsdt ? rd64(sdt + 36 + i * 8) : rd32(sdt + 36 + i * 4);

        if (mem_eq(t, "APIC", 4)) {
            parse_madt(t);
            return;
        }
    }
    hv_fail("no ACPI MADT");
}

/* TSC frequency from PIT channel 2 counting 10 ms (1193182 Hz input). */
static uint64_t calibrate_tsc_khz(void)
{
    const uint32_t ticks = 11932;
    uint64_t t0, t1;

    outb(0x61, (uint8_t)((inb(0x61) & ~0x02) | 0x01));   /* gate on, speaker off */
    outb(0x43, 0xb0);                                    /* channel 2, lobyte/hibyte, mode 0 */
    outb(0x42, ticks & 0xff);
    outb(0x42, ticks >> 8);
    t0 = rdtsc();
    while (!(inb(0x61) & 0x20))
        ;
    t1 = rdtsc();
    return (t1 - t0) / 10;
}

void delay_us(uint64_t us)
{
    uint64_t end = rdtsc() + us * platform.tsc_khz / 1000;

    while (rdtsc() < end)
        cpu_relax();
}

void platform_init(uint32_t mb_info_phys)
{
    parse_multiboot(mb_info_phys);
    parse_acpi();
    platform.tsc_khz = calibrate_tsc_khz();
    if (!platform.tsc_khz)
        hv_fail("TSC calibration failed");
}
