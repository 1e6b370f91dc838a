/* SPDX-License-Identifier: BSD-2-Clause */
/* test_apic.c — APIC mode read from the hardware each time, the MMIO base from the MSR, the
 * exact ICR traffic of every NMI send in xAPIC and x2APIC mode, and the LAPIC quiesce. */
#include <string.h>
#include "cp/hw.h"
#include "cp/internal.h"
#include "sim.h"
#include "testlib.h"

#define EN (1ull << 11)
#define EXTD (1ull << 10)

static struct sim_cpu *boot(enum crashpath_apic_mode mode)
{
    sim_reset(2, mode, NULL);
    cp_state.phys_map_offset = 0;
    cp_state.xapic_virt = 0;
    sim_clear_log(&sim_cpus[0]);
    return &sim_cpus[0];
}

static void check_no_faults(const struct sim_cpu *c)
{
    if (c->faults)
        tl_fail(__FILE__, __LINE__, c->fault);
}

TEST(apic_mode_all_four_apic_base_states)
{
    struct sim_cpu *c = boot(CRASHPATH_APIC_XAPIC);

    c->apic_base = 0xfee00000ull;
    CHECK_EQ(cp_apic_mode(), CRASHPATH_APIC_DISABLED);
    c->apic_base = 0xfee00000ull | EXTD;
    CHECK_EQ(cp_apic_mode(), CRASHPATH_APIC_INVALID);
    c->apic_base = 0xfee00000ull | EN;
    CHECK_EQ(cp_apic_mode(), CRASHPATH_APIC_XAPIC);
    c->apic_base = 0xfee00000ull | EN | EXTD;
    CHECK_EQ(cp_apic_mode(), CRASHPATH_APIC_X2APIC);
    /* EXTD is trusted only if CPUID reports x2APIC */
    c->cpuid_x2apic = 0;
    CHECK_EQ(cp_apic_mode(), CRASHPATH_APIC_INVALID);
    CHECK_EQ(crashpath_apic_mode(), CRASHPATH_APIC_INVALID);
}

TEST(apic_mode_is_read_from_hardware_on_every_send)
{
    struct sim_cpu *c = boot(CRASHPATH_APIC_XAPIC);

    cp_apic_send_nmi(3);
    CHECK_EQ(sim_count_ops(c, OP_MMIO_W, 0x300), 1);
    CHECK_EQ(sim_count_ops(c, OP_WRMSR, 0x830), 0);
    /* the host (or firmware) switches to x2APIC behind crashpath's back */
    c->apic_base |= EXTD;
    sim_clear_log(c);
    cp_apic_send_nmi(3);
    CHECK_EQ(sim_count_ops(c, OP_WRMSR, 0x830), 1);
    CHECK_EQ(sim_count_ops(c, OP_MMIO_W, 0xffffffffu), 0);
    CHECK(sim_count_ops(c, OP_RDMSR, MSR_IA32_APIC_BASE) >= 1);
    check_no_faults(c);
}

TEST(apic_x2apic_nmi_is_one_wrmsr_with_destination_in_high_half)
{
    struct sim_cpu *c = boot(CRASHPATH_APIC_X2APIC);
    int wr = -1, fence = -1, lfence = -1;

    cp_apic_send_nmi(0x1234567);
    for (int i = 0; i < c->nlog; i++) {
        if (c->log[i].kind == OP_WRMSR) {
            CHECK_EQ(wr, -1);
            wr = i;
            CHECK_EQ(c->log[i].reg, 0x830);
            CHECK_EQ(c->log[i].value, (0x1234567ull << 32) | 0x4400);
        }
        if (c->log[i].kind == OP_MFENCE && wr < 0)
            fence = i;
        if (c->log[i].kind == OP_LFENCE && wr < 0)
            lfence = i;
    }
    CHECK(wr >= 0);
    /* x2APIC ICR writes are not serializing, and MFENCE alone does not order
     * a later WRMSR: MFENCE, then LFENCE, then the WRMSR */
    CHECK(fence >= 0 && fence < wr);
    CHECK(lfence > fence && lfence < wr);
    CHECK_EQ(sim_count_ops(c, OP_MMIO_R, 0xffffffffu) + sim_count_ops(c, OP_MMIO_W, 0xffffffffu), 0);
    check_no_faults(c);
}

TEST(apic_xapic_nmi_to_the_broadcast_id_is_never_sent)
{
    struct sim_cpu *c = boot(CRASHPATH_APIC_XAPIC);

    /* physical destination 0xff is every CPU in xAPIC mode */
    cp_apic_send_nmi(0xff);
    cp_apic_send_nmi(0x1ff);
    CHECK_EQ(sim_count_ops(c, OP_MMIO_W, 0x300), 0);
    CHECK_EQ(sim_cpus[1].nmi_pending, 0);
    c->apic_id = 0xff;      /* and so is a self-NMI of a CPU that claims it */
    cp_apic_self_nmi();
    CHECK_EQ(sim_count_ops(c, OP_MMIO_W, 0x300), 0);
    check_no_faults(c);
}

TEST(apic_xapic_nmi_waits_idle_then_icr2_then_icr)
{
    struct sim_cpu *c = boot(CRASHPATH_APIC_XAPIC);
    int i, reads = 0;

    c->icr_busy_reads = 3;
    cp_apic_send_nmi(0x42);
    /* the exact MMIO traffic: ICR polled until idle, ICR2, then ICR; one
     * read of IA32_APIC_BASE for the mode and one for the base */
    CHECK_EQ(sim_count_ops(c, OP_RDMSR, MSR_IA32_APIC_BASE), 2);
    for (i = 0; i < c->nlog && c->log[i].kind != OP_MMIO_W; i++)
        if (c->log[i].kind == OP_MMIO_R) {
            CHECK_EQ(c->log[i].reg, 0x300);
            reads++;
        }
    CHECK_EQ(reads, 4);
    CHECK(i + 1 < c->nlog);
    CHECK_EQ(c->log[i].kind, OP_MMIO_W);
    CHECK_EQ(c->log[i].reg, 0x310);
    CHECK_EQ(c->log[i].value, 0x42u << 24);
    CHECK_EQ(c->log[i + 1].kind, OP_MMIO_W);
    CHECK_EQ(c->log[i + 1].reg, 0x300);
    CHECK_EQ(c->log[i + 1].value, 0x4400);
    CHECK_EQ(sim_count_ops(c, OP_MMIO_W, 0xffffffffu), 2);
    CHECK_EQ(sim_count_ops(c, OP_WRMSR, 0xffffffffu), 0);
    check_no_faults(c);
}

TEST(apic_xapic_base_comes_from_the_msr)
{
    struct sim_cpu *c = boot(CRASHPATH_APIC_XAPIC);

    /* relocated APIC page, seen through the host's direct map */
    c->apic_base = 0x00000000fed40000ull | EN;
    cp_state.phys_map_offset = 0xffff888000000000ull;
    CHECK_EQ(cp_apic_mmio_base(), 0xfed40000ull);
    cp_apic_send_nmi(5);
    CHECK_EQ(sim_count_ops(c, OP_MMIO_W, 0x300), 1);
    CHECK_EQ(cp_apic_read_id(CRASHPATH_APIC_XAPIC), c->apic_id);
    check_no_faults(c);      /* the sim faults any MMIO outside base + offset */
}

/* xapic_virt: a host that maps the APIC page apart from RAM (Xen's fixmap slot
 * 0xffff82cffffeb000, while its direct map holds RAM only) */
TEST(apic_xapic_page_where_the_host_maps_it_apart_from_ram)
{
    struct sim_cpu *c = boot(CRASHPATH_APIC_XAPIC);

    cp_state.phys_map_offset = 0xffff830000000000ull;
    cp_state.xapic_virt = sim_xapic_virt = 0xffff82cffffeb000ull;
    cp_apic_send_nmi(5);
    CHECK_EQ(sim_count_ops(c, OP_MMIO_W, 0x300), 1);
    CHECK_EQ(cp_apic_read_id(CRASHPATH_APIC_XAPIC), c->apic_id);
    check_no_faults(c);      /* the sim faults any MMIO outside the page the host mapped */
    cp_state.xapic_virt = sim_xapic_virt = 0;
}

TEST(apic_xapic_busy_that_never_clears_does_not_hang)
{
    struct sim_cpu *c = boot(CRASHPATH_APIC_XAPIC);

    c->icr_busy_reads = 1 << 30;
    cp_apic_send_nmi(2);
    /* it gave up waiting and sent anyway (the log is too short to count) */
    CHECK_EQ(c->lapic[0x300 >> 4], 0x4400);
    CHECK_EQ(c->icr2, 2u << 24);
}

TEST(apic_all_but_self_shorthand)
{
    struct sim_cpu *c = boot(CRASHPATH_APIC_X2APIC);

    cp_apic_send_nmi_allbutself();
    CHECK_EQ(sim_count_ops(c, OP_WRMSR, 0x830), 1);
    CHECK_EQ(c->log[c->nlog - 1].value, 0xc4400ull);
    c = boot(CRASHPATH_APIC_XAPIC);
    cp_apic_send_nmi_allbutself();
    CHECK_EQ(c->log[c->nlog - 1].reg, 0x300);
    CHECK_EQ(c->log[c->nlog - 1].value, 0xc4400ull);
    check_no_faults(c);
}

TEST(apic_self_nmi_uses_own_id_never_the_self_shorthand)
{
    struct sim_cpu *c = boot(CRASHPATH_APIC_X2APIC);

    c->apic_id = 0x17;
    cp_apic_self_nmi();
    CHECK_EQ(sim_count_ops(c, OP_RDMSR, 0x802), 1);
    CHECK_EQ(c->log[c->nlog - 1].reg, 0x830);
    CHECK_EQ(c->log[c->nlog - 1].value, (0x17ull << 32) | 0x4400);
    check_no_faults(c);   /* the sim faults the self shorthand with NMI delivery */

    c = boot(CRASHPATH_APIC_XAPIC);
    c->apic_id = 0x9;
    cp_apic_quiesce();    /* software-disabled: ICR and ID still work */
    sim_clear_log(c);
    cp_apic_self_nmi();
    CHECK_EQ(sim_count_ops(c, OP_MMIO_R, 0x20), 1);
    CHECK_EQ(c->log[c->nlog - 2].reg, 0x310);
    CHECK_EQ(c->log[c->nlog - 2].value, 0x9u << 24);
    CHECK_EQ(c->log[c->nlog - 1].value, 0x4400);
    CHECK(c->nmi_pending);
    check_no_faults(c);

    /* LAPIC globally disabled: nothing to write, and nothing is written */
    c = boot(CRASHPATH_APIC_DISABLED);
    cp_apic_self_nmi();
    CHECK_EQ(sim_count_ops(c, OP_MMIO_W, 0xffffffffu) + sim_count_ops(c, OP_WRMSR, 0xffffffffu), 0);
}

static void check_quiesced(struct sim_cpu *c, int with_cmci)
{
    static const uint32_t lvts[] = { 0x320, 0x330, 0x340, 0x350, 0x360, 0x370 };

    for (unsigned int i = 0; i < sizeof(lvts) / sizeof(lvts[0]); i++)
        CHECK(c->lapic[lvts[i] >> 4] & (1u << 16));
    CHECK_EQ(!!(c->lapic[0x2f0 >> 4] & (1u << 16)), with_cmci);
    CHECK_EQ(c->lapic[0xf0 >> 4], 0xff);          /* software-disabled, vector kept */
    CHECK_EQ(c->lapic[0x360 >> 4], 0x10400);      /* LINT1 masked, NMI mode kept */
    CHECK_EQ(sim_count_ops(c, OP_WRMSR, MSR_IA32_APIC_BASE), 0);   /* global mode kept */
    check_no_faults(c);
}

TEST(apic_quiesce_masks_every_lvt_and_soft_disables)
{
    struct sim_cpu *c = boot(CRASHPATH_APIC_X2APIC);

    cp_apic_quiesce();
    check_quiesced(c, 1);
    CHECK_EQ(cp_apic_mode(), CRASHPATH_APIC_X2APIC);
    c = boot(CRASHPATH_APIC_XAPIC);
    cp_apic_quiesce();
    check_quiesced(c, 1);
    /* error LVT first */
    for (int i = 0; i < c->nlog; i++)
        if (c->log[i].kind == OP_MMIO_W) {
            CHECK_EQ(c->log[i].reg, 0x370);
            break;
        }
}

TEST(apic_quiesce_skips_lvts_the_lapic_lacks)
{
    struct sim_cpu *c = boot(CRASHPATH_APIC_X2APIC);

    c->lapic[0x30 >> 4] = 0x00050014;   /* max LVT 5: no CMCI; the sim faults if touched */
    cp_apic_quiesce();
    check_quiesced(c, 0);
}

/* x2APIC: one WRMSR, destination mode logical (bit 11), cluster in bits
 * 31:16 and the member bitmap in 15:0 of the destination. */
TEST(apic_x2apic_cluster_nmi_is_one_logical_wrmsr)
{
    struct sim_cpu *c = boot(CRASHPATH_APIC_X2APIC);

    CHECK_EQ(cp_apic_send_nmi_cluster(0x2a, 0x8001), 1);
    CHECK_EQ(sim_count_ops(c, OP_WRMSR, 0x830), 1);
    for (int i = 0; i < c->nlog; i++)
        if (c->log[i].kind == OP_WRMSR)
            CHECK_EQ(c->log[i].value, (0x2aull << 16 | 0x8001) << 32 | 0x4c00);
    check_no_faults(c);
}

/* xAPIC: a logical destination means the host's LDR and DFR, whatever they
 * are: a cluster NMI is never sent, and says so. */
TEST(apic_xapic_cluster_nmi_is_never_sent)
{
    struct sim_cpu *c = boot(CRASHPATH_APIC_XAPIC);

    CHECK_EQ(cp_apic_send_nmi_cluster(0, 0x3), 0);
    CHECK_EQ(sim_count_ops(c, OP_MMIO_W, 0xffffffffu), 0);
    CHECK_EQ(sim_count_ops(c, OP_WRMSR, 0xffffffffu), 0);
    check_no_faults(c);
}
