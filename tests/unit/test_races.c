/* SPDX-License-Identifier: BSD-2-Clause */
/* test_races.c — the races: two CPUs crashing at once, a losing crasher caught by the shootdown
 * NMI before, inside and after its save, and a CPU reaching the victim path before its gates. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/procfs.h>
#include <sys/reg.h>
#include "cp/hw.h"
#include "cp/internal.h"
#include "shootdown_harness.h"
#include "testlib.h"

static int both_settled(void)
{
    return crash_done() && cp_state.nr_answered == 2;
}

TEST(shootdown_concurrent_second_crasher_becomes_a_victim)
{
    int winner, loser;
    struct crashpath_cpu_note wn, ln;
    struct elf_prstatus prs;

    setup(3, CRASHPATH_APIC_X2APIC);
    H.roles[1] = cpu_crash;
    H.roles[2] = cpu_crash;
    /* Both panic from NMI context (two NMI watchdogs firing at once), so the
     * winner's shootdown NMI stays latched on the loser: whatever the timing,
     * the loser can only park through its own crash entry. */
    sim_cpus[1].stuck_in_nmi = 1;
    sim_cpus[2].stuck_in_nmi = 1;
    CHECK_EQ(crashpath_init(&H.cfg), CRASHPATH_OK);
    for (int i = 0; i < 3; i++)
        sim_start_cpu(&sim_cpus[i], H.roles[i] ? H.roles[i] : cpu_spin);
    H.go = 1;     /* both crashers are released by one shared flag */
    while (cp_crashing_cpu == CP_NO_CPU)
        ;
    winner = (int)cp_crashing_cpu;
    loser = winner == 1 ? 2 : 1;
    H.crasher = winner;
    CHECK(sim_wait(both_settled, 20000));
    sim_read_cpu_note(winner, &wn);
    sim_read_cpu_note(loser, &ln);
    CHECK_EQ(wn.outcome, CRASHPATH_OUTCOME_CRASHER);
    CHECK_EQ(ln.outcome, CRASHPATH_OUTCOME_ANSWERED);
    CHECK(ln.flags & CRASHPATH_CPUF_LATE_CRASHER);
    /* the loser's note holds its own registers at its own call, saved once */
    sim_read_prstatus(loser, &prs);
    CHECK_EQ(prs.pr_reg[RIP], (uint64_t)(uintptr_t)th_crash_ret);
    CHECK_EQ(prs.pr_reg[RSP], H.crasher_rsp[loser]);
    check_sentinels(&prs);
    CHECK_EQ(ln.saves, 1);
    check_crasher(winner);
    check_victim(0);
    check_no_faults(3);
}

static int held_cpu;
static void (*hold_action)(struct sim_cpu *);
static volatile int go_late;

static int held_cpu_halted(void)
{
    return sim_cpus[held_cpu].halted;
}

static void hold_crasher_at_gates(struct sim_cpu *c, uint32_t kind, uint32_t reg)
{
    (void)reg;
    if (kind != OP_IDT_R || c != &sim_cpus[held_cpu] || sim_self != &sim_cpus[H.crasher])
        return;
    sim_op_hook = NULL;
    hold_action(c);
    CHECK(sim_wait(held_cpu_halted, 5000));
}

static void nmi_from_elsewhere(struct sim_cpu *c)
{
    sim_nmi(c);
}

static void release_late_crasher(struct sim_cpu *c)
{
    (void)c;
    go_late = 1;
}

static void cpu_crash_late(struct sim_cpu *c)
{
    while (!go_late)
        ;
    H.crasher_rc[c->id] = th_crash("late crash", &H.crasher_rsp[c->id]);
}

/* An SVM guest that exits on someone else's NMI (a storm) after the
 * election but before the crasher reached its IDT: the NMI held behind
 * GIF=0 comes in at leave_svm's STGI. It must come in through crashpath_nmi_crash,
 * so the CPU parks with NMIs blocked; the host's handler would IRET and
 * leave it parked with NMIs open, re-entered by the next NMI. */
TEST(shootdown_svm_guest_exiting_before_its_gate_is_rewritten_parks_with_nmis_blocked)
{
    struct crashpath_cpu_note n;
    const struct sim_cpu *c = &sim_cpus[2];

    setup(3, CRASHPATH_APIC_XAPIC);
    svm_guest(2);
    held_cpu = 2;
    hold_action = nmi_from_elsewhere;
    sim_op_hook = hold_crasher_at_gates;
    run_crash(3, 0);
    n = check_vmexit_victim(2, CRASHPATH_CPUF_SVM_LEFT);
    CHECK_EQ(c->host_nmis, 0);
    CHECK_EQ(c->nmis_taken, 1);
    CHECK_EQ(n.reentries, 0);
    CHECK_EQ(sim_gate_handler(c, 2), (uint64_t)(uintptr_t)crashpath_nmi_crash);
    CHECK_EQ(sim_gate_ist(c, 2), 0);
    CHECK(c->nmi_pending);                         /* the self-NMI, held */
    check_victim(1);
    check_no_faults(3);
}

/* CPU 1 crashes; CPU 2 calls crashpath_crash once released by go_late,
 * with hook holding both at the windows the tests choose. Returns CPU 2's note. */
static void run_late_crasher(enum crashpath_apic_mode mode, void (*hook)(struct sim_cpu *, uint32_t, uint32_t),
                             struct crashpath_cpu_note *n, struct elf_prstatus *prs)
{

    setup(3, mode);
    H.roles[2] = cpu_crash_late;
    go_late = 0;
    held_cpu = 2;
    sim_op_hook = hook;
    run_crash(3, 1);
    sim_op_hook = NULL;
    sim_read_cpu_note(2, n);
    sim_read_prstatus(2, prs);
}

/* What every late-crasher test requires of the loser (CPU 2) and the rest:
 * never in the host's NMI handler, answered once as a late crasher, its
 * caller's RIP saved once. */
static void check_late_crasher(const struct crashpath_cpu_note *n, const struct elf_prstatus *prs)
{
    CHECK_EQ(sim_cpus[2].host_nmis, 0);
    CHECK_EQ(n->outcome, CRASHPATH_OUTCOME_ANSWERED);
    CHECK(n->flags & CRASHPATH_CPUF_LATE_CRASHER);
    CHECK_EQ(n->saves, 1);
    CHECK_EQ(prs->pr_reg[RIP], (uint64_t)(uintptr_t)th_crash_ret);
    check_crasher(1);
    check_victim(0);
    check_no_faults(3);
}

/* A second panic that loses the election before the crasher reached its
 * IDT parks with NMIs open (it was not in NMI context): its own queued
 * self-NMI must come back through crashpath_nmi_crash, never the host's handler. */
TEST(shootdown_late_crasher_before_its_gate_is_rewritten_never_runs_the_host_nmi_handler)
{
    struct crashpath_cpu_note n;
    struct elf_prstatus prs;
    const struct sim_cpu *c = &sim_cpus[2];

    hold_action = release_late_crasher;
    run_late_crasher(CRASHPATH_APIC_X2APIC, hold_crasher_at_gates, &n, &prs);
    check_late_crasher(&n, &prs);
    CHECK_EQ(sim_gate_handler(c, 2), (uint64_t)(uintptr_t)crashpath_nmi_crash);
    CHECK(c->halted && c->nmi_pending);
}

/* The shootdown NMI reaching a losing crasher (NMIs open) in the middle of
 * saving its registers: the nested entry must finish that save from the
 * caller's frame, not record its own, crashpath-internal one. */
static void nmi_in_the_middle_of_the_save(struct sim_cpu *c, uint32_t kind, uint32_t reg)
{
    if (kind != OP_RDMSR || reg != MSR_FS_BASE || c != &sim_cpus[held_cpu] || sim_self != c)
        return;
    sim_op_hook = NULL;
    sim_nmi(c);                  /* taken at once: its gate is crashpath_nmi_crash already */
}

static void release_late_crasher_into_an_nmi(struct sim_cpu *c)
{
    (void)c;
    sim_op_hook = nmi_in_the_middle_of_the_save;
    go_late = 1;
}

TEST(shootdown_late_crasher_interrupted_mid_save_keeps_its_callers_registers)
{
    struct crashpath_cpu_note n;
    struct elf_prstatus prs;

    hold_action = release_late_crasher_into_an_nmi;
    run_late_crasher(CRASHPATH_APIC_XAPIC, hold_crasher_at_gates, &n, &prs);
    check_late_crasher(&n, &prs);                  /* saves 1: the cut-short pass never counted */
    CHECK_EQ(sim_cpus[2].nmis_taken, 1);           /* the NMI came in mid-save */
    CHECK_EQ(n.reentries, 0);
    CHECK_EQ(prs.pr_reg[RSP], H.crasher_rsp[2]);
    check_sentinels(&prs);
}

/* The same NMI a little earlier: the loser has just lost the election and
 * is pointing its own gates, nothing of cp_victim has run yet. The caller's
 * registers must already be published then. */
static volatile int crasher_held, loser_at_own_gates;

static int loser_reached_its_gates(void)
{
    return loser_at_own_gates;
}

/* Both sides in one hook: the crasher is held at the loser's IDT until the
 * loser, released, stands at its own; then the loser waits for the NMI. */
static void loser_waits_for_the_nmi_at_its_own_gates(struct sim_cpu *c, uint32_t kind, uint32_t reg)
{
    uint64_t t0 = sim_now_ns();

    (void)reg;
    if (kind != OP_IDT_R || c != &sim_cpus[2])
        return;
    if (sim_self == &sim_cpus[H.crasher] && !crasher_held) {
        crasher_held = 1;
        go_late = 1;
        CHECK(sim_wait(loser_reached_its_gates, 5000));
    } else if (sim_self == c && !loser_at_own_gates) {
        loser_at_own_gates = 1;  /* the crasher goes on and sends the NMI */
        while (!c->nmis_taken && sim_now_ns() - t0 < 5000000000ull)
            ;
    }
}

TEST(shootdown_late_crasher_interrupted_before_cp_victim_keeps_its_callers_registers)
{
    struct crashpath_cpu_note n;
    struct elf_prstatus prs;

    crasher_held = 0;
    loser_at_own_gates = 0;
    run_late_crasher(CRASHPATH_APIC_X2APIC, loser_waits_for_the_nmi_at_its_own_gates, &n, &prs);
    check_late_crasher(&n, &prs);
    CHECK_EQ(sim_cpus[2].nmis_taken, 1);
    CHECK_EQ(prs.pr_reg[RSP], H.crasher_rsp[2]);
    check_sentinels(&prs);
}
