/* SPDX-License-Identifier: BSD-2-Clause */
/* test_send.c — how the shootdown NMIs go out: the exact ICR traffic of the x2APIC cluster
 * send (dense and sparse IDs, the crasher's cluster), the resend to CPUs a multicast missed, and
 * when it falls back to one NMI per CPU (a CPU never started, a CPU that switched from xAPIC
 * after init, IDs that alias above 2^20, xAPIC mode). */
#include <string.h>
#include "cp/hw.h"
#include "cp/internal.h"
#include "shootdown_harness.h"
#include "testlib.h"

/* ICR low words (SDM vol. 3, 11.6.1): NMI delivery, level assert, and
 * destination mode bit 11 clear (physical) or set (logical). */
#define NMI_PHYSICAL 0x4400ull
#define NMI_LOGICAL 0x4c00ull
#define MAX_WRITES 64

static uint64_t logical(uint32_t cluster, uint32_t members)
{
    return (uint64_t)(cluster << 16 | members) << 32 | NMI_LOGICAL;
}

static uint64_t physical(uint32_t apic_id)
{
    return (uint64_t)apic_id << 32 | NMI_PHYSICAL;
}

/* After a crash by crasher: every present CPU but the crasher parked, the
 * crasher never got an NMI, and its ICR writes were exactly want[], which
 * the crash-info note counts under the send mode used: the last `resent` of
 * them resent to CPUs silent after the cluster send. */
static void check_traffic(int n, int crasher, const uint64_t *want, int nwant, uint32_t used, uint32_t resent)
{
    uint64_t got[MAX_WRITES];
    struct crashpath_info_note info;
    int k = icr_log(crasher, got, MAX_WRITES);

    for (int i = 0; i < n; i++) {
        if (i == crasher)
            check_crasher(i);
        else if (H.cpus[i].flags & CRASHPATH_CPU_PRESENT)
            check_victim(i);
        else
            CHECK_EQ(sim_cpus[i].nmis_taken, 0);
    }
    CHECK_EQ(sim_cpus[crasher].nmis_taken, 0);
    CHECK_EQ(k, nwant);
    for (int i = 0; i < k && i < nwant; i++)
        CHECK_EQ(got[i], want[i]);
    sim_read_info(&info);
    CHECK_EQ(info.send_mode, CRASHPATH_SEND_CLUSTER);
    CHECK_EQ(info.send_used, used);
    CHECK_EQ(info.icr_writes, (uint32_t)nwant - resent);
    CHECK_EQ(info.resent, resent);
    check_no_faults(n);
}

/* 36 CPUs with IDs 0..35: clusters 0, 1 (holding the crasher, ID 17) and
 * 2; three writes, the crasher's bit (1 << 1) out of cluster 1's. */
TEST(send_cluster_dense_ids_one_write_per_cluster_never_the_crasher)
{
    uint32_t ids[36];
    const uint64_t want[] = { logical(0, 0xffff), logical(1, 0xffff & ~0x2u), logical(2, 0xf) };

    for (uint32_t i = 0; i < 36; i++)
        ids[i] = i;
    setup_ids(36, CRASHPATH_APIC_X2APIC, ids);
    CHECK_EQ(H.cfg.send_mode, CRASHPATH_SEND_CLUSTER);     /* the default */
    run_crash(36, 17);
    check_traffic(36, 17, want, 3, CRASHPATH_SEND_CLUSTER, 0);
}

/* Holes, IDs far apart (sockets in the high bits), the largest ID a logical
 * destination can name (0xfffff), and a crasher alone in its cluster (0x40):
 * one write per other cluster, in cluster order, none to the crasher's. */
TEST(send_cluster_sparse_ids_reach_exactly_the_configured_cpus)
{
    const uint32_t ids[] = { 0x105, 0x0, 0x3, 0x11, 0x1f, 0x40, 0x10e, 0x2000, 0x2003, 0xfffff };
    const uint64_t want[] = {
        logical(0, 0x9), logical(1, 0x8002), logical(0x10, 0x4020), logical(0x200, 0x9), logical(0xffff, 0x8000),
    };

    setup_ids(10, CRASHPATH_APIC_X2APIC, ids);
    run_crash(10, 5);
    check_traffic(10, 5, want, 5, CRASHPATH_SEND_CLUSTER, 0);
}

/* A CPU the host configured but never started keeps its LAPIC's reset
 * state, xAPIC: the machine is not all x2APIC, and that CPU must get no NMI.
 * So the crasher sends one physical NMI per started CPU. */
TEST(send_cluster_with_a_cpu_never_started_goes_per_cpu)
{
    const uint64_t want[] = { physical(1), physical(3), physical(7), physical(11), physical(13), physical(15) };

    setup(8, CRASHPATH_APIC_X2APIC);                   /* IDs 1, 3, .. 15 */
    H.cpus[4].flags = 0;                               /* ID 9, never started: */
    sim_cpus[4].apic_base &= ~(1ull << 10);            /* its LAPIC as reset left it */
    run_crash(8, 2);                                   /* ID 5 */
    check_traffic(8, 2, want, 6, CRASHPATH_SEND_PER_CPU, 0);
}

/* A cluster NMI that some CPUs never got (as QEMU 10 drops it for CPUs after
 * an xAPIC-mode LAPIC the host never described): after an eighth of the
 * timeout each silent CPU gets its own physical NMI, and parks. */
TEST(send_cluster_lost_on_some_cpus_is_resent_to_each_of_them)
{
    uint32_t ids[20];
    const uint64_t want[] = { logical(0, 0xfffe), logical(1, 0xf), physical(9), physical(17) };

    for (uint32_t i = 0; i < 20; i++)
        ids[i] = i;
    setup_ids(20, CRASHPATH_APIC_X2APIC, ids);
    H.cfg.timeout_ms = 800;
    sim_logical_lost = 1ull << 9 | 1ull << 17;
    run_crash(20, 0);
    check_traffic(20, 0, want, 4, CRASHPATH_SEND_CLUSTER, 2);
}

static void cpu_to_x2apic_then_crash(struct sim_cpu *c)
{
    c->apic_base |= 1ull << 10;        /* EXTD: xAPIC -> x2APIC is a legal step */
    cpu_crash(c);
}

static void cpu_to_x2apic_then_spin(struct sim_cpu *c)
{
    c->apic_base |= 1ull << 10;
    cpu_spin(c);
}

/* Configured in xAPIC mode; after crashpath_init the crasher and CPU 2 went
 * x2APIC, the others did not. A logical x2APIC destination would miss the
 * CPUs still in xAPIC mode (they match against their LDR), so the crasher
 * sends one physical NMI per CPU, which reaches both kinds. */
TEST(send_cluster_after_a_switch_from_xapic_goes_per_cpu_and_reaches_everyone)
{
    const uint64_t want[] = { physical(1), physical(5), physical(7), physical(9), physical(11) };

    setup(6, CRASHPATH_APIC_XAPIC);                    /* IDs 1, 3, .. 11 */
    H.roles[1] = cpu_to_x2apic_then_crash;
    H.roles[2] = cpu_to_x2apic_then_spin;
    run_crash(6, 1);
    check_traffic(6, 1, want, 5, CRASHPATH_SEND_PER_CPU, 0);
}

/* Above 2^20 the logical ID keeps only ID[19:4]: 0x100001 would answer
 * cluster 0, bit 1, which is also the crasher's (ID 1). With such an ID
 * configured the plan is not used and each CPU gets its own NMI. */
TEST(send_cluster_with_ids_that_alias_above_2_20_goes_per_cpu)
{
    const uint32_t ids[] = { 0x1, 0x2, 0x100001, 0x3 };
    const uint64_t want[] = { physical(0x2), physical(0x100001), physical(0x3) };

    setup_ids(4, CRASHPATH_APIC_X2APIC, ids);
    run_crash(4, 0);
    check_traffic(4, 0, want, 3, CRASHPATH_SEND_PER_CPU, 0);
}

/* In xAPIC mode there is no fixed logical ID: the default sends per CPU,
 * by MMIO, ICR2 holding the 8-bit destination. */
TEST(send_cluster_in_xapic_mode_is_per_cpu)
{
    const uint64_t want[] = { (1ull << 24) << 32 | NMI_PHYSICAL, (5ull << 24) << 32 | NMI_PHYSICAL,
                              (7ull << 24) << 32 | NMI_PHYSICAL };

    setup(4, CRASHPATH_APIC_XAPIC);                    /* IDs 1, 3, 5, 7 */
    run_crash(4, 1);
    check_traffic(4, 1, want, 3, CRASHPATH_SEND_PER_CPU, 0);
}
