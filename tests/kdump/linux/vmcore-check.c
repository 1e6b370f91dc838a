/* SPDX-License-Identifier: BSD-2-Clause */
/* vmcore-check.c — runs as /init's worker in the Linux kdump kernel: checks /proc/vmcore with
 * the checker the mini verifier uses, saves it with makedumpfile into the dump disk /init
 * mounted (the host reads it from there), prints one verdict line and ends QEMU through
 * isa-debug-exit. Static, libc allowed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* Saving the dump the way distributions' kdump services do: makedumpfile reads
 * /proc/vmcore and writes a filtered dump into a file system on a disk. Dump
 * level 1 (-d 1) drops pages that hold only zeros, the one filter that needs no
 * kernel symbols (the other bits, cache, user and free pages, read Linux's page
 * flags through VMCOREINFO, which a hypervisor's dump has not). Each format is one makedumpfile run; its
 * messages go to a log in RAM and reach the console only if it fails. */
struct save_format {
    const char *name;           /* as kdump.save= names it */
    const char *file;           /* under the dump directory */
    const char *flags[3];
    const char *what;
};

static const struct save_format SAVE_FORMATS[] = {
    { "elf", "vmcore", { "-E", "-d", "1" }, "ELF, zero pages dropped (-E -d 1)" },
    { "lzo", "vmcore.kdump", { "-l", "-d", "1" }, "kdump-compressed, LZO, zero pages dropped (-l -d 1)" },
};
#define N_SAVE_FORMATS (sizeof(SAVE_FORMATS) / sizeof(SAVE_FORMATS[0]))
#define MAKEDUMPFILE "/bin/makedumpfile"
#define SAVE_LOG "/tmp/makedumpfile.log"

static void print_save_log(void)
{
    static char text[2048];
    int fd = open(SAVE_LOG, O_RDONLY);
    off_t size = fd < 0 ? 0 : lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof(text) - 1 ? size - (off_t)sizeof(text) + 1 : 0;
    ssize_t n = fd < 0 ? -1 : pread(fd, text, sizeof(text) - 1, from);

    if (n > 0) {
        text[n] = 0;
        printf("vmcore-check: makedumpfile said:\n%s\n", text);
    }
    if (fd >= 0)
        close(fd);
}

/* One makedumpfile run: 0 when it exited 0 and left a non-empty file. */
static int save_one(const struct save_format *f, const char *dir, uint64_t raw_size)
{
    static char path[512];
    double t0 = now();
    struct stat st;
    int status;
    pid_t pid;

    snprintf(path, sizeof(path), "%s/%s", dir, f->file);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        int log = open(SAVE_LOG, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        if (log >= 0) {
            dup2(log, STDOUT_FILENO);
            dup2(log, STDERR_FILENO);
        }
        /* messages: common, errors and the page statistics, no progress bar */
        execl(MAKEDUMPFILE, "makedumpfile", "--message-level", "22", f->flags[0], f->flags[1], f->flags[2],
              "/proc/vmcore", path, (char *)NULL);
        printf("exec %s: %s\n", MAKEDUMPFILE, strerror(errno));
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        printf("vmcore-check: cannot run %s: %s\n", MAKEDUMPFILE, strerror(errno));
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("vmcore-check: makedumpfile %s %s %s failed (status 0x%x) saving %s\n", f->flags[0], f->flags[1],
               f->flags[2], status, path);
        print_save_log();
        return -1;
    }
    if (stat(path, &st) != 0 || st.st_size <= 0) {
        printf("vmcore-check: makedumpfile left no %s\n", path);
        return -1;
    }
    printf("vmcore-check: saved %s, %s: %.1f MiB of %.1f MiB in %.1f s\n", path, f->what,
           (double)st.st_size / (1 << 20), (double)raw_size / (1 << 20), now() - t0);
    return 0;
}

/* kdump.save=FORMAT[,FORMAT] on the kernel command line picks the formats
 * (default: elf, the one every reader opens). */
static int format_wanted(const char *cmdline, const char *name)
{
    const char *w = strstr(cmdline, "kdump.save=");
    size_t len = strlen(name);

    if (!w)
        return strcmp(name, "elf") == 0;
    for (w += strlen("kdump.save="); *w && *w != ' '; w++) {
        if (strncmp(w, name, len) == 0 && (w[len] == ',' || w[len] == ' ' || w[len] == 0))
            return 1;
        while (*w && *w != ',' && *w != ' ')
            w++;
        if (*w != ',')
            break;
    }
    return 0;
}

/* Save the dump into DIR, which must be a file system of its own (the dump disk
 * /init mounted), never the initramfs in RAM the host cannot read. Returns NULL
 * or why the dump was not saved. */
static const char *save_dump(const char *dir, const char *cmdline)
{
    struct stat root_st, dir_st, core_st;
    int saved = 0;

    if (stat("/", &root_st) != 0 || stat(dir, &dir_st) != 0 || dir_st.st_dev == root_st.st_dev)
        return "no dump disk mounted at the dump directory";
    if (fstat(vmcore_fd, &core_st) != 0)
        return "cannot stat /proc/vmcore";
    for (unsigned i = 0; i < N_SAVE_FORMATS; i++) {
        if (!format_wanted(cmdline, SAVE_FORMATS[i].name))
            continue;
        if (save_one(&SAVE_FORMATS[i], dir, (uint64_t)core_st.st_size) != 0)
            return "makedumpfile could not save the dump";
        saved++;
    }
    if (!saved)
        return "kdump.save= names no format vmcore-check knows";
    /* The host reads the disk once QEMU has exited: everything must be on it. */
    sync();
    if (umount(dir) != 0) {
        printf("vmcore-check: umount %s: %s\n", dir, strerror(errno));
        return "the dump disk could not be unmounted";
    }
    return NULL;
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
    const char *dir = argc > 1 ? argv[1] : "/var/crash";
    const char *save_problem;
    int fd = open("/proc/cmdline", O_RDONLY);
    ssize_t n;

    if (fd < 0 || (n = read(fd, cmdline, sizeof(cmdline) - 1)) <= 0)
        finish(0, "cannot read /proc/cmdline");
    cmdline[n] = 0;
    if (n && cmdline[n - 1] == '\n')
        cmdline[n - 1] = 0;
    close(fd);
    vmcore_fd = open("/proc/vmcore", O_RDONLY);
    if (vmcore_fd < 0)
        finish(0, "no /proc/vmcore: the kernel rejected the ELF core header");
    /* Another crash path's dump (Xen's own kdump, tests/compare.py): nothing of crashpath's
     * to check; save it for the host to compare, and say it was not judged. */
    if (strstr(cmdline, "kdump.judge=none")) {
        say("kdump.judge=none: not crashpath's dump, saved for the host to read, not judged");
        save_problem = save_dump(dir, cmdline);
        finish(!save_problem, save_problem ? save_problem : "saved by makedumpfile, not judged");
    }
    check_parse_cmdline(cmdline, &expect);
    check_dump(&reader, &expect, &result, say);
    /* What the host's readelf must count in the copied dump too. */
    printf("vmcore-check: NOTES prstatus=%u cpu=%u\n", result.prstatus, result.cpu_notes);
    check_report_bench(&result, expect.cpus, say);
    /* The host reads the saved dump: without it the row has nothing to show,
     * so a dump not saved fails the row, whatever the checks said. */
    save_problem = save_dump(dir, cmdline);
    if (save_problem)
        finish(0, result.failures ? result.first : save_problem);
    if (result.failures)
        finish(0, result.first);
    finish(1, "dump verified through /proc/vmcore, saved by makedumpfile");
}
