/* SPDX-License-Identifier: BSD-2-Clause */
/* host_types.c — crashpath.h in a host built without the C library's headers (-nostdinc, as
 * Xen is): the host declares the fixed-width types and asks the header not to include any. */
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long uint64_t;
typedef unsigned long uintptr_t;
typedef unsigned long size_t;
#define CRASHPATH_HOST_TYPES
#include <crashpath.h>

int host_crash(void);

int host_crash(void)
{
    return crashpath_crash("host", (const struct crashpath_regs *)0);
}
