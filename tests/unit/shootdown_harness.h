/* SPDX-License-Identifier: BSD-2-Clause */
/* shootdown_harness.h — shared by test_shootdown.c, test_victim.c and test_races.c: one crash
 * under real concurrency (host threads act as CPUs, signals as NMIs through each CPU's
 * simulated IDT), its state in one struct, and the checks every crash must pass. */
#ifndef SHOOTDOWN_HARNESS_H
#define SHOOTDOWN_HARNESS_H

#include <stdint.h>
#include <sys/procfs.h>
#include "crashpath.h"
#include "sim.h"

struct shootdown_harness {
    struct crashpath_config cfg;
    struct crashpath_cpu cpus[SIM_MAX_CPUS];
    volatile int go;                      /* releases the crashing CPU(s) */
    volatile int never;                   /* what spinning CPUs wait for */
    int crasher_rc[SIM_MAX_CPUS];         /* what crashpath_crash returned, where it did */
    uint64_t crasher_rsp[SIM_MAX_CPUS];   /* RSP at each crash call */
    int crasher;                          /* the CPU run_crash released */
    void (*roles[SIM_MAX_CPUS])(struct sim_cpu *);   /* what each CPU does; NULL: spin (or crash) */
};
extern struct shootdown_harness H;

/* Roles a CPU plays until the crash. */
void cpu_spin(struct sim_cpu *c);
void cpu_crash(struct sim_cpu *c);
void cpu_guest(struct sim_cpu *c);
void cpu_svm_guest(struct sim_cpu *c);
void cpu_fake_nmi(struct sim_cpu *c);
/* CPU cpu runs an SVM guest with NMIs intercepted: its role, EFER.SVME and a
 * host save area set. */
void svm_guest(int cpu);

/* n simulated CPUs in mode, every one configured and present, no roles set. */
void setup(int n, enum crashpath_apic_mode mode);
/* The same with APIC IDs ids[0..n-1]. */
void setup_ids(int n, enum crashpath_apic_mode mode, const uint32_t *ids);
/* The crasher halted after the hand-off (no kdump image is loaded). */
int crash_done(void);
/* Start every configured CPU (H.roles[i], or spinning), release the crasher
 * and wait for it to halt after the hand-off. Returns the wall time in ms. */
uint64_t run_crash(int n, int crasher);
/* One whole crash with every check below. */
void shootdown(int n, int crasher, enum crashpath_apic_mode mode, uint32_t send_mode);

void check_no_faults(int n);
int rip_in_spin(uint64_t rip);
void check_sentinels(const struct elf_prstatus *prs);
/* CPU cpu's note and NT_PRSTATUS (into *prs) with what every CPU that saved
 * shows: the outcome given, exactly one save, the callee-saved sentinels. */
struct crashpath_cpu_note check_saved_once(int cpu, uint32_t outcome, struct elf_prstatus *prs);
/* A victim that answered from a VM exit and left VMX or SVM (left_flag says
 * which): its note holds the VM-exit handler's registers. */
struct crashpath_cpu_note check_vmexit_victim(int cpu, uint32_t left_flag);
void check_crasher(int i);
void check_victim(int i);
void check_gates(int n);
void check_order(int n, int crasher, enum crashpath_apic_mode mode);
void check_info(int crasher, uint32_t not_answered);
uint64_t first_seq(const struct sim_cpu *c, uint32_t kind, uint32_t reg);
uint64_t last_seq(const struct sim_cpu *c, uint32_t kind, uint32_t reg);
struct crashpath_cpu_note note_of(int cpu);
/* The ICR writes CPU cpu made, in order, as destination << 32 | low word
 * (xAPIC: ICR2 << 32 | ICR); returns how many (at most max stored). */
int icr_log(int cpu, uint64_t *out, int max);

#endif
