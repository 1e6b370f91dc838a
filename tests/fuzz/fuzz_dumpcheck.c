/* SPDX-License-Identifier: BSD-2-Clause */
/* fuzz_dumpcheck.c — libFuzzer target: the dump checker that the mini verifier and
 * vmcore-check share, on arbitrary bytes as an ELF core file. It must reject, never misread. */
#include <string.h>
#include "check.h"

static const uint8_t *buf;
static size_t buf_size;

static int read_buf(void *ctx, uint64_t off, void *dst, uint64_t len)
{
    (void)ctx;
    if (off > buf_size || len > buf_size - off)
        return -1;
    memcpy(dst, buf + off, len);
    return 0;
}

static void quiet(const char *line)
{
    (void)line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct check_expect e;
    struct check_result r = { 0 };
    struct check_reader reader = { read_buf, 0, 0, 0 };

    buf = data;
    buf_size = size;
    check_parse_cmdline("cp.cpus=4 cp.crasher=1 cp.reason=fuzz cp.lowmem=0x1000 cp.sentinel=1 "
                        "cp.spin=0x1000-0x2000 cp.timedout=2", &e);
    check_dump(&reader, &e, &r, quiet);
    return 0;
}
