/* SPDX-License-Identifier: BSD-2-Clause */
/* sim_hw.c — the hardware layer (include/cp/hw.h) for host tests: the calling thread's
 * simulated CPU answers every MSR, CPUID, MMIO, TSC and IDT access, and logs it. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include "cp/hw.h"
#include "cp/internal.h"
#include "sim.h"

struct sim_cpu sim_cpus[SIM_MAX_CPUS];
uint64_t sim_xapic_virt;
_Alignas(512) uint8_t sim_info_note[CRASHPATH_INFO_NOTE_SIZE];
__thread struct sim_cpu *sim_self;
char sim_console_text[4096];
volatile int sim_console_lines;
static int sim_nr;

#define APIC_BASE_EN (1ull << 11)
#define APIC_BASE_EXTD (1ull << 10)
#define HOST_HANDLER(v) (0xffffffff81000000ull + (v) * 0x40ull)

static struct sim_cpu *self(void)
{
    return sim_self ? sim_self : &sim_cpus[0];
}

static void fault(struct sim_cpu *c, const char *what, uint64_t v)
{
    if (!c->faults)
        snprintf(c->fault, sizeof(c->fault), "%s 0x%llx", what, (unsigned long long)v);
    __atomic_add_fetch(&c->faults, 1, __ATOMIC_SEQ_CST);
}

static uint64_t op_seq;

void (*volatile sim_op_hook)(struct sim_cpu *c, uint32_t kind, uint32_t reg);

static void log_op(struct sim_cpu *c, uint32_t kind, uint32_t reg, uint64_t value)
{
    void (*hook)(struct sim_cpu *, uint32_t, uint32_t) = sim_op_hook;
    int i;

    if (hook)
        hook(c, kind, reg);
    i = __atomic_fetch_add(&c->nlog, 1, __ATOMIC_SEQ_CST);

    if (i < SIM_LOG_MAX) {
        c->log[i].seq = __atomic_add_fetch(&op_seq, 1, __ATOMIC_SEQ_CST);
        c->log[i].kind = kind;
        c->log[i].reg = reg;
        c->log[i].value = value;
    }
}

int sim_count_ops(const struct sim_cpu *c, uint32_t kind, uint32_t reg)
{
    int n = 0;

    for (int i = 0; i < c->nlog && i < SIM_LOG_MAX; i++)
        if (c->log[i].kind == kind && (reg == 0xffffffffu || c->log[i].reg == reg))
            n++;
    return n;
}

void sim_clear_log(struct sim_cpu *c)
{
    c->nlog = 0;
}

uint64_t sim_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- gates ---- */
uint64_t sim_gate_handler(const struct sim_cpu *c, unsigned int vector)
{
    uint64_t lo, hi;

    memcpy(&lo, c->idt + vector * 16, 8);
    memcpy(&hi, c->idt + vector * 16 + 8, 8);
    return cp_gate_handler(lo, hi);
}

unsigned int sim_gate_ist(const struct sim_cpu *c, unsigned int vector)
{
    uint64_t lo;

    memcpy(&lo, c->idt + vector * 16, 8);
    return cp_gate_ist(lo);
}

void sim_set_gate(struct sim_cpu *c, unsigned int vector, uint64_t handler, unsigned int ist)
{
    uint64_t lo, hi;

    cp_gate_encode(handler, SIM_CS, ist, 0xe, 0, &lo, &hi);
    memcpy(c->idt + vector * 16, &lo, 8);
    memcpy(c->idt + vector * 16 + 8, &hi, 8);
}

/* ---- NMI delivery: SIGUSR1 interrupts the thread acting as the CPU ---- */
static void take_nmi(ucontext_t *uc);

static void deliver_pending(struct sim_cpu *c)
{
    if (c->running && !c->stuck_in_nmi && !c->nmi_blocked && !c->gif_clear && c->nmi_pending)
        pthread_kill(c->thread, SIGUSR1);
}

void sim_nmi(struct sim_cpu *c)
{
    if (c->in_guest && c->svm_guest) {
        /* SVM NMI intercept: #VMEXIT with GIF cleared; the NMI itself is not
         * taken and stays pending until STGI (AMD APM vol. 2, 15.17). */
        c->gif_clear = 1;
        __atomic_store_n(&c->nmi_pending, 1, __ATOMIC_SEQ_CST);
        c->in_guest = 0;
        c->vmexit_pending = 1;
        return;
    }
    if (c->in_guest) {
        /* NMI exiting: the NMI becomes a VM exit, the IDT is not consulted. */
        c->vmexit_pending = 1;
        return;
    }
    __atomic_store_n(&c->nmi_pending, 1, __ATOMIC_SEQ_CST);
    deliver_pending(c);
}

static void nmi_signal(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    (void)si;
    take_nmi(ucv);
}

/* The interrupted context as the entry stubs would save it. */
static void regs_from_context(const struct sim_cpu *c, const ucontext_t *uc, struct crashpath_regs *r)
{
    const greg_t *g = uc->uc_mcontext.gregs;

    r->r15 = g[REG_R15]; r->r14 = g[REG_R14]; r->r13 = g[REG_R13]; r->r12 = g[REG_R12];
    r->rbp = g[REG_RBP]; r->rbx = g[REG_RBX]; r->r11 = g[REG_R11]; r->r10 = g[REG_R10];
    r->r9 = g[REG_R9]; r->r8 = g[REG_R8]; r->rax = g[REG_RAX]; r->rcx = g[REG_RCX];
    r->rdx = g[REG_RDX]; r->rsi = g[REG_RSI]; r->rdi = g[REG_RDI];
    r->orig_rax = ~0ull;
    r->rip = g[REG_RIP]; r->cs = g[REG_CSGSFS] & 0xffff; r->rflags = g[REG_EFL];
    r->rsp = g[REG_RSP]; r->ss = c->sel[5];
}

static void take_nmi(ucontext_t *uc)
{
    struct sim_cpu *c = sim_self;
    uint64_t handler;

    if (!c)
        return;
    while (!c->nmi_blocked && !c->stuck_in_nmi && !c->gif_clear &&
           __atomic_exchange_n(&c->nmi_pending, 0, __ATOMIC_SEQ_CST)) {
        c->nmi_blocked = 1;
        c->nmis_taken++;
        c->ist_at_delivery = (int)sim_gate_ist(c, 2);
        handler = sim_gate_handler(c, 2);
        if (handler == (uint64_t)(uintptr_t)crashpath_nmi_crash) {
            struct crashpath_regs r;

            regs_from_context(c, uc, &r);
            cp_nmi_victim(&r);
        }
        if (handler == (uint64_t)(uintptr_t)crashpath_trap_nop)
            c->nop_nmis++;
        else
            c->host_nmis++;
        c->nmi_blocked = 0;    /* the handler's IRET */
    }
}

/* ---- machine checks: SIGUSR2 interrupts the thread acting as the CPU ---- */
static void mce_signal(int sig, siginfo_t *si, void *ucv)
{
    struct sim_cpu *c = sim_self;
    uint64_t handler;

    (void)sig;
    (void)si;
    if (!c)
        return;
    if (c->mcg_status & MCG_STATUS_MCIP) {
        /* SDM vol. 3, 15.10.1: the processor enters shutdown */
        fault(c, "machine check while MCG_STATUS.MCIP is set: shutdown", c->mcg_status);
        return;
    }
    c->mcg_status = MCG_STATUS_MCIP | (c->mce_ripv ? MCG_STATUS_RIPV : 0);
    c->mces_taken++;
    handler = sim_gate_handler(c, 18);
    if (handler == (uint64_t)(uintptr_t)crashpath_mce_crash) {
        struct crashpath_regs r;

        regs_from_context(c, ucv, &r);
        cp_mce_entry(&r);
        sim_iret();                 /* crashpath_mce_crash's IRET */
        return;
    }
    /* The host's handler panics: on the crasher that loses the crash. */
    c->host_mces++;
    fault(c, "machine check reached the host's #MC handler during the crash", handler);
}

void sim_mce(struct sim_cpu *c, int ripv)
{
    c->mce_ripv = ripv;
    pthread_kill(c->thread, SIGUSR2);
}

void sim_iret(void)
{
    struct sim_cpu *c = self();

    c->nmi_blocked = 0;
    deliver_pending(c);
}

void sim_unlatch(struct sim_cpu *c)
{
    c->nmi_blocked = 0;
    deliver_pending(c);
}

static void *cpu_thread(void *arg)
{
    struct sim_cpu *c = arg;
    sim_self = c;
    __atomic_store_n(&c->running, 1, __ATOMIC_SEQ_CST);
    deliver_pending(c);
    c->fn(c);
    return NULL;
}

void sim_start_cpu(struct sim_cpu *c, void (*fn)(struct sim_cpu *))
{
    c->fn = fn;
    pthread_create(&c->thread, NULL, cpu_thread, c);
    while (!__atomic_load_n(&c->running, __ATOMIC_SEQ_CST))
        sched_yield();
}

int sim_wait(int (*cond)(void), int ms)
{
    uint64_t end = sim_now_ns() + (uint64_t)ms * 1000000ull;

    while (!cond()) {
        if (sim_now_ns() > end)
            return 0;
        usleep(1000);
    }
    return 1;
}

void sim_console(const char *msg, size_t len)
{
    size_t at = strlen(sim_console_text);

    if (at + len + 2 < sizeof(sim_console_text)) {
        memcpy(sim_console_text + at, msg, len);
        sim_console_text[at + len] = '\n';
        sim_console_text[at + len + 1] = 0;
    }
    __atomic_add_fetch(&sim_console_lines, 1, __ATOMIC_SEQ_CST);
}

void sim_reset(int n, enum crashpath_apic_mode mode, const uint32_t *ids)
{
    struct sigaction sa;

    memset(sim_cpus, 0, sizeof(sim_cpus));
    sim_xapic_virt = 0;
    sim_op_hook = NULL;
    sim_logical_lost = 0;
    memset(sim_console_text, 0, sizeof(sim_console_text));
    sim_console_lines = 0;
    sim_nr = n;
    for (int i = 0; i < SIM_MAX_CPUS; i++) {
        struct sim_cpu *c = &sim_cpus[i];

        c->id = i;
        c->apic_id = ids ? ids[i < n ? i : 0] + (i < n ? 0 : 0x100u + (uint32_t)i) : (uint32_t)i * 2 + 1;
        c->apic_base = SIM_XAPIC_DEFAULT_BASE | APIC_BASE_EN;
        if (mode == CRASHPATH_APIC_X2APIC)
            c->apic_base |= APIC_BASE_EXTD;
        else if (mode == CRASHPATH_APIC_DISABLED)
            c->apic_base &= ~APIC_BASE_EN;
        c->cpuid_x2apic = 1;
        c->cpuid_cx16 = 1;
        c->lapic[0x30 >> 4] = 0x00060014;        /* version: max LVT 6 (CMCI present) */
        c->lapic[0xf0 >> 4] = 0x1ff;             /* SVR: enabled, vector 0xff */
        c->lapic[0x360 >> 4] = 0x400;            /* LINT1: NMI, unmasked */
        c->cr0 = 0x80050033;
        c->cr3 = 0x1000000ull + (uint64_t)i * 0x1000;
        c->cr4 = 0x3006f0;
        c->efer = 0xd01;
        c->fs_base = 0xf5000000ull + (uint64_t)i;
        c->gs_base = 0x65000000ull + (uint64_t)i;
        c->sel[0] = SIM_CS;
        c->sel[1] = c->sel[2] = c->sel[3] = c->sel[4] = 0;
        c->sel[5] = 0x18;
        c->vmx.vmcs = c->vmcs_slots;
        c->vmx.nr_vmcs = 4;
        sim_set_gate(c, 2, HOST_HANDLER(2), 2);
        sim_set_gate(c, 8, HOST_HANDLER(8), 3);
        sim_set_gate(c, 18, HOST_HANDLER(18), 1);
    }
    sigemptyset(&sa.sa_mask);
    sa.sa_sigaction = nmi_signal;
    /* SA_NODEFER: a second NMI may interrupt the first, as after an IRET. */
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_sigaction = mce_signal;
    sigaction(SIGUSR2, &sa, NULL);
}

void sim_config(struct crashpath_config *cfg, struct crashpath_cpu *cpus, int n)
{
    memset(cfg, 0, sizeof(*cfg));
    for (int i = 0; i < n; i++) {
        memset(&cpus[i], 0, sizeof(cpus[i]));
        cpus[i].index = (uint32_t)i;
        cpus[i].apic_id = sim_cpus[i].apic_id;
        cpus[i].flags = CRASHPATH_CPU_PRESENT;
        cpus[i].idt_base = (uint64_t)(uintptr_t)sim_cpus[i].idt;
        cpus[i].idt_limit = 256 * 16 - 1;
        cpus[i].notes = sim_cpus[i].notes;
        cpus[i].notes_phys = 0x7f000000ull + (uint64_t)i * CRASHPATH_CPU_NOTES_SIZE;
        cpus[i].vmx = &sim_cpus[i].vmx;
    }
    cfg->nr_cpus = (uint32_t)n;
    cfg->cpus = cpus;
    cfg->hv_cs = SIM_CS;
    cfg->tsc_khz = SIM_TSC_KHZ;
    cfg->timeout_ms = 5000;
    cfg->info_note = sim_info_note;
    cfg->info_note_phys = 0x7e000000ull;
    cfg->console = sim_console;
}

/* ---- the hardware layer ---- */
static struct sim_cpu *cpu_by_apic_id(uint32_t id)
{
    for (int i = 0; i < sim_nr; i++)
        if (sim_cpus[i].apic_id == id)
            return &sim_cpus[i];
    return NULL;
}

static int mode_of(const struct sim_cpu *c)
{
    if (!(c->apic_base & APIC_BASE_EN))
        return 0;
    return (c->apic_base & APIC_BASE_EXTD) ? 2 : 1;
}

/* An x2APIC logical destination: cluster in bits 31:16, members in 15:0;
 * a CPU's logical ID is fixed from its x2APIC ID (SDM vol. 3, 11.12.10.2),
 * and only a CPU in x2APIC mode compares with it (one in xAPIC mode uses
 * its LDR and DFR, which nobody here set). */
volatile uint64_t sim_logical_lost;

static void logical_send(uint32_t dest)
{
    for (int i = 0; i < sim_nr; i++) {
        struct sim_cpu *t = &sim_cpus[i];

        if (mode_of(t) == 2 && !(sim_logical_lost & (1ull << i)) && ((t->apic_id >> 4) & 0xffffu) == dest >> 16 &&
            (dest & 0xffffu & (1u << (t->apic_id & 15u))))
            sim_nmi(t);
    }
}

/* An ICR write: decode it as the LAPIC would and raise NMIs. */
static void icr_send(struct sim_cpu *c, uint32_t dest, uint32_t low)
{
    uint32_t mode = (low >> 8) & 7u, shorthand = (low >> 18) & 3u;

    if (mode != 4) {
        fault(c, "ICR: delivery mode is not NMI", low);
        return;
    }
    if (!(low & (1u << 14)))
        fault(c, "ICR: level de-assert with NMI", low);
    if (shorthand == 0 && (low & (1u << 11))) {
        if (mode_of(c) != 2)
            fault(c, "ICR: logical destination in xAPIC mode (means the host's LDR/DFR)", low);
        else
            logical_send(dest);
        return;
    }
    switch (shorthand) {
    case 0: {
        struct sim_cpu *t = cpu_by_apic_id(dest);

        if (t)
            sim_nmi(t);
        break;
    }
    case 1:
        fault(c, "ICR: self shorthand with NMI delivery (SDM: fixed only)", low);
        break;
    case 2:
    case 3:
        for (int i = 0; i < sim_nr; i++)
            if (shorthand == 2 || &sim_cpus[i] != c)
                sim_nmi(&sim_cpus[i]);
        break;
    }
}

uint64_t cp_hw_rdmsr(uint32_t msr)
{
    struct sim_cpu *c = self();
    uint64_t v = 0;

    if (msr >= 0x800 && msr < 0x840) {
        uint32_t reg = (msr - 0x800) << 4;

        if (mode_of(c) != 2)
            fault(c, "RDMSR of an x2APIC register outside x2APIC mode", msr);
        v = reg == 0x20 ? c->apic_id : c->lapic[reg >> 4];
        if (reg == 0x2f0 && ((c->lapic[3] >> 16) & 0xff) < 6)
            fault(c, "RDMSR of the CMCI LVT the LAPIC lacks", msr);
    } else {
        switch (msr) {
        case MSR_IA32_APIC_BASE: v = c->apic_base; break;
        case MSR_EFER: v = c->efer; break;
        case MSR_FS_BASE: v = c->fs_base; break;
        case MSR_GS_BASE: v = c->gs_base; break;
        case MSR_VM_HSAVE_PA: v = c->hsave_pa; break;
        case MSR_IA32_MCG_STATUS: v = c->mcg_status; break;
        case MSR_IA32_S_CET:
            if (!c->cpuid_cet)
                fault(c, "RDMSR of IA32_S_CET on a CPU without CET (#GP)", msr);
            v = c->s_cet;
            break;
        default: fault(c, "RDMSR of an unknown MSR", msr);
        }
    }
    log_op(c, OP_RDMSR, msr, v);
    return v;
}

void cp_hw_wrmsr(uint32_t msr, uint64_t value)
{
    struct sim_cpu *c = self();

    log_op(c, OP_WRMSR, msr, value);
    if (msr >= 0x800 && msr < 0x840) {
        uint32_t reg = (msr - 0x800) << 4;

        if (mode_of(c) != 2)
            fault(c, "WRMSR of an x2APIC register outside x2APIC mode", msr);
        if (reg == 0x2f0 && ((c->lapic[3] >> 16) & 0xff) < 6)
            fault(c, "WRMSR of the CMCI LVT the LAPIC lacks", msr);
        if (reg == 0x300)
            icr_send(c, (uint32_t)(value >> 32), (uint32_t)value);
        else
            c->lapic[reg >> 4] = (uint32_t)value;
        return;
    }
    switch (msr) {
    case MSR_EFER: c->efer = value; break;
    case MSR_VM_HSAVE_PA: c->hsave_pa = value; break;
    case MSR_IA32_MCG_STATUS: c->mcg_status = value; break;
    case MSR_IA32_S_CET:
        if (!c->cpuid_cet)
            fault(c, "WRMSR of IA32_S_CET on a CPU without CET (#GP)", msr);
        c->s_cet = value;
        break;
    case MSR_IA32_APIC_BASE: fault(c, "crashpath must keep the APIC mode", value); break;
    default: fault(c, "WRMSR of an unexpected MSR", msr);
    }
}

void cp_hw_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t regs[4])
{
    struct sim_cpu *c = self();

    (void)subleaf;
    memset(regs, 0, 4 * sizeof(uint32_t));
    if (leaf == 1)
        regs[2] = (c->cpuid_x2apic ? 1u << 21 : 0) | (c->cpuid_cx16 ? 1u << 13 : 0);
}

static uint32_t mmio_reg(struct sim_cpu *c, uint64_t vaddr)
{
    /* where the host maps the page: apart (sim_xapic_virt) or in its map of physical memory */
    uint64_t base = sim_xapic_virt ? sim_xapic_virt : (c->apic_base & 0x000ffffffffff000ull) + cp_state.phys_map_offset;

    if (mode_of(c) != 1)
        fault(c, "xAPIC MMIO access outside xAPIC mode", vaddr);
    if (vaddr < base || vaddr >= base + 0x400 || (vaddr & 0xf))
        fault(c, "MMIO access outside the APIC page named by IA32_APIC_BASE", vaddr);
    return (uint32_t)(vaddr - base) & 0x3f0u;
}

uint32_t cp_hw_mmio_read32(uint64_t vaddr)
{
    struct sim_cpu *c = self();
    uint32_t reg = mmio_reg(c, vaddr), v;

    if (reg == 0x20)
        v = c->apic_id << 24;
    else if (reg == 0x300)
        v = c->lapic[0x30] | (c->icr_busy_reads > 0 ? (c->icr_busy_reads--, 1u << 12) : 0);
    else
        v = c->lapic[reg >> 4];
    log_op(c, OP_MMIO_R, reg, v);
    return v;
}

void cp_hw_mmio_write32(uint64_t vaddr, uint32_t value)
{
    struct sim_cpu *c = self();
    uint32_t reg = mmio_reg(c, vaddr);

    log_op(c, OP_MMIO_W, reg, value);
    if (reg == 0x310) {
        c->icr2 = value;
    } else if (reg == 0x300) {
        if (c->icr_busy_reads > 0)
            fault(c, "ICR written while the previous send is pending", value);
        c->lapic[0x30] = value;
        icr_send(c, c->icr2 >> 24, value);
    } else {
        c->lapic[reg >> 4] = value;
    }
}

uint64_t cp_hw_rdtsc(void)
{
    return sim_now_ns();
}

uint64_t cp_hw_read_cr0(void) { return self()->cr0; }
uint64_t cp_hw_read_cr2(void) { return self()->cr2; }
uint64_t cp_hw_read_cr3(void) { return self()->cr3; }
uint64_t cp_hw_read_cr4(void) { return self()->cr4; }

void cp_hw_write_cr4(uint64_t value)
{
    struct sim_cpu *c = self();

    log_op(c, OP_WRCR4, 0, value);
    if ((value & CR4_CET) && !(c->cr4 & CR4_CET) && !(c->cr0 & (1ull << 16)))
        fault(c, "CR4.CET set with CR0.WP clear (#GP)", value);
    c->cr4 = value;
}
uint16_t cp_hw_read_sel(unsigned int which) { return which < 6 ? self()->sel[which] : 0; }

/* Which CPU's IDT holds this gate, for the log. */
static struct sim_cpu *idt_owner(uint64_t gate)
{
    for (int i = 0; i < SIM_MAX_CPUS; i++) {
        uint64_t base = (uint64_t)(uintptr_t)sim_cpus[i].idt;

        if (gate >= base && gate < base + sizeof(sim_cpus[i].idt))
            return &sim_cpus[i];
    }
    return self();
}

void cp_hw_idt_read(uint64_t gate, uint64_t *lo, uint64_t *hi)
{
    const volatile uint64_t *g = (const volatile uint64_t *)(uintptr_t)gate;
    struct sim_cpu *o = idt_owner(gate);

    log_op(o, OP_IDT_R, (uint32_t)((gate - (uint64_t)(uintptr_t)o->idt) / 16), 0);
    *lo = g[0];
    *hi = g[1];
}

/* Tests may force the next CMPXCHG16B to find the gate changed. */
volatile int sim_cx16_fail_next;

void cp_hw_idt_write_lo(uint64_t gate, uint64_t lo)
{
    struct sim_cpu *o = idt_owner(gate);

    log_op(o, OP_IDT_W8, (uint32_t)((gate - (uint64_t)(uintptr_t)o->idt) / 16), lo);
    __atomic_store_n((uint64_t *)(uintptr_t)gate, lo, __ATOMIC_SEQ_CST);
}

int cp_hw_idt_cmpxchg16(uint64_t gate, uint64_t old_lo, uint64_t old_hi, uint64_t lo, uint64_t hi)
{
    struct sim_cpu *o = idt_owner(gate);
    unsigned __int128 *g = (unsigned __int128 *)(uintptr_t)gate;
    unsigned __int128 expected = ((unsigned __int128)old_hi << 64) | old_lo;
    unsigned __int128 desired = ((unsigned __int128)hi << 64) | lo;

    log_op(o, OP_IDT_CX16, (uint32_t)((gate - (uint64_t)(uintptr_t)o->idt) / 16), lo);
    if (sim_cx16_fail_next) {
        sim_cx16_fail_next = 0;
        return 0;
    }
    return __sync_bool_compare_and_swap(g, expected, desired);
}

void cp_hw_cli(void) { log_op(self(), OP_CLI, 0, 0); }
void cp_hw_pause(void) { sched_yield(); }
void cp_hw_mfence(void) { log_op(self(), OP_MFENCE, 0, 0); __atomic_thread_fence(__ATOMIC_SEQ_CST); }
void cp_hw_lfence(void) { log_op(self(), OP_LFENCE, 0, 0); }

void cp_hw_halt(void)
{
    struct sim_cpu *c = self();
    sigset_t none;

    log_op(c, OP_HALT, 0, 0);
    c->halted = 1;
    if (!sim_self) {            /* not a CPU thread: nothing can wake it */
        for (;;)
            pause();
    }
    sigemptyset(&none);
    sigsuspend(&none);          /* wakes on a (simulated) NMI, like HLT */
}

void cp_hw_enable_nmis(void)
{
    struct sim_cpu *c = self();

    log_op(c, OP_ENABLE_NMIS, 0, 0);
    /* An IRET at the same privilege with supervisor shadow stacks on pops
     * CS, LIP and SSP from the shadow stack: an IRET to self finds no such
     * frame there and raises #CP. */
    if ((c->cr4 & CR4_CET) && (c->s_cet & 1u))
        fault(c, "IRET to self with supervisor shadow stacks on (#CP)", c->s_cet);
    sim_iret();
}

/* A VMX instruction outside VMX operation: #UD. With ud_panics the host's
 * #UD handler panics into crashpath_crash on this CPU, the way a fault
 * inside the victim path comes back; a #UD that keeps coming back past any
 * sane bound is reported instead of overflowing the thread's stack. */
static void vmx_ud(struct sim_cpu *c, const char *what, uint64_t v)
{
    int n = __atomic_add_fetch(&c->vmx_ud_count, 1, __ATOMIC_SEQ_CST);

    if (!c->ud_panics) {
        fault(c, what, v);
        return;
    }
    if (n > 64) {
        fault(c, "the same #UD over and over: the victim path loops on a faulting step", v);
        for (;;)
            pause();
    }
    crashpath_crash("#UD", NULL);
    fault(c, "the host's #UD handler returned from crashpath_crash", v);
}

void cp_hw_vmclear(uint64_t vmcs_pa)
{
    struct sim_cpu *c = self();

    log_op(c, OP_VMCLEAR, 0, vmcs_pa);
    if (!c->in_vmx)
        vmx_ud(c, "VMCLEAR outside VMX operation (#UD)", vmcs_pa);
}

void cp_hw_vmxoff(void)
{
    struct sim_cpu *c = self();

    log_op(c, OP_VMXOFF, 0, 0);
    if (!c->in_vmx)
        vmx_ud(c, "VMXOFF outside VMX operation (#UD)", 0);
    c->in_vmx = 0;
}

int cp_hw_vmxoff_probe(void)
{
    struct sim_cpu *c = self();

    if (c->in_vmx) {
        log_op(c, OP_VMXOFF, 0, 0);
        c->in_vmx = 0;
        return 0;
    }
    /* #UD: through the gate the CPU's IDT holds now */
    if (sim_gate_handler(c, 6) != (uint64_t)(uintptr_t)vmxoff_ud_fixup)
        fault(c, "VMXOFF outside VMX operation (#UD) into the host's handler", sim_gate_handler(c, 6));
    return 1;
}

void cp_hw_stgi(void)
{
    struct sim_cpu *c = self();

    if (!(c->efer & EFER_SVME))
        fault(c, "STGI with EFER.SVME clear (#UD)", 0);
    log_op(c, OP_STGI, 0, 0);
    c->gif_clear = 0;
    deliver_pending(c);     /* a held NMI is taken at once, on this thread */
}

void sim_read_prstatus(int cpu, struct elf_prstatus *out)
{
    memcpy(out, sim_cpus[cpu].notes + 20, sizeof(*out));
}

void sim_read_cpu_note(int cpu, struct crashpath_cpu_note *out)
{
    memcpy(out, sim_cpus[cpu].notes + 380, sizeof(*out));
}

void sim_read_info(struct crashpath_info_note *out)
{
    memcpy(out, sim_info_note + 24, sizeof(*out));
}

struct sim_handoff sim_handoff;

void cp_hw_handoff(uint64_t cr3, uint64_t identity_entry)
{
    /* the stub writes CR4 without VMXE: a #GP in VMX operation */
    if (self()->in_vmx)
        fault(self(), "hand-off clears CR4.VMXE in VMX operation (#GP, triple fault)", self()->cr4);
    sim_handoff.cr3 = cr3;
    sim_handoff.identity_entry = identity_entry;
    __atomic_store_n(&sim_handoff.taken, 1, __ATOMIC_SEQ_CST);
    for (;;)
        cp_hw_halt();
}
