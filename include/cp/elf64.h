/* SPDX-License-Identifier: BSD-2-Clause */
/* elf64.h — the ELF64 file and program headers (System V gABI, x86-64 psABI) of the core
 * header the kdump kernel finds through elfcorehdr=: written by load/elfcore.c, read back by
 * the dump checker (tests/kdump/check.c). The layout itself is proven by readers crashpath
 * does not write: Linux's /proc/vmcore, readelf and gdb in the Linux rows. */
#ifndef CP_ELF64_H
#define CP_ELF64_H

#include <stdint.h>

#define ET_CORE 4
#define EM_X86_64 62
#define EV_CURRENT 1
#define PT_LOAD 1
#define PT_NOTE 4
#define PF_RWX 7
#define NT_PRPSINFO 3
/* The NT_PRPSINFO note as x86-64 Linux cores carry it ("CORE", struct elf_prpsinfo: 136
 * bytes): state, sname, zomb, nice, 4 pad, flag (8), uid, gid, pid, ppid, pgrp, sid (4 each),
 * fname[16], psargs[80]. */
#define PRPSINFO_DESC_SIZE 136
#define PRPSINFO_PID 24
#define PRPSINFO_FNAME 40
#define PRPSINFO_PSARGS 56

struct elf64_ehdr {
    uint8_t e_ident[16];
    uint16_t e_type, e_machine;
    uint32_t e_version;
    uint64_t e_entry, e_phoff, e_shoff;
    uint32_t e_flags;
    uint16_t e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx;
};

struct elf64_phdr {
    uint32_t p_type, p_flags;
    uint64_t p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align;
};

_Static_assert(sizeof(struct elf64_ehdr) == 64, "ELF64 file header is 64 bytes");
_Static_assert(sizeof(struct elf64_phdr) == 56, "ELF64 program header is 56 bytes");

#endif
