#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""check-ibt.py — what the CPU and the host reach in libcrashpath.a must be legal under IBT
(CET indirect branch tracking). Reads the archive with objdump and nm. (That crash-time code
never calls load-time code is checked by the archive's own build rule, in the Makefile.)

Rules (each failure names the symbol and instruction):
  1. every exported function (the public API, the IDT gate targets) starts with ENDBR64: an
     event delivered through the IDT, or an indirect CALL/JMP, that lands elsewhere raises #CP
     when supervisor IBT is on (SDM vol. 1, 18.3);
  2. no jump tables: no NOTRACK prefix (gcc's and clang's jump-table branches under
     -fcf-protection) and no indirect branch through an indexed table; with
     IA32_S_CET.NO_TRACK_EN clear, as Xen runs, they fault on case labels without ENDBR64.
     Indirect calls and tail jumps through a register are calls to the host's hooks (console,
     stop, quiesce; the host builds those with IBT) or the hand-off stub's two jumps, listed
     in HANDOFF_JUMPS with the reason each is legal.
"""
import re
import subprocess
import sys

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


def disassemble(lib):
    """[(section, symbol, instruction text)] in order."""
    out = run("objdump", "-d", "-w", "--no-show-raw-insn", lib)
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
        m = re.match(r"\s+[0-9a-f]+:\s+([^\t]*)", line)
        if m and section:
            rows.append((section, symbol, m.group(1).strip()))
    return rows


def main():
    lib = sys.argv[1] if len(sys.argv) > 1 else "build/libcrashpath.a"
    problems = []
    rows = disassemble(lib)

    first = {}
    for _, symbol, insn in rows:
        first.setdefault(symbol, insn)
    exported = exported_functions(lib)
    for sym in exported:
        if not first.get(sym, "").startswith("endbr64"):
            problems.append(f"{sym} does not start with ENDBR64 (first: {first.get(sym)!r})")

    handoff_jumps = {}
    indirect = 0
    for _, symbol, insn in rows:
        branch = re.match(r"(?:notrack |bnd )*(jmp|call)\s+\*(.*)", insn)
        if "notrack" in insn.split():
            problems.append(f"{symbol}: NOTRACK branch '{insn}' (a jump table)")
        elif branch and "(" in branch.group(2) and "," in branch.group(2):
            problems.append(f"{symbol}: indirect branch through a table '{insn}'")
        elif branch and symbol in HANDOFF_JUMPS:
            handoff_jumps[symbol] = handoff_jumps.get(symbol, 0) + 1
        elif branch:
            indirect += 1
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
          f"{indirect} calls through host hook pointers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
