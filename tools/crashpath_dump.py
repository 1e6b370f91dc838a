#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""crashpath-dump — reads a dump crashpath led to (an ELF core copied from /proc/vmcore) and prints
each CPU's APIC ID, outcome, RIP with symbol, RSP and answer latency, then the crash-info note.

Usage: crashpath-dump [--json] DUMP [HV_ELF]

`make install` installs this file as $(PREFIX)/bin/crashpath-dump; tests/demo.py imports it for
`make demo`'s report. Python 3 standard library only, so it runs on any host a dump is copied to.
The note formats are docs/notes.md's (include/crashpath.h): this file knows them by hand, it
cannot include the header.
"""
import argparse
import bisect
import collections
import json
import signal
import struct
import sys

# ---- ELF ----------------------------------------------------------------------------------------

ELF_MAGIC = b"\x7fELF"
ELFCLASS64, ELFDATA2LSB = 2, 1
ET_CORE = 4
PT_NOTE = 4
SHT_SYMTAB = 2
SHF_ALLOC, SHF_EXECINSTR = 0x2, 0x4
STT_NOTYPE, STT_FUNC = 0, 2
STB_GLOBAL = 1
SHN_UNDEF, SHN_LORESERVE = 0, 0xff00
EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")
SHDR = struct.Struct("<IIQQQQIIQQ")
SYM = struct.Struct("<IBBHQQ")
NHDR = struct.Struct("<III")
Ehdr = collections.namedtuple("Ehdr", "ident type machine version entry phoff shoff flags ehsize "
                                      "phentsize phnum shentsize shnum shstrndx")
Phdr = collections.namedtuple("Phdr", "type flags offset vaddr paddr filesz memsz align")
Shdr = collections.namedtuple("Shdr", "name type flags addr offset size link info addralign entsize")
Sym = collections.namedtuple("Sym", "name info other shndx value size")

# A crashpath note segment is under 1 KiB per CPU; Linux merges them into one of about
# 460 bytes per CPU. Anything far larger is not one to walk note by note.
MAX_NOTE_SEGMENT = 64 << 20


class DumpError(Exception):
    """What makes a file unreadable as asked: said as one line, exit status 1."""


def read_elf_header(f, path):
    """The ELF64 little-endian header of an open file."""
    raw = f.read(EHDR.size)
    if len(raw) < 4 or raw[:4] != ELF_MAGIC:
        raise DumpError(f"{path}: not an ELF file")
    if len(raw) < EHDR.size or raw[4] != ELFCLASS64 or raw[5] != ELFDATA2LSB:
        raise DumpError(f"{path}: not a 64-bit little-endian ELF file")
    return Ehdr._make(EHDR.unpack(raw))


def read_table(f, offset, count, entry, size_in_header, path, what, kind):
    """count entries of the Struct `entry` at offset, as `kind`; the header's entry size may
    exceed ours."""
    if count and size_in_header < entry.size:
        raise DumpError(f"{path}: {what} entries of {size_in_header} bytes, less than ELF64's {entry.size}")
    f.seek(offset)
    raw = f.read(count * size_in_header)
    if len(raw) < count * size_in_header:
        raise DumpError(f"{path}: file ends inside its {what} table")
    return [kind._make(entry.unpack_from(raw, i * size_in_header)) for i in range(count)]


def walk_notes(blob):
    """(name, type, desc) of each note in one PT_NOTE's bytes, as Linux's note walk reads them:
    name and descriptor padded to 4 bytes, stop at a zero header (crashpath's terminator) or at a
    note that would run past the segment."""
    at = 0
    while at + NHDR.size <= len(blob):
        namesz, descsz, ntype = NHDR.unpack_from(blob, at)
        if not namesz:
            break
        desc_at = at + NHDR.size + ((namesz + 3) & ~3)
        end = desc_at + ((descsz + 3) & ~3)
        if end > len(blob):
            break
        name = blob[at + NHDR.size:at + NHDR.size + namesz].rstrip(b"\0").decode("latin-1")
        yield name, ntype, blob[desc_at:desc_at + descsz]
        at = end


def read_notes(path):
    """Every note of the core file's PT_NOTE segments, in file order."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise DumpError(f"{path}: {e.strerror}") from None
    with f:
        ehdr = read_elf_header(f, path)
        if ehdr.type != ET_CORE:
            raise DumpError(f"{path}: an ELF file but not a core dump (e_type {ehdr.type}, a core is {ET_CORE})")
        notes = []
        for ph in read_table(f, ehdr.phoff, ehdr.phnum, PHDR, ehdr.phentsize, path, "program header", Phdr):
            if ph.type == PT_NOTE:
                f.seek(ph.offset)
                notes.extend(walk_notes(f.read(min(ph.filesz, MAX_NOTE_SEGMENT))))
        return notes


class Symbols:
    """RIP -> "symbol+0xoff" from an ELF's .symtab: the nearest preceding FUNC or NOTYPE symbol
    of an executable section, for an address inside one; "?" otherwise."""

    def __init__(self, path):
        with open(path, "rb") as f:
            ehdr = read_elf_header(f, path)
            sections = read_table(f, ehdr.shoff, ehdr.shnum, SHDR, ehdr.shentsize, path, "section header", Shdr)
            # (start, end) of each executable section: a RIP outside all of them is not the
            # hypervisor's code (a guest's, or garbage) and gets no name
            self.code = sorted((s.addr, s.addr + s.size) for s in sections
                               if s.flags & SHF_ALLOC and s.flags & SHF_EXECINSTR and s.size)
            best = {}      # address -> (preference, name)
            for table in sections:
                if table.type == SHT_SYMTAB and table.link < len(sections):
                    for rank, value, name in self._code_symbols(f, table, sections):
                        best[value] = max(best.get(value, (rank, name)), (rank, name))
        self.addrs = sorted(best)
        self.names = [best[a][1] for a in self.addrs]
        self.empty = not self.addrs

    @staticmethod
    def _code_symbols(f, table, sections):
        """(preference, address, name) of each function-like symbol of an executable section;
        where several share an address, a FUNC wins over a label and a global over a local."""
        f.seek(table.offset)
        raw = f.read(table.size)
        strtab = sections[table.link]
        f.seek(strtab.offset)
        names = f.read(strtab.size)
        for at in range(0, len(raw) - SYM.size + 1, table.entsize or SYM.size):
            sym = Sym._make(SYM.unpack_from(raw, at))
            kind, bind = sym.info & 0xf, sym.info >> 4
            if kind not in (STT_FUNC, STT_NOTYPE) or sym.shndx == SHN_UNDEF or sym.shndx >= SHN_LORESERVE:
                continue
            if sym.shndx >= len(sections) or not sections[sym.shndx].flags & SHF_EXECINSTR:
                continue
            end = names.find(b"\0", sym.name)
            name = names[sym.name:end if end >= 0 else len(names)].decode("latin-1")
            # NASM's local labels (func.label) are places inside a function, not functions;
            # GCC's clones (func.cold, func.constprop.0) are FUNCs and stay
            if not name or (kind == STT_NOTYPE and "." in name):
                continue
            yield (kind == STT_FUNC, bind == STB_GLOBAL), sym.value, name

    def __call__(self, addr):
        i = bisect.bisect_right(self.code, (addr, float("inf"))) - 1
        if i < 0 or not self.code[i][0] <= addr < self.code[i][1]:
            return "?"
        i = bisect.bisect_right(self.addrs, addr) - 1
        return f"{self.names[i]}+{addr - self.addrs[i]:#x}" if i >= 0 else "?"


# ---- crashpath's notes (docs/notes.md) ----------------------------------------------------------

NT_PRSTATUS = 1
PRSTATUS_SIZE = 336
PR_PID, PR_REG = 32, 112
PR_REG_NAMES = ("r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags rsp ss "
                "fs_base gs_base ds es fs gs").split()
CRASHPATH_NAME = "CRASHPATH"
NT_CPU, NT_CRASH_INFO = 0x43500001, 0x43500002
# Formats this tool reads (CRASHPATH_NOTE_FORMAT). Every format so far only appended fields, and
# some fields were appended within format 3 (a dump of an older build has a shorter crash-info
# note), so a field is read where the descriptor is long enough to hold it and is None where not.
KNOWN_FORMATS = (1, 2, 3)

# (name, struct code) in descriptor order: struct crashpath_cpu_note, then crashpath_info_note
CPU_NOTE_FIELDS = [
    ("format", "I"), ("cpu_index", "I"), ("apic_id", "I"), ("apic_mode", "I"), ("outcome", "I"),
    ("flags", "I"), ("saves", "I"), ("reentries", "I"), ("cr0", "Q"), ("cr2", "Q"), ("cr3", "Q"),
    ("cr4", "Q"), ("efer", "Q"), ("answer_tsc", "Q"),
    ("machine_checks", "I"), ("faulted_steps", "I"),          # format 2
]
INFO_NOTE_FIELDS = [
    ("format", "I"), ("version", "I"), ("crashing_cpu", "I"), ("crashing_apic_id", "I"),
    ("nr_cpus", "I"), ("nr_not_answered", "I"), ("timeout_ms", "I"), ("send_mode", "I"),
    ("tsc_khz", "Q"), ("tsc_crash_entry", "Q"), ("tsc_nmis_sent", "Q"), ("tsc_wait_end", "Q"),
    ("tsc_handoff", "Q"), ("reason", "128s"), ("not_answered", "16Q"),
    ("integrity", "I"), ("corrupt_segments", "I"), ("integrity_ticks", "Q"),
    ("icr_writes", "I"), ("send_used", "I"),                  # format 3
    ("resent", "I"), ("reserved", "I"), ("tsc_gates_done", "Q"),   # later in format 3
]
# The shortest descriptor of any known format: everything up to machine_checks, and up to the
# not_answered bitmap.
CPU_NOTE_MIN, INFO_NOTE_MIN = 80, 328

OUTCOMES = {0: "none", 1: "crasher", 2: "answered", 3: "timed out", 4: "not present", 5: "answered late"}
ANSWERED, ANSWERED_LATE = 2, 5
APIC_MODES = {0: "disabled", 1: "invalid", 2: "xAPIC", 3: "x2APIC"}
SEND_MODES = {0: "cluster", 1: "per-CPU", 2: "all-but-self"}
INTEGRITY = {0: "not checked", 1: "intact", 2: "CORRUPT"}
SEGMENTS = {0x1: "kernel", 0x2: "initrd", 0x4: "boot_params", 0x8: "cmdline"}
CPU_FLAGS = {0x001: "regs-saved", 0x002: "hook-called", 0x004: "hook-done", 0x008: "vmx-left",
             0x010: "vmx-unknown", 0x020: "svm-left", 0x040: "lapic-quiet", 0x080: "via-vmexit",
             0x100: "late-crasher", 0x200: "faulted", 0x400: "hook-skipped"}
STEPS = {0x01: "save", 0x02: "hook", 0x04: "vmx", 0x08: "svm", 0x10: "lapic", 0x20: "self-nmi"}
NO_CPU = 0xffffffff
REGS_SAVED = 0x001


def bit_names(value, names):
    """The names of value's set bits, unknown bits as hex."""
    out = [n for bit, n in sorted(names.items()) if value & bit]
    rest = value & ~sum(names)
    return out + ([f"{rest:#x}"] if rest else [])


def decode_fields(desc, fields, minimum, what):
    """The descriptor's fields as a dict (None for those it is too short to hold) and the number
    of bytes past the last field this tool knows."""
    if len(desc) < 4:
        raise DumpError(f"{what} of {len(desc)} bytes, too short to hold its format")
    fmt, = struct.unpack_from("<I", desc)
    if fmt not in KNOWN_FORMATS:
        raise DumpError(f"{what} has format {fmt}; this crashpath-dump reads formats "
                        f"{KNOWN_FORMATS[0]} to {KNOWN_FORMATS[-1]} (a newer crashpath wrote it: use its crashpath-dump)")
    if len(desc) < minimum:
        raise DumpError(f"{what} of {len(desc)} bytes, shorter than any format's ({minimum})")
    out, at = {}, 0
    for name, code in fields:
        size = struct.calcsize("<" + code)
        if at + size > len(desc):
            out[name] = None
        else:
            value = struct.unpack_from("<" + code, desc, at)
            if code == "128s":
                out[name] = value[0].split(b"\0")[0].decode("utf-8", "replace")
            else:
                out[name] = list(value) if len(value) > 1 else value[0]
        at += size
    return out, max(0, len(desc) - at)


def us(ticks, tsc_khz):
    """TSC ticks as microseconds; None without a TSC frequency."""
    return ticks * 1000 / tsc_khz if tsc_khz else None


def read_dump(path, hv_elf=None):
    """Everything crashpath's notes in the dump say, as plain data (what --json prints)."""
    symbolize = None
    if hv_elf:
        try:
            symbolize = Symbols(hv_elf)
        except OSError as e:
            raise DumpError(f"{hv_elf}: {e.strerror}") from None
    regs, cpus, info, info_tail, warnings = {}, {}, None, 0, []
    for name, ntype, desc in read_notes(path):
        if name == "CORE" and ntype == NT_PRSTATUS and len(desc) >= PRSTATUS_SIZE:
            pid, = struct.unpack_from("<I", desc, PR_PID)
            # pr_pid is the logical index + 1 (gdb's thread id)
            regs.setdefault(pid - 1, dict(zip(PR_REG_NAMES, struct.unpack_from("<27Q", desc, PR_REG))))
        elif name == CRASHPATH_NAME and ntype == NT_CPU:
            note, tail = decode_fields(desc, CPU_NOTE_FIELDS, CPU_NOTE_MIN, f"{path}: a CPU note")
            note["unknown_bytes"] = tail
            cpus.setdefault(note["cpu_index"], note)
        elif name == CRASHPATH_NAME and ntype == NT_CRASH_INFO and info is None:
            info, info_tail = decode_fields(desc, INFO_NOTE_FIELDS, INFO_NOTE_MIN, f"{path}: the crash-info note")
    if not cpus and info is None:
        raise DumpError(f"{path}: no crashpath notes in its PT_NOTE segments (not a dump crashpath led to)")
    if info is None:
        warnings.append("no crash-info note: latencies and crash details unknown")
    if symbolize is not None and symbolize.empty:
        warnings.append(f"{hv_elf}: no function symbols (stripped?): RIPs are not named")

    khz = info["tsc_khz"] if info else 0
    entry = info["tsc_crash_entry"] if info else None
    out_cpus = []
    for index in sorted(cpus):
        c = dict(cpus[index])
        # apic_mode and the control registers are read when the registers are saved: a CPU
        # that never saved them has zeros there, not a disabled LAPIC
        c["apic_mode_name"] = APIC_MODES.get(c["apic_mode"], "?") if c["saves"] else None
        c["outcome_name"] = OUTCOMES.get(c["outcome"], f"? ({c['outcome']})")
        c["flag_names"] = bit_names(c["flags"], CPU_FLAGS)
        c["faulted_step_names"] = bit_names(c["faulted_steps"] or 0, STEPS)
        # registers only where the note says they were saved: crashpath_init writes every
        # NT_PRSTATUS header, so a CPU that never answered has one full of zeros
        r = regs.get(index) if c["flags"] & REGS_SAVED else None
        c["regs"] = r
        c["rip"] = r["rip"] if r else None
        c["rsp"] = r["rsp"] if r else None
        c["rip_symbol"] = symbolize(r["rip"]) if r and symbolize else None
        answered = c["outcome"] in (ANSWERED, ANSWERED_LATE) and c["answer_tsc"] and entry is not None
        c["latency_us"] = us(c["answer_tsc"] - entry, khz) if answered else None
        out_cpus.append(c)

    if info is not None:
        info["unknown_bytes"] = info_tail
        info["version_text"] = "{}.{}.{}".format(info["version"] >> 16, info["version"] >> 8 & 0xff,
                                                 info["version"] & 0xff)
        info["send_mode_name"] = SEND_MODES.get(info["send_mode"], "?")
        info["send_used_name"] = SEND_MODES.get(info["send_used"], "?") if info["send_used"] is not None else None
        checked = info["integrity"] is not None
        info["integrity_name"] = INTEGRITY.get(info["integrity"], "?") if checked else None
        info["corrupt_segment_names"] = bit_names(info["corrupt_segments"], SEGMENTS) if checked else []
        info["not_answered_cpus"] = [w * 64 + b for w, word in enumerate(info["not_answered"])
                                     for b in range(64) if word >> b & 1]
        # every time as microseconds after the crasher entered crashpath_crash
        since = {}
        for field in ("tsc_gates_done", "tsc_nmis_sent", "tsc_wait_end", "tsc_handoff"):
            tsc = info[field]
            since[field[len("tsc_"):]] = us(tsc - entry, khz) if tsc else None
        info["us_after_entry"] = since
        info["integrity_us"] = us(info["integrity_ticks"], khz) if info["integrity_ticks"] is not None else None
    return {"dump": path, "hv_elf": hv_elf, "cpus": out_cpus, "info": info, "warnings": warnings}


# ---- text ---------------------------------------------------------------------------------------

def fmt_us(v):
    return "-" if v is None else f"{v:.0f} us"


def headline(info):
    """One line: what crashed, how many answered, how long the shootdown and the hand-off took."""
    after = info["us_after_entry"]
    line = (f"crash: \"{info['reason']}\" on CPU {info['crashing_cpu']}; {info['nr_cpus']} CPUs, "
            f"{info['nr_not_answered']} did not answer; shootdown {fmt_us(after['wait_end'])}")
    if after["handoff"] is not None:
        line += f", crash to jump {fmt_us(after['handoff'])}"
    line += " (guest TSC)"
    if info["integrity"]:
        line += (f", of which the SHA-256 check of the kdump segments {fmt_us(info['integrity_us'])} "
                 f"({info['integrity_name']})")
    return line


def cpu_table(cpus):
    rows = [f"{'CPU':>3}  {'APIC':>4}  {'outcome':<13} {'RIP':<42} {'RSP':<18}  answered after crash entry"]
    for c in cpus:
        if c["rip"] is None:
            rip = rsp = "-"
        else:
            rip = f"{c['rip']:#018x}" + (f" {c['rip_symbol']}" if c["rip_symbol"] else "")
            rsp = f"{c['rsp']:#018x}"
        rows.append(f"{c['cpu_index']:>3}  {c['apic_id']:>4}  {c['outcome_name']:<13} {rip:<42} {rsp:<18}  "
                    f"{fmt_us(c['latency_us'])}")
    return rows


def absent(v, text):
    """text, or what to say for a field this dump's note is too old to have."""
    return "(not in this note)" if v is None else text


def integrity_text(info):
    if info["integrity"] is None:
        return absent(None, "")
    text = info["integrity_name"]
    if info["integrity"]:
        text += f", SHA-256 check {fmt_us(info['integrity_us'])}"
    if info["corrupt_segments"]:
        text += f", corrupt: {', '.join(info['corrupt_segment_names'])}"
    return text


def info_lines(info):
    after = info["us_after_entry"]
    crasher = ("none recorded" if info["crashing_cpu"] == NO_CPU
               else f"{info['crashing_cpu']} (APIC ID {info['crashing_apic_id']})")
    silent = info["not_answered_cpus"]
    used = absent(info["send_used"], f"{info['send_used_name']} used")
    rows = [
        ("reason", f"\"{info['reason']}\""),
        ("crashing CPU", crasher),
        ("CPUs", f"{info['nr_cpus']} configured, {info['nr_not_answered']} had not answered when the wait ended"
                 + (f" (CPU {', '.join(map(str, silent))})" if silent else "")),
        ("timeout", f"{info['timeout_ms']} ms"),
        ("send mode", f"{info['send_mode_name']} configured, {used}"),
        ("ICR writes", absent(info["icr_writes"], str(info["icr_writes"]))),
        ("resent NMIs", absent(info["resent"], str(info["resent"]))),
        ("TSC", f"{info['tsc_khz']} kHz; crash entry at {info['tsc_crash_entry']:#x}, the zero of the times below"),
        ("gates rewritten", absent(info["tsc_gates_done"], "+" + fmt_us(after["gates_done"]))),
        ("NMIs sent", "+" + fmt_us(after["nmis_sent"])),
        ("wait ended", "+" + fmt_us(after["wait_end"])),
        ("hand-off", "+" + fmt_us(after["handoff"]) if after["handoff"] is not None else "none recorded"),
        ("kdump segments", integrity_text(info)),
    ]
    if info["unknown_bytes"]:
        rows.append(("unread", f"{info['unknown_bytes']} bytes past the fields this tool knows"))
    head = f"crash-info note (format {info['format']}, crashpath {info['version_text']}):"
    return [head] + [f"  {k:<16} {v}" for k, v in rows]


def cpu_state_lines(cpus):
    rows = ["per-CPU notes:"]
    for c in cpus:
        flags = f"flags {c['flags']:#05x}" + (f" ({' '.join(c['flag_names'])})" if c["flag_names"] else "")
        extra = [f"machine checks {c['machine_checks']}" if c["machine_checks"] else "",
                 f"faulted steps {' '.join(c['faulted_step_names'])}" if c["faulted_steps"] else "",
                 f"{c['unknown_bytes']} bytes unread" if c["unknown_bytes"] else ""]
        if c["saves"]:
            state = (f"{c['apic_mode_name']:<8} {flags}  saves {c['saves']}  re-entries {c['reentries']}  "
                     f"CR0 {c['cr0']:#x} CR3 {c['cr3']:#x} CR4 {c['cr4']:#x} EFER {c['efer']:#x}")
        else:
            state = f"nothing saved  {flags}  re-entries {c['reentries']}"
        rows.append(f"  CPU {c['cpu_index']:>3}  {state}" + "".join("  " + e for e in extra if e))
    return rows


def format_text(data):
    """The report as `make demo` prints it: headline, CPU table, crash-info note, per-CPU notes."""
    info = data["info"]
    lines = []
    if info is not None:
        lines += [headline(info), ""]
    lines += cpu_table(data["cpus"])
    if info is not None:
        lines += [""] + info_lines(info)
    lines += [""] + cpu_state_lines(data["cpus"])
    lines += [f"warning: {w}" for w in data["warnings"]]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="crashpath-dump",
        description="Print the CPUs and the crash-info note crashpath wrote into a dump "
                    "(an ELF core copied from /proc/vmcore).")
    ap.add_argument("dump", help="the dump: an ELF core file")
    ap.add_argument("hv_elf", nargs="?", help="the hypervisor's ELF, for symbols (optional)")
    ap.add_argument("--json", action="store_true", help="print the same data as JSON")
    args = ap.parse_args(argv)
    # piped into head or less and cut short: end quietly, as other command-line tools do
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        data = read_dump(args.dump, args.hv_elf)
    except DumpError as e:
        print(f"crashpath-dump: {e}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(data, sys.stdout, indent=1)
        print()
    else:
        print(format_text(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
