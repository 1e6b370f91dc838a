/* SPDX-License-Identifier: BSD-2-Clause */
/* initsipi.c — the mini verifier's proof that each CPU crashpath parked has left VMX root
 * operation: INIT is blocked there (SDM vol. 3, "Restrictions on VMX Operation", 23.8; 24.8 in
 * newer editions), so a CPU still in it never runs anything an INIT-SIPI-SIPI sends it to.
 * Each parked CPU is sent one, in turn, to init_trampoline.asm, which records that it ran. */
#include "../check.h"
#include "mini.h"

/*
 * Where the trampoline goes: a start-up IPI can only start a CPU at a page below 1 MiB (its
 * vector is the page number). The crash region the kdump kernel owns lies far above that, and
 * old memory outside it is the dump itself. Below 640 KiB is the exception: crashpath copies
 * that memory to its backup in the crash region before the jump and the dump's PT_LOAD for it
 * points at the backup (check.c insists on it), so the kdump kernel may reuse it, as Linux does
 * for its own real-mode trampoline, without changing what the dump shows. In it, page 6 is
 * neither the real-mode IVT and BIOS data area (page 0), nor the EBDA and ROMs (0x9f000 and
 * up), nor the mark at cp.lowmem (0x70000), nor the hypervisor's own AP trampoline (0x8000).
 */
#define TRAMP_PHYS 0x6000ull
#define TRAMP_SIZE 4096u
/* As in init_trampoline.asm. */
#define TRAMP_ARRIVALS 0x100u
#define TRAMP_SLOTS 0x108u
#define TRAMP_SLOT_COUNT ((TRAMP_SIZE - TRAMP_SLOTS) / 8u)
#define TRAMP_RAN_MAGIC 0x216e6152u

#define MSR_APIC_BASE 0x1b
#define APIC_BASE_EN (1ull << 11)
#define APIC_BASE_EXTD (1ull << 10)
#define MSR_X2APIC_ID 0x802
#define MSR_X2APIC_ICR 0x830
#define XAPIC_ID 0x20
#define XAPIC_ICR_LOW 0x300
#define XAPIC_ICR_HIGH 0x310
#define ICR_DELIVERY_PENDING (1u << 12)
/* ICR (SDM vol. 3, "Interrupt Command Register (ICR)"): INIT with level assert, and Start Up
 * with the trampoline's page as vector; physical destination, no shorthand. */
#define ICR_INIT 0x4500u
#define ICR_STARTUP (0x4600u | (uint32_t)(TRAMP_PHYS >> 12))

/* The MP start-up protocol's waits (SDM vol. 3, "MP Initialization Example"): 10 ms after
 * INIT, 200 us after each SIPI; then at most ANSWER_MS for the trampoline's record. */
#define INIT_WAIT_US 10000u
#define SIPI_WAIT_US 200u
#define ANSWER_MS 200u
#define MAX_PARKED 1024u

extern const uint8_t init_trampoline[], init_trampoline_end[];

struct lapic {
    int x2apic;
    volatile uint32_t *mmio;
};

static void wait_ticks(uint64_t ticks)
{
    uint64_t end = rdtsc() + ticks;

    while (rdtsc() < end)
        __asm__ volatile("pause");
}

/* In whichever mode the hand-off left this CPU's LAPIC (IA32_APIC_BASE: EXTD set means
 * x2APIC, its ICR one MSR; else the xAPIC page at the base address, identity-mapped). */
static struct lapic lapic_now(void)
{
    uint64_t base = rdmsr(MSR_APIC_BASE);
    struct lapic l = { (base & (APIC_BASE_EN | APIC_BASE_EXTD)) == (APIC_BASE_EN | APIC_BASE_EXTD),
                       (volatile uint32_t *)(uintptr_t)(base & 0xffffff000ull) };

    return l;
}

static uint32_t own_apic_id(const struct lapic *l)
{
    return l->x2apic ? (uint32_t)rdmsr(MSR_X2APIC_ID) : l->mmio[XAPIC_ID / 4] >> 24;
}

static void send_ipi(const struct lapic *l, uint32_t apic_id, uint32_t icr)
{
    /* the trampoline page must be in memory before the IPI that runs it: in x2APIC mode the
     * ICR write is a WRMSR, which does not order earlier stores */
    __asm__ volatile("mfence" : : : "memory");
    if (l->x2apic) {
        wrmsr(MSR_X2APIC_ICR, (uint64_t)apic_id << 32 | icr);
        return;
    }
    for (uint32_t i = 0; i < 1000000 && (l->mmio[XAPIC_ICR_LOW / 4] & ICR_DELIVERY_PENDING); i++)
        __asm__ volatile("pause");
    l->mmio[XAPIC_ICR_HIGH / 4] = apic_id << 24;
    l->mmio[XAPIC_ICR_LOW / 4] = icr;
}

/* Did a CPU with this APIC ID fill a slot? */
static int trampoline_saw(uint32_t apic_id)
{
    volatile const uint8_t *page = (volatile const uint8_t *)(uintptr_t)TRAMP_PHYS;
    uint32_t n = *(volatile const uint32_t *)(page + TRAMP_ARRIVALS);

    for (uint32_t s = 0; s < n && s < TRAMP_SLOT_COUNT; s++) {
        volatile const uint32_t *slot = (volatile const uint32_t *)(page + TRAMP_SLOTS + s * 8u);

        if (slot[1] == TRAMP_RAN_MAGIC && slot[0] == apic_id)
            return 1;
    }
    return 0;
}

/* "CPU n (APIC 0xID) <tail>" into buf. */
static void describe(char *buf, uint32_t size, uint32_t cpu, uint32_t apic_id, const char *tail)
{
    char digits[12];
    uint32_t n = 0, d;
    const char *parts[] = { "CPU ", 0, " (APIC 0x", 0, ") ", tail };

    for (uint32_t p = 0; p < 6; p++) {
        const char *s = parts[p];

        if (p == 1 || p == 3) {
            uint32_t v = p == 1 ? cpu : apic_id, base = p == 1 ? 10 : 16;

            d = 0;
            do {
                digits[d++] = "0123456789abcdef"[v % base];
                v /= base;
            } while (v);
            while (d && n + 1 < size)
                buf[n++] = digits[--d];
            continue;
        }
        while (*s && n + 1 < size)
            buf[n++] = *s++;
    }
    buf[n] = 0;
}

/* INIT, SIPI, SIPI to one CPU, then wait for its record; 1 if it came. */
static int wake_one(const struct lapic *l, uint32_t apic_id, uint64_t tsc_khz)
{
    uint64_t deadline;

    send_ipi(l, apic_id, ICR_INIT);
    wait_ticks(tsc_khz * INIT_WAIT_US / 1000);
    for (int sipi = 0; sipi < 2 && !trampoline_saw(apic_id); sipi++) {
        send_ipi(l, apic_id, ICR_STARTUP);
        wait_ticks(tsc_khz * SIPI_WAIT_US / 1000);
    }
    deadline = rdtsc() + tsc_khz * ANSWER_MS;
    while (!trampoline_saw(apic_id) && rdtsc() < deadline)
        __asm__ volatile("pause");
    return trampoline_saw(apic_id);
}

uint32_t wake_parked_cpus(const struct check_expect *e, uint64_t tsc_khz, char *first, uint32_t size)
{
    static uint32_t cpus[MAX_PARKED], apic_ids[MAX_PARKED];
    struct lapic l = lapic_now();
    uint32_t n = check_parked_cpus(cpus, apic_ids, MAX_PARKED), self = own_apic_id(&l), silent = 0;
    char line[112];

    if (!tsc_khz)
        tsc_khz = 5000000;      /* no crash-info note (the dump check failed already): wait as if 5 GHz */
    for (uint32_t i = 0; i < TRAMP_SIZE; i++)
        ((volatile uint8_t *)(uintptr_t)TRAMP_PHYS)[i] = i < (uint32_t)(init_trampoline_end - init_trampoline)
                                                              ? init_trampoline[i] : 0;
    for (uint32_t i = 0; i < n; i++) {
        if (apic_ids[i] == self)
            continue;
        /* INIT sends an AP to wait-for-SIPI but the BSP to the reset vector, into the
         * firmware: under Bochs a reboot, which is why Linux has disable_cpu_apicid= for its
         * kdump kernels. So the BSP's exit from VMX root goes unproven here; a row that
         * needs it crashes on the BSP. */
        if (cpus[i] == e->bsp) {
            describe(line, sizeof(line), cpus[i], apic_ids[i], "is the BSP: sent no INIT");
            say(line);
            continue;
        }
        if (wake_one(&l, apic_ids[i], tsc_khz)) {
            describe(line, sizeof(line), cpus[i], apic_ids[i], "answered INIT-SIPI");
            say(line);
            continue;
        }
        line[0] = 'F', line[1] = 'A', line[2] = 'I', line[3] = 'L', line[4] = ' ';
        describe(line + 5, sizeof(line) - 5, cpus[i], apic_ids[i],
                 "did not answer INIT-SIPI (INIT blocked: still in VMX root operation?)");
        say(line);
        if (!silent++ && size) {
            uint32_t c = 0;

            for (; c + 1 < size && line[5 + c]; c++)
                first[c] = line[5 + c];
            first[c] = 0;
        }
    }
    return silent;
}
