/* SPDX-License-Identifier: BSD-2-Clause */
/* shootdown_harness.c — the harness the shootdown, victim-path and race tests share: the CPUs'
 * roles, one crash run from start to hand-off, and the checks every crash must pass. */
#include <string.h>
#include <sys/procfs.h>
#include <sys/reg.h>
#include "cp/hw.h"
#include "cp/internal.h"
#include "shootdown_harness.h"
#include "testlib.h"

struct shootdown_harness H;

/* ---- what the CPUs do ---- */

void cpu_spin(struct sim_cpu *c)
{
    (void)c;
    th_spin(&H.never);
}

void cpu_crash(struct sim_cpu *c)
{
    while (!H.go)
        ;
    H.crasher_rc[c->id] = th_crash("test crash", &H.crasher_rsp[c->id]);
}

/* A CPU running a guest: the NMI arrives as a VM exit, and the exit
 * handler calls crashpath_nmi_vmexit. */
void cpu_guest(struct sim_cpu *c)
{
    c->in_guest = 1;
    while (!c->vmexit_pending)
        ;
    H.crasher_rc[c->id] = th_vmexit();
    for (;;)
        ;     /* crashpath_nmi_vmexit returned: the test sees the rc */
}

/* A CPU running an SVM guest with NMIs intercepted. */
void cpu_svm_guest(struct sim_cpu *c)
{
    c->svm_guest = 1;
    cpu_guest(c);
}

/* Enters the real crashpath_nmi_crash stub with a fabricated IRET frame, as the CPU
 * does when the NMI gate has IST 0. */
void svm_guest(int cpu)
{
    H.roles[cpu] = cpu_svm_guest;
    sim_cpus[cpu].efer |= EFER_SVME;
    sim_cpus[cpu].hsave_pa = 0x2340000ull + (uint64_t)cpu * 0x1000u;
}

void cpu_fake_nmi(struct sim_cpu *c)
{
    c->stuck_in_nmi = 1;     /* only the fabricated NMI gets in */
    while (sim_gate_handler(c, 2) != (uint64_t)(uintptr_t)crashpath_nmi_crash)
        ;
    th_fake_nmi(0xffffffff80abcdefull, 0xffffc90000123450ull, 0x46);
}

/* ---- running one crash ---- */

int crash_done(void)
{
    return sim_cpus[H.crasher].halted && strstr(sim_console_text, "no kdump image loaded");
}

void setup(int n, enum crashpath_apic_mode mode)
{
    setup_ids(n, mode, NULL);
}

void setup_ids(int n, enum crashpath_apic_mode mode, const uint32_t *ids)
{
    sim_reset(n, mode, ids);
    sim_config(&H.cfg, H.cpus, n);
    H.go = 0;
    for (int i = 0; i < SIM_MAX_CPUS; i++)
        H.roles[i] = NULL;
}

/* Start every configured CPU (H.roles[i], or spinning), release the crasher
 * and wait for it to halt after the hand-off. Returns the wall time in ms. */
uint64_t run_crash(int n, int crasher)
{
    uint64_t t0;

    CHECK_EQ(crashpath_init(&H.cfg), CRASHPATH_OK);
    H.crasher = crasher;
    for (int i = 0; i < n; i++) {
        if (!(H.cpus[i].flags & CRASHPATH_CPU_PRESENT))
            continue;
        sim_start_cpu(&sim_cpus[i], H.roles[i] ? H.roles[i] : i == crasher ? cpu_crash : cpu_spin);
    }
    t0 = sim_now_ns();
    H.go = 1;
    CHECK(sim_wait(crash_done, 20000));
    return (sim_now_ns() - t0) / 1000000u;
}

void check_no_faults(int n)
{
    for (int i = 0; i < n; i++)
        if (sim_cpus[i].faults)
            tl_fail(__FILE__, __LINE__, sim_cpus[i].fault);
}

int rip_in_spin(uint64_t rip)
{
    return rip >= (uint64_t)(uintptr_t)th_spin_loop && rip < (uint64_t)(uintptr_t)th_spin_loop + 16;
}

void check_sentinels(const struct elf_prstatus *prs)
{
    CHECK_EQ(prs->pr_reg[R12], S_R12);
    CHECK_EQ(prs->pr_reg[R13], S_R13);
    CHECK_EQ(prs->pr_reg[R14], S_R14);
    CHECK_EQ(prs->pr_reg[R15], S_R15);
}

struct crashpath_cpu_note check_saved_once(int cpu, uint32_t outcome, struct elf_prstatus *prs)
{
    struct crashpath_cpu_note n;

    sim_read_prstatus(cpu, prs);
    sim_read_cpu_note(cpu, &n);
    CHECK_EQ(n.outcome, outcome);
    CHECK_EQ(n.saves, 1);
    check_sentinels(prs);
    return n;
}

struct crashpath_cpu_note check_vmexit_victim(int cpu, uint32_t left_flag)
{
    struct elf_prstatus prs;
    struct crashpath_cpu_note n = check_saved_once(cpu, CRASHPATH_OUTCOME_ANSWERED, &prs);

    CHECK(n.flags & CRASHPATH_CPUF_VIA_VMEXIT);
    CHECK(n.flags & left_flag);
    /* the VM-exit handler's registers, where it would have resumed */
    CHECK_EQ(prs.pr_reg[RIP], (uint64_t)(uintptr_t)th_vmexit_ret);
    return n;
}

void check_crasher(int i)
{
    struct elf_prstatus prs;

    (void)check_saved_once(i, CRASHPATH_OUTCOME_CRASHER, &prs);
    /* the caller's registers: RIP is the return address, RSP as after RET */
    CHECK_EQ(prs.pr_reg[RIP], (uint64_t)(uintptr_t)th_crash_ret);
    CHECK_EQ(prs.pr_reg[RSP], H.crasher_rsp[i]);
    CHECK_EQ(sim_gate_handler(&sim_cpus[i], 2), (uint64_t)(uintptr_t)crashpath_trap_nop);
}

void check_victim(int i)
{
    struct elf_prstatus prs;
    struct crashpath_cpu_note n = check_saved_once(i, CRASHPATH_OUTCOME_ANSWERED, &prs);

    CHECK(n.flags & CRASHPATH_CPUF_REGS_SAVED);
    CHECK(n.flags & CRASHPATH_CPUF_LAPIC_QUIET);
    CHECK(n.answer_tsc != 0);
    CHECK_EQ(prs.pr_pid, (uint32_t)i + 1);
    CHECK(rip_in_spin(prs.pr_reg[RIP]));     /* the interrupted code, not the handler */
    CHECK_EQ(sim_gate_handler(&sim_cpus[i], 2), (uint64_t)(uintptr_t)crashpath_nmi_crash);
    CHECK_EQ(sim_cpus[i].ist_at_delivery, 0);  /* the IST was gone before the NMI came */
    CHECK(sim_cpus[i].halted);
    CHECK(sim_cpus[i].nmi_pending);            /* the self-NMI is queued */
    CHECK(!(sim_cpus[i].lapic[0xf0 >> 4] & 0x100));  /* software-disabled */
}

/* Gates every present CPU must end with: NMI and #MC IST 0, #MC at
 * crashpath_mce_crash, #DF untouched. */
void check_gates(int n)
{
    for (int i = 0; i < n; i++) {
        if (!(H.cpus[i].flags & CRASHPATH_CPU_PRESENT))
            continue;
        CHECK_EQ(sim_gate_ist(&sim_cpus[i], 2), 0);
        CHECK_EQ(sim_gate_ist(&sim_cpus[i], 18), 0);
        CHECK_EQ(sim_gate_handler(&sim_cpus[i], 18), (uint64_t)(uintptr_t)crashpath_mce_crash);
        CHECK_EQ(sim_gate_ist(&sim_cpus[i], 8), 3);
        CHECK_EQ(sim_gate_handler(&sim_cpus[i], 8), 0xffffffff81000000ull + 8 * 0x40);
    }
}

uint64_t first_seq(const struct sim_cpu *c, uint32_t kind, uint32_t reg)
{
    for (int i = 0; i < c->nlog && i < SIM_LOG_MAX; i++)
        if (c->log[i].kind == kind && (reg == 0xffffffffu || c->log[i].reg == reg))
            return c->log[i].seq;
    return ~0ull;
}

uint64_t last_seq(const struct sim_cpu *c, uint32_t kind, uint32_t reg)
{
    uint64_t s = 0;

    for (int i = 0; i < c->nlog && i < SIM_LOG_MAX; i++)
        if (c->log[i].kind == kind && (reg == 0xffffffffu || c->log[i].reg == reg))
            s = c->log[i].seq;
    return s;
}

/* Every NMI-gate rewrite happened before the first NMI left the crasher, with
 * a fence between; #MC went to crashpath_mce_crash before crashpath_enable_nmis. */
void check_order(int n, int crasher, enum crashpath_apic_mode mode)
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

        if (!(H.cpus[i].flags & CRASHPATH_CPU_PRESENT))
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

void check_info(int crasher, uint32_t not_answered)
{
    struct crashpath_info_note info;

    sim_read_info(&info);
    CHECK_EQ(info.crashing_cpu, (uint32_t)crasher);
    CHECK_EQ(info.crashing_apic_id, sim_cpus[crasher].apic_id);
    CHECK_EQ(info.nr_not_answered, not_answered);
    CHECK(strcmp(info.reason, "test crash") == 0);
    CHECK(info.tsc_crash_entry != 0);
    CHECK(info.tsc_crash_entry <= info.tsc_gates_done);
    CHECK(info.tsc_gates_done <= info.tsc_nmis_sent);
    CHECK(info.tsc_nmis_sent <= info.tsc_wait_end);
}

void shootdown(int n, int crasher, enum crashpath_apic_mode mode, uint32_t send_mode)
{
    setup(n, mode);
    H.cfg.send_mode = send_mode;
    run_crash(n, crasher);
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
    CHECK_EQ(H.crasher_rc[crasher], 0);      /* it never returned */
    if (send_mode == CRASHPATH_SEND_PER_CPU)
        CHECK_EQ(sim_count_ops(&sim_cpus[crasher], mode == CRASHPATH_APIC_X2APIC ? OP_WRMSR : OP_MMIO_W,
                               mode == CRASHPATH_APIC_X2APIC ? 0x830 : 0x300),
                 n - 1);
    CHECK(strstr(sim_console_text, "crashing: test crash") != NULL);
    check_no_faults(n);
}

int icr_log(int cpu, uint64_t *out, int max)
{
    const struct sim_cpu *c = &sim_cpus[cpu];
    uint64_t icr2 = 0;
    int n = 0;

    for (int i = 0; i < c->nlog && i < SIM_LOG_MAX; i++) {
        const struct sim_op *op = &c->log[i];

        if (op->kind == OP_MMIO_W && op->reg == 0x310)
            icr2 = op->value;
        if (n < max && ((op->kind == OP_WRMSR && op->reg == 0x830) || (op->kind == OP_MMIO_W && op->reg == 0x300)))
            out[n++] = op->kind == OP_WRMSR ? op->value : icr2 << 32 | (uint32_t)op->value;
    }
    return n;
}

struct crashpath_cpu_note note_of(int cpu)
{
    struct crashpath_cpu_note n;

    sim_read_cpu_note(cpu, &n);
    return n;
}

