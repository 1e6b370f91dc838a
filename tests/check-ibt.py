#!/usr/bin/env python3
"""check-ibt.py — what the CPU and the host reach in libcrashpath.a must be legal under IBT, and
crash-time text must not depend on load-time text. Reads the archive with objdump and readelf.

Rules (each failure names the symbol and instruction):
  1. every exported function (the public API, the IDT gate targets) starts with ENDBR64: an
     event delivered through the IDT, or an indirect CALL/JMP, that lands elsewhere raises #CP
     when supervisor IBT is on (SDM vol. 1, 18.3);
  2. no jump tables: no NOTRACK prefix (gcc's and clang's jump-table branches under
     -fcf-protection) and no indirect branch through an indexed table; with
     IA32_S_CET.NO_TRACK_EN clear, as Xen runs, they fault on case labels without ENDBR64.
     Indirect calls and tail jumps through a register are calls to the host's hooks (console,
     stop, quiesce; the host builds those with IBT) or the hand-off stub's two jumps, listed
     in HANDOFF_JUMPS with the reason each is legal;
  3. nothing in the crash-time text (.text) refers to the load-time section
     (.text.crashpath_load): a host may place that away or discard it after boot.
"""
import re
import subprocess
import sys

LOAD_SECTION = ".text.crashpath_load"
CRASH_SECTION = ".text"
# symbol -> (number of indirect JMPs, why each is legal under IBT)
HANDOFF_JUMPS = {
    "handoff_stub": (1, "jmp rsi lands on handoff_stub_identity, which starts with ENDBR64"),
    "handoff_cs_loaded": (1, "jmp rax to the kdump kernel runs after CR4.CET is cleared"),
}


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def exported_functions(lib):
    out = run("nm", "-g", "--defined-only", lib)
    return sorted(f[2] for f in (l.split() for l in out.splitlines()) if len(f) == 3 and f[1] == "T")


def symbol_sections(lib):
    """name -> section name, for every defined symbol (local ones too) of the archive's object."""
    sections, symbols = {}, {}
    for line in run("readelf", "-SW", lib).splitlines():
        m = re.match(r"\s*\[\s*(\d+)\]\s+(\S+)", line)
        if m:
            sections[m.group(1)] = m.group(2)
    for line in run("readelf", "-sW", lib).splitlines():
        f = line.split()
        if len(f) >= 8 and f[0].endswith(":") and f[6].isdigit():
            name = f[7] if f[3] != "SECTION" else sections.get(f[6], "")
            symbols[name] = sections.get(f[6], "")
    return symbols


def disassemble(lib):
    """[(section, symbol, instruction text, relocation target or None)] in order."""
    out = run("objdump", "-dr", "-w", "--no-show-raw-insn", lib)
    rows, section, symbol = [], None, None
    for line in out.splitlines():
        m = re.match(r"Disassembly of section (\S+):", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"[0-9a-f]+ <([^>]+)>:", line)
        if m:
            symbol = m.group(1)
            continue
        # with -w a relocation follows its instruction on the same line
        m = re.match(r"\s+[0-9a-f]+:\s+([^\t]*)(?:\t[0-9a-f]+: R_X86_64_\S+\t(\S+))?", line)
        if m and section:
            target = re.split(r"[-+]0x", m.group(2))[0] if m.group(2) else None
            rows.append((section, symbol, m.group(1).strip(), target))
    return rows


def main():
    lib = sys.argv[1] if len(sys.argv) > 1 else "build/libcrashpath.a"
    problems = []
    rows = disassemble(lib)
    where = symbol_sections(lib)

    first = {}
    for section, symbol, insn, _ in rows:
        first.setdefault(symbol, insn)
    exported = exported_functions(lib)
    for sym in exported:
        if not first.get(sym, "").startswith("endbr64"):
            problems.append(f"{sym} does not start with ENDBR64 (first: {first.get(sym)!r})")

    handoff_jumps = {}
    indirect = 0
    for section, symbol, insn, target in rows:
        branch = re.match(r"(?:notrack |bnd )*(jmp|call)\s+\*(.*)", insn)
        if "notrack" in insn.split():
            problems.append(f"{symbol}: NOTRACK branch '{insn}' (a jump table)")
        elif branch and "(" in branch.group(2) and "," in branch.group(2):
            problems.append(f"{symbol}: indirect branch through a table '{insn}'")
        elif branch and symbol in HANDOFF_JUMPS:
            handoff_jumps[symbol] = handoff_jumps.get(symbol, 0) + 1
        elif branch:
            indirect += 1
        if section == CRASH_SECTION and target and \
                (target == LOAD_SECTION or where.get(target) == LOAD_SECTION):
            problems.append(f"{symbol}: crash-time text refers to load-time {target} ('{insn}')")
    for symbol, (allowed, why) in sorted(HANDOFF_JUMPS.items()):
        if handoff_jumps.get(symbol, 0) != allowed:
            problems.append(f"{symbol}: {handoff_jumps.get(symbol, 0)} indirect JMP, expected {allowed} ({why})")
    if first.get("handoff_stub_identity", "") != "endbr64":
        problems.append("handoff_stub_identity, handoff_stub's indirect jump target, lacks ENDBR64")

    for p in problems:
        print(f"ibt: {p}")
    if problems:
        return 1
    print(f"ibt: ok ({len(exported)} exported functions start with ENDBR64, no jump tables or NOTRACK, "
          f"{indirect} calls through host hook pointers, crash text independent of {LOAD_SECTION})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
