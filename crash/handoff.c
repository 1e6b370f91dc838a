/* SPDX-License-Identifier: BSD-2-Clause */
/* handoff.c — the last step of the crashing CPU: jump to the kdump kernel that
 * crashpath_load_kdump prepared, or with none loaded, say so and halt. */
#include "cp/hw.h"
#include "cp/internal.h"

/* What crashpath_load_kdump (load/kdump.c) prepared for the jump. */
struct cp_kdump cp_kdump;

static const char *const segment_names[CP_NR_SEGMENTS] = { "kernel", "initrd", "boot_params", "cmdline" };

static int digest_differs(const uint8_t *a, const uint8_t *b)
{
    uint8_t diff = 0;

    for (int i = 0; i < 32; i++)
        diff |= (uint8_t)(a[i] ^ b[i]);
    return diff != 0;
}

__attribute__((noinline)) static void report_corrupt(int segment)
{
    struct cp_line l = { .len = 0 };

    cp_line_str(&l, "crashpath: kdump segment ");
    cp_line_str(&l, segment_names[segment]);
    cp_line_str(&l, " corrupt (SHA-256 differs from load time)");
    cp_line_emit(&l);
}

/* SHA-256 of every segment against the load-time value, as kexec's
 * purgatory checks before it enters the new kernel: a host bug that wrote
 * into the region since load would otherwise show up as a kdump kernel that
 * dies somewhere early, or worse, a dump that lies. Returns the bitmask of
 * corrupt segments, reported in the crash-info note and on the console. */
__attribute__((noinline)) static uint32_t check_segments(void)
{
    uint64_t t0 = cp_hw_rdtsc();
    uint32_t corrupt = 0;

    for (int i = 0; i < CP_NR_SEGMENTS; i++) {
        const struct cp_segment *s = &cp_kdump.segments[i];
        uint8_t now[32];

        cp_sha256(s->virt, s->size, now);
        if (digest_differs(now, s->sha256)) {
            corrupt |= 1u << i;
            report_corrupt(i);
        }
    }
    CP_INFO_SET64(integrity_ticks, cp_hw_rdtsc() - t0);
    CP_INFO_SET32(corrupt_segments, corrupt);
    CP_INFO_SET32(integrity, corrupt ? CRASHPATH_INTEGRITY_CORRUPT : CRASHPATH_INTEGRITY_OK);
    return corrupt;
}

void cp_handoff(void)
{
    struct cp_line l = { .len = 0 };

    if (!__atomic_load_n(&cp_kdump.loaded, __ATOMIC_ACQUIRE)) {
        cp_line_str(&l, "crashpath: no kdump image loaded; halting");
        cp_line_emit(&l);
        cp_halt_forever();
    }
    if (check_segments() && !(cp_kdump.flags & CRASHPATH_KDUMP_JUMP_IF_CORRUPT)) {
        cp_line_str(&l, "crashpath: not entering a corrupt kdump kernel; halting");
        cp_line_emit(&l);
        cp_halt_forever();
    }
    cp_line_str(&l, "crashpath: entering kdump kernel at ");
    cp_line_hex(&l, cp_kdump.kernel_entry);
    cp_line_str(&l, ", elfcorehdr=");
    cp_line_hex(&l, cp_kdump.elfcorehdr);
    cp_line_emit(&l);
    /* The last timestamp, after the console (which may be slow). */
    CP_INFO_SET64(tsc_handoff, cp_hw_rdtsc());
    /* Everything else was prepared at load time: the stub only switches
     * page tables and control registers, copies low memory aside and jumps. */
    cp_hw_handoff(cp_kdump.cr3, cp_kdump.identity_entry);
}
