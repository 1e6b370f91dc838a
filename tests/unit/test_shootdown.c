/* SPDX-License-Identifier: BSD-2-Clause */
/* test_shootdown.c — the crasher's side of the shootdown: every CPU stopped in both APIC modes
 * and send modes, gates and their order, CET, the victims' IST slot, the quiesce hook, timeouts,
 * a crash entry refused, an exception frame recorded. */
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

TEST(shootdown_x2apic_4_cpus_crash_on_an_ap)
{
    shootdown(4, 2, CRASHPATH_APIC_X2APIC, CRASHPATH_SEND_PER_CPU);
}

TEST(shootdown_xapic_4_cpus_crash_on_the_bsp)
{
    shootdown(4, 0, CRASHPATH_APIC_XAPIC, CRASHPATH_SEND_PER_CPU);
}

TEST(shootdown_all_but_self_8_cpus)
{
    shootdown(8, 5, CRASHPATH_APIC_X2APIC, CRASHPATH_SEND_ALL_BUT_SELF);
}

TEST(shootdown_16_cpus_xapic)
{
    shootdown(16, 9, CRASHPATH_APIC_XAPIC, CRASHPATH_SEND_PER_CPU);
}

/* A host running supervisor shadow stacks and IBT (Xen's and Linux's
 * default where the CPU has CET): the crasher's IRET to itself would raise
 * #CP, so crashpath turns supervisor CET off first; victims keep theirs. */
TEST(shootdown_crasher_with_supervisor_shadow_stacks_turns_cet_off_before_enable_nmis)
{
    const uint64_t cet = 1ull << 23, sh_stk_en_endbr_en = 0x5;
    const struct sim_cpu *cc;
    uint64_t s_cet_off, cr4_off;

    setup(4, CRASHPATH_APIC_X2APIC);
    for (int i = 0; i < 4; i++) {
        sim_cpus[i].cpuid_cet = 1;
        sim_cpus[i].cr4 |= cet;
        sim_cpus[i].s_cet = sh_stk_en_endbr_en;
    }
    run_crash(4, 1);
    check_no_faults(4);
    cc = &sim_cpus[1];
    CHECK_EQ(cc->s_cet, 0);
    CHECK_EQ(cc->cr4 & cet, 0);
    /* IA32_S_CET zeroed, then CR4.CET cleared, both before the IRET to self */
    s_cet_off = first_seq(cc, OP_WRMSR, 0x6a2);
    cr4_off = first_seq(cc, OP_WRCR4, 0);
    CHECK(s_cet_off < cr4_off);
    CHECK(cr4_off < first_seq(cc, OP_ENABLE_NMIS, 0));
    for (int i = 0; i < 4; i++) {
        if (i == 1)
            continue;
        check_victim(i);
        CHECK_EQ(sim_cpus[i].s_cet, sh_stk_en_endbr_en);
        CHECK(sim_cpus[i].cr4 & cet);
    }
}

TEST(shootdown_leaves_a_never_started_cpu_alone)
{
    struct crashpath_cpu_note n;

    setup(4, CRASHPATH_APIC_X2APIC);
    H.cpus[3].flags = 0;
    H.cpus[3].idt_base = 0;
    run_crash(4, 1);
    sim_read_cpu_note(3, &n);
    CHECK_EQ(n.outcome, CRASHPATH_OUTCOME_NOT_PRESENT);
    CHECK_EQ(n.saves, 0);
    CHECK_EQ(sim_cpus[3].nmi_pending, 0);            /* no NMI was sent to it */
    CHECK_EQ(sim_gate_ist(&sim_cpus[3], 2), 2);      /* its IDT was never touched */
    check_info(1, 0);
    check_victim(0);
    check_victim(2);
    check_no_faults(4);
}

static int cpu1_parked_late(void)
{
    struct crashpath_cpu_note n;

    sim_read_cpu_note(1, &n);
    return n.outcome == CRASHPATH_OUTCOME_ANSWERED_LATE;
}

TEST(shootdown_victim_that_never_answers_times_out)
{
    struct crashpath_info_note info;
    struct crashpath_cpu_note n;
    uint64_t wall_ms, waited_ms;

    setup(4, CRASHPATH_APIC_X2APIC);
    H.cfg.timeout_ms = 300;
    sim_cpus[1].stuck_in_nmi = 1;      /* inside its own NMI handler: NMIs blocked */
    wall_ms = run_crash(4, 0);
    sim_read_cpu_note(1, &n);
    CHECK_EQ(n.outcome, CRASHPATH_OUTCOME_TIMED_OUT);
    CHECK_EQ(n.saves, 0);
    check_info(0, 1);
    sim_read_info(&info);
    CHECK_EQ(info.not_answered[0], 1u << 1);
    waited_ms = (info.tsc_wait_end - info.tsc_nmis_sent) / SIM_TSC_KHZ;
    CHECK(waited_ms >= 300);
    /* The wait ends at the timeout, not long after it. The bound is loose (a
     * loaded host), but a wait that ignored the timeout would blow it. */
    CHECK(waited_ms < 300 + 2000);
    CHECK(wall_ms < 300 + 4000);
    check_victim(2);
    check_victim(3);
    CHECK(strstr(sim_console_text, "no answer from CPU 1") != NULL);
    CHECK(strstr(sim_console_text, "2 of 3 CPUs answered") != NULL);
    check_no_faults(4);

    /* It leaves its handler late (IRET) and parks after all: its note is
     * saved and it says so. */
    sim_cpus[1].stuck_in_nmi = 0;
    sim_nmi(&sim_cpus[1]);
    CHECK(sim_wait(cpu1_parked_late, 5000));
    sim_read_cpu_note(1, &n);
    CHECK_EQ(n.saves, 1);
    CHECK(n.flags & CRASHPATH_CPUF_REGS_SAVED);
}

static _Alignas(16) uint8_t victim_tss[SIM_MAX_CPUS][104];
static _Alignas(16) uint8_t victim_nmi_stack[SIM_MAX_CPUS][CRASHPATH_NMI_STACK_MIN];

/* victim_nmi_ist: victims take the shootdown NMI on the IST slot crashpath
 * was given, so a victim whose own stack is wrecked still saves its
 * interrupted context; the crasher's gate stays IST 0 (crashpath_trap_nop returns and
 * may nest). */
TEST(shootdown_victims_take_the_nmi_on_the_ist_slot_they_were_given)
{
    setup(4, CRASHPATH_APIC_X2APIC);
    H.cfg.victim_nmi_ist = 5;
    for (int i = 0; i < 4; i++) {
        H.cpus[i].tss_base = (uint64_t)(uintptr_t)victim_tss[i];
        H.cpus[i].nmi_stack_top = (uint64_t)(uintptr_t)(victim_nmi_stack[i] + CRASHPATH_NMI_STACK_MIN);
    }
    run_crash(4, 1);
    check_no_faults(4);
    check_crasher(1);
    CHECK_EQ(sim_gate_ist(&sim_cpus[1], 2), 0);
    for (int i = 0; i < 4; i++) {
        if (i == 1)
            continue;
        CHECK_EQ(sim_gate_ist(&sim_cpus[i], 2), 5);
        CHECK_EQ(sim_cpus[i].ist_at_delivery, 5);
        CHECK_EQ(sim_gate_handler(&sim_cpus[i], 2), (uint64_t)(uintptr_t)crashpath_nmi_crash);
        CHECK_EQ(sim_gate_ist(&sim_cpus[i], 18), 0);
        CHECK_EQ(note_of(i).outcome, CRASHPATH_OUTCOME_ANSWERED);
        CHECK_EQ(note_of(i).saves, 1);
    }
}

/* CRASHPATH_NMI_IST_HOST: each victim's NMI gate keeps the IST slot the host
 * gave it (Xen switches it per context: 0 while an SVM guest's TR is loaded,
 * its NMI stack otherwise), and crashpath_init touches no TSS. */
TEST(shootdown_victims_keep_the_ist_slot_their_host_gate_names)
{
    static const unsigned int host_ist[4] = { 2, 2, 0, 3 };

    setup(4, CRASHPATH_APIC_X2APIC);
    H.cfg.victim_nmi_ist = CRASHPATH_NMI_IST_HOST;
    for (int i = 0; i < 4; i++) {
        uint64_t lo, hi;

        cp_gate_encode(0x1000u + (uint64_t)i, 0x10, host_ist[i], CP_GATE_TYPE_INTR, 0, &lo, &hi);
        memcpy(sim_cpus[i].idt + 2 * 16, &lo, 8);
        memcpy(sim_cpus[i].idt + 2 * 16 + 8, &hi, 8);
    }
    run_crash(4, 1);
    check_no_faults(4);
    check_crasher(1);
    for (int i = 0; i < 4; i++) {
        if (i == 1)
            continue;
        CHECK_EQ(sim_gate_ist(&sim_cpus[i], 2), host_ist[i]);
        CHECK_EQ(sim_cpus[i].ist_at_delivery, (int)host_ist[i]);
        CHECK_EQ(sim_gate_handler(&sim_cpus[i], 2), (uint64_t)(uintptr_t)crashpath_nmi_crash);
        CHECK_EQ(note_of(i).outcome, CRASHPATH_OUTCOME_ANSWERED);
    }
}

/* The stop hook of CPU 1 takes a machine check (RIPV set) with an NMI
 * pending: the victim, not yet done, must not IRET from it (NMIs would
 * open and a nested NMI would land on the frame it has yet to save, on
 * the IST stack); it finishes its work from the #MC and parks. */

static int quiesce_calls, quiesce_cpu = -1, quiesce_answered, quiesce_enable_nmis = -1;
static void *quiesce_arg_seen;

static void quiesce_hook(void *arg)
{
    quiesce_calls++;
    quiesce_cpu = sim_self->id;
    quiesce_arg_seen = arg;
    quiesce_answered = (int)cp_state.nr_answered;
    quiesce_enable_nmis = sim_count_ops(sim_self, OP_ENABLE_NMIS, 0xffffffffu);
}

/* The host's device quiesce: once, on the crasher, after the wait (every
 * victim answered) and before crashpath_enable_nmis, so an NMI a device raised until
 * then is absorbed by crashpath_trap_nop and not taken by the kdump kernel. */
TEST(shootdown_quiesce_hook_runs_once_on_the_crasher_after_the_wait_before_enable_nmis)
{
    struct crashpath_info_note info;

    setup(4, CRASHPATH_APIC_XAPIC);
    H.cfg.quiesce = quiesce_hook;
    H.cfg.quiesce_arg = &quiesce_calls;
    run_crash(4, 2);
    check_no_faults(4);
    CHECK_EQ(quiesce_calls, 1);
    CHECK_EQ(quiesce_cpu, 2);
    CHECK(quiesce_arg_seen == &quiesce_calls);
    CHECK_EQ(quiesce_answered, 3);
    CHECK_EQ(quiesce_enable_nmis, 0);
    CHECK_EQ(sim_count_ops(&sim_cpus[2], OP_ENABLE_NMIS, 0xffffffffu), 1);
    sim_read_info(&info);
    CHECK(info.tsc_wait_end != 0);
}

static int reentry_rc = 1;

static void console_that_crashes_again(const char *msg, size_t len)
{
    sim_console(msg, len);
    if (reentry_rc == 1)
        reentry_rc = crashpath_crash("again", NULL);
}

TEST(shootdown_crasher_reentering_gets_an_error_not_a_deadlock)
{
    setup(3, CRASHPATH_APIC_X2APIC);
    H.cfg.console = console_that_crashes_again;
    run_crash(3, 1);
    CHECK_EQ(reentry_rc, (uint64_t)(int64_t)CRASHPATH_ERR_REENTERED);
    check_crasher(1);
    check_victim(0);
    check_victim(2);
    check_no_faults(3);
}

static void cpu_unknown(struct sim_cpu *c)
{
    uint64_t rsp;

    H.crasher_rc[c->id] = th_crash("unknown", &rsp);
    __atomic_store_n(&c->halted, 1, __ATOMIC_SEQ_CST);
}

static int cpu3_done(void)
{
    return sim_cpus[3].halted;
}

TEST(shootdown_crash_on_an_unconfigured_cpu_is_refused)
{
    setup(3, CRASHPATH_APIC_X2APIC);
    sim_reset(4, CRASHPATH_APIC_X2APIC, NULL);
    CHECK_EQ(crashpath_init(&H.cfg), CRASHPATH_OK);   /* 3 of the 4 CPUs described */
    sim_start_cpu(&sim_cpus[3], cpu_unknown);
    CHECK(sim_wait(cpu3_done, 5000));
    CHECK_EQ(H.crasher_rc[3], (uint64_t)(int64_t)CRASHPATH_ERR_UNKNOWN_CPU);
    CHECK_EQ(cp_crashing_cpu, CP_NO_CPU);
}

static struct crashpath_regs exception_frame;

static void cpu_crash_with_frame(struct sim_cpu *c)
{
    uint64_t *w = &exception_frame.r15;

    for (unsigned int i = 0; i < sizeof(exception_frame) / 8; i++)
        w[i] = 0xe000000000000000ull + i;
    exception_frame.orig_rax = 0xd;       /* a #GP error code */
    while (!H.go)
        ;
    H.crasher_rc[c->id] = crashpath_crash("#GP in the host", &exception_frame);
}

TEST(shootdown_crash_with_an_exception_frame_records_that_frame)
{
    struct elf_prstatus prs;
    struct crashpath_info_note info;
    const uint64_t *w = &exception_frame.r15;

    setup(3, CRASHPATH_APIC_XAPIC);
    H.roles[1] = cpu_crash_with_frame;
    run_crash(3, 1);
    sim_read_prstatus(1, &prs);
    for (unsigned int i = 0; i < sizeof(exception_frame) / 8; i++)
        CHECK_EQ(prs.pr_reg[i], w[i]);
    sim_read_info(&info);
    CHECK(strcmp(info.reason, "#GP in the host") == 0);
    check_victim(0);
    check_victim(2);
    check_no_faults(3);
}

/* The host's stop hook faults on CPU 2; the host's fault handler panics,
 * i.e. calls crashpath_crash from inside the victim path. */
