/* SPDX-License-Identifier: BSD-2-Clause */
/* test_gate.c — IDT gate encoding, gate rewrites that are never observable half-written, for
 * handlers above and below 4 GiB, and a borrowed gate put back exactly as it was. */
#include <string.h>
#include "cp/internal.h"
#include "sim.h"
#include "testlib.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void read_gate(const struct sim_cpu *c, unsigned int v, uint64_t *lo, uint64_t *hi)
{
    memcpy(lo, c->idt + v * 16, 8);
    memcpy(hi, c->idt + v * 16 + 8, 8);
}

static void write_gate(struct sim_cpu *c, unsigned int v, uint64_t lo, uint64_t hi)
{
    memcpy(c->idt + v * 16, &lo, 8);
    memcpy(c->idt + v * 16 + 8, &hi, 8);
}

/* The crasher borrows its #UD gate for a blind VMXOFF and puts back every
 * bit it read, reserved ones included, whichever way the swap goes. */
TEST(gate_restore_puts_back_exactly_what_was_read)
{
    sim_reset(1, CRASHPATH_APIC_XAPIC, NULL);
    for (int round = 0; round < 1000; round++) {
        struct sim_cpu *c = &sim_cpus[0];
        uint64_t lo = next_random(), hi = next_random(), saved_lo, saved_hi, new_lo, new_hi;

        write_gate(c, 6, lo, hi);
        cp_gate_read((uint64_t)(uintptr_t)c->idt, 6, &saved_lo, &saved_hi);
        cp_gate_point((uint64_t)(uintptr_t)c->idt, 6, round & 1 ? 0xffffffff80200000ull : 0x401000ull, SIM_CS, 0);
        cp_gate_restore((uint64_t)(uintptr_t)c->idt, 6, saved_lo, saved_hi);
        read_gate(c, 6, &new_lo, &new_hi);
        CHECK_EQ(new_lo, lo);
        CHECK_EQ(new_hi, hi);
        if (tl_g_failed())
            break;
    }
}

TEST(gate_encode_round_trips_below_and_above_4g)
{
    static const uint64_t handlers[] = {
        0x0000000000401000ull, 0x00000000fffffff0ull, 0x0000000100000000ull,
        0x00007fffdeadbeefull, 0xffffffff80123456ull, 0xffff800000000010ull,
    };

    for (unsigned int i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
        uint64_t lo, hi;

        cp_gate_encode(handlers[i], 0xe008, 5, 0xe, 3, &lo, &hi);
        CHECK_EQ(cp_gate_handler(lo, hi), handlers[i]);
        CHECK_EQ(cp_gate_ist(lo), 5);
        CHECK_EQ((lo >> 16) & 0xffff, 0xe008);     /* selector */
        CHECK_EQ((lo >> 40) & 0xf, 0xe);           /* type */
        CHECK_EQ((lo >> 45) & 3, 3);               /* DPL */
        CHECK_EQ((lo >> 47) & 1, 1);               /* present */
        CHECK_EQ(hi >> 32, 0);                     /* reserved */
    }
}

TEST(gate_point_same_high_half_is_one_8_byte_store)
{
    struct sim_cpu *c;
    uint64_t lo, hi;

    sim_reset(1, CRASHPATH_APIC_XAPIC, NULL);
    c = &sim_cpus[0];
    /* the host's handler shares offset 63:32 with crashpath_trap_nop */
    sim_set_gate(c, 2, ((uint64_t)(uintptr_t)crashpath_trap_nop & ~0xffffffffull) | 0x1234, 2);
    sim_clear_log(c);
    cp_gate_point((uint64_t)(uintptr_t)c->idt, 2, (uint64_t)(uintptr_t)crashpath_trap_nop, SIM_CS, 0);
    CHECK_EQ(sim_gate_handler(c, 2), (uint64_t)(uintptr_t)crashpath_trap_nop);
    CHECK_EQ(sim_count_ops(c, OP_IDT_W8, 2), 1);
    CHECK_EQ(sim_count_ops(c, OP_IDT_CX16, 0xffffffffu), 0);
    read_gate(c, 2, &lo, &hi);
    CHECK_EQ(cp_gate_ist(lo), 0);
}

TEST(gate_point_across_4g_boundary_swaps_16_bytes_atomically)
{
    struct sim_cpu *c;

    sim_reset(1, CRASHPATH_APIC_XAPIC, NULL);
    c = &sim_cpus[0];
    /* host handler in the top 2 GiB, new handler in user space: both halves change */
    sim_set_gate(c, 2, 0xffffffff81000080ull, 2);
    sim_clear_log(c);
    cp_gate_point((uint64_t)(uintptr_t)c->idt, 2, (uint64_t)(uintptr_t)crashpath_nmi_crash, SIM_CS, 0);
    CHECK_EQ(sim_gate_handler(c, 2), (uint64_t)(uintptr_t)crashpath_nmi_crash);
    CHECK_EQ(sim_count_ops(c, OP_IDT_CX16, 2), 1);
    /* never a lone 8-byte store that would pair a new low half with an old high half */
    CHECK_EQ(sim_count_ops(c, OP_IDT_W8, 0xffffffffu), 0);

    /* and back below 4 GiB */
    sim_clear_log(c);
    cp_gate_point((uint64_t)(uintptr_t)c->idt, 2, 0x401000ull, SIM_CS, 0);
    CHECK_EQ(sim_gate_handler(c, 2), 0x401000ull);
    CHECK_EQ(sim_count_ops(c, OP_IDT_CX16, 2), 1);
    CHECK_EQ(sim_count_ops(c, OP_IDT_W8, 0xffffffffu), 0);
}

TEST(gate_point_retries_when_the_gate_changed_under_cmpxchg16b)
{
    struct sim_cpu *c;

    sim_reset(1, CRASHPATH_APIC_XAPIC, NULL);
    c = &sim_cpus[0];
    sim_set_gate(c, 2, 0xffffffff81000080ull, 2);
    sim_cx16_fail_next = 1;
    sim_clear_log(c);
    cp_gate_point((uint64_t)(uintptr_t)c->idt, 2, (uint64_t)(uintptr_t)crashpath_nmi_crash, SIM_CS, 0);
    CHECK_EQ(sim_gate_handler(c, 2), (uint64_t)(uintptr_t)crashpath_nmi_crash);
    CHECK_EQ(sim_count_ops(c, OP_IDT_CX16, 2), 2);
}

TEST(gate_point_sets_interrupt_gate_present_ist0_keeps_dpl_and_reserved)
{
    struct sim_cpu *c;
    uint64_t lo, hi;

    sim_reset(1, CRASHPATH_APIC_XAPIC, NULL);
    c = &sim_cpus[0];
    /* a not-present trap gate, DPL 2, IST 4, other selector, reserved high bits set */
    cp_gate_encode(0xffffffff81000080ull, 0x08, 4, 0xf, 2, &lo, &hi);
    lo &= ~(1ull << 47);
    hi |= 0xabcd000000000000ull;
    write_gate(c, 2, lo, hi);
    cp_gate_point((uint64_t)(uintptr_t)c->idt, 2, 0xffffffff80200000ull, SIM_CS, 0);
    read_gate(c, 2, &lo, &hi);
    CHECK_EQ(cp_gate_handler(lo, hi), 0xffffffff80200000ull);
    CHECK_EQ(cp_gate_ist(lo), 0);
    CHECK_EQ((lo >> 16) & 0xffff, SIM_CS);
    CHECK_EQ((lo >> 40) & 0xf, 0xe);
    CHECK_EQ((lo >> 45) & 3, 2);
    CHECK_EQ((lo >> 47) & 1, 1);
    CHECK_EQ(hi >> 32, 0xabcd0000ull);
}
