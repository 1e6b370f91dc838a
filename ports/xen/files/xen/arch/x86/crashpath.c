/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * crashpath.c - Xen's crash path handed to crashpath (ports/xen in the crashpath tree): the
 * one file of glue between Xen 4.17 and crashpath's public API (include/crashpath.h).
 *
 * Load time (boot, CPU hotplug) prepares, crash time only acts:
 *   boot     crashpath_xen_grab_modules() takes the kdump kernel and initrd multiboot modules
 *            before dom0 is built; an initcall, once every boot CPU is up, describes the CPUs
 *            to crashpath (crashpath_init) and places the kdump image in Xen's crash area
 *            (crashpath_load_kdump), which crashpath then owns: dom0 cannot load into it.
 *   hotplug  the same two calls again whenever the set of online CPUs changes.
 *   crash    kexec_crash() (panic, the watchdog, a dom0 crash, the kexec hypercall, the 'C'
 *            key) calls crashpath_xen_crash(); VMX NMI exits call crashpath_nmi_vmexit().
 */
#include <xen/types.h>
#define CRASHPATH_HOST_TYPES    /* Xen builds with -nostdinc: xen/types.h has the types */
#include <crashpath.h>
#include <xen/crashpath.h>

#include <xen/console.h>
#include <xen/cpu.h>
#include <xen/init.h>
#include <xen/iommu.h>
#include <xen/kexec.h>
#include <xen/kernel.h>
#include <xen/keyhandler.h>
#include <xen/lib.h>
#include <xen/multiboot.h>
#include <xen/param.h>
#include <xen/spinlock.h>
#include <xen/string.h>
#include <xen/vmap.h>
#include <xen/watchdog.h>
#include <asm/apic.h>
#include <asm/apicdef.h>
#include <asm/desc.h>
#include <asm/e820.h>
#include <asm/fixmap.h>
#include <asm/hpet.h>
#include <asm/io_apic.h>
#include <asm/setup.h>
#include <asm/time.h>

/*
 * crashpath-test-keys: the 'P' debug key calls panic() on the CPU that takes it, so that a
 * test can crash Xen through its real panic path (the 'C' key enters kexec_crash() directly).
 */
static bool __initdata opt_test_keys;
boolean_param("crashpath-test-keys", opt_test_keys);

/* Each CPU's note buffer and the crash-info note: in Xen's image, never in the crash area the
 * kdump kernel is given as RAM. */
static uint8_t cpu_notes[NR_CPUS][CRASHPATH_CPU_NOTES_SIZE] __aligned(CRASHPATH_NOTES_ALIGN);
static uint8_t info_note[CRASHPATH_INFO_NOTE_SIZE] __aligned(CRASHPATH_NOTES_ALIGN);
static struct crashpath_cpu cp_cpus[NR_CPUS];

/* The kdump image as the multiboot modules gave it, kept in Xen's heap: the modules are freed
 * with dom0's boot images, and every crashpath_init (CPU hotplug) needs the image loaded anew. */
static struct {
    void *kernel, *initrd;
    size_t kernel_size, initrd_size;
    char cmdline[1024];
    bool owned;          /* crashpath holds an image: kexec_crash() and the crash area are its */
} kdump;

/* The modules crashpath_xen_grab_modules() claimed, until the initcall copies them. */
static module_t __initdata kernel_mod, initrd_mod;
static bool __initdata have_kernel_mod, have_initrd_mod;

static struct crashpath_mem_range memmap[CRASHPATH_MAX_MEMMAP];
static unsigned int nr_memmap;

/* ---- crash time: the hooks crashpath calls, and the entry from kexec_crash() ---- */

/*
 * Console lines from the crashing CPU. A parked victim may hold the console lock, so it is
 * broken once, as Xen's own crash path does (console_force_unlock() in nmi_shootdown_cpus),
 * before the first line.
 */
static bool console_unlocked;

static void cf_check crash_console(const char *msg, size_t len)
{
    if ( !console_unlocked )
    {
        console_force_unlock();
        console_unlocked = true;
    }
    printk("%.*s\n", (int)len, msg);
}

/*
 * On the crashing CPU once the others are parked: what Xen's own crash path stops there
 * (machine_crash_shutdown, nmi_shootdown_cpus) and crashpath does not. crashpath itself masks
 * every LVT, including the performance counter that drives the NMI watchdog, and leaves
 * VMX/SVM. disable_IO_APIC() and iommu_crash_shutdown() take Xen's own locks, as they do on
 * Xen's own crash path: a CPU parked holding one of them would stop the crash here, as it
 * would stop Xen's.
 */
static void cf_check crash_quiesce(void *arg)
{
    disable_lapic_nmi_watchdog();
    /* DMA and interrupt remapping off (a no-op unless iommu=crash-disable, as for Xen) */
    iommu_crash_shutdown();
    /* every IO-APIC pin masked, the 8259 virtual wire back for the kdump kernel */
    disable_IO_APIC();
    /* the HPET back in its boot configuration (Xen may run it in legacy replacement mode) */
    hpet_disable();
}

static const char *reason_text(enum crash_reason reason)
{
    /* one word each: the kdump side's checker reads it from a command line (cp.reason=) */
    switch ( reason )
    {
    case CRASHREASON_PANIC:    return "xen-panic";
    case CRASHREASON_HWDOM:    return "xen-hwdom-crashed";
    case CRASHREASON_WATCHDOG: return "xen-watchdog";
    case CRASHREASON_KEXECCMD: return "xen-kexec-hypercall";
    case CRASHREASON_DEBUGKEY: return "xen-debug-key";
    }
    return "xen-crash";
}

/*
 * From kexec_crash(), on whichever CPU crashes, before Xen's own path. Returns only when
 * crashpath holds no image, or refused (this CPU unknown to it, or a crash inside the crash
 * path itself): Xen's own path then goes on, and with no image of its own returns too.
 */
void crashpath_xen_crash(enum crash_reason reason)
{
    int err;

    if ( !kdump.owned )
        return;
    /* As kexec_common_shutdown(): no watchdog from here, printk synchronous, no spinlock
     * debugging (a parked CPU's lock is never released). None of them takes a lock. */
    watchdog_disable();
    console_start_sync();
    spin_debug_disable();
    /* NULL: this CPU's registers are taken here, so its note unwinds through kexec_crash() */
    err = crashpath_crash(reason_text(reason), NULL);
    printk("crashpath: crash refused: %s (%d)\n", crashpath_strerror(err), err);
}

bool crashpath_xen_owns_crash_area(void)
{
    return kdump.owned;
}

/* ---- load time ---- */

/*
 * The CPUs as Xen has them now: every CPU the firmware listed (cpu_present_map) with its APIC
 * ID, the online ones present to crashpath with their IDT (Xen gives each CPU its own page, idt_tables[cpu], writable in the direct
 * map). `leaving` is a CPU going down (CPU_DOWN_PREPARE): no longer present, so that the
 * shootdown never waits for it and its IDT page can be freed.
 */
static int configure(unsigned int leaving)
{
    struct crashpath_config cfg = { 0 };
    unsigned int cpu, n = 0;

    for_each_present_cpu ( cpu )
    {
        struct crashpath_cpu *c = &cp_cpus[n++];

        memset(c, 0, sizeof(*c));
        c->index = cpu;
        c->apic_id = x86_cpu_to_apicid[cpu];
        if ( cpu_online(cpu) && cpu != leaving && idt_tables[cpu] )
        {
            c->flags = CRASHPATH_CPU_PRESENT;
            c->idt_base = (unsigned long)idt_tables[cpu];
            c->idt_limit = IDT_ENTRIES * sizeof(idt_entry_t) - 1;
        }
        c->notes = cpu_notes[cpu];
        c->notes_phys = __pa(cpu_notes[cpu]);
        /* VMX: no record shared yet (Xen keeps vmxon per CPU and its VMCSs on a list), so a
         * VMX victim's note says CRASHPATH_CPUF_VMX_UNKNOWN and it is left in VMX. */
        c->vmx = NULL;
    }
    cfg.nr_cpus = n;
    cfg.cpus = cp_cpus;
    cfg.hv_cs = __HYPERVISOR_CS;
    cfg.tsc_khz = cpu_khz;
    /* Xen maps RAM at DIRECTMAP_VIRT_START + address (while PDX compression leaves no hole;
     * the core header's p_vaddr then reads RAM the way Xen did) and the xAPIC page in a fixmap
     * slot of its own, uncached. */
    cfg.phys_map_offset = DIRECTMAP_VIRT_START;
    cfg.xapic_virt = APIC_BASE;
    /* Xen turns the IST of its NMI gate off while an SVM guest's TR is loaded and on for PV
     * guests (their SYSCALL entry runs a few instructions on a guest stack): a victim's NMI
     * keeps whatever the gate has at the crash. */
    cfg.victim_nmi_ist = CRASHPATH_NMI_IST_HOST;
    cfg.info_note = info_note;
    cfg.info_note_phys = __pa(info_note);
    cfg.console = crash_console;
    cfg.quiesce = crash_quiesce;
    return crashpath_init(&cfg);
}

/* The firmware's memory map, as crashpath wants it: the crash area is RAM there, and crashpath
 * gives the kdump kernel that RAM alone. */
static int __init read_memmap(void)
{
    unsigned int i;

    if ( e820_raw.nr_map > CRASHPATH_MAX_MEMMAP )
        return -E2BIG;
    for ( i = 0; i < e820_raw.nr_map; i++ )
    {
        memmap[i].start = e820_raw.map[i].addr;
        memmap[i].size = e820_raw.map[i].size;
        memmap[i].type = e820_raw.map[i].type;
    }
    nr_memmap = e820_raw.nr_map;
    return 0;
}

/* Place the kdump image in the crash area; after every configure(). */
static int load_image(void)
{
    struct crashpath_kdump kd = { 0 };

    kd.kernel = kdump.kernel;
    kd.kernel_size = kdump.kernel_size;
    kd.initrd = kdump.initrd;
    kd.initrd_size = kdump.initrd_size;
    kd.cmdline = kdump.cmdline;
    kd.region = __va(kexec_crash_area.start);      /* mapped writable in the direct map */
    kd.region_phys = kexec_crash_area.start;
    kd.region_size = kexec_crash_area.size;
    kd.memmap = memmap;
    kd.nr_memmap = nr_memmap;
    /* Xen's image is one physical range: gdb reads xen-syms' addresses through it */
    kd.image_virt = (unsigned long)_start;
    kd.image_phys = __pa(_start);
    kd.image_size = _end - _start;
    return crashpath_load_kdump(&kd);
}

/* CPU hotplug: crashpath's table follows the online CPUs. Hotplug runs on CPU 0, never during
 * a crash (crashpath_init refuses then). */
static int cf_check cpu_callback(struct notifier_block *nfb, unsigned long action, void *hcpu)
{
    unsigned int cpu = (unsigned long)hcpu;
    int err;

    switch ( action )
    {
    case CPU_ONLINE:
    case CPU_DOWN_FAILED:
        cpu = NR_CPUS;
        break;
    case CPU_DOWN_PREPARE:
        break;
    default:
        return NOTIFY_DONE;
    }
    if ( !kdump.owned )
        return NOTIFY_DONE;
    err = configure(cpu);
    if ( !err )
        err = load_image();
    if ( err )
    {
        /* kept owned: the crash area holds crashpath's pages, not an image dom0 loaded */
        printk(XENLOG_ERR "crashpath: CPU %u %s: %s (%d); the crash path stays Xen's own\n", cpu,
               action == CPU_DOWN_PREPARE ? "going down" : "up", crashpath_strerror(err), err);
        kdump.owned = false;
    }
    return NOTIFY_DONE;
}

static struct notifier_block cpu_nfb = {
    .notifier_call = cpu_callback,
};

static void cf_check do_panic_key(unsigned char key)
{
    panic("crashpath test key '%c' pressed on CPU %u\n", key, smp_processor_id());
}

/* A copy of module `m` in Xen's heap (vmalloc: megabytes, virtually contiguous). */
static void *__init copy_module(const module_t *m, size_t *size)
{
    void *copy = vmalloc(m->mod_end);

    if ( copy )
        memcpy(copy, __va(pfn_to_paddr(m->mod_start)), m->mod_end);
    *size = m->mod_end;
    return copy;
}

static int __init cf_check crashpath_xen_init(void)
{
    int err;

    if ( opt_test_keys )
        register_keyhandler('P', do_panic_key, "crashpath: panic() on this CPU", 0);
    if ( !have_kernel_mod )
        return 0;
    if ( !kexec_crash_area.size )
    {
        printk(XENLOG_ERR "crashpath: a kdump kernel module but no crash area (crashkernel=)\n");
        return 0;
    }
    kdump.kernel = copy_module(&kernel_mod, &kdump.kernel_size);
    if ( have_initrd_mod )
        kdump.initrd = copy_module(&initrd_mod, &kdump.initrd_size);
    if ( !kdump.kernel || (have_initrd_mod && !kdump.initrd) )
    {
        printk(XENLOG_ERR "crashpath: no memory for the kdump image\n");
        return 0;
    }
    err = read_memmap();
    if ( !err )
        err = configure(NR_CPUS);
    if ( !err )
        err = load_image();
    if ( err )
    {
        printk(XENLOG_ERR "crashpath: %s (%d); the crash path stays Xen's own\n",
               err == -E2BIG ? "memory map too long" : crashpath_strerror(err), err);
        return 0;
    }
    kdump.owned = true;
    register_cpu_notifier(&cpu_nfb);
    printk("crashpath: owns the crash path: %u CPUs, kdump image %lu + %lu bytes in %#"PRIpaddr"+%#lx, "
           "cmdline \"%s\"\n", num_online_cpus(), (unsigned long)kdump.kernel_size,
           (unsigned long)kdump.initrd_size, kexec_crash_area.start, kexec_crash_area.size, kdump.cmdline);
    return 0;
}
__initcall(crashpath_xen_init);

/* What follows the word `marker` in a module's command line, or NULL: "crashpath=kernel ARGS"
 * (ARGS the kdump kernel's command line) or "crashpath=initrd". GRUB passes the words after the
 * file name, QEMU the file name too: either way the marker is a word of its own. */
static const char *__init word_after(const char *s, const char *marker)
{
    size_t n = strlen(marker);

    while ( *s )
    {
        while ( *s == ' ' )
            s++;
        if ( !strncmp(s, marker, n) && (s[n] == ' ' || !s[n]) )
            return s + n;
        while ( *s && *s != ' ' )
            s++;
    }
    return NULL;
}

/*
 * From __start_xen(), with the microcode and XSM claims (module 0 is dom0's kernel): take the
 * modules marked for crashpath out of module_map, so that dom0 never sees them as its initrd.
 */
void __init crashpath_xen_grab_modules(unsigned long *module_map, const multiboot_info_t *mbi)
{
    const module_t *mod = __va(mbi->mods_addr);
    unsigned int i;

    for ( i = 1; i < mbi->mods_count; i++ )
    {
        const char *s = mod[i].string ? __va(mod[i].string) : NULL, *args;

        if ( !s || !test_bit(i, module_map) )
            continue;
        if ( (args = word_after(s, "crashpath=kernel")) != NULL )
        {
            kernel_mod = mod[i];
            have_kernel_mod = true;
            while ( *args == ' ' )
                args++;
            strlcpy(kdump.cmdline, args, sizeof(kdump.cmdline));
        }
        else if ( word_after(s, "crashpath=initrd") )
        {
            initrd_mod = mod[i];
            have_initrd_mod = true;
        }
        else
            continue;
        __clear_bit(i, module_map);
    }
}
