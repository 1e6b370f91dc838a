/* SPDX-License-Identifier: BSD-2-Clause */
/* cpu.c — the reference hypervisor's per-CPU state (its own GDT, TSS with IST stacks for NMI,
 * #MC and #DF, and IDT), its LAPIC in xAPIC or x2APIC mode, and INIT-SIPI-SIPI AP bring-up. */
#include "hv.h"

struct hv_cpu hv_cpus[HV_MAX_CPUS] __attribute__((aligned(4096)));
uint32_t hv_nr_cpus;
int hv_x2apic;

#define MSR_APIC_BASE 0x1b
#define MSR_GS_BASE 0xc0000101
#define APIC_BASE_EN (1ull << 11)
#define APIC_BASE_EXTD (1ull << 10)
#define XAPIC_MMIO 0xfee00000ull        /* identity-mapped uncached by boot.asm */
#define TRAMP_BASE 0x8000ull

#define LAPIC_ID 0x20
#define LAPIC_SVR 0xf0
#define LAPIC_ICR 0x300
#define LAPIC_ICR2 0x310
#define LAPIC_LINT0 0x350
#define LAPIC_LINT1 0x360

/* IST slots in the TSS (1-based as in the gate's IST field). */
#define IST_NMI 1
#define IST_MC 2
#define IST_DF 3

extern const uint8_t tramp_start[], tramp_end[];

uint32_t lapic_read(uint32_t reg)
{
    if (hv_x2apic)
        return (uint32_t)rdmsr(0x800 + (reg >> 4));
    return *(volatile uint32_t *)(uintptr_t)(XAPIC_MMIO + reg);
}

void lapic_write(uint32_t reg, uint32_t v)
{
    if (hv_x2apic)
        wrmsr(0x800 + (reg >> 4), v);
    else
        *(volatile uint32_t *)(uintptr_t)(XAPIC_MMIO + reg) = v;
}

void lapic_eoi(void)
{
    lapic_write(0xb0, 0);
}

uint32_t lapic_id(void)
{
    return hv_x2apic ? lapic_read(LAPIC_ID) : lapic_read(LAPIC_ID) >> 24;
}

void lapic_send_ipi(uint32_t apic_id, uint32_t low)
{
    if (hv_x2apic) {
        __asm__ volatile("mfence" : : : "memory");
        wrmsr(0x830, (uint64_t)apic_id << 32 | low);
        return;
    }
    while (lapic_read(LAPIC_ICR) & (1u << 12))
        cpu_relax();
    lapic_write(LAPIC_ICR2, apic_id << 24);
    lapic_write(LAPIC_ICR, low);
}

static void set_gate(uint8_t *idt, unsigned int vec, uint64_t handler, unsigned int ist)
{
    uint64_t lo = (handler & 0xffff) | (uint64_t)HV_CS << 16 | (uint64_t)ist << 32 | 0x8eull << 40 |
                  (handler & 0xffff0000ull) << 32;
    uint64_t hi = handler >> 32;

    __builtin_memcpy(idt + vec * 16, &lo, 8);
    __builtin_memcpy(idt + vec * 16 + 8, &hi, 8);
}

static void put64(uint8_t *p, uint64_t v) { __builtin_memcpy(p, &v, 8); }

static void load_tables(struct hv_cpu *c)
{
    uint64_t tss = (uint64_t)(uintptr_t)c->tss;
    struct __attribute__((packed)) { uint16_t limit; uint64_t base; } gdtr, idtr;

    c->gdt[0] = 0;
    c->gdt[1] = 0x00af9a000000ffffull;        /* 0x08: 64-bit code */
    c->gdt[2] = 0x00cf92000000ffffull;        /* 0x10: data */
    c->gdt[3] = 103 | (tss & 0xffffff) << 16 | 0x89ull << 40 | ((tss >> 24) & 0xff) << 56;
    c->gdt[4] = tss >> 32;
    put64(c->tss + 0x24 + (IST_NMI - 1) * 8, (uint64_t)(uintptr_t)(c->ist_nmi + IST_SIZE));
    put64(c->tss + 0x24 + (IST_MC - 1) * 8, (uint64_t)(uintptr_t)(c->ist_mc + IST_SIZE));
    put64(c->tss + 0x24 + (IST_DF - 1) * 8, (uint64_t)(uintptr_t)(c->ist_df + IST_SIZE));
    c->tss[0x66] = 104;                       /* no I/O bitmap */
    for (unsigned int v = 0; v < 32; v++)
        set_gate(c->idt, v, hv_vector_stubs[v], v == 2 ? IST_NMI : v == 18 ? IST_MC : v == 8 ? IST_DF : 0);
    set_gate(c->idt, HV_WAKEUP_VECTOR, (uint64_t)(uintptr_t)hv_wakeup_entry, 0);

    gdtr.limit = sizeof(c->gdt) - 1;
    gdtr.base = (uint64_t)(uintptr_t)c->gdt;
    idtr.limit = sizeof(c->idt) - 1;
    idtr.base = (uint64_t)(uintptr_t)c->idt;
    __asm__ volatile("lgdt %0" : : "m"(gdtr));
    /* CS reloaded by a far return, always before cet=1 turns shadow stacks
     * on (hv.h, cet_switch_on): with them on, a far RET also pops CS and LIP
     * from the shadow stack, which no far CALL pushed (#CP). */
    __asm__ volatile("pushq %0; leaq 1f(%%rip), %%rax; pushq %%rax; lretq; 1:" : : "i"(HV_CS) : "rax", "memory");
    __asm__ volatile("mov %0, %%ds; mov %0, %%es; mov %0, %%ss" : : "r"(HV_DS));
    __asm__ volatile("ltr %w0" : : "r"(HV_TSS));
    __asm__ volatile("lidt %0" : : "m"(idtr));
}

static void lapic_init(struct hv_cpu *c)
{
    uint64_t base = rdmsr(MSR_APIC_BASE) | APIC_BASE_EN;

    wrmsr(MSR_APIC_BASE, base);
    if (hv_x2apic)
        wrmsr(MSR_APIC_BASE, base | APIC_BASE_EXTD);    /* xAPIC -> x2APIC is a legal step */
    lapic_write(LAPIC_SVR, 0x1ff);                        /* software-enabled, spurious 0xff */
    /* QEMU's inject-nmi arrives through LINT1 and is dropped where it is masked. */
    lapic_write(LAPIC_LINT1, 0x400);
    if (c->index)
        lapic_write(LAPIC_LINT0, 0x10000);
    c->apic_id = lapic_id();
}

/* Page 0 unmapped, as hypervisors do to catch NULL dereferences. crashpath is
 * told a never-started CPU's IDT is absent (its idt_base reads 0): touching it
 * at crash time would fault here rather than scribble on low memory. The
 * boot tables map the low 2 MiB with one large page; it becomes 4 KiB pages
 * (the BSP does this before any AP loads CR3). */
extern uint64_t boot_pml4[];
static uint64_t low_pt[512] __attribute__((aligned(4096)));

void unmap_null_page(void)
{
    uint64_t *pdpt = (uint64_t *)(uintptr_t)(boot_pml4[0] & ~0xfffull);      /* identity-mapped */
    uint64_t *pd = (uint64_t *)(uintptr_t)(pdpt[0] & ~0xfffull);
    uint64_t cr3;

    for (uint64_t i = 1; i < 512; i++)
        low_pt[i] = i << 12 | 3;                  /* present, writable */
    low_pt[0] = 0;
    pd[0] = hv_virt_to_phys(low_pt) | 3;
    __asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3) : : "memory");
}

/* The target of the breakpoint cpu_init_this arms. */
__attribute__((noinline, used)) void hv_never_executed(void)
{
    __asm__ volatile("ud2");
}

void cpu_init_this(struct hv_cpu *c)
{
    uint64_t cr4;

    /* CR4.MCE: a machine check is delivered as #MC; with it clear, the CPU
     * shuts down instead (SDM vol. 3, 15.10.1), as QEMU's mce injection does. */
    __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
    __asm__ volatile("mov %0, %%cr4" : : "r"(cr4 | (1ull << 6)));
    c->self = c;
    /* A host debugger's breakpoint, armed on every CPU: DR0 on an
     * instruction never executed, L0 enabled. The hand-off must clear DR7. */
    __asm__ volatile("mov %0, %%dr0; mov %1, %%dr7" : : "r"((uint64_t)(uintptr_t)hv_never_executed), "r"(1ull));
    load_tables(c);
    wrmsr(MSR_GS_BASE, (uint64_t)(uintptr_t)c);
    lapic_init(c);
    host_features_on(c);
}

_Static_assert(__builtin_offsetof(struct hv_cpu, stack_top) == 24, "boot.asm HV_CPU_STACK_TOP");

/* This CPU's APIC ID as the platform assigned it, in whatever mode its LAPIC
 * is: CPUID leaf 0x1F (or 0xB) returns the full 32-bit x2APIC ID in EDX
 * where its sub-leaf 0 is valid (EBX[15:0] non-zero; SDM vol. 2A, CPUID);
 * without them, CPUID.1:EBX[31:24] holds the 8-bit initial APIC ID. The
 * xAPIC ID register would show only 8 bits of an ID of 256 or more. */
uint32_t hv_cpu_apic_id(void)
{
    static const uint32_t topology_leaves[] = { 0x1f, 0xb };
    uint32_t max, a, b, c, d;

    cpuid(0, &max, &b, &c, &d);
    for (uint32_t i = 0; i < sizeof(topology_leaves) / sizeof(topology_leaves[0]); i++) {
        if (max < topology_leaves[i])
            continue;
        cpuid(topology_leaves[i], &a, &b, &c, &d);
        if (b & 0xffffu)
            return d;
    }
    cpuid(1, &a, &b, &c, &d);
    return b >> 24;
}

/* Called by each AP from the trampoline, on the scratch stack it holds the
 * trampoline lock for: which CPU am I? */
struct hv_cpu *hv_ap_lookup(void)
{
    uint32_t apic_id = hv_cpu_apic_id();

    for (uint32_t i = 1; i < hv_nr_cpus; i++)
        if (hv_cpus[i].apic_id == apic_id)
            return &hv_cpus[i];
    hv_fail("AP with APIC ID %u is not in the MADT", apic_id);
}

static void wait_online(struct hv_cpu *c, uint64_t deadline)
{
    while (!__atomic_load_n(&c->online, __ATOMIC_ACQUIRE) && rdtsc() < deadline)
        cpu_relax();
    if (!c->online)
        hv_fail("CPU %u (APIC %u) did not come up", c->index, c->apic_id);
}

static void send_init(const struct hv_cpu *c) { lapic_send_ipi(c->apic_id, 0x4500); }
static void send_sipi(const struct hv_cpu *c) { lapic_send_ipi(c->apic_id, 0x4600 | (TRAMP_BASE >> 12)); }

/* INIT, then SIPI twice, to the APs first .. last (but skip_index), with the
 * MP protocol's delays once for the group: 10 ms after INIT, 200 us after
 * each SIPI. */
static void start_group(uint32_t first, uint32_t last, int skip_index, uint64_t timeout_ms)
{
    uint64_t deadline;

    for (uint32_t i = first; i <= last; i++)
        if ((int)i != skip_index)
            send_init(&hv_cpus[i]);
    delay_us(10000);
    for (int round = 0; round < 2; round++) {
        for (uint32_t i = first; i <= last; i++)
            if ((int)i != skip_index && !hv_cpus[i].online)
                send_sipi(&hv_cpus[i]);
        delay_us(200);
    }
    deadline = rdtsc() + platform.tsc_khz * timeout_ms;
    for (uint32_t i = first; i <= last; i++)
        if ((int)i != skip_index)
            wait_online(&hv_cpus[i], deadline);
}

/* One AP after the other by default; with parallel, every AP at once, one
 * set of delays for all: QEMU needs none of them, but a boot that waits
 * 10 ms per CPU makes a -icount run (one host thread for every vCPU)
 * quadratic in the CPU count. Sequential is the default: under plain TCG, a
 * hundred APs spinning on the trampoline lock starve its holder. */
void smp_start_aps(int skip_index, int parallel)
{
    if (hv_nr_cpus < 2)
        return;
    __builtin_memcpy((void *)(uintptr_t)TRAMP_BASE, tramp_start, (size_t)(tramp_end - tramp_start));
    for (uint32_t i = 1; i < hv_nr_cpus; i++)
        hv_cpus[i].stack_top = (uint64_t)(uintptr_t)(hv_cpus[i].stack + STACK_SIZE);
    __asm__ volatile("mfence" : : : "memory");
    if (parallel) {
        start_group(1, hv_nr_cpus - 1, skip_index, 30000);
        return;
    }
    for (uint32_t i = 1; i < hv_nr_cpus; i++)
        if ((int)i != skip_index)
            start_group(i, i, -1, 2000);
}
