#!/usr/bin/env python3
"""mutants.py — break each protection of the crash path on purpose, one at a time, in a copy of
the tree, and require that the unit test named for it fails. A protection no test notices is a
protection nobody would notice losing."""
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (rule broken, file, text to replace, replacement, test that must fail)
MUTANTS = [
    ("victim never marks itself answered (Xen 2012's missing decrement)",
     "crash/victim.c", "__atomic_fetch_add(&cp_state.nr_answered, 1, __ATOMIC_SEQ_CST);", "",
     "shootdown_x2apic_4_cpus_crash_on_an_ap"),
    ("APIC mode cached instead of read from IA32_APIC_BASE each time",
     "apic/apic.c", "uint64_t base = cp_hw_rdmsr(MSR_IA32_APIC_BASE);\n    uint32_t regs[4];",
     "static uint64_t cached;\n    uint64_t base = cached ? cached : (cached = cp_hw_rdmsr(MSR_IA32_APIC_BASE));\n    uint32_t regs[4];",
     "apic_mode_is_read_from_hardware_on_every_send"),
    ("EXTD trusted without CPUID x2APIC",
     "apic/apic.c", "return (regs[2] & CPUID1_ECX_X2APIC) ? CRASHPATH_APIC_X2APIC : CRASHPATH_APIC_INVALID;",
     "(void)regs; return CRASHPATH_APIC_X2APIC;", "apic_mode_all_four_apic_base_states"),
    ("self-NMI through the self shorthand",
     "apic/apic.c", "cp_apic_send_nmi(cp_apic_read_id(mode));", "apic_icr_write(0, ICR_NMI_PHYSICAL | (1u << 18));",
     "apic_self_nmi_uses_own_id_never_the_self_shorthand"),
    ("xAPIC ICR written without waiting for delivery status idle",
     "apic/apic.c", "xapic_wait_icr_idle(page);", "if (0) xapic_wait_icr_idle(page);", "apic_xapic_nmi_waits_idle_then_icr2_then_icr"),
    ("xAPIC base assumed at 0xfee00000",
     "apic/apic.c", "return cp_apic_mmio_base() + cp_state.phys_map_offset;",
     "return 0xfee00000ull + cp_state.phys_map_offset;", "apic_xapic_base_comes_from_the_msr"),
    ("no fence before the non-serializing x2APIC ICR write",
     "apic/apic.c", "cp_hw_mfence();\n        cp_hw_lfence();\n        cp_hw_wrmsr", "cp_hw_wrmsr",
     "apic_x2apic_nmi_is_one_wrmsr_with_destination_in_high_half"),
    ("LAPIC quiesce leaves the CMCI LVT unmasked",
     "apic/apic.c", "APIC_LVT_PERF, APIC_LVT_THERMAL, APIC_LVT_CMCI,", "APIC_LVT_PERF, APIC_LVT_THERMAL, APIC_LVT_THERMAL,",
     "apic_quiesce_masks_every_lvt_and_soft_disables"),
    ("quiesce touches LVTs the LAPIC lacks",
     "apic/apic.c", "if (maxlvt < min_maxlvt[i])\n            continue;", "if (0 && maxlvt < min_maxlvt[i])\n            continue;",
     "apic_quiesce_skips_lvts_the_lapic_lacks"),
    ("gate rewritten as two 8-byte stores (half-written gate visible)",
     "crash/gate.c", "    return cp_hw_idt_cmpxchg16(gate, lo, hi, new_lo, new_hi);",
     "    cp_hw_idt_write_lo(gate, new_lo);\n    cp_hw_idt_write_lo(gate + 8, new_hi);\n    return (int)(lo | 1);",
     "gate_point_across_4g_boundary_swaps_16_bytes_atomically"),
    ("victims' #MC gates left to the host (IST kept) at the shootdown",
     "crash/gate.c", "    cp_gate_point(cpu->idt_base, CP_VEC_MC, (uint64_t)(uintptr_t)mce_crash, cp_state.hv_cs, 0);\n", "",
     "shootdown_xapic_4_cpus_crash_on_the_bsp"),
    ("crasher's own #MC gate left to the host at the shootdown",
     "crash/shootdown.c", "    cp_gate_point(cp_state.cpus[self].idt_base, CP_VEC_MC, (uint64_t)(uintptr_t)mce_crash, cp_state.hv_cs, 0);\n",
     "", "shootdown_machine_check_on_the_crasher_during_the_wait_is_absorbed"),
    ("victims' #MC gates at trap_nop, as before mce_crash (MCIP never cleared)",
     "crash/gate.c", "    cp_gate_point(cpu->idt_base, CP_VEC_MC, (uint64_t)(uintptr_t)mce_crash, cp_state.hv_cs, 0);\n",
     "    cp_gate_point(cpu->idt_base, CP_VEC_MC, (uint64_t)(uintptr_t)trap_nop, cp_state.hv_cs, 0);\n",
     "shootdown_two_machine_checks_into_a_parked_victim_are_survived"),
    ("mce_crash leaves MCG_STATUS.MCIP set (the next machine check shuts the CPU down)",
     "crash/machine_check.c", "    cp_hw_wrmsr(MSR_IA32_MCG_STATUS, 0);\n", "",
     "shootdown_two_machine_checks_into_a_parked_victim_are_survived"),
    ("mce_crash resumes a context whose RIPV is clear",
     "crash/machine_check.c", "    if (status & MCG_STATUS_RIPV)\n        return;", "    if ((status & MCG_STATUS_RIPV) || cp_state.ready)\n        return;",
     "shootdown_machine_check_without_ripv_on_the_crasher_halts_with_a_message"),
    ("mce_crash returns into a victim whose RIPV is clear (its IRET opens NMIs)",
     "crash/machine_check.c", "        crasher_cannot_resume();\n    cp_victim(pos, regs, 0);\n", "        crasher_cannot_resume();\n",
     "shootdown_machine_check_without_ripv_on_a_parked_victim_parks_it_again_without_iret"),
    ("#DF IST dropped too",
     "crash/gate.c", "    cp_gate_point(cpu->idt_base, CP_VEC_MC, (uint64_t)(uintptr_t)mce_crash, cp_state.hv_cs, 0);\n",
     "    cp_gate_point(cpu->idt_base, CP_VEC_MC, (uint64_t)(uintptr_t)mce_crash, cp_state.hv_cs, 0);\n"
     "    { uint64_t lo, hi; cp_gate_read(cpu->idt_base, CP_VEC_DF, &lo, &hi);\n"
     "      cp_gate_point(cpu->idt_base, CP_VEC_DF, cp_gate_handler(lo, hi), cp_state.hv_cs, 0); }\n",
     "shootdown_x2apic_4_cpus_crash_on_an_ap"),
    ("crasher's own NMI gate left to the host (not trap_nop)",
     "crash/shootdown.c", "cp_gate_point(cp_state.cpus[self].idt_base, CP_VEC_NMI, nop, cp_state.hv_cs, 0);", "(void)nop;",
     "shootdown_x2apic_4_cpus_crash_on_an_ap"),
    ("no barrier between the gate rewrites and the first NMI",
     "crash/shootdown.c", "    cp_hw_mfence();\n    send_nmis(self);", "    send_nmis(self);",
     "shootdown_xapic_4_cpus_crash_on_the_bsp"),
    ("the wait ignores the timeout",
     "crash/shootdown.c", "if (now - start >= cp_state.timeout_ticks)", "if (0 && now - start >= cp_state.timeout_ticks)",
     "shootdown_victim_that_never_answers_times_out"),
    ("a second crasher is not turned into a victim",
     "crash/shootdown.c", "cp_victim_not_via_nmi_crash(self, ctx, CRASHPATH_CPUF_LATE_CRASHER);", "cp_halt_forever();",
     "shootdown_concurrent_second_crasher_becomes_a_victim"),
    ("re-entry of the crasher is not refused",
     "crash/shootdown.c", "if (prev == self)\n            return CRASHPATH_ERR_REENTERED;", "",
     "shootdown_crasher_reentering_gets_an_error_not_a_deadlock"),
    ("a victim by another door than nmi_crash leaves its own gates to the crasher",
     "crash/victim.c", "    cp_gates_to_victim(&cp_state.cpus[pos]);\n    cp_victim(pos, regs, flags);",
     "    cp_victim(pos, regs, flags);",
     "shootdown_svm_guest_exiting_before_its_gate_is_rewritten_parks_with_nmis_blocked"),
    ("a losing crasher publishes its caller's registers only in cp_victim",
     "crash/shootdown.c", "        cp_victim_publish(self, ctx, CRASHPATH_CPUF_LATE_CRASHER);\n", "",
     "shootdown_late_crasher_interrupted_before_cp_victim_keeps_its_callers_registers"),
    ("a save cut short is finished from the nested entry's own frame",
     "crash/victim.c", "cp_notes_save_regs(cpu, cpu->first_regs);", "cp_notes_save_regs(cpu, regs);",
     "shootdown_late_crasher_interrupted_mid_save_keeps_its_callers_registers"),
    ("the first entry's flags are lost when a nested entry finishes its work",
     "crash/victim.c", "cp_notes_add_flags(cpu, cpu->first_flags | extra_flags);", "cp_notes_add_flags(cpu, extra_flags);",
     "shootdown_late_crasher_interrupted_mid_save_keeps_its_callers_registers"),
    ("done flag set before the work, so a re-entry part-way skips it",
     "crash/victim.c", "    if (!cpu->work_done) {\n", "    if (!__atomic_exchange_n(&cpu->work_done, 1, __ATOMIC_SEQ_CST)) {\n",
     "shootdown_victim_reentered_part_way_keeps_its_registers_answers_once"),
    ("answered counted on every entry, not once",
     "crash/victim.c", "if (__atomic_exchange_n(&cpu->answered, 1, __ATOMIC_SEQ_CST))\n        return;", "cpu->answered = 1;",
     "shootdown_victim_reentered_part_way_keeps_its_registers_answers_once"),
    ("stop hook run again on re-entry",
     "crash/victim.c", "if (!cp_state.stop_cpu || cpu->hook_entered)", "if (!cp_state.stop_cpu)",
     "shootdown_victim_reentered_part_way_keeps_its_registers_answers_once"),
    ("no self-NMI queued before halting",
     "crash/victim.c", "        cp_apic_self_nmi();\n        step_end(cpu);", "        step_end(cpu);",
     "shootdown_x2apic_4_cpus_crash_on_an_ap"),
    ("VMXOFF without VMCLEAR of the registered VMCSs",
     "crash/victim.c", "            cp_hw_vmclear(pa);", "            (void)pa;",
     "shootdown_victim_in_a_vmx_guest_parks_through_the_vmexit_hook"),
    ("VM-exit NMI hook does not park the CPU",
     "crash/victim.c", "    cp_victim_not_via_nmi_crash(pos, regs, CRASHPATH_CPUF_VIA_VMEXIT);", "    (void)regs;\n    return 0;",
     "shootdown_victim_in_a_vmx_guest_parks_through_the_vmexit_hook"),
    ("SVM left without STGI",
     "crash/victim.c", "    cp_hw_stgi();\n", "", "shootdown_svm_victim_leaves_svm"),
    ("victim saves the handler's registers, not the interrupted ones",
     "crash/victim.c", "cp_notes_save_regs(cpu, cpu->first_regs);",
     "{ struct crashpath_regs here = *cpu->first_regs; here.rip = (uint64_t)(uintptr_t)cp_victim; cp_notes_save_regs(cpu, &here); }",
     "shootdown_x2apic_4_cpus_crash_on_an_ap"),
    ("duplicate APIC IDs accepted",
     "load/config.c", "if (a->apic_id == b->apic_id)\n        return CRASHPATH_ERR_DUP_APIC_ID;", "",
     "config_every_error_code"),
    ("shared IDT accepted",
     "load/config.c", "if (a_idt && b_idt && a->idt_base == b->idt_base)\n        return CRASHPATH_ERR_IDT_SHARED;", "",
     "config_every_error_code"),
    ("note terminator overwritten",
     "load/notes.c", "    put32(n + CPN(format), CRASHPATH_NOTE_FORMAT);",
     "    put32(n + CPN(format), CRASHPATH_NOTE_FORMAT);\n    put32(n + CPN_END, 1);",
     "notes_area_is_well_formed_before_any_crash"),
    ("pr_reg shifted by one slot",
     "crash/notes.c", "put64(n + pr_reg(i), r[i]);", "put64(n + pr_reg(i + 1), r[i]);",
     "notes_saved_registers_read_back_through_glibc"),
    ("enable_nmis does not restore RFLAGS",
     "entry/crash_entry.asm", "    pushfq                          ; RFLAGS: MOV and PUSH leave the flags alone",
     "    push qword 2", "entry_enable_nmis_preserves_all_at_any_alignment"),
    ("nmi_crash saves rsi and rdx swapped",
     "entry/crash_entry.asm", "%define FRAME_GPRS rdi, rsi, rdx,", "%define FRAME_GPRS rdi, rdx, rsi,",
     "shootdown_nmi_crash_stub_saves_the_interrupted_frame"),
    # Under QEMU: the same protections, seen by the kdump kernel.
    ("victim does not save its registers",
     "crash/victim.c", "            cp_notes_save_regs(cpu, cpu->first_regs);", "            (void)regs;", "scenario:spin-4-x2apic"),
    ("crasher jumps without enable_nmis",
     "crash/shootdown.c", "    cp_hw_enable_nmis();\n    cp_handoff();", "    cp_handoff();", "scenario:nmi-crasher-4-xapic"),
    ("corrupt kdump kernel entered without a check",
     "crash/handoff.c", "if (check_segments() && !(cp_kdump.flags & CRASHPATH_KDUMP_JUMP_IF_CORRUPT))",
     "if (0 && check_segments())", "scenario:corrupt-kernel-halts-x2apic"),
    ("APIC mode cached (seen under QEMU)",
     "apic/apic.c", "uint64_t base = cp_hw_rdmsr(MSR_IA32_APIC_BASE);\n    uint32_t regs[4];",
     "static uint64_t cached;\n    uint64_t base = cached ? cached : (cached = cp_hw_rdmsr(MSR_IA32_APIC_BASE));\n    uint32_t regs[4];",
     "scenario:victim-went-x2apic-4-xapic"),
    ("a fault inside the victim path is taken for a second crasher",
     "crash/shootdown.c", "        if (cp_state.cpus[self].in_victim)\n            cp_victim(self, ctx, CRASHPATH_CPUF_FAULTED);\n", "",
     "scenario:gp-in-stop-hook-4-x2apic"),
    ("crasher leaves its LAPIC live (LINT1 unmasked) into the hand-off",
     "crash/shootdown.c", "    supervisor_cet_off();\n    cp_cpu_shutdown(cpu);\n",
     "    supervisor_cet_off();\n", "scenario:nmi-storm-4-xapic"),
    ("no low-memory backup before the jump",
     "entry/handoff.asm", "    rep movsq\n", "", "scenario:halt-bsp-2-xapic"),
    ("a rewritten gate keeps its IST (NMI frame lands on the IST top)",
     "crash/gate.c", "cp_gate_encode(handler, sel, ist, CP_GATE_TYPE_INTR,", "cp_gate_encode(handler, sel, ist ? ist : cp_gate_ist(lo), CP_GATE_TYPE_INTR,",
     "scenario:ist-nmi-canary-4-xapic"),
    ("victims' #MC gates left to the host, IST kept (seen under QEMU)",
     "crash/gate.c", "    cp_gate_point(cpu->idt_base, CP_VEC_MC, (uint64_t)(uintptr_t)mce_crash, cp_state.hv_cs, 0);\n", "",
     "scenario:ist-mc-canary-4-xapic"),
    ("mce_crash leaves MCG_STATUS.MCIP set (seen under QEMU: the second machine check resets)",
     "crash/machine_check.c", "    cp_hw_wrmsr(MSR_IA32_MCG_STATUS, 0);\n", "", "scenario:mce-twice-parked-4-xapic"),
    ("crasher's own #MC gate left to the host during the wait (seen under QEMU)",
     "crash/shootdown.c", "    cp_gate_point(cp_state.cpus[self].idt_base, CP_VEC_MC, (uint64_t)(uintptr_t)mce_crash, cp_state.hv_cs, 0);\n",
     "", "scenario:mce-crasher-wait-4-x2apic"),
    ("park without re-queuing a self-NMI (an #MC's IRET leaves NMIs open)",
     "crash/victim.c", "        cp_apic_self_nmi();\n        step_end(cpu);", "        step_end(cpu);", "scenario:mce-handoff-4-x2apic"),
    ("a late answer is not recorded as late",
     "crash/victim.c", "        cp_notes_set_outcome(cpu, CRASHPATH_OUTCOME_ANSWERED_LATE);", "", "scenario:stuck-late-4-xapic"),
    ("a nested entry saves the registers again",
     "crash/victim.c", "        if (!cp_notes_regs_saved(cpu) && step_begin(cpu, CRASHPATH_STEP_SAVE)) {\n            cp_notes_save_regs(cpu, cpu->first_regs);",
     "        if (step_begin(cpu, CRASHPATH_STEP_SAVE)) {\n            cp_notes_save_regs(cpu, regs);", "shootdown_svm_guest_victim_parks_at_stgi_keeping_the_vmexit_registers"),
    ("the crash entry records its own RIP, not its caller's",
     "entry/crash_entry.asm", "    mov rax, [rsp + FRAME_SIZE]     ; our return address", "    lea rax, [rel $]",
     "scenario:halt-bsp-2-xapic"),
    ("a nested entry saves the registers again (seen under QEMU)",
     "crash/victim.c", "        if (!cp_notes_regs_saved(cpu) && step_begin(cpu, CRASHPATH_STEP_SAVE)) {\n            cp_notes_save_regs(cpu, cpu->first_regs);",
     "        if (step_begin(cpu, CRASHPATH_STEP_SAVE)) {\n            cp_notes_save_regs(cpu, regs);", "scenario:svm-guests-4-x2apic"),
    ("the gates of a CPU never started are rewritten (its IDT is absent)",
     "crash/shootdown.c", "        if (i == self || !cpu->present)\n            continue;      /* a CPU never started",
     "        if (i == self)\n            continue;      /* a CPU never started", "scenario:never-started-cpu-4-xapic"),
    ("victim does not leave SVM",
     "crash/victim.c", "    leave_svm(cpu);\n", "    (void)leave_svm;\n", "scenario:svm-clgi-4-xapic"),
    ("crasher IRETs to itself with supervisor shadow stacks on (#CP)",
     "crash/shootdown.c", "    supervisor_cet_off();\n    cp_cpu_shutdown(cpu);", "    (void)supervisor_cet_off;\n    cp_cpu_shutdown(cpu);",
     "shootdown_crasher_with_supervisor_shadow_stacks_turns_cet_off_before_enable_nmis"),
    ("CR4.CET cleared before IA32_S_CET",
     "crash/shootdown.c", "    cp_hw_wrmsr(MSR_IA32_S_CET, 0);\n    cp_hw_write_cr4(cr4 & ~CR4_CET);",
     "    cp_hw_write_cr4(cr4 & ~CR4_CET);\n    cp_hw_wrmsr(MSR_IA32_S_CET, 0);",
     "shootdown_crasher_with_supervisor_shadow_stacks_turns_cet_off_before_enable_nmis"),
    ("a FRED host is accepted (victims would never see nmi_crash)",
     "load/config.c", "    if (cp_hw_read_cr4() & CR4_FRED)\n        return CRASHPATH_ERR_FRED;", "",
     "config_fred_host_is_refused"),
    ("xAPIC broadcast ID 0xff accepted as a CPU's APIC ID",
     "load/config.c", "    if (cpu->apic_id >= broadcast_id(mode))", "    if ((void)mode, (void)broadcast_id, cpu->apic_id == 0xffffffffu)",
     "config_xapic_broadcast_id_is_refused_only_in_xapic_mode"),
    ("xAPIC NMI sent to the broadcast ID 0xff",
     "apic/apic.c", "if (dest >= XAPIC_BROADCAST_ID && !(low & ICR_SH_ALL_BUT_SELF))",
     "if (dest > XAPIC_BROADCAST_ID && !(low & ICR_SH_ALL_BUT_SELF))", "apic_xapic_nmi_to_the_broadcast_id_is_never_sent"),
    ("x2APIC ICR write fenced by MFENCE alone (no LFENCE before the WRMSR)",
     "apic/apic.c", "        cp_hw_mfence();\n        cp_hw_lfence();\n", "        cp_hw_mfence();\n",
     "apic_x2apic_nmi_is_one_wrmsr_with_destination_in_high_half"),
    ("hand-off leaves the crasher's arithmetic flags in RFLAGS",
     "entry/handoff.asm", "    push qword 0x2\n    popfq\n", "", "scenario:halt-bsp-2-xapic"),
    ("hand-off leaves the host's DR7 breakpoints armed",
     "entry/handoff.asm", "    xor eax, eax\n    mov dr7, rax\n", "", "scenario:crash-ap-2-x2apic"),
    ("a victim step that faulted is tried again on every faulted entry",
     "crash/victim.c", "        step_faulted(cpu);\n", "        (void)step_faulted;\n",
     "shootdown_victim_fault_that_recurs_on_every_try_parks_after_one_faulted_entry"),
    ("faulted entries into the victim path are not bounded (stack overflow)",
     "crash/victim.c", "        if (++cpu->faulted_entries > CP_MAX_FAULTED_ENTRIES)\n            cp_halt_forever();",
     "        ++cpu->faulted_entries;",
     "shootdown_victim_faulting_outside_any_step_halts_after_a_bounded_number_of_entries"),
    ("crasher hands off in VMX operation when the host recorded no VMX state",
     "crash/shootdown.c", "    leave_unrecorded_vmx(cpu);\n", "    (void)leave_unrecorded_vmx;\n",
     "shootdown_crasher_in_vmx_operation_without_a_record_leaves_it_before_the_hand_off"),
    ("crasher trusts a stale vmxon record and skips the blind VMXOFF",
     "crash/shootdown.c", "    if (cpu->vmx_left || !(cp_hw_read_cr4() & CR4_VMXE))", "    if (cpu->vmx || cpu->vmx_left || !(cp_hw_read_cr4() & CR4_VMXE))",
     "shootdown_crasher_with_a_stale_vmx_record_leaves_vmx_before_the_hand_off"),
    ("crasher's blind VMXOFF without its #UD gate borrowed",
     "crash/shootdown.c", "    cp_gate_point(cpu->idt_base, CP_VEC_UD, (uint64_t)(uintptr_t)vmxoff_ud_fixup, cp_state.hv_cs, 0);\n", "",
     "shootdown_crasher_with_vmxe_but_outside_vmx_operation_survives_the_probe"),
    ("a borrowed gate put back with only its low half",
     "crash/gate.c", "    while (!gate_replace(gate, cur_lo, cur_hi, lo, hi));", "    while (!gate_replace(gate, cur_lo, cur_hi, lo, cur_hi + 0 * hi));",
     "gate_restore_puts_back_exactly_what_was_read"),
    ("the host's #UD gate not put back after the blind VMXOFF",
     "crash/shootdown.c", "    cp_gate_restore(cpu->idt_base, CP_VEC_UD, ud_lo, ud_hi);\n", "",
     "shootdown_crasher_in_vmx_operation_without_a_record_leaves_it_before_the_hand_off"),
    ("the host's quiesce hook never runs on the crasher",
     "crash/shootdown.c", "    if (cp_state.quiesce)\n        cp_state.quiesce(cp_state.quiesce_arg);\n", "",
     "shootdown_quiesce_hook_runs_once_on_the_crasher_after_the_wait_before_enable_nmis"),
    ("a victim answering after the wait still runs the host's stop hook",
     "crash/victim.c", "    if (__atomic_load_n(&cp_state.wait_over, __ATOMIC_ACQUIRE)) {", "    if (0) {",
     "shootdown_victim_answering_after_the_wait_skips_its_stop_hook"),
    ("the host's quiesce hook never runs (seen under QEMU: the HPET watchdog's NMIs reach the kdump kernel)",
     "crash/shootdown.c", "    if (cp_state.quiesce)\n        cp_state.quiesce(cp_state.quiesce_arg);\n", "",
     "scenario:nmi-watchdog-4-xapic"),
    ("kernel placed 2 MiB aligned while boot_params asks for its 16 MiB (seen under QEMU with Linux)",
     "load/bzimage.c", "    L->kernel = align_up(lowest > KERNEL_MIN_LOAD ? lowest : KERNEL_MIN_LOAD, align);",
     "    L->kernel = align_up(lowest > KERNEL_MIN_LOAD ? lowest : KERNEL_MIN_LOAD, KERNEL_ALIGN_64_MIN);",
     "scenario:linux-align16m-4-x2apic"),
    ("victims' NMI gates left at IST 0 though the host gave crashpath an IST slot",
     "crash/gate.c", "cp_state.hv_cs, cp_state.victim_nmi_ist);", "cp_state.hv_cs, 0);",
     "shootdown_victims_take_the_nmi_on_the_ist_slot_they_were_given"),
    ("the TSS slot for the victims' NMI stack is never pointed at it",
     "load/config.c", "            set_tss_ist(src->tss_base, c->victim_nmi_ist, src->nmi_stack_top);",
     "            (void)set_tss_ist;", "config_victim_nmi_ist_points_the_tss_slot_at_each_cpus_nmi_stack"),
    ("a victim at work IRETs from a machine check (NMIs open before its registers are saved)",
     "crash/machine_check.c", "        cp_victim(pos, regs, 0);\n    if (status", "        (void)regs;\n    if (status",
     "shootdown_machine_check_on_a_victim_at_work_finishes_it_without_iret"),
    ("victims' NMI gates left at IST 0 (seen under QEMU: a victim on a wrecked stack loses its context)",
     "crash/gate.c", "cp_state.hv_cs, cp_state.victim_nmi_ist);", "cp_state.hv_cs, 0);",
     "scenario:wrecked-guard-page-4-xapic"),
    # Build checks over the archive (tests/check-ibt.py).
    ("entry stubs without ENDBR64 (every IDT-delivered NMI is a #CP under IBT)",
     "entry/crash_entry.asm", "%1:\n    endbr64\n%endmacro", "%1:\n%endmacro", "check:ibt"),
    ("switch statements compiled to jump tables (NOTRACK jumps to labels without ENDBR64)",
     "Makefile", "-fcf-protection=branch -fno-jump-tables", "-fcf-protection=branch", "check:ibt"),
    ("functions built without -fcf-protection=branch (no ENDBR64 on the C entry points)",
     "Makefile", "-fcf-protection=branch -fno-jump-tables", "-fcf-protection=none -fno-jump-tables", "check:ibt"),
    ("crash-time code calls load-time code (the crash reason through crashpath_strerror)",
     "crash/shootdown.c", "    cp_info_set_reason(reason);", "    cp_info_set_reason(crashpath_strerror(0));",
     "build:crash-time code calls load-time code"),
    ("kdump kernel placed 2 MiB aligned whatever its kernel_alignment asks",
     "load/bzimage.c", "for (uint64_t align = bz->align_preferred;; align >>= 1) {",
     "for (uint64_t align = KERNEL_ALIGN_64_MIN;; align >>= 1) {",
     "kdump_kernel_alignment_16m_is_honoured_and_written_back"),
    ("a lowered kernel alignment not written back to boot_params",
     "load/bzimage.c", "    put32(bp, BZ_KERNEL_ALIGNMENT, (uint32_t)L->kernel_align);\n", "",
     "kdump_region_too_short_for_16m_lowers_the_alignment_down_to_min_alignment"),
    ("kernel or initrd placed above 4 GiB without XLF_CAN_BE_LOADED_ABOVE_4G",
     "load/bzimage.c", "if (!(bz->xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G) &&",
     "if (0 && !(bz->xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G) &&",
     "kdump_above_4g_needs_xlf_can_be_loaded_above_4g"),
    ("a 4-level-only kernel entered with CR4.LA57 on",
     "load/bzimage.c", "if (L->levels == 5 && !(bz->xloadflags & XLF_5LEVEL))",
     "if (0 && L->levels == 5 && !(bz->xloadflags & XLF_5LEVEL))", "kdump_5_level_host_needs_xlf_5level"),
    ("note buffers accepted in RAM the kdump kernel is given (ioremap on RAM: no /proc/vmcore)",
     "load/kdump.c", "    if (!err)\n        err = cp_memmap_check_notes(k, &L);\n", "",
     "kdump_note_buffer_in_kdump_ram_is_refused"),
]


def run(cmd, cwd, timeout):
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)


def failure_reason(out, test):
    """The first reason the run gave, so the log says how the mutant failed."""
    for line in out.splitlines():
        if "check failed: " in line:
            return ": " + line.split("check failed: ", 1)[1][:150]
        if line.startswith(f"FAIL {test}") and " FAIL " in line:
            return ": " + line.split(" FAIL ", 1)[1].split("  (console")[0][:150]
    return ""


def try_mutant(mutant, work):
    """Apply one mutant in a fresh copy of the tree at work; returns (caught, line to print)."""
    rule, path, old, new, test = mutant
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns("build", ".git"))
    src = os.path.join(work, path)
    text = open(src).read()
    if text.count(old) != 1:
        return False, f"MISSED  {rule}: mutation site not found once in {path}"
    open(src, "w").write(text.replace(old, new))
    if test.startswith("build:"):
        # the library's own build must refuse the mutant, saying why
        build = run(["make", "--no-print-directory", "all"], work, 300)
        why = test[len("build:"):]
        ok = build.returncode != 0 and why in build.stdout
        said = [l.strip() for l in build.stdout.splitlines() if l.strip() and not l.startswith(("  ", "make"))]
        verdict = ("fails: " + " / ".join(said))[:200] if ok else \
            "still builds" if build.returncode == 0 else "fails for another reason"
        return ok, f"{'CAUGHT' if ok else 'MISSED'}  {rule} -> the build {verdict}"
    if test.startswith("check:"):
        # a build check (tests/check-<name>.py) over the archive must refuse the mutant
        build = run(["make", "--no-print-directory", "all"], work, 300)
        if build.returncode != 0:
            return False, f"MISSED  {rule} -> {test} mutant does not build (fix the mutation)"
        out = run(["python3", f"tests/check-{test[len('check:'):]}.py", "build/libcrashpath.a"], work, 120)
        ok = out.returncode != 0
        verdict = ("fails: " + out.stdout.splitlines()[0][:150]) if ok else "still passes"
        return ok, f"{'CAUGHT' if ok else 'MISSED'}  {rule} -> {test} {verdict}"
    if test.startswith("scenario:"):
        test = test[len("scenario:"):]
        # a Linux row borrows the kernel and initramfs already built (make linux-kdump)
        linux = os.path.join(ROOT, "build", "kdump", "linux")
        if os.path.isdir(linux):
            os.makedirs(os.path.join(work, "build", "kdump"), exist_ok=True)
            os.symlink(linux, os.path.join(work, "build", "kdump", "linux"))
        build = run(["make", "--no-print-directory", "hv", "mini"], work, 300)
        check_cmd = ["tests/run-scenarios", test]
    else:
        build = run(["make", "--no-print-directory", "build/unit/run-unit"], work, 300)
        check_cmd = ["env", "CRASHPATH_TEST_TIMEOUT=20", "build/unit/run-unit", test]
    if build.returncode != 0:
        return False, f"MISSED  {rule} -> {test} mutant does not build (fix the mutation)"
    out = run(check_cmd, work, 600).stdout
    ok = f"FAIL {test}" in out
    verdict = "fails" + failure_reason(out, test) if ok else "still passes"
    return ok, f"{'CAUGHT' if ok else 'MISSED'}  {rule} -> {test} {verdict}"


def main():
    only = sys.argv[1] if len(sys.argv) > 1 else None
    chosen = [m for m in MUTANTS if not only or only in m[0] or only in m[4]]
    tmp = tempfile.mkdtemp(prefix="crashpath-mutants-")
    results = {}
    try:
        # Unit-test and build-check mutants are builds plus a short test: two at a time,
        # one per core. Scenario mutants run QEMU under timing: one at a time, alone.
        quick = [i for i, m in enumerate(chosen) if not m[4].startswith("scenario:")]
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            futures = {pool.submit(try_mutant, chosen[i], os.path.join(tmp, f"tree{i}")): i for i in quick}
            for f in concurrent.futures.as_completed(futures):
                results[futures[f]] = f.result()
                shutil.rmtree(os.path.join(tmp, f"tree{futures[f]}"), ignore_errors=True)
        for i in quick:
            print(results[i][1], flush=True)
        for i, m in enumerate(chosen):
            if i not in results:
                results[i] = try_mutant(m, os.path.join(tmp, "tree"))
                print(results[i][1], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    caught = sum(1 for ok, _ in results.values() if ok)
    missed = len(results) - caught
    print(f"mutants: {caught} caught, {missed} missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
