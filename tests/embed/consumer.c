/* SPDX-License-Identifier: BSD-2-Clause */
/* consumer.c — the smallest out-of-tree embedder: built only through `pkg-config crashpath`
 * against an installed copy, it proves the header and archive are usable as shipped. */
#include <crashpath.h>

static unsigned char notes[2][CRASHPATH_CPU_NOTES_SIZE] __attribute__((aligned(CRASHPATH_NOTES_ALIGN)));
static unsigned char info[CRASHPATH_INFO_NOTE_SIZE] __attribute__((aligned(CRASHPATH_NOTES_ALIGN)));

/* A hypervisor's boot path would call this with its real CPUs; here it only
 * has to compile and link against every public entry point. */
int embed_configure(const struct crashpath_cpu *cpus, unsigned int n, unsigned short cs, unsigned long long khz)
{
    struct crashpath_config cfg = { 0 };
    struct crashpath_kdump_info where;

    cfg.nr_cpus = n;
    cfg.cpus = cpus;
    cfg.hv_cs = cs;
    cfg.tsc_khz = khz;
    cfg.info_note = info;
    (void)notes;
    if (crashpath_init(&cfg) != CRASHPATH_OK)
        return -1;
    if (crashpath_kdump_info(&where) == CRASHPATH_OK)
        return 1;
    (void)crashpath_strerror(CRASHPATH_ERR_NO_CPUS);
    (void)crashpath_apic_mode();
    (void)crashpath_load_kdump;
    (void)crashpath_nmi_vmexit;
    (void)crashpath_crash;
    (void)crashpath_trap_nop;
    (void)crashpath_nmi_crash;
    (void)crashpath_enable_nmis;
    return 0;
}
