/* SPDX-License-Identifier: BSD-2-Clause */
/* config.c — load time: crashpath_init validates the host's description and prepares all
 * crash-time state, so that nothing which can be checked at boot is left to crash time. */
#include "cp/hw.h"
#include "cp/internal.h"

#define CPUID1_ECX_CX16 (1u << 13)
/* The IDT must reach the #MC gate, the highest vector crashpath rewrites. */
#define IDT_MIN_LIMIT (CP_VEC_MC * 16u + 15u)

static int overlaps(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len)
{
    return a < b + b_len && b < a + a_len;
}

/* A note buffer: given, and aligned both ways (it never straddles a page). */
static int check_note_buffer(const void *virt, uint64_t phys)
{
    if (!virt)
        return CRASHPATH_ERR_NO_NOTES;
    if (((uintptr_t)virt | phys) & (CRASHPATH_NOTES_ALIGN - 1))
        return CRASHPATH_ERR_NOTES_ALIGN;
    return CRASHPATH_OK;
}

static int check_scalars(const struct crashpath_config *c)
{
    uint32_t regs[4];
    enum crashpath_apic_mode mode;

    if (!c->nr_cpus)
        return CRASHPATH_ERR_NO_CPUS;
    if (c->nr_cpus > CRASHPATH_MAX_CPUS)
        return CRASHPATH_ERR_TOO_MANY_CPUS;
    /* A gate selector must be a GDT selector with RPL 0, and the one we run
     * on: crashpath_enable_nmis IRETs with the live CS, gates get hv_cs. */
    if (!(c->hv_cs & ~7u) || (c->hv_cs & 7u) || c->hv_cs != cp_hw_read_sel(0))
        return CRASHPATH_ERR_SELECTOR;
    if (!c->tsc_khz)
        return CRASHPATH_ERR_TSC_KHZ;
    if (c->timeout_ms > CRASHPATH_MAX_TIMEOUT_MS)
        return CRASHPATH_ERR_TIMEOUT;
    if (c->send_mode != CRASHPATH_SEND_CLUSTER && c->send_mode != CRASHPATH_SEND_PER_CPU &&
        c->send_mode != CRASHPATH_SEND_ALL_BUT_SELF)
        return CRASHPATH_ERR_SEND_MODE;
    if (c->victim_nmi_ist > 7 && c->victim_nmi_ist != CRASHPATH_NMI_IST_HOST)
        return CRASHPATH_ERR_NMI_STACK;
    mode = cp_apic_mode();
    if (mode != CRASHPATH_APIC_XAPIC && mode != CRASHPATH_APIC_X2APIC)
        return CRASHPATH_ERR_APIC_MODE;
    /* Under FRED (CR4 bit 32) events are delivered through IA32_FRED_CONFIG
     * and never consult the IDT: victims would run the host's own NMI
     * handler, return, never answer, and run on into the kdump kernel. */
    if (cp_hw_read_cr4() & CR4_FRED)
        return CRASHPATH_ERR_FRED;
    cp_hw_cpuid(1, 0, regs);
    if (!(regs[2] & CPUID1_ECX_CX16))
        return CRASHPATH_ERR_NO_CX16;
    return check_note_buffer(c->info_note, c->info_note_phys);
}

/* The broadcast destination of the mode the LAPIC runs now: an NMI sent to
 * it, the victim's self-NMI included, would reach every CPU (SDM vol. 3,
 * 10.6.2.1 for xAPIC's 0xff, 10.12.9 for x2APIC's 0xffffffff). */
static uint32_t broadcast_id(enum crashpath_apic_mode mode)
{
    return mode == CRASHPATH_APIC_XAPIC ? 0xffu : 0xffffffffu;
}

static int check_cpu(const struct crashpath_cpu *cpu, enum crashpath_apic_mode mode, uint32_t nmi_ist)
{
    if (cpu->index >= CRASHPATH_MAX_CPUS)
        return CRASHPATH_ERR_CPU_INDEX;
    if (cpu->apic_id >= broadcast_id(mode))
        return CRASHPATH_ERR_APIC_ID;
    if (cpu->flags & CRASHPATH_CPU_PRESENT) {
        if (!cpu->idt_base)
            return CRASHPATH_ERR_NO_IDT;
        if (cpu->idt_base & 15u)
            return CRASHPATH_ERR_IDT_ALIGN;
        if (cpu->idt_limit < IDT_MIN_LIMIT)
            return CRASHPATH_ERR_IDT_LIMIT;
        if (nmi_ist && nmi_ist != CRASHPATH_NMI_IST_HOST && (!cpu->tss_base || !cpu->nmi_stack_top || (cpu->nmi_stack_top & 15u)))
            return CRASHPATH_ERR_NMI_STACK;
    }
    return check_note_buffer(cpu->notes, cpu->notes_phys);
}

/* Checks between pairs of CPUs. Quadratic, but at load time only:
 * 1024 CPUs make half a million comparisons. */
static int check_pair(const struct crashpath_cpu *a, const struct crashpath_cpu *b)
{
    const uint64_t note = CRASHPATH_CPU_NOTES_SIZE;
    int a_idt = (a->flags & CRASHPATH_CPU_PRESENT) != 0;
    int b_idt = (b->flags & CRASHPATH_CPU_PRESENT) != 0;

    if (a->index == b->index)
        return CRASHPATH_ERR_DUP_CPU_INDEX;
    if (a->apic_id == b->apic_id)
        return CRASHPATH_ERR_DUP_APIC_ID;
    if (a_idt && b_idt && a->idt_base == b->idt_base)
        return CRASHPATH_ERR_IDT_SHARED;
    if (overlaps((uintptr_t)a->notes, note, (uintptr_t)b->notes, note) ||
        overlaps(a->notes_phys, note, b->notes_phys, note))
        return CRASHPATH_ERR_NOTES_OVERLAP;
    /* A note buffer must not lie in another CPU's IDT: saving the notes
     * would then corrupt the gates. */
    if ((b_idt && overlaps((uintptr_t)a->notes, note, b->idt_base, b->idt_limit + 1ull)) ||
        (a_idt && overlaps((uintptr_t)b->notes, note, a->idt_base, a->idt_limit + 1ull)))
        return CRASHPATH_ERR_NOTES_OVERLAP;
    return CRASHPATH_OK;
}

static int check_info_note(const struct crashpath_config *c, const struct crashpath_cpu *cpu)
{
    const uint64_t info = CRASHPATH_INFO_NOTE_SIZE;

    if (overlaps((uintptr_t)c->info_note, info, (uintptr_t)cpu->notes, CRASHPATH_CPU_NOTES_SIZE) ||
        overlaps(c->info_note_phys, info, cpu->notes_phys, CRASHPATH_CPU_NOTES_SIZE))
        return CRASHPATH_ERR_NOTES_OVERLAP;
    if ((cpu->flags & CRASHPATH_CPU_PRESENT) &&
        (overlaps((uintptr_t)c->info_note, info, cpu->idt_base, cpu->idt_limit + 1ull) ||
         overlaps((uintptr_t)cpu->notes, CRASHPATH_CPU_NOTES_SIZE, cpu->idt_base, cpu->idt_limit + 1ull)))
        return CRASHPATH_ERR_NOTES_OVERLAP;
    return CRASHPATH_OK;
}

static int validate(const struct crashpath_config *c)
{
    enum crashpath_apic_mode mode;
    int err;

    if (!c || !c->cpus)
        return CRASHPATH_ERR_NULL_CONFIG;
    err = check_scalars(c);
    mode = cp_apic_mode();
    for (uint32_t i = 0; !err && i < c->nr_cpus; i++) {
        err = check_cpu(&c->cpus[i], mode, c->victim_nmi_ist);
        if (!err)
            err = check_info_note(c, &c->cpus[i]);
        for (uint32_t j = 0; !err && j < i; j++)
            err = check_pair(&c->cpus[j], &c->cpus[i]);
    }
    return err;
}

/* The 64-bit TSS holds IST1..7 at offset 0x24, 8 bytes each, only 4-byte
 * aligned (SDM vol. 3, 8.7, figure 8-11). Written here, at load time, so the
 * crash path only sets the slot number in the victims' NMI gates. */
static void set_tss_ist(uint64_t tss_base, uint32_t slot, uint64_t stack_top)
{
    volatile uint8_t *field = (volatile uint8_t *)(uintptr_t)(tss_base + 0x24u + 8ull * (slot - 1u));

    for (uint32_t i = 0; i < 8; i++)
        field[i] = (uint8_t)(stack_top >> (8 * i));
}

static void install(const struct crashpath_config *c)
{
    cp_state.nr_cpus = c->nr_cpus;
    cp_state.hv_cs = c->hv_cs;
    cp_state.send_mode = c->send_mode;
    cp_state.timeout_ms = c->timeout_ms ? c->timeout_ms : CRASHPATH_DEFAULT_TIMEOUT_MS;
    cp_state.tsc_khz = c->tsc_khz;
    /* Precomputed so the wait loop only compares. Cannot overflow: at most
     * 600000 ms times a 64-bit kHz value that would need an exahertz TSC. */
    cp_state.timeout_ticks = (uint64_t)cp_state.timeout_ms * c->tsc_khz;
    cp_state.phys_map_offset = c->phys_map_offset;
    cp_state.xapic_virt = c->xapic_virt;
    cp_state.victim_nmi_ist = c->victim_nmi_ist;
    cp_state.info_note = c->info_note;
    cp_state.info_note_phys = c->info_note_phys;
    /* A kdump image prepared for the old table carries the old notes in its
     * ELF core header: the host loads it again. */
    __atomic_store_n(&cp_kdump.loaded, 0, __ATOMIC_SEQ_CST);
    cp_state.console = c->console;
    cp_state.stop_cpu = c->stop_cpu;
    cp_state.stop_cpu_arg = c->stop_cpu_arg;
    cp_state.quiesce = c->quiesce;
    cp_state.quiesce_arg = c->quiesce_arg;
    cp_state.wait_over = 0;
    cp_state.nr_answered = 0;
    cp_state.nr_present = 0;
    for (uint32_t i = 0; i < c->nr_cpus; i++) {
        const struct crashpath_cpu *src = &c->cpus[i];
        struct cp_cpu *dst = &cp_state.cpus[i];

        cp_zero(dst, sizeof(*dst));
        dst->index = src->index;
        dst->apic_id = src->apic_id;
        dst->present = (src->flags & CRASHPATH_CPU_PRESENT) != 0;
        dst->idt_base = dst->present ? src->idt_base : 0;
        dst->notes = src->notes;
        dst->notes_phys = src->notes_phys;
        dst->vmx = src->vmx;
        if (dst->present && c->victim_nmi_ist && c->victim_nmi_ist != CRASHPATH_NMI_IST_HOST)
            set_tss_ist(src->tss_base, c->victim_nmi_ist, src->nmi_stack_top);
        cp_notes_prepare_cpu(dst);
        cp_state.nr_present += dst->present;
    }
    cp_plan_clusters();
    cp_notes_prepare_info();
}

int crashpath_init(const struct crashpath_config *config)
{
    int err;

    if (cp_crashing_cpu != CP_NO_CPU)
        return CRASHPATH_ERR_BUSY;
    err = validate(config);
    if (err)
        return err;
    /* A CPU entering the crash path while we rewrite the table must see it
     * as not ready rather than half-written. */
    cp_state.ready = 0;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    install(config);
    __atomic_store_n(&cp_state.ready, 1, __ATOMIC_RELEASE);
    return CRASHPATH_OK;
}

const char *crashpath_strerror(int error)
{
    switch (error) {
    case CRASHPATH_OK: return "success";
    case CRASHPATH_ERR_NULL_CONFIG: return "configuration or its CPU array is NULL";
    case CRASHPATH_ERR_NO_CPUS: return "no CPUs configured";
    case CRASHPATH_ERR_TOO_MANY_CPUS: return "more CPUs than CRASHPATH_MAX_CPUS";
    case CRASHPATH_ERR_CPU_INDEX: return "a logical CPU index is not below CRASHPATH_MAX_CPUS";
    case CRASHPATH_ERR_DUP_CPU_INDEX: return "two CPUs share a logical index";
    case CRASHPATH_ERR_APIC_ID: return "an APIC ID is the broadcast ID (0xff in xAPIC mode, 0xffffffff in x2APIC)";
    case CRASHPATH_ERR_DUP_APIC_ID: return "two CPUs share an APIC ID";
    case CRASHPATH_ERR_NO_IDT: return "a present CPU has no IDT";
    case CRASHPATH_ERR_IDT_ALIGN: return "an IDT is not 16-byte aligned";
    case CRASHPATH_ERR_IDT_LIMIT: return "an IDT is too short to hold the #MC gate";
    case CRASHPATH_ERR_IDT_SHARED: return "two present CPUs share an IDT";
    case CRASHPATH_ERR_NO_NOTES: return "a note buffer is missing";
    case CRASHPATH_ERR_NOTES_ALIGN: return "a note buffer is not aligned to CRASHPATH_NOTES_ALIGN";
    case CRASHPATH_ERR_NOTES_OVERLAP: return "note buffers overlap each other or an IDT";
    case CRASHPATH_ERR_APIC_MODE: return "the local APIC is disabled or in an invalid mode";
    case CRASHPATH_ERR_SELECTOR: return "hv_cs is not the ring-0 GDT code selector in use";
    case CRASHPATH_ERR_TSC_KHZ: return "tsc_khz is 0";
    case CRASHPATH_ERR_TIMEOUT: return "timeout_ms is above CRASHPATH_MAX_TIMEOUT_MS";
    case CRASHPATH_ERR_SEND_MODE: return "unknown send_mode";
    case CRASHPATH_ERR_NO_CX16: return "the CPU has no CMPXCHG16B";
    case CRASHPATH_ERR_BUSY: return "a crash is under way";
    case CRASHPATH_ERR_NOT_READY: return "crashpath_init has not succeeded";
    case CRASHPATH_ERR_REENTERED: return "the crashing CPU re-entered the crash path";
    case CRASHPATH_ERR_UNKNOWN_CPU: return "this CPU's APIC ID is not configured";
    case CRASHPATH_ERR_KDUMP_ARGS: return "kdump image: no kernel, crash region or memory map";
    case CRASHPATH_ERR_BZ_TRUNCATED: return "kdump image: bzImage truncated";
    case CRASHPATH_ERR_BZ_MAGIC: return "kdump image: not a bzImage (no HdrS setup header or boot flag)";
    case CRASHPATH_ERR_BZ_VERSION: return "kdump image: boot protocol older than 2.12";
    case CRASHPATH_ERR_BZ_NOT_64BIT: return "kdump image: no 64-bit entry point (XLF_KERNEL_64 clear)";
    case CRASHPATH_ERR_BZ_NOT_RELOCATABLE: return "kdump image: kernel is not relocatable";
    case CRASHPATH_ERR_BZ_INIT_SIZE: return "kdump image: init_size smaller than the kernel";
    case CRASHPATH_ERR_REGION_ALIGN: return "crash region not 4 KiB aligned";
    case CRASHPATH_ERR_REGION_NOT_RAM: return "crash region not inside one RAM range";
    case CRASHPATH_ERR_REGION_TOO_SMALL: return "crash region too small for kernel init_size, initrd and crashpath's pages";
    case CRASHPATH_ERR_CMDLINE: return "kdump command line too long for the kernel's cmdline_size";
    case CRASHPATH_ERR_MEMMAP: return "memory map empty, too long or overlapping";
    case CRASHPATH_ERR_IMAGE_RANGE: return "crashpath's code is not inside the given hypervisor image range";
    case CRASHPATH_ERR_MAPPING: return "hand-off page tables: crashpath's code address collides with the identity map";
    case CRASHPATH_ERR_FRED: return "the host runs FRED: events bypass the IDT gates crashpath rewrites";
    case CRASHPATH_ERR_BZ_ALIGN: return "kdump image: kernel_alignment or min_alignment unusable";
    case CRASHPATH_ERR_BZ_NOT_ABOVE_4G: return "kdump image: must lie above 4 GiB but XLF_CAN_BE_LOADED_ABOVE_4G is clear";
    case CRASHPATH_ERR_BZ_NO_5LEVEL: return "kdump image: the host runs 5-level paging and the kernel lacks XLF_5LEVEL";
    case CRASHPATH_ERR_NOTES_IN_KDUMP_RAM: return "a note buffer lies in RAM given to the kdump kernel";
    case CRASHPATH_ERR_NMI_STACK: return "victim_nmi_ist above 7 (and not CRASHPATH_NMI_IST_HOST), or a present CPU without its TSS or NMI stack";
    default: return "unknown crashpath error";
    }
}
