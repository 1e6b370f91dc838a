/* test_shootdown.c — the shootdown under real concurrency: host threads act as CPUs, signals
 * act as NMIs through each CPU's simulated IDT, and the notes are checked afterwards. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/procfs.h>
#include <sys/reg.h>
#include "cp/hw.h"
#include "cp/internal.h"
#include "sim.h"
#include "testlib.h"

static struct crashpath_config cfg;
static struct crashpath_cpu cpus[SIM_MAX_CPUS];
static volatile int go, never;
static int crasher_rc[SIM_MAX_CPUS];
static uint64_t crasher_rsp[SIM_MAX_CPUS];
static int the_crasher;

/* ---- what the CPUs do ---- */

static void cpu_spin(struct sim_cpu *c)
{
    (void)c;
    th_spin(&never);
}

static void cpu_crash(struct sim_cpu *c)
{
    while (!go)
        ;
    crasher_rc[c->id] = th_crash("test crash", &crasher_rsp[c->id]);
}

/* A CPU running a guest: the NMI arrives as a VM exit, and the exit
 * handler calls crashpath_nmi_vmexit. */
static void cpu_guest(struct sim_cpu *c)
{
    c->in_guest = 1;
    while (!c->vmexit_pending)
        ;
    crasher_rc[c->id] = th_vmexit();
    for (;;)
        ;     /* crashpath_nmi_vmexit returned: the test sees the rc */
}

/* A CPU running an SVM guest with NMIs intercepted. */
static void cpu_svm_guest(struct sim_cpu *c)
{
    c->svm_guest = 1;
    cpu_guest(c);
}

/* Enters the real nmi_crash stub with a fabricated IRET frame, as the CPU
 * does when the NMI gate has IST 0. */
static void cpu_fake_nmi(struct sim_cpu *c)
{
    c->stuck_in_nmi = 1;     /* only the fabricated NMI gets in */
    while (sim_gate_handler(c, 2) != (uint64_t)(uintptr_t)nmi_crash)
        ;
    th_fake_nmi(0xffffffff80abcdefull, 0xffffc90000123450ull, 0x46);
}

/* ---- running one crash ---- */

static int crash_done(void)
{
    return sim_cpus[the_crasher].halted && strstr(sim_console_text, "no kdump image loaded");
}

static void setup(int n, enum crashpath_apic_mode mode)
{
    sim_reset(n, mode, NULL);
    sim_config(&cfg, cpus, n);
    go = 0;
}

/* Start every configured CPU (roles[i] or spinning), release the crasher and
 * wait for it to halt after the hand-off. Returns the wall time in ms. */
static uint64_t run_crash(int n, int crasher, void (*roles[])(struct sim_cpu *))
{
    uint64_t t0;

    CHECK_EQ(crashpath_init(&cfg), CRASHPATH_OK);
    the_crasher = crasher;
    for (int i = 0; i < n; i++) {
        if (!(cpus[i].flags & CRASHPATH_CPU_PRESENT))
            continue;
        sim_start_cpu(&sim_cpus[i], roles && roles[i] ? roles[i] : i == crasher ? cpu_crash : cpu_spin);
    }
    t0 = sim_now_ns();
    go = 1;
    CHECK(sim_wait(crash_done, 20000));
    return (sim_now_ns() - t0) / 1000000u;
}

static void check_no_faults(int n)
{
    for (int i = 0; i < n; i++)
        if (sim_cpus[i].faults)
            tl_fail(__FILE__, __LINE__, sim_cpus[i].fault);
}

static int rip_in_spin(uint64_t rip)
{
    return rip >= (uint64_t)(uintptr_t)th_spin_loop && rip < (uint64_t)(uintptr_t)th_spin_loop + 16;
}

static void check_sentinels(const struct elf_prstatus *prs)
{
    CHECK_EQ(prs->pr_reg[R12], S_R12);
    CHECK_EQ(prs->pr_reg[R13], S_R13);
    CHECK_EQ(prs->pr_reg[R14], S_R14);
    CHECK_EQ(prs->pr_reg[R15], S_R15);
}

static void check_crasher(int i)
{
    struct elf_prstatus prs;
    struct crashpath_cpu_note n;

    sim_read_prstatus(i, &prs);
    sim_read_cpu_note(i, &n);
    CHECK_EQ(n.outcome, CRASHPATH_OUTCOME_CRASHER);
    CHECK_EQ(n.saves, 1);
    /* the caller's registers: RIP is the return address, RSP as after RET */
    CHECK_EQ(prs.pr_reg[RIP], (uint64_t)(uintptr_t)th_crash_ret);
    CHECK_EQ(prs.pr_reg[RSP], crasher_rsp[i]);
    check_sentinels(&prs);
    CHECK_EQ(sim_gate_handler(&sim_cpus[i], 2), (uint64_t)(uintptr_t)trap_nop);
}

static void check_victim(int i)
{
    struct elf_prstatus prs;
    struct crashpath_cpu_note n;

    sim_read_prstatus(i, &prs);
    sim_read_cpu_note(i, &n);
    CHECK_EQ(n.outcome, CRASHPATH_OUTCOME_ANSWERED);
    CHECK_EQ(n.saves, 1);
    CHECK(n.flags & CRASHPATH_CPUF_REGS_SAVED);
    CHECK(n.flags & CRASHPATH_CPUF_LAPIC_QUIET);
    CHECK(n.answer_tsc != 0);
    CHECK_EQ(prs.pr_pid, (uint32_t)i + 1);
    check_sentinels(&prs);
    CHECK(rip_in_spin(prs.pr_reg[RIP]));     /* the interrupted code, not the handler */
    CHECK_EQ(sim_gate_handler(&sim_cpus[i], 2), (uint64_t)(uintptr_t)nmi_crash);
    CHECK_EQ(sim_cpus[i].ist_at_delivery, 0);  /* the IST was gone before the NMI came */
    CHECK(sim_cpus[i].halted);
    CHECK(sim_cpus[i].nmi_pending);            /* the self-NMI is queued */
    CHECK(!(sim_cpus[i].lapic[0xf0 >> 4] & 0x100));  /* software-disabled */
}

/* Gates every present CPU must end with: NMI and #MC IST 0, #MC at
 * mce_crash, #DF untouched. */
static void check_gates(int n)
{
    for (int i = 0; i < n; i++) {
        if (!(cpus[i].flags & CRASHPATH_CPU_PRESENT))
            continue;
        CHECK_EQ(sim_gate_ist(&sim_cpus[i], 2), 0);
        CHECK_EQ(sim_gate_ist(&sim_cpus[i], 18), 0);
        CHECK_EQ(sim_gate_handler(&sim_cpus[i], 18), (uint64_t)(uintptr_t)mce_crash);
        CHECK_EQ(sim_gate_ist(&sim_cpus[i], 8), 3);
        CHECK_EQ(sim_gate_handler(&sim_cpus[i], 8), 0xffffffff81000000ull + 8 * 0x40);
    }
}

static uint64_t first_seq(const struct sim_cpu *c, uint32_t kind, uint32_t reg)
{
    for (int i = 0; i < c->nlog && i < SIM_LOG_MAX; i++)
        if (c->log[i].kind == kind && (reg == 0xffffffffu || c->log[i].reg == reg))
            return c->log[i].seq;
    return ~0ull;
}

static uint64_t last_seq(const struct sim_cpu *c, uint32_t kind, uint32_t reg)
{
    uint64_t s = 0;

    for (int i = 0; i < c->nlog && i < SIM_LOG_MAX; i++)
        if (c->log[i].kind == kind && (reg == 0xffffffffu || c->log[i].reg == reg))
            s = c->log[i].seq;
    return s;
}

/* Every NMI-gate rewrite happened before the first NMI left the crasher, with
 * a fence between; #MC went to mce_crash before enable_nmis. */
static void check_order(int n, int crasher, enum crashpath_apic_mode mode)
{
    const struct sim_cpu *cc = &sim_cpus[crasher];
    uint64_t first_send = mode == CRASHPATH_APIC_X2APIC ? first_seq(cc, OP_WRMSR, 0x830)
                                                        : first_seq(cc, OP_MMIO_W, 0x300);
    uint64_t last_gate = 0, last_mc = 0;

    for (int i = 0; i < n; i++) {
        uint64_t s = last_seq(&sim_cpus[i], OP_IDT_W8, 2);

        if (last_seq(&sim_cpus[i], OP_IDT_CX16, 2) > s)
            s = last_seq(&sim_cpus[i], OP_IDT_CX16, 2);
        if (s > last_gate)
            last_gate = s;
        s = last_seq(&sim_cpus[i], OP_IDT_CX16, 18);
        if (last_seq(&sim_cpus[i], OP_IDT_W8, 18) > s)
            s = last_seq(&sim_cpus[i], OP_IDT_W8, 18);
        if (s > last_mc)
            last_mc = s;
    }
    /* each present CPU's #MC IST went before the first NMI: an #MC during
     * the wait must not reuse a live IST stack */
    for (int i = 0; i < n; i++) {
        const struct sim_cpu *c = &sim_cpus[i];
        int early = 0;

        if (!(cpus[i].flags & CRASHPATH_CPU_PRESENT))
            continue;
        for (int k = 0; k < c->nlog && k < SIM_LOG_MAX; k++)
            if ((c->log[k].kind == OP_IDT_W8 || c->log[k].kind == OP_IDT_CX16) && c->log[k].reg == 18 &&
                c->log[k].seq < first_send && !(c->log[k].value & (7ull << 32)))
                early = 1;
        CHECK(early);
    }
    CHECK(last_gate != 0 && first_send != ~0ull);
    CHECK(last_gate < first_send);
    CHECK(last_seq(cc, OP_MFENCE, 0) > 0 && first_seq(cc, OP_MFENCE, 0) < first_send);
    CHECK(last_mc < first_seq(cc, OP_ENABLE_NMIS, 0));
}

static void check_info(int crasher, uint32_t not_answered)
{
    struct crashpath_info_note info;

    sim_read_info(&info);
    CHECK_EQ(info.crashing_cpu, (uint32_t)crasher);
    CHECK_EQ(info.crashing_apic_id, sim_cpus[crasher].apic_id);
    CHECK_EQ(info.nr_not_answered, not_answered);
    CHECK(strcmp(info.reason, "test crash") == 0);
    CHECK(info.tsc_crash_entry != 0);
    CHECK(info.tsc_crash_entry <= info.tsc_nmis_sent);
    CHECK(info.tsc_nmis_sent <= info.tsc_wait_end);
}

static void shootdown(int n, int crasher, enum crashpath_apic_mode mode, uint32_t send_mode)
{
    setup(n, mode);
    cfg.send_mode = send_mode;
    run_crash(n, crasher, NULL);
    for (int i = 0; i < n; i++) {
        if (i == crasher)
            check_crasher(i);
        else
            check_victim(i);
    }
    check_gates(n);
    check_order(n, crasher, mode);
    check_info(crasher, 0);
    CHECK_EQ(cp_state.nr_answered, (uint32_t)n - 1);
    CHECK_EQ(crasher_rc[crasher], 0);      /* it never returned */
    if (send_mode == CRASHPATH_SEND_PER_CPU)
        CHECK_EQ(sim_count_ops(&sim_cpus[crasher], mode == CRASHPATH_APIC_X2APIC ? OP_WRMSR : OP_MMIO_W,
                               mode == CRASHPATH_APIC_X2APIC ? 0x830 : 0x300),
                 n - 1);
    CHECK(strstr(sim_console_text, "crashing: test crash") != NULL);
    check_no_faults(n);
}

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
    run_crash(4, 1, NULL);
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
    cpus[3].flags = 0;
    cpus[3].idt_base = 0;
    run_crash(4, 1, NULL);
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

static int both_settled(void)
{
    return crash_done() && cp_state.nr_answered == 2;
}

TEST(shootdown_concurrent_second_crasher_becomes_a_victim)
{
    void (*roles[SIM_MAX_CPUS])(struct sim_cpu *) = { 0 };
    int winner, loser;
    struct crashpath_cpu_note wn, ln;
    struct elf_prstatus prs;

    setup(3, CRASHPATH_APIC_X2APIC);
    roles[1] = cpu_crash;
    roles[2] = cpu_crash;
    /* Both panic from NMI context (two NMI watchdogs firing at once), so the
     * winner's shootdown NMI stays latched on the loser: whatever the timing,
     * the loser can only park through its own crash entry. */
    sim_cpus[1].stuck_in_nmi = 1;
    sim_cpus[2].stuck_in_nmi = 1;
    CHECK_EQ(crashpath_init(&cfg), CRASHPATH_OK);
    for (int i = 0; i < 3; i++)
        sim_start_cpu(&sim_cpus[i], roles[i] ? roles[i] : cpu_spin);
    go = 1;     /* both crashers are released by one shared flag */
    while (cp_crashing_cpu == CP_NO_CPU)
        ;
    winner = (int)cp_crashing_cpu;
    loser = winner == 1 ? 2 : 1;
    the_crasher = winner;
    CHECK(sim_wait(both_settled, 20000));
    sim_read_cpu_note(winner, &wn);
    sim_read_cpu_note(loser, &ln);
    CHECK_EQ(wn.outcome, CRASHPATH_OUTCOME_CRASHER);
    CHECK_EQ(ln.outcome, CRASHPATH_OUTCOME_ANSWERED);
    CHECK(ln.flags & CRASHPATH_CPUF_LATE_CRASHER);
    /* the loser's note holds its own registers at its own call, saved once */
    sim_read_prstatus(loser, &prs);
    CHECK_EQ(prs.pr_reg[RIP], (uint64_t)(uintptr_t)th_crash_ret);
    CHECK_EQ(prs.pr_reg[RSP], crasher_rsp[loser]);
    check_sentinels(&prs);
    CHECK_EQ(ln.saves, 1);
    check_crasher(winner);
    check_victim(0);
    check_no_faults(3);
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
    cfg.timeout_ms = 300;
    sim_cpus[1].stuck_in_nmi = 1;      /* inside its own NMI handler: NMIs blocked */
    wall_ms = run_crash(4, 0, NULL);
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

static struct crashpath_cpu_note note_of(int cpu)
{
    struct crashpath_cpu_note n;

    sim_read_cpu_note(cpu, &n);
    return n;
}

static int cpu2_took_one_mce(void) { return note_of(2).machine_checks == 1 && sim_cpus[2].halted; }
static int cpu2_took_two_mces(void) { return note_of(2).machine_checks == 2 && sim_cpus[2].halted; }

/* Two machine checks into one parked victim: the first must leave MCIP
 * clear, or the second shuts the CPU down (a reset on real platforms). Each
 * IRET lets the queued self-NMI in, which parks the CPU again. */
TEST(shootdown_two_machine_checks_into_a_parked_victim_are_survived)
{
    struct crashpath_cpu_note n;

    setup(4, CRASHPATH_APIC_X2APIC);
    run_crash(4, 1, NULL);
    sim_mce(&sim_cpus[2], 1);
    CHECK(sim_wait(cpu2_took_one_mce, 5000));
    sim_mce(&sim_cpus[2], 1);
    CHECK(sim_wait(cpu2_took_two_mces, 5000));
    check_no_faults(4);
    n = note_of(2);
    CHECK_EQ(n.machine_checks, 2);
    CHECK_EQ(n.reentries, 2);
    CHECK_EQ(n.saves, 1);
    CHECK_EQ(sim_cpus[2].mcg_status, 0);
    check_victim(2);
}

static volatile int mce_ripv_for_crasher;

/* Raises a machine check at CPU 0 once it printed its crash line, i.e.
 * while it waits for the stuck CPU 1. */
static void *mce_into_waiting_crasher(void *arg)
{
    (void)arg;
    while (!strstr(sim_console_text, "crashing"))
        sched_yield();
    sim_mce(&sim_cpus[0], mce_ripv_for_crasher);
    return NULL;
}

static int crasher_halted_after_mce(void)
{
    return sim_cpus[0].mces_taken && sim_cpus[0].halted;
}

static void machine_check_during_the_wait(int ripv)
{
    pthread_t t;

    setup(4, CRASHPATH_APIC_XAPIC);
    cfg.timeout_ms = 400;
    sim_cpus[1].stuck_in_nmi = 1;      /* the crasher waits the whole timeout */
    mce_ripv_for_crasher = ripv;
    pthread_create(&t, NULL, mce_into_waiting_crasher, NULL);
    CHECK_EQ(crashpath_init(&cfg), CRASHPATH_OK);
    the_crasher = 0;
    for (int i = 0; i < 4; i++)
        sim_start_cpu(&sim_cpus[i], i == 0 ? cpu_crash : cpu_spin);
    go = 1;
    CHECK(sim_wait(ripv ? crash_done : crasher_halted_after_mce, 20000));
    pthread_join(t, NULL);
}

/* A machine check on the crasher while it waits: absorbed by mce_crash
 * (MCIP cleared, IRET), and the crash goes on to the hand-off. Through the
 * host's own handler it would have re-entered crashpath and been lost. */
TEST(shootdown_machine_check_on_the_crasher_during_the_wait_is_absorbed)
{
    machine_check_during_the_wait(1);
    check_no_faults(4);
    CHECK_EQ(sim_cpus[0].mces_taken, 1);
    CHECK_EQ(sim_cpus[0].mcg_status, 0);
    CHECK_EQ(note_of(0).machine_checks, 1);
    CHECK_EQ(note_of(0).outcome, CRASHPATH_OUTCOME_CRASHER);
    CHECK_EQ(note_of(1).outcome, CRASHPATH_OUTCOME_TIMED_OUT);
    check_victim(2);
    check_victim(3);
}

/* RIPV clear: the crasher's interrupted context cannot go on, so it says so
 * and halts rather than return into it. */
TEST(shootdown_machine_check_without_ripv_on_the_crasher_halts_with_a_message)
{
    machine_check_during_the_wait(0);
    check_no_faults(4);
    CHECK(strstr(sim_console_text, "RIPV clear; halting") != NULL);
    CHECK(strstr(sim_console_text, "no kdump image loaded") == NULL);
}

static int hook_calls[SIM_MAX_CPUS];
static uint32_t hook_index[SIM_MAX_CPUS];
static void *hook_arg_seen[SIM_MAX_CPUS];
static int hook_arg;

/* The host's stop hook. On CPU 1 it plays an #MC whose handler IRETs while
 * an NMI is pending: NMIs unblock and the victim path is re-entered in the
 * middle of its work. */
static void stop_hook(uint32_t index, void *arg)
{
    int id = sim_self->id;

    hook_calls[id]++;
    hook_index[id] = index;
    hook_arg_seen[id] = arg;
    if (id == 1) {
        sim_nmi(sim_self);
        sim_iret();
    }
}

static int cpu2_back(void)
{
    return sim_cpus[2].nmis_taken == 2 && sim_cpus[2].nmi_blocked && sim_cpus[2].nmi_pending;
}

TEST(shootdown_victim_reentered_part_way_keeps_its_registers_answers_once)
{
    struct crashpath_cpu_note n;

    setup(4, CRASHPATH_APIC_XAPIC);
    cfg.stop_cpu = stop_hook;
    cfg.stop_cpu_arg = &hook_arg;
    run_crash(4, 3, NULL);
    sim_read_cpu_note(1, &n);
    CHECK_EQ(n.saves, 1);                          /* the nested entry kept the interrupted registers */
    CHECK_EQ(n.reentries, 0);                      /* it came before CPU 1 had parked */
    check_victim(1);
    CHECK_EQ(n.outcome, CRASHPATH_OUTCOME_ANSWERED);
    CHECK(n.flags & CRASHPATH_CPUF_HOOK_CALLED);
    CHECK(!(n.flags & CRASHPATH_CPUF_HOOK_DONE));  /* the re-entry never went back */
    CHECK(n.flags & CRASHPATH_CPUF_LAPIC_QUIET);
    CHECK_EQ(sim_cpus[1].nmis_taken, 2);
    CHECK_EQ(cp_state.nr_answered, 3);             /* answered exactly once each */
    check_info(3, 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(hook_calls[i], 1);                /* the hook runs at most once */
        CHECK_EQ(hook_index[i], (uint32_t)i);
        CHECK(hook_arg_seen[i] == &hook_arg);
    }
    CHECK_EQ(hook_calls[3], 0);                    /* not on the crasher */

    /* Something unblocks NMIs on parked CPU 2 (an #MC handler's IRET): the
     * self-NMI it queued brings it straight back to nmi_crash, where it
     * neither saves nor answers again, and parks with a new self-NMI. */
    sim_unlatch(&sim_cpus[2]);
    CHECK(sim_wait(cpu2_back, 5000));
    sim_read_cpu_note(2, &n);
    CHECK_EQ(n.saves, 1);
    CHECK_EQ(n.reentries, 1);                      /* the dump shows it came back once */
    CHECK_EQ(cp_state.nr_answered, 3);
    CHECK(sim_cpus[2].nmi_pending);
    check_victim(0);
    check_victim(2);
    check_no_faults(4);
}

TEST(shootdown_victim_in_a_vmx_guest_parks_through_the_vmexit_hook)
{
    void (*roles[SIM_MAX_CPUS])(struct sim_cpu *) = { 0 };
    struct crashpath_cpu_note n;
    struct elf_prstatus prs;
    const struct sim_cpu *c = &sim_cpus[1];
    uint64_t clear1 = 0, clear2 = 0, off = 0;

    setup(3, CRASHPATH_APIC_X2APIC);
    roles[1] = cpu_guest;
    sim_cpus[1].cr4 |= CR4_VMXE;
    sim_cpus[1].in_vmx = 1;
    sim_cpus[1].vmx.vmxon = 1;
    sim_cpus[1].vmcs_slots[0] = 0x5000;
    sim_cpus[1].vmcs_slots[2] = 0x7000;
    run_crash(3, 0, roles);
    sim_read_cpu_note(1, &n);
    sim_read_prstatus(1, &prs);
    CHECK_EQ(n.outcome, CRASHPATH_OUTCOME_ANSWERED);
    CHECK(n.flags & CRASHPATH_CPUF_VIA_VMEXIT);
    CHECK(n.flags & CRASHPATH_CPUF_VMX_LEFT);
    CHECK_EQ(prs.pr_reg[RIP], (uint64_t)(uintptr_t)th_vmexit_ret);
    check_sentinels(&prs);
    CHECK_EQ(crasher_rc[1], 0);       /* it never returned */
    CHECK_EQ(sim_cpus[1].nmis_taken, 0);
    /* VMCLEAR of each registered VMCS, then VMXOFF */
    for (int i = 0; i < c->nlog; i++) {
        if (c->log[i].kind == OP_VMCLEAR && c->log[i].value == 0x5000)
            clear1 = c->log[i].seq;
        if (c->log[i].kind == OP_VMCLEAR && c->log[i].value == 0x7000)
            clear2 = c->log[i].seq;
        if (c->log[i].kind == OP_VMXOFF)
            off = c->log[i].seq;
    }
    CHECK(clear1 && clear2 && off > clear1 && off > clear2);
    CHECK_EQ(sim_count_ops(c, OP_VMCLEAR, 0xffffffffu), 2);
    check_victim(2);
    check_no_faults(3);
}

TEST(shootdown_svm_victim_leaves_svm)
{
    struct crashpath_cpu_note n;
    const struct sim_cpu *c = &sim_cpus[1];

    setup(3, CRASHPATH_APIC_X2APIC);
    sim_cpus[1].efer |= EFER_SVME;
    sim_cpus[1].hsave_pa = 0x1234000;
    run_crash(3, 0, NULL);
    sim_read_cpu_note(1, &n);
    CHECK(n.flags & CRASHPATH_CPUF_SVM_LEFT);
    CHECK(n.efer & EFER_SVME);                     /* recorded before shutdown */
    CHECK(!(c->efer & EFER_SVME));
    CHECK_EQ(c->hsave_pa, 0);
    CHECK(first_seq(c, OP_STGI, 0) < first_seq(c, OP_WRMSR, MSR_EFER));
    /* no SVM, no SVM work: VM_HSAVE_PA would #GP on a CPU without it */
    CHECK_EQ(sim_count_ops(&sim_cpus[2], OP_WRMSR, MSR_VM_HSAVE_PA), 0);
    CHECK_EQ(sim_count_ops(&sim_cpus[2], OP_STGI, 0xffffffffu), 0);
    check_victim(1);
    check_no_faults(3);
}

/* Under SVM the intercepted NMI stays pending behind GIF=0 and arrives
 * through nmi_crash at leave_svm's STGI, in the middle of the victim path:
 * that nested entry must keep the VM-exit handler's registers and finish. */
TEST(shootdown_svm_guest_victim_parks_at_stgi_keeping_the_vmexit_registers)
{
    void (*roles[SIM_MAX_CPUS])(struct sim_cpu *) = { 0 };
    struct crashpath_cpu_note n;
    struct elf_prstatus prs;
    const struct sim_cpu *c = &sim_cpus[2];

    setup(3, CRASHPATH_APIC_XAPIC);
    roles[2] = cpu_svm_guest;
    sim_cpus[2].efer |= EFER_SVME;
    sim_cpus[2].hsave_pa = 0x2345000;
    run_crash(3, 0, roles);
    sim_read_cpu_note(2, &n);
    sim_read_prstatus(2, &prs);
    CHECK_EQ(n.outcome, CRASHPATH_OUTCOME_ANSWERED);
    CHECK(n.flags & CRASHPATH_CPUF_VIA_VMEXIT);
    CHECK(n.flags & CRASHPATH_CPUF_SVM_LEFT);
    CHECK_EQ(c->nmis_taken, 1);                    /* the held NMI came in at STGI */
    CHECK_EQ(n.saves, 1);
    CHECK_EQ(n.reentries, 0);
    CHECK_EQ(prs.pr_reg[RIP], (uint64_t)(uintptr_t)th_vmexit_ret);
    check_sentinels(&prs);
    CHECK(!(c->efer & EFER_SVME));
    CHECK_EQ(c->hsave_pa, 0);
    CHECK_EQ(cp_state.nr_answered, 2);
    check_victim(1);
    check_no_faults(3);
}

/* Holding the crasher after the election, before it rewrites one CPU's
 * gates: at its first look at that CPU's IDT, hold_action runs first. This
 * is the window a CPU entering crashpath by another door than nmi_crash
 * can fall into (a storm NMI's VM exit, a second panic). */
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
    if (kind != OP_IDT_R || c != &sim_cpus[held_cpu] || sim_self != &sim_cpus[the_crasher])
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
    crasher_rc[c->id] = th_crash("late crash", &crasher_rsp[c->id]);
}

/* An SVM guest that exits on someone else's NMI (a storm) after the
 * election but before the crasher reached its IDT: the NMI held behind
 * GIF=0 comes in at leave_svm's STGI. It must come in through nmi_crash,
 * so the CPU parks with NMIs blocked; the host's handler would IRET and
 * leave it parked with NMIs open, re-entered by the next NMI. */
TEST(shootdown_svm_guest_exiting_before_its_gate_is_rewritten_parks_with_nmis_blocked)
{
    void (*roles[SIM_MAX_CPUS])(struct sim_cpu *) = { 0 };
    struct crashpath_cpu_note n;
    struct elf_prstatus prs;
    const struct sim_cpu *c = &sim_cpus[2];

    setup(3, CRASHPATH_APIC_XAPIC);
    roles[2] = cpu_svm_guest;
    sim_cpus[2].efer |= EFER_SVME;
    held_cpu = 2;
    hold_action = nmi_from_elsewhere;
    sim_op_hook = hold_crasher_at_gates;
    run_crash(3, 0, roles);
    sim_read_cpu_note(2, &n);
    sim_read_prstatus(2, &prs);
    CHECK_EQ(c->host_nmis, 0);
    CHECK_EQ(c->nmis_taken, 1);
    CHECK_EQ(n.reentries, 0);
    CHECK_EQ(n.saves, 1);
    CHECK(n.flags & CRASHPATH_CPUF_VIA_VMEXIT);
    CHECK_EQ(prs.pr_reg[RIP], (uint64_t)(uintptr_t)th_vmexit_ret);
    CHECK_EQ(sim_gate_handler(c, 2), (uint64_t)(uintptr_t)nmi_crash);
    CHECK_EQ(sim_gate_ist(c, 2), 0);
    CHECK_EQ(n.outcome, CRASHPATH_OUTCOME_ANSWERED);
    CHECK(n.flags & CRASHPATH_CPUF_SVM_LEFT);
    CHECK(c->nmi_pending);                         /* the self-NMI, held */
    check_sentinels(&prs);
    check_victim(1);
    check_no_faults(3);
}

/* CPU 1 crashes; CPU 2 calls crashpath_crash once released by go_late,
 * with hook steering both (the tests' windows). Returns CPU 2's note. */
static void run_late_crasher(enum crashpath_apic_mode mode, void (*hook)(struct sim_cpu *, uint32_t, uint32_t),
                             struct crashpath_cpu_note *n, struct elf_prstatus *prs)
{
    void (*roles[SIM_MAX_CPUS])(struct sim_cpu *) = { 0 };

    setup(3, mode);
    roles[2] = cpu_crash_late;
    go_late = 0;
    held_cpu = 2;
    sim_op_hook = hook;
    run_crash(3, 1, roles);
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
 * self-NMI must come back through nmi_crash, never the host's handler. */
TEST(shootdown_late_crasher_before_its_gate_is_rewritten_never_runs_the_host_nmi_handler)
{
    struct crashpath_cpu_note n;
    struct elf_prstatus prs;
    const struct sim_cpu *c = &sim_cpus[2];

    hold_action = release_late_crasher;
    run_late_crasher(CRASHPATH_APIC_X2APIC, hold_crasher_at_gates, &n, &prs);
    check_late_crasher(&n, &prs);
    CHECK_EQ(sim_gate_handler(c, 2), (uint64_t)(uintptr_t)nmi_crash);
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
    sim_nmi(c);                  /* taken at once: its gate is nmi_crash already */
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
    CHECK_EQ(prs.pr_reg[RSP], crasher_rsp[2]);
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
    if (sim_self == &sim_cpus[the_crasher] && !crasher_held) {
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
    CHECK_EQ(prs.pr_reg[RSP], crasher_rsp[2]);
    check_sentinels(&prs);
}

TEST(shootdown_vmx_without_host_state_is_reported_not_guessed)
{
    struct crashpath_cpu_note n;

    setup(3, CRASHPATH_APIC_X2APIC);
    sim_cpus[2].cr4 |= CR4_VMXE;
    cpus[2].vmx = NULL;
    run_crash(3, 0, NULL);
    sim_read_cpu_note(2, &n);
    CHECK(n.flags & CRASHPATH_CPUF_VMX_UNKNOWN);
    CHECK(!(n.flags & CRASHPATH_CPUF_VMX_LEFT));
    CHECK_EQ(sim_count_ops(&sim_cpus[2], OP_VMXOFF, 0xffffffffu), 0);
    check_victim(2);
    check_no_faults(3);
}

/* A stale vmxon record: the host says VMX is on, the CPU is not in VMX
 * operation, so VMCLEAR raises #UD on every try and the host's handler
 * panics back into crashpath each time. The VMX step is skipped after its
 * first fault, the rest of the path runs, and the CPU parks. */
TEST(shootdown_victim_fault_that_recurs_on_every_try_parks_after_one_faulted_entry)
{
    struct crashpath_cpu_note n;

    setup(3, CRASHPATH_APIC_X2APIC);
    sim_cpus[2].cr4 |= CR4_VMXE;
    sim_cpus[2].vmx.vmxon = 1;         /* stale: in_vmx is 0 */
    sim_cpus[2].vmcs_slots[0] = 0x7654000;
    sim_cpus[2].ud_panics = 1;
    run_crash(3, 0, NULL);
    check_no_faults(3);
    n = note_of(2);
    CHECK_EQ(sim_cpus[2].vmx_ud_count, 1);
    CHECK(n.flags & CRASHPATH_CPUF_FAULTED);
    CHECK_EQ(n.faulted_steps, CRASHPATH_STEP_VMX);
    CHECK(!(n.flags & CRASHPATH_CPUF_VMX_LEFT));
    CHECK_EQ(n.reentries, 0);
    check_victim(2);                   /* interrupted registers, answered, LAPIC quiet, parked */
    check_victim(1);
    CHECK_EQ(cp_state.cpus[2].faulted_entries, 1);
}

/* A fault the steps do not cover: the host mapped CPU 2's note buffer
 * read-only after crashpath_init, so every write to it faults, the FAULTED
 * entries included, and the host's #PF handler panics into crashpath_crash
 * each time. The bound ends it: after CP_MAX_FAULTED_ENTRIES the CPU halts
 * touching nothing; without it the recursion overflows the stack. */
static uint8_t *readonly_notes;

static void notes_fault(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    if (sim_self != &sim_cpus[2] || (uint8_t *)si->si_addr < readonly_notes ||
        (uint8_t *)si->si_addr >= readonly_notes + 4096)
        abort();
    crashpath_crash("#PF", NULL);
    abort();
}

static int cpu2_halted(void)
{
    return sim_cpus[2].halted;
}

TEST(shootdown_victim_faulting_outside_any_step_halts_after_a_bounded_number_of_entries)
{
    struct sigaction sa;

    setup(3, CRASHPATH_APIC_X2APIC);
    cfg.timeout_ms = 2000;
    readonly_notes = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cpus[2].notes = readonly_notes;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = notes_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    CHECK_EQ(crashpath_init(&cfg), CRASHPATH_OK);
    mprotect(readonly_notes, 4096, PROT_READ);
    the_crasher = 0;
    for (int i = 0; i < 3; i++)
        sim_start_cpu(&sim_cpus[i], i == 0 ? cpu_crash : cpu_spin);
    go = 1;
    CHECK(sim_wait(cpu2_halted, 5000));
    mprotect(readonly_notes, 4096, PROT_READ | PROT_WRITE);   /* for the crasher's bookkeeping */
    CHECK(sim_wait(crash_done, 10000));
    CHECK_EQ(cp_state.cpus[2].faulted_entries, CP_MAX_FAULTED_ENTRIES + 1);
    CHECK_EQ(cp_state.cpus[2].answered, 0);
    check_victim(1);
}

/* The crasher's hand-off clears CR4.VMXE: in VMX operation a #GP, and with
 * the IDT unmapped a triple fault. With no VMX record (or a stale one) the
 * crasher VMXOFFs blind, its #UD gate borrowed for the attempt. */
static void crasher_with_unrecorded_vmx(int in_vmx, int stale_record)
{
    uint64_t lo0, hi0, lo, hi;

    setup(3, CRASHPATH_APIC_X2APIC);
    sim_cpus[1].cr4 |= CR4_VMXE;
    sim_cpus[1].in_vmx = in_vmx;
    if (!stale_record)
        cpus[1].vmx = NULL;            /* else vmxon 0 though the CPU is in VMX operation */
    sim_set_gate(&sim_cpus[1], 6, 0xffffffff81000180ull, 0);
    memcpy(&lo0, sim_cpus[1].idt + 6 * 16, 8);
    memcpy(&hi0, sim_cpus[1].idt + 6 * 16 + 8, 8);
    run_crash(3, 1, NULL);
    check_no_faults(3);
    CHECK_EQ(sim_cpus[1].in_vmx, 0);
    CHECK_EQ(!!(note_of(1).flags & CRASHPATH_CPUF_VMX_LEFT), in_vmx);
    memcpy(&lo, sim_cpus[1].idt + 6 * 16, 8);
    memcpy(&hi, sim_cpus[1].idt + 6 * 16 + 8, 8);
    CHECK_EQ(lo, lo0);                 /* the host's #UD gate is back */
    CHECK_EQ(hi, hi0);
    check_crasher(1);
}

TEST(shootdown_crasher_in_vmx_operation_without_a_record_leaves_it_before_the_hand_off)
{
    crasher_with_unrecorded_vmx(1, 0);
}

TEST(shootdown_crasher_with_a_stale_vmx_record_leaves_vmx_before_the_hand_off)
{
    crasher_with_unrecorded_vmx(1, 1);
}

TEST(shootdown_crasher_with_vmxe_but_outside_vmx_operation_survives_the_probe)
{
    crasher_with_unrecorded_vmx(0, 0);
    CHECK(note_of(1).flags & CRASHPATH_CPUF_VMX_UNKNOWN);
}

static _Alignas(16) uint8_t victim_tss[SIM_MAX_CPUS][104];
static _Alignas(16) uint8_t victim_nmi_stack[SIM_MAX_CPUS][CRASHPATH_NMI_STACK_MIN];

/* victim_nmi_ist: victims take the shootdown NMI on the IST slot crashpath
 * was given, so a victim whose own stack is wrecked still saves its
 * interrupted context; the crasher's gate stays IST 0 (trap_nop returns and
 * may nest). */
TEST(shootdown_victims_take_the_nmi_on_the_ist_slot_they_were_given)
{
    setup(4, CRASHPATH_APIC_X2APIC);
    cfg.victim_nmi_ist = 5;
    for (int i = 0; i < 4; i++) {
        cpus[i].tss_base = (uint64_t)(uintptr_t)victim_tss[i];
        cpus[i].nmi_stack_top = (uint64_t)(uintptr_t)(victim_nmi_stack[i] + CRASHPATH_NMI_STACK_MIN);
    }
    run_crash(4, 1, NULL);
    check_no_faults(4);
    check_crasher(1);
    CHECK_EQ(sim_gate_ist(&sim_cpus[1], 2), 0);
    for (int i = 0; i < 4; i++) {
        if (i == 1)
            continue;
        CHECK_EQ(sim_gate_ist(&sim_cpus[i], 2), 5);
        CHECK_EQ(sim_cpus[i].ist_at_delivery, 5);
        CHECK_EQ(sim_gate_handler(&sim_cpus[i], 2), (uint64_t)(uintptr_t)nmi_crash);
        CHECK_EQ(sim_gate_ist(&sim_cpus[i], 18), 0);
        CHECK_EQ(note_of(i).outcome, CRASHPATH_OUTCOME_ANSWERED);
        CHECK_EQ(note_of(i).saves, 1);
    }
}

/* The stop hook of CPU 1 takes a machine check (RIPV set) with an NMI
 * pending: the victim, not yet done, must not IRET from it (NMIs would
 * open and a nested NMI would land on the frame it has yet to save, on
 * the IST stack); it finishes its work from the #MC and parks. */
static void hook_with_machine_check(uint32_t index, void *arg)
{
    (void)arg;
    if (index == 1) {
        sim_nmi(sim_self);
        sim_mce(sim_self, 1);
    }
}

static int cpu1_parked_after_mce(void)
{
    return sim_cpus[1].halted && note_of(1).machine_checks == 1;
}

TEST(shootdown_machine_check_on_a_victim_at_work_finishes_it_without_iret)
{
    struct crashpath_cpu_note n;

    setup(3, CRASHPATH_APIC_X2APIC);
    cfg.stop_cpu = hook_with_machine_check;
    run_crash(3, 0, NULL);
    CHECK(sim_wait(cpu1_parked_after_mce, 5000));
    check_no_faults(3);
    n = note_of(1);
    CHECK_EQ(sim_cpus[1].nmis_taken, 1);       /* NMIs never opened */
    CHECK_EQ(n.reentries, 0);
    CHECK_EQ(n.saves, 1);
    CHECK(n.flags & CRASHPATH_CPUF_LAPIC_QUIET);
    CHECK_EQ(sim_cpus[1].mcg_status, 0);
    check_victim(1);
}

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
 * victim answered) and before enable_nmis, so an NMI a device raised until
 * then is absorbed by trap_nop and not taken by the kdump kernel. */
TEST(shootdown_quiesce_hook_runs_once_on_the_crasher_after_the_wait_before_enable_nmis)
{
    struct crashpath_info_note info;

    setup(4, CRASHPATH_APIC_XAPIC);
    cfg.quiesce = quiesce_hook;
    cfg.quiesce_arg = &quiesce_calls;
    run_crash(4, 2, NULL);
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

static int late_hook_calls;

static void count_hook(uint32_t index, void *arg)
{
    (void)index;
    (void)arg;
    late_hook_calls++;
}

static int cpu1_parked(void)
{
    return sim_cpus[1].halted && (note_of(1).flags & CRASHPATH_CPUF_LAPIC_QUIET);
}

/* A victim that answers only after the crasher stopped waiting must not run
 * the host's stop hook: the crasher may be quiescing devices by then, or the
 * kdump kernel using them. */
TEST(shootdown_victim_answering_after_the_wait_skips_its_stop_hook)
{
    struct crashpath_cpu_note n;

    setup(3, CRASHPATH_APIC_X2APIC);
    cfg.timeout_ms = 200;
    cfg.stop_cpu = count_hook;
    sim_cpus[1].stuck_in_nmi = 1;
    run_crash(3, 0, NULL);
    CHECK_EQ(late_hook_calls, 1);            /* CPU 2, in time */
    sim_cpus[1].stuck_in_nmi = 0;
    sim_nmi(&sim_cpus[1]);
    CHECK(sim_wait(cpu1_parked, 5000));
    n = note_of(1);
    CHECK_EQ(late_hook_calls, 1);
    CHECK(n.flags & CRASHPATH_CPUF_HOOK_SKIPPED);
    CHECK(!(n.flags & CRASHPATH_CPUF_HOOK_CALLED));
    CHECK_EQ(n.outcome, CRASHPATH_OUTCOME_ANSWERED_LATE);
    CHECK(note_of(2).flags & CRASHPATH_CPUF_HOOK_DONE);
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
    cfg.console = console_that_crashes_again;
    run_crash(3, 1, NULL);
    CHECK_EQ(reentry_rc, (uint64_t)(int64_t)CRASHPATH_ERR_REENTERED);
    check_crasher(1);
    check_victim(0);
    check_victim(2);
    check_no_faults(3);
}

static void cpu_unknown(struct sim_cpu *c)
{
    uint64_t rsp;

    crasher_rc[c->id] = th_crash("unknown", &rsp);
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
    CHECK_EQ(crashpath_init(&cfg), CRASHPATH_OK);   /* 3 of the 4 CPUs described */
    sim_start_cpu(&sim_cpus[3], cpu_unknown);
    CHECK(sim_wait(cpu3_done, 5000));
    CHECK_EQ(crasher_rc[3], (uint64_t)(int64_t)CRASHPATH_ERR_UNKNOWN_CPU);
    CHECK_EQ(cp_crashing_cpu, CP_NO_CPU);
}

TEST(shootdown_nmi_crash_stub_saves_the_interrupted_frame)
{
    void (*roles[SIM_MAX_CPUS])(struct sim_cpu *) = { 0 };
    struct elf_prstatus prs;
    struct crashpath_cpu_note n;
    static const uint64_t want[15] = {
        0x1111111111111111ull, 0x3333333333333333ull, 0x4444444444444444ull, 0x5555555555555555ull,
        0x6666666666666666ull, 0x8888888888888888ull, 0x9999999999999999ull, 0xaaaaaaaaaaaaaaaaull,
        0xbbbbbbbbbbbbbbbbull, 0x2222222222222222ull, 0x7777777777777777ull, S_R12, S_R13, S_R14, S_R15,
    };
    static const int regs[15] = { RAX, RCX, RDX, RSI, RDI, R8, R9, R10, R11, RBX, RBP, R12, R13, R14, R15 };
    uint16_t cs, ss;

    setup(3, CRASHPATH_APIC_X2APIC);
    roles[2] = cpu_fake_nmi;
    run_crash(3, 0, roles);
    sim_read_prstatus(2, &prs);
    sim_read_cpu_note(2, &n);
    CHECK_EQ(n.outcome, CRASHPATH_OUTCOME_ANSWERED);
    CHECK_EQ(n.saves, 1);
    for (int i = 0; i < 15; i++)
        CHECK_EQ(prs.pr_reg[regs[i]], want[i]);
    __asm__("mov %%cs, %0; mov %%ss, %1" : "=r"(cs), "=r"(ss));
    CHECK_EQ(prs.pr_reg[ORIG_RAX], ~0ull);
    CHECK_EQ(prs.pr_reg[RIP], 0xffffffff80abcdefull);
    CHECK_EQ(prs.pr_reg[CS], cs);
    CHECK_EQ(prs.pr_reg[EFLAGS], 0x46);
    CHECK_EQ(prs.pr_reg[RSP], 0xffffc90000123450ull);
    CHECK_EQ(prs.pr_reg[SS], ss);
    check_victim(1);
    check_no_faults(3);
}

static struct crashpath_regs exception_frame;

static void cpu_crash_with_frame(struct sim_cpu *c)
{
    uint64_t *w = &exception_frame.r15;

    for (unsigned int i = 0; i < sizeof(exception_frame) / 8; i++)
        w[i] = 0xe000000000000000ull + i;
    exception_frame.orig_rax = 0xd;       /* a #GP error code */
    while (!go)
        ;
    crasher_rc[c->id] = crashpath_crash("#GP in the host", &exception_frame);
}

TEST(shootdown_crash_with_an_exception_frame_records_that_frame)
{
    void (*roles[SIM_MAX_CPUS])(struct sim_cpu *) = { 0 };
    struct elf_prstatus prs;
    struct crashpath_info_note info;
    const uint64_t *w = &exception_frame.r15;

    setup(3, CRASHPATH_APIC_XAPIC);
    roles[1] = cpu_crash_with_frame;
    run_crash(3, 1, roles);
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
static void faulting_stop_hook(uint32_t index, void *arg)
{
    (void)arg;
    if (index == 2)
        crashpath_crash("#GP in the stop hook", NULL);
}

TEST(shootdown_fault_in_the_stop_hook_still_parks_and_says_so)
{
    struct crashpath_cpu_note n;
    struct elf_prstatus prs;

    setup(4, CRASHPATH_APIC_X2APIC);
    cfg.stop_cpu = faulting_stop_hook;
    run_crash(4, 0, NULL);
    sim_read_cpu_note(2, &n);
    sim_read_prstatus(2, &prs);
    CHECK_EQ(n.outcome, CRASHPATH_OUTCOME_ANSWERED);
    CHECK(n.flags & CRASHPATH_CPUF_FAULTED);
    CHECK(n.flags & CRASHPATH_CPUF_HOOK_CALLED);
    CHECK(!(n.flags & CRASHPATH_CPUF_HOOK_DONE));
    CHECK(n.flags & CRASHPATH_CPUF_LAPIC_QUIET);
    CHECK_EQ(n.saves, 1);                       /* the interrupted registers were kept */
    CHECK(rip_in_spin(prs.pr_reg[RIP]));
    check_sentinels(&prs);
    CHECK_EQ(cp_state.nr_answered, 3);
    check_info(0, 0);
    check_victim(1);
    check_victim(3);
    check_no_faults(4);
}
