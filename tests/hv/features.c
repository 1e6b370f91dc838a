/* SPDX-License-Identifier: BSD-2-Clause */
/* features.c — the control-register features a 2026 host runs with, turned on by the reference
 * hypervisor on every CPU whose model has them, so that no row proves crashpath only on a host
 * that left them off: global pages, SMEP, SMAP, UMIP, FSGSBASE, XSAVE and PCID (a non-zero PCID
 * in CR3). 5-level paging (la57=1) is chosen earlier, in boot.asm, since CR4.LA57 can change
 * only with paging off. */
#include "hv.h"

#define CR4_PGE (1ull << 7)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define CR4_UMIP (1ull << 11)
#define CR4_LA57 (1ull << 12)
#define CR4_FSGSBASE (1ull << 16)
#define CR4_PCIDE (1ull << 17)
#define CR4_OSXSAVE (1ull << 18)
#define CR4_SMEP (1ull << 20)
#define CR4_SMAP (1ull << 21)

/* The PCID this host runs under: any non-zero value shows that nothing in crashpath takes
 * CR3 for a bare page-table address or switches tables while PCIDE hides stale entries. */
#define HOST_PCID 0x5a

static uint64_t read_cr4(void)
{
    uint64_t v;

    __asm__ volatile("mov %%cr4, %0" : "=r"(v));
    return v;
}

static void write_cr4(uint64_t v)
{
    __asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory");
}

/* Which CPUID bit says the model has each CR4 feature (SDM vol. 2A, CPUID): leaf, sub-leaf 0,
 * register (0 EAX .. 3 EDX), bit. */
enum { REG_EBX = 1, REG_ECX = 2, REG_EDX = 3 };
static const struct {
    uint32_t leaf;
    uint8_t reg, bit;
    uint64_t cr4;
} cr4_features[] = {
    { 1, REG_EDX, 13, CR4_PGE },
    { 1, REG_ECX, 17, CR4_PCIDE },
    { 1, REG_ECX, 26, CR4_OSXSAVE },      /* CPUID.1:ECX.XSAVE */
    { 7, REG_EBX, 0, CR4_FSGSBASE },
    { 7, REG_EBX, 7, CR4_SMEP },
    { 7, REG_EBX, 20, CR4_SMAP },
    { 7, REG_ECX, 2, CR4_UMIP },
};

/* What this CPU's model has, as CR4 bits. */
static uint64_t available_cr4_features(void)
{
    uint32_t max, regs[4];
    uint64_t have = 0;

    cpuid(0, &max, &regs[1], &regs[2], &regs[3]);
    for (uint32_t i = 0; i < sizeof(cr4_features) / sizeof(cr4_features[0]); i++) {
        if (cr4_features[i].leaf > max)
            continue;
        cpuid(cr4_features[i].leaf, &regs[0], &regs[1], &regs[2], &regs[3]);
        if ((regs[cr4_features[i].reg] >> cr4_features[i].bit) & 1u)
            have |= cr4_features[i].cr4;
    }
    return have;
}

/* On the calling CPU. The hypervisor's pages are supervisor pages (boot.asm
 * sets no U/S bit), so SMEP and SMAP never fault on its own accesses; they
 * are on so that a crash path that ran a user page, or touched one with
 * AC clear, would. */
void host_features_on(struct hv_cpu *c)
{
    uint64_t want = available_cr4_features(), cr4 = read_cr4(), cr3;

    /* SSE state usable (OSFXSR) and XSAVE enabled with XCR0 = x87 | SSE,
     * the state every XSAVE host enables (SDM vol. 1, 13.3): crashpath is
     * built general-registers-only and must never touch either. */
    cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT;
    cr4 |= want & (CR4_PGE | CR4_UMIP | CR4_FSGSBASE | CR4_OSXSAVE | CR4_SMEP | CR4_SMAP);
    write_cr4(cr4);
    if (want & CR4_OSXSAVE)
        __asm__ volatile("xsetbv" : : "c"(0), "a"(3), "d"(0));
    /* PCIDE can be set only while CR3[11:0] is 0 (SDM vol. 3, 4.10.1, else
     * #GP); then CR3 takes the PCID, bit 63 clear: entries of that PCID are
     * flushed. Global pages stay shared across PCIDs (4.10.2.4). */
    if (want & CR4_PCIDE) {
        __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
        write_cr4(cr4 | CR4_PCIDE);
        __asm__ volatile("mov %0, %%cr3" : : "r"((cr3 & ~0xfffull) | HOST_PCID) : "memory");
    }
    c->cr4 = read_cr4();
}

/* One console line for the BSP: what every row on this model runs with. */
void host_features_report(const struct hv_cpu *c)
{
    static const struct { uint64_t bit; const char *name; } names[] = {
        { CR4_PGE, "PGE" }, { CR4_SMEP, "SMEP" }, { CR4_SMAP, "SMAP" }, { CR4_UMIP, "UMIP" },
        { CR4_FSGSBASE, "FSGSBASE" }, { CR4_OSXSAVE, "OSXSAVE" }, { CR4_PCIDE, "PCID" },
        { CR4_LA57, "LA57" },
    };
    char line[160];
    size_t n = hv_snprintf(line, sizeof(line), "hv: host features:");

    for (uint32_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (c->cr4 & names[i].bit)
            n += hv_snprintf(line + n, sizeof(line) - n, " %s", names[i].name);
    if (c->cr4 & CR4_PCIDE)
        n += hv_snprintf(line + n, sizeof(line) - n, " (CR3 PCID 0x%x)", HOST_PCID);
    hv_printf("%s\n", line);
}
