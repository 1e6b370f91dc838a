/* SPDX-License-Identifier: BSD-2-Clause */
/* crashpath.h — the embedding contract of crashpath, an x86-64 hypervisor crash path
 * (NMI shootdown of every CPU, crash notes, hand-off to a kdump kernel). */
#ifndef CRASHPATH_H
#define CRASHPATH_H

/* A host built without the C library's headers (Xen compiles with -nostdinc) defines
 * CRASHPATH_HOST_TYPES and declares uint8_t..uint64_t, uintptr_t and size_t itself
 * before including this file. */
#ifndef CRASHPATH_HOST_TYPES
#include <stddef.h>
#include <stdint.h>
#endif

/*
 * How a hypervisor uses crashpath
 * -------------------------------
 * At boot, once every CPU has its IDT:
 *     crashpath_init(&config)          validates everything; every error is
 *                                      reported here, never at crash time.
 * At crash time, from the panic path of any CPU, interrupts on or off:
 *     crashpath_crash(reason, regs)    never returns on success.
 * In the VM-exit handler, when the exit reason is "NMI" (VMX) or the NMI
 * intercept (SVM), before the host handles the NMI itself:
 *     crashpath_nmi_vmexit()           parks the CPU if a crash is under way.
 *
 * crashpath links no library but libgcc, allocates nothing, takes no lock,
 * and calls back into the host only through the optional hooks below.
 * Everything crashpath needs at crash time is prepared by crashpath_init.
 *
 * What the host must provide
 *   - one IDT per CPU (the crasher's NMI gate and the victims' differ), each
 *     writable at the address given, 16-byte aligned;
 *   - its LAPICs enabled (xAPIC or x2APIC; crashpath reads the mode from the
 *     hardware every time, so a CPU may switch after crashpath_init), and
 *     for xAPIC the APIC page mapped uncached, at xapic_virt or else at
 *     phys_map_offset + base;
 *   - note buffers in memory the kdump kernel will not own.
 * CET: every entry the CPU or the host reaches indirectly starts with
 * ENDBR64 and the library has no jump tables, so it runs under supervisor
 * IBT; the crashing CPU turns supervisor CET off itself before its IRET to
 * self (crashpath_enable_nmis), so the host may keep shadow stacks on
 * throughout.
 * Limits of this version
 *   - IDT-based only: under FRED there are no gates to rewrite, and
 *     crashpath_init refuses a FRED host (CRASHPATH_ERR_FRED);
 *   - a victim spends at most about 420 bytes of the interrupted stack
 *     (hardware frame included), plus whatever the stop hook uses; with
 *     victim_nmi_ist set it uses the stack the host gave crashpath instead,
 *     and a victim whose own stack is wrecked still saves its context.
 */

#define CRASHPATH_VERSION_MAJOR 0
#define CRASHPATH_VERSION_MINOR 1
#define CRASHPATH_VERSION_PATCH 0
#define CRASHPATH_VERSION \
    ((CRASHPATH_VERSION_MAJOR << 16) | (CRASHPATH_VERSION_MINOR << 8) | CRASHPATH_VERSION_PATCH)

/* Compile-time capacity: CPUs a configuration may describe. Logical indices
 * must be below it. */
#define CRASHPATH_MAX_CPUS 1024u

/* Shootdown timeout used when the configuration leaves it 0: Xen and Linux
 * both wait at most one second for the other CPUs to answer. */
#define CRASHPATH_DEFAULT_TIMEOUT_MS 1000u
/* Upper bound accepted by crashpath_init for timeout_ms. */
#define CRASHPATH_MAX_TIMEOUT_MS 600000u

/* ---------------------------------------------------------------------------
 * Register frame
 *
 * The layout of the interrupted context as crashpath's entry stubs save it.
 * Fields r15..ss are in Linux's user_regs_struct order, so they are copied
 * unchanged into NT_PRSTATUS pr_reg[0..20]. A host that passes its own
 * exception frame to crashpath_crash converts it to this layout first.
 */
struct crashpath_regs {
    uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
    uint64_t rax, rcx, rdx, rsi, rdi;
    uint64_t orig_rax;            /* error code of the exception, or ~0 */
    uint64_t rip, cs, rflags, rsp, ss;   /* the hardware IRET frame */
};

/* ---------------------------------------------------------------------------
 * Boot-time configuration
 */

/* APIC modes, as read from IA32_APIC_BASE (EN, EXTD) and CPUID.1:ECX[21]. */
enum crashpath_apic_mode {
    CRASHPATH_APIC_DISABLED = 0,  /* EN clear: the LAPIC is globally off */
    CRASHPATH_APIC_INVALID  = 1,  /* EXTD without EN, or EXTD without x2APIC in CPUID */
    CRASHPATH_APIC_XAPIC    = 2,  /* EN set, EXTD clear: MMIO registers */
    CRASHPATH_APIC_X2APIC   = 3,  /* EN and EXTD set: MSR registers */
};

/* How the crashing CPU sends the shootdown NMI. */
enum crashpath_send_mode {
    /* The default. In x2APIC mode, one logical-destination NMI per x2APIC
     * cluster that holds configured, present CPUs other than the crasher:
     * hardware fixes every CPU's logical ID from its x2APIC ID (cluster
     * ID[19:4], bit 1 << ID[3:0]; SDM vol. 3, 11.12.10.2), so one ICR write
     * reaches up to 16 CPUs and the crasher's send phase grows with the
     * clusters, not the CPUs. Used when the LAPIC ran x2APIC at crashpath_init
     * and runs it at crash time, and every configured APIC ID is below 2^20
     * (above, logical IDs alias); otherwise sent as CRASHPATH_SEND_PER_CPU. */
    CRASHPATH_SEND_CLUSTER = 0,
    /* One physical-destination NMI per configured, present CPU. Only CPUs the
     * host described are hit; a CPU still waiting for SIPI is left alone. */
    CRASHPATH_SEND_PER_CPU = 1,
    /* One NMI with the all-excluding-self shorthand. */
    CRASHPATH_SEND_ALL_BUT_SELF = 2,
};

/*
 * VMX state a host shares per CPU, so that a victim can leave VMX operation.
 * VMCLEAR and VMXOFF raise #UD outside VMX operation, so crashpath trusts
 * `vmxon` rather than guessing from CR4.VMXE. The host keeps it current with
 * single aligned stores (the victim reads it from NMI context on the same CPU):
 *   vmxon        1 after a successful VMXON, 0 after VMXOFF;
 *   vmcs[i]      the physical address of a VMCS that is active on this CPU
 *                (set after VMPTRLD, cleared after VMCLEAR), or 0.
 * A victim VMCLEARs every non-zero slot (so each VMCS's cached state reaches
 * memory and the dump), then executes VMXOFF (VMX root blocks INIT, which the
 * kdump kernel needs).
 */
struct crashpath_vmx_state {
    volatile uint32_t vmxon;
    uint32_t nr_vmcs;                 /* slots in vmcs[] */
    volatile uint64_t *vmcs;
};

/* One CPU as the host sees it. */
struct crashpath_cpu {
    uint32_t index;        /* the host's logical CPU index, < CRASHPATH_MAX_CPUS, unique */
    uint32_t apic_id;      /* its local APIC ID (x2APIC ID if the host runs x2APIC) */
    uint32_t flags;        /* CRASHPATH_CPU_PRESENT if the CPU was started */
    uint32_t idt_limit;    /* IDTR limit of its IDT */
    uint64_t idt_base;     /* a writable virtual address of its own IDT, 16-byte aligned;
                              if the host maps its IDT read-only, give a writable alias */
    void *notes;           /* CRASHPATH_CPU_NOTES_SIZE bytes, CRASHPATH_NOTES_ALIGN aligned,
                              outside any RAM the kdump kernel will own */
    uint64_t notes_phys;   /* physical address of the same bytes (for the ELF core header) */
    struct crashpath_vmx_state *vmx;   /* optional: NULL if the host never uses VMX here */
    /* With crashpath_config.victim_nmi_ist (present CPUs): */
    uint64_t tss_base;      /* a writable virtual address of this CPU's 64-bit TSS */
    uint64_t nmi_stack_top; /* top of a stack only crashpath uses, 16-byte aligned, at least
                               CRASHPATH_NMI_STACK_MIN bytes plus what the stop hook needs */
};

/* Least stack a victim's NMI takes on the stack of victim_nmi_ist: the
 * hardware frame, the victim path, one faulted re-entry. */
#define CRASHPATH_NMI_STACK_MIN 2048u

#define CRASHPATH_CPU_PRESENT 0x1u

/* Called on the crashing CPU only, for crash-time messages (one line each, no
 * trailing newline). It must not take a lock a parked CPU could hold. */
typedef void (*crashpath_console_fn)(const char *msg, size_t len);

/* Called once on each victim, in NMI context on the interrupted stack, after
 * its registers are saved and before virtualization is shut down: the place
 * to stop host devices or state owned by that CPU. It must not take locks,
 * allocate, or enable interrupts. A victim that answers only after the
 * crasher stopped waiting skips it (CRASHPATH_CPUF_HOOK_SKIPPED): by then
 * the crasher may be quiescing devices or the kdump kernel using them. */
typedef void (*crashpath_stop_fn)(uint32_t cpu_index, void *arg);

/* Called once on the crashing CPU, after the wait (every other CPU parked or
 * given up on) and before the hand-off, interrupts off, NMIs still blocked
 * if the crash came from NMI context: the place to stop what would break the
 * kdump kernel and is no single CPU's, as Xen and Linux do at this point:
 * IOMMU DMA and interrupt remapping, IO-APIC entries, HPET, performance
 * counters programmed to raise NMIs (Xen 2a16fcd5ba: a kdump kernel livelocked
 * on a watchdog counter still firing). No locks, no allocation. */
typedef void (*crashpath_quiesce_fn)(void *arg);

struct crashpath_config {
    uint32_t nr_cpus;                    /* entries in cpus[], 1..CRASHPATH_MAX_CPUS */
    const struct crashpath_cpu *cpus;    /* copied by crashpath_init */
    uint16_t hv_cs;                      /* the hypervisor's 64-bit code selector: written into
                                            every gate crashpath rewrites; must be the CS that
                                            crashpath_init runs on */
    uint16_t reserved0;
    uint32_t timeout_ms;                 /* shootdown wait; 0 means CRASHPATH_DEFAULT_TIMEOUT_MS */
    uint64_t tsc_khz;                    /* TSC frequency; must be invariant across CPUs */
    uint64_t phys_map_offset;            /* virtual = physical + offset: where the host maps RAM
                                            (the ELF core header's p_vaddr of each RAM range) and,
                                            unless xapic_virt says otherwise, the xAPIC MMIO page,
                                            uncached (0 if identity-mapped) */
    uint32_t send_mode;                  /* enum crashpath_send_mode; 0 is CRASHPATH_SEND_CLUSTER */
    uint32_t victim_nmi_ist;             /* 0: a victim takes the shootdown NMI on the stack it
                                            was using (IST 0). 1..7: an IST slot of every CPU's
                                            TSS that the host leaves to crashpath: crashpath_init
                                            points it at the CPU's nmi_stack_top and victims take
                                            the NMI there, so one whose stack is wrecked (overflowed
                                            into its guard page, a non-canonical or guest RSP at
                                            CPL 0) still saves its interrupted context.
                                            CRASHPATH_NMI_IST_HOST: the IST slot the host's own
                                            NMI gate names at the crash, kept as it is */
    void *info_note;                     /* CRASHPATH_INFO_NOTE_SIZE bytes, CRASHPATH_NOTES_ALIGN aligned */
    uint64_t info_note_phys;
    crashpath_console_fn console;        /* optional */
    crashpath_stop_fn stop_cpu;          /* optional */
    void *stop_cpu_arg;
    crashpath_quiesce_fn quiesce;        /* optional */
    void *quiesce_arg;
    uint64_t xapic_virt;                 /* optional: the virtual address of the xAPIC register
                                            page, mapped uncached, for a host that maps it apart
                                            from RAM (Xen: a fixmap slot); 0: phys_map_offset +
                                            the base IA32_APIC_BASE names */
};

/* victim_nmi_ist: keep each CPU's NMI gate on the IST slot the host set. For a
 * host that switches the slot per context (Xen clears the IST fields of its
 * NMI, #MC and #DF gates while an SVM guest's TR is loaded and sets them back
 * for PV guests, whose SYSCALL entry runs on a guest stack for a few
 * instructions): the gate then names the stack that is safe where the CPU is. */
#define CRASHPATH_NMI_IST_HOST 0xffu

/* Errors: crashpath_init returns one specific code per problem. */
enum crashpath_error {
    CRASHPATH_OK = 0,
    CRASHPATH_ERR_NULL_CONFIG = -1,      /* config or config->cpus is NULL */
    CRASHPATH_ERR_NO_CPUS = -2,          /* nr_cpus == 0 */
    CRASHPATH_ERR_TOO_MANY_CPUS = -3,    /* nr_cpus > CRASHPATH_MAX_CPUS */
    CRASHPATH_ERR_CPU_INDEX = -4,        /* a logical index >= CRASHPATH_MAX_CPUS */
    CRASHPATH_ERR_DUP_CPU_INDEX = -5,    /* two CPUs with one logical index */
    CRASHPATH_ERR_APIC_ID = -6,          /* APIC ID at or above the broadcast ID of the mode the
                                            LAPIC runs: 0xffffffff in x2APIC, 0xff in xAPIC */
    CRASHPATH_ERR_DUP_APIC_ID = -7,      /* two CPUs with one APIC ID */
    CRASHPATH_ERR_NO_IDT = -8,           /* a present CPU without an IDT */
    CRASHPATH_ERR_IDT_ALIGN = -9,        /* IDT base not 16-byte aligned (gates are swapped
                                            with CMPXCHG16B, which needs it) */
    CRASHPATH_ERR_IDT_LIMIT = -10,       /* IDT too short to hold the #MC gate (vector 18) */
    CRASHPATH_ERR_IDT_SHARED = -11,      /* two present CPUs share an IDT: the crasher's NMI
                                            gate and the victims' must differ */
    CRASHPATH_ERR_NO_NOTES = -12,        /* a CPU or the crash-info note without a buffer */
    CRASHPATH_ERR_NOTES_ALIGN = -13,     /* a note buffer (virtual or physical) misaligned */
    CRASHPATH_ERR_NOTES_OVERLAP = -14,   /* note buffers overlap each other or an IDT */
    CRASHPATH_ERR_APIC_MODE = -15,       /* the calling CPU's LAPIC is disabled or in an
                                            invalid mode, so no NMI could be sent */
    CRASHPATH_ERR_SELECTOR = -16,        /* hv_cs is null, not ring 0, in the LDT, or not
                                            the CS crashpath_init runs on */
    CRASHPATH_ERR_TSC_KHZ = -17,         /* tsc_khz == 0 */
    CRASHPATH_ERR_TIMEOUT = -18,         /* timeout_ms > CRASHPATH_MAX_TIMEOUT_MS */
    CRASHPATH_ERR_SEND_MODE = -19,       /* unknown send_mode */
    CRASHPATH_ERR_NO_CX16 = -20,         /* CPU lacks CMPXCHG16B (CPUID.1:ECX[13]) */
    CRASHPATH_ERR_BUSY = -21,            /* crashpath_init during or after a crash */
    CRASHPATH_ERR_NOT_READY = -22,       /* crash entry before a successful crashpath_init */
    CRASHPATH_ERR_REENTERED = -23,       /* the crashing CPU entered the crash path again */
    CRASHPATH_ERR_UNKNOWN_CPU = -24,     /* crash entry on a CPU whose APIC ID is not configured */
    /* crashpath_load_kdump */
    CRASHPATH_ERR_KDUMP_ARGS = -25,      /* no kernel, region or memory map given */
    CRASHPATH_ERR_BZ_TRUNCATED = -26,    /* the bzImage is shorter than its own headers say */
    CRASHPATH_ERR_BZ_MAGIC = -27,        /* no "HdrS" setup header or 0xAA55 boot flag */
    CRASHPATH_ERR_BZ_VERSION = -28,      /* boot protocol older than 2.12 (no xloadflags) */
    CRASHPATH_ERR_BZ_NOT_64BIT = -29,    /* XLF_KERNEL_64 clear: no 64-bit entry point */
    CRASHPATH_ERR_BZ_NOT_RELOCATABLE = -30, /* relocatable_kernel clear */
    CRASHPATH_ERR_BZ_INIT_SIZE = -31,    /* init_size smaller than the kernel it must hold */
    CRASHPATH_ERR_REGION_ALIGN = -32,    /* crash region not 4 KiB aligned */
    CRASHPATH_ERR_REGION_NOT_RAM = -33,  /* crash region not inside one RAM range of the map */
    CRASHPATH_ERR_REGION_TOO_SMALL = -34,/* kernel init_size, initrd and crashpath's pages do
                                            not fit in the region */
    CRASHPATH_ERR_CMDLINE = -35,         /* command line plus elfcorehdr= exceeds cmdline_size */
    CRASHPATH_ERR_MEMMAP = -36,          /* memory map empty, too long or overlapping */
    CRASHPATH_ERR_IMAGE_RANGE = -37,     /* crashpath's code lies outside image_virt/image_size */
    CRASHPATH_ERR_MAPPING = -38,         /* crashpath's code address collides with the identity map */
    /* crashpath_init */
    CRASHPATH_ERR_FRED = -39,            /* the host runs FRED (CR4 bit 32): events bypass the IDT,
                                            so no gate crashpath rewrites would ever be used */
    /* crashpath_load_kdump */
    CRASHPATH_ERR_BZ_ALIGN = -40,        /* kernel_alignment not a power of two, or min_alignment
                                            above it or below 4 KiB */
    CRASHPATH_ERR_BZ_NOT_ABOVE_4G = -41, /* the kernel or initrd would lie above 4 GiB but
                                            XLF_CAN_BE_LOADED_ABOVE_4G is clear */
    CRASHPATH_ERR_BZ_NO_5LEVEL = -42,    /* the host runs 5-level paging (CR4.LA57) and the kernel
                                            lacks XLF_5LEVEL */
    CRASHPATH_ERR_NOTES_IN_KDUMP_RAM = -43, /* a note buffer lies in RAM the kdump kernel is given
                                            (it would refuse to map it: no /proc/vmcore) */
    /* crashpath_init */
    CRASHPATH_ERR_NMI_STACK = -44,       /* victim_nmi_ist above 7, or a present CPU without a
                                            TSS or a 16-byte aligned nmi_stack_top */
};

/* Validate and copy the configuration, write every note header (so a CPU
 * that never answers still leaves a well-formed note area) and precompute
 * the crash-time constants. Call on the boot CPU with its LAPIC enabled.
 * May be called again to replace the configuration (CPU hotplug), but not
 * once a crash has begun. */
int crashpath_init(const struct crashpath_config *config);

/* ---------------------------------------------------------------------------
 * The kdump image (load time)
 *
 * The host hands crashpath a Linux bzImage (64-bit boot protocol), an optional
 * initrd and command line, a reserved crash region, and its memory map.
 * crashpath validates the image, copies it into the region and prepares
 * everything the jump needs: boot_params, the command line with
 * "elfcorehdr=", the ELF core header, identity page tables and a GDT. The
 * crash path then only copies low memory aside and jumps.
 *
 * Region layout (physical, from its start): a control page, page tables,
 * boot_params, command line, ELF core header, the 640 KiB low-memory backup
 * (all kept from the kdump kernel as reserved), then the kernel at or above
 * 16 MiB, aligned to its header's kernel_alignment (lowered toward
 * 1 << min_alignment, never below 2 MiB, only if the region is too short;
 * the alignment used is written back to boot_params), then the initrd after
 * the kernel's init_size; what follows the backup is RAM to the kdump kernel,
 * so note buffers must lie elsewhere. After this call the host should map the
 * region read-only.
 */
#define CRASHPATH_E820_RAM 1u
#define CRASHPATH_E820_RESERVED 2u
#define CRASHPATH_E820_ACPI 3u
#define CRASHPATH_E820_NVS 4u
#define CRASHPATH_E820_UNUSABLE 5u

struct crashpath_mem_range {
    uint64_t start, size;
    uint32_t type;             /* CRASHPATH_E820_* as firmware reported it */
    uint32_t reserved;
};

/* Most memory-map entries crashpath_load_kdump accepts. */
#define CRASHPATH_MAX_MEMMAP 64u
/* Low memory the kdump kernel reuses (real-mode trampoline), saved at crash time. */
#define CRASHPATH_LOW_BACKUP_SIZE 0xa0000ull   /* 640 KiB */

struct crashpath_kdump {
    const void *kernel;                 /* the bzImage as read from its file */
    uint64_t kernel_size;
    const void *initrd;                 /* optional */
    uint64_t initrd_size;
    const char *cmdline;                /* optional; crashpath appends " elfcorehdr=0x..." */
    void *region;                       /* the crash region, mapped writable, 4 KiB aligned */
    uint64_t region_phys;               /* its physical address, 4 KiB aligned, inside RAM */
    uint64_t region_size;
    const struct crashpath_mem_range *memmap;   /* the firmware's map (e820) */
    uint32_t nr_memmap;
    uint32_t flags;                     /* CRASHPATH_KDUMP_* */
    uint64_t image_phys, image_size;    /* the hypervisor image in physical memory ... */
    uint64_t image_virt;                /* ... and where it runs: gdb reads symbols through this,
                                           and it must contain crashpath's own code */
    uint64_t acpi_rsdp;                 /* optional: physical address of the ACPI RSDP */
};

/* crashpath_kdump.flags. At load time crashpath records a SHA-256 of every
 * segment (kernel, initrd, boot_params, command line), as kexec's purgatory
 * does, and checks them just before the jump: something may have scribbled
 * on the region since. On a mismatch it names the segment through the
 * console hook and in the crash-info note, then halts, unless this flag asks
 * it to jump anyway. */
#define CRASHPATH_KDUMP_JUMP_IF_CORRUPT 0x1u

/* Validate and place the kdump image; call after crashpath_init (and again
 * after any later crashpath_init). Returns CRASHPATH_OK or an error below. */
int crashpath_load_kdump(const struct crashpath_kdump *kdump);

/* Where crashpath_load_kdump put things (physical addresses), for the host
 * to map the region read-only afterwards, and for diagnostics. */
struct crashpath_kdump_info {
    uint64_t kernel, kernel_size;       /* protected-mode kernel; entry at kernel + 0x200 */
    uint64_t initrd, initrd_size;
    uint64_t boot_params, cmdline, elfcorehdr, elfcorehdr_size;
    uint64_t kept, kept_size;           /* crashpath's pages at the region start (reserved) */
};
/* CRASHPATH_ERR_NOT_READY if no image is loaded. */
int crashpath_kdump_info(struct crashpath_kdump_info *info);

/* Human-readable text for an enum crashpath_error value. */
const char *crashpath_strerror(int error);

/*
 * The crash entry. Call from the host's panic path on the CPU that crashes.
 *   reason: a short text for the crash-info note (copied, truncated to 127).
 *   regs:   the exception frame that caused the panic, or NULL to record the
 *           caller's own registers (RIP = the return address of this call).
 * It disables interrupts, elects this CPU as the one crashing CPU, shoots
 * the others down and hands off to the kdump kernel. It never returns, with
 * two exceptions, so the host can fall back to a reboot instead of a hang:
 *   CRASHPATH_ERR_REENTERED   this CPU is already the crashing CPU (a fault
 *                             or panic inside the crash path itself);
 *   CRASHPATH_ERR_NOT_READY / CRASHPATH_ERR_UNKNOWN_CPU.
 * A second CPU that calls it while another CPU crashes saves its own
 * registers as a victim and parks.
 */
int crashpath_crash(const char *reason, const struct crashpath_regs *regs);

/*
 * For the host's VM-exit handler, when the exit was caused by an NMI. A CPU
 * in VMX non-root operation (or SVM guest mode with the NMI intercepted)
 * takes the shootdown NMI as a VM exit and never consults its IDT gate, so
 * without this call it would never be parked (Xen lost victims this way in
 * 2013). If a crash is under way and this CPU is not the crashing CPU, it
 * records the caller's registers, parks exactly as crashpath_nmi_crash does
 * and never returns. Otherwise it returns 0 and the host handles the NMI as
 * usual.
 */
int crashpath_nmi_vmexit(void);

/* The APIC mode of the calling CPU, read from the hardware now. */
enum crashpath_apic_mode crashpath_apic_mode(void);

/* ---------------------------------------------------------------------------
 * Entry stubs (entry/crash_entry.asm). The host never calls them; crashpath
 * installs them in IDT gates. They are exported so the host's symbol table
 * and debugger know them, each with the crashpath_ prefix (a hypervisor has
 * its own trap_nop and enable_nmis: Xen does).
 */
void crashpath_trap_nop(void);      /* IRETQ: the crasher's NMI gate */
void crashpath_nmi_crash(void);     /* the victims' NMI gate: save, park, never IRET */
void crashpath_mce_crash(void);     /* every CPU's #MC gate from the shootdown on: clear MCG_STATUS and
                             IRET if RIPV says the interrupted context can go on */
void crashpath_enable_nmis(void);   /* IRET to self: clears this CPU's NMI blocking, preserves all */

/* ---------------------------------------------------------------------------
 * Crash notes
 *
 * Each CPU's buffer holds, in ELF note format (12-byte header, name and
 * descriptor each padded to 4 bytes) and ending in a 12-byte zero header:
 *   "CORE"      / NT_PRSTATUS (1)            struct elf_prstatus, 336 bytes
 *   "CRASHPATH" / CRASHPATH_NT_CPU           struct crashpath_cpu_note
 * The crash-info buffer holds:
 *   "CRASHPATH" / CRASHPATH_NT_CRASH_INFO    struct crashpath_info_note
 * docs/notes.md documents every byte.
 */
#define CRASHPATH_NOTES_ALIGN 512u       /* a buffer never straddles a 4 KiB page */
#define CRASHPATH_CPU_NOTES_SIZE 512u
#define CRASHPATH_INFO_NOTE_SIZE 512u
#define CRASHPATH_NOTE_NAME "CRASHPATH"
#define CRASHPATH_NT_CPU 0x43500001u         /* "CP" << 16 | 1 */
#define CRASHPATH_NT_CRASH_INFO 0x43500002u
#define CRASHPATH_NOTE_FORMAT 3u      /* 2: crashpath_cpu_note gained machine_checks;
                                         3: the crash-info note gained icr_writes, send_used,
                                            resent, tsc_gates_done */

/* Outcome of one CPU, in its crashpath note. */
enum crashpath_outcome {
    CRASHPATH_OUTCOME_NONE = 0,          /* no crash yet (or still being waited for) */
    CRASHPATH_OUTCOME_CRASHER = 1,       /* this CPU ran the crash path */
    CRASHPATH_OUTCOME_ANSWERED = 2,      /* parked within the timeout */
    CRASHPATH_OUTCOME_TIMED_OUT = 3,     /* had not answered when the wait ended */
    CRASHPATH_OUTCOME_NOT_PRESENT = 4,   /* configured but never started */
    CRASHPATH_OUTCOME_ANSWERED_LATE = 5, /* parked after the crasher stopped waiting */
};

/* crashpath_cpu_note.flags */
#define CRASHPATH_CPUF_REGS_SAVED   0x001u  /* NT_PRSTATUS holds this CPU's registers */
#define CRASHPATH_CPUF_HOOK_CALLED  0x002u  /* the host stop hook was entered */
#define CRASHPATH_CPUF_HOOK_DONE    0x004u  /* ... and returned */
#define CRASHPATH_CPUF_VMX_LEFT     0x008u  /* VMCLEAR of every VMCS, then VMXOFF */
#define CRASHPATH_CPUF_VMX_UNKNOWN  0x010u  /* CR4.VMXE set but the host shared no VMX state */
#define CRASHPATH_CPUF_SVM_LEFT     0x020u  /* STGI, EFER.SVME and VM_HSAVE_PA cleared */
#define CRASHPATH_CPUF_LAPIC_QUIET  0x040u  /* LVTs masked, LAPIC software-disabled */
#define CRASHPATH_CPUF_VIA_VMEXIT   0x080u  /* parked through crashpath_nmi_vmexit */
#define CRASHPATH_CPUF_LATE_CRASHER 0x100u  /* entered crashpath_crash while another CPU crashed */
#define CRASHPATH_CPUF_FAULTED      0x200u  /* the host's panic path was entered from inside this
                                               CPU's victim path (a fault in the stop hook, or in
                                               a step: see faulted_steps); the saved registers
                                               stay the interrupted ones */
#define CRASHPATH_CPUF_HOOK_SKIPPED 0x400u  /* answered after the wait ended: the stop hook was
                                               not run (the crasher may be quiescing devices) */

struct crashpath_cpu_note {
    uint32_t format;       /* CRASHPATH_NOTE_FORMAT */
    uint32_t cpu_index;    /* logical index */
    uint32_t apic_id;      /* as configured */
    uint32_t apic_mode;    /* enum crashpath_apic_mode, read when the registers were saved */
    uint32_t outcome;      /* enum crashpath_outcome */
    uint32_t flags;        /* CRASHPATH_CPUF_* */
    uint32_t saves;        /* how often the registers were saved (1; more only if a re-entry
                              interrupted the first save itself) */
    uint32_t reentries;    /* entries into the victim path after this CPU had parked */
    uint64_t cr0, cr2, cr3, cr4, efer;   /* when the registers were saved, before shutdown */
    uint64_t answer_tsc;   /* TSC when this CPU answered (crasher: when it saved) */
    uint32_t machine_checks;   /* machine checks taken through crashpath_mce_crash since the shootdown */
    uint32_t faulted_steps;    /* CRASHPATH_STEP_* that faulted in the victim path and were
                                  skipped from then on (a fault that recurs on every try) */
};

/* crashpath_cpu_note.faulted_steps: the victim path's steps. Each is marked
 * before it runs; a fault inside it (the host's handler panics back into
 * crashpath_crash) skips it from then on, so a fault that recurs on every
 * try ends in a parked CPU, not a stack overflow. */
#define CRASHPATH_STEP_SAVE     0x01u  /* registers and control state into NT_PRSTATUS */
#define CRASHPATH_STEP_HOOK     0x02u  /* the host's stop hook */
#define CRASHPATH_STEP_VMX      0x04u  /* VMCLEAR of every VMCS, VMXOFF */
#define CRASHPATH_STEP_SVM      0x08u  /* STGI, EFER.SVME and VM_HSAVE_PA cleared */
#define CRASHPATH_STEP_LAPIC    0x10u  /* LVTs masked, LAPIC software-disabled */
#define CRASHPATH_STEP_SELF_NMI 0x20u  /* the self-NMI re-queued at park */

struct crashpath_info_note {
    uint32_t format;             /* CRASHPATH_NOTE_FORMAT */
    uint32_t version;            /* CRASHPATH_VERSION */
    uint32_t crashing_cpu;       /* logical index */
    uint32_t crashing_apic_id;
    uint32_t nr_cpus;            /* CPUs configured */
    uint32_t nr_not_answered;    /* present CPUs that had not answered when the wait ended */
    uint32_t timeout_ms;
    uint32_t send_mode;          /* enum crashpath_send_mode, as configured */
    uint64_t tsc_khz;
    uint64_t tsc_crash_entry;    /* TSC when the crashing CPU entered, before the election */
    uint64_t tsc_nmis_sent;      /* TSC after the last shootdown NMI was sent */
    uint64_t tsc_wait_end;       /* TSC when the wait ended */
    uint64_t tsc_handoff;        /* TSC just before the jump to the kdump kernel */
    char reason[128];            /* NUL-terminated */
    uint64_t not_answered[CRASHPATH_MAX_CPUS / 64];  /* bit i: logical CPU i did not answer */
    uint32_t integrity;          /* enum crashpath_integrity: the segment check before the jump */
    uint32_t corrupt_segments;   /* bit per CRASHPATH_SEGMENT_* whose SHA-256 differed */
    uint64_t integrity_ticks;    /* TSC ticks the check took */
    uint32_t icr_writes;         /* ICR writes the crasher's shootdown issued */
    uint32_t send_used;          /* enum crashpath_send_mode the shootdown went out by (a
                                    cluster send falls back to per-CPU outside x2APIC) */
    uint32_t resent;             /* physical NMIs sent after a cluster send to CPUs that had
                                    not answered within an eighth of the timeout */
    uint32_t reserved;
    uint64_t tsc_gates_done;     /* TSC when every CPU's gates were rewritten, just before the
                                    first shootdown NMI */
};

enum crashpath_integrity {
    CRASHPATH_INTEGRITY_NOT_CHECKED = 0,
    CRASHPATH_INTEGRITY_OK = 1,
    CRASHPATH_INTEGRITY_CORRUPT = 2,
};
#define CRASHPATH_SEGMENT_KERNEL 0x1u
#define CRASHPATH_SEGMENT_INITRD 0x2u
#define CRASHPATH_SEGMENT_BOOT_PARAMS 0x4u
#define CRASHPATH_SEGMENT_CMDLINE 0x8u

#endif /* CRASHPATH_H */
