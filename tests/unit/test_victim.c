/* SPDX-License-Identifier: BSD-2-Clause */
/* test_victim.c — the victim path: saved once from the interrupted frame, VMX and SVM left,
 * faults that recur bounded, machine checks survived, the stop hook run once and never late. */
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

static int cpu2_took_one_mce(void) { return note_of(2).machine_checks == 1 && sim_cpus[2].halted; }
static int cpu2_took_two_mces(void) { return note_of(2).machine_checks == 2 && sim_cpus[2].halted; }

/* Two machine checks into one parked victim: the first must leave MCIP
 * clear, or the second shuts the CPU down (a reset on real platforms). Each
 * IRET lets the queued self-NMI in, which parks the CPU again. */
static int cpu2_reparked_after_mce(void)
{
    return note_of(2).machine_checks == 1 && note_of(2).reentries == 1 && sim_cpus[2].halted;
}

/* A machine check without RIPV on a parked victim: its context cannot be
 * resumed, so crashpath_mce_crash parks it again from the #MC frame and never IRETs;
 * NMIs stay blocked and the self-NMI it queues stays pending. */
TEST(shootdown_machine_check_without_ripv_on_a_parked_victim_parks_it_again_without_iret)
{
    setup(4, CRASHPATH_APIC_X2APIC);
    run_crash(4, 1);
    sim_mce(&sim_cpus[2], 0);
    CHECK(sim_wait(cpu2_reparked_after_mce, 5000));
    check_no_faults(4);
    CHECK_EQ(sim_cpus[2].nmis_taken, 1);       /* no IRET let the queued NMI in */
    CHECK(sim_cpus[2].nmi_blocked);
    CHECK(sim_cpus[2].nmi_pending);
    CHECK_EQ(sim_cpus[2].mcg_status, 0);
    CHECK_EQ(note_of(2).saves, 1);
    check_victim(2);
}

TEST(shootdown_two_machine_checks_into_a_parked_victim_are_survived)
{
    struct crashpath_cpu_note n;

    setup(4, CRASHPATH_APIC_X2APIC);
    run_crash(4, 1);
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
    H.cfg.timeout_ms = 400;
    sim_cpus[1].stuck_in_nmi = 1;      /* the crasher waits the whole timeout */
    mce_ripv_for_crasher = ripv;
    pthread_create(&t, NULL, mce_into_waiting_crasher, NULL);
    CHECK_EQ(crashpath_init(&H.cfg), CRASHPATH_OK);
    H.crasher = 0;
    for (int i = 0; i < 4; i++)
        sim_start_cpu(&sim_cpus[i], i == 0 ? cpu_crash : cpu_spin);
    H.go = 1;
    CHECK(sim_wait(ripv ? crash_done : crasher_halted_after_mce, 20000));
    pthread_join(t, NULL);
}

/* A machine check on the crasher while it waits: absorbed by crashpath_mce_crash
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

/* RIPV clear: the crasher's interrupted context cannot H.go on, so it says so
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
    setup(4, CRASHPATH_APIC_XAPIC);
    H.cfg.stop_cpu = stop_hook;
    H.cfg.stop_cpu_arg = &hook_arg;
    run_crash(4, 3);
    check_victim(1);                               /* one save: the nested entry kept the interrupted registers */
    struct crashpath_cpu_note n = note_of(1);
    CHECK_EQ(n.reentries, 0);                      /* it came before CPU 1 had parked */
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
     * self-NMI it queued brings it straight back to crashpath_nmi_crash, where it
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
    const struct sim_cpu *c = &sim_cpus[1];
    uint64_t clear1 = 0, clear2 = 0, off = 0;

    setup(3, CRASHPATH_APIC_X2APIC);
    H.roles[1] = cpu_guest;
    sim_cpus[1].cr4 |= CR4_VMXE;
    sim_cpus[1].in_vmx = 1;
    sim_cpus[1].vmx.vmxon = 1;
    sim_cpus[1].vmcs_slots[0] = 0x5000;
    sim_cpus[1].vmcs_slots[2] = 0x7000;
    run_crash(3, 0);
    (void)check_vmexit_victim(1, CRASHPATH_CPUF_VMX_LEFT);
    CHECK_EQ(H.crasher_rc[1], 0);       /* it never returned */
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
    run_crash(3, 0);
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
 * through crashpath_nmi_crash at leave_svm's STGI, in the middle of the victim path:
 * that nested entry must keep the VM-exit handler's registers and finish. */
TEST(shootdown_svm_guest_victim_parks_at_stgi_keeping_the_vmexit_registers)
{
    struct crashpath_cpu_note n;
    const struct sim_cpu *c = &sim_cpus[2];

    setup(3, CRASHPATH_APIC_XAPIC);
    svm_guest(2);
    run_crash(3, 0);
    n = check_vmexit_victim(2, CRASHPATH_CPUF_SVM_LEFT);
    CHECK_EQ(c->nmis_taken, 1);                    /* the held NMI came in at STGI */
    CHECK_EQ(n.reentries, 0);
    CHECK(!(c->efer & EFER_SVME));
    CHECK_EQ(c->hsave_pa, 0);
    CHECK_EQ(cp_state.nr_answered, 2);
    check_victim(1);
    check_no_faults(3);
}

/* Holding the crasher after the election, before it rewrites one CPU's
 * gates: at its first look at that CPU's IDT, hold_action runs first. This
 * is the window a CPU entering crashpath by another door than crashpath_nmi_crash
 * can fall into (a storm NMI's VM exit, a second panic). */

TEST(shootdown_vmx_without_host_state_is_reported_not_guessed)
{
    struct crashpath_cpu_note n;

    setup(3, CRASHPATH_APIC_X2APIC);
    sim_cpus[2].cr4 |= CR4_VMXE;
    H.cpus[2].vmx = NULL;
    run_crash(3, 0);
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
    run_crash(3, 0);
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
    H.cfg.timeout_ms = 2000;
    readonly_notes = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    H.cpus[2].notes = readonly_notes;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = notes_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    CHECK_EQ(crashpath_init(&H.cfg), CRASHPATH_OK);
    mprotect(readonly_notes, 4096, PROT_READ);
    H.crasher = 0;
    for (int i = 0; i < 3; i++)
        sim_start_cpu(&sim_cpus[i], i == 0 ? cpu_crash : cpu_spin);
    H.go = 1;
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
        H.cpus[1].vmx = NULL;            /* else vmxon 0 though the CPU is in VMX operation */
    sim_set_gate(&sim_cpus[1], 6, 0xffffffff81000180ull, 0);
    memcpy(&lo0, sim_cpus[1].idt + 6 * 16, 8);
    memcpy(&hi0, sim_cpus[1].idt + 6 * 16 + 8, 8);
    run_crash(3, 1);
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
    H.cfg.stop_cpu = hook_with_machine_check;
    run_crash(3, 0);
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
    H.cfg.timeout_ms = 200;
    H.cfg.stop_cpu = count_hook;
    sim_cpus[1].stuck_in_nmi = 1;
    run_crash(3, 0);
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

TEST(shootdown_nmi_crash_stub_saves_the_interrupted_frame)
{
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
    H.roles[2] = cpu_fake_nmi;
    run_crash(3, 0);
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
    H.cfg.stop_cpu = faulting_stop_hook;
    run_crash(4, 0);
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
