/* SPDX-License-Identifier: BSD-2-Clause */
/* fuzz_bzimage.c — libFuzzer target: crashpath_load_kdump on arbitrary bytes as the bzImage
 * (the setup-header validation, placement, boot_params and e820 building, ELF core header).
 * The input's last 64 bytes, if any, also become the command line. */
#include <stdlib.h>
#include <string.h>
#include "cp/internal.h"
#include "sim.h"

#define MB (1024ull * 1024ull)
#define REGION_SIZE (40 * MB)

static uint8_t *region;
static struct crashpath_config cfg;
static struct crashpath_cpu cpus[2];
extern const uint8_t handoff_stub[];
static const struct crashpath_mem_range memmap[] = {
    { 0x0, 0x9fc00, CRASHPATH_E820_RAM, 0 },
    { 0xf0000, 0x10000, CRASHPATH_E820_RESERVED, 0 },
    { 0x100000, 0x1ff00000, CRASHPATH_E820_RAM, 0 },
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    sim_reset(2, CRASHPATH_APIC_X2APIC, NULL);
    sim_config(&cfg, cpus, 2);
    if (crashpath_init(&cfg) != CRASHPATH_OK)
        abort();
    region = aligned_alloc(4096, REGION_SIZE);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct crashpath_kdump kd = { 0 };
    uint64_t stub = (uint64_t)(uintptr_t)handoff_stub;
    char cmdline[65];
    int err;

    if (size > 64) {
        memcpy(cmdline, data + size - 64, 64);
        cmdline[64] = 0;
        kd.cmdline = cmdline;
    }
    kd.kernel = data;
    kd.kernel_size = size;
    kd.region = region;
    kd.region_phys = 256 * MB;
    kd.region_size = REGION_SIZE;
    kd.memmap = memmap;
    kd.nr_memmap = 3;
    kd.image_virt = (stub & ~(2 * MB - 1)) - 2 * MB;
    kd.image_size = 8 * MB;
    kd.image_phys = 2 * MB;
    err = crashpath_load_kdump(&kd);
    if (err != CRASHPATH_OK && crashpath_strerror(err)[0] == 'u')
        abort();            /* every refusal has a named reason */
    return 0;
}
