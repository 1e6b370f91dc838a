/* SPDX-License-Identifier: BSD-2-Clause */
/* check.h — the dump checker shared by the mini verifier (reading old memory through the ELF
 * core header) and vmcore-check (reading /proc/vmcore): same expectations, same verdict. */
#ifndef KDUMP_CHECK_H
#define KDUMP_CHECK_H

#include <stdint.h>
#include "crashpath.h"

#define CHECK_MAX_CPUS CRASHPATH_MAX_CPUS
/* No CPU: each expectation about one CPU holds its index or this. */
#define CHECK_NO_CPU 0xffffffffu
/* cp.crasher=any: whichever CPU the crash-info note names (a host whose crash comes from an
 * interrupt, as Xen's crash key, cannot say beforehand where it runs). */
#define CHECK_ANY_CPU 0xfffffffeu
/* No cp.send: the send mode is not checked. */
#define CHECK_SEND_ANY 0xffffffffu

/* What the scenario row expects, from the kdump command line (cp.* tokens). A field naming one
 * CPU holds its index, or CHECK_NO_CPU when the row has no such CPU. */
struct check_expect {
    uint64_t elfcorehdr;          /* elfcorehdr= (the mini verifier's only way to the header) */
    uint32_t cpus;                /* cp.cpus: CPUs configured */
    uint32_t crasher;             /* cp.crasher: logical index, or CHECK_ANY_CPU */
    char reason[64];              /* cp.reason */
    uint64_t lowmem;              /* cp.lowmem: address of the 4 KiB low-memory mark, 0 = none */
    int sentinel;                 /* cp.sentinel=1: victims spun with r8..r15 sentinels */
    uint64_t spin_lo, spin_hi;    /* cp.spin=lo-hi: where a spinning victim's RIP must be */
    uint64_t lib_lo, lib_hi;      /* cp.lib=lo-hi: crashpath's own text, where no saved RIP may be */
    uint32_t corrupt;             /* cp.corrupt: CRASHPATH_SEGMENT_* bits expected corrupt, 0 = intact */
    uint32_t paint;               /* cp.paint: bytes below each victim's RSP painted 0xa5 before the crash */
    uint32_t x2apic_cpu;          /* cp.x2apic_cpu: this CPU's note must record x2APIC mode */
    uint32_t faulted_cpu;         /* cp.faulted: this CPU faulted in its stop hook and still parked */
    uint32_t crasher2;            /* cp.crasher2: either cp.crasher or this CPU may have won */
    uint32_t unpainted;           /* set by check_dump: the losing crasher, whose stack was not painted */
    uint32_t canary_cpu;          /* cp.canary=CPU:VADDR: this CPU spun on an IST stack ... */
    uint64_t canary_va;           /* ... with MARK_CANARY_QWORDS canaries here, above its RSP */
    uint32_t gif_cpu;             /* cp.gif=CPU:LO-HI: this CPU held GIF=0; its NMI came at STGI, */
    uint64_t gif_lo, gif_hi;      /* ... so its saved RIP is in [LO, HI) */
    int svm_entry_any;            /* cp.svm_entry=any: injected NMIs may have had an SVM CPU in the host
                                     at the shootdown, so it may park through crashpath_nmi_crash instead */
    uint8_t outcome[CHECK_MAX_CPUS];   /* expected outcome per CPU (CRASHPATH_OUTCOME_*) */
    uint8_t svm[CHECK_MAX_CPUS];       /* cp.svm=LIST: ran an SVM guest, parked through the VM exit */
    uint8_t reentered[CHECK_MAX_CPUS]; /* cp.reentered=LIST: entered the victim path again after parking */
    uint8_t mce[CHECK_MAX_CPUS];       /* cp.mce=LIST: took a machine check through crashpath_mce_crash */
    uint32_t send;                /* cp.send=cluster|per|all: the send mode the shootdown used
                                     (crash-info send_used), or CHECK_SEND_ANY */
    uint32_t wrecked_cpu;         /* cp.wrecked=CPU:RSP: this CPU spun on a stack nothing could be */
    uint64_t wrecked_rsp;         /* ... pushed on, at this RSP, which its note must hold */
    int cet;                      /* cp.cet=1: the host ran with supervisor shadow stacks and IBT,
                                     so no victim but a losing crasher may have faulted into
                                     crashpath_crash (a #CP) */
    uint8_t vmx[CHECK_MAX_CPUS];       /* cp.vmx=LIST: ran a VMX guest, parked through the VM exit, left VMX */
    uint8_t vmx_root[CHECK_MAX_CPUS];  /* cp.vmx_root=LIST: in VMX root operation at the crash, left it */
    uint64_t vmx_guest_lo, vmx_guest_hi;   /* cp.vmx_guest=LO-HI: the guests' loops, where the guest RIP
                                              the exit handler kept in RBX must lie */
    uint64_t vmx_exit_lo, vmx_exit_hi;     /* cp.vmx_exit=LO-HI: the exit handler's call of
                                              crashpath_nmi_vmexit, where the saved RIP must lie */
    int initsipi;                 /* cp.initsipi=1: the mini verifier wakes every parked CPU with
                                     INIT-SIPI-SIPI (VMX root operation would block the INIT) */
    uint32_t bsp;                 /* cp.bsp: the bootstrap processor, which INIT would send to
                                     the reset vector, not to wait-for-SIPI: never sent one */
};

/* Where dump bytes come from: physical memory (mini) or /proc/vmcore offsets. */
struct check_reader {
    int (*read)(void *ctx, uint64_t offset, void *dst, uint64_t len);
    void *ctx;
    uint64_t header;              /* offset of the ELF header */
    int backup_expected;          /* low memory must come from a backup copy (p_offset != p_paddr) */
};

/* Measurements taken from the dump for make bench; no verdict rests on them. */
struct check_bench {
    struct crashpath_info_note info;
    uint64_t last_answer_tsc;     /* latest answer_tsc of an answered victim */
    uint32_t stack_max;           /* deepest NMI-path stack use seen, bytes */
    uint16_t stack_used[CHECK_MAX_CPUS];   /* per CPU; 0 = not measured */
};

/* The verdict on a dump, and apart from it what make bench measures. */
struct check_result {
    uint32_t failures;
    uint32_t prstatus;            /* NT_PRSTATUS notes seen */
    uint32_t prpsinfo;            /* NT_PRPSINFO notes seen (elfutils needs exactly one) */
    uint32_t cpu_notes;           /* crashpath CPU notes seen */
    uint32_t answered;
    char first[160];              /* the first failure, for the verdict line */
    struct check_bench bench;
};

/* One "BENCH ..." line and one "STACK cpu=N bytes=B" line per measured CPU. */
void check_report_bench(const struct check_result *res, uint32_t cpus, void (*say)(const char *line));

/* Parse the cp.* tokens and elfcorehdr= of a kernel command line. */
void check_parse_cmdline(const char *cmdline, struct check_expect *e);
/* Check the dump; say() receives one line per finding. */
void check_dump(const struct check_reader *r, const struct check_expect *e, struct check_result *res,
                void (*say)(const char *line));
/* After check_dump: the CPUs whose crashpath note says they parked (answered, in time or late),
 * by index, with the APIC ID each was configured with. Writes at most max; returns the count. */
uint32_t check_parked_cpus(uint32_t *cpu, uint32_t *apic_id, uint32_t max);

/* The lowmem pattern, sentinels and canaries: marks.h, shared with the reference hypervisor. */
#include "marks.h"

#endif
