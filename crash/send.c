/* SPDX-License-Identifier: BSD-2-Clause */
/* send.c — crash time: the shootdown NMIs, as the crasher sends them (crash/shootdown.c): by
 * x2APIC cluster from the plan load/send_plan.c made, one per CPU, or all-but-self; and after a
 * cluster send, one per CPU still silent. */
#include "cp/hw.h"
#include "cp/internal.h"

static uint32_t send_per_cpu(cp_pos_t self)
{
    uint32_t writes = 0;

    for (uint32_t i = 0; i < cp_state.nr_cpus; i++)
        if (i != self && cp_state.cpus[i].present)
            writes += cp_apic_send_nmi(cp_state.cpus[i].apic_id);
    return writes;
}

/* One logical NMI per cluster of the plan crashpath_init made, the crasher's
 * own bit taken out of its cluster (its NMI gate is crashpath_trap_nop, but an NMI it
 * sent itself would only be absorbed: it must never be sent). */
static uint32_t send_by_cluster(cp_pos_t self)
{
    uint32_t own_cluster = cp_state.cpus[self].apic_id >> 4;
    uint32_t own_bit = 1u << (cp_state.cpus[self].apic_id & 15u);
    uint32_t writes = 0;

    for (uint32_t i = 0; i < cp_state.nr_clusters; i++) {
        const struct cp_cluster *c = &cp_state.clusters[i];
        uint32_t members = c->cluster == own_cluster ? c->members & ~own_bit : c->members;

        if (members)
            writes += cp_apic_send_nmi_cluster(c->cluster, members);
    }
    return writes;
}

/* The shootdown NMIs; records how they went out (send_used, icr_writes) and
 * returns the send mode used. A logical x2APIC destination matches only
 * CPUs in x2APIC mode: the cluster send needs x2APIC at init (with every CPU
 * started) and now (this CPU's ICR speaks it); otherwise each CPU gets its
 * own physical NMI. */
uint32_t cp_send_nmis(cp_pos_t self)
{
    uint32_t used = cp_state.send_mode, writes;

    if (used == CRASHPATH_SEND_CLUSTER &&
        (!cp_state.clusters_usable || cp_apic_mode() != CRASHPATH_APIC_X2APIC))
        used = CRASHPATH_SEND_PER_CPU;
    if (used == CRASHPATH_SEND_ALL_BUT_SELF)
        writes = cp_apic_send_nmi_allbutself();
    else if (used == CRASHPATH_SEND_CLUSTER)
        writes = send_by_cluster(self);
    else
        writes = send_per_cpu(self);
    CP_INFO_SET32(send_used, used);
    CP_INFO_SET32(icr_writes, writes);
    return used;
}

/*
 * A multicast that some LAPIC dropped: every present CPU that has not
 * answered by now gets its own physical NMI. QEMU 10's LAPIC (TCG) truncates
 * a logical destination to 8 bits, for every CPU after it, once its loop
 * over the LAPICs meets one in xAPIC mode (a CPU the host never described,
 * still in its reset state): the NMI then misses members 8..15 and every
 * cluster but 0. A victim that was only slow takes one extra NMI, latched
 * behind the one it is handling, and parks as before.
 */
void cp_resend_to_stragglers(cp_pos_t self)
{
    uint32_t resent = 0;

    for (uint32_t i = 0; i < cp_state.nr_cpus; i++) {
        const struct cp_cpu *cpu = &cp_state.cpus[i];

        if (i != self && cpu->present && !__atomic_load_n(&cpu->answered, __ATOMIC_ACQUIRE))
            resent += cp_apic_send_nmi(cpu->apic_id);
    }
    CP_INFO_SET32(resent, resent);
    if (resent) {
        struct cp_line l = { .len = 0 };

        cp_line_str(&l, "crashpath: cluster NMI missed ");
        cp_line_dec(&l, resent);
        cp_line_str(&l, " CPUs; sent each its own");
        cp_line_emit(&l);
    }
}
