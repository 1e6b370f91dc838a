/* SPDX-License-Identifier: BSD-2-Clause */
/* cet.c — knob cet=1: the reference hypervisor runs as a CET host, as Xen does by default where the
 * CPU has it: supervisor shadow stacks (one per CPU stack and per IST stack) and supervisor indirect
 * branch tracking on every CPU, so the crash path is tried under both (Bochs emulates CET on its
 * tigerlake model; QEMU TCG has none, and the run ends as SKIP).
 *
 * The order on each CPU (SDM vol. 1, ch. 17 "Control-flow Enforcement Technology"; vol. 3, 2.5
 * and 4.6; the rules are quoted at each step below):
 *   BSP, once, before any AP starts (cet_prepare): a supervisor shadow-stack token at the top of
 *   every shadow stack, written while the pages are still ordinary writable memory, then the
 *   shadow-stack region's 2 MiB pages turned into shadow-stack pages (R/W=0, Dirty=1);
 *   every CPU, in its outermost C frame, after its GDT/TSS/IDT (cet_switch_on in hv.h):
 *   IA32_PL0_SSP, IA32_INTERRUPT_SSP_TABLE_ADDR, IA32_S_CET (SH_STK_EN | ENDBR_EN), then CR4.CET
 *   and SETSSBSY, which puts SSP on the CPU's own shadow stack.
 */
#include "hv.h"

#define CPUID7_ECX_CET_SS (1u << 7)
#define CPUID7_EDX_CET_IBT (1u << 20)

#define MSR_IA32_S_CET 0x6a2u
#define MSR_IA32_PL0_SSP 0x6a4u
#define MSR_IA32_INTERRUPT_SSP_TABLE_ADDR 0x6a8u
#define S_CET_SH_STK_EN (1ull << 0)
#define S_CET_WR_SHSTK_EN (1ull << 1)
#define S_CET_ENDBR_EN (1ull << 2)
#define S_CET_NO_TRACK_EN (1ull << 4)

#define CR0_WP (1ull << 16)

#define PTE_PRESENT (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_DIRTY (1ull << 6)
#define PTE_PS (1ull << 7)
#define PTE_ADDR 0x000ffffffffff000ull
#define LARGE_PAGE (2ull << 20)

/* Shadow stacks hold return addresses only (8 bytes a call, where the
 * ordinary stack spends at least 16) and 3 quadwords per delivered event
 * (CS, LIP, SSP), so a quarter of each ordinary stack is plenty. */
#define SHSTK_NORMAL_BYTES (STACK_SIZE / 4)
#define SHSTK_IST_BYTES (IST_SIZE / 4)

/* The IST stacks the TSS names (cpu.c: IST1 NMI, IST2 #MC, IST3 #DF) and
 * crashpath's own victim NMI stack, which it puts in whichever slot the
 * host gives it (victim_nmi_ist, 4..7 here: the host uses 1..3). */
enum { SHSTK_IST_NMI, SHSTK_IST_MC, SHSTK_IST_DF, SHSTK_IST_CRASHPATH, SHSTK_NR_IST };

struct cpu_shadow_stacks {
    uint64_t normal[SHSTK_NORMAL_BYTES / 8];
    uint64_t ist[SHSTK_NR_IST][SHSTK_IST_BYTES / 8];
};

/* All CPUs' shadow stacks in one region of whole 2 MiB pages (hv.ld puts
 * .bss.shadow_stacks in its own 2 MiB-aligned output section, before .bss):
 * its large pages become shadow-stack pages, and nothing else lives in
 * them. Shadow-stack pages need no guard pages here: this is a test host. */
static struct cpu_shadow_stacks shadow_stacks[HV_MAX_CPUS]
    __attribute__((section(".bss.shadow_stacks"), aligned(4096)));
extern const uint8_t __shadow_stacks_start[], __shadow_stacks_end[];
/* hv.ld pads the section to whole 2 MiB pages (the 16-CPU Bochs build's stacks fill less
 * than one); map_shadow_stack_pages checks the bounds at run time. */

/* IA32_INTERRUPT_SSP_TABLE_ADDR points at one of these per CPU: entry n is
 * the SSP an event delivered through IST n switches to; entry 0 is not
 * used (IST 0 means "no stack switch"). Ordinary memory: the CPU reads it. */
static uint64_t interrupt_ssp_tables[HV_MAX_CPUS][8] __attribute__((aligned(64)));

int hv_cet;
static uint32_t cpus_with_cet;

/* The supervisor shadow-stack token at the top of the shadow stack
 * stack[0 .. qwords): SDM vol. 1, ch. 17 "Supervisor Shadow Stack Token":
 * bits 63:3 the token's own linear address, bit 0 busy (clear while no CPU
 * runs on this stack), bits 2:1 zero. SETSSBSY and event delivery through an
 * IST check it, set busy and load SSP with the token's address; the
 * returning IRET from the IST stack clears busy again. Returns the token's
 * address: the SSP value that names this shadow stack. */
static uint64_t place_token(uint64_t *stack, size_t qwords)
{
    uint64_t *token = &stack[qwords - 1];
    uint64_t addr = (uint64_t)(uintptr_t)token;

    *token = addr;      /* busy clear */
    return addr;
}

static uint64_t normal_ssp(uint32_t cpu)
{
    return (uint64_t)(uintptr_t)&shadow_stacks[cpu].normal[SHSTK_NORMAL_BYTES / 8 - 1];
}

/* The page-directory entry that maps va, through the boot tables (their
 * tables are identity-mapped, boot.asm). */
extern uint64_t boot_pml4[];

static uint64_t *pde_of(uint64_t va)
{
    uint64_t pml4e = boot_pml4[(va >> 39) & 511];
    uint64_t *pdpt = (uint64_t *)(uintptr_t)(pml4e & PTE_ADDR);
    uint64_t *pd = (uint64_t *)(uintptr_t)(pdpt[(va >> 30) & 511] & PTE_ADDR);

    return &pd[(va >> 21) & 511];
}

/*
 * Shadow-stack pages: SDM vol. 3, 4.6 ("Access Rights"): a linear address
 * is a shadow-stack address when the leaf entry that maps it has R/W = 0 and
 * Dirty = 1 and every other paging-structure entry on the way has R/W = 1.
 * Shadow-stack accesses (CALL, RET, event delivery, SETSSBSY) to any other
 * page fault (#PF with the SS bit), and ordinary writes to a shadow-stack
 * page fault as to any read-only page (CR0.WP = 1). boot.asm maps this
 * region with 2 MiB pages whose PDPT and PML4 entries are writable; the
 * leaf is the PDE (PS = 1, Dirty in bit 6). That page directory is shared by
 * the identity map and the high half, so both aliases of the region become
 * shadow-stack pages; nothing else is in it.
 */
static void map_shadow_stack_pages(void)
{
    uint64_t start = (uint64_t)(uintptr_t)__shadow_stacks_start, end = (uint64_t)(uintptr_t)__shadow_stacks_end;
    uint64_t cr3;

    if ((start | end) & (LARGE_PAGE - 1) || (uint64_t)(uintptr_t)shadow_stacks < start ||
        (uint64_t)(uintptr_t)(shadow_stacks + HV_MAX_CPUS) > end)
        hv_fail("cet: the shadow-stack region 0x%lx-0x%lx is not whole 2 MiB pages around the stacks", start, end);
    for (uint64_t va = start; va < end; va += LARGE_PAGE) {
        uint64_t *pde = pde_of(va);

        if ((*pde & (PTE_PRESENT | PTE_PS)) != (PTE_PRESENT | PTE_PS))
            hv_fail("cet: 0x%lx is not mapped by a 2 MiB page (PDE 0x%lx)", va, *pde);
        *pde = (*pde & ~PTE_RW) | PTE_DIRTY;
    }
    /* No global pages (CR4.PGE is clear): a CR3 reload drops every stale
     * writable translation (SDM vol. 3, 4.10.4.1). The APs load these
     * tables fresh. */
    __asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3) : : "memory");
}

/* On the BSP, before any AP starts: the CPU must have supervisor shadow
 * stacks and IBT, or the run ends as SKIP. Every possible CPU's tokens and
 * SSP table are written now, while the region is still writable: once it is
 * shadow-stack memory, only shadow-stack accesses (or WRSS, which this host
 * leaves disabled) may write it. */
void cet_prepare(void)
{
    uint32_t max, a, b, c, d;
    uint64_t cr0;

    cpuid(0, &max, &b, &c, &d);
    c = d = 0;
    if (max >= 7)
        cpuid(7, &a, &b, &c, &d);
    if (!(c & CPUID7_ECX_CET_SS) || !(d & CPUID7_EDX_CET_IBT))
        hv_skip("cet: this CPU model has no CET (CPUID.(EAX=7,ECX=0): ECX.CET_SS=%u, EDX.CET_IBT=%u)",
                !!(c & CPUID7_ECX_CET_SS), !!(d & CPUID7_EDX_CET_IBT));
    /* CR4.CET can be set only with CR0.WP = 1 (SDM vol. 3, 2.5: "CR4.CET");
     * boot.asm sets WP on every CPU as it enters long mode. */
    __asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
    if (!(cr0 & CR0_WP))
        hv_fail("cet: CR0.WP is clear");
    for (uint32_t i = 0; i < HV_MAX_CPUS; i++) {
        struct cpu_shadow_stacks *s = &shadow_stacks[i];
        uint64_t *table = interrupt_ssp_tables[i];
        uint64_t crashpath_ssp;

        place_token(s->normal, SHSTK_NORMAL_BYTES / 8);
        table[0] = 0;
        table[1] = place_token(s->ist[SHSTK_IST_NMI], SHSTK_IST_BYTES / 8);
        table[2] = place_token(s->ist[SHSTK_IST_MC], SHSTK_IST_BYTES / 8);
        table[3] = place_token(s->ist[SHSTK_IST_DF], SHSTK_IST_BYTES / 8);
        /* Slots 4..7 of the TSS are crashpath's (victim_nmi_ist): one
         * shadow stack for whichever of them it is given, as it uses one. */
        crashpath_ssp = place_token(s->ist[SHSTK_IST_CRASHPATH], SHSTK_IST_BYTES / 8);
        for (uint32_t slot = 4; slot < 8; slot++)
            table[slot] = crashpath_ssp;
    }
    map_shadow_stack_pages();
    __atomic_store_n(&hv_cet, 1, __ATOMIC_RELEASE);
}

/*
 * This CPU's CET MSRs, before cet_switch_on sets CR4.CET (they take effect
 * only then):
 *   IA32_PL0_SSP: the SSP of this CPU's ordinary stack, which SETSSBSY
 *     checks and loads (and a ring-3 to ring-0 transition would);
 *   IA32_INTERRUPT_SSP_TABLE_ADDR: the per-IST SSPs above;
 *   IA32_S_CET: SH_STK_EN (supervisor shadow stacks) and ENDBR_EN (every
 *     indirect CALL/JMP and every event delivered through the IDT must land
 *     on ENDBR64, else #CP; SDM vol. 1, ch. 17 "Indirect Branch Tracking").
 *     NO_TRACK_EN stays clear, as Xen leaves it: a NOTRACK prefix does not
 *     exempt a branch. WR_SHSTK_EN stays clear: no WRSS, so no ordinary
 *     instruction can write a shadow stack.
 */
void cet_load_msrs(const struct hv_cpu *c)
{
    wrmsr(MSR_IA32_PL0_SSP, normal_ssp(c->index));
    wrmsr(MSR_IA32_INTERRUPT_SSP_TABLE_ADDR, (uint64_t)(uintptr_t)interrupt_ssp_tables[c->index]);
    wrmsr(MSR_IA32_S_CET, S_CET_SH_STK_EN | S_CET_ENDBR_EN);
}

/* Called right after cet_switch_on, by a CALL already on the shadow stack:
 * SSP must now sit one entry (this call's return address) below the token. */
void cet_cpu_on(const struct hv_cpu *c)
{
    uint64_t ssp, cr4, s_cet = rdmsr(MSR_IA32_S_CET);

    __asm__ volatile("rdsspq %0" : "=r"(ssp));
    __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
    if (ssp != normal_ssp(c->index) - 8 || !(cr4 & CR4_CET) ||
        (s_cet & (S_CET_SH_STK_EN | S_CET_WR_SHSTK_EN | S_CET_ENDBR_EN | S_CET_NO_TRACK_EN)) !=
            (S_CET_SH_STK_EN | S_CET_ENDBR_EN))
        hv_fail("cet: CPU %u: SSP 0x%lx (want 0x%lx), CR4 0x%lx, IA32_S_CET 0x%lx", c->index, ssp,
                normal_ssp(c->index) - 8, cr4, s_cet);
    __atomic_add_fetch(&cpus_with_cet, 1, __ATOMIC_SEQ_CST);
    /* The BSP switches last (the APs do as they come up): say it once. */
    if (c->index == 0)
        hv_printf("hv: CET on: shadow stacks and IBT on %u CPUs (shadow stacks 0x%lx-0x%lx)\n",
                  __atomic_load_n(&cpus_with_cet, __ATOMIC_ACQUIRE), (uint64_t)(uintptr_t)__shadow_stacks_start,
                  (uint64_t)(uintptr_t)__shadow_stacks_end);
}
