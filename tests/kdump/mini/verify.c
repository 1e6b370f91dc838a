/* SPDX-License-Identifier: BSD-2-Clause */
/* verify.c — the mini verifier: a tiny kdump kernel entered through crashpath's hand-off like
 * Linux. It checks NMIs are unblocked, then checks the dump in old memory, with cp.initsipi=1
 * wakes every parked AP by INIT-SIPI (initsipi.c), prints one verdict line and exits QEMU
 * through isa-debug-exit. */
#include <stdint.h>
#include "../check.h"
#include "mini.h"

/* Everything resolves inside one image: no GOT, RIP-relative only. */
#pragma GCC visibility push(hidden)

#define COM1 0x3f8
#define DEBUG_EXIT 0xf4
#define VERDICT_PASS 0x10       /* QEMU exits with 0x21 */
#define VERDICT_FAIL 0x11       /* QEMU exits with 0x23 */
#define BP_CMD_LINE_PTR 0x228
#define BP_EXT_CMD_LINE_PTR 0x0c8

extern volatile uint64_t nmi_count;
extern const char nmi_entry[], fault_entry[];

static void putc_serial(char c)
{
    for (int i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++)
        __asm__ volatile("pause");
    outb(COM1, (uint8_t)c);
}

void say(const char *s)
{
    const char *prefix = "mini: ";

    while (*prefix)
        putc_serial(*prefix++);
    while (*s)
        putc_serial(*s++);
    putc_serial('\r');
    putc_serial('\n');
}

__attribute__((noreturn)) static void finish(int pass, const char *what)
{
    const char *p = pass ? "VERDICT: PASS " : "VERDICT: FAIL ";

    while (*p)
        putc_serial(*p++);
    while (*what)
        putc_serial(*what++);
    putc_serial('\r');
    putc_serial('\n');
    __asm__ volatile("outl %0, %1" : : "a"((uint32_t)(pass ? VERDICT_PASS : VERDICT_FAIL)), "Nd"((uint16_t)DEBUG_EXIT));
    for (;;)
        __asm__ volatile("cli; hlt");
}

void verify_fault(uint64_t rip)
{
    (void)rip;
    finish(0, "unexpected exception in the verifier");
}

/* ---- NMIs must be unblocked on entry ---- */

static uint8_t idt[256 * 16] __attribute__((aligned(16)));

static void set_gate(unsigned int vec, const void *handler, uint16_t cs)
{
    uint64_t h = (uint64_t)(uintptr_t)handler;
    uint64_t lo = (h & 0xffff) | (uint64_t)cs << 16 | 0x8eull << 40 | (h & 0xffff0000ull) << 32;
    uint64_t hi = h >> 32;

    __builtin_memcpy(idt + vec * 16, &lo, 8);
    __builtin_memcpy(idt + vec * 16 + 8, &hi, 8);
}

static void install_idt(void)
{
    struct __attribute__((packed)) { uint16_t limit; uint64_t base; } idtr;
    uint16_t cs;

    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    for (unsigned int v = 0; v < 32; v++)
        set_gate(v, v == 2 ? (const void *)nmi_entry : (const void *)fault_entry, cs);
    idtr.limit = sizeof(idt) - 1;
    idtr.base = (uint64_t)(uintptr_t)idt;
    __asm__ volatile("lidt %0" : : "m"(idtr));
}

/* Send ourselves an NMI through the LAPIC (re-enabled: crashpath left it
 * software-disabled), in whichever mode the hand-off left it, and see it
 * arrive. Had NMIs still been blocked, it would wait for an IRET that this
 * kernel has not executed yet. */
static int nmi_arrives(void)
{
    uint64_t base = rdmsr(0x1b);

    /* First, a while with NMIs open and nothing sent: an NMI that arrives
     * now came from outside (LINT1 left live by the crashed hypervisor while
     * the runner injects a storm), and would also have hit an early Linux. */
    for (uint32_t i = 0; i < 3000000; i++)
        __asm__ volatile("pause");
    if (nmi_count)
        return -1;
    int x2 = (base & (3u << 10)) == (3u << 10);
    volatile uint32_t *mmio = (volatile uint32_t *)(uintptr_t)(base & 0xffffff000ull);
    uint32_t id;

    if (x2) {
        wrmsr(0x80f, 0x1ff);
        id = (uint32_t)rdmsr(0x802);
        wrmsr(0x830, (uint64_t)id << 32 | 0x4400);
    } else {
        mmio[0xf0 / 4] = 0x1ff;
        id = mmio[0x20 / 4] >> 24;
        while (mmio[0x300 / 4] & (1u << 12))
            ;
        mmio[0x310 / 4] = id << 24;
        mmio[0x300 / 4] = 0x4400;
    }
    for (uint32_t i = 0; i < 10000000 && !nmi_count; i++)
        __asm__ volatile("pause");
    return nmi_count == 1;
}

/* ---- the dump in old memory ---- */

static int read_phys(void *ctx, uint64_t off, void *dst, uint64_t len)
{
    (void)ctx;
    /* crashpath's hand-off tables identity-map the first 4 GiB */
    if (off + len > (4ull << 30) || off + len < off)
        return -1;
    for (uint64_t i = 0; i < len; i++)
        ((uint8_t *)dst)[i] = *(volatile const uint8_t *)(uintptr_t)(off + i);
    return 0;
}

static const char *cmdline_of(const uint8_t *bp)
{
    uint64_t p = 0;

    __builtin_memcpy(&p, bp + BP_CMD_LINE_PTR, 4);
    p |= (uint64_t)bp[BP_EXT_CMD_LINE_PTR] | (uint64_t)bp[BP_EXT_CMD_LINE_PTR + 1] << 8 |
         (uint64_t)bp[BP_EXT_CMD_LINE_PTR + 2] << 16 | (uint64_t)bp[BP_EXT_CMD_LINE_PTR + 3] << 24;
    return (const char *)(uintptr_t)p;
}

/* CPUID.1:EDX.MCA[bit 14]: IA32_MCG_STATUS exists. */
static int has_mca(void)
{
    uint32_t a = 1, b, c = 0, d;

    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    return (d >> 14) & 1u;
}

static struct check_expect expect;
static struct check_result result;
extern uint64_t entry_rflags, entry_dr7;    /* entry.asm: as the hand-off left them */

void verify_main(const uint8_t *boot_params)
{
    struct check_reader reader = { read_phys, 0, 0, 1 };
    static char silent_cpu[112];
    uint32_t silent = 0;
    int nmi_ok;

    install_idt();
    nmi_ok = nmi_arrives();       /* first, before anything could IRET */
    say("entered through the 64-bit boot protocol");
    say(cmdline_of(boot_params));
    /* The reference hypervisor arms a DR7 breakpoint on every CPU, and the
     * crasher reaches the jump with arithmetic flags set. */
    if (entry_rflags != 0x2)
        finish(0, "RFLAGS on entry to the kdump kernel is not 0x2");
    if (entry_dr7 & 0xff)
        finish(0, "a debug breakpoint (DR7) was left armed into the kdump kernel");
    if (nmi_ok < 0)
        finish(0, "an external NMI reached the kdump kernel (LINT1 left unmasked, or a device still raising NMIs)");
    say(nmi_ok ? "NMI to self arrived: NMIs were unblocked on entry" : "FAIL NMI to self did not arrive");
    check_parse_cmdline(cmdline_of(boot_params), &expect);
    if (!expect.elfcorehdr)
        finish(0, "no elfcorehdr= on the command line");
    /* Linux reuses low memory at once: clobber the real copy of the mark,
     * so only the backup can still hold it. */
    if (expect.lowmem)
        for (uint32_t i = 0; i < 4096; i++)
            *(volatile uint8_t *)(uintptr_t)(expect.lowmem + i) = 0;
    /* IA32_MCG_STATUS.MCIP: set by a machine check, cleared only by its
     * handler (SDM vol. 3, 15.3.1.2). Left set, the kdump kernel's first
     * machine check would shut this CPU down: crashpath_mce_crash must have cleared
     * it (the note's machine_checks says one came). */
    if (has_mca() && (rdmsr(0x17a) & 4))
        finish(0, "MCG_STATUS.MCIP set on entry: the next machine check would shut this CPU down");
    reader.header = expect.elfcorehdr;
    check_dump(&reader, &expect, &result, say);
    check_report_bench(&result, expect.cpus, say);
    /* cp.initsipi=1: every parked CPU must start again, so none was left where INIT is blocked. */
    if (expect.initsipi)
        silent = wake_parked_cpus(&expect, result.bench.info.tsc_khz, silent_cpu, sizeof(silent_cpu));
    if (!nmi_ok)
        finish(0, "NMIs blocked on entry to the kdump kernel");
    if (result.failures)
        finish(0, result.first);
    if (silent)
        finish(0, silent_cpu);
    finish(1, expect.initsipi ? "dump verified, every parked AP answered INIT-SIPI" : "dump verified");
}
