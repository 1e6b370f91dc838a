/* SPDX-License-Identifier: BSD-2-Clause */
/* test_check.c — the shared dump checker (tests/kdump/check.c) on hand-built dumps, including
 * the inputs the fuzzer found: it must judge quickly and never read past what it was given. */
#include <stdio.h>
#include <string.h>
#include "check.h"
#include "testlib.h"

static uint8_t dump[4096];

static int read_dump(void *ctx, uint64_t off, void *dst, uint64_t len)
{
    (void)ctx;
    if (off > sizeof(dump) || len > sizeof(dump) - off)
        return -1;
    memcpy(dst, dump + off, len);
    return 0;
}

static void quiet(const char *line)
{
    (void)line;
}

static void put_ehdr(uint16_t phnum)
{
    memset(dump, 0, sizeof(dump));
    memcpy(dump, "\x7f" "ELF\x02\x01\x01", 7);
    dump[16] = 4;                    /* ET_CORE */
    dump[18] = 62;                   /* EM_X86_64 */
    dump[20] = 1;                    /* e_version */
    dump[32] = 64;                   /* e_phoff */
    dump[52] = 64;                   /* e_ehsize */
    dump[54] = 56;                   /* e_phentsize */
    dump[56] = (uint8_t)phnum;
}

static void put_phdr(int i, uint32_t type, uint64_t offset, uint64_t size)
{
    uint8_t *p = dump + 64 + i * 56;

    memcpy(p, &type, 4);
    memcpy(p + 8, &offset, 8);
    memcpy(p + 32, &size, 8);
    memcpy(p + 40, &size, 8);
}

/* Found by fuzz_dumpcheck: a PT_NOTE whose p_offset + offset wraps around
 * and whose p_memsz is near 2^64 made the note walk run (nearly) forever. */
TEST(check_huge_wrapping_pt_note_is_refused_at_once)
{
    struct check_expect e;
    struct check_result r = { 0 };
    struct check_reader reader = { read_dump, 0, 0, 0 };

    check_parse_cmdline("cp.cpus=2 cp.crasher=0", &e);
    put_ehdr(2);
    put_phdr(0, 4, 0xffffffffffffff00ull, 0x8000000000000000ull);
    put_phdr(1, 1, 0, 16);
    memset(dump + 200, 0x41, 64);            /* non-zero "notes" wherever the walk lands */
    check_dump(&reader, &e, &r, quiet);
    CHECK(r.failures > 0);
    CHECK(strstr(r.first, "PT_NOTE too large") != NULL);
}

TEST(check_note_name_size_near_4g_does_not_wrap)
{
    struct check_expect e;
    struct check_result r = { 0 };
    struct check_reader reader = { read_dump, 0, 0, 0 };
    uint32_t hdr[3] = { 0xfffffffeu, 8, 1 };

    check_parse_cmdline("cp.cpus=1 cp.crasher=0", &e);
    put_ehdr(2);
    put_phdr(0, 4, 512, 256);
    put_phdr(1, 1, 0, 16);
    memcpy(dump + 512, hdr, sizeof(hdr));
    check_dump(&reader, &e, &r, quiet);
    CHECK(r.failures > 0);
    CHECK(strstr(r.first, "note runs past p_memsz") != NULL);
}

TEST(check_pt_load_before_pt_note_is_what_linux_loses)
{
    struct check_expect e;
    struct check_result r = { 0 };
    struct check_reader reader = { read_dump, 0, 0, 0 };

    check_parse_cmdline("cp.cpus=1 cp.crasher=0", &e);
    put_ehdr(2);
    put_phdr(0, 1, 0, 16);
    put_phdr(1, 4, 512, 12);
    check_dump(&reader, &e, &r, quiet);
    CHECK(strstr(r.first, "PT_NOTE after a PT_LOAD") != NULL);
}

/* ---- the VMX expectations (cp.vmx, cp.vmx_root, cp.vmx_guest, cp.vmx_exit) ---- */

/* Every line the checker said, so a test can look for one. */
static char said[2048];

static void collect(const char *line)
{
    size_t n = strlen(said);

    snprintf(said + n, sizeof(said) - n, "%s\n", line);
}

/* One CPU's notes as crashpath writes them (docs/notes.md): NT_PRSTATUS with pr_pid = index + 1
 * and RIP and RBX set, then the crashpath CPU note; returns the offset after them. */
static uint32_t put_cpu_notes(uint32_t off, uint32_t cpu, uint32_t outcome, uint32_t flags, uint64_t rip,
                              uint64_t rbx)
{
    uint32_t prs_hdr[3] = { 5, 336, 1 }, cp_hdr[3] = { 10, sizeof(struct crashpath_cpu_note), CRASHPATH_NT_CPU };
    struct crashpath_cpu_note n = { .format = CRASHPATH_NOTE_FORMAT, .cpu_index = cpu, .apic_id = 0x10 + cpu,
                                    .outcome = outcome, .flags = flags | CRASHPATH_CPUF_REGS_SAVED, .saves = 1,
                                    .cr4 = 1u << 13 };
    uint32_t pid = cpu + 1;

    memcpy(dump + off, prs_hdr, 12);
    memcpy(dump + off + 12, "CORE", 5);
    memcpy(dump + off + 20 + 32, &pid, 4);
    memcpy(dump + off + 20 + 112 + 5 * 8, &rbx, 8);           /* pr_reg[5]: rbx */
    memcpy(dump + off + 20 + 112 + 16 * 8, &rip, 8);          /* pr_reg[16]: rip */
    off += 20 + 336;
    memcpy(dump + off, cp_hdr, 12);
    memcpy(dump + off + 12, "CRASHPATH", 10);
    memcpy(dump + off + 24, &n, sizeof(n));
    return off + 24 + sizeof(n);
}

/* A crasher (CPU 0) and one victim (CPU 1) with the given flags, RIP and RBX, judged against
 * cmdline; what the checker said is in `said`. */
static void judge_victim(const char *cmdline, uint32_t flags, uint64_t rip, uint64_t rbx)
{
    struct check_expect e;
    struct check_result r = { 0 };
    struct check_reader reader = { read_dump, 0, 0, 0 };
    uint32_t end;

    said[0] = 0;
    check_parse_cmdline(cmdline, &e);
    put_ehdr(2);
    end = put_cpu_notes(512, 0, CRASHPATH_OUTCOME_CRASHER, 0, 0x1000, 0);
    end = put_cpu_notes(end, 1, CRASHPATH_OUTCOME_ANSWERED, flags, rip, rbx);
    put_phdr(0, 4, 512, end - 512);
    put_phdr(1, 1, 0, 16);
    check_dump(&reader, &e, &r, collect);
}

#define VMX_GUEST "cp.cpus=2 cp.crasher=0 cp.vmx=1 cp.vmx_guest=0x2000-0x2010 cp.vmx_exit=0x3000-0x3008"

TEST(check_vmx_guest_parked_through_the_vm_exit_with_the_guest_rip_in_rbx_passes)
{
    judge_victim(VMX_GUEST, CRASHPATH_CPUF_VMX_LEFT | CRASHPATH_CPUF_VIA_VMEXIT, 0x3004, 0x2008);
    CHECK(strstr(said, "VMX") == NULL);
}

TEST(check_vmx_guest_that_did_not_leave_through_the_vm_exit_fails)
{
    judge_victim(VMX_GUEST, CRASHPATH_CPUF_VMX_LEFT, 0x3004, 0x2008);
    CHECK(strstr(said, "VMX guest CPU did not park through the VM exit and leave VMX") != NULL);
}

TEST(check_vmx_guest_rip_outside_the_guest_loop_or_offer_fails)
{
    judge_victim(VMX_GUEST, CRASHPATH_CPUF_VMX_LEFT | CRASHPATH_CPUF_VIA_VMEXIT, 0x3008, 0x2010);
    CHECK(strstr(said, "saved RIP is not the exit handler's offer") != NULL);
    CHECK(strstr(said, "(RBX) not in the guest loop") != NULL);
}

TEST(check_vmx_root_cpu_must_leave_vmx_outside_a_vm_exit)
{
    judge_victim("cp.cpus=2 cp.crasher=0 cp.vmx_root=1", CRASHPATH_CPUF_VMX_LEFT, 0x3004, 0);
    CHECK(strstr(said, "VMX") == NULL);
    judge_victim("cp.cpus=2 cp.crasher=0 cp.vmx_root=1", 0, 0x3004, 0);
    CHECK(strstr(said, "CPU in VMX root operation did not leave VMX") != NULL);
}

TEST(check_cpu_the_row_kept_out_of_vmx_may_not_say_it_left_vmx)
{
    judge_victim("cp.cpus=2 cp.crasher=0", CRASHPATH_CPUF_VMX_UNKNOWN, 0x3004, 0);
    CHECK(strstr(said, "CPU the row kept out of VMX says it was in VMX operation") != NULL);
}

TEST(check_parked_cpus_lists_the_answered_ones_with_their_apic_ids)
{
    uint32_t cpu[4], apic[4];

    judge_victim("cp.cpus=2 cp.crasher=0 cp.initsipi=1 cp.bsp=0", 0, 0x3004, 0);
    CHECK_EQ(check_parked_cpus(cpu, apic, 4), 1);
    CHECK_EQ(cpu[0], 1);
    CHECK_EQ(apic[0], 0x11);
}

/* ---- cp.crasher=any (Xen's crash key runs wherever the serial interrupt goes) ---- */

/* CPU `crasher` crashed, the other of two answered; the crash-info note names `named`. */
static void judge_any_crasher(uint32_t crasher, uint32_t named)
{
    struct check_expect e;
    struct check_result r = { 0 };
    struct check_reader reader = { read_dump, 0, 0, 0 };
    uint32_t info_hdr[3] = { 10, sizeof(struct crashpath_info_note), CRASHPATH_NT_CRASH_INFO };
    struct crashpath_info_note info = { .format = CRASHPATH_NOTE_FORMAT, .crashing_cpu = named, .nr_cpus = 2 };
    uint32_t end;

    said[0] = 0;
    check_parse_cmdline("cp.cpus=2 cp.crasher=any", &e);
    put_ehdr(2);
    end = put_cpu_notes(512, 0, crasher == 0 ? CRASHPATH_OUTCOME_CRASHER : CRASHPATH_OUTCOME_ANSWERED, 0, 0x1000, 0);
    end = put_cpu_notes(end, 1, crasher == 1 ? CRASHPATH_OUTCOME_CRASHER : CRASHPATH_OUTCOME_ANSWERED, 0, 0x3004, 0);
    memcpy(dump + end, info_hdr, 12);
    memcpy(dump + end + 12, "CRASHPATH", 10);
    memcpy(dump + end + 24, &info, sizeof(info));
    end += 24 + sizeof(info);
    put_phdr(0, 4, 512, end - 512);
    put_phdr(1, 1, 0, 16);
    check_dump(&reader, &e, &r, collect);
}

TEST(check_crasher_any_judges_against_the_cpu_the_crash_info_names)
{
    judge_any_crasher(1, 1);
    CHECK(strstr(said, "crashing CPU") == NULL);
    CHECK(strstr(said, "outcome") == NULL);
    judge_any_crasher(0, 0);
    CHECK(strstr(said, "crashing CPU") == NULL);
    CHECK(strstr(said, "outcome") == NULL);
    /* the notes and the crash-info note disagree: CPU 1's note says it answered */
    judge_any_crasher(0, 1);
    CHECK(strstr(said, "outcome") != NULL);
    judge_any_crasher(1, 5);
    CHECK(strstr(said, "crash-info names no configured crashing CPU") != NULL);
}
