/* SPDX-License-Identifier: BSD-2-Clause */
/* sim.h — the simulated machine behind crashpath's hardware layer in host tests: per-CPU MSRs,
 * a LAPIC (xAPIC MMIO or x2APIC MSRs), IDT memory, an NMI latch, and threads acting as CPUs. */
#ifndef SIM_H
#define SIM_H

#include <pthread.h>
#include <stdint.h>
#include "crashpath.h"

#define SIM_MAX_CPUS 40
#define SIM_LOG_MAX 4096
#define SIM_CS 0x10
#define SIM_XAPIC_DEFAULT_BASE 0xfee00000ull
#define SIM_TSC_KHZ 1000000ull   /* the simulated TSC counts nanoseconds */

enum sim_op_kind {
    OP_RDMSR = 1, OP_WRMSR, OP_MMIO_R, OP_MMIO_W, OP_IDT_W8, OP_IDT_CX16, OP_MFENCE,
    OP_ENABLE_NMIS, OP_VMCLEAR, OP_VMXOFF, OP_STGI, OP_CLI, OP_HALT, OP_IDT_R, OP_LFENCE, OP_WRCR4,
};

struct sim_op {
    uint64_t seq;      /* global order of all CPUs' operations */
    uint32_t kind;
    uint32_t reg;      /* MSR number or MMIO offset from the APIC base */
    uint64_t value;
};

struct sim_cpu {
    int id;                         /* position in sim_cpus[] */
    uint32_t apic_id;
    uint64_t apic_base;             /* IA32_APIC_BASE */
    int cpuid_x2apic, cpuid_cx16;
    uint32_t lapic[64];             /* register file by offset >> 4 */
    uint32_t icr2;
    int icr_busy_reads;             /* xAPIC: ICR reads still to report "send pending" */
    uint64_t efer, cr0, cr2, cr3, cr4, fs_base, gs_base, hsave_pa;
    int cpuid_cet;                  /* IA32_S_CET exists */
    uint64_t s_cet;                 /* IA32_S_CET: bit 0 supervisor shadow stacks, bit 2 IBT */
    uint64_t mcg_status;            /* IA32_MCG_STATUS */
    volatile int mce_ripv;          /* RIPV of the next machine check sim_mce raises */
    volatile int mces_taken, host_mces;
    uint16_t sel[6];
    _Alignas(16) uint8_t idt[256 * 16];
    _Alignas(512) uint8_t notes[CRASHPATH_CPU_NOTES_SIZE];
    struct crashpath_vmx_state vmx;
    uint64_t vmcs_slots[4];

    /* NMI model: one-deep latch, blocked from delivery until IRET. */
    volatile int nmi_blocked, nmi_pending;
    volatile int in_guest;          /* an NMI here becomes a VM exit, not an IDT delivery */
    int svm_guest;                  /* ... an SVM #VMEXIT: the NMI stays pending behind GIF=0 */
    volatile int gif_clear;         /* GIF=0 holds NMIs until STGI */
    volatile int vmexit_pending;
    volatile int nmis_taken, host_nmis, nop_nmis;
    volatile int ist_at_delivery;   /* IST of the NMI gate when the last NMI was taken */
    volatile int halted;
    int stuck_in_nmi;               /* never unblocks: a victim stuck in its own NMI handler */
    int in_vmx;                     /* the simulated CPU is in VMX operation */
    int ud_panics;                  /* a #UD from VMCLEAR/VMXOFF reaches the host's handler,
                                       which panics into crashpath_crash (as real hosts do) */
    volatile int vmx_ud_count;      /* such #UDs taken */
    pthread_t thread;
    void (*fn)(struct sim_cpu *);
    volatile int running;

    /* faults the real CPU would raise, as text; tests require none */
    volatile int faults;
    char fault[128];

    struct sim_op log[SIM_LOG_MAX];
    volatile int nlog;
};

extern struct sim_cpu sim_cpus[SIM_MAX_CPUS];
extern _Alignas(512) uint8_t sim_info_note[CRASHPATH_INFO_NOTE_SIZE];
extern __thread struct sim_cpu *sim_self;

/* Set up n CPUs with APIC IDs ids[i] (or i*2+1 when ids is NULL) in the given mode. */
void sim_reset(int n, enum crashpath_apic_mode mode, const uint32_t *ids);
/* Fill cfg and cpus[] for the simulated CPUs, every one present. */
void sim_config(struct crashpath_config *cfg, struct crashpath_cpu *cpus, int n);
/* Console lines the crasher printed, joined by '\n'. */
extern char sim_console_text[4096];
extern volatile int sim_console_lines;
void sim_console(const char *msg, size_t len);

/* Run fn(cpu) on a new thread acting as that CPU. */
void sim_start_cpu(struct sim_cpu *c, void (*fn)(struct sim_cpu *));
/* Raise an NMI at a CPU as its LAPIC would. */
void sim_nmi(struct sim_cpu *c);
/* Raise a machine check at a CPU: delivered through its #MC gate at once,
 * on its thread; one while MCG_STATUS.MCIP is set is a shutdown (a fault). */
void sim_mce(struct sim_cpu *c, int ripv);
/* An IRET on the current CPU (e.g. an #MC handler returning): ends NMI
 * blocking and takes a pending NMI at once. */
void sim_iret(void);
/* The same IRET on another CPU, seen from outside (a parked victim's #MC). */
void sim_unlatch(struct sim_cpu *c);
/* Wait until cond() or ms elapse; returns cond(). */
int sim_wait(int (*cond)(void), int ms);
uint64_t sim_now_ns(void);

int sim_count_ops(const struct sim_cpu *c, uint32_t kind, uint32_t reg);
void sim_clear_log(struct sim_cpu *c);

extern volatile int sim_cx16_fail_next;
/* where the host maps the xAPIC page apart from RAM (crashpath_config.xapic_virt), or 0 */
extern uint64_t sim_xapic_virt;
/* Bit i: a logical-destination NMI never reaches CPU i (a multicast lost). */
extern volatile uint64_t sim_logical_lost;
/* Called before each logged operation, on the thread doing it (c is the CPU
 * whose log gets it: for an IDT access, the IDT's owner), to stop or disturb
 * a CPU at a chosen point. */
extern void (*volatile sim_op_hook)(struct sim_cpu *c, uint32_t kind, uint32_t reg);
/* What the crasher handed to the hand-off stub, instead of jumping. */
struct sim_handoff {
    volatile int taken;
    uint64_t cr3, identity_entry;
};
extern struct sim_handoff sim_handoff;
uint64_t sim_gate_handler(const struct sim_cpu *c, unsigned int vector);
unsigned int sim_gate_ist(const struct sim_cpu *c, unsigned int vector);
void sim_set_gate(struct sim_cpu *c, unsigned int vector, uint64_t handler, unsigned int ist);

/* helpers.asm */
void th_enable_nmis_probe(uint64_t misalign, uint64_t rflags_in, uint64_t out[18]);
int th_trap_nop_probe(void);
__attribute__((noreturn)) void th_fake_nmi(uint64_t rip, uint64_t rsp, uint64_t rflags);
void th_spin(volatile int *stop);
int th_crash(const char *reason, uint64_t *rsp_out);
int th_vmexit(void);
extern char th_spin_loop[], th_crash_ret[], th_vmexit_ret[];
#define S_R12 0xc12c12c12c12c12cull
#define S_R13 0xc13c13c13c13c13cull
#define S_R14 0xc14c14c14c14c14cull
#define S_R15 0xc15c15c15c15c15cull



/* Note readers with the byte offsets of docs/notes.md written out again, so
 * the tests check the layout rather than share the library's arithmetic. */
#include <sys/procfs.h>
void sim_read_prstatus(int cpu, struct elf_prstatus *out);
void sim_read_cpu_note(int cpu, struct crashpath_cpu_note *out);
void sim_read_info(struct crashpath_info_note *out);
#endif
