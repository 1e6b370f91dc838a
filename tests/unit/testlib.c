/* SPDX-License-Identifier: BSD-2-Clause */
/* testlib.c — the unit-test runner: forks one child per test (a crash simulation leaves
 * threads parked for good), reports PASS/FAIL per test and "N passed, N failed" last. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testlib.h"

#define MAX_TESTS 256
#define TEST_TIMEOUT_S 60

static struct {
    const char *name;
    tl_fn fn;
} tests[MAX_TESTS];
static int nr_tests;
static int failures;

void tl_register(const char *name, tl_fn fn)
{
    if (nr_tests < MAX_TESTS) {
        tests[nr_tests].name = name;
        tests[nr_tests].fn = fn;
        nr_tests++;
    }
}

void tl_fail(const char *file, int line, const char *what)
{
    failures++;
    printf("    %s:%d: check failed: %s\n", file, line, what);
    fflush(stdout);
}

void tl_fail_u64(const char *file, int line, const char *what, uint64_t got, uint64_t want)
{
    failures++;
    printf("    %s:%d: check failed: %s (got 0x%llx, want 0x%llx)\n", file, line, what,
           (unsigned long long)got, (unsigned long long)want);
    fflush(stdout);
}

int tl_g_failed(void)
{
    return failures != 0;
}

static int run_one(int i)
{
    pid_t pid;
    int status;

    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        return 0;
    }
    if (pid == 0) {
        const char *t = getenv("CRASHPATH_TEST_TIMEOUT");

        alarm(t ? (unsigned int)atoi(t) : TEST_TIMEOUT_S);
        tests[i].fn();
        fflush(stdout);
        _exit(failures ? 1 : 0);
    }
    if (waitpid(pid, &status, 0) < 0) {
        perror("waitpid");
        return 0;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 1;
    if (WIFSIGNALED(status))
        printf("    killed by signal %d%s\n", WTERMSIG(status),
               WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
    return 0;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < nr_tests; i++) {
        if (argc > 1 && !strstr(tests[i].name, argv[1]))
            continue;
        if (run_one(i)) {
            passed++;
            printf("PASS %s\n", tests[i].name);
        } else {
            failed++;
            printf("FAIL %s\n", tests[i].name);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed || !passed ? 1 : 0;
}
