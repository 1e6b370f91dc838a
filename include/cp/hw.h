/* SPDX-License-Identifier: BSD-2-Clause */
/* cp/hw.h — crashpath's hardware layer: every MSR, CPUID, MMIO, TSC, control-register and
 * IDT-memory access goes through these calls, so host unit tests can replace them. */
#ifndef CP_HW_H
#define CP_HW_H

#include <stdint.h>

/* Architectural MSRs crashpath touches (SDM vol. 4). */
#define MSR_IA32_APIC_BASE 0x1bu
#define MSR_EFER 0xc0000080u
#define MSR_FS_BASE 0xc0000100u
#define MSR_GS_BASE 0xc0000101u
#define MSR_VM_HSAVE_PA 0xc0010117u   /* AMD: host save area of VMRUN */
#define MSR_IA32_MCG_STATUS 0x17au
#define MSR_IA32_S_CET 0x6a2u          /* supervisor CET: SH_STK_EN bit 0, ENDBR_EN bit 2 */

#define EFER_SVME (1ull << 12)
#define CR4_VMXE (1ull << 13)
#define CR4_CET (1ull << 23)
#define CR4_FRED (1ull << 32)
#define MCG_STATUS_RIPV (1ull << 0)    /* the interrupted context may be resumed */
#define MCG_STATUS_MCIP (1ull << 2)    /* a machine check is in progress */

uint64_t cp_hw_rdmsr(uint32_t msr);
void cp_hw_wrmsr(uint32_t msr, uint64_t value);
void cp_hw_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t regs[4]);
uint32_t cp_hw_mmio_read32(uint64_t vaddr);
void cp_hw_mmio_write32(uint64_t vaddr, uint32_t value);
uint64_t cp_hw_rdtsc(void);

uint64_t cp_hw_read_cr0(void);
uint64_t cp_hw_read_cr2(void);
uint64_t cp_hw_read_cr3(void);
uint64_t cp_hw_read_cr4(void);
void cp_hw_write_cr4(uint64_t value);
/* Segment selectors: 0 cs, 1 ds, 2 es, 3 fs, 4 gs, 5 ss. */
uint16_t cp_hw_read_sel(unsigned int which);

/* IDT memory. A gate is 16 bytes: lo holds offset[15:0], selector, IST, type,
 * DPL, P and offset[31:16]; hi holds offset[63:32]. */
void cp_hw_idt_read(uint64_t gate, uint64_t *lo, uint64_t *hi);
/* One 8-byte store of the low half (atomic for an aligned qword, SDM 9.1.1). */
void cp_hw_idt_write_lo(uint64_t gate, uint64_t lo);
/* Atomic 16-byte replace (LOCK CMPXCHG16B); returns 1 if the gate still held
 * old_lo/old_hi and now holds lo/hi, 0 if it had changed under us. */
int cp_hw_idt_cmpxchg16(uint64_t gate, uint64_t old_lo, uint64_t old_hi, uint64_t lo, uint64_t hi);

void cp_hw_cli(void);
void cp_hw_pause(void);
void cp_hw_halt(void);
void cp_hw_mfence(void);
void cp_hw_lfence(void);
/* IRET to self: clears NMI blocking (entry/crash_entry.asm crashpath_enable_nmis). */
void cp_hw_enable_nmis(void);

/* Enter entry/handoff.asm: switch to the hand-off tables (cr3) and continue
 * at the identity-mapped copy of the stub. Never returns. */
__attribute__((noreturn)) void cp_hw_handoff(uint64_t cr3, uint64_t identity_entry);

void cp_hw_vmclear(uint64_t vmcs_pa);
void cp_hw_vmxoff(void);
/* VMXOFF where nobody recorded whether this CPU is in VMX operation: with
 * this CPU's #UD gate at vmxoff_ud_fixup, returns 0 if VMXOFF ran and 1 if
 * it raised #UD (SDM vol. 3, 31.3: VMXOFF outside VMX operation). */
int cp_hw_vmxoff_probe(void);
void cp_hw_stgi(void);

#endif
