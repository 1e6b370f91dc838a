/* SPDX-License-Identifier: BSD-2-Clause */
/* shootdown.c — the crashing CPU's path, the 2012 Xen design with what Xen and Linux learned
 * since: elect one crasher, rewrite every CPU's NMI and #MC gates, NMI the others, wait with a
 * bounded TSC timeout, record who answered, then hand off with NMIs unblocked. */
#include "cp/hw.h"
#include "cp/internal.h"

/* The crash-time state: written by crashpath_init (load/config.c), read here. */
struct cp_state cp_state;
/* Apart from cp_state so that the large table stays in .bss. */
volatile cp_pos_t cp_crashing_cpu = CP_NO_CPU;

/* Which configured CPU is running this: crash-time code (NMI and #MC
 * context), so it lives here and not with the load-time configuration.
 * Linear in the number of CPUs, with no parsing and no lock: the APIC ID is
 * the only identity the hardware gives an NMI handler. */
cp_pos_t cp_this_cpu(void)
{
    uint32_t id = cp_apic_read_id(cp_apic_mode());

    for (uint32_t i = 0; i < cp_state.nr_cpus; i++)
        if (cp_state.cpus[i].apic_id == id)
            return i;
    return CP_NO_CPU;
}

static void say_crash(const struct cp_cpu *self, const char *reason)
{
    struct cp_line l = { .len = 0 };

    cp_line_str(&l, "crashpath: CPU ");
    cp_line_dec(&l, self->index);
    cp_line_str(&l, " (APIC ");
    cp_line_hex(&l, self->apic_id);
    cp_line_str(&l, ") crashing: ");
    cp_line_str(&l, reason ? reason : "(no reason)");
    cp_line_emit(&l);
}

/*
 * Every present CPU's IDT: point every #MC gate at crashpath_mce_crash, the crasher's
 * NMI gate at crashpath_trap_nop and every other CPU's at crashpath_nmi_crash, all with IST 0.
 * #DF keeps its IST: a double fault on a broken stack must still find a
 * good one.
 *
 * Why crashpath_mce_crash from here on, on the crasher too: on Intel without LMCE a
 * machine check is broadcast to every CPU, and the host's handler would
 * panic, which on the crasher loses the crash (REENTERED) and on a victim
 * leaves MCIP set, so the next machine check shuts the CPU down, which
 * platforms turn into a reset (Linux's mce_check_crashing_cpu clears
 * MCG_STATUS on CPUs already stopped for the same reason).
 *
 * Why drop the ISTs: an IST gate switches to the same stack top on every
 * delivery, even at the same privilege level (SDM vol. 3, 6.14.5), so a
 * nested NMI or #MC overwrites the frame of the one it interrupted. With
 * IST 0 a nested frame lands below the current RSP instead.
 *
 * The crasher's own IDT goes first, so that from here on an NMI reaching
 * the crasher (a watchdog, a second shootdown) returns at once.
 */
static void rewrite_gates(cp_pos_t self)
{
    uint64_t nop = (uint64_t)(uintptr_t)crashpath_trap_nop;

    cp_gate_point(cp_state.cpus[self].idt_base, CP_VEC_MC, (uint64_t)(uintptr_t)crashpath_mce_crash, cp_state.hv_cs, 0);
    cp_gate_point(cp_state.cpus[self].idt_base, CP_VEC_NMI, nop, cp_state.hv_cs, 0);
    for (uint32_t i = 0; i < cp_state.nr_cpus; i++) {
        const struct cp_cpu *cpu = &cp_state.cpus[i];

        if (i == self || !cpu->present)
            continue;      /* a CPU never started may have no IDT at all */
        cp_gates_to_victim(cpu);
    }
}

/* Bounded by the TSC, with interrupts off: no timer, no lock, no delay
 * calibration. Waits until expected answers or ticks after start; returns
 * the TSC at which the wait ended. */
static uint64_t wait_for_answers(uint32_t expected, uint64_t start, uint64_t ticks)
{
    for (;;) {
        uint64_t now = cp_hw_rdtsc();

        if (__atomic_load_n(&cp_state.nr_answered, __ATOMIC_ACQUIRE) >= expected)
            return now;
        if (now - start >= ticks)
            return now;
        cp_hw_pause();
    }
}

/* Mark every present CPU that has not answered as timed out, in its note
 * and in the crash-info bitmap; report them. */
static uint32_t record_stragglers(cp_pos_t self)
{
    uint32_t missing = 0;
    struct cp_line l = { .len = 0 };

    cp_line_str(&l, "crashpath: no answer from CPU");
    for (uint32_t i = 0; i < cp_state.nr_cpus; i++) {
        const struct cp_cpu *cpu = &cp_state.cpus[i];

        if (i == self || !cpu->present)
            continue;
        if (cp_notes_claim_outcome(cpu, CRASHPATH_OUTCOME_TIMED_OUT) != CRASHPATH_OUTCOME_TIMED_OUT)
            continue;
        missing++;
        cp_line_str(&l, " ");
        cp_line_dec(&l, cpu->index);
        cp_info_mark_not_answered(cpu->index);
    }
    CP_INFO_SET32(nr_not_answered, missing);
    if (missing)
        cp_line_emit(&l);
    return missing;
}

static void say_answers(uint32_t expected, uint32_t missing, uint64_t ticks)
{
    struct cp_line l = { .len = 0 };

    cp_line_str(&l, "crashpath: ");
    cp_line_dec(&l, expected - missing);
    cp_line_str(&l, " of ");
    cp_line_dec(&l, expected);
    cp_line_str(&l, " CPUs answered, wait ");
    cp_line_dec(&l, ticks * 1000u / cp_state.tsc_khz);
    cp_line_str(&l, " us");
    cp_line_emit(&l);
}

/*
 * Supervisor CET off, on the crasher only, before crashpath_enable_nmis: its IRET to
 * itself, at the same privilege with shadow stacks on, pops and compares a
 * shadow-stack frame (CS, LIP, SSP) that no event delivery pushed, and
 * raises #CP (SDM vol. 1, 17.2.3; Xen's kexec path does the same, and Xen
 * and Linux run shadow stacks in supervisor mode by default). IA32_S_CET
 * exists wherever CR4.CET can be set, so it is touched only then. Zeroing it
 * first stops shadow-stack and ENDBR checks with CR4.CET still set; clearing
 * CR4.CET is legal at any time (only setting it needs CR0.WP). The hand-off
 * then enters the kdump kernel with CET off, as the boot protocol expects.
 * Victims keep theirs: they never IRET, and IRETs from delivered events
 * (crashpath_trap_nop, crashpath_mce_crash) match the frames their delivery pushed.
 */
static void supervisor_cet_off(void)
{
    uint64_t cr4 = cp_hw_read_cr4();

    if (!(cr4 & CR4_CET))
        return;
    cp_hw_wrmsr(MSR_IA32_S_CET, 0);
    cp_hw_write_cr4(cr4 & ~CR4_CET);
}

/*
 * The hand-off writes CR4 without VMXE, which is a #GP in VMX operation (SDM
 * vol. 3, 24.8), and by then the IDT is not mapped: a triple fault, no dump.
 * cp_cpu_shutdown left VMX only if the host's record said this CPU was in it;
 * with no record, or a stale one, nobody knows. VMXOFF tells: it leaves VMX
 * operation, or raises #UD outside it, which the crasher's own #UD gate,
 * borrowed for the attempt, turns into a return. Linux's cpu_vmxoff() also
 * VMXOFFs blind from NMI context and eats the fault.
 */
static void leave_unrecorded_vmx(struct cp_cpu *cpu)
{
    uint64_t ud_lo, ud_hi;

    if (cpu->vmx_left || !(cp_hw_read_cr4() & CR4_VMXE))
        return;
    cp_gate_read(cpu->idt_base, CP_VEC_UD, &ud_lo, &ud_hi);
    cp_gate_point(cpu->idt_base, CP_VEC_UD, (uint64_t)(uintptr_t)vmxoff_ud_fixup, cp_state.hv_cs, 0);
    if (cp_hw_vmxoff_probe() == 0) {
        cpu->vmx_left = 1;
        cp_notes_add_flags(cpu, CRASHPATH_CPUF_VMX_LEFT);
    }
    cp_gate_restore(cpu->idt_base, CP_VEC_UD, ud_lo, ud_hi);
}

__attribute__((noreturn)) static void crasher(cp_pos_t self, const char *reason,
                                              const struct crashpath_regs *ctx, uint64_t tsc_entry)
{
    struct cp_cpu *cpu = &cp_state.cpus[self];
    /* The crasher is present (it runs); every other present CPU must answer. */
    uint32_t expected = cp_state.nr_present - cpu->present, missing, used;
    uint64_t tsc_sent, tsc_end;

    CP_INFO_SET32(crashing_cpu, cpu->index);
    CP_INFO_SET32(crashing_apic_id, cpu->apic_id);
    CP_INFO_SET64(tsc_crash_entry, tsc_entry);
    cp_info_set_reason(reason);

    rewrite_gates(self);
    /* Every gate store must be visible before any victim can take the NMI. */
    cp_hw_mfence();
    CP_INFO_SET64(tsc_gates_done, cp_hw_rdtsc());
    used = cp_send_nmis(self);
    tsc_sent = cp_hw_rdtsc();
    CP_INFO_SET64(tsc_nmis_sent, tsc_sent);
    /* Only now the console, which may be slow: the other CPUs are already
     * being stopped while it prints. */
    say_crash(cpu, reason);

    /* After a multicast, an eighth of the timeout for the answers, then a
     * physical NMI to each CPU still silent, then the rest of the wait. */
    if (used == CRASHPATH_SEND_CLUSTER) {
        (void)wait_for_answers(expected, tsc_sent, cp_state.timeout_ticks / CP_RESEND_AFTER_FRACTION);
        if (__atomic_load_n(&cp_state.nr_answered, __ATOMIC_ACQUIRE) < expected)
            cp_resend_to_stragglers(self);
    }
    tsc_end = wait_for_answers(expected, tsc_sent, cp_state.timeout_ticks);
    __atomic_store_n(&cp_state.wait_over, 1, __ATOMIC_RELEASE);
    CP_INFO_SET64(tsc_wait_end, tsc_end);
    missing = record_stragglers(self);
    say_answers(expected, missing, tsc_end - tsc_sent);

    cp_notes_save_regs(cpu, ctx);
    cp_notes_set_answer_tsc(cpu, cp_hw_rdtsc());
    cp_notes_set_outcome(cpu, CRASHPATH_OUTCOME_CRASHER);
    /* The host's devices, now that no other CPU runs its code: before
     * crashpath_enable_nmis, so an NMI a device raised until now is absorbed here by
     * crashpath_trap_nop, not taken by the kdump kernel. */
    if (cp_state.quiesce)
        cp_state.quiesce(cp_state.quiesce_arg);
    /* CET off before anything IRETs to a frame no delivery pushed:
     * vmxoff_ud_fixup below, crashpath_enable_nmis after it. */
    supervisor_cet_off();
    cp_cpu_shutdown(cpu);
    leave_unrecorded_vmx(cpu);

    /* A crash from NMI context (a watchdog) leaves NMIs blocked; a latched
     * NMI would then fire at the kdump kernel's first IRET, before it has
     * an NMI handler. IRET to ourselves now, while crashpath_trap_nop absorbs it. */
    cp_hw_enable_nmis();
    cp_handoff();
}

int cp_crash_entry(const char *reason, const struct crashpath_regs *regs, const struct crashpath_regs *own)
{
    const struct crashpath_regs *ctx = regs ? regs : own;
    cp_pos_t self, prev = CP_NO_CPU;
    uint64_t tsc_entry;

    cp_hw_cli();
    if (!__atomic_load_n(&cp_state.ready, __ATOMIC_ACQUIRE))
        return CRASHPATH_ERR_NOT_READY;
    self = cp_this_cpu();
    if (self == CP_NO_CPU)
        return CRASHPATH_ERR_UNKNOWN_CPU;
    tsc_entry = cp_hw_rdtsc();
    if (!__atomic_compare_exchange_n(&cp_crashing_cpu, &prev, self, 0, __ATOMIC_SEQ_CST,
                                     __ATOMIC_SEQ_CST)) {
        /* The same CPU again: a fault inside the crash path itself. Return,
         * so the host reboots instead of deadlocking (Xen 470f58c159). */
        if (prev == self)
            return CRASHPATH_ERR_REENTERED;
        /* This CPU is a victim already and faulted inside its victim path
         * (the stop hook): finish parking, keeping what it saved. */
        if (cp_state.cpus[self].in_victim)
            cp_victim(self, ctx, CRASHPATH_CPUF_FAULTED);
        /* Another CPU won: save our own registers as a victim and park.
         * NMIs are most likely open here and the shootdown NMI may come any
         * moment: publish the caller's registers at once, so the nested
         * entry it makes saves those rather than our own frame. */
        cp_victim_publish(self, ctx, CRASHPATH_CPUF_LATE_CRASHER);
        cp_victim_not_via_nmi_crash(self, ctx, CRASHPATH_CPUF_LATE_CRASHER);
    }
    crasher(self, reason, ctx, tsc_entry);
}
