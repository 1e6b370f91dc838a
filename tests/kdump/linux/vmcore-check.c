/* SPDX-License-Identifier: BSD-2-Clause */
/* vmcore-check.c — runs as /init's worker in the Linux kdump kernel: checks /proc/vmcore with
 * the checker the mini verifier uses, copies the dump to the first virtio disk for the host,
 * prints one verdict line and ends QEMU through isa-debug-exit. Static, libc allowed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

#define DEBUG_EXIT 0xf4
#define VERDICT_PASS 0x10
#define VERDICT_FAIL 0x11

static int vmcore_fd = -1;

static int read_vmcore(void *ctx, uint64_t off, void *dst, uint64_t len)
{
    (void)ctx;
    while (len) {
        ssize_t n = pread(vmcore_fd, dst, len, (off_t)off);

        if (n <= 0)
            return -1;
        dst = (uint8_t *)dst + n;
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

static void say(const char *line)
{
    printf("vmcore-check: %s\n", line);
    fflush(stdout);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Copy /proc/vmcore to the disk, then its size in the last 8 bytes' place:
 * a little trailer "CPVMCORE" + u64 length at the very end of the device. */
static int copy_dump(const char *disk)
{
    static char buf[1 << 20];
    int out = open(disk, O_WRONLY);
    uint64_t total = 0;
    double t0 = now();
    off_t dev_size;
    char trailer[16];

    if (out < 0) {
        printf("vmcore-check: no %s (%s): dump not copied\n", disk, strerror(errno));
        return -1;
    }
    for (;;) {
        ssize_t n = pread(vmcore_fd, buf, sizeof(buf), (off_t)total);

        if (n < 0) {
            printf("vmcore-check: read /proc/vmcore at %llu: %s\n", (unsigned long long)total, strerror(errno));
            close(out);
            return -1;
        }
        if (n == 0)
            break;
        if (write(out, buf, (size_t)n) != n) {
            printf("vmcore-check: write %s: %s\n", disk, strerror(errno));
            close(out);
            return -1;
        }
        total += (uint64_t)n;
    }
    dev_size = lseek(out, 0, SEEK_END);
    memcpy(trailer, "CPVMCORE", 8);
    memcpy(trailer + 8, &total, 8);
    if (dev_size < (off_t)(total + 16) || pwrite(out, trailer, 16, dev_size - 16) != 16) {
        printf("vmcore-check: disk too small for the dump trailer\n");
        close(out);
        return -1;
    }
    fsync(out);
    close(out);
    printf("vmcore-check: copied %llu MiB of /proc/vmcore to %s in %.1f s\n",
           (unsigned long long)(total >> 20), disk, now() - t0);
    return 0;
}

/* The console is the 16550 at COM1: the kernel's tty layer still holds what
 * printf wrote when write() returns, and the UART its FIFO. Ending QEMU before
 * both drained lost the VERDICT line whenever the kernel ran several CPUs
 * (the tty flush runs from a workqueue on another CPU). tcdrain waits for the
 * tty's output to reach the driver; then the line status register's TEMT
 * bit (16550: transmitter and FIFO empty) says the last byte left. Bounded:
 * a console that never drains must not hang the row. */
#define COM1_LSR 0x3fd
#define LSR_TEMT 0x40

static void drain_console(void)
{
    tcdrain(STDOUT_FILENO);
    if (ioperm(COM1_LSR, 1, 1) != 0)
        return;
    for (int i = 0; i < 200000 && !(inb(COM1_LSR) & LSR_TEMT); i++)
        usleep(10);
}

__attribute__((noreturn)) static void finish(int pass, const char *what)
{
    printf("VERDICT: %s %s\n", pass ? "PASS" : "FAIL", what);
    fflush(stdout);
    sync();
    drain_console();
    if (ioperm(DEBUG_EXIT, 4, 1) == 0)
        outl(pass ? VERDICT_PASS : VERDICT_FAIL, DEBUG_EXIT);
    exit(pass ? 0 : 1);
}

int main(int argc, char **argv)
{
    static char cmdline[4096];
    static struct check_expect expect;
    static struct check_result result;
    struct check_reader reader = { read_vmcore, 0, 0, 0 };
    const char *disk = argc > 1 ? argv[1] : "/dev/vda";
    int fd = open("/proc/cmdline", O_RDONLY);
    ssize_t n;

    if (fd < 0 || (n = read(fd, cmdline, sizeof(cmdline) - 1)) <= 0)
        finish(0, "cannot read /proc/cmdline");
    cmdline[n] = 0;
    if (n && cmdline[n - 1] == '\n')
        cmdline[n - 1] = 0;
    close(fd);
    check_parse_cmdline(cmdline, &expect);
    vmcore_fd = open("/proc/vmcore", O_RDONLY);
    if (vmcore_fd < 0)
        finish(0, "no /proc/vmcore: the kernel rejected the ELF core header");
    check_dump(&reader, &expect, &result, say);
    /* What the host's readelf must count in the copied dump too. */
    printf("vmcore-check: NOTES prstatus=%u cpu=%u\n", result.prstatus, result.cpu_notes);
    check_report_bench(&result, expect.cpus, say);
    /* The host reads the copy: without it the row has nothing to show, so a
     * failed copy fails the row, whatever the checks said. */
    if (copy_dump(disk) != 0)
        finish(0, result.failures ? result.first : "the dump could not be copied to the disk");
    if (result.failures)
        finish(0, result.first);
    finish(1, "dump verified through /proc/vmcore");
}
