/* SPDX-License-Identifier: BSD-2-Clause */
/* hv.h — the reference hypervisor's internal interfaces: a small x86-64 kernel shaped like a
 * real hypervisor (higher half, per-CPU IDT/GDT/TSS with ISTs, SMP), embedding crashpath. */
#ifndef HV_H
#define HV_H

#include <stddef.h>
#include <stdint.h>
#include "crashpath.h"
#include "marks.h"          /* tests/kdump/marks.h: what the dump checker looks for */
#include "x86.h"            /* tests/kdump/x86.h: port I/O, MSRs, TSC, CPUID */

/* The CPU table's size: crashpath's maximum, or smaller where the machine can never have more
 * (the Bochs build, -DHV_MAX_CPUS=16: its loader zeroes every .bss byte in emulation, some
 * 80 MiB at 1024 CPUs, which cost each Bochs row 4 s). */
#ifndef HV_MAX_CPUS
#define HV_MAX_CPUS CRASHPATH_MAX_CPUS
#endif
_Static_assert(HV_MAX_CPUS <= CRASHPATH_MAX_CPUS, "HV_MAX_CPUS");
#define KERNEL_VMA 0xffffffff80000000ull
#define HV_CS 0x08
#define HV_DS 0x10
#define HV_TSS 0x18
#define STACK_SIZE 16384
#define IST_SIZE 4096

/* Exit codes through isa-debug-exit (QEMU exits with code << 1 | 1). */
#define HV_EXIT_FAIL 0x13
#define HV_EXIT_SKIP 0x12       /* the CPU model lacks a feature the row needs */

static inline uint64_t hv_virt_to_phys(const void *p)
{
    uint64_t v = (uint64_t)(uintptr_t)p;

    return v >= KERNEL_VMA ? v - KERNEL_VMA : v;
}

/* ---- console.c ---- */
void console_init(void);
void console_write(const char *s, size_t len);
void hv_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void hv_exit(uint32_t code);
__attribute__((noreturn)) void hv_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The row cannot run on this CPU model (no SVM, no VMX, no CET): say why and end as SKIP. */
__attribute__((noreturn)) void hv_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
size_t hv_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- platform.c: what firmware and the loader tell us ---- */
struct hv_module {
    uint64_t start, size;
    const char *args;          /* the module's string after its file name */
};

struct hv_platform {
    const char *cmdline;
    struct crashpath_mem_range memmap[CRASHPATH_MAX_MEMMAP];
    uint32_t nr_memmap;
    struct hv_module modules[4];
    uint32_t nr_modules;
    uint64_t rsdp;
    uint32_t madt_ids[HV_MAX_CPUS];     /* enabled LAPICs, MADT order */
    uint32_t nr_madt;
    uint64_t tsc_khz;
};
extern struct hv_platform platform;
void platform_init(uint32_t mb_info_phys);
/* The value of "key=" on the hypervisor command line, or NULL. */
const char *cmdline_get(const char *key, char *buf, size_t size);
uint64_t parse_u64(const char *s, const char **end);
void delay_us(uint64_t us);

/* ---- cpu.c: per-CPU state and bring-up ---- */
struct hv_cpu {
    struct hv_cpu *self;               /* at GS:0 */
    uint32_t index, apic_id;
    volatile uint32_t online;
    volatile uint32_t role_ready;
    uint64_t stack_top;                /* the AP trampoline switches to it (boot.asm) */
    uint64_t gdt[5] __attribute__((aligned(16)));
    uint8_t tss[104] __attribute__((aligned(16)));
    uint8_t idt[256 * 16] __attribute__((aligned(4096)));
    uint8_t stack[STACK_SIZE] __attribute__((aligned(16)));
    uint8_t ist_nmi[IST_SIZE] __attribute__((aligned(16)));
    uint8_t ist_mc[IST_SIZE] __attribute__((aligned(16)));
    uint8_t ist_df[IST_SIZE] __attribute__((aligned(16)));
    uint8_t crashpath_nmi[IST_SIZE] __attribute__((aligned(16)));   /* crashpath's, with victim_nmi_ist */
    uint64_t cr4;                      /* as features.c left it */
};
extern struct hv_cpu hv_cpus[HV_MAX_CPUS];
extern uint32_t hv_nr_cpus;
extern int hv_x2apic;

static inline struct hv_cpu *this_cpu(void)
{
    struct hv_cpu *c;
    __asm__ volatile("mov %%gs:0, %0" : "=r"(c));
    return c;
}

void unmap_null_page(void);              /* page 0 not present from here on */
void cpu_init_this(struct hv_cpu *c);    /* GDT, TSS, IDT, GS, LAPIC on the calling CPU */
void hv_never_executed(void);            /* a breakpoint target (DR0) nothing runs */
void smp_start_aps(int skip_index, int parallel);   /* INIT-SIPI-SIPI every MADT CPU but the BSP */
struct hv_cpu *hv_ap_lookup(void);   /* for the AP trampoline */
uint32_t hv_cpu_apic_id(void);      /* the 32-bit x2APIC ID from CPUID, any LAPIC mode */
uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t v);
void lapic_send_ipi(uint32_t apic_id, uint32_t low);
uint32_t lapic_id(void);

/* ---- features.c: CR4 features every CPU whose model has them runs with ---- */
void host_features_on(struct hv_cpu *c);
void host_features_report(const struct hv_cpu *c);

/* ---- watchdog.c: an HPET NMI watchdog, stopped by crashpath's quiesce hook ---- */
void watchdog_arm(uint32_t period_ms, uint32_t dest);
void watchdog_stop(void *arg);

/* ---- main.c ---- */
void hv_ap_main(struct hv_cpu *c);
void hv_exception(struct crashpath_regs *frame, uint64_t vector);

#define HV_WAKEUP_VECTOR 0xf0
void hv_wakeup(void);
void lapic_eoi(void);

/* ---- entry.asm ---- */
void hv_wakeup_entry(void);
extern const uint64_t hv_vector_stubs[32];
__attribute__((noreturn)) void hv_spin_sentinels(uint64_t sentinel_base, volatile uint32_t *ready);
__attribute__((noreturn)) void hv_halt_forever(volatile uint32_t *ready);
extern const char hv_spin_loop[], hv_spin_loop_end[];
/* hv.ld: the range crashpath's own code was linked into. */
extern const char __crashpath_text[], __crashpath_text_end[];
__attribute__((noreturn)) void hv_spin_sentinels_on(uint64_t sentinel_base, volatile uint32_t *ready, void *rsp);
__attribute__((noreturn)) void hv_spin_wrecked(uint64_t sentinel_base, volatile uint32_t *ready, uint64_t rsp);
uint64_t hv_vmrun(uint64_t vmcb_pa, volatile uint32_t *ready);
void hv_guest_loop(void);
__attribute__((noreturn)) void hv_clgi_loop(volatile uint32_t *ready, uint64_t ticks);
extern const char hv_gif_open[], hv_gif_open_end[];

/* ---- cet.c: knob cet=1, supervisor shadow stacks and IBT on every CPU ---- */
#define CR4_CET (1ull << 23)
extern int hv_cet;                                   /* set by cet_prepare */
void cet_prepare(void);                              /* BSP, before the APs start; SKIP without CET */
void cet_load_msrs(const struct hv_cpu *c);
void cet_cpu_on(const struct hv_cpu *c);

/*
 * With cet=1, turn CET on for the calling CPU and move it onto its shadow
 * stack. Only for a CPU's outermost C frame (hv_main, hv_ap_main), which never
 * returns, after cpu_init_this (its far return reloading CS would find no
 * CS:LIP frame on the shadow stack and raise #CP). Inline, so no RET is left
 * that the fresh shadow stack has no entry for: every CALL from here on
 * pushes its return address there, and every RET pops one it pushed.
 *   CR4.CET (SDM vol. 3, 2.5) with IA32_S_CET.SH_STK_EN set turns shadow
 *   stacks on at CPL 0 with SSP wherever it was (no CALL, RET or STI until
 *   SETSSBSY; interrupts are off);
 *   SETSSBSY (SDM vol. 2B): checks that IA32_PL0_SSP points at a supervisor
 *   token with busy clear, sets busy and loads SSP with IA32_PL0_SSP: the way
 *   CPL-0 code enters its own shadow stack (a ring-3 to ring-0 transition
 *   would do the same through the same MSR).
 */
static inline __attribute__((always_inline)) void cet_switch_on(const struct hv_cpu *c)
{
    uint64_t cr4;

    if (!__atomic_load_n(&hv_cet, __ATOMIC_ACQUIRE))
        return;
    cet_load_msrs(c);
    __asm__ volatile("mov %%cr4, %0\n\tor %1, %0\n\tmov %0, %%cr4\n\tsetssbsy"
                     : "=&r"(cr4) : "i"(CR4_CET) : "memory");
    cet_cpu_on(c);
}

/* ---- svm.c: AMD SVM guests ---- */
int svm_available(void);
void svm_enable(struct hv_cpu *c);                   /* EFER.SVME and the host save area */
__attribute__((noreturn)) void svm_run_guest(struct hv_cpu *c);

/* ---- vmx.c: Intel VMX root operation and guests ---- */
const char *vmx_missing(void);                       /* why VMX cannot run here, or NULL */
void vmx_enter_root(struct hv_cpu *c, int load_vmcs);  /* VMXON; with load_vmcs, a current VMCS */
__attribute__((noreturn)) void vmx_run_guest(struct hv_cpu *c, int halt);
struct crashpath_vmx_state *vmx_state(uint32_t cpu);  /* crashpath's record of the CPU's VMX state */

/* ---- vmx_entry.asm ---- */
int hv_vmx_enter(int resume, volatile uint32_t *ready);   /* 0 after a VM exit, else the failure */
extern const char hv_vmx_exit[];                      /* HOST_RIP */
int hv_vmx_offer_nmi(uint64_t guest_rip);             /* crashpath_nmi_vmexit, guest RIP in RBX */
extern const char hv_vmx_offer_nmi_end[];
void hv_vmx_guest_spin(void);
void hv_vmx_guest_halt(void);
extern const char hv_vmx_guests[], hv_vmx_guests_end[];

#endif
