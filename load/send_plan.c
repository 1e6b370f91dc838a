/* SPDX-License-Identifier: BSD-2-Clause */
/* send_plan.c — load time: the cluster shootdown's plan. Groups the configured CPUs by x2APIC
 * cluster once, so that at crash time the crasher only walks the plan, one ICR write for up
 * to 16 CPUs (crash/shootdown.c, send_by_cluster). */
#include "cp/hw.h"
#include "cp/internal.h"

/* The cluster's slot in the plan (kept sorted by cluster), inserted if new. */
static struct cp_cluster *cluster_slot(uint32_t cluster)
{
    uint32_t at = 0;

    while (at < cp_state.nr_clusters && cp_state.clusters[at].cluster < cluster)
        at++;
    if (at < cp_state.nr_clusters && cp_state.clusters[at].cluster == cluster)
        return &cp_state.clusters[at];
    for (uint32_t i = cp_state.nr_clusters; i > at; i--)
        cp_state.clusters[i] = cp_state.clusters[i - 1];
    cp_state.nr_clusters++;
    cp_state.clusters[at].cluster = cluster;
    cp_state.clusters[at].members = 0;
    return &cp_state.clusters[at];
}

/*
 * In x2APIC mode every CPU's logical ID is fixed by hardware: cluster
 * ID[19:4] in bits 31:16, and 1 << ID[3:0] in bits 15:0 (SDM vol. 3,
 * 11.12.10.2; the LDR is read-only). So the plan follows from the configured
 * APIC IDs alone, with no LAPIC register read.
 *
 * The plan is usable only where every CPU takes part in x2APIC mode:
 *  - the LAPIC runs x2APIC now: a CPU in xAPIC mode compares a logical
 *    destination with its LDR and DFR, not with these;
 *  - every configured CPU was started: one that never was keeps its LAPIC's
 *    reset state, xAPIC, and must get no NMI at all (under QEMU 10 such a
 *    LAPIC also spoils logical delivery to the CPUs after it: see
 *    resend_to_stragglers in crash/shootdown.c);
 *  - every configured ID is below 2^20: above, ID[19:4] no longer names one
 *    cluster, and a CPU with ID 0x100005 would answer cluster 0, bit 5 too.
 * Quadratic in the worst case (every CPU its own cluster), at load time only.
 */
void cp_plan_clusters(void)
{
    cp_state.nr_clusters = 0;
    cp_state.clusters_usable = cp_apic_mode() == CRASHPATH_APIC_X2APIC && cp_state.nr_present == cp_state.nr_cpus;
    for (uint32_t i = 0; i < cp_state.nr_cpus; i++) {
        const struct cp_cpu *cpu = &cp_state.cpus[i];

        if (cpu->apic_id >= CP_X2APIC_LOGICAL_ID_LIMIT)
            cp_state.clusters_usable = 0;
        else
            cluster_slot(cpu->apic_id >> 4)->members |= 1u << (cpu->apic_id & 15u);
    }
}
