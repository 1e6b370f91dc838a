/* SPDX-License-Identifier: BSD-2-Clause */
/* svm.c — AMD SVM for the scenarios svm=1 and clgi_cpu=N: a tiny 64-bit guest per victim with
 * NMIs intercepted, whose VM-exit path calls crashpath_nmi_vmexit as a real hypervisor's would. */
#include "hv.h"

#define MSR_EFER 0xc0000080u
#define MSR_VM_HSAVE_PA 0xc0010117u
#define EFER_SVME (1ull << 12)
#define CPUID_80000001_ECX_SVM (1u << 2)

/* VMCB layout (AMD APM vol. 2, appendix B): control area, then the state save area at 0x400. */
#define VMCB_INTERCEPT_MISC 0x00c     /* 64 bits: vector 3 (bits 0-31), vector 4 (32-63) */
#define   INTERCEPT_NMI (1ull << 1)
#define   INTERCEPT_SHUTDOWN (1ull << 31)
#define   INTERCEPT_VMRUN (1ull << 32) /* required: VMRUN without it fails with VMEXIT_INVALID */
#define VMCB_ASID 0x058               /* nonzero: ASID 0 belongs to the host */
#define VMCB_EXIT_CODE 0x070
#define VMCB_EXIT_INFO1 0x078
#define VMCB_ES 0x400                 /* each segment: selector, attrib, limit, base (16 bytes) */
#define VMCB_CS 0x410
#define VMCB_SS 0x420
#define VMCB_DS 0x430
#define VMCB_GDTR 0x460
#define VMCB_IDTR 0x480
#define VMCB_TR 0x490
#define VMCB_CPL 0x4cb
#define VMCB_EFER 0x4d0
#define VMCB_CR4 0x548
#define VMCB_CR3 0x550
#define VMCB_CR0 0x558
#define VMCB_DR7 0x560
#define VMCB_DR6 0x568
#define VMCB_RFLAGS 0x570
#define VMCB_RIP 0x578
#define VMCB_RSP 0x5d8
#define VMCB_RAX 0x5f8
#define VMCB_G_PAT 0x668

#define SVM_EXIT_NMI 0x61

/* Segment attributes in the VMCB's packed form: descriptor bits 8-15 in
 * attrib 0-7 (type, S, DPL, P), bits 20-23 in attrib 8-11 (AVL, L, D/B, G). */
#define ATTR_CODE64 0x029b            /* execute/read, accessed, present, L */
#define ATTR_DATA 0x0c93              /* read/write, accessed, present, D/B, G */
#define ATTR_TSS_BUSY 0x008b

struct svm_area {
    uint8_t vmcb[4096];
    uint8_t host_save[4096];
    uint8_t guest_stack[4096];
} __attribute__((aligned(4096)));

static struct svm_area svm_areas[HV_MAX_CPUS];

static void put16(uint8_t *p, uint16_t v) { __builtin_memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { __builtin_memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { __builtin_memcpy(p, &v, 8); }
static uint64_t get64(const uint8_t *p) { uint64_t v; __builtin_memcpy(&v, p, 8); return v; }

static void vmcb_seg(uint8_t *vmcb, uint32_t off, uint16_t sel, uint16_t attrib, uint32_t limit, uint64_t base)
{
    put16(vmcb + off, sel);
    put16(vmcb + off + 2, attrib);
    put32(vmcb + off + 4, limit);
    put64(vmcb + off + 8, base);
}

static uint64_t read_cr(int n)
{
    uint64_t v = 0;

    if (n == 0)
        __asm__ volatile("mov %%cr0, %0" : "=r"(v));
    else if (n == 3)
        __asm__ volatile("mov %%cr3, %0" : "=r"(v));
    else
        __asm__ volatile("mov %%cr4, %0" : "=r"(v));
    return v;
}

int svm_available(void)
{
    uint32_t a, b, c, d;

    cpuid(0x80000000u, &a, &b, &c, &d);
    if (a < 0x80000001u)
        return 0;
    cpuid(0x80000001u, &a, &b, &c, &d);
    return (c & CPUID_80000001_ECX_SVM) != 0;
}

void svm_enable(struct hv_cpu *c)
{
    if (!svm_available())
        hv_fail("svm: CPU %u has no SVM (use -cpu max)", c->index);
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
    wrmsr(MSR_VM_HSAVE_PA, hv_virt_to_phys(svm_areas[c->index].host_save));
}

/* The guest shares the host's page tables, GDT and IDT and runs at CPL 0
 * with interrupts off: it exists only so the shootdown NMI finds a CPU in
 * guest mode. */
static void build_vmcb(struct hv_cpu *c, uint8_t *vmcb)
{
    struct __attribute__((packed)) { uint16_t limit; uint64_t base; } gdtr, idtr;
    uint64_t tss = (uint64_t)(uintptr_t)c->tss;

    __asm__ volatile("sgdt %0; sidt %1" : "=m"(gdtr), "=m"(idtr));
    __builtin_memset(vmcb, 0, 4096);
    put64(vmcb + VMCB_INTERCEPT_MISC, INTERCEPT_NMI | INTERCEPT_SHUTDOWN | INTERCEPT_VMRUN);
    put32(vmcb + VMCB_ASID, 1);
    vmcb_seg(vmcb, VMCB_CS, HV_CS, ATTR_CODE64, 0xffffffffu, 0);
    vmcb_seg(vmcb, VMCB_ES, HV_DS, ATTR_DATA, 0xffffffffu, 0);
    vmcb_seg(vmcb, VMCB_SS, HV_DS, ATTR_DATA, 0xffffffffu, 0);
    vmcb_seg(vmcb, VMCB_DS, HV_DS, ATTR_DATA, 0xffffffffu, 0);
    vmcb_seg(vmcb, VMCB_GDTR, 0, 0, gdtr.limit, gdtr.base);
    vmcb_seg(vmcb, VMCB_IDTR, 0, 0, idtr.limit, idtr.base);
    vmcb_seg(vmcb, VMCB_TR, HV_TSS, ATTR_TSS_BUSY, 103, tss);
    vmcb[VMCB_CPL] = 0;
    put64(vmcb + VMCB_EFER, rdmsr(MSR_EFER));          /* LME, LMA, SVME (required) */
    put64(vmcb + VMCB_CR0, read_cr(0));
    put64(vmcb + VMCB_CR3, read_cr(3));
    put64(vmcb + VMCB_CR4, read_cr(4));
    put64(vmcb + VMCB_DR7, 0x400);
    put64(vmcb + VMCB_DR6, 0xffff0ff0);
    put64(vmcb + VMCB_RFLAGS, 0x2);                      /* IF clear */
    put64(vmcb + VMCB_RIP, (uint64_t)(uintptr_t)hv_guest_loop);
    put64(vmcb + VMCB_RSP, (uint64_t)(uintptr_t)(svm_areas[c->index].guest_stack + 4096));
    put64(vmcb + VMCB_G_PAT, 0x0007040600070406ull);     /* the power-on PAT */
}

/* The VM-exit loop. After #VMEXIT, GIF is 0 and an intercepted NMI is still
 * pending (it was never taken): the exit handler first offers it to
 * crashpath, which parks this CPU if a crash is in progress; otherwise STGI
 * lets it through to the host's own NMI handler, and the guest runs again. */
void svm_run_guest(struct hv_cpu *c)
{
    uint8_t *vmcb = svm_areas[c->index].vmcb;
    uint64_t pa = hv_virt_to_phys(vmcb);

    svm_enable(c);
    build_vmcb(c, vmcb);
    for (;;) {
        uint64_t code;

        hv_vmrun(pa, &c->role_ready);
        code = get64(vmcb + VMCB_EXIT_CODE);
        if (code == SVM_EXIT_NMI) {
            (void)crashpath_nmi_vmexit();
            __asm__ volatile("stgi" : : : "memory");
            continue;
        }
        hv_fail("svm: CPU %u: unexpected #VMEXIT 0x%lx (info1 0x%lx)", c->index, code,
                get64(vmcb + VMCB_EXIT_INFO1));
    }
}
