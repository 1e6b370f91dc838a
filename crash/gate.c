/* SPDX-License-Identifier: BSD-2-Clause */
/* gate.c — 64-bit IDT gate encoding and the crash-time gate rewrites (IST drop, handler swap).
 * A gate is never observable half-written: one 8-byte store when the high half is unchanged,
 * LOCK CMPXCHG16B otherwise (Xen asserts the first case; we handle both). */
#include "cp/hw.h"
#include "cp/internal.h"

/*
 * 64-bit interrupt/trap gate (SDM vol. 3, 6.14.1, figure 6-8):
 *   lo  [15:0]  offset 15:0      [31:16] segment selector
 *       [34:32] IST              [39:35] zero
 *       [43:40] type (0xE interrupt, 0xF trap)   [44] zero
 *       [46:45] DPL              [47] present     [63:48] offset 31:16
 *   hi  [31:0]  offset 63:32     [63:32] reserved
 */
#define GATE_IST_MASK (7ull << 32)
#define GATE_TYPE_SHIFT 40
#define GATE_DPL_MASK (3ull << 45)
#define GATE_PRESENT (1ull << 47)
#define GATE_OFF_LO_MASK 0xffffull
#define GATE_HI_OFF_MASK 0xffffffffull

uint64_t cp_gate_handler(uint64_t lo, uint64_t hi)
{
    return (lo & GATE_OFF_LO_MASK) | ((lo >> 32) & 0xffff0000ull) | ((hi & GATE_HI_OFF_MASK) << 32);
}

unsigned int cp_gate_ist(uint64_t lo)
{
    return (unsigned int)((lo & GATE_IST_MASK) >> 32);
}

void cp_gate_encode(uint64_t handler, uint16_t sel, unsigned int ist, unsigned int type,
                    unsigned int dpl, uint64_t *lo, uint64_t *hi)
{
    *lo = (handler & GATE_OFF_LO_MASK) | ((uint64_t)sel << 16) | ((uint64_t)(ist & 7u) << 32) |
          ((uint64_t)(type & 0xfu) << GATE_TYPE_SHIFT) | ((uint64_t)(dpl & 3u) << 45) |
          GATE_PRESENT | ((handler & 0xffff0000ull) << 32);
    *hi = handler >> 32;
}

static uint64_t gate_addr(uint64_t idt_base, unsigned int vector)
{
    return idt_base + (uint64_t)vector * 16u;
}

/* The gate a rewrite produces from the current one: pointed at handler, an
 * interrupt gate (IF clear in the handler), present, IST ist (or the one it
 * has, CP_GATE_IST_KEEP), selector sel; the DPL and the reserved high bits
 * are kept. */
static void gate_edit(uint64_t lo, uint64_t hi, uint64_t handler, uint16_t sel, unsigned int ist,
                      uint64_t *new_lo, uint64_t *new_hi)
{
    if (ist == CP_GATE_IST_KEEP)        /* the slot the host's gate names now */
        ist = cp_gate_ist(lo);
    cp_gate_encode(handler, sel, ist, CP_GATE_TYPE_INTR, (unsigned int)((lo & GATE_DPL_MASK) >> 45),
                   new_lo, new_hi);
    *new_hi |= hi & ~GATE_HI_OFF_MASK;
}

/* Replace the gate read as lo/hi by new_lo/new_hi as one atomic step. If the
 * high half (offset 63:32) does not change, a single aligned 8-byte store of
 * the low half suffices; otherwise CMPXCHG16B, which fails (0) if the gate
 * changed since it was read. */
static int gate_replace(uint64_t gate, uint64_t lo, uint64_t hi, uint64_t new_lo, uint64_t new_hi)
{
    if (new_hi == hi) {
        cp_hw_idt_write_lo(gate, new_lo);
        return 1;
    }
    return cp_hw_idt_cmpxchg16(gate, lo, hi, new_lo, new_hi);
}

void cp_gate_read(uint64_t idt_base, unsigned int vector, uint64_t *lo, uint64_t *hi)
{
    cp_hw_idt_read(gate_addr(idt_base, vector), lo, hi);
}

void cp_gate_restore(uint64_t idt_base, unsigned int vector, uint64_t lo, uint64_t hi)
{
    uint64_t gate = gate_addr(idt_base, vector), cur_lo, cur_hi;

    do
        cp_hw_idt_read(gate, &cur_lo, &cur_hi);
    while (!gate_replace(gate, cur_lo, cur_hi, lo, hi));
}

void cp_gate_point(uint64_t idt_base, unsigned int vector, uint64_t handler, uint16_t sel, unsigned int ist)
{
    uint64_t gate = gate_addr(idt_base, vector), lo, hi, new_lo, new_hi;

    do {
        cp_hw_idt_read(gate, &lo, &hi);
        gate_edit(lo, hi, handler, sel, ist, &new_lo, &new_hi);
    } while (!gate_replace(gate, lo, hi, new_lo, new_hi));
}

/* One victim's gates at the shootdown: #MC pointed at crashpath_mce_crash
 * (IST 0) and NMI at crashpath_nmi_crash, on victim_nmi_ist's stack (see
 * rewrite_gates in shootdown.c). The crasher does this for every CPU; a CPU
 * that becomes a victim without crashpath_nmi_crash does it for itself too,
 * and both writers produce the same gates. */
void cp_gates_to_victim(const struct cp_cpu *cpu)
{
    cp_gate_point(cpu->idt_base, CP_VEC_MC, (uint64_t)(uintptr_t)crashpath_mce_crash, cp_state.hv_cs, 0);
    cp_gate_point(cpu->idt_base, CP_VEC_NMI, (uint64_t)(uintptr_t)crashpath_nmi_crash, cp_state.hv_cs,
                  cp_state.victim_nmi_ist == CRASHPATH_NMI_IST_HOST ? CP_GATE_IST_KEEP : cp_state.victim_nmi_ist);
}
