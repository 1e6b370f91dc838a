/* SPDX-License-Identifier: BSD-2-Clause */
/* victim.c — what a CPU does when the shootdown reaches it (through crashpath_nmi_crash, the VM-exit
 * hook, or a second crash entry): save its interrupted state once, shut down, answer, park. */
#include "cp/hw.h"
#include "cp/internal.h"

/* VMCLEAR writes each active VMCS's cached state back to memory, so the dump
 * holds it. VMXOFF leaves VMX root operation, which blocks INIT (SDM vol. 3,
 * "Restrictions on VMX operation"), and the kdump kernel needs INIT-SIPI.
 * Both raise #UD outside VMX operation, so the host's own record decides,
 * not CR4.VMXE. */
static void leave_vmx(struct cp_cpu *cpu)
{
    const struct crashpath_vmx_state *vmx = cpu->vmx;

    if (cpu->vmx_left || !(cp_hw_read_cr4() & CR4_VMXE))
        return;
    if (!vmx) {
        cp_notes_add_flags(cpu, CRASHPATH_CPUF_VMX_UNKNOWN);
        return;
    }
    if (!vmx->vmxon)
        return;
    for (uint32_t i = 0; i < vmx->nr_vmcs; i++) {
        uint64_t pa = vmx->vmcs[i];

        if (pa)
            cp_hw_vmclear(pa);
    }
    cp_hw_vmxoff();
    cpu->vmx_left = 1;
    cp_notes_add_flags(cpu, CRASHPATH_CPUF_VMX_LEFT);
}

/* SVM: GIF=0 holds INIT and NMIs (AMD APM vol. 2, 15.17), so STGI first (it
 * needs EFER.SVME, hence the check), then clear EFER.SVME and the host save
 * area, as Linux's cpu_emergency_svm_disable does. VM_HSAVE_PA exists only
 * where SVM does, so it is written only when SVME was set. */
static void leave_svm(struct cp_cpu *cpu)
{
    uint64_t efer = cp_hw_rdmsr(MSR_EFER);

    if (!(efer & EFER_SVME))
        return;
    cp_hw_stgi();
    cp_hw_wrmsr(MSR_EFER, efer & ~EFER_SVME);
    cp_hw_wrmsr(MSR_VM_HSAVE_PA, 0);
    cp_notes_add_flags(cpu, CRASHPATH_CPUF_SVM_LEFT);
}

/*
 * The steps of the victim path run so that a fault inside one cannot loop.
 * Such a fault (#UD from VMCLEAR or VMXOFF on a stale vmxon record, #PF on
 * the xAPIC page, #GP on a missing x2APIC register, a bug in the stop hook)
 * reaches the host's handler, which panics back into crashpath_crash and so
 * into cp_victim with FAULTED; a fault that recurs on every try would run
 * the shutdown again and again until the stack overflows: #DF, triple
 * fault, reset. So a step is marked running before it starts; the FAULTED
 * entry finds the mark, records that step as faulted and never runs it
 * again (step_begin says no). An NMI nested in a step is no fault (leave_svm's
 * STGI lets the held NMI in on purpose): its entry runs the step again and
 * finishes it, since the outer entry never resumes.
 */
static int step_begin(struct cp_cpu *cpu, uint32_t step)
{
    if (cpu->steps_faulted & step)
        return 0;
    cpu->step_running = step;
    return 1;
}

static void step_end(struct cp_cpu *cpu)
{
    cpu->step_running = 0;
}

/* A FAULTED entry: the step that was running is where the fault came from. */
static void step_faulted(struct cp_cpu *cpu)
{
    cpu->steps_faulted |= cpu->step_running;
    cpu->step_running = 0;
    cp_notes_set_faulted_steps(cpu, cpu->steps_faulted);
}

void cp_cpu_shutdown(struct cp_cpu *cpu)
{
    if (step_begin(cpu, CRASHPATH_STEP_VMX)) {
        leave_vmx(cpu);
        step_end(cpu);
    }
    if (step_begin(cpu, CRASHPATH_STEP_SVM)) {
        leave_svm(cpu);
        step_end(cpu);
    }
    if (step_begin(cpu, CRASHPATH_STEP_LAPIC)) {
        cp_apic_quiesce();
        cp_notes_add_flags(cpu, CRASHPATH_CPUF_LAPIC_QUIET);
        step_end(cpu);
    }
}

/* The host hook runs at most once per CPU: a hook that faulted or was cut
 * short by a nested NMI must not be entered again and loop the victim. */
static void run_stop_hook(struct cp_cpu *cpu)
{
    if (!cp_state.stop_cpu || cpu->hook_entered)
        return;
    /* Too late: the crasher has stopped waiting and may be quiescing the
     * devices, or the kdump kernel already using them; a late victim must
     * not reset one under it. */
    if (__atomic_load_n(&cp_state.wait_over, __ATOMIC_ACQUIRE)) {
        cp_notes_add_flags(cpu, CRASHPATH_CPUF_HOOK_SKIPPED);
        return;
    }
    cpu->hook_entered = 1;
    cp_notes_add_flags(cpu, CRASHPATH_CPUF_HOOK_CALLED);
    cp_state.stop_cpu(cpu->index, cp_state.stop_cpu_arg);
    cp_notes_add_flags(cpu, CRASHPATH_CPUF_HOOK_DONE);
}

/* Answer exactly once. The outcome field settles a race with a crasher that
 * has just given up on us: whoever swaps it from NONE first wins. */
static void answer(struct cp_cpu *cpu)
{
    if (__atomic_exchange_n(&cpu->answered, 1, __ATOMIC_SEQ_CST))
        return;
    cp_notes_set_answer_tsc(cpu, cp_hw_rdtsc());
    if (cp_notes_claim_outcome(cpu, CRASHPATH_OUTCOME_ANSWERED) == CRASHPATH_OUTCOME_TIMED_OUT)
        cp_notes_set_outcome(cpu, CRASHPATH_OUTCOME_ANSWERED_LATE);
    /* The count of answers: Xen's 2012 patch (Andrew Cooper) had its
     * victims never decrement the crasher's counter, so the crasher always
     * waited out the whole timeout; crashpath counts up to nr_present - 1. */
    __atomic_fetch_add(&cp_state.nr_answered, 1, __ATOMIC_SEQ_CST);
}

/* Park: queue one more NMI to ourselves through the raw ICR, mode read now,
 * and halt. We never IRET, so NMIs stay blocked; if anything unblocks them
 * (an #MC handler's IRET), the queued NMI brings us straight back into
 * crashpath_nmi_crash and here again. */
__attribute__((noreturn)) static void park(struct cp_cpu *cpu)
{
    if (step_begin(cpu, CRASHPATH_STEP_SELF_NMI)) {
        cp_apic_self_nmi();
        step_end(cpu);
    }
    cp_halt_forever();
}

/*
 * The registers a CPU's note holds are its outermost entry's: the
 * interrupted context. A nested entry (a fault in the stop hook calling
 * back in, the intercepted NMI that leave_svm's STGI lets in, the shootdown
 * NMI reaching a losing crasher, which runs with NMIs open) would otherwise
 * record crashpath's own frames. So the first entry publishes a pointer to
 * its frame, and flags that describe it, before any work; whichever entry
 * then saves, saves those. The outer frame is intact: with the NMI gate's
 * IST gone, a nested frame lands below it.
 *
 * Only this CPU writes the record, and a nested entry never returns to the
 * one it interrupted, so no lock is needed: an NMI before the pointer is
 * stored makes the nested entry the first (the outer never resumes); one
 * after it finds the outer's flags already stored.
 */
void cp_victim_publish(cp_pos_t pos, const struct crashpath_regs *regs, uint32_t flags)
{
    struct cp_cpu *cpu = &cp_state.cpus[pos];

    if (__atomic_load_n(&cpu->first_regs, __ATOMIC_ACQUIRE))
        return;
    cpu->first_flags = flags;
    __atomic_store_n(&cpu->first_regs, regs, __ATOMIC_RELEASE);
}

void cp_victim(cp_pos_t pos, const struct crashpath_regs *regs, uint32_t extra_flags)
{
    struct cp_cpu *cpu = &cp_state.cpus[pos];

    cp_hw_cli();
    if (extra_flags & CRASHPATH_CPUF_FAULTED) {
        /* Past the bound, touch nothing more (not even the note). */
        if (++cpu->faulted_entries > CP_MAX_FAULTED_ENTRIES)
            cp_halt_forever();
        step_faulted(cpu);
    }
    cpu->in_victim = 1;
    if (cpu->work_done)
        cp_notes_count_reentry(cpu);
    cp_victim_publish(pos, regs, extra_flags);
    /* Done once per CPU, the flag set after the work, so a re-entry part-way
     * through does it again rather than leave it half done (Xen's
     * crash_save_done); a save cut short is redone from the same frame;
     * a step that faulted is not (see step_begin). */
    if (!cpu->work_done) {
        if (!cp_notes_regs_saved(cpu) && step_begin(cpu, CRASHPATH_STEP_SAVE)) {
            cp_notes_save_regs(cpu, cpu->first_regs);
            step_end(cpu);
        }
        cp_notes_add_flags(cpu, cpu->first_flags | extra_flags);
        if (step_begin(cpu, CRASHPATH_STEP_HOOK)) {
            run_stop_hook(cpu);
            step_end(cpu);
        }
        cp_cpu_shutdown(cpu);
        __atomic_store_n(&cpu->work_done, 1, __ATOMIC_SEQ_CST);
    }
    answer(cpu);
    park(cpu);
}

/* From crashpath_nmi_crash. The crasher's own NMI gate is crashpath_trap_nop before any NMI is
 * sent, and unknown CPUs have no notes: both simply stay parked. */
void cp_nmi_victim(const struct crashpath_regs *regs)
{
    cp_pos_t pos = __atomic_load_n(&cp_state.ready, __ATOMIC_ACQUIRE) ? cp_this_cpu() : CP_NO_CPU;

    if (pos == CP_NO_CPU) {
        cp_apic_self_nmi();    /* an unknown CPU: parked, with no state of ours */
        cp_halt_forever();
    }
    if (pos == __atomic_load_n(&cp_crashing_cpu, __ATOMIC_ACQUIRE))
        park(&cp_state.cpus[pos]);
    cp_victim(pos, regs, 0);
}

/* A CPU that becomes a victim without crashpath_nmi_crash (through the VM-exit hook,
 * or by losing the election) may get there before the crasher has rewritten its
 * IDT. An NMI it lets in on the way (the one leave_svm's STGI releases, the
 * self-NMI of park) must then land in crashpath_nmi_crash, not in the host's own
 * handler, whose IRET would unblock NMIs and leave us parked with them
 * open. So it points its own gates first; the crasher writes the same. */
void cp_victim_not_via_nmi_crash(cp_pos_t pos, const struct crashpath_regs *regs, uint32_t flags)
{
    cp_gates_to_victim(&cp_state.cpus[pos]);
    cp_victim(pos, regs, flags);
}

/* From crashpath_nmi_vmexit: an NMI that arrived as a VM exit. Under VMX,
 * a VM exit caused by an NMI leaves blocking by NMI in effect, as delivery
 * through the IDT does (SDM vol. 3, "VM exits": non-register state), so
 * parking here without IRET matches crashpath_nmi_crash exactly. Under SVM the
 * intercepted NMI is not taken at all: it stays pending behind GIF=0 (AMD
 * APM vol. 2, 15.17) and arrives through crashpath_nmi_crash at leave_svm's STGI, a
 * nested entry that keeps the registers saved here and finishes the work. */
int cp_vmexit_entry(const struct crashpath_regs *regs)
{
    cp_pos_t crasher = __atomic_load_n(&cp_crashing_cpu, __ATOMIC_ACQUIRE);
    cp_pos_t pos;

    if (!__atomic_load_n(&cp_state.ready, __ATOMIC_ACQUIRE) || crasher == CP_NO_CPU)
        return 0;
    pos = cp_this_cpu();
    if (pos == CP_NO_CPU || pos == crasher)
        return 0;
    cp_victim_not_via_nmi_crash(pos, regs, CRASHPATH_CPUF_VIA_VMEXIT);
}
