/* SPDX-License-Identifier: BSD-2-Clause */
/* test_notes.c — crash-note layout: NT_PRSTATUS equal to glibc's struct elf_prstatus field by
 * field, crashpath's own notes, terminators, and well-formed areas for CPUs that never answer. */
#include <stddef.h>
#include <string.h>
#include <sys/procfs.h>
#include <sys/reg.h>
#include "cp/internal.h"
#include "sim.h"
#include "testlib.h"

static struct crashpath_config cfg;
static struct crashpath_cpu cpus[SIM_MAX_CPUS];

static uint32_t u32_at(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return v;
}

/* Walk an ELF note area as the kdump kernel does (fs/proc/vmcore.c): 12-byte
 * headers, name and descriptor padded to 4, stop at namesz == 0. Returns the
 * number of notes, or -1 if one runs past the area. */
static int walk_notes(const uint8_t *p, uint32_t size, uint32_t *types, const char **names)
{
    uint32_t off = 0;
    int n = 0;

    while (off + 12 <= size) {
        uint32_t namesz = u32_at(p + off), descsz = u32_at(p + off + 4);

        if (!namesz)
            return n;
        if (off + 12 + ((namesz + 3) & ~3u) + ((descsz + 3) & ~3u) > size)
            return -1;
        types[n] = u32_at(p + off + 8);
        names[n] = (const char *)p + off + 12;
        n++;
        off += 12 + ((namesz + 3) & ~3u) + ((descsz + 3) & ~3u);
    }
    return -1;
}

static void init(int n)
{
    sim_reset(n, CRASHPATH_APIC_X2APIC, NULL);
    sim_config(&cfg, cpus, n);
    cpus[n - 1].flags = 0;     /* the last CPU was never started */
    cpus[n - 1].idt_base = 0;
    CHECK_EQ(crashpath_init(&cfg), CRASHPATH_OK);
}

TEST(notes_prstatus_matches_glibc_elf_prstatus)
{
    CHECK_EQ(sizeof(struct elf_prstatus), 336);
    CHECK_EQ(offsetof(struct elf_prstatus, pr_pid), 32);
    CHECK_EQ(offsetof(struct elf_prstatus, pr_reg), 112);
    CHECK_EQ(offsetof(struct elf_prstatus, pr_fpvalid), 328);
    CHECK_EQ(sizeof(((struct elf_prstatus *)0)->pr_reg), 27 * 8);
    /* our frame is user_regs_struct's first 21 fields, in order */
    CHECK_EQ(offsetof(struct crashpath_regs, r15), R15 * 8);
    CHECK_EQ(offsetof(struct crashpath_regs, rbp), RBP * 8);
    CHECK_EQ(offsetof(struct crashpath_regs, rax), RAX * 8);
    CHECK_EQ(offsetof(struct crashpath_regs, rdi), RDI * 8);
    CHECK_EQ(offsetof(struct crashpath_regs, orig_rax), ORIG_RAX * 8);
    CHECK_EQ(offsetof(struct crashpath_regs, rip), RIP * 8);
    CHECK_EQ(offsetof(struct crashpath_regs, cs), CS * 8);
    CHECK_EQ(offsetof(struct crashpath_regs, rflags), EFLAGS * 8);
    CHECK_EQ(offsetof(struct crashpath_regs, rsp), RSP * 8);
    CHECK_EQ(offsetof(struct crashpath_regs, ss), SS * 8);
}

TEST(notes_saved_registers_read_back_through_glibc)
{
    struct crashpath_regs r;
    struct elf_prstatus prs;
    struct crashpath_cpu_note n;
    uint64_t *w = &r.r15;

    init(3);
    sim_self = &sim_cpus[1];
    sim_cpus[1].sel[1] = 0x18; sim_cpus[1].sel[2] = 0x20; sim_cpus[1].sel[3] = 0x28; sim_cpus[1].sel[4] = 0x30;
    sim_cpus[1].cr2 = 0xdead000;
    for (unsigned int i = 0; i < sizeof(r) / 8; i++)
        w[i] = 0x1000000000000000ull * (i % 15 + 1) + i;
    cp_notes_save_regs(&cp_state.cpus[1], &r);
    sim_self = NULL;

    sim_read_prstatus(1, &prs);
    CHECK_EQ(prs.pr_pid, 2);              /* logical index 1 + 1 */
    CHECK_EQ(prs.pr_ppid, 0);
    CHECK_EQ(prs.pr_fpvalid, 0);
    CHECK_EQ(prs.pr_reg[R15], r.r15);
    CHECK_EQ(prs.pr_reg[R14], r.r14);
    CHECK_EQ(prs.pr_reg[R13], r.r13);
    CHECK_EQ(prs.pr_reg[R12], r.r12);
    CHECK_EQ(prs.pr_reg[RBP], r.rbp);
    CHECK_EQ(prs.pr_reg[RBX], r.rbx);
    CHECK_EQ(prs.pr_reg[R11], r.r11);
    CHECK_EQ(prs.pr_reg[R10], r.r10);
    CHECK_EQ(prs.pr_reg[R9], r.r9);
    CHECK_EQ(prs.pr_reg[R8], r.r8);
    CHECK_EQ(prs.pr_reg[RAX], r.rax);
    CHECK_EQ(prs.pr_reg[RCX], r.rcx);
    CHECK_EQ(prs.pr_reg[RDX], r.rdx);
    CHECK_EQ(prs.pr_reg[RSI], r.rsi);
    CHECK_EQ(prs.pr_reg[RDI], r.rdi);
    CHECK_EQ(prs.pr_reg[ORIG_RAX], r.orig_rax);
    CHECK_EQ(prs.pr_reg[RIP], r.rip);
    CHECK_EQ(prs.pr_reg[CS], r.cs);
    CHECK_EQ(prs.pr_reg[EFLAGS], r.rflags);
    CHECK_EQ(prs.pr_reg[RSP], r.rsp);
    CHECK_EQ(prs.pr_reg[SS], r.ss);
    CHECK_EQ(prs.pr_reg[FS_BASE], sim_cpus[1].fs_base);
    CHECK_EQ(prs.pr_reg[GS_BASE], sim_cpus[1].gs_base);
    CHECK_EQ(prs.pr_reg[DS], 0x18);
    CHECK_EQ(prs.pr_reg[ES], 0x20);
    CHECK_EQ(prs.pr_reg[FS], 0x28);
    CHECK_EQ(prs.pr_reg[GS], 0x30);

    sim_read_cpu_note(1, &n);
    CHECK_EQ(n.format, CRASHPATH_NOTE_FORMAT);
    CHECK_EQ(n.cpu_index, 1);
    CHECK_EQ(n.apic_id, sim_cpus[1].apic_id);
    CHECK_EQ(n.apic_mode, CRASHPATH_APIC_X2APIC);
    CHECK_EQ(n.saves, 1);
    CHECK(n.flags & CRASHPATH_CPUF_REGS_SAVED);
    CHECK_EQ(n.cr0, sim_cpus[1].cr0);
    CHECK_EQ(n.cr2, 0xdead000);
    CHECK_EQ(n.cr3, sim_cpus[1].cr3);
    CHECK_EQ(n.cr4, sim_cpus[1].cr4);
    CHECK_EQ(n.efer, sim_cpus[1].efer);
}

TEST(notes_area_is_well_formed_before_any_crash)
{
    uint32_t types[8];
    const char *names[8];

    init(3);
    for (int i = 0; i < 3; i++) {
        const uint8_t *p = sim_cpus[i].notes;
        struct crashpath_cpu_note n;

        CHECK_EQ(walk_notes(p, CRASHPATH_CPU_NOTES_SIZE, types, names), 2);
        CHECK_EQ(types[0], 1);                          /* NT_PRSTATUS */
        CHECK(strcmp(names[0], "CORE") == 0);
        CHECK_EQ(types[1], CRASHPATH_NT_CPU);
        CHECK(strcmp(names[1], "CRASHPATH") == 0);
        /* exact header bytes, as docs/notes.md gives them */
        CHECK_EQ(u32_at(p + 0), 5);
        CHECK_EQ(u32_at(p + 4), 336);
        CHECK_EQ(u32_at(p + 8), 1);
        CHECK_EQ(u32_at(p + 20 + 32), (uint32_t)i + 1);     /* pr_pid */
        CHECK_EQ(u32_at(p + 356), 10);
        CHECK_EQ(u32_at(p + 360), sizeof(struct crashpath_cpu_note));
        CHECK_EQ(u32_at(p + 364), CRASHPATH_NT_CPU);
        for (int b = 460; b < 472; b++)
            CHECK_EQ(p[b], 0);                              /* the terminator */
        sim_read_cpu_note(i, &n);
        CHECK_EQ(n.outcome, i == 2 ? CRASHPATH_OUTCOME_NOT_PRESENT : CRASHPATH_OUTCOME_NONE);
        CHECK_EQ(n.apic_id, sim_cpus[i].apic_id);
        CHECK_EQ(n.saves, 0);
    }
}

TEST(notes_crash_info_layout)
{
    uint32_t types[4];
    const char *names[4];
    struct crashpath_info_note info;

    init(4);
    CHECK_EQ(walk_notes(sim_info_note, CRASHPATH_INFO_NOTE_SIZE, types, names), 1);
    CHECK_EQ(types[0], CRASHPATH_NT_CRASH_INFO);
    CHECK(strcmp(names[0], "CRASHPATH") == 0);
    CHECK_EQ(u32_at(sim_info_note + 4), sizeof(struct crashpath_info_note));
    CHECK_EQ(sizeof(struct crashpath_info_note), 368);
    sim_read_info(&info);
    CHECK_EQ(info.format, CRASHPATH_NOTE_FORMAT);
    CHECK_EQ(info.version, CRASHPATH_VERSION);
    CHECK_EQ(info.nr_cpus, 4);
    CHECK_EQ(info.crashing_cpu, 0xffffffffu);
    CHECK_EQ(info.timeout_ms, 5000);
    CHECK_EQ(info.tsc_khz, SIM_TSC_KHZ);
}

TEST(notes_crashpath_structs_match_docs_offsets)
{
    CHECK_EQ(offsetof(struct crashpath_cpu_note, outcome), 16);
    CHECK_EQ(offsetof(struct crashpath_cpu_note, flags), 20);
    CHECK_EQ(offsetof(struct crashpath_cpu_note, saves), 24);
    CHECK_EQ(offsetof(struct crashpath_cpu_note, cr0), 32);
    CHECK_EQ(offsetof(struct crashpath_cpu_note, efer), 64);
    CHECK_EQ(offsetof(struct crashpath_cpu_note, answer_tsc), 72);
    CHECK_EQ(offsetof(struct crashpath_info_note, tsc_khz), 32);
    CHECK_EQ(offsetof(struct crashpath_info_note, tsc_handoff), 64);
    CHECK_EQ(offsetof(struct crashpath_info_note, reason), 72);
    CHECK_EQ(offsetof(struct crashpath_info_note, not_answered), 200);
    CHECK_EQ(offsetof(struct crashpath_info_note, integrity), 328);
    CHECK_EQ(offsetof(struct crashpath_info_note, corrupt_segments), 332);
    CHECK_EQ(offsetof(struct crashpath_info_note, integrity_ticks), 336);
}
