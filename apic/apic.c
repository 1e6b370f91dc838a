/* SPDX-License-Identifier: BSD-2-Clause */
/* apic.c — raw local APIC access for the crash path: mode, ID, NMI through the ICR, quiesce.
 * The mode is read from the hardware on every call, never cached (Xen 2012: a cached
 * x2apic_enabled went stale when the LAPIC changed mode under it, and the result was #GP). */
#include "cp/hw.h"
#include "cp/internal.h"

/* IA32_APIC_BASE bits (SDM vol. 3, 10.4.4 and 10.12.1). */
#define APIC_BASE_EXTD (1ull << 10)
#define APIC_BASE_EN (1ull << 11)
#define APIC_BASE_ADDR_MASK 0x000ffffffffff000ull   /* bits 12..51 */

#define CPUID1_ECX_X2APIC (1u << 21)

/* Register offsets (xAPIC MMIO offset; x2APIC MSR = 0x800 + offset / 16). */
#define APIC_ID 0x020u
#define APIC_VERSION 0x030u
#define APIC_SVR 0x0f0u
#define APIC_LVT_CMCI 0x2f0u
#define APIC_ICR 0x300u
#define APIC_ICR2 0x310u
#define APIC_LVT_TIMER 0x320u
#define APIC_LVT_THERMAL 0x330u
#define APIC_LVT_PERF 0x340u
#define APIC_LVT_LINT0 0x350u
#define APIC_LVT_LINT1 0x360u
#define APIC_LVT_ERROR 0x370u

#define APIC_SVR_ENABLE (1u << 8)
#define XAPIC_BROADCAST_ID 0xffu   /* physical destination 0xff: every CPU (SDM 10.6.2.1) */
#define APIC_LVT_MASKED (1u << 16)

/* ICR fields (SDM vol. 3, 10.6.1). Level must be 1 (assert) for every
 * delivery mode except INIT de-assert. */
#define ICR_DM_NMI (4u << 8)
#define ICR_LEVEL_ASSERT (1u << 14)
#define ICR_BUSY (1u << 12)                  /* xAPIC only: delivery status */
#define ICR_DEST_LOGICAL (1u << 11)
#define ICR_SH_ALL_BUT_SELF (3u << 18)
#define ICR_NMI_PHYSICAL (ICR_DM_NMI | ICR_LEVEL_ASSERT)   /* destination mode bit 11 clear */

/* Bounded wait for the xAPIC ICR to go idle. A LAPIC that never clears the
 * busy bit must not hang the crasher: after this many polls we write anyway,
 * as Linux's safe_apic_wait_icr_idle gives up. */
#define ICR_IDLE_POLLS 1000000u

static uint32_t x2apic_msr(uint32_t reg)
{
    return 0x800u + (reg >> 4);
}

enum crashpath_apic_mode cp_apic_mode(void)
{
    uint64_t base = cp_hw_rdmsr(MSR_IA32_APIC_BASE);
    uint32_t regs[4];

    if (!(base & APIC_BASE_EN))
        /* EXTD without EN is the one invalid combination (SDM 10.12.5). */
        return (base & APIC_BASE_EXTD) ? CRASHPATH_APIC_INVALID : CRASHPATH_APIC_DISABLED;
    if (!(base & APIC_BASE_EXTD))
        return CRASHPATH_APIC_XAPIC;
    /* Trust EXTD only if the CPU reports x2APIC at all, as Xen's
     * current_local_apic_mode() does. */
    cp_hw_cpuid(1, 0, regs);
    return (regs[2] & CPUID1_ECX_X2APIC) ? CRASHPATH_APIC_X2APIC : CRASHPATH_APIC_INVALID;
}

enum crashpath_apic_mode crashpath_apic_mode(void)
{
    return cp_apic_mode();
}

uint64_t cp_apic_mmio_base(void)
{
    return cp_hw_rdmsr(MSR_IA32_APIC_BASE) & APIC_BASE_ADDR_MASK;
}

/* Where the xAPIC registers are: where the host said it maps them (Xen: a
 * fixmap slot, apart from its direct map of RAM), or else the base from the
 * MSR, read on every operation (firmware or the host may have moved it;
 * 0xfee00000 is only the reset value), seen through the host's mapping of
 * physical memory. */
static uint64_t xapic_page(void)
{
    if (cp_state.xapic_virt)
        return cp_state.xapic_virt;
    return cp_apic_mmio_base() + cp_state.phys_map_offset;
}

static uint32_t apic_read(enum crashpath_apic_mode mode, uint64_t page, uint32_t reg)
{
    if (mode == CRASHPATH_APIC_X2APIC)
        return (uint32_t)cp_hw_rdmsr(x2apic_msr(reg));
    return cp_hw_mmio_read32(page + reg);
}

static void apic_write(enum crashpath_apic_mode mode, uint64_t page, uint32_t reg, uint32_t value)
{
    if (mode == CRASHPATH_APIC_X2APIC)
        cp_hw_wrmsr(x2apic_msr(reg), value);
    else
        cp_hw_mmio_write32(page + reg, value);
}

uint32_t cp_apic_read_id(enum crashpath_apic_mode mode)
{
    switch (mode) {
    case CRASHPATH_APIC_X2APIC:
        return (uint32_t)cp_hw_rdmsr(x2apic_msr(APIC_ID));   /* full 32-bit x2APIC ID */
    case CRASHPATH_APIC_XAPIC:
        return cp_hw_mmio_read32(xapic_page() + APIC_ID) >> 24;  /* ID in bits 31:24 */
    default:
        return CP_NO_CPU;
    }
}

static void xapic_wait_icr_idle(uint64_t page)
{
    for (uint32_t i = 0; i < ICR_IDLE_POLLS; i++) {
        if (!(cp_hw_mmio_read32(page + APIC_ICR) & ICR_BUSY))
            return;
        cp_hw_pause();
    }
}

/* Write the ICR in the mode read now. x2APIC: one 64-bit WRMSR to 0x830 with
 * the destination in the high half. xAPIC: wait for delivery status idle,
 * then ICR2 (destination in bits 31:24), then ICR, whose write sends.
 * Returns 1 if it wrote the ICR, 0 if there was nothing to send by. */
static uint32_t apic_icr_write(uint32_t dest, uint32_t low)
{
    enum crashpath_apic_mode mode = cp_apic_mode();

    if (mode == CRASHPATH_APIC_X2APIC) {
        /* WRMSR to the x2APIC ICR is not serializing (SDM 10.12.3): without a
         * fence the NMI could overtake our earlier stores, e.g. the gate
         * rewrite the victim is about to use. MFENCE alone does not order a
         * later WRMSR either: LFENCE after it keeps the WRMSR from starting
         * before the MFENCE completes (Linux's weak_wrmsr_fence). */
        cp_hw_mfence();
        cp_hw_lfence();
        cp_hw_wrmsr(x2apic_msr(APIC_ICR), ((uint64_t)dest << 32) | low);
        return 1;
    }
    if (mode == CRASHPATH_APIC_XAPIC) {
        uint64_t page = xapic_page();

        /* 8-bit IDs only, and 0xff is the broadcast: an NMI to it would hit
         * every CPU, the sender and CPUs never started included. A logical
         * destination means what the host put in LDR/DFR: never sent. */
        if ((dest >= XAPIC_BROADCAST_ID && !(low & ICR_SH_ALL_BUT_SELF)) || (low & ICR_DEST_LOGICAL))
            return 0;
        xapic_wait_icr_idle(page);
        cp_hw_mmio_write32(page + APIC_ICR2, dest << 24);
        cp_hw_mmio_write32(page + APIC_ICR, low);
        return 1;
    }
    /* Disabled or invalid: no ICR to write; this CPU can send no NMI. */
    return 0;
}

uint32_t cp_apic_send_nmi(uint32_t apic_id)
{
    return apic_icr_write(apic_id, ICR_NMI_PHYSICAL);
}

/* One NMI to the CPUs of an x2APIC cluster whose member bits are set. In
 * x2APIC mode a logical destination is cluster (bits 31:16) and a bitmap of
 * its 16 members (bits 15:0), each CPU's logical ID fixed by hardware from
 * its x2APIC ID (SDM vol. 3, 11.12.10.2): it reaches exactly the CPUs named.
 * Outside x2APIC a logical destination would mean whatever the host put in
 * LDR and DFR, so apic_icr_write never sends it. */
uint32_t cp_apic_send_nmi_cluster(uint32_t cluster, uint32_t members)
{
    return apic_icr_write(cluster << 16 | (members & 0xffffu), ICR_NMI_PHYSICAL | ICR_DEST_LOGICAL);
}

uint32_t cp_apic_send_nmi_allbutself(void)
{
    return apic_icr_write(0, ICR_NMI_PHYSICAL | ICR_SH_ALL_BUT_SELF);
}

/* Queue an NMI to this CPU by its own APIC ID. The "self" shorthand is only
 * valid with fixed delivery mode (SDM vol. 3, 10.6.1, table of valid ICR
 * combinations), so it is never used for an NMI. The ICR and the ID register
 * keep working while the LAPIC is software-disabled (SDM 10.4.7.2). */
void cp_apic_self_nmi(void)
{
    enum crashpath_apic_mode mode = cp_apic_mode();

    if (mode == CRASHPATH_APIC_XAPIC || mode == CRASHPATH_APIC_X2APIC)
        (void)cp_apic_send_nmi(cp_apic_read_id(mode));
}

/* Mask every LVT the LAPIC has, then software-disable it through the SVR.
 * The global mode (IA32_APIC_BASE) is kept: leaving x2APIC would need a trip
 * through the disabled state, and a kdump kernel accepts x2APIC left on. */
void cp_apic_quiesce(void)
{
    enum crashpath_apic_mode mode = cp_apic_mode();
    uint64_t page;
    static const uint32_t lvts[] = {
        /* Error first: masking others can raise an error interrupt on P6-era
         * LAPICs (what Linux and Xen learned). Then by index, with the
         * minimum "max LVT" value at which each exists (SDM 10.4.8). */
        APIC_LVT_ERROR, APIC_LVT_TIMER, APIC_LVT_LINT0, APIC_LVT_LINT1,
        APIC_LVT_PERF, APIC_LVT_THERMAL, APIC_LVT_CMCI,
    };
    static const uint8_t min_maxlvt[] = { 3, 0, 0, 0, 4, 5, 6 };
    uint32_t maxlvt;

    if (mode != CRASHPATH_APIC_XAPIC && mode != CRASHPATH_APIC_X2APIC)
        return;
    page = mode == CRASHPATH_APIC_XAPIC ? xapic_page() : 0;
    /* Touching an LVT the LAPIC does not implement is a #GP in x2APIC mode. */
    maxlvt = (apic_read(mode, page, APIC_VERSION) >> 16) & 0xffu;
    for (uint32_t i = 0; i < sizeof(lvts) / sizeof(lvts[0]); i++) {
        if (maxlvt < min_maxlvt[i])
            continue;
        apic_write(mode, page, lvts[i], apic_read(mode, page, lvts[i]) | APIC_LVT_MASKED);
    }
    apic_write(mode, page, APIC_SVR, apic_read(mode, page, APIC_SVR) & ~APIC_SVR_ENABLE);
}
