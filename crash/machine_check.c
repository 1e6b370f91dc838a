/* SPDX-License-Identifier: BSD-2-Clause */
/* machine_check.c — what a machine check does once the shootdown has begun (crashpath_mce_crash, every
 * present CPU's #MC gate): end it so the next one is not a shutdown, and resume or park. */
#include "cp/hw.h"
#include "cp/internal.h"

__attribute__((noreturn)) static void crasher_cannot_resume(void)
{
    struct cp_line l = { .len = 0 };

    cp_line_str(&l, "crashpath: machine check on the crashing CPU with MCG_STATUS.RIPV clear; halting");
    cp_line_emit(&l);
    cp_halt_forever();
}

/*
 * A machine check after the gates were rewritten: on a parked victim, on a
 * victim not yet stopped, or on the crasher while it waits or hands off.
 * crashpath does not handle the error (the kdump kernel's dump shows the
 * banks as they are); it only keeps the CPU alive and the crash going:
 *  - IA32_MCG_STATUS is cleared first. While MCIP is set, a further machine
 *    check shuts the CPU down (SDM vol. 3, 15.10.1), and platforms turn the
 *    shutdown into a reset of the whole machine, parked victims and dump
 *    included; QEMU resets at once ("Previous MCE still in progress").
 *  - A victim still at its work (registers not yet saved, or the shutdown
 *    under way) goes on with it from here instead: an IRET now would
 *    unblock NMIs, and a nested NMI on the victims' IST stack would land on
 *    the frame whose registers it has yet to save. It never IRETs then.
 *  - RIPV set: the interrupted context can be resumed, so crashpath_mce_crash IRETs
 *    (what Linux's mce_check_crashing_cpu does on CPUs already stopped).
 *  - RIPV clear: it cannot. A victim is saved and parked from here (the
 *    #MC frame holds its interrupted context); the crasher cannot finish a
 *    crash whose state it was in the middle of, so it says so and halts.
 */
void cp_mce_entry(const struct crashpath_regs *regs)
{
    uint64_t status = cp_hw_rdmsr(MSR_IA32_MCG_STATUS);
    cp_pos_t pos = cp_this_cpu();

    cp_hw_wrmsr(MSR_IA32_MCG_STATUS, 0);
    if (pos != CP_NO_CPU)
        cp_notes_count_machine_check(&cp_state.cpus[pos]);
    if (pos != CP_NO_CPU && cp_state.cpus[pos].in_victim && !cp_state.cpus[pos].work_done &&
        pos != __atomic_load_n(&cp_crashing_cpu, __ATOMIC_ACQUIRE))
        cp_victim(pos, regs, 0);
    if (status & MCG_STATUS_RIPV)
        return;
    if (pos == CP_NO_CPU)
        cp_halt_forever();
    if (pos == __atomic_load_n(&cp_crashing_cpu, __ATOMIC_ACQUIRE))
        crasher_cannot_resume();
    cp_victim(pos, regs, 0);
}
