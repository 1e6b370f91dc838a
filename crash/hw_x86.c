/* SPDX-License-Identifier: BSD-2-Clause */
/* hw_x86.c — the real hardware layer (include/cp/hw.h): one short inline-asm wrapper per
 * instruction. Host unit tests link tests/unit/sim_hw.c in its place. */
#include "cp/hw.h"
#include "crashpath.h"

uint64_t cp_hw_rdmsr(uint32_t msr)
{
    uint32_t lo, hi;

    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}

void cp_hw_wrmsr(uint32_t msr, uint64_t value)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32))
                     : "memory");
}

/* regs is written by the asm outputs, which clang-tidy does not see. */
void cp_hw_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t regs[4]) // NOLINT(readability-non-const-parameter)
{
    __asm__ volatile("cpuid"
                     : "=a"(regs[0]), "=b"(regs[1]), "=c"(regs[2]), "=d"(regs[3])
                     : "a"(leaf), "c"(subleaf));
}

uint32_t cp_hw_mmio_read32(uint64_t vaddr)
{
    return *(volatile uint32_t *)(uintptr_t)vaddr;
}

void cp_hw_mmio_write32(uint64_t vaddr, uint32_t value)
{
    *(volatile uint32_t *)(uintptr_t)vaddr = value;
}

uint64_t cp_hw_rdtsc(void)
{
    uint32_t lo, hi;

    /* Timeouts only: no ordering fence needed, a late read lengthens the
     * wait by a few cycles at most. */
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

#define READ_CR(n)                                              \
    uint64_t cp_hw_read_cr##n(void)                             \
    {                                                           \
        uint64_t v;                                             \
        __asm__ volatile("mov %%cr" #n ", %0" : "=r"(v));       \
        return v;                                               \
    }
READ_CR(0)
READ_CR(2)
READ_CR(3)
READ_CR(4)

void cp_hw_write_cr4(uint64_t value)
{
    __asm__ volatile("mov %0, %%cr4" : : "r"(value) : "memory");
}

uint16_t cp_hw_read_sel(unsigned int which)
{
    uint16_t v = 0;

    switch (which) {
    case 0: __asm__ volatile("mov %%cs, %0" : "=r"(v)); break;
    case 1: __asm__ volatile("mov %%ds, %0" : "=r"(v)); break;
    case 2: __asm__ volatile("mov %%es, %0" : "=r"(v)); break;
    case 3: __asm__ volatile("mov %%fs, %0" : "=r"(v)); break;
    case 4: __asm__ volatile("mov %%gs, %0" : "=r"(v)); break;
    case 5: __asm__ volatile("mov %%ss, %0" : "=r"(v)); break;
    default: break;
    }
    return v;
}

void cp_hw_idt_read(uint64_t gate, uint64_t *lo, uint64_t *hi)
{
    const volatile uint64_t *g = (const volatile uint64_t *)(uintptr_t)gate;

    *lo = g[0];
    *hi = g[1];
}

void cp_hw_idt_write_lo(uint64_t gate, uint64_t lo)
{
    *(volatile uint64_t *)(uintptr_t)gate = lo;
}

int cp_hw_idt_cmpxchg16(uint64_t gate, uint64_t old_lo, uint64_t old_hi, uint64_t lo, uint64_t hi)
{
    uint8_t ok;

    __asm__ volatile("lock cmpxchg16b %1\n\tsete %0"
                     : "=q"(ok), "+m"(*(volatile uint64_t(*)[2])(uintptr_t)gate),
                       "+a"(old_lo), "+d"(old_hi)
                     : "b"(lo), "c"(hi)
                     : "memory", "cc");
    return ok;
}

void cp_hw_cli(void)
{
    __asm__ volatile("cli" : : : "memory");
}

void cp_hw_pause(void)
{
    __asm__ volatile("pause" : : : "memory");
}

void cp_hw_halt(void)
{
    __asm__ volatile("hlt" : : : "memory");
}

void cp_hw_mfence(void)
{
    __asm__ volatile("mfence" : : : "memory");
}

void cp_hw_lfence(void)
{
    __asm__ volatile("lfence" : : : "memory");
}

void cp_hw_enable_nmis(void)
{
    crashpath_enable_nmis();
}

void handoff_stub(uint64_t cr3, uint64_t identity_entry) __attribute__((noreturn));

void cp_hw_handoff(uint64_t cr3, uint64_t identity_entry)
{
    handoff_stub(cr3, identity_entry);
}

void cp_hw_vmclear(uint64_t vmcs_pa)
{
    /* VMCLEAR takes the physical address from memory (SDM vol. 3, 30.3). */
    __asm__ volatile("vmclear %0" : : "m"(vmcs_pa) : "memory", "cc");
}

void cp_hw_vmxoff(void)
{
    __asm__ volatile("vmxoff" : : : "memory", "cc");
}

int vmxoff_probe(void);

int cp_hw_vmxoff_probe(void)
{
    return vmxoff_probe();
}

void cp_hw_stgi(void)
{
    __asm__ volatile("stgi" : : : "memory");
}
