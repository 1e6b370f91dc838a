/* SPDX-License-Identifier: BSD-2-Clause */
/* kexec-load.c — loads the kdump kernel into the running Linux's crash slot, for the
 * side-by-side with Linux's own kdump (make bench): kexec_file_load(2) with
 * KEXEC_FILE_ON_CRASH, the call `kexec -p -s` makes. The kernel itself then builds the ELF
 * core header and appends elfcorehdr=. Static, libc allowed; runs in the first kernel. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KEXEC_FILE_ON_CRASH 0x2ul      /* include/uapi/linux/kexec.h */

int main(int argc, char **argv)
{
    int kernel, initrd;
    long rc;

    if (argc != 4) {
        fprintf(stderr, "usage: kexec-load KERNEL INITRD CMDLINE\n");
        return 2;
    }
    kernel = open(argv[1], O_RDONLY);
    initrd = open(argv[2], O_RDONLY);
    if (kernel < 0 || initrd < 0) {
        perror("kexec-load: open");
        return 1;
    }
    /* the command line length includes its NUL */
    rc = syscall(SYS_kexec_file_load, kernel, initrd, strlen(argv[3]) + 1, argv[3], KEXEC_FILE_ON_CRASH);
    if (rc) {
        perror("kexec-load: kexec_file_load");
        return 1;
    }
    printf("kexec-load: crash kernel loaded\n");
    return 0;
}
