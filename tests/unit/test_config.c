/* SPDX-License-Identifier: BSD-2-Clause */
/* test_config.c — crashpath_init: a valid configuration is accepted and prepared, and every
 * problem the host can make is refused at load time with its own error code. */
#include <string.h>
#include "cp/internal.h"
#include "sim.h"
#include "testlib.h"

static struct crashpath_config cfg;
static struct crashpath_cpu cpus[SIM_MAX_CPUS];
static _Alignas(512) uint8_t spare[4096];

static void fresh(int n)
{
    sim_reset(n, CRASHPATH_APIC_XAPIC, NULL);
    sim_config(&cfg, cpus, n);
}

/* A note-aligned address inside CPU i's IDT. */
static void *inside_idt(int i)
{
    return (void *)(((uintptr_t)sim_cpus[i].idt + 1024) & ~(uintptr_t)(CRASHPATH_NOTES_ALIGN - 1));
}

#define EXPECT_ERR(err, mutate)                                      \
    do {                                                             \
        fresh(4);                                                    \
        mutate;                                                      \
        CHECK_EQ(crashpath_init(&cfg), (uint64_t)(int64_t)(err));    \
    } while (0)

TEST(config_valid_is_accepted_and_prepared)
{
    fresh(4);
    cfg.timeout_ms = 0;
    CHECK_EQ(crashpath_init(&cfg), CRASHPATH_OK);
    CHECK_EQ(cp_state.timeout_ms, CRASHPATH_DEFAULT_TIMEOUT_MS);
    CHECK_EQ(cp_state.timeout_ticks, CRASHPATH_DEFAULT_TIMEOUT_MS * SIM_TSC_KHZ);
    CHECK_EQ(cp_state.nr_cpus, 4);
    CHECK_EQ(cp_crashing_cpu, CP_NO_CPU);
    /* init changes no gate: the host's IST and handlers stay until a crash */
    CHECK_EQ(sim_gate_ist(&sim_cpus[1], 2), 2);
    CHECK_EQ(sim_gate_ist(&sim_cpus[1], 18), 1);
    /* re-init with another configuration (CPU hotplug) is allowed */
    fresh(2);
    CHECK_EQ(crashpath_init(&cfg), CRASHPATH_OK);
    CHECK_EQ(cp_state.nr_cpus, 2);
}

TEST(config_every_error_code)
{
    EXPECT_ERR(CRASHPATH_ERR_NULL_CONFIG, cfg.cpus = NULL);
    CHECK_EQ(crashpath_init(NULL), (uint64_t)(int64_t)CRASHPATH_ERR_NULL_CONFIG);
    EXPECT_ERR(CRASHPATH_ERR_NO_CPUS, cfg.nr_cpus = 0);
    EXPECT_ERR(CRASHPATH_ERR_TOO_MANY_CPUS, cfg.nr_cpus = CRASHPATH_MAX_CPUS + 1);
    EXPECT_ERR(CRASHPATH_ERR_CPU_INDEX, cpus[2].index = CRASHPATH_MAX_CPUS);
    EXPECT_ERR(CRASHPATH_ERR_DUP_CPU_INDEX, cpus[3].index = 1);
    EXPECT_ERR(CRASHPATH_ERR_APIC_ID, cpus[1].apic_id = 0xffffffffu);
    EXPECT_ERR(CRASHPATH_ERR_DUP_APIC_ID, cpus[3].apic_id = cpus[0].apic_id);
    EXPECT_ERR(CRASHPATH_ERR_NO_IDT, cpus[2].idt_base = 0);
    EXPECT_ERR(CRASHPATH_ERR_IDT_ALIGN, cpus[2].idt_base += 8);
    EXPECT_ERR(CRASHPATH_ERR_IDT_LIMIT, cpus[2].idt_limit = 18 * 16 + 14);
    EXPECT_ERR(CRASHPATH_ERR_IDT_SHARED, cpus[3].idt_base = cpus[1].idt_base);
    EXPECT_ERR(CRASHPATH_ERR_NO_NOTES, cpus[1].notes = NULL);
    EXPECT_ERR(CRASHPATH_ERR_NO_NOTES, cfg.info_note = NULL);
    EXPECT_ERR(CRASHPATH_ERR_NOTES_ALIGN, cpus[1].notes = spare + 256);
    EXPECT_ERR(CRASHPATH_ERR_NOTES_ALIGN, cpus[1].notes_phys += 64);
    EXPECT_ERR(CRASHPATH_ERR_NOTES_ALIGN, cfg.info_note_phys += 4);
    EXPECT_ERR(CRASHPATH_ERR_NOTES_OVERLAP, cpus[3].notes = cpus[0].notes);
    EXPECT_ERR(CRASHPATH_ERR_NOTES_OVERLAP, cpus[3].notes_phys = cpus[2].notes_phys);
    EXPECT_ERR(CRASHPATH_ERR_NOTES_OVERLAP, cfg.info_note = cpus[2].notes);
    EXPECT_ERR(CRASHPATH_ERR_NOTES_OVERLAP, cfg.info_note_phys = cpus[1].notes_phys);
    EXPECT_ERR(CRASHPATH_ERR_NOTES_OVERLAP, cpus[3].notes = inside_idt(1));   /* another CPU's IDT */
    EXPECT_ERR(CRASHPATH_ERR_NOTES_OVERLAP, cpus[0].notes = inside_idt(0));   /* its own IDT */
    EXPECT_ERR(CRASHPATH_ERR_NOTES_OVERLAP, cfg.info_note = inside_idt(2));
    EXPECT_ERR(CRASHPATH_ERR_APIC_MODE, sim_cpus[0].apic_base &= ~(1ull << 11));
    EXPECT_ERR(CRASHPATH_ERR_APIC_MODE, sim_cpus[0].apic_base |= 1ull << 10; sim_cpus[0].cpuid_x2apic = 0);
    EXPECT_ERR(CRASHPATH_ERR_SELECTOR, cfg.hv_cs = 0);
    EXPECT_ERR(CRASHPATH_ERR_SELECTOR, cfg.hv_cs = SIM_CS | 3);
    EXPECT_ERR(CRASHPATH_ERR_SELECTOR, cfg.hv_cs = SIM_CS | 4);
    EXPECT_ERR(CRASHPATH_ERR_SELECTOR, cfg.hv_cs = 0x08);
    EXPECT_ERR(CRASHPATH_ERR_TSC_KHZ, cfg.tsc_khz = 0);
    EXPECT_ERR(CRASHPATH_ERR_TIMEOUT, cfg.timeout_ms = CRASHPATH_MAX_TIMEOUT_MS + 1);
    EXPECT_ERR(CRASHPATH_ERR_SEND_MODE, cfg.send_mode = 7);
    EXPECT_ERR(CRASHPATH_ERR_NO_CX16, sim_cpus[0].cpuid_cx16 = 0);
}

TEST(config_not_present_cpu_needs_no_idt)
{
    struct crashpath_cpu_note n;

    fresh(4);
    cpus[3].flags = 0;
    cpus[3].idt_base = 0;
    cpus[3].idt_limit = 0;
    CHECK_EQ(crashpath_init(&cfg), CRASHPATH_OK);
    sim_read_cpu_note(3, &n);
    CHECK_EQ(n.outcome, CRASHPATH_OUTCOME_NOT_PRESENT);
    /* two never-started CPUs may both lack an IDT */
    fresh(4);
    cpus[2].flags = cpus[3].flags = 0;
    cpus[2].idt_base = cpus[3].idt_base = 0;
    CHECK_EQ(crashpath_init(&cfg), CRASHPATH_OK);
}

TEST(config_xapic_broadcast_id_is_refused_only_in_xapic_mode)
{
    /* fresh() runs the LAPIC in xAPIC mode: 0xff is its broadcast */
    EXPECT_ERR(CRASHPATH_ERR_APIC_ID, cpus[2].apic_id = 0xff);
    EXPECT_ERR(CRASHPATH_ERR_APIC_ID, cpus[2].apic_id = 0x100);
    sim_reset(4, CRASHPATH_APIC_X2APIC, NULL);
    sim_config(&cfg, cpus, 4);
    cpus[2].apic_id = 0xff;          /* an ordinary x2APIC ID */
    CHECK_EQ(crashpath_init(&cfg), CRASHPATH_OK);
}

TEST(config_fred_host_is_refused)
{
    /* CR4.FRED: NMIs bypass the IDT gates crashpath would rewrite */
    EXPECT_ERR(CRASHPATH_ERR_FRED, sim_cpus[0].cr4 |= 1ull << 32);
    CHECK(strstr(crashpath_strerror(CRASHPATH_ERR_FRED), "FRED") != NULL);
}

static _Alignas(16) uint8_t tss[4][104];
static _Alignas(16) uint8_t nmi_stacks[4][CRASHPATH_NMI_STACK_MIN];

static void give_nmi_stacks(void)
{
    cfg.victim_nmi_ist = 5;
    for (int i = 0; i < 4; i++) {
        cpus[i].tss_base = (uint64_t)(uintptr_t)tss[i];
        cpus[i].nmi_stack_top = (uint64_t)(uintptr_t)(nmi_stacks[i] + CRASHPATH_NMI_STACK_MIN);
    }
}

/* victim_nmi_ist: crashpath_init points that TSS slot of every present CPU
 * at its NMI stack (IST5 at 0x44), so crash time only writes gates. */
TEST(config_victim_nmi_ist_points_the_tss_slot_at_each_cpus_nmi_stack)
{
    uint64_t ist5;

    fresh(4);
    give_nmi_stacks();
    cpus[3].flags = 0;                 /* never started: its TSS is left alone */
    cpus[3].idt_base = 0;
    memset(tss, 0, sizeof(tss));
    CHECK_EQ(crashpath_init(&cfg), CRASHPATH_OK);
    for (int i = 0; i < 3; i++) {
        memcpy(&ist5, tss[i] + 0x44, 8);
        CHECK_EQ(ist5, cpus[i].nmi_stack_top);
        memcpy(&ist5, tss[i] + 0x3c, 8);
        CHECK_EQ(ist5, 0);             /* IST4 untouched */
    }
    memcpy(&ist5, tss[3] + 0x44, 8);
    CHECK_EQ(ist5, 0);
    EXPECT_ERR(CRASHPATH_ERR_NMI_STACK, (give_nmi_stacks(), cfg.victim_nmi_ist = 8));
    EXPECT_ERR(CRASHPATH_ERR_NMI_STACK, (give_nmi_stacks(), cpus[1].tss_base = 0));
    EXPECT_ERR(CRASHPATH_ERR_NMI_STACK, (give_nmi_stacks(), cpus[2].nmi_stack_top = 0));
    EXPECT_ERR(CRASHPATH_ERR_NMI_STACK, (give_nmi_stacks(), cpus[2].nmi_stack_top -= 8));
}

/* CRASHPATH_NMI_IST_HOST: the host keeps its own NMI stacks; crashpath asks
 * for no TSS or stack and writes none. */
TEST(config_nmi_ist_host_needs_no_tss_and_writes_none)
{
    fresh(4);
    give_nmi_stacks();
    memset(tss, 0, sizeof(tss));
    cfg.victim_nmi_ist = CRASHPATH_NMI_IST_HOST;
    CHECK_EQ(crashpath_init(&cfg), CRASHPATH_OK);
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 104; b++)
            CHECK_EQ(tss[i][b], 0);
    for (int i = 0; i < 4; i++)
        cpus[i].tss_base = cpus[i].nmi_stack_top = 0;
    CHECK_EQ(crashpath_init(&cfg), CRASHPATH_OK);
    EXPECT_ERR(CRASHPATH_ERR_NMI_STACK, cfg.victim_nmi_ist = CRASHPATH_NMI_IST_HOST - 1);
}

TEST(config_busy_once_a_crash_has_begun)
{
    fresh(2);
    CHECK_EQ(crashpath_init(&cfg), CRASHPATH_OK);
    cp_crashing_cpu = 0;
    CHECK_EQ(crashpath_init(&cfg), (uint64_t)(int64_t)CRASHPATH_ERR_BUSY);
}

TEST(config_every_error_has_its_own_text)
{
    for (int e = 0; e >= CRASHPATH_ERR_NOTES_IN_KDUMP_RAM; e--) {
        CHECK(strcmp(crashpath_strerror(e), "unknown crashpath error") != 0);
        for (int f = e - 1; f >= CRASHPATH_ERR_NOTES_IN_KDUMP_RAM; f--)
            CHECK(strcmp(crashpath_strerror(e), crashpath_strerror(f)) != 0);
    }
    CHECK(strcmp(crashpath_strerror(-999), "unknown crashpath error") == 0);
}
