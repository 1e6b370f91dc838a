/* SPDX-License-Identifier: BSD-2-Clause */
/* elfcore.c — load time: the ELF core header the kdump kernel finds through elfcorehdr=, as
 * kexec-tools writes it: an NT_PRPSINFO note, every CPU's note buffer and the crash-info note
 * as PT_NOTEs, then the old RAM as PT_LOADs (the low 640 KiB read from its backup), and the
 * image once more at its virtual address. */
#include "cp/elf64.h"
#include "cp/load.h"

/* elfutils (libdwfl's dwfl_core_file_attach, so eu-stack) refuses a core without an
 * NT_PRPSINFO note of the platform's size, "not a valid ELF file"; Linux's own vmcore has
 * none and is refused the same way. Its pid names the "process" whose threads the
 * NT_PRSTATUS notes are (never -1, which elfutils reads as "none found"). It lives at the end
 * of the core header, which the kdump kernel never owns, with a zero note header after it:
 * fs/proc/vmcore.c trims each PT_NOTE at the first namesz 0. */
#define PRPSINFO_NOTE_BYTES (12u + 8u + PRPSINFO_DESC_SIZE)
#define PRPSINFO_SEGMENT_BYTES (PRPSINFO_NOTE_BYTES + 12u)

uint64_t cp_elfcore_size(uint64_t nr_phdrs)
{
    return align_up(sizeof(struct elf64_ehdr) + nr_phdrs * sizeof(struct elf64_phdr) + PRPSINFO_SEGMENT_BYTES,
                    PAGE);
}

static void copy_str(uint8_t *dst, const char *src)
{
    while (*src)
        *dst++ = (uint8_t)*src++;
}

/* Returns its offset in the header. */
static uint64_t write_prpsinfo(const struct layout *L, uint8_t *hdr)
{
    uint64_t at = L->elfhdr_size - PRPSINFO_SEGMENT_BYTES;
    uint8_t *n = hdr + at, *desc = n + 20;

    put32(n, 0, 5);                          /* namesz: "CORE\0" */
    put32(n, 4, PRPSINFO_DESC_SIZE);
    put32(n, 8, NT_PRPSINFO);
    copy_str(n + 12, "CORE");
    desc[1] = 'R';                           /* pr_sname: it was running */
    put32(desc, PRPSINFO_PID, 1);        /* the NT_PRSTATUS notes' pids are 1..N */
    copy_str(desc + PRPSINFO_FNAME, "crashpath");
    copy_str(desc + PRPSINFO_PSARGS, "crashpath");
    return at;
}

static void phdr_set(struct elf64_phdr *p, uint32_t type, uint64_t offset, uint64_t vaddr, uint64_t paddr,
                     uint64_t size)
{
    p->p_type = type;
    p->p_flags = type == PT_LOAD ? PF_RWX : 0;
    p->p_offset = offset;
    p->p_vaddr = vaddr;
    p->p_paddr = paddr;
    p->p_filesz = size;
    p->p_memsz = size;
    p->p_align = 0;
}

/* One RAM piece [s, e) outside the crash region, at the host's map of RAM
 * (phys_map_offset): split at 640 KiB, the low part read from the backup. The
 * image's own range stays in it: a host may reuse part of its image as RAM
 * (Xen frees its .init pages and puts CPU stacks there, which it reaches
 * through its direct map); the image gets a second PT_LOAD of its own. */
static uint32_t add_loads(const struct crashpath_kdump *k, const struct layout *L, struct elf64_phdr *ph,
                          uint32_t n, uint64_t s, uint64_t e)
{
    uint64_t backup = k->region_phys + L->backup;

    while (s < e) {
        uint64_t cut = e, off = s, va = s + cp_state.phys_map_offset;

        if (s < CRASHPATH_LOW_BACKUP_SIZE) {
            cut = e < CRASHPATH_LOW_BACKUP_SIZE ? e : CRASHPATH_LOW_BACKUP_SIZE;
            off = backup + s;
        }
        phdr_set(&ph[n++], PT_LOAD, off, va, s, cut - s);
        s = cut;
    }
    return n;
}

void cp_elfcore_build(const struct crashpath_kdump *k, const struct layout *L, uint8_t *hdr)
{
    struct elf64_ehdr *eh = (struct elf64_ehdr *)(void *)hdr;
    struct elf64_phdr *ph = (struct elf64_phdr *)(void *)(hdr + sizeof(*eh));
    uint64_t r_s = k->region_phys, r_e = k->region_phys + k->region_size, prpsinfo_phys;
    uint32_t n = 0;

    cp_zero(hdr, L->elfhdr_size);
    eh->e_ident[0] = 0x7f;
    eh->e_ident[1] = 'E';
    eh->e_ident[2] = 'L';
    eh->e_ident[3] = 'F';
    eh->e_ident[4] = 2;          /* ELFCLASS64 */
    eh->e_ident[5] = 1;          /* ELFDATA2LSB */
    eh->e_ident[6] = 1;          /* EV_CURRENT */
    eh->e_type = ET_CORE;
    eh->e_machine = EM_X86_64;
    eh->e_version = EV_CURRENT;
    eh->e_phoff = sizeof(*eh);   /* the kdump kernel assumes the phdrs follow at 64 */
    eh->e_ehsize = sizeof(*eh);
    eh->e_phentsize = sizeof(*ph);

    /* Every PT_NOTE first: the kdump kernel merges them into slot 0 and
     * assumes nothing else precedes them (fs/proc/vmcore.c). NT_PRPSINFO
     * leads, as in a process core (lldb then numbers the threads from 1). */
    prpsinfo_phys = k->region_phys + L->elfhdr + write_prpsinfo(L, hdr);
    phdr_set(&ph[n++], PT_NOTE, prpsinfo_phys, 0, prpsinfo_phys, PRPSINFO_SEGMENT_BYTES);
    for (uint32_t i = 0; i < cp_state.nr_cpus; i++)
        phdr_set(&ph[n++], PT_NOTE, cp_state.cpus[i].notes_phys, 0, cp_state.cpus[i].notes_phys,
                 CRASHPATH_CPU_NOTES_SIZE);
    phdr_set(&ph[n++], PT_NOTE, cp_state.info_note_phys, 0, cp_state.info_note_phys, CRASHPATH_INFO_NOTE_SIZE);

    for (uint32_t i = 0; i < k->nr_memmap; i++) {
        const struct crashpath_mem_range *m = &k->memmap[i];
        uint64_t s = m->start, e = m->start + m->size;

        if (m->type != CRASHPATH_E820_RAM)
            continue;
        if (overlap(s, e - s, r_s, r_e - r_s)) {
            n = add_loads(k, L, ph, n, s, s < r_s ? r_s : s);
            n = add_loads(k, L, ph, n, e > r_e ? r_e : e, e);
        } else {
            n = add_loads(k, L, ph, n, s, e);
        }
    }
    /* The image once more, at the hypervisor's virtual addresses, so that gdb
     * finds its symbols' memory: the same bytes as the RAM PT_LOAD that holds
     * them, as Linux's own core header adds its kernel text (kexec-tools'
     * "Kernel code" segment); /proc/vmcore and makedumpfile take overlapping
     * physical ranges. */
    phdr_set(&ph[n++], PT_LOAD, k->image_phys, k->image_virt, k->image_phys, k->image_size);
    eh->e_phnum = (uint16_t)n;
}
