/* notes.c — crash notes in ELF note format: headers written at load time, so a CPU that never
 * answers still leaves a well-formed area; registers and outcomes filled in at crash time. */
#include <stddef.h>
#include "cp/hw.h"
#include "cp/internal.h"

/*
 * Per-CPU buffer (docs/notes.md has the byte map):
 *     0  Elf64_Nhdr {5, 336, NT_PRSTATUS}   12  "CORE\0" + 3 pad   20  elf_prstatus (336)
 *   356  Elf64_Nhdr {10, 88, CRASHPATH_NT_CPU}  368  "CRASHPATH\0" + 2 pad  380  cpu note (88)
 *   468  12 zero bytes: the terminator the kdump kernel's note walk stops at
 * Linux pads name and descriptor to 4 bytes even in ELF64 notes, so the
 * descriptors are only 4-byte aligned: every field goes through put64/put32.
 */
#define NOTE_HDR 12u
#define NT_PRSTATUS 1u
#define PRSTATUS_SIZE 336u
#define PRS_NOTE 0u
#define PRS_DESC (PRS_NOTE + NOTE_HDR + 8u)
#define PRS_PID (PRS_DESC + 32u)          /* pr_pid */
#define PRS_REG (PRS_DESC + 112u)         /* pr_reg[27], user_regs_struct order */
#define CPN_NOTE (PRS_DESC + PRSTATUS_SIZE)
#define CPN_DESC (CPN_NOTE + NOTE_HDR + 12u)
#define CPN_END (CPN_DESC + (uint32_t)sizeof(struct crashpath_cpu_note))
#define INFO_DESC (NOTE_HDR + 12u)
#define INFO_END (INFO_DESC + (uint32_t)sizeof(struct crashpath_info_note))

_Static_assert(sizeof(struct crashpath_regs) == 168, "frame layout is fixed by the entry stubs (21 quadwords)");
_Static_assert(sizeof(struct crashpath_cpu_note) == 88, "cpu note layout");
_Static_assert(CPN_END + NOTE_HDR <= CRASHPATH_CPU_NOTES_SIZE, "per-CPU notes fit their buffer");
_Static_assert(INFO_END + NOTE_HDR <= CRASHPATH_INFO_NOTE_SIZE, "crash-info note fits its buffer");

#define CPN(field) (CPN_DESC + (uint32_t)offsetof(struct crashpath_cpu_note, field))
#define INFO(field) (INFO_DESC + (uint32_t)offsetof(struct crashpath_info_note, field))

/* Offset of pr_reg[i] in the buffer. */
static uint64_t pr_reg(uint64_t i)
{
    return PRS_REG + i * 8u;
}

static void put32(uint8_t *p, uint32_t v)
{
    __builtin_memcpy(p, &v, sizeof(v));
}

static void put64(uint8_t *p, uint64_t v)
{
    __builtin_memcpy(p, &v, sizeof(v));
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;

    __builtin_memcpy(&v, p, sizeof(v));
    return v;
}

static void put_note_header(uint8_t *p, uint32_t namesz, uint32_t descsz, uint32_t type, const char *name)
{
    put32(p, namesz);
    put32(p + 4, descsz);
    put32(p + 8, type);
    for (uint32_t i = 0; i < namesz; i++)
        p[NOTE_HDR + i] = (uint8_t)name[i];
}

void cp_notes_prepare_cpu(const struct cp_cpu *cpu)
{
    uint8_t *n = cpu->notes;

    cp_zero(n, CRASHPATH_CPU_NOTES_SIZE);
    put_note_header(n + PRS_NOTE, 5, PRSTATUS_SIZE, NT_PRSTATUS, "CORE");
    /* pr_pid becomes gdb's thread id: the logical index + 1, never 0. */
    put32(n + PRS_PID, cpu->index + 1);
    put_note_header(n + CPN_NOTE, sizeof(CRASHPATH_NOTE_NAME), sizeof(struct crashpath_cpu_note),
                    CRASHPATH_NT_CPU, CRASHPATH_NOTE_NAME);
    put32(n + CPN(format), CRASHPATH_NOTE_FORMAT);
    put32(n + CPN(cpu_index), cpu->index);
    put32(n + CPN(apic_id), cpu->apic_id);
    put32(n + CPN(outcome), cpu->present ? CRASHPATH_OUTCOME_NONE : CRASHPATH_OUTCOME_NOT_PRESENT);
}

void cp_notes_prepare_info(void)
{
    uint8_t *n = cp_state.info_note;

    cp_zero(n, CRASHPATH_INFO_NOTE_SIZE);
    put_note_header(n, sizeof(CRASHPATH_NOTE_NAME), sizeof(struct crashpath_info_note),
                    CRASHPATH_NT_CRASH_INFO, CRASHPATH_NOTE_NAME);
    put32(n + INFO(format), CRASHPATH_NOTE_FORMAT);
    put32(n + INFO(version), CRASHPATH_VERSION);
    put32(n + INFO(crashing_cpu), CP_NO_CPU);
    put32(n + INFO(crashing_apic_id), CP_NO_CPU);
    put32(n + INFO(nr_cpus), cp_state.nr_cpus);
    put32(n + INFO(timeout_ms), cp_state.timeout_ms);
    put32(n + INFO(send_mode), cp_state.send_mode);
    put64(n + INFO(tsc_khz), cp_state.tsc_khz);
}

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
