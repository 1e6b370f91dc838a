/* SPDX-License-Identifier: BSD-2-Clause */
/* test_entry.c — the NASM entry stubs run for real in user mode: crashpath_enable_nmis preserves every
 * register and RFLAGS at any stack alignment, crashpath_trap_nop returns through IRETQ, and the capture
 * stub returns cleanly when the crash path refuses. */
#include "cp/internal.h"
#include "sim.h"
#include "testlib.h"

static const uint64_t sentinels[15] = {
    0x1111111111111111ull, 0x2222222222222222ull, 0x3333333333333333ull, 0x4444444444444444ull,
    0x5555555555555555ull, 0x6666666666666666ull, 0x7777777777777777ull, 0x8888888888888888ull,
    0x9999999999999999ull, 0xaaaaaaaaaaaaaaaaull, 0xbbbbbbbbbbbbbbbbull, S_R12, S_R13, S_R14, S_R15,
};

/* CF PF AF ZF SF DF OF and the reserved bit 1; user mode cannot change IF or IOPL. */
#define FLAGS_SET 0x0cd7ull
#define FLAGS_MASK 0x0cd7ull

TEST(entry_enable_nmis_preserves_all_at_any_alignment)
{
    for (uint64_t misalign = 0; misalign < 16; misalign++) {
        for (int f = 0; f < 2; f++) {
            uint64_t out[18] = { 0 };
            uint64_t flags = f ? FLAGS_SET : 0x2;

            th_enable_nmis_probe(misalign, flags, out);
            for (int r = 0; r < 15; r++)
                CHECK_EQ(out[r], sentinels[r]);
            CHECK_EQ(out[15] & FLAGS_MASK, flags & FLAGS_MASK);
            CHECK_EQ(out[16], out[17]);        /* RSP back where the call left it */
        }
    }
}

TEST(entry_trap_nop_returns_through_iretq)
{
    CHECK_EQ(th_trap_nop_probe(), 0x600d);
}

TEST(entry_trap_nop_is_endbr64_then_iretq_alone)
{
    const uint8_t *p = (const uint8_t *)(uintptr_t)crashpath_trap_nop;

    CHECK_EQ(p[0], 0xf3);   /* ENDBR64: f3 0f 1e fa, an IDT gate target under IBT */
    CHECK_EQ(p[1], 0x0f);
    CHECK_EQ(p[2], 0x1e);
    CHECK_EQ(p[3], 0xfa);
    CHECK_EQ(p[4], 0x48);   /* REX.W */
    CHECK_EQ(p[5], 0xcf);   /* IRET */
}

TEST(entry_crash_stub_returns_with_callee_saved_intact_when_refused)
{
    uint64_t rsp;

    /* crashpath_init never ran: the crash entry must return, not hang */
    sim_reset(1, CRASHPATH_APIC_XAPIC, NULL);
    CHECK_EQ(th_crash("refused", &rsp), (uint64_t)(int64_t)CRASHPATH_ERR_NOT_READY);
    CHECK_EQ(th_vmexit(), 0);
}
