/* test_check.c — the shared dump checker (tests/kdump/check.c) on hand-built dumps, including
 * the inputs the fuzzer found: it must judge quickly and never read past what it was given. */
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
