/* SPDX-License-Identifier: BSD-2-Clause */
/* vmx.c — Intel VMX for the scenarios vmx=1, vmx_root_cpu=N and vmx_crasher=1: VMX root operation
 * on a CPU, and a tiny 64-bit guest per victim with NMI exiting, whose VM-exit path offers the
 * NMI to crashpath_nmi_vmexit as a real hypervisor's would. Keeps crashpath's per-CPU VMX record.
 *
 * Section numbers are those of the SDM vol. 3 editions where VMX takes chapters 23 to 33 (23
 * introduction, 24 VMCS, 25 non-root operation, 26 VM entries, 27 VM exits, 30 instruction
 * reference, 31 VMM programming, appendices A-C); newer editions number each chapter one
 * higher. The section titles are given too. */
#include "hv.h"

#define CPUID_1_ECX_VMX (1u << 5)
#define CR4_VMXE (1ull << 13)

/* MSRs (SDM vol. 4; appendix A describes the capability MSRs). */
#define MSR_FEATURE_CONTROL 0x3a
#define   FEATURE_CONTROL_LOCK (1ull << 0)
#define   FEATURE_CONTROL_VMX_OUTSIDE_SMX (1ull << 2)
#define MSR_VMX_BASIC 0x480
#define   VMX_BASIC_REVISION_MASK 0x7fffffffull  /* bits 30:0 (A.1) */
#define   VMX_BASIC_TRUE_CTLS (1ull << 55)       /* the IA32_VMX_TRUE_*_CTLS MSRs exist (A.1) */
#define MSR_VMX_PINBASED_CTLS 0x481
#define MSR_VMX_PROCBASED_CTLS 0x482
#define MSR_VMX_EXIT_CTLS 0x483
#define MSR_VMX_ENTRY_CTLS 0x484
#define MSR_VMX_CR0_FIXED0 0x486
#define MSR_VMX_CR0_FIXED1 0x487
#define MSR_VMX_CR4_FIXED0 0x488
#define MSR_VMX_CR4_FIXED1 0x489
#define MSR_VMX_TRUE_PINBASED_CTLS 0x48d
#define MSR_VMX_TRUE_PROCBASED_CTLS 0x48e
#define MSR_VMX_TRUE_EXIT_CTLS 0x48f
#define MSR_VMX_TRUE_ENTRY_CTLS 0x490
#define MSR_FS_BASE 0xc0000100u
#define MSR_GS_BASE 0xc0000101u

/* VMCS field encodings (appendix B). */
enum vmcs_field {
    /* 16-bit guest and host selectors (B.1.2, B.1.3) */
    GUEST_ES_SELECTOR = 0x0800, GUEST_CS_SELECTOR = 0x0802, GUEST_SS_SELECTOR = 0x0804,
    GUEST_DS_SELECTOR = 0x0806, GUEST_FS_SELECTOR = 0x0808, GUEST_GS_SELECTOR = 0x080a,
    GUEST_LDTR_SELECTOR = 0x080c, GUEST_TR_SELECTOR = 0x080e,
    HOST_ES_SELECTOR = 0x0c00, HOST_CS_SELECTOR = 0x0c02, HOST_SS_SELECTOR = 0x0c04,
    HOST_DS_SELECTOR = 0x0c06, HOST_FS_SELECTOR = 0x0c08, HOST_GS_SELECTOR = 0x0c0a,
    HOST_TR_SELECTOR = 0x0c0c,
    /* 64-bit guest state (B.2.3) */
    VMCS_LINK_POINTER = 0x2800, GUEST_DEBUGCTL = 0x2802,
    /* 32-bit controls (B.3.1) */
    PIN_BASED_CONTROLS = 0x4000, PROC_BASED_CONTROLS = 0x4002, EXCEPTION_BITMAP = 0x4004,
    PAGE_FAULT_ERROR_MASK = 0x4006, PAGE_FAULT_ERROR_MATCH = 0x4008, CR3_TARGET_COUNT = 0x400a,
    EXIT_CONTROLS = 0x400c, EXIT_MSR_STORE_COUNT = 0x400e, EXIT_MSR_LOAD_COUNT = 0x4010,
    ENTRY_CONTROLS = 0x4012, ENTRY_MSR_LOAD_COUNT = 0x4014, ENTRY_INTERRUPTION_INFO = 0x4016,
    /* 32-bit read-only data (B.3.2) */
    VM_INSTRUCTION_ERROR = 0x4400, EXIT_REASON = 0x4402, EXIT_INTERRUPTION_INFO = 0x4404,
    /* 32-bit guest state (B.3.3) */
    GUEST_ES_LIMIT = 0x4800, GUEST_CS_LIMIT = 0x4802, GUEST_SS_LIMIT = 0x4804,
    GUEST_DS_LIMIT = 0x4806, GUEST_FS_LIMIT = 0x4808, GUEST_GS_LIMIT = 0x480a,
    GUEST_LDTR_LIMIT = 0x480c, GUEST_TR_LIMIT = 0x480e, GUEST_GDTR_LIMIT = 0x4810,
    GUEST_IDTR_LIMIT = 0x4812, GUEST_ES_ACCESS = 0x4814, GUEST_CS_ACCESS = 0x4816,
    GUEST_SS_ACCESS = 0x4818, GUEST_DS_ACCESS = 0x481a, GUEST_FS_ACCESS = 0x481c,
    GUEST_GS_ACCESS = 0x481e, GUEST_LDTR_ACCESS = 0x4820, GUEST_TR_ACCESS = 0x4822,
    GUEST_INTERRUPTIBILITY = 0x4824, GUEST_ACTIVITY_STATE = 0x4826, GUEST_SYSENTER_CS = 0x482a,
    /* 32-bit host state (B.3.4) */
    HOST_SYSENTER_CS = 0x4c00,
    /* natural-width controls, read-only data, guest and host state (B.4) */
    CR0_GUEST_HOST_MASK = 0x6000, CR4_GUEST_HOST_MASK = 0x6002, CR0_READ_SHADOW = 0x6004,
    CR4_READ_SHADOW = 0x6006, EXIT_QUALIFICATION = 0x6400,
    GUEST_CR0 = 0x6800, GUEST_CR3 = 0x6802, GUEST_CR4 = 0x6804, GUEST_ES_BASE = 0x6806,
    GUEST_CS_BASE = 0x6808, GUEST_SS_BASE = 0x680a, GUEST_DS_BASE = 0x680c, GUEST_FS_BASE = 0x680e,
    GUEST_GS_BASE = 0x6810, GUEST_LDTR_BASE = 0x6812, GUEST_TR_BASE = 0x6814,
    GUEST_GDTR_BASE = 0x6816, GUEST_IDTR_BASE = 0x6818, GUEST_DR7 = 0x681a, GUEST_RSP = 0x681c,
    GUEST_RIP = 0x681e, GUEST_RFLAGS = 0x6820, GUEST_PENDING_DEBUG = 0x6822,
    GUEST_SYSENTER_ESP = 0x6824, GUEST_SYSENTER_EIP = 0x6826,
    HOST_CR0 = 0x6c00, HOST_CR3 = 0x6c02, HOST_CR4 = 0x6c04, HOST_FS_BASE = 0x6c06,
    HOST_GS_BASE = 0x6c08, HOST_TR_BASE = 0x6c0a, HOST_GDTR_BASE = 0x6c0c, HOST_IDTR_BASE = 0x6c0e,
    HOST_SYSENTER_ESP = 0x6c10, HOST_SYSENTER_EIP = 0x6c12, HOST_RIP = 0x6c16,
    /* HOST_RSP (0x6c14) is written by hv_vmx_enter (vmx_entry.asm), just before the entry */
};

/* Control bits this host wants (24.6.1, 24.7.1, 24.8.1); every other bit is left at the
 * value the capability MSR allows (A.2: "default" bits where the CPU leaves a choice are 0
 * unless the MSR says they must be 1). */
#define PIN_NMI_EXITING (1u << 3)       /* an NMI in the guest is a VM exit (25.2) */
#define PIN_VIRTUAL_NMIS (1u << 5)      /* NMIs are not blocked in the guest (26.6.1) */
#define EXIT_HOST_ADDRESS_SPACE_SIZE (1u << 9)   /* the host runs in 64-bit mode after the exit */
#define ENTRY_IA32E_MODE_GUEST (1u << 9)         /* the guest runs in IA-32e (64-bit) mode */

/* Basic exit reasons (appendix C) and the VM-exit interruption information (24.9.2). */
#define EXIT_REASON_EXCEPTION_OR_NMI 0
#define EXIT_REASON_ENTRY_FAILURE (1u << 31)     /* 24.9.1: VM entry failed loading guest state */
#define INTR_INFO_VALID (1u << 31)
#define INTR_INFO_TYPE(info) (((info) >> 8) & 7u)
#define INTR_TYPE_NMI 2u

/* Segment access rights in the VMCS format (24.4.1, table 24-2): type 3:0, S 4, DPL 6:5,
 * P 7, AVL 12, L 13, D/B 14, G 15, unusable 16. */
#define AR_CODE64 0xa09bu       /* execute/read, accessed, S, P, L, G (26.3.1.2: CS accessed) */
#define AR_DATA 0xc093u         /* read/write, accessed, S, P, D/B, G */
#define AR_TSS_BUSY 0x008bu     /* 64-bit busy TSS, P (26.3.1.2: TR type 11 in IA-32e mode) */
#define AR_UNUSABLE (1u << 16)

/* The VMXON region and a VMCS (4 KiB each, 4 KiB aligned: 24.11.5, 24.2) and the guest's
 * stack, per CPU. */
struct vmx_area {
    uint8_t vmxon[4096];
    uint8_t vmcs[4096];
    uint8_t guest_stack[4096];
} __attribute__((aligned(4096)));

static struct vmx_area vmx_areas[HV_MAX_CPUS];

/* crashpath's record of each CPU's VMX state (include/crashpath.h): vmxon after VMXON, the
 * one VMCS slot after VMPTRLD. Given to crashpath for every CPU by configure_crashpath. */
static volatile uint64_t vmx_current_vmcs[HV_MAX_CPUS][1];
static struct crashpath_vmx_state vmx_states[HV_MAX_CPUS];

struct crashpath_vmx_state *vmx_state(uint32_t cpu)
{
    vmx_states[cpu].nr_vmcs = 1;
    vmx_states[cpu].vmcs = vmx_current_vmcs[cpu];
    return &vmx_states[cpu];
}

/* The outcome of a VMX instruction (30.2): CF=1 is VMfailInvalid (no current VMCS to hold an
 * error number), ZF=1 is VMfailValid (the number is in the VM-instruction error field,
 * 30.4), both clear is VMsucceed. */
enum vmx_status { VMX_OK = 0, VMX_FAIL_INVALID = 1, VMX_FAIL_VALID = 2 };

static enum vmx_status vmx_status(uint8_t cf, uint8_t zf)
{
    return cf ? VMX_FAIL_INVALID : zf ? VMX_FAIL_VALID : VMX_OK;
}

static enum vmx_status vmxon(uint64_t pa)
{
    uint8_t cf, zf;

    __asm__ volatile("vmxon %2; setc %0; setz %1" : "=qm"(cf), "=qm"(zf) : "m"(pa) : "cc", "memory");
    return vmx_status(cf, zf);
}

static enum vmx_status vmclear(uint64_t pa)
{
    uint8_t cf, zf;

    __asm__ volatile("vmclear %2; setc %0; setz %1" : "=qm"(cf), "=qm"(zf) : "m"(pa) : "cc", "memory");
    return vmx_status(cf, zf);
}

static enum vmx_status vmptrld(uint64_t pa)
{
    uint8_t cf, zf;

    __asm__ volatile("vmptrld %2; setc %0; setz %1" : "=qm"(cf), "=qm"(zf) : "m"(pa) : "cc", "memory");
    return vmx_status(cf, zf);
}

static uint64_t vmread(enum vmcs_field field)
{
    uint64_t v = 0;

    __asm__ volatile("vmread %1, %0" : "=r"(v) : "r"((uint64_t)field) : "cc");
    return v;
}

static const char *status_name(enum vmx_status s)
{
    return s == VMX_FAIL_INVALID ? "VMfailInvalid" : "VMfailValid";
}

static void vmwrite(enum vmcs_field field, uint64_t value)
{
    uint8_t cf, zf;
    enum vmx_status s;

    __asm__ volatile("vmwrite %2, %3; setc %0; setz %1" : "=qm"(cf), "=qm"(zf)
                     : "r"(value), "r"((uint64_t)field) : "cc", "memory");
    s = vmx_status(cf, zf);
    if (s != VMX_OK)
        hv_fail("vmx: CPU %u: VMWRITE of field 0x%x: %s (VM-instruction error %lu)", this_cpu()->index,
                (uint32_t)field, status_name(s), s == VMX_FAIL_VALID ? vmread(VM_INSTRUCTION_ERROR) : 0);
}

static uint64_t read_cr0(void) { uint64_t v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static uint64_t read_cr3(void) { uint64_t v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static uint64_t read_cr4(void) { uint64_t v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static void write_cr0(uint64_t v) { __asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory"); }
static void write_cr4(uint64_t v) { __asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }

/* IA32_FEATURE_CONTROL (23.7): VMXON raises #GP unless its lock bit is set and, outside
 * SMX, its bit 2 allows VMX. Locked without bit 2, VMX stays off until the next reset. */
static int vmx_locked_off(void)
{
    uint64_t fc = rdmsr(MSR_FEATURE_CONTROL);

    return (fc & FEATURE_CONTROL_LOCK) && !(fc & FEATURE_CONTROL_VMX_OUTSIDE_SMX);
}

/* Why this CPU cannot run the VMX rows, or NULL if it can. */
const char *vmx_missing(void)
{
    uint32_t a, b, c, d;

    cpuid(1, &a, &b, &c, &d);
    if (!(c & CPUID_1_ECX_VMX))
        return "this CPU model has no VMX";
    return vmx_locked_off() ? "firmware locked IA32_FEATURE_CONTROL with VMX disabled" : NULL;
}

/* Firmware normally sets IA32_FEATURE_CONTROL and locks it; where it left it unlocked, this
 * host allows VMX outside SMX and locks it itself (23.7). */
static void enable_vmx_in_feature_control(struct hv_cpu *c)
{
    uint64_t fc = rdmsr(MSR_FEATURE_CONTROL);

    if (!(fc & FEATURE_CONTROL_LOCK))
        wrmsr(MSR_FEATURE_CONTROL, fc | FEATURE_CONTROL_VMX_OUTSIDE_SMX | FEATURE_CONTROL_LOCK);
    else if (vmx_locked_off())
        hv_fail("vmx: CPU %u: IA32_FEATURE_CONTROL locked with VMX disabled", c->index);
}

/* VMX root operation on this CPU (31.5, VMM setup): CR4.VMXE, then CR0 and CR4 made to obey
 * the fixed bits of VMX operation (23.8; A.7, A.8: a bit set in FIXED0 must be 1, a bit clear
 * in FIXED1 must be 0), then VMXON with a region holding the VMCS revision identifier
 * (24.11.5). With load_vmcs, one VMCS is made current: VMCLEAR initialises it (its launch
 * state becomes "clear"), VMPTRLD makes it this CPU's current VMCS (24.11.3). crashpath's
 * record follows each step, as its header asks. */
void vmx_enter_root(struct hv_cpu *c, int load_vmcs)
{
    struct vmx_area *area = &vmx_areas[c->index];
    uint32_t revision = (uint32_t)(rdmsr(MSR_VMX_BASIC) & VMX_BASIC_REVISION_MASK);
    uint64_t vmxon_pa = hv_virt_to_phys(area->vmxon), vmcs_pa = hv_virt_to_phys(area->vmcs);
    struct crashpath_vmx_state *state = vmx_state(c->index);
    enum vmx_status s;

    enable_vmx_in_feature_control(c);
    write_cr4(read_cr4() | CR4_VMXE);
    write_cr0((read_cr0() | rdmsr(MSR_VMX_CR0_FIXED0)) & rdmsr(MSR_VMX_CR0_FIXED1));
    write_cr4((read_cr4() | rdmsr(MSR_VMX_CR4_FIXED0)) & rdmsr(MSR_VMX_CR4_FIXED1));
    __builtin_memset(area->vmxon, 0, sizeof(area->vmxon));
    __builtin_memcpy(area->vmxon, &revision, 4);
    s = vmxon(vmxon_pa);
    if (s != VMX_OK)
        hv_fail("vmx: CPU %u: VMXON: %s", c->index, status_name(s));
    __atomic_store_n(&state->vmxon, 1, __ATOMIC_RELEASE);
    if (!load_vmcs)
        return;
    /* The VMCS region: revision identifier in bits 30:0, bit 31 clear (not a shadow VMCS) (24.2). */
    __builtin_memset(area->vmcs, 0, sizeof(area->vmcs));
    __builtin_memcpy(area->vmcs, &revision, 4);
    s = vmclear(vmcs_pa);
    if (s == VMX_OK)
        s = vmptrld(vmcs_pa);
    if (s != VMX_OK)
        hv_fail("vmx: CPU %u: VMCLEAR/VMPTRLD: %s", c->index, status_name(s));
    __atomic_store_n(&vmx_current_vmcs[c->index][0], vmcs_pa, __ATOMIC_RELEASE);
}

/* A control word: the bits wanted, plus those the capability MSR forces to 1 (its low half:
 * allowed 0-settings), none it forbids (its high half: allowed 1-settings) (A.3-A.5). The
 * TRUE_* MSRs, where IA32_VMX_BASIC[55] says they exist, also allow clearing some "default1"
 * bits (A.2). A wanted bit the CPU cannot set fails the row. */
static uint32_t control_word(uint32_t msr, uint32_t true_msr, uint32_t want, const char *what)
{
    uint64_t cap = rdmsr(rdmsr(MSR_VMX_BASIC) & VMX_BASIC_TRUE_CTLS ? true_msr : msr);
    uint32_t must_be_1 = (uint32_t)cap, may_be_1 = (uint32_t)(cap >> 32);

    if (want & ~may_be_1)
        hv_fail("vmx: %s controls 0x%x not allowed (allowed-1 0x%x)", what, want, may_be_1);
    return (want | must_be_1) & may_be_1;
}

/* The guest shares the host's page tables, GDT, IDT and TSS and runs at CPL 0 with interrupts
 * off, in 64-bit mode: it exists only so the shootdown NMI finds a CPU in VMX non-root
 * operation. Every field a VM entry checks is written: VMCLEAR sets only the launch state, and
 * software gives the fields their values with VMWRITE after VMPTRLD (24.11.3). */
static void write_guest_state(struct hv_cpu *c, uint64_t guest_rip)
{
    struct __attribute__((packed)) { uint16_t limit; uint64_t base; } gdtr, idtr;
    uint64_t tss = (uint64_t)(uintptr_t)c->tss;
    uint64_t fs_base = rdmsr(MSR_FS_BASE), gs_base = rdmsr(MSR_GS_BASE);
    static const enum vmcs_field data_sel[] = { GUEST_ES_SELECTOR, GUEST_SS_SELECTOR, GUEST_DS_SELECTOR,
                                                GUEST_FS_SELECTOR, GUEST_GS_SELECTOR };

    __asm__ volatile("sgdt %0; sidt %1" : "=m"(gdtr), "=m"(idtr));
    /* 24.4.1: control registers as the host's (they obey the fixed bits, 26.3.1.1), DR7 at
     * its reset value (no breakpoints in the guest), RFLAGS with only the reserved bit 1. */
    vmwrite(GUEST_CR0, read_cr0());
    vmwrite(GUEST_CR3, read_cr3());
    vmwrite(GUEST_CR4, read_cr4());
    vmwrite(GUEST_DR7, 0x400);
    vmwrite(GUEST_RSP, (uint64_t)(uintptr_t)(vmx_areas[c->index].guest_stack + 4096));
    vmwrite(GUEST_RIP, guest_rip);
    vmwrite(GUEST_RFLAGS, 0x2);
    /* Segments (26.3.1.2): a 64-bit code segment, flat data segments (FS and GS with the
     * host's bases), no LDT, the host's busy TSS. */
    vmwrite(GUEST_CS_SELECTOR, HV_CS);
    vmwrite(GUEST_CS_BASE, 0);
    vmwrite(GUEST_CS_LIMIT, 0xffffffffu);
    vmwrite(GUEST_CS_ACCESS, AR_CODE64);
    for (uint32_t i = 0; i < sizeof(data_sel) / sizeof(data_sel[0]); i++) {
        /* selector, limit, access rights and base fields are 2 apart in each group (B.1-B.4) */
        uint32_t seg = (uint32_t)(data_sel[i] - GUEST_ES_SELECTOR);

        vmwrite(data_sel[i], HV_DS);
        vmwrite((enum vmcs_field)(GUEST_ES_LIMIT + seg), 0xffffffffu);
        vmwrite((enum vmcs_field)(GUEST_ES_ACCESS + seg), AR_DATA);
        vmwrite((enum vmcs_field)(GUEST_ES_BASE + seg),
                data_sel[i] == GUEST_FS_SELECTOR ? fs_base : data_sel[i] == GUEST_GS_SELECTOR ? gs_base : 0);
    }
    vmwrite(GUEST_LDTR_SELECTOR, 0);
    vmwrite(GUEST_LDTR_BASE, 0);
    vmwrite(GUEST_LDTR_LIMIT, 0);
    vmwrite(GUEST_LDTR_ACCESS, AR_UNUSABLE);
    vmwrite(GUEST_TR_SELECTOR, HV_TSS);
    vmwrite(GUEST_TR_BASE, tss);
    vmwrite(GUEST_TR_LIMIT, 103);
    vmwrite(GUEST_TR_ACCESS, AR_TSS_BUSY);
    vmwrite(GUEST_GDTR_BASE, gdtr.base);
    vmwrite(GUEST_GDTR_LIMIT, gdtr.limit);
    vmwrite(GUEST_IDTR_BASE, idtr.base);
    vmwrite(GUEST_IDTR_LIMIT, idtr.limit);
    vmwrite(GUEST_DEBUGCTL, 0);           /* loaded: "load debug controls" is a default1 entry control */
    vmwrite(GUEST_SYSENTER_CS, 0);
    vmwrite(GUEST_SYSENTER_ESP, 0);
    vmwrite(GUEST_SYSENTER_EIP, 0);
    /* Non-register state (24.4.2, 26.3.1.5): active, nothing blocked, no pending debug
     * exception, and the VMCS link pointer all ones (no shadow VMCS). */
    vmwrite(GUEST_ACTIVITY_STATE, 0);
    vmwrite(GUEST_INTERRUPTIBILITY, 0);
    vmwrite(GUEST_PENDING_DEBUG, 0);
    vmwrite(VMCS_LINK_POINTER, ~0ull);
}

/* What a VM exit loads (24.5, 27.5): this CPU's own state, so the exit lands in
 * hv_vmx_exit on the stack hv_vmx_enter was called on (HOST_RSP, written there). The checks
 * of 26.2.3: selectors with RPL and TI 0, CS and TR not null. A VM exit sets the GDTR and
 * IDTR limits to 0xffff (27.5.2); both tables are this host's own, and nothing here relies on
 * the limits. */
static void write_host_state(struct hv_cpu *c)
{
    struct __attribute__((packed)) { uint16_t limit; uint64_t base; } gdtr, idtr;

    __asm__ volatile("sgdt %0; sidt %1" : "=m"(gdtr), "=m"(idtr));
    vmwrite(HOST_CR0, read_cr0());
    vmwrite(HOST_CR3, read_cr3());
    vmwrite(HOST_CR4, read_cr4());
    vmwrite(HOST_RIP, (uint64_t)(uintptr_t)hv_vmx_exit);
    vmwrite(HOST_CS_SELECTOR, HV_CS);
    vmwrite(HOST_SS_SELECTOR, HV_DS);
    vmwrite(HOST_DS_SELECTOR, HV_DS);
    vmwrite(HOST_ES_SELECTOR, HV_DS);
    vmwrite(HOST_FS_SELECTOR, 0);         /* boot.asm loads null FS and GS; the bases are MSRs */
    vmwrite(HOST_GS_SELECTOR, 0);
    vmwrite(HOST_TR_SELECTOR, HV_TSS);
    vmwrite(HOST_FS_BASE, rdmsr(MSR_FS_BASE));
    vmwrite(HOST_GS_BASE, rdmsr(MSR_GS_BASE));      /* this_cpu() reads GS:0 */
    vmwrite(HOST_TR_BASE, (uint64_t)(uintptr_t)c->tss);
    vmwrite(HOST_GDTR_BASE, gdtr.base);
    vmwrite(HOST_IDTR_BASE, idtr.base);
    vmwrite(HOST_SYSENTER_CS, 0);
    vmwrite(HOST_SYSENTER_ESP, 0);        /* 26.2.2: canonical */
    vmwrite(HOST_SYSENTER_EIP, 0);
}

/* The controls (24.6-24.8): NMI exiting with virtual NMIs; no secondary controls (so no EPT:
 * the guest runs on the host's CR3); every exception a VM exit (the exception bitmap all ones,
 * page faults included since error mask and match are both 0: 24.6.3), so a guest that faults
 * fails the row instead of running the host's handlers in guest mode; HLT and PAUSE in the
 * guest do not exit; a 64-bit host after the exit, a 64-bit guest after the entry. No MSR
 * lists, no CR3 targets, no event injection. The guest touches no control register, so the
 * CR0/CR4 guest/host masks are 0. */
static void write_controls(void)
{
    vmwrite(PIN_BASED_CONTROLS, control_word(MSR_VMX_PINBASED_CTLS, MSR_VMX_TRUE_PINBASED_CTLS,
                                             PIN_NMI_EXITING | PIN_VIRTUAL_NMIS, "pin-based"));
    vmwrite(PROC_BASED_CONTROLS, control_word(MSR_VMX_PROCBASED_CTLS, MSR_VMX_TRUE_PROCBASED_CTLS, 0,
                                              "processor-based"));
    vmwrite(EXIT_CONTROLS, control_word(MSR_VMX_EXIT_CTLS, MSR_VMX_TRUE_EXIT_CTLS, EXIT_HOST_ADDRESS_SPACE_SIZE,
                                        "VM-exit"));
    vmwrite(ENTRY_CONTROLS, control_word(MSR_VMX_ENTRY_CTLS, MSR_VMX_TRUE_ENTRY_CTLS, ENTRY_IA32E_MODE_GUEST,
                                         "VM-entry"));
    vmwrite(EXCEPTION_BITMAP, 0xffffffffu);
    vmwrite(PAGE_FAULT_ERROR_MASK, 0);
    vmwrite(PAGE_FAULT_ERROR_MATCH, 0);
    vmwrite(CR3_TARGET_COUNT, 0);
    vmwrite(EXIT_MSR_STORE_COUNT, 0);
    vmwrite(EXIT_MSR_LOAD_COUNT, 0);
    vmwrite(ENTRY_MSR_LOAD_COUNT, 0);
    vmwrite(ENTRY_INTERRUPTION_INFO, 0);
    vmwrite(CR0_GUEST_HOST_MASK, 0);
    vmwrite(CR4_GUEST_HOST_MASK, 0);
    vmwrite(CR0_READ_SHADOW, 0);
    vmwrite(CR4_READ_SHADOW, 0);
}

/* The VM-exit loop. A VM exit caused by an NMI leaves NMIs blocked in VMX root operation, as
 * their delivery would have (27.1). The exit handler first offers it to crashpath
 * (hv_vmx_offer_nmi), which parks this CPU, VMCLEARs the VMCS and executes VMXOFF if a crash
 * is under way, and never returns then. Otherwise the NMI is dropped, as hv_exception drops an
 * NMI nobody asked for: in this host the only NMIs a guest CPU gets are the shootdown's, and
 * crashpath has just said no crash is under way. Dropping it needs no unblocking: with virtual
 * NMIs, NMIs are not blocked in VMX non-root operation after the next VM entry (26.6.1). A host
 * with NMI users of its own would call its NMI handler with NMIs still blocked, so that its
 * IRET ends the blocking as after a delivery; not `int $2`, a software interrupt that the CPU
 * does not treat as an NMI. */
void vmx_run_guest(struct hv_cpu *c, int halt)
{
    uint64_t guest_rip = (uint64_t)(uintptr_t)(halt ? hv_vmx_guest_halt : hv_vmx_guest_spin);
    int launched = 0;

    vmx_enter_root(c, 1);
    write_controls();
    write_host_state(c);
    write_guest_state(c, guest_rip);
    for (;;) {
        uint32_t reason, info;
        enum vmx_status s = (enum vmx_status)hv_vmx_enter(launched, &c->role_ready);

        if (s != VMX_OK)
            hv_fail("vmx: CPU %u: %s: %s (VM-instruction error %lu)", c->index, launched ? "VMRESUME" : "VMLAUNCH",
                    status_name(s), s == VMX_FAIL_VALID ? vmread(VM_INSTRUCTION_ERROR) : 0);
        launched = 1;
        reason = (uint32_t)vmread(EXIT_REASON);
        info = (uint32_t)vmread(EXIT_INTERRUPTION_INFO);
        if (reason & EXIT_REASON_ENTRY_FAILURE)         /* 26.7: the guest state failed a check */
            hv_fail("vmx: CPU %u: VM entry failed, exit reason %u, qualification 0x%lx", c->index,
                    reason & 0xffffu, vmread(EXIT_QUALIFICATION));
        if (reason == EXIT_REASON_EXCEPTION_OR_NMI && (info & INTR_INFO_VALID) &&
            INTR_INFO_TYPE(info) == INTR_TYPE_NMI) {
            (void)hv_vmx_offer_nmi(vmread(GUEST_RIP));
            /* A HLT guest exits in the HLT activity state; resume it active instead, at the
             * instruction after its HLT, which loops back to HLT (no reliance on the HLT
             * state being supported on entry, A.6). */
            vmwrite(GUEST_ACTIVITY_STATE, 0);
            continue;
        }
        hv_fail("vmx: CPU %u: unexpected VM exit, reason %u, interruption info 0x%x, qualification 0x%lx, "
                "guest RIP 0x%lx", c->index, reason, info, vmread(EXIT_QUALIFICATION), vmread(GUEST_RIP));
    }
}
