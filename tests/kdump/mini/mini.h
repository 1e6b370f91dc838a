/* SPDX-License-Identifier: BSD-2-Clause */
/* mini.h — what the mini verifier's C files share: port and MSR access, the TSC, and the
 * console line writer. */
#ifndef MINI_H
#define MINI_H

#include <stdint.h>
#include "x86.h"

/* Everything resolves inside one image: no GOT, RIP-relative only. */
#pragma GCC visibility push(hidden)

/* verify.c: one console line, "mini: " before it. */
void say(const char *s);

/* initsipi.c: INIT-SIPI-SIPI to every CPU the dump says parked but the BSP; how many did not
 * answer, and the first of them described in `first` (size bytes). */
struct check_expect;
uint32_t wake_parked_cpus(const struct check_expect *e, uint64_t tsc_khz, char *first, uint32_t size);

#pragma GCC visibility pop

#endif
