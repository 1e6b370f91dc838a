/* SPDX-License-Identifier: BSD-2-Clause */
/* watchdog.c — an NMI watchdog of the kind hosts run (Linux has an HPET-based one; Xen's drives
 * performance counters): the HPET's timer 0, periodic, through an IO-APIC pin whose entry
 * delivers an NMI. crashpath's quiesce hook stops it on the crasher before the hand-off (Xen
 * 2a16fcd5ba: a kdump kernel livelocked on a watchdog still firing NMIs). */
#include "hv.h"

/* Where QEMU puts them (its ACPI HPET table and MADT say the same). */
#define HPET_BASE 0xfed00000ull
#define IOAPIC_BASE 0xfec00000ull

/* HPET registers (IA-PC HPET specification 1.0a, 2.3). */
#define HPET_CAP 0x000            /* 63:32 counter period in fs, 15:8 vendor rev... */
#define HPET_CONF 0x010           /* bit 0 ENABLE_CNF */
#define HPET_COUNTER 0x0f0
#define HPET_T0_CONF 0x100        /* 63:32 INT_ROUTE_CAP, 13:9 INT_ROUTE_CNF, 6 VAL_SET,
                                     4 PER_INT_CAP, 3 TYPE (periodic), 2 INT_ENB */
#define HPET_T0_CMP 0x108
#define HPET_ENABLE 0x1ull
#define HPET_T_INT_ENB (1ull << 2)
#define HPET_T_PERIODIC (1ull << 3)
#define HPET_T_PER_CAP (1ull << 4)
#define HPET_T_VAL_SET (1ull << 6)
#define HPET_T_ROUTE_SHIFT 9

/* IO-APIC: an index register and a window; redirection entry n at 0x10 + 2n
 * (82093AA datasheet, 3.2.4): low word delivery mode 10:8 (100b NMI), edge,
 * active high, bit 16 mask; high word destination APIC ID in 31:24. */
#define IOAPIC_SEL 0x00
#define IOAPIC_WIN 0x10
#define IOAPIC_RTE_MASKED (1u << 16)
#define IOAPIC_DM_NMI (4u << 8)

#define NO_PIN 0xffffffffu
static uint32_t watchdog_pin = NO_PIN;

static uint64_t hpet_read(uint32_t reg) { return *(volatile uint64_t *)(uintptr_t)(HPET_BASE + reg); }
static void hpet_write(uint32_t reg, uint64_t v) { *(volatile uint64_t *)(uintptr_t)(HPET_BASE + reg) = v; }

static void ioapic_write(uint32_t index, uint32_t v)
{
    *(volatile uint32_t *)(uintptr_t)(IOAPIC_BASE + IOAPIC_SEL) = index;
    *(volatile uint32_t *)(uintptr_t)(IOAPIC_BASE + IOAPIC_WIN) = v;
}

/* Arm timer 0 to fire every period_ms, as an NMI to the CPU with APIC ID
 * dest, through the highest IO-APIC pin the timer may drive. */
void watchdog_arm(uint32_t period_ms, uint32_t dest)
{
    uint64_t cap = hpet_read(HPET_CAP), t0 = hpet_read(HPET_T0_CONF);
    uint64_t period_fs = cap >> 32, routes = t0 >> 32;
    uint64_t ticks = period_fs ? (uint64_t)period_ms * 1000000000000ull / period_fs : 0;

    if (!ticks || !(t0 & HPET_T_PER_CAP) || !routes)
        hv_fail("watchdog: no HPET timer 0 that can run periodic (cap 0x%lx, t0 0x%lx)", cap, t0);
    if (dest > 0xff)
        hv_fail("watchdog: APIC ID %u does not fit an IO-APIC destination", dest);
    watchdog_pin = 31u - (uint32_t)__builtin_clz((uint32_t)routes);
    ioapic_write(0x11 + 2 * watchdog_pin, dest << 24);
    ioapic_write(0x10 + 2 * watchdog_pin, IOAPIC_DM_NMI);     /* edge, active high, unmasked */
    hpet_write(HPET_CONF, hpet_read(HPET_CONF) & ~HPET_ENABLE);
    hpet_write(HPET_COUNTER, 0);
    hpet_write(HPET_T0_CONF, (t0 & ~(0x1full << HPET_T_ROUTE_SHIFT)) | ((uint64_t)watchdog_pin << HPET_T_ROUTE_SHIFT) |
                                 HPET_T_PERIODIC | HPET_T_INT_ENB | HPET_T_VAL_SET);
    hpet_write(HPET_T0_CMP, ticks);       /* with VAL_SET: the first expiry and the period */
    hpet_write(HPET_CONF, hpet_read(HPET_CONF) | HPET_ENABLE);
    hv_printf("hv: NMI watchdog: HPET timer 0 every %u ms, IO-APIC pin %u, NMI to APIC ID %u\n", period_ms,
              watchdog_pin, dest);
}

/* crashpath's quiesce hook: on the crasher, no lock, no allocation. The
 * IO-APIC entry is masked as well, as Linux's clear_IO_APIC does, so an edge
 * already on its way is dropped there. */
void watchdog_stop(void *arg)
{
    (void)arg;
    if (watchdog_pin == NO_PIN)
        return;
    hpet_write(HPET_CONF, hpet_read(HPET_CONF) & ~HPET_ENABLE);
    hpet_write(HPET_T0_CONF, hpet_read(HPET_T0_CONF) & ~HPET_T_INT_ENB);
    ioapic_write(0x10 + 2 * watchdog_pin, IOAPIC_DM_NMI | IOAPIC_RTE_MASKED);
}
