/* SPDX-License-Identifier: BSD-2-Clause */
/* cp/internal.h — crashpath's internal interfaces between load/, crash/, apic/ and the entry stubs:
 * the per-CPU crash state prepared at load time, APIC access, gate surgery and notes. */
#ifndef CP_INTERNAL_H
#define CP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Inside the library every symbol, the entry stubs included, is resolved in
 * the same final link: hidden visibility lets -fpie code take the stubs'
 * addresses RIP-relative instead of through a GOT the host may not have. */
#pragma GCC visibility push(hidden)
#include "crashpath.h"

/* A CPU's position in cp_state.cpus[] (what the crash path indexes by), as
 * opposed to the host's logical index (cp_cpu.index, in the notes). */
typedef uint32_t cp_pos_t;
#define CP_NO_CPU 0xffffffffu        /* no position: not configured, or no crasher yet */

/* Exception vectors whose gates crashpath rewrites (SDM vol. 3, table 6-1). */
#define CP_VEC_NMI 2u
#define CP_VEC_DF 8u
#define CP_VEC_MC 18u

/* ---- per-CPU state, written by crashpath_init, read at crash time ---- */
struct cp_cpu {
    uint32_t index;             /* host logical index */
    uint32_t apic_id;
    uint32_t present;
    uint64_t idt_base;
    uint8_t *notes;             /* CRASHPATH_CPU_NOTES_SIZE bytes */
    uint64_t notes_phys;
    struct crashpath_vmx_state *vmx;
    /* crash-time flags: each written only by this CPU, or once by atomics */
    volatile uint32_t work_done;    /* victim work finished (set after the work) */
    volatile uint32_t answered;     /* set once, by atomic exchange */
    volatile uint32_t hook_entered; /* stop hook called at most once */
    volatile uint32_t in_victim;    /* inside cp_victim: a crash entry now is a fault there */
    volatile uint32_t vmx_left;     /* VMXOFF done: a re-entry must not VMCLEAR again (#UD) */
    /* The victim path's steps (CRASHPATH_STEP_*): the one running now, and
     * the ones that faulted, never tried again; faulted entries counted. */
    volatile uint32_t step_running;
    volatile uint32_t steps_faulted;
    volatile uint32_t faulted_entries;
    /* The outermost entry's registers and note flags, published before any
     * work: a nested entry saves these, never its own (crashpath's frames). */
    volatile uint32_t first_flags;  /* (beside the other words: no padding per CPU) */
    const struct crashpath_regs *volatile first_regs;
};

/* One x2APIC cluster of the cluster shootdown: its logical destination is
 * cluster << 16 | members (SDM vol. 3, 11.12.10.2). */
struct cp_cluster {
    uint32_t cluster;           /* x2APIC ID bits 19:4 */
    uint32_t members;           /* bit ID[3:0] of every present CPU in it */
};
#define CP_X2APIC_LOGICAL_ID_LIMIT (1u << 20)   /* logical IDs alias from here on */
/* After a cluster send, CPUs silent for timeout / this get their own NMI. */
#define CP_RESEND_AFTER_FRACTION 8u
/* load/send_plan.c: the cluster plan from cpus[], made by crashpath_init. */
void cp_plan_clusters(void);
/* crash/send.c: the shootdown NMIs to every present CPU but self; returns
 * the send mode used (recorded with the ICR writes in the crash-info note). */
uint32_t cp_send_nmis(cp_pos_t self);
/* After a cluster send: a physical NMI to every present CPU not answered. */
void cp_resend_to_stragglers(cp_pos_t self);

struct cp_state {
    volatile uint32_t ready;         /* crashpath_init succeeded */
    volatile uint32_t nr_answered;   /* victims that have answered */
    uint32_t nr_cpus;
    uint32_t nr_present;             /* CPUs the host started: the crasher waits for all but itself */
    uint16_t hv_cs;
    uint32_t send_mode;
    /* CRASHPATH_SEND_CLUSTER: the plan, made at load time. clusters_usable:
     * the LAPIC ran x2APIC at crashpath_init and every APIC ID is below
     * CP_X2APIC_LOGICAL_ID_LIMIT; else the shootdown goes out per CPU. */
    uint32_t clusters_usable;
    uint32_t nr_clusters;
    uint32_t victim_nmi_ist;         /* IST slot of the victims' NMI gates (0: none;
                                        CRASHPATH_NMI_IST_HOST: the one the gate has) */
    uint32_t timeout_ms;
    uint64_t tsc_khz;
    uint64_t timeout_ticks;          /* timeout_ms * tsc_khz, computed at load time */
    uint64_t phys_map_offset;
    uint64_t xapic_virt;             /* the xAPIC page's virtual address, or 0: phys_map_offset + base */
    uint8_t *info_note;              /* CRASHPATH_INFO_NOTE_SIZE bytes */
    uint64_t info_note_phys;
    crashpath_console_fn console;
    crashpath_stop_fn stop_cpu;
    void *stop_cpu_arg;
    crashpath_quiesce_fn quiesce;
    void *quiesce_arg;
    volatile uint32_t wait_over;     /* the crasher stopped waiting: victims skip their stop hook */
    struct cp_cpu cpus[CRASHPATH_MAX_CPUS];
    struct cp_cluster clusters[CRASHPATH_MAX_CPUS];   /* by cluster, ascending */
};

extern struct cp_state cp_state;
/* Position in cp_state.cpus[] of the elected crashing CPU, or CP_NO_CPU. */
extern volatile cp_pos_t cp_crashing_cpu;

/* The position in cp_state.cpus[] of the calling CPU, found by its APIC ID as
 * the hardware reports it now; CP_NO_CPU if it is not configured. */
cp_pos_t cp_this_cpu(void);

/* ---- apic/apic.c: raw LAPIC access, mode read from the hardware each call ---- */
enum crashpath_apic_mode cp_apic_mode(void);
uint64_t cp_apic_mmio_base(void);          /* physical xAPIC base from IA32_APIC_BASE */
uint32_t cp_apic_read_id(enum crashpath_apic_mode mode);
/* Each returns the ICR writes it made (0: no mode or destination to send by). */
uint32_t cp_apic_send_nmi(uint32_t apic_id);   /* physical destination */
uint32_t cp_apic_send_nmi_cluster(uint32_t cluster, uint32_t members);   /* x2APIC only */
uint32_t cp_apic_send_nmi_allbutself(void);
void cp_apic_self_nmi(void);
void cp_apic_quiesce(void);

/* ---- crash/gate.c: IDT gate encoding and atomic rewrites ---- */
#define CP_GATE_TYPE_INTR 0xeu
#define CP_GATE_TYPE_TRAP 0xfu
#define CP_GATE_IST_KEEP 0xffu       /* cp_gate_point: keep the IST slot the gate has */
uint64_t cp_gate_handler(uint64_t lo, uint64_t hi);
unsigned int cp_gate_ist(uint64_t lo);
void cp_gate_encode(uint64_t handler, uint16_t sel, unsigned int ist, unsigned int type,
                    unsigned int dpl, uint64_t *lo, uint64_t *hi);
/* Point a gate at handler: the IST slot given (0: none; CP_GATE_IST_KEEP: its own), interrupt gate,
 * present, selector hv_cs, DPL and reserved bits kept. Never leaves a
 * half-written gate. */
void cp_gate_point(uint64_t idt_base, unsigned int vector, uint64_t handler, uint16_t sel, unsigned int ist);
/* A victim's #MC gate pointed at crashpath_mce_crash and its NMI gate at crashpath_nmi_crash. */
void cp_gates_to_victim(const struct cp_cpu *cpu);
/* Read a gate as it is, and put back exactly what was read (atomically). */
void cp_gate_read(uint64_t idt_base, unsigned int vector, uint64_t *lo, uint64_t *hi);
void cp_gate_restore(uint64_t idt_base, unsigned int vector, uint64_t lo, uint64_t hi);
#define CP_VEC_UD 6u

/* ---- load/notes.c (headers) and crash/notes.c (contents): the note buffers
 * are only 4-byte aligned inside, so fields are written through these,
 * never through struct pointers (byte map: cp/notes_layout.h) ---- */
void cp_notes_prepare_cpu(const struct cp_cpu *cpu);
void cp_notes_prepare_info(void);
/* Save the interrupted registers and control state of the calling CPU. */
void cp_notes_save_regs(const struct cp_cpu *cpu, const struct crashpath_regs *regs);
void cp_notes_add_flags(const struct cp_cpu *cpu, uint32_t flags);
int cp_notes_regs_saved(const struct cp_cpu *cpu);
void cp_notes_count_reentry(const struct cp_cpu *cpu);
void cp_notes_count_machine_check(const struct cp_cpu *cpu);
void cp_notes_set_faulted_steps(const struct cp_cpu *cpu, uint32_t steps);
void cp_notes_set_answer_tsc(const struct cp_cpu *cpu, uint64_t tsc);
/* Set the outcome if none is set yet; returns the outcome in force. */
uint32_t cp_notes_claim_outcome(const struct cp_cpu *cpu, uint32_t outcome);
void cp_notes_set_outcome(const struct cp_cpu *cpu, uint32_t outcome);
void cp_info_set32(uint32_t offset, uint32_t v);
void cp_info_set64(uint32_t offset, uint64_t v);
void cp_info_set_reason(const char *reason);
void cp_info_mark_not_answered(uint32_t index);
#define CP_INFO_SET32(field, v) cp_info_set32((uint32_t)offsetof(struct crashpath_info_note, field), (v))
#define CP_INFO_SET64(field, v) cp_info_set64((uint32_t)offsetof(struct crashpath_info_note, field), (v))

/* ---- crash/victim.c ---- */
/* Faulted entries after which a victim halts at once, touching nothing:
 * one per CRASHPATH_STEP_* and a margin; bounds the stack a fault that
 * recurs on every try can use. */
#define CP_MAX_FAULTED_ENTRIES 8u
__attribute__((noreturn)) void cp_victim(cp_pos_t pos, const struct crashpath_regs *regs, uint32_t extra_flags);
/* Make regs and flags this CPU's victim record, unless an outer entry did. */
void cp_victim_publish(cp_pos_t pos, const struct crashpath_regs *regs, uint32_t flags);
/* cp_victim for a CPU not entering through crashpath_nmi_crash: its own gates first. */
__attribute__((noreturn)) void cp_victim_not_via_nmi_crash(cp_pos_t pos, const struct crashpath_regs *regs,
                                                           uint32_t flags);
/* Leave VMX and SVM and quiesce the LAPIC of the calling CPU. */
void cp_cpu_shutdown(struct cp_cpu *cpu);
__attribute__((noreturn)) void cp_nmi_victim(const struct crashpath_regs *regs);
/* entry/crash_entry.asm: VMXOFF that survives #UD while this CPU's #UD gate
 * points at vmxoff_ud_fixup; 0 if VMXOFF ran, 1 if it raised #UD. */
void vmxoff_ud_fixup(void);

/* ---- crash/machine_check.c ---- */
/* From crashpath_mce_crash; returns when the interrupted context may be resumed. */
void cp_mce_entry(const struct crashpath_regs *regs);
int cp_vmexit_entry(const struct crashpath_regs *regs);

/* ---- crash/shootdown.c ---- */
int cp_crash_entry(const char *reason, const struct crashpath_regs *regs,
                   const struct crashpath_regs *own);

/* ---- load/kdump.c prepares (load time), crash/handoff.c uses (crash time) ---- */
/* A kdump segment and the SHA-256 it had at load time. */
struct cp_segment {
    const uint8_t *virt;
    uint64_t size;
    uint8_t sha256[32];
};
#define CP_NR_SEGMENTS 4        /* kernel, initrd, boot_params, command line: CRASHPATH_SEGMENT_* bits */

struct cp_kdump {
    volatile uint32_t loaded;
    uint32_t flags;             /* CRASHPATH_KDUMP_* */
    struct cp_segment segments[CP_NR_SEGMENTS];
    struct crashpath_kdump_info where;
    uint64_t cr3;               /* root of the hand-off page tables */
    uint64_t identity_entry;    /* handoff_stub_identity in the control page */
    uint64_t kernel_entry;      /* load address + 0x200 */
    uint64_t elfcorehdr;
};
extern struct cp_kdump cp_kdump;
__attribute__((noreturn)) void cp_handoff(void);

/* ---- crash/util.c: bounded crash-time messages, no allocation ---- */
struct cp_line {
    char buf[120];
    uint32_t len;
};
void cp_line_str(struct cp_line *l, const char *s);
void cp_line_dec(struct cp_line *l, uint64_t v);
void cp_line_hex(struct cp_line *l, uint64_t v);
void cp_line_emit(struct cp_line *l);

/* ---- small freestanding helpers (no libc) ---- */
void cp_zero(void *p, uint64_t n);
uint32_t cp_strlcpy(char *dst, const char *src, uint32_t size);

__attribute__((noreturn)) void cp_halt_forever(void);

/* ---- crash/sha256.c ---- */
void cp_sha256(const void *data, uint64_t len, uint8_t digest[32]);

#pragma GCC visibility pop

#endif
