/* SPDX-License-Identifier: BSD-2-Clause */
/* cp/notes_layout.h — the byte map of crashpath's note buffers (docs/notes.md), shared by
 * load/notes.c, which writes the headers, and crash/notes.c, which fills them at crash time. */
#ifndef CP_NOTES_LAYOUT_H
#define CP_NOTES_LAYOUT_H

#include <stddef.h>
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
static inline uint64_t pr_reg(uint64_t i)
{
    return PRS_REG + i * 8u;
}

static inline void put32(uint8_t *p, uint32_t v)
{
    __builtin_memcpy(p, &v, sizeof(v));
}

static inline void put64(uint8_t *p, uint64_t v)
{
    __builtin_memcpy(p, &v, sizeof(v));
}

static inline uint32_t get32(const uint8_t *p)
{
    uint32_t v;

    __builtin_memcpy(&v, p, sizeof(v));
    return v;
}

#endif
