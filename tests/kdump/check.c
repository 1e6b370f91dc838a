/* SPDX-License-Identifier: BSD-2-Clause */
/* check.c — checks a crashpath dump against a scenario's expectations: the ELF core header as
 * Linux's vmcore code validates it, every note, each CPU's outcome and registers, the crash-info
 * note and the low-memory backup. Freestanding (no libc), so the mini verifier can use it. */
#include <stddef.h>
#include "check.h"
#include "cp/elf64.h"

/* Everything resolves inside one image: no GOT, RIP-relative only. */
#pragma GCC visibility push(hidden)

#define NT_PRSTATUS 1u
#define PRSTATUS_SIZE 336u
#define PR_PID 32u
#define PR_REG 112u
/* user_regs_struct indices */
#define REG_RBX 5u
#define REG_R8 9u
#define REG_RIP 16u
#define REG_RSP 19u
/* the x86 bits the notes carry */
#define EFER_SVME (1ull << 12)
#define CR4_VMXE (1ull << 13)

/* ---- tiny formatting, no libc ---- */
struct line {
    char buf[320];              /* the BENCH line with 1024 CPUs' TSC values is over 200 */
    uint32_t len;
};

static void l_str(struct line *l, const char *s)
{
    while (*s && l->len + 1 < sizeof(l->buf))
        l->buf[l->len++] = *s++;
    l->buf[l->len] = 0;
}

static void l_num(struct line *l, uint64_t v, int hex)
{
    char t[24];
    int n = 0;

    if (hex)
        l_str(l, "0x");
    do {
        t[n++] = "0123456789abcdef"[hex ? v % 16 : v % 10];
        v = hex ? v / 16 : v / 10;
    } while (v);
    while (n && l->len + 1 < sizeof(l->buf))
        l->buf[l->len++] = t[--n];
    l->buf[l->len] = 0;
}

struct ctx {
    const struct check_reader *r;
    const struct check_expect *e;
    struct check_result *res;
    void (*say)(const char *);
};

/* l holds "FAIL <what>": said as it is, kept without the prefix for the verdict. */
static void fail(struct ctx *c, struct line *l)
{
    c->res->failures++;
    if (!c->res->first[0])
        for (uint32_t i = 5; i <= l->len && i - 5 < sizeof(c->res->first) - 1; i++)
            c->res->first[i - 5] = l->buf[i];
    c->say(l->buf);
}

static void fail_msg(struct ctx *c, const char *what, uint64_t a, uint64_t b)
{
    struct line l = { .len = 0 };

    l_str(&l, "FAIL ");
    l_str(&l, what);
    l_str(&l, " (");
    l_num(&l, a, 1);
    l_str(&l, ", ");
    l_num(&l, b, 1);
    l_str(&l, ")");
    fail(c, &l);
}

static int rd(struct ctx *c, uint64_t off, void *dst, uint64_t len)
{
    if (c->r->read(c->r->ctx, off, dst, len)) {
        fail_msg(c, "cannot read dump at offset, length", off, len);
        return -1;
    }
    return 0;
}

static uint32_t u32_at(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t u64_at(const uint8_t *p)
{
    return u32_at(p) | (uint64_t)u32_at(p + 4) << 32;
}

static int str_eq_n(const char *a, const char *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

/* ---- command line ---- */

static uint64_t parse_num(const char **s)
{
    uint64_t v = 0;
    int hex = (*s)[0] == '0' && ((*s)[1] == 'x' || (*s)[1] == 'X');

    if (hex)
        *s += 2;
    for (;; (*s)++) {
        char ch = **s;

        if (ch >= '0' && ch <= '9')
            v = v * (hex ? 16 : 10) + (uint64_t)(ch - '0');
        else if (hex && ch >= 'a' && ch <= 'f')
            v = v * 16 + (uint64_t)(ch - 'a' + 10);
        else
            break;
    }
    return v;
}

/* "LO-HI", both numbers as parse_num reads them. */
static void parse_range(const char *v, uint64_t *lo, uint64_t *hi)
{
    *lo = parse_num(&v);
    if (*v == '-')
        v++;
    *hi = parse_num(&v);
}

static int key_is(const char *w, const char *key)
{
    uint32_t n = 0;

    while (key[n])
        n++;
    return str_eq_n(w, key, n) && w[n] == '=';
}

/* CPU:REST, as cp.canary, cp.gif and cp.wrecked give it: the CPU, then REST. */
static const char *cpu_then(const char *v, uint32_t *cpu)
{
    *cpu = (uint32_t)parse_num(&v);
    return *v == ':' ? v + 1 : v;
}

static const char *value_of(const char *w)
{
    while (*w != '=')
        w++;
    return w + 1;
}

/* cp.timedout=1,3, cp.late=1 and cp.absent=2 name CPUs whose outcome differs
 * from "answered"; everything else answers and the crasher crashes. */
static void parse_list(const char *v, struct check_expect *e, uint8_t outcome)
{
    while (*v >= '0' && *v <= '9') {
        uint64_t cpu = parse_num(&v);

        if (cpu < CHECK_MAX_CPUS)
            e->outcome[cpu] = outcome;
        if (*v == ',')
            v++;
    }
}

/* cp.svm=1,2, cp.reentered=3, cp.mce=0,3: a flag per CPU. */
static void parse_flags(const char *v, uint8_t *flags)
{
    while (*v >= '0' && *v <= '9') {
        uint64_t cpu = parse_num(&v);

        if (cpu < CHECK_MAX_CPUS)
            flags[cpu] = 1;
        if (*v == ',')
            v++;
    }
}

/* The cp.* tokens that fill one field the same way; the rest are parsed by hand below. Keys
 * are arrays, not pointers: the mini verifier is position-independent and may hold no
 * absolute relocation. */
enum cmdline_kind {
    KEY_U64,        /* KEY=N */
    KEY_U32,        /* KEY=N */
    KEY_INT,        /* KEY=N */
    KEY_PRESENT,    /* KEY=anything: 1 */
    KEY_RANGE,      /* KEY=LO-HI into two adjacent uint64_t fields */
    KEY_FLAGS,      /* KEY=CPU,CPU,...: a flag per CPU */
    KEY_OUTCOME,    /* KEY=CPU,CPU,...: these CPUs' expected outcome */
};

#define FIELD(name) ((uint16_t)__builtin_offsetof(struct check_expect, name))
static const struct {
    char key[16];
    uint8_t kind, outcome;
    uint16_t offset;
} cmdline_keys[] = {
    { "elfcorehdr", KEY_U64, 0, FIELD(elfcorehdr) },
    { "cp.lowmem", KEY_U64, 0, FIELD(lowmem) },
    { "cp.cpus", KEY_U32, 0, FIELD(cpus) },
    { "cp.crasher", KEY_U32, 0, FIELD(crasher) },
    { "cp.corrupt", KEY_U32, 0, FIELD(corrupt) },
    { "cp.crasher2", KEY_U32, 0, FIELD(crasher2) },
    { "cp.faulted", KEY_U32, 0, FIELD(faulted_cpu) },
    { "cp.x2apic_cpu", KEY_U32, 0, FIELD(x2apic_cpu) },
    { "cp.paint", KEY_U32, 0, FIELD(paint) },
    { "cp.bsp", KEY_U32, 0, FIELD(bsp) },
    { "cp.initsipi", KEY_INT, 0, FIELD(initsipi) },
    { "cp.sentinel", KEY_PRESENT, 0, FIELD(sentinel) },
    { "cp.cet", KEY_PRESENT, 0, FIELD(cet) },
    { "cp.svm_entry", KEY_PRESENT, 0, FIELD(svm_entry_any) },
    { "cp.spin", KEY_RANGE, 0, FIELD(spin_lo) },
    { "cp.lib", KEY_RANGE, 0, FIELD(lib_lo) },
    { "cp.vmx_guest", KEY_RANGE, 0, FIELD(vmx_guest_lo) },
    { "cp.vmx_exit", KEY_RANGE, 0, FIELD(vmx_exit_lo) },
    { "cp.svm", KEY_FLAGS, 0, FIELD(svm) },
    { "cp.reentered", KEY_FLAGS, 0, FIELD(reentered) },
    { "cp.mce", KEY_FLAGS, 0, FIELD(mce) },
    { "cp.vmx", KEY_FLAGS, 0, FIELD(vmx) },
    { "cp.vmx_root", KEY_FLAGS, 0, FIELD(vmx_root) },
    { "cp.timedout", KEY_OUTCOME, CRASHPATH_OUTCOME_TIMED_OUT, FIELD(outcome) },
    { "cp.absent", KEY_OUTCOME, CRASHPATH_OUTCOME_NOT_PRESENT, FIELD(outcome) },
    { "cp.late", KEY_OUTCOME, CRASHPATH_OUTCOME_ANSWERED_LATE, FIELD(outcome) },
};
_Static_assert(FIELD(spin_hi) == FIELD(spin_lo) + 8 && FIELD(lib_hi) == FIELD(lib_lo) + 8 &&
               FIELD(vmx_guest_hi) == FIELD(vmx_guest_lo) + 8 && FIELD(vmx_exit_hi) == FIELD(vmx_exit_lo) + 8,
               "KEY_RANGE fields are LO then HI");
#undef FIELD

/* A token of the table: stored into its field; 0 if the key is not one of them. */
static int parse_table_key(const char *w, struct check_expect *e)
{
    uint8_t *base = (uint8_t *)e;

    for (uint32_t i = 0; i < sizeof(cmdline_keys) / sizeof(cmdline_keys[0]); i++) {
        const char *v;
        uint8_t *field = base + cmdline_keys[i].offset;

        if (!key_is(w, cmdline_keys[i].key))
            continue;
        v = value_of(w);
        switch (cmdline_keys[i].kind) {
        case KEY_U64: *(uint64_t *)(void *)field = parse_num(&v); break;
        case KEY_U32: *(uint32_t *)(void *)field = (uint32_t)parse_num(&v); break;
        case KEY_INT: *(int *)(void *)field = (int)parse_num(&v); break;
        case KEY_PRESENT: *(int *)(void *)field = 1; break;
        case KEY_RANGE: parse_range(v, (uint64_t *)(void *)field, (uint64_t *)(void *)(field + 8)); break;
        case KEY_FLAGS: parse_flags(v, field); break;
        default: parse_list(v, e, cmdline_keys[i].outcome); break;
        }
        return 1;
    }
    return 0;
}

void check_parse_cmdline(const char *s, struct check_expect *e)
{
    /* Every field starts from zero (volatile: no memset in the freestanding verifier). */
    for (uint32_t i = 0; i < sizeof(*e); i++)
        ((volatile uint8_t *)e)[i] = 0;
    for (uint32_t i = 0; i < CHECK_MAX_CPUS; i++)
        e->outcome[i] = CRASHPATH_OUTCOME_ANSWERED;
    e->x2apic_cpu = e->faulted_cpu = e->crasher2 = e->unpainted = CHECK_NO_CPU;
    e->canary_cpu = e->gif_cpu = e->wrecked_cpu = e->bsp = CHECK_NO_CPU;
    e->send = CHECK_SEND_ANY;
    while (*s) {
        const char *w = s, *v;

        while (*s && *s != ' ')
            s++;
        if (key_is(w, "cp.crasher") && value_of(w)[0] == 'a') {
            e->crasher = CHECK_ANY_CPU;
        } else if (parse_table_key(w, e)) {
            /* done */
        } else if (key_is(w, "cp.reason")) {
            uint32_t n = 0;

            for (v = value_of(w); v < s && n + 1 < sizeof(e->reason); v++)
                e->reason[n++] = *v;
            e->reason[n] = 0;
        } else if (key_is(w, "cp.wrecked")) {
            v = cpu_then(value_of(w), &e->wrecked_cpu);
            e->wrecked_rsp = parse_num(&v);
        } else if (key_is(w, "cp.canary")) {
            v = cpu_then(value_of(w), &e->canary_cpu);
            e->canary_va = parse_num(&v);
        } else if (key_is(w, "cp.gif")) {
            parse_range(cpu_then(value_of(w), &e->gif_cpu), &e->gif_lo, &e->gif_hi);
        } else if (key_is(w, "cp.send")) {
            v = value_of(w);
            e->send = *v == 'c' ? CRASHPATH_SEND_CLUSTER : *v == 'a' ? CRASHPATH_SEND_ALL_BUT_SELF
                                                                      : CRASHPATH_SEND_PER_CPU;
        }
        while (*s == ' ')
            s++;
    }
    if (e->crasher < CHECK_MAX_CPUS)
        e->outcome[e->crasher] = CRASHPATH_OUTCOME_CRASHER;
}

/* ---- the dump ---- */

/* The ELF header as Linux 6.1's parse_crash_elf64_headers() accepts it. */
static int check_ehdr(struct ctx *c, struct elf64_ehdr *h)
{
    if (rd(c, c->r->header, h, sizeof(*h)))
        return -1;
    if (!str_eq_n((const char *)h->e_ident, "\177ELF", 4) || h->e_ident[4] != 2 || h->e_ident[6] != 1 ||
        h->e_type != ET_CORE || h->e_machine != EM_X86_64 || h->e_version != EV_CURRENT || h->e_ehsize != 64 || h->e_phentsize != 56 ||
        !h->e_phnum || h->e_phoff != 64) {
        fail_msg(c, "ELF core header not sane: type, machine", h->e_type, h->e_machine);
        return -1;
    }
    return 0;
}

struct cpu_seen {
    uint8_t have_prs, have_note;
    uint32_t pid;
    uint64_t regs[27];
    struct crashpath_cpu_note note;
};

static struct cpu_seen seen[CHECK_MAX_CPUS];
static struct crashpath_info_note info;
static int have_info;

/* Notes per CPU buffer are under 1 KiB; a PT_NOTE claiming more than this is
 * not ours, and walking it note by note could take forever. */
#define MAX_NOTE_SEGMENT (1u << 20)

/* Walk one PT_NOTE as fs/proc/vmcore.c does: stop at namesz 0, never past p_memsz. */
static void walk_notes(struct ctx *c, const struct elf64_phdr *p)
{
    uint64_t off = 0;
    uint8_t hdr[12], name[12], desc[512];
    struct cpu_seen *last = 0;

    if (p->p_memsz > MAX_NOTE_SEGMENT || p->p_offset + p->p_memsz < p->p_offset) {
        fail_msg(c, "PT_NOTE too large or wrapping: offset, memsz", p->p_offset, p->p_memsz);
        return;
    }
    while (off + 12 <= p->p_memsz) {
        uint64_t namesz, descsz, nsz, dsz;
        uint32_t type;

        if (rd(c, p->p_offset + off, hdr, 12))
            return;
        namesz = u32_at(hdr);
        descsz = u32_at(hdr + 4);
        type = u32_at(hdr + 8);
        if (!namesz)
            return;
        nsz = (namesz + 3) & ~3ull;       /* 64-bit: no wrap for namesz near 4 GiB */
        dsz = (descsz + 3) & ~3ull;
        if (off + 12 + nsz + dsz > p->p_memsz) {
            fail_msg(c, "note runs past p_memsz (the kernel would drop it): namesz, descsz", namesz, descsz);
            return;
        }
        if (nsz <= sizeof(name) && dsz <= sizeof(desc) && !rd(c, p->p_offset + off + 12, name, (uint32_t)nsz) &&
            !rd(c, p->p_offset + off + 12 + nsz, desc, dsz)) {
            if (namesz == 5 && str_eq_n((const char *)name, "CORE", 5) && type == NT_PRPSINFO &&
                descsz == PRPSINFO_DESC_SIZE)
                c->res->prpsinfo++;
            if (namesz == 5 && str_eq_n((const char *)name, "CORE", 5) && type == NT_PRSTATUS &&
                descsz == PRSTATUS_SIZE) {
                uint32_t pid = u32_at(desc + PR_PID);

                c->res->prstatus++;
                if (pid >= 1 && pid <= CHECK_MAX_CPUS) {
                    last = &seen[pid - 1];
                    last->have_prs = 1;
                    last->pid = pid;
                    for (uint32_t i = 0; i < 27; i++)
                        last->regs[i] = u64_at(desc + PR_REG + i * 8);
                } else {
                    fail_msg(c, "NT_PRSTATUS with pr_pid out of range", pid, 0);
                }
            } else if (namesz == 10 && str_eq_n((const char *)name, "CRASHPATH", 10) &&
                       type == CRASHPATH_NT_CPU && descsz == sizeof(struct crashpath_cpu_note)) {
                struct crashpath_cpu_note n;

                __builtin_memcpy(&n, desc, sizeof(n));
                c->res->cpu_notes++;
                if (n.cpu_index < CHECK_MAX_CPUS) {
                    seen[n.cpu_index].have_note = 1;
                    seen[n.cpu_index].note = n;
                }
                (void)last;
            } else if (namesz == 10 && str_eq_n((const char *)name, "CRASHPATH", 10) &&
                       type == CRASHPATH_NT_CRASH_INFO && descsz == sizeof(struct crashpath_info_note)) {
                __builtin_memcpy(&info, desc, sizeof(info));
                have_info = 1;
            }
        }
        off += 12 + nsz + dsz;
    }
}

/* Was CPU i stopped in the hypervisor's own role code, where the row set up
 * what the dump must show (sentinels, a painted stack)? Not a CPU that ran a
 * guest (its VM-exit handler called in), nor a CPU that crashed too and lost
 * the election (it may have been caught before or inside crashpath_crash). */
static int stopped_in_its_role(const struct ctx *c, uint32_t i)
{
    return !c->e->svm[i] && !c->e->vmx[i] && !(seen[i].note.flags & (CRASHPATH_CPUF_LATE_CRASHER | CRASHPATH_CPUF_VIA_VMEXIT)) &&
           c->e->unpainted != i;
}

/* The outcome the row expects, and whether this CPU's registers are to be
 * judged: a CPU that answered after the crasher stopped waiting still saved
 * them; one merely timed out (and may answer later) is not judged. */
static int check_outcome(struct ctx *c, uint32_t i, const struct cpu_seen *s)
{
    uint32_t want = c->e->outcome[i], got = s->note.outcome;

    if (!s->have_note) {
        fail_msg(c, "no crashpath note for CPU", i, 0);
        return 0;
    }
    if (got != want && !(want == CRASHPATH_OUTCOME_TIMED_OUT && got == CRASHPATH_OUTCOME_ANSWERED_LATE)) {
        fail_msg(c, "CPU outcome differs: cpu, outcome", i, got);
        return 0;
    }
    if (got == CRASHPATH_OUTCOME_ANSWERED) {
        c->res->answered++;
        if (s->note.answer_tsc > c->res->bench.last_answer_tsc)
            c->res->bench.last_answer_tsc = s->note.answer_tsc;
    }
    return got == CRASHPATH_OUTCOME_CRASHER || got == CRASHPATH_OUTCOME_ANSWERED ||
           (got == CRASHPATH_OUTCOME_ANSWERED_LATE && want == CRASHPATH_OUTCOME_ANSWERED_LATE);
}

/* Saved, once, as gdb's thread index + 1, and the interrupted context:
 * never crashpath's own frame, with one exception, the losing crasher
 * caught by the shootdown NMI inside crashpath_crash before it could publish
 * its caller's registers (its note then lacks the late-crasher flag). Only a
 * losing crasher saves with NMIs open, so only there may the shootdown NMI
 * cut a save short and have it finished again (saves 2). */
static int check_registers(struct ctx *c, uint32_t i, const struct cpu_seen *s)
{
    uint64_t rip = s->regs[REG_RIP];

    if (!(s->note.flags & CRASHPATH_CPUF_REGS_SAVED) || !s->have_prs) {
        fail_msg(c, "registers not saved: cpu, flags", i, s->note.flags);
        return 0;
    }
    if (s->pid != i + 1)
        fail_msg(c, "pr_pid is not index + 1: cpu, pid", i, s->pid);
    if (s->note.saves != 1 && !(s->note.saves == 2 && (s->note.flags & CRASHPATH_CPUF_LATE_CRASHER)))
        fail_msg(c, "registers not saved exactly once: cpu, flags:saves", i,
                 (uint64_t)s->note.flags << 32 | s->note.saves);
    if (c->e->lib_hi && rip >= c->e->lib_lo && rip < c->e->lib_hi &&
        !(c->e->unpainted == i && !(s->note.flags & CRASHPATH_CPUF_LATE_CRASHER)))
        fail_msg(c, "saved RIP is inside crashpath itself: cpu, rip", i, rip);
    return 1;
}

/* Parked means parked: nothing may bring a CPU back into the victim path
 * unless the row made it (an #MC's IRET). A losing crasher, which parks with
 * NMIs open, takes the shootdown NMI and its own self-NMI after. Machine
 * checks the row injected went through crashpath_mce_crash, which counts them; none
 * came from anywhere else. */
static void check_disturbances(struct ctx *c, uint32_t i, const struct cpu_seen *s)
{
    if (c->e->reentered[i] ? !s->note.reentries
                           : s->note.reentries && !(s->note.flags & CRASHPATH_CPUF_LATE_CRASHER))
        fail_msg(c, c->e->reentered[i] ? "no re-entry recorded though the row made one: cpu, reentries"
                                       : "parked CPU entered the victim path again: cpu, reentries",
                 i, s->note.reentries);
    /* Under CET a victim that did not crash itself was stopped by the NMI;
     * one whose note says it came in as a late crasher faulted into the
     * host's panic path instead, and under CET that is a #CP: an entry
     * without ENDBR64, or a RET or IRET out of step with the shadow stack. */
    if (c->e->cet && c->e->unpainted != i && (s->note.flags & CRASHPATH_CPUF_LATE_CRASHER))
        fail_msg(c, "victim faulted into crashpath_crash under CET (a #CP?): cpu, flags", i, s->note.flags);
    if (c->e->mce[i] ? !s->note.machine_checks : s->note.machine_checks != 0)
        fail_msg(c, c->e->mce[i] ? "no machine check counted though the row injected one: cpu, machine_checks"
                                 : "machine check counted that the row did not inject: cpu, machine_checks",
                 i, s->note.machine_checks);
}

/* What the row did to this one CPU: a fault in its stop hook, a switch to
 * x2APIC behind crashpath's back, a wrecked stack. A victim on a wrecked
 * stack (guard page, non-canonical RSP) kept its interrupted RSP and took
 * the NMI itself, on a stack of crashpath's: not a #PF or #SS in delivery,
 * then a #DF whose handler panicked into crashpath_crash (a late crasher),
 * with a saved RIP the SDM leaves undefined (QEMU happens to keep it). */
static void check_row_role(struct ctx *c, uint32_t i, const struct cpu_seen *s)
{
    if (c->e->faulted_cpu == i &&
        (s->note.flags & (CRASHPATH_CPUF_FAULTED | CRASHPATH_CPUF_HOOK_CALLED | CRASHPATH_CPUF_HOOK_DONE)) !=
            (CRASHPATH_CPUF_FAULTED | CRASHPATH_CPUF_HOOK_CALLED))
        fail_msg(c, "note does not say the stop hook faulted: cpu, flags", i, s->note.flags);
    if (c->e->x2apic_cpu == i && s->note.apic_mode != CRASHPATH_APIC_X2APIC)
        fail_msg(c, "APIC mode in the note is not the one at crash time: cpu, mode", i, s->note.apic_mode);
    if (c->e->wrecked_cpu == i && s->regs[REG_RSP] != c->e->wrecked_rsp)
        fail_msg(c, "wrecked-stack victim's saved RSP is not the one it ran on: cpu, rsp", i, s->regs[REG_RSP]);
    if (c->e->wrecked_cpu == i && (s->note.flags & (CRASHPATH_CPUF_LATE_CRASHER | CRASHPATH_CPUF_FAULTED)))
        fail_msg(c, "wrecked-stack victim took a double fault, not the NMI: cpu, flags", i, s->note.flags);
}

/* SVM guests park through the VM exit (or, after injected NMIs, possibly
 * through crashpath_nmi_crash) and leave SVM; the CLGI CPU takes its NMI right after
 * STGI, through crashpath_nmi_crash. */
static void check_svm(struct ctx *c, uint32_t i, const struct cpu_seen *s)
{
    if (c->e->svm[i] && (!(s->note.flags & CRASHPATH_CPUF_SVM_LEFT) ||
                         (!c->e->svm_entry_any && !(s->note.flags & CRASHPATH_CPUF_VIA_VMEXIT))))
        fail_msg(c, "SVM guest CPU did not park through the VM exit and leave SVM: cpu, flags", i,
                 s->note.flags);
    if ((c->e->svm[i] || c->e->gif_cpu == i) && !(s->note.efer & EFER_SVME))
        fail_msg(c, "note's EFER does not show SVM on at the crash: cpu, efer", i, s->note.efer);
    if (c->e->gif_cpu == i) {
        if ((s->note.flags & (CRASHPATH_CPUF_VIA_VMEXIT | CRASHPATH_CPUF_SVM_LEFT)) != CRASHPATH_CPUF_SVM_LEFT)
            fail_msg(c, "CLGI CPU did not leave SVM through crashpath_nmi_crash: cpu, flags", i, s->note.flags);
        if (s->regs[REG_RIP] < c->e->gif_lo || s->regs[REG_RIP] >= c->e->gif_hi)
            fail_msg(c, "CLGI CPU's NMI not taken right after STGI: cpu, rip", i, s->regs[REG_RIP]);
    }
}

/* VMX guests park through the VM exit: crashpath records the exit handler's registers, so
 * the saved RIP is at its call of crashpath_nmi_vmexit and RBX holds the guest's RIP, which
 * must be in the guest's loop. They, and the CPUs in VMX root operation at the crash (which
 * park through crashpath_nmi_crash, or crash), must have left VMX (VMCLEAR, VMXOFF), with CR4.VMXE on
 * when their registers were saved. No other CPU was in VMX operation: none may say it left
 * VMX, nor that it had CR4.VMXE without the host's record. */
static void check_vmx(struct ctx *c, uint32_t i, const struct cpu_seen *s)
{
    uint32_t left = s->note.flags & (CRASHPATH_CPUF_VMX_LEFT | CRASHPATH_CPUF_VIA_VMEXIT);

    if (c->e->vmx[i]) {
        if (left != (CRASHPATH_CPUF_VMX_LEFT | CRASHPATH_CPUF_VIA_VMEXIT))
            fail_msg(c, "VMX guest CPU did not park through the VM exit and leave VMX: cpu, flags", i, s->note.flags);
        if (c->e->vmx_exit_hi && (s->regs[REG_RIP] < c->e->vmx_exit_lo || s->regs[REG_RIP] >= c->e->vmx_exit_hi))
            fail_msg(c, "VMX guest CPU's saved RIP is not the exit handler's offer: cpu, rip", i, s->regs[REG_RIP]);
        if (c->e->vmx_guest_hi &&
            (s->regs[REG_RBX] < c->e->vmx_guest_lo || s->regs[REG_RBX] >= c->e->vmx_guest_hi))
            fail_msg(c, "VMX guest RIP at the NMI exit (RBX) not in the guest loop: cpu, rbx", i, s->regs[REG_RBX]);
    } else if (c->e->vmx_root[i]) {
        if (left != CRASHPATH_CPUF_VMX_LEFT)
            fail_msg(c, "CPU in VMX root operation did not leave VMX outside a VM exit: cpu, flags", i, s->note.flags);
    } else if (s->note.flags & (CRASHPATH_CPUF_VMX_LEFT | CRASHPATH_CPUF_VMX_UNKNOWN)) {
        fail_msg(c, "CPU the row kept out of VMX says it was in VMX operation: cpu, flags", i, s->note.flags);
    }
    if ((c->e->vmx[i] || c->e->vmx_root[i]) && !(s->note.cr4 & CR4_VMXE))
        fail_msg(c, "note's CR4 does not show VMXE at the crash: cpu, cr4", i, s->note.cr4);
}

/* Spinning victims are judged by their sentinels and their RIP in the spin
 * loop; not the CLGI CPU, which loops in its own STGI/CLGI code. */
static void check_spinner(struct ctx *c, uint32_t i, const struct cpu_seen *s)
{
    if (s->note.outcome != CRASHPATH_OUTCOME_ANSWERED || !c->e->sentinel || !stopped_in_its_role(c, i) ||
        c->e->gif_cpu == i)
        return;
    for (uint32_t r = 8; r <= 15; r++) {
        /* pr_reg holds r8..r15 at indices 9 (r8) down to 0 (r15) */
        uint32_t idx = r <= 11 ? REG_R8 - (r - 8) : 3 - (r - 12);

        if (s->regs[idx] != mark_sentinel(i, r)) {
            fail_msg(c, "sentinel register lost: cpu, value", i, s->regs[idx]);
            break;
        }
    }
    if (s->regs[REG_RIP] < c->e->spin_lo || s->regs[REG_RIP] >= c->e->spin_hi)
        fail_msg(c, "victim RIP not in its spin loop: cpu, rip", i, s->regs[REG_RIP]);
}

static void check_cpu(struct ctx *c, uint32_t i)
{
    const struct cpu_seen *s = &seen[i];

    if (!check_outcome(c, i, s) || !check_registers(c, i, s))
        return;
    check_disturbances(c, i, s);
    check_row_role(c, i, s);
    check_svm(c, i, s);
    check_vmx(c, i, s);
    check_spinner(c, i, s);
}

/* A CPU the shootdown had to reach: started, and not the CPU that won. */
static int shot_at(const struct ctx *c, uint32_t i)
{
    return i != info.crashing_cpu && c->e->outcome[i] != CRASHPATH_OUTCOME_NOT_PRESENT;
}

/* The ICR writes a shootdown by send mode `used` takes: one in all, one per
 * CPU shot at, or one per x2APIC cluster (ID >> 4, SDM vol. 3, 11.12.10.2)
 * holding a CPU shot at, the APIC IDs read from the CPU notes. */
static uint32_t icr_writes_for(const struct ctx *c, uint32_t used)
{
    uint32_t n = 0, cpus = c->e->cpus < CHECK_MAX_CPUS ? c->e->cpus : CHECK_MAX_CPUS;

    if (used == CRASHPATH_SEND_ALL_BUT_SELF)
        return 1;
    for (uint32_t i = 0; i < cpus; i++) {
        int first = shot_at(c, i);

        for (uint32_t j = 0; first && used == CRASHPATH_SEND_CLUSTER && j < i; j++)
            if (shot_at(c, j) && seen[j].note.apic_id >> 4 == seen[i].note.apic_id >> 4)
                first = 0;
        n += (uint32_t)first;
    }
    return n;
}

/* cp.send: how the shootdown must have gone out, and in how many ICR writes. */
static void check_send(struct ctx *c)
{
    if (c->e->send == CHECK_SEND_ANY)
        return;
    if (info.send_used != c->e->send)
        fail_msg(c, "crash-info: send mode used, expected", info.send_used, c->e->send);
    else if (info.icr_writes != icr_writes_for(c, info.send_used))
        fail_msg(c, "crash-info: ICR writes, expected", info.icr_writes, icr_writes_for(c, info.send_used));
}

static void check_info(struct ctx *c)
{
    uint32_t timed_out = 0;
    uint32_t n = 0;

    if (!have_info) {
        fail_msg(c, "no crash-info note", 0, 0);
        return;
    }
    for (uint32_t i = 0; i < c->e->cpus && i < CHECK_MAX_CPUS; i++)
        timed_out += c->e->outcome[i] == CRASHPATH_OUTCOME_TIMED_OUT ||
                     c->e->outcome[i] == CRASHPATH_OUTCOME_ANSWERED_LATE;
    if (info.crashing_cpu != c->e->crasher)
        fail_msg(c, "crash-info: crashing CPU", info.crashing_cpu, c->e->crasher);
    if (info.nr_cpus != c->e->cpus)
        fail_msg(c, "crash-info: CPU count", info.nr_cpus, c->e->cpus);
    if (info.nr_not_answered != timed_out)
        fail_msg(c, "crash-info: CPUs not answering", info.nr_not_answered, timed_out);
    while (c->e->reason[n] && n < sizeof(info.reason))
        n++;
    if (!str_eq_n(info.reason, c->e->reason, n + 1))
        fail_msg(c, "crash-info: reason differs", 0, 0);
    if (info.integrity != (c->e->corrupt ? CRASHPATH_INTEGRITY_CORRUPT : CRASHPATH_INTEGRITY_OK) ||
        info.corrupt_segments != c->e->corrupt)
        fail_msg(c, "crash-info: segment integrity, corrupt segments", info.integrity, info.corrupt_segments);
    if (!(info.tsc_crash_entry <= info.tsc_gates_done && info.tsc_gates_done <= info.tsc_nmis_sent &&
          info.tsc_nmis_sent <= info.tsc_wait_end &&
          info.tsc_wait_end <= info.tsc_handoff))
        fail_msg(c, "crash-info: timestamps out of order", info.tsc_nmis_sent, info.tsc_handoff);
    check_send(c);
}

/* The mark the hypervisor left in low memory, read through the PT_LOAD
 * that covers it: in old memory that is the backup copy, because the kdump
 * kernel is free to reuse the real low memory. */
static void check_lowmem(struct ctx *c, const struct elf64_phdr *ph, uint32_t n)
{
    uint8_t page[4096];

    for (uint32_t i = 0; i < n; i++) {
        const struct elf64_phdr *p = &ph[i];

        if (p->p_type != PT_LOAD || c->e->lowmem < p->p_paddr || c->e->lowmem + sizeof(page) > p->p_paddr + p->p_memsz)
            continue;
        if (c->r->backup_expected && p->p_offset == p->p_paddr) {
            fail_msg(c, "low memory PT_LOAD does not point at a backup", p->p_paddr, p->p_offset);
            return;
        }
        if (rd(c, p->p_offset + (c->e->lowmem - p->p_paddr), page, sizeof(page)))
            return;
        for (uint32_t b = 0; b < sizeof(page); b++)
            if (page[b] != mark_lowmem_byte(b)) {
                fail_msg(c, "low-memory mark lost at offset, byte", b, page[b]);
                return;
            }
        return;
    }
    fail_msg(c, "no PT_LOAD covers the low-memory mark", c->e->lowmem, 0);
}

/* NT_PRPSINFO's PT_NOTE, one per CPU and the crash-info one, then the PT_LOADs (a few per
 * memory-map range). */
#define MAX_PHDRS (1u + CRASHPATH_MAX_CPUS + 1u + 4u * CRASHPATH_MAX_MEMMAP)

/* Dump offset of a virtual address, through the PT_LOADs' p_vaddr. */
static int vaddr_to_offset(const struct elf64_phdr *ph, uint32_t n, uint64_t va, uint64_t len, uint64_t *off)
{
    for (uint32_t i = 0; i < n; i++)
        if (ph[i].p_type == PT_LOAD && va >= ph[i].p_vaddr && va + len <= ph[i].p_vaddr + ph[i].p_memsz && va + len > va) {
            *off = ph[i].p_offset + (va - ph[i].p_vaddr);
            return 0;
        }
    return -1;
}

/* How deep the NMI path went on a victim's stack: the hypervisor painted
 * e->paint bytes below RSP with 0xa5; the lowest byte that changed marks
 * the deepest write (hardware frame included). */
static void measure_stacks(struct ctx *c, const struct elf64_phdr *ph, uint32_t n)
{
    static uint8_t stack[4096];
    uint32_t len = c->e->paint;

    if (!len || len > sizeof(stack))
        return;
    for (uint32_t i = 0; i < c->e->cpus && i < CHECK_MAX_CPUS; i++) {
        uint64_t rsp = seen[i].regs[REG_RSP], off;
        uint32_t low = 0;

        /* only a stack the role painted; a re-entered CPU stacked a second
         * entry below the first */
        if (!seen[i].have_note || seen[i].note.outcome != CRASHPATH_OUTCOME_ANSWERED || !seen[i].have_prs ||
            !stopped_in_its_role(c, i) || seen[i].note.reentries || c->e->wrecked_cpu == i)
            continue;
        /* 8 bytes right below RSP hold the painter's saved register */
        if (vaddr_to_offset(ph, n, rsp - 8 - len, len, &off) || rd(c, off, stack, len))
            continue;
        while (low < len && stack[low] == 0xa5)
            low++;
        c->res->bench.stack_used[i] = (uint16_t)(len + 8 - low);
        if (low == 0)
            fail_msg(c, "victim stack use exceeds the painted area: cpu, bytes", i, len);
        if (c->res->bench.stack_used[i] > c->res->bench.stack_max)
            c->res->bench.stack_max = c->res->bench.stack_used[i];
    }
}

/* The canaries above the IST-stack victim's RSP: a frame pushed at the IST
 * top (a gate that kept its IST) would have overwritten the highest ones. */
static void check_canaries(struct ctx *c, const struct elf64_phdr *ph, uint32_t n)
{
    uint64_t v[MARK_CANARY_QWORDS], off;
    uint32_t cpu = c->e->canary_cpu;

    if (vaddr_to_offset(ph, n, c->e->canary_va, sizeof(v), &off) || rd(c, off, v, sizeof(v))) {
        fail_msg(c, "IST canaries not in the dump: cpu, address", cpu, c->e->canary_va);
        return;
    }
    for (uint32_t i = 0; i < MARK_CANARY_QWORDS; i++)
        if (v[i] != mark_canary(cpu, i)) {
            fail_msg(c, "IST stack canary overwritten (a frame landed on the IST top): cpu, qword", cpu, i);
            return;
        }
    if (cpu < CHECK_MAX_CPUS && seen[cpu].have_prs && seen[cpu].regs[REG_RSP] != c->e->canary_va)
        fail_msg(c, "IST-stack victim's saved RSP is not below its canaries: cpu, rsp", cpu, seen[cpu].regs[REG_RSP]);
}

void check_report_bench(const struct check_result *res, uint32_t cpus, void (*say)(const char *line))
{
    struct line l = { .len = 0 };
    const struct crashpath_info_note *in = &res->bench.info;

    l_str(&l, "BENCH khz=");
    l_num(&l, in->tsc_khz, 0);
    l_str(&l, " entry=");
    l_num(&l, in->tsc_crash_entry, 0);
    l_str(&l, " gates=");
    l_num(&l, in->tsc_gates_done, 0);
    l_str(&l, " sent=");
    l_num(&l, in->tsc_nmis_sent, 0);
    l_str(&l, " wait_end=");
    l_num(&l, in->tsc_wait_end, 0);
    l_str(&l, " last_answer=");
    l_num(&l, res->bench.last_answer_tsc, 0);
    l_str(&l, " handoff=");
    l_num(&l, in->tsc_handoff, 0);
    l_str(&l, " integrity_ticks=");
    l_num(&l, in->integrity_ticks, 0);
    l_str(&l, " icr_writes=");
    l_num(&l, in->icr_writes, 0);
    l_str(&l, " send_used=");
    l_num(&l, in->send_used, 0);
    l_str(&l, " stack_max=");
    l_num(&l, res->bench.stack_max, 0);
    say(l.buf);
    for (uint32_t i = 0; i < cpus && i < CHECK_MAX_CPUS; i++) {
        if (!res->bench.stack_used[i])
            continue;
        l.len = 0;
        l_str(&l, "STACK cpu=");
        l_num(&l, i, 0);
        l_str(&l, " bytes=");
        l_num(&l, res->bench.stack_used[i], 0);
        say(l.buf);
    }
}

uint32_t check_parked_cpus(uint32_t *cpu, uint32_t *apic_id, uint32_t max)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < CHECK_MAX_CPUS && n < max; i++)
        if (seen[i].have_note && (seen[i].note.outcome == CRASHPATH_OUTCOME_ANSWERED ||
                                  seen[i].note.outcome == CRASHPATH_OUTCOME_ANSWERED_LATE)) {
            cpu[n] = i;
            apic_id[n++] = seen[i].note.apic_id;
        }
    return n;
}

void check_dump(const struct check_reader *r, const struct check_expect *e, struct check_result *res,
                void (*say)(const char *line))
{
    static struct elf64_phdr ph[MAX_PHDRS];
    struct ctx c = { r, e, res, say };
    struct elf64_ehdr h;
    uint32_t notes = 0, loads = 0, n;

    have_info = 0;
    for (uint32_t i = 0; i < CHECK_MAX_CPUS; i++)
        seen[i].have_prs = seen[i].have_note = 0;
    if (check_ehdr(&c, &h))
        return;
    n = h.e_phnum < MAX_PHDRS ? h.e_phnum : MAX_PHDRS;
    if (rd(&c, r->header + h.e_phoff, ph, (uint64_t)n * sizeof(ph[0])))
        return;
    for (uint32_t i = 0; i < n; i++) {
        if (ph[i].p_type == PT_NOTE) {
            if (loads) {
                fail_msg(&c, "PT_NOTE after a PT_LOAD (the kernel would lose it): index", i, 0);
                return;
            }
            notes++;
            walk_notes(&c, &ph[i]);
        } else if (ph[i].p_type == PT_LOAD) {
            loads++;
        }
    }
    if (!notes || !loads)
        fail_msg(&c, "segments missing: PT_NOTE, PT_LOAD", notes, loads);
    /* libdwfl (eu-stack) attaches to a core only through its NT_PRPSINFO. */
    if (res->prpsinfo != 1)
        fail_msg(&c, "NT_PRPSINFO notes (elfutils reads the core only with exactly one), seen", res->prpsinfo, 0);
    if (res->cpu_notes != e->cpus)
        fail_msg(&c, "crashpath CPU notes, expected", res->cpu_notes, e->cpus);
    /* cp.crasher=any: judge the dump against the CPU the crash-info note names. */
    if (e->crasher == CHECK_ANY_CPU) {
        static struct check_expect named;

        if (!have_info || info.crashing_cpu >= e->cpus || info.crashing_cpu >= CHECK_MAX_CPUS) {
            fail_msg(&c, "cp.crasher=any: crash-info names no configured crashing CPU", have_info ? info.crashing_cpu : 0,
                     e->cpus);
            return;
        }
        named = *e;
        named.crasher = info.crashing_cpu;
        named.outcome[named.crasher] = CRASHPATH_OUTCOME_CRASHER;
        named.reentered[named.crasher] = 0;   /* a victim hit by #MC after parking is re-entered; the crasher never */
        c.e = &named;
        e = &named;
    }
    /* Two CPUs crashed at once: exactly one of them was elected, the other is
     * an answered victim. Judge the rest against the one that won. */
    if (e->crasher2 < CHECK_MAX_CPUS && have_info && info.crashing_cpu == e->crasher2) {
        static struct check_expect swapped;

        swapped = *e;
        swapped.outcome[e->crasher] = CRASHPATH_OUTCOME_ANSWERED;
        swapped.outcome[e->crasher2] = CRASHPATH_OUTCOME_CRASHER;
        swapped.crasher = e->crasher2;
        swapped.unpainted = e->crasher;
        c.e = &swapped;
        e = &swapped;
    } else if (e->crasher2 < CHECK_MAX_CPUS) {
        static struct check_expect loser;

        loser = *e;
        loser.outcome[e->crasher2] = CRASHPATH_OUTCOME_ANSWERED;
        loser.unpainted = e->crasher2;
        c.e = &loser;
        e = &loser;
    }
    for (uint32_t i = 0; i < e->cpus && i < CHECK_MAX_CPUS; i++)
        check_cpu(&c, i);
    check_info(&c);
    if (have_info)
        res->bench.info = info;
    if (e->lowmem)
        check_lowmem(&c, ph, n);
    if (e->canary_cpu != CHECK_NO_CPU)
        check_canaries(&c, ph, n);
    measure_stacks(&c, ph, n);
}
