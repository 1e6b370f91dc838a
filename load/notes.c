/* SPDX-License-Identifier: BSD-2-Clause */
/* notes.c — load time: every note buffer's headers written by crashpath_init, so a CPU that never
 * answers still leaves a well-formed note area in the dump. */
#include "cp/notes_layout.h"

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
