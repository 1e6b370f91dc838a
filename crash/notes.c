/* SPDX-License-Identifier: BSD-2-Clause */
/* notes.c — crash time: registers, control state, flags and outcomes written into the note
 * buffers whose headers crashpath_init prepared (load/notes.c; byte map in cp/notes_layout.h). */
#include "cp/hw.h"
#include "cp/notes_layout.h"

void cp_notes_save_regs(const struct cp_cpu *cpu, const struct crashpath_regs *regs)
{
    uint8_t *n = cpu->notes;
    const uint64_t *r = &regs->r15;
    static const uint8_t sel_order[4] = { 1, 2, 3, 4 };   /* ds, es, fs, gs: pr_reg[23..26] */

    /* pr_reg[0..20] is the frame as saved by the entry stub, in order. */
    for (uint32_t i = 0; i < sizeof(*regs) / 8; i++)
        put64(n + pr_reg(i), r[i]);
    put64(n + pr_reg(21), cp_hw_rdmsr(MSR_FS_BASE));
    put64(n + pr_reg(22), cp_hw_rdmsr(MSR_GS_BASE));
    for (uint32_t i = 0; i < 4; i++)
        put64(n + pr_reg(23u + i), cp_hw_read_sel(sel_order[i]));

    put64(n + CPN(cr0), cp_hw_read_cr0());
    put64(n + CPN(cr2), cp_hw_read_cr2());
    put64(n + CPN(cr3), cp_hw_read_cr3());
    put64(n + CPN(cr4), cp_hw_read_cr4());
    put64(n + CPN(efer), cp_hw_rdmsr(MSR_EFER));
    put32(n + CPN(apic_mode), (uint32_t)cp_apic_mode());
    put32(n + CPN(saves), get32(n + CPN(saves)) + 1);
    cp_notes_add_flags(cpu, CRASHPATH_CPUF_REGS_SAVED);
}

void cp_notes_add_flags(const struct cp_cpu *cpu, uint32_t flags)
{
    /* Only this CPU writes its flags, but an NMI may nest between the read
     * and the write of a plain |=: a locked OR loses nothing. */
    __atomic_fetch_or((uint32_t *)(void *)(cpu->notes + CPN(flags)), flags, __ATOMIC_SEQ_CST);
}

void cp_notes_set_answer_tsc(const struct cp_cpu *cpu, uint64_t tsc)
{
    put64(cpu->notes + CPN(answer_tsc), tsc);
}

uint32_t cp_notes_claim_outcome(const struct cp_cpu *cpu, uint32_t outcome)
{
    uint32_t expected = CRASHPATH_OUTCOME_NONE;
    uint32_t *field = (uint32_t *)(void *)(cpu->notes + CPN(outcome));

    /* The crasher (timed out) and a late victim (answered) may race for the
     * same field: the first to swap it from NONE wins, the other learns
     * which outcome is in force. */
    if (__atomic_compare_exchange_n(field, &expected, outcome, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        return outcome;
    return expected;
}

void cp_notes_set_outcome(const struct cp_cpu *cpu, uint32_t outcome)
{
    __atomic_store_n((uint32_t *)(void *)(cpu->notes + CPN(outcome)), outcome, __ATOMIC_SEQ_CST);
}

void cp_info_set32(uint32_t offset, uint32_t v)
{
    put32(cp_state.info_note + INFO_DESC + offset, v);
}

void cp_info_set64(uint32_t offset, uint64_t v)
{
    put64(cp_state.info_note + INFO_DESC + offset, v);
}

void cp_info_set_reason(const char *reason)
{
    char *dst = (char *)(cp_state.info_note + INFO(reason));

    cp_strlcpy(dst, reason ? reason : "", sizeof(((struct crashpath_info_note *)0)->reason));
}

void cp_info_mark_not_answered(uint32_t index)
{
    uint8_t *word = cp_state.info_note + INFO(not_answered) + (uint64_t)(index / 64u) * 8u;
    uint64_t v;

    __builtin_memcpy(&v, word, sizeof(v));
    put64(word, v | (1ull << (index % 64u)));
}

void cp_notes_count_reentry(const struct cp_cpu *cpu)
{
    __atomic_fetch_add((uint32_t *)(void *)(cpu->notes + CPN(reentries)), 1u, __ATOMIC_SEQ_CST);
}

void cp_notes_count_machine_check(const struct cp_cpu *cpu)
{
    __atomic_fetch_add((uint32_t *)(void *)(cpu->notes + CPN(machine_checks)), 1u, __ATOMIC_SEQ_CST);
}

void cp_notes_set_faulted_steps(const struct cp_cpu *cpu, uint32_t steps)
{
    put32(cpu->notes + CPN(faulted_steps), steps);
}

int cp_notes_regs_saved(const struct cp_cpu *cpu)
{
    return (get32(cpu->notes + CPN(flags)) & CRASHPATH_CPUF_REGS_SAVED) != 0;
}
