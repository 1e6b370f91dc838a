/* SPDX-License-Identifier: BSD-2-Clause */
/* testlib.h — crashpath's host unit-test harness: TEST() registers a test, CHECK() records a
 * failure; every test runs in its own forked process and the runner ends with "N passed, N failed". */
#ifndef TESTLIB_H
#define TESTLIB_H

#include <stdint.h>

typedef void (*tl_fn)(void);
void tl_register(const char *name, tl_fn fn);
void tl_fail(const char *file, int line, const char *what);
void tl_fail_u64(const char *file, int line, const char *what, uint64_t got, uint64_t want);
/* Whether the running test has failed so far (to stop a loop early). */
int tl_g_failed(void);

#define TEST(name)                                                     \
    static void name(void);                                            \
    __attribute__((constructor)) static void tl_reg_##name(void)       \
    {                                                                  \
        tl_register(#name, name);                                      \
    }                                                                  \
    static void name(void)

#define CHECK(cond)                                                    \
    do {                                                               \
        if (!(cond))                                                   \
            tl_fail(__FILE__, __LINE__, #cond);                        \
    } while (0)

#define CHECK_EQ(got, want)                                                         \
    do {                                                                            \
        uint64_t tl_g = (uint64_t)(got), tl_w = (uint64_t)(want);                   \
        if (tl_g != tl_w)                                                           \
            tl_fail_u64(__FILE__, __LINE__, #got " == " #want, tl_g, tl_w);         \
    } while (0)

#endif
