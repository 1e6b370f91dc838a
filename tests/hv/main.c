/* SPDX-License-Identifier: BSD-2-Clause */
/* main.c — the reference hypervisor: boots every CPU, embeds crashpath through its public
 * header only, loads the kdump image from the multiboot modules and runs the named scenario. */
#include "hv.h"

/* Crash notes: in the hypervisor image, which the kdump kernel never owns. */
static uint8_t cpu_notes[HV_MAX_CPUS][CRASHPATH_CPU_NOTES_SIZE] __attribute__((aligned(CRASHPATH_NOTES_ALIGN)));
static uint8_t info_note[CRASHPATH_INFO_NOTE_SIZE] __attribute__((aligned(CRASHPATH_NOTES_ALIGN)));
static struct crashpath_cpu cp_cpus[HV_MAX_CPUS];
uint8_t boot_stack[STACK_SIZE] __attribute__((aligned(16)));
extern uint8_t boot_stack_top[];
__asm__(".globl boot_stack_top\n.set boot_stack_top, boot_stack + 16384");

extern const uint8_t __image_phys[], __image_virt[], __image_end[];

/* Low memory the scenario marks before the crash; the kdump kernel reuses
 * it, so the verifier must find the marks through the backup. */

enum scenario { SC_HALT, SC_SPIN, SC_NMI };

#define NO_CPU 0xffffffffu

static struct {
    enum scenario scenario;
    const char *name;
    uint32_t crasher;
    uint32_t stuck;             /* a CPU that sits in its own NMI handler, NMIs blocked */
    uint32_t nostart;           /* a CPU in the MADT that is never started */
    uint32_t lapic_off;         /* a victim that software-disables its LAPIC before the crash */
    uint32_t to_x2apic;         /* a victim that switches to x2APIC after crashpath_init */
    uint32_t crasher2;          /* a second CPU that crashes at the same moment */
    uint64_t stuck_ms;          /* the stuck CPU leaves its NMI handler after this long (0: never) */
    uint32_t ist_cpu;           /* a victim that runs on its own NMI or #MC IST stack */
    char ist_kind;              /* 'n' (NMI IST) or 'm' (#MC IST) */
    int svm;                    /* every other victim runs an SVM guest, NMIs intercepted */
    uint32_t clgi_cpu;          /* a victim that holds GIF=0 for stretches (SVM) */
    int vmx;                    /* every other victim runs a VMX guest, with NMI exiting */
    uint32_t vmx_root_cpu;      /* a victim in VMX root operation with no VMCS, halting or spinning */
    int vmx_crasher;            /* the crasher is in VMX root operation, a VMCS current, when it crashes */
    int corrupt_jump;           /* the loaded kernel is corrupted and crashpath told to jump anyway */
    uint32_t wreck_cpu;         /* a victim spinning on a stack nothing can be pushed on */
    uint64_t wreck_rsp;
    volatile uint32_t at_line;  /* crashers ready at the shared start line */
    volatile uint32_t go;
    volatile uint32_t nmi_armed;
} run;

/* vmx=1, vmx_root_cpu=N, vmx_crasher=1: the VMX counterparts of svm=1 (tests/hv/vmx.c). */
static int uses_vmx(void)
{
    return run.vmx || run.vmx_root_cpu != NO_CPU || run.vmx_crasher;
}

static void parse_vmx_knobs(char *buf, size_t size)
{
    const char *missing;

    run.vmx = cmdline_get("vmx", buf, size) && buf[0] == '1';
    run.vmx_root_cpu = cmdline_get("vmx_root_cpu", buf, size) ? (uint32_t)parse_u64(buf, 0) : NO_CPU;
    run.vmx_crasher = cmdline_get("vmx_crasher", buf, size) && buf[0] == '1';
    if (run.vmx_root_cpu != NO_CPU && (run.vmx_root_cpu >= hv_nr_cpus || run.vmx_root_cpu == run.crasher))
        hv_fail("vmx_root_cpu %u: not a victim", run.vmx_root_cpu);
    if (run.vmx && (run.svm || run.clgi_cpu != NO_CPU))
        hv_fail("vmx=1 with svm=1 or clgi_cpu: one kind of guest per run");
    if (uses_vmx() && (missing = vmx_missing()) != NULL)
        hv_skip("vmx: %s", missing);
}

/* CPUID.1:ECX.x2APIC[bit 21]. */
static int cpu_has_x2apic(void)
{
    uint32_t a, b, c, d;

    cpuid(1, &a, &b, &c, &d);
    return (c >> 21) & 1u;
}

static void parse_scenario(void)
{
    char buf[32];
    const char *s = cmdline_get("scenario", buf, sizeof(buf));

    run.name = "halt";
    run.scenario = SC_HALT;
    if (s && s[0] == 's') {
        run.name = "spin";
        run.scenario = SC_SPIN;
    } else if (s && s[0] == 'n') {
        run.name = "nmi";
        run.scenario = SC_NMI;
    } else if (s && s[0] != 'h') {
        hv_fail("unknown scenario %s", s);
    }
    run.crasher = 0;
    if (cmdline_get("crash_cpu", buf, sizeof(buf)))
        run.crasher = buf[0] == 'l' ? hv_nr_cpus - 1 : (uint32_t)parse_u64(buf, 0);
    if (run.crasher >= hv_nr_cpus)
        hv_fail("crash_cpu %u: only %u CPUs", run.crasher, hv_nr_cpus);
    run.stuck = cmdline_get("stuck_cpu", buf, sizeof(buf)) ? (uint32_t)parse_u64(buf, 0) : NO_CPU;
    run.crasher2 = cmdline_get("crash_cpu2", buf, sizeof(buf)) ? (uint32_t)parse_u64(buf, 0) : NO_CPU;
    if (run.crasher2 != NO_CPU && (run.crasher2 >= hv_nr_cpus || run.crasher2 == run.crasher))
        hv_fail("crash_cpu2 %u: not a second CPU", run.crasher2);
    run.lapic_off = cmdline_get("lapic_off_cpu", buf, sizeof(buf)) ? (uint32_t)parse_u64(buf, 0) : NO_CPU;
    run.to_x2apic = cmdline_get("x2apic_cpu", buf, sizeof(buf)) ? (uint32_t)parse_u64(buf, 0) : NO_CPU;
    if (run.to_x2apic != NO_CPU && hv_x2apic)
        hv_fail("x2apic_cpu needs apic=xapic");
    if (run.to_x2apic != NO_CPU && !cpu_has_x2apic())
        hv_skip("x2apic_cpu: this CPU model has no x2APIC");
    if (run.stuck != NO_CPU && (run.stuck >= hv_nr_cpus || run.stuck == run.crasher))
        hv_fail("stuck_cpu %u: not a victim", run.stuck);
    run.stuck_ms = cmdline_get("stuck_ms", buf, sizeof(buf)) ? parse_u64(buf, 0) : 0;
    run.nostart = cmdline_get("nostart", buf, sizeof(buf)) ? (uint32_t)parse_u64(buf, 0) : NO_CPU;
    /* wreck_cpu=N wreck=guard|noncanonical: CPU N spins with RSP at the top
     * of the unmapped page 0 (a stack overflowed into its guard page) or at
     * a non-canonical address (CPL 0 on a guest's RSP) */
    run.wreck_cpu = cmdline_get("wreck_cpu", buf, sizeof(buf)) ? (uint32_t)parse_u64(buf, 0) : NO_CPU;
    run.wreck_rsp = cmdline_get("wreck", buf, sizeof(buf)) && buf[0] == 'n' ? 0x8000000000001000ull : 0x1000ull;
    if (run.wreck_cpu != NO_CPU && (run.wreck_cpu == run.crasher || run.wreck_cpu >= hv_nr_cpus))
        hv_fail("wreck_cpu %u: not a victim", run.wreck_cpu);
    run.ist_cpu = cmdline_get("ist_canary_cpu", buf, sizeof(buf)) ? (uint32_t)parse_u64(buf, 0) : NO_CPU;
    run.ist_kind = cmdline_get("ist_canary", buf, sizeof(buf)) && buf[0] == 'm' ? 'm' : 'n';
    if (run.ist_cpu != NO_CPU && (run.ist_cpu >= hv_nr_cpus || run.ist_cpu == run.crasher))
        hv_fail("ist_canary_cpu %u: not a victim", run.ist_cpu);
    run.corrupt_jump = cmdline_get("corrupt_kdump", buf, sizeof(buf)) &&
                       cmdline_get("kdump_if_corrupt", buf, sizeof(buf)) && buf[0] == 'j';
    run.svm = cmdline_get("svm", buf, sizeof(buf)) && buf[0] == '1';
    run.clgi_cpu = cmdline_get("clgi_cpu", buf, sizeof(buf)) ? (uint32_t)parse_u64(buf, 0) : NO_CPU;
    if (run.clgi_cpu != NO_CPU && (run.clgi_cpu >= hv_nr_cpus || run.clgi_cpu == run.crasher))
        hv_fail("clgi_cpu %u: not a victim", run.clgi_cpu);
    if ((run.svm || run.clgi_cpu != NO_CPU) && !svm_available())
        hv_skip("svm: this CPU model has no SVM");
    parse_vmx_knobs(buf, sizeof(buf));
}

/* A victim with nothing special to do: with svm=1 or vmx=1 it runs a guest. */
static int runs_guest(uint32_t i)
{
    return (run.svm || run.vmx) && i != run.crasher && i != run.crasher2 && i != run.stuck && i != run.ist_cpu &&
           i != run.clgi_cpu && i != run.vmx_root_cpu && hv_cpus[i].online;
}

/* ---- crashpath ---- */

/* crashpath's console hook: one line per call, no newline. It writes to the
 * serial port without the console lock, which a parked CPU may hold.
 * slow_console_ms=N makes each line take N ms more, as a slow remote
 * console would: the windows in which the runner injects machine checks. */
static uint64_t slow_console_ms;

static void crash_console(const char *msg, size_t len)
{
    console_write(msg, len);
    console_write("\n", 1);
    if (slow_console_ms)
        delay_us(slow_console_ms * 1000);
}

/* Scenario gp_in_hook_cpu=N: the host's stop hook takes a #GP on CPU N (a
 * non-canonical access), and the host's #GP handler panics as usual. */
static uint32_t gp_hook_cpu = 0xffffffffu;

static void faulting_stop_hook(uint32_t cpu_index, void *arg)
{
    (void)arg;
    if (cpu_index == gp_hook_cpu)
        (void)*(volatile uint64_t *)(uintptr_t)0x8000000000000000ull;
}

/* send=cluster|per|all (default cluster, crashpath's own default). */
static uint32_t send_mode_knob(void)
{
    char buf[16];

    if (!cmdline_get("send", buf, sizeof(buf)) || buf[0] == 'c')
        return CRASHPATH_SEND_CLUSTER;
    return buf[0] == 'a' ? CRASHPATH_SEND_ALL_BUT_SELF : CRASHPATH_SEND_PER_CPU;
}

/* How the shootdown goes out given the knobs: the cluster send needs every
 * CPU in x2APIC mode at init and crash (apic=x2apic; x2apic_cpu switches
 * one CPU only after init, from xAPIC), every CPU started (nostart leaves
 * one in xAPIC reset state) and every APIC ID below 2^20. */
static const char *send_expected(void)
{
    uint32_t mode = send_mode_knob(), all_eligible = 1;

    for (uint32_t i = 0; i < hv_nr_cpus; i++)
        all_eligible &= hv_cpus[i].apic_id < (1u << 20) && hv_cpus[i].online;
    if (mode == CRASHPATH_SEND_ALL_BUT_SELF)
        return "all";
    return mode == CRASHPATH_SEND_CLUSTER && hv_x2apic && all_eligible ? "cluster" : "per";
}

static void configure_crashpath(void)
{
    struct crashpath_config cfg = { 0 };
    char buf[16];
    int err;

    for (uint32_t i = 0; i < hv_nr_cpus; i++) {
        cp_cpus[i].index = i;
        cp_cpus[i].apic_id = hv_cpus[i].apic_id;
        cp_cpus[i].flags = hv_cpus[i].online ? CRASHPATH_CPU_PRESENT : 0;
        cp_cpus[i].idt_base = (uint64_t)(uintptr_t)hv_cpus[i].idt;
        cp_cpus[i].idt_limit = sizeof(hv_cpus[i].idt) - 1;
        cp_cpus[i].notes = cpu_notes[i];
        cp_cpus[i].notes_phys = hv_virt_to_phys(cpu_notes[i]);
        cp_cpus[i].tss_base = (uint64_t)(uintptr_t)hv_cpus[i].tss;
        cp_cpus[i].nmi_stack_top = (uint64_t)(uintptr_t)(hv_cpus[i].crashpath_nmi + IST_SIZE);
        /* vmx.c keeps it current; outside the VMX rows it says "not in VMX operation" */
        cp_cpus[i].vmx = vmx_state(i);
    }
    /* victim_nmi_ist=5: the TSS slot this host leaves to crashpath (it uses
     * IST1..3 itself), so victims take the shootdown NMI on their own stack */
    cfg.victim_nmi_ist = cmdline_get("victim_nmi_ist", buf, sizeof(buf)) ? (uint32_t)parse_u64(buf, 0) : 0;
    cfg.nr_cpus = hv_nr_cpus;
    cfg.cpus = cp_cpus;
    cfg.hv_cs = HV_CS;
    cfg.tsc_khz = platform.tsc_khz;
    cfg.timeout_ms = cmdline_get("timeout_ms", buf, sizeof(buf)) ? (uint32_t)parse_u64(buf, 0) : 0;
    cfg.phys_map_offset = 0;            /* low 4 GiB identity-mapped */
    cfg.send_mode = send_mode_knob();
    cfg.info_note = info_note;
    cfg.info_note_phys = hv_virt_to_phys(info_note);
    cfg.console = crash_console;
    slow_console_ms = cmdline_get("slow_console_ms", buf, sizeof(buf)) ? parse_u64(buf, 0) : 0;
    /* What a host stops on the crasher once the other CPUs are down. */
    cfg.quiesce = watchdog_stop;
    if (cmdline_get("gp_in_hook_cpu", buf, sizeof(buf))) {
        gp_hook_cpu = (uint32_t)parse_u64(buf, 0);
        cfg.stop_cpu = faulting_stop_hook;
    }
    err = crashpath_init(&cfg);
    if (err)
        hv_fail("crashpath_init: %s (%d)", crashpath_strerror(err), err);
    /* nmi_watchdog_ms=N: NMIs every N ms at the CPU that will crash, and so
     * at the kdump kernel unless the quiesce hook stops them */
    if (cmdline_get("nmi_watchdog_ms", buf, sizeof(buf)))
        watchdog_arm((uint32_t)parse_u64(buf, 0), hv_cpus[run.crasher].apic_id);
}

/* Scenario ist_canary_cpu=N: CPU N runs on its own NMI (or #MC) IST stack,
 * MARK_CANARY_QWORDS below the top, with canaries above RSP. With the IST gone
 * from the gate, the shootdown NMI (or a machine check) pushes its frame
 * below RSP; with the IST still there, it lands on the stack top and
 * destroys them. The verifier checks them in the dump. */

static uint64_t *ist_canaries(struct hv_cpu *c)
{
    uint8_t *stack = run.ist_kind == 'm' ? c->ist_mc : c->ist_nmi;

    return (uint64_t *)(void *)(stack + IST_SIZE) - MARK_CANARY_QWORDS;
}

__attribute__((noreturn)) static void spin_on_ist(struct hv_cpu *c)
{
    uint64_t *canary = ist_canaries(c);

    __asm__ volatile("cli");
    for (uint32_t i = 0; i < MARK_CANARY_QWORDS; i++)
        canary[i] = mark_canary(c->index, i);
    hv_spin_sentinels_on(mark_sentinel(c->index, 0), &c->role_ready, canary);
}

/* " cp.svm=" or " cp.vmx=" and the CPUs that run guests, comma-separated. */
static size_t put_guest_cpus(char *out, size_t size, const char *key)
{
    const char *sep = key;
    size_t n = 0;

    for (uint32_t i = 0; i < hv_nr_cpus; i++)
        if (runs_guest(i)) {
            n += hv_snprintf(out + n, size - n, "%s%u", sep, i);
            sep = ",";
        }
    return n;
}

/* VMX: the guests' CPUs left VMX through the VM exit, with the guest's RIP (in RBX, see
 * hv_vmx_offer_nmi) in its loop and the saved RIP at the offer; the CPUs in VMX root operation
 * at the crash left it through crashpath_nmi_crash (or, the crasher, its own path); and since VMX root
 * operation blocks INIT, the verifier wakes every parked CPU with INIT-SIPI-SIPI, but the BSP
 * (CPU 0, see setup_cpus), which an INIT sends to the reset vector instead. */
static size_t put_vmx_expectations(char *out, size_t size)
{
    size_t n = 0;

    if (run.vmx) {
        n += put_guest_cpus(out, size, " cp.vmx=");
        n += hv_snprintf(out + n, size - n, " cp.vmx_guest=0x%lx-0x%lx cp.vmx_exit=0x%lx-0x%lx",
                         (uint64_t)(uintptr_t)hv_vmx_guests, (uint64_t)(uintptr_t)hv_vmx_guests_end,
                         (uint64_t)(uintptr_t)hv_vmx_offer_nmi, (uint64_t)(uintptr_t)hv_vmx_offer_nmi_end);
    }
    if (run.vmx_root_cpu != NO_CPU && run.vmx_crasher)
        n += hv_snprintf(out + n, size - n, " cp.vmx_root=%u,%u", run.vmx_root_cpu, run.crasher);
    else if (run.vmx_root_cpu != NO_CPU || run.vmx_crasher)
        n += hv_snprintf(out + n, size - n, " cp.vmx_root=%u", run.vmx_crasher ? run.crasher : run.vmx_root_cpu);
    if (uses_vmx())
        n += hv_snprintf(out + n, size - n, " cp.initsipi=1 cp.bsp=0");
    return n;
}

/* The kdump command line: the module's own, then what the verifier checks,
 * then every cp.* option of ours passed through from the scenario row. */
static void build_kdump_cmdline(char *out, size_t size, const char *base)
{
    const char *p = platform.cmdline;
    size_t n = hv_snprintf(out, size, "%s cp.cpus=%u cp.crasher=%u cp.reason=scenario-%s cp.lowmem=0x%lx "
                                      "cp.paint=2048 cp.spin=0x%lx-0x%lx",
                           base, hv_nr_cpus, run.crasher, run.name, (uint64_t)MARK_LOWMEM_ADDR,
                           (uint64_t)(uintptr_t)hv_spin_loop, (uint64_t)(uintptr_t)hv_spin_loop_end);

    n += hv_snprintf(out + n, size - n, " cp.lib=0x%lx-0x%lx", (uint64_t)(uintptr_t)__crashpath_text,
                     (uint64_t)(uintptr_t)__crashpath_text_end);
    n += hv_snprintf(out + n, size - n, " cp.send=%s", send_expected());
    if (run.scenario != SC_HALT)
        n += hv_snprintf(out + n, size - n, " cp.sentinel=1");
    /* What the dump must show follows from what this run does, so each
     * expectation is derived here from its knob, never written twice. */
    if (run.stuck != NO_CPU)     /* stuck in its NMI handler: given up on, or answering late */
        n += hv_snprintf(out + n, size - n, " cp.%s=%u", run.stuck_ms ? "late" : "timedout", run.stuck);
    if (run.nostart != NO_CPU)
        n += hv_snprintf(out + n, size - n, " cp.absent=%u", run.nostart);
    if (run.crasher2 != NO_CPU)
        n += hv_snprintf(out + n, size - n, " cp.crasher2=%u", run.crasher2);
    if (run.to_x2apic != NO_CPU)
        n += hv_snprintf(out + n, size - n, " cp.x2apic_cpu=%u", run.to_x2apic);
    if (gp_hook_cpu != NO_CPU)
        n += hv_snprintf(out + n, size - n, " cp.faulted=%u", gp_hook_cpu);
    if (hv_cet)                 /* no victim may fault into crashpath_crash (a #CP) */
        n += hv_snprintf(out + n, size - n, " cp.cet=1");
    if (run.corrupt_jump)       /* entered anyway: the note must say the kernel was corrupt */
        n += hv_snprintf(out + n, size - n, " cp.corrupt=1");
    if (run.wreck_cpu != NO_CPU)
        n += hv_snprintf(out + n, size - n, " cp.wrecked=%u:0x%lx", run.wreck_cpu, run.wreck_rsp);
    if (run.ist_cpu != NO_CPU)
        n += hv_snprintf(out + n, size - n, " cp.canary=%u:0x%lx", run.ist_cpu,
                         (uint64_t)(uintptr_t)ist_canaries(&hv_cpus[run.ist_cpu]));
    if (run.clgi_cpu != NO_CPU)
        n += hv_snprintf(out + n, size - n, " cp.gif=%u:0x%lx-0x%lx", run.clgi_cpu,
                         (uint64_t)(uintptr_t)hv_gif_open, (uint64_t)(uintptr_t)hv_gif_open_end);
    if (run.svm)
        n += put_guest_cpus(out + n, size - n, " cp.svm=");
    n += put_vmx_expectations(out + n, size - n);
    while (*p && n + 1 < size) {
        const char *w = p;

        while (*p && *p != ' ')
            p++;
        if (w[0] == 'c' && w[1] == 'p' && w[2] == '.') {
            out[n++] = ' ';
            while (w < p && n + 1 < size)
                out[n++] = *w++;
        }
        while (*p == ' ')
            p++;
    }
    out[n] = 0;
}

static void load_kdump(void)
{
    static char cmdline[1024];
    struct crashpath_kdump kd = { 0 };
    char buf[64];
    const char *s;
    int err;

    if (!platform.nr_modules)
        hv_fail("no kdump kernel module");
    s = cmdline_get("crashkernel", buf, sizeof(buf));
    kd.region_size = s ? parse_u64(s, &s) : 192ull << 20;
    kd.region_phys = s && *s == '@' ? parse_u64(s + 1, 0) : 256ull << 20;
    kd.region = (void *)(uintptr_t)kd.region_phys;          /* identity-mapped */
    kd.kernel = (const void *)(uintptr_t)platform.modules[0].start;
    kd.kernel_size = platform.modules[0].size;
    if (platform.nr_modules > 1) {
        kd.initrd = (const void *)(uintptr_t)platform.modules[1].start;
        kd.initrd_size = platform.modules[1].size;
    }
    build_kdump_cmdline(cmdline, sizeof(cmdline), platform.modules[0].args);
    kd.cmdline = cmdline;
    kd.memmap = platform.memmap;
    kd.nr_memmap = platform.nr_memmap;
    kd.image_phys = (uint64_t)(uintptr_t)__image_phys;
    kd.image_virt = (uint64_t)(uintptr_t)__image_virt;
    kd.image_size = (uint64_t)(__image_end - __image_virt);
    kd.acpi_rsdp = platform.rsdp;
    if (cmdline_get("kdump_if_corrupt", buf, sizeof(buf)) && buf[0] == 'j')
        kd.flags |= CRASHPATH_KDUMP_JUMP_IF_CORRUPT;
    err = crashpath_load_kdump(&kd);
    if (err)
        hv_fail("crashpath_load_kdump: %s (%d)", crashpath_strerror(err), err);
    /* Scenario: a host bug scribbles on the loaded kernel after load. Its
     * first byte is startup_32, which the 64-bit entry never runs. */
    if (cmdline_get("corrupt_kdump", buf, sizeof(buf))) {
        struct crashpath_kdump_info where;

        if (crashpath_kdump_info(&where))
            hv_fail("crashpath_kdump_info");
        *(volatile uint8_t *)(uintptr_t)where.kernel ^= 0xff;
        hv_printf("hv: corrupted the loaded kdump kernel at 0x%lx\n", where.kernel);
    }
    hv_printf("hv: kdump image loaded: %lu bytes, region %luM@%luM, cmdline \"%s\"\n", kd.kernel_size,
              kd.region_size >> 20, kd.region_phys >> 20, cmdline);
}

/* ---- scenarios ---- */

static void mark_low_memory(void)
{
    volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)MARK_LOWMEM_ADDR;

    for (uint32_t i = 0; i < MARK_LOWMEM_SIZE; i++)
        p[i] = mark_lowmem_byte(i);
}

static void wait_for_victims(void)
{
    for (uint32_t i = 0; i < hv_nr_cpus; i++)
        if (i != run.crasher && i != run.crasher2 && hv_cpus[i].online)
            while (!hv_cpus[i].role_ready)
                cpu_relax();
}

__attribute__((noreturn)) static void crash_now(void)
{
    struct hv_cpu *c = this_cpu();
    char reason[32];
    int err;

    wait_for_victims();
    /* crash_delay_ms=N: let injected events (an NMI storm) hit the running
     * machine for a while before the crash. */
    if (cmdline_get("crash_delay_ms", reason, sizeof(reason)))
        delay_us(parse_u64(reason, 0) * 1000);
    hv_printf("hv: CPU %u crashing (scenario %s)\n", c->index, run.name);
    if (run.scenario == SC_NMI) {
        /* Panic from NMI context, as an NMI watchdog would: NMIs are then
         * blocked on the crasher, and only crashpath_enable_nmis unblocks them. */
        run.nmi_armed = 1;
        lapic_send_ipi(c->apic_id, 0x4400);
        for (;;)
            cpu_relax();
    }
    hv_snprintf(reason, sizeof(reason), "scenario-%s", run.name);
    if (run.crasher2 != NO_CPU) {
        /* Two crashers released by one shared flag: both at the line, then go. */
        __atomic_add_fetch(&run.at_line, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&run.at_line, __ATOMIC_ACQUIRE) < 2)
            ;
    }
    err = crashpath_crash(reason, NULL);
    hv_fail("crashpath_crash returned %s (%d)", crashpath_strerror(err), err);
}

void hv_wakeup(void)
{
    lapic_eoi();
}

/* Wait for run.go with STI; HLT: a vCPU that spins here would starve the
 * host's cores while hundreds of others boot. An IPI that arrives before
 * the HLT stays pending and ends it at once (STI's one-instruction shadow). */
static void wait_for_go(void)
{
    while (!__atomic_load_n(&run.go, __ATOMIC_ACQUIRE))
        __asm__ volatile("sti; hlt; cli" : : : "memory");
}

__attribute__((noreturn)) static void play_role(struct hv_cpu *c)
{
    if (c->index)
        wait_for_go();
    if (c->index == run.crasher && run.vmx_crasher)
        vmx_enter_root(c, 1);
    if (c->index == run.crasher || c->index == run.crasher2)
        crash_now();
    if (c->index == run.lapic_off) {
        /* Software-disabled: the ICR and the ID still work (SDM 10.4.7.2),
         * and an NMI IPI is still accepted. */
        lapic_write(0xf0, lapic_read(0xf0) & ~0x100u);
    }
    if (c->index == run.to_x2apic) {
        /* Behind crashpath's back: it must read the mode again at crash time. */
        wrmsr(0x1b, rdmsr(0x1b) | (1ull << 10));
    }
    if (c->index == run.ist_cpu)
        spin_on_ist(c);
    if (c->index == run.wreck_cpu)
        hv_spin_wrecked(mark_sentinel(c->index, 0), &c->role_ready, run.wreck_rsp);
    if (c->index == run.clgi_cpu) {
        svm_enable(c);
        hv_clgi_loop(&c->role_ready, platform.tsc_khz * 50);     /* GIF=0 for 50 ms at a time */
    }
    if (runs_guest(c->index) && run.svm)
        svm_run_guest(c);
    if (runs_guest(c->index))
        vmx_run_guest(c, run.scenario == SC_HALT);
    if (c->index == run.vmx_root_cpu)
        vmx_enter_root(c, 0);       /* then halts or spins below, in VMX root operation */
    if (c->index == run.stuck) {
        /* Into our own NMI handler, which never leaves (see hv_exception),
         * or with stuck_ms only after that long: the shootdown NMI stays
         * latched behind it. */
        lapic_send_ipi(c->apic_id, 0x4400);
        for (;;)
            cpu_relax();
    }
    if (run.scenario == SC_HALT)
        hv_halt_forever(&c->role_ready);
    hv_spin_sentinels(mark_sentinel(c->index, 0), &c->role_ready);
}

void hv_exception(struct crashpath_regs *frame, uint64_t vector)
{
    char reason[48];
    int err;

    if (vector == 2) {
        if (this_cpu()->index == run.stuck) {
            /* A victim stuck in its own NMI handler: it cannot take the
             * shootdown NMI, and the crasher must give up on it in time. */
            this_cpu()->role_ready = 1;
            if (run.stuck_ms) {
                delay_us(run.stuck_ms * 1000);
                return;         /* IRET: the latched shootdown NMI comes in now */
            }
            for (;;)
                cpu_relax();
        }
        if (run.nmi_armed && this_cpu()->index == run.crasher) {
            run.nmi_armed = 0;
            err = crashpath_crash("scenario-nmi", frame);
            hv_fail("crashpath_crash from NMI returned %s (%d)", crashpath_strerror(err), err);
        }
        return;         /* an NMI nobody asked for: ignore, as a host handler would */
    }
    hv_snprintf(reason, sizeof(reason), "exception %lu at 0x%lx", vector, frame->rip);
    if (vector == 18) {
        /* A machine check is fatal here, as in most hosts: panic. No console
         * lock: during a crash this CPU may be parked holding it. */
        char line[96];
        size_t n = hv_snprintf(line, sizeof(line), "hv: CPU %u: machine check at 0x%lx\n", this_cpu()->index,
                               frame->rip);

        console_write(line, n);
        err = crashpath_crash("machine check", frame);
        hv_fail("crashpath_crash returned %s (%d)", crashpath_strerror(err), err);
    }
    hv_printf("hv: CPU %u: %s (error 0x%lx)\n", this_cpu()->index, reason, frame->orig_rax);
    err = crashpath_crash(reason, frame);
    hv_fail("crashpath_crash returned %s (%d)", crashpath_strerror(err), err);
}

void hv_ap_main(struct hv_cpu *c)
{
    cpu_init_this(c);
    cet_switch_on(c);           /* cet=1: here, in the outermost frame, which never returns (hv.h) */
    __atomic_store_n(&c->online, 1, __ATOMIC_RELEASE);
    play_role(c);
}

static void setup_cpus(void)
{
    uint32_t bsp_id = hv_cpu_apic_id(), n = 1, unlisted;
    char buf[16];

    if (cmdline_get("apic", buf, sizeof(buf)) && buf[0] == 'x' && buf[1] == '2') {
        if (!cpu_has_x2apic())      /* Bochs's AMD models have none */
            hv_skip("apic=x2apic: this CPU model has no x2APIC");
        hv_x2apic = 1;
    }
    /* The BSP is CPU 0; the others follow in MADT order. unlisted=N: the
     * CPU that would be N is neither started nor described to crashpath, as
     * a host booted with fewer CPUs than the machine has leaves one: its
     * LAPIC stays in its reset state, xAPIC. */
    unlisted = cmdline_get("unlisted", buf, sizeof(buf)) ? (uint32_t)parse_u64(buf, 0) : NO_CPU;
    hv_cpus[0].apic_id = bsp_id;
    for (uint32_t i = 0, pos = 1; i < platform.nr_madt; i++)
        if (platform.madt_ids[i] != bsp_id && pos++ != unlisted)
            hv_cpus[n++].apic_id = platform.madt_ids[i];
    /* xAPIC destinations are 8 bits and 0xff is the broadcast: a CPU with a
     * larger ID can only be started and reached in x2APIC mode. */
    for (uint32_t i = 0; i < n && !hv_x2apic; i++)
        if (hv_cpus[i].apic_id >= 0xff)
            hv_fail("CPU %u has APIC ID %u: needs apic=x2apic", i, hv_cpus[i].apic_id);
    hv_nr_cpus = n;
    for (uint32_t i = 0; i < n; i++)
        hv_cpus[i].index = i;
    cpu_init_this(&hv_cpus[0]);
    hv_cpus[0].online = 1;
    /* nostart=N: a CPU the MADT lists but that stays in wait-for-SIPI */
    smp_start_aps(cmdline_get("nostart", buf, sizeof(buf)) ? (int)parse_u64(buf, 0) : 0,
                  cmdline_get("smp", buf, sizeof(buf)) && buf[0] == 'p');   /* smp=parallel */
}

void hv_main(uint32_t mb_info_phys)
{
    char buf[8];

    console_init();
    platform_init(mb_info_phys);
    unmap_null_page();
    hv_printf("hv: reference hypervisor, command line \"%s\"\n", platform.cmdline);
    /* cet=1: supervisor shadow stacks and IBT on every CPU (tests/hv/cet.c) */
    if (cmdline_get("cet", buf, sizeof(buf)) && buf[0] == '1')
        cet_prepare();
    setup_cpus();
    cet_switch_on(&hv_cpus[0]);  /* the APs have switched as they came up */
    host_features_report(&hv_cpus[0]);
    /* la57=1: boot.asm chose 5-level paging if CPUID has it */
    if (cmdline_get("la57", buf, sizeof(buf)) && buf[0] == '1' && !(hv_cpus[0].cr4 & (1ull << 12)))
        hv_skip("la57: this CPU model has no 5-level paging");
    parse_scenario();
    hv_printf("hv: %u CPUs up, %s mode, TSC %lu kHz\n", hv_nr_cpus, hv_x2apic ? "x2APIC" : "xAPIC",
              platform.tsc_khz);
    configure_crashpath();
    load_kdump();
    mark_low_memory();
    __atomic_store_n(&run.go, 1, __ATOMIC_RELEASE);
    if (hv_nr_cpus > 1)
        lapic_send_ipi(0, 0xc0000 | HV_WAKEUP_VECTOR);   /* fixed, all excluding self */
    play_role(&hv_cpus[0]);
}
