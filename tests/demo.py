#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""demo.py — `make demo`: boot the reference hypervisor on 4 vCPUs under QEMU, crash it on an
AP, let crashpath hand off to Debian's Linux 6.1 as the kdump kernel, and report from the dump:
each CPU's APIC ID, outcome, RIP with symbol, RSP and answer latency, then gdb's backtrace of
the crashing CPU, then where the dump is."""
import bisect
import os
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROW = "linux-4-x2apic"
OUTCOMES = {0: "none", 1: "crasher", 2: "answered", 3: "timed out", 4: "not present", 5: "answered late"}

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenario_runner as runner  # noqa: E402


class Stages:
    """Say which stage the machine is in, as the console shows it."""
    STEPS = [
        ("hv: reference hypervisor", "booting the reference hypervisor on 4 vCPUs"),
        ("CPUs up", "all CPUs up; crashpath configured, kdump image loaded"),
        ("crashing", "crashed: crashpath is shooting down the other CPUs"),
        ("entering kdump kernel", "handed off: Debian's Linux 6.1 is booting as the kdump kernel"),
        ("kdump: /init reached", "kdump kernel at /init: checking and copying /proc/vmcore"),
        ("VERDICT:", "vmcore-check gave its verdict; reading the dump on the host (readelf, gdb)"),
    ]

    def __init__(self):
        self.t0 = time.time()
        self.next = 0

    def __call__(self, line):
        while self.next < len(self.STEPS) and self.STEPS[self.next][0] in line:
            print(f"  [{time.time() - self.t0:5.1f} s] {self.STEPS[self.next][1]}", flush=True)
            self.next += 1


def notes_of(dump):
    """(name, type, desc) of every note in the dump's PT_NOTE segments."""
    data = open(dump, "rb")
    ehdr = data.read(64)
    phoff, = struct.unpack_from("<Q", ehdr, 32)
    phnum, = struct.unpack_from("<H", ehdr, 56)
    data.seek(phoff)
    phdrs = [struct.unpack("<IIQQQQQQ", data.read(56)) for _ in range(phnum)]
    out = []
    for p_type, _, off, _, _, filesz, _, _ in phdrs:
        if p_type != 4:
            continue
        data.seek(off)
        blob = data.read(filesz)
        at = 0
        while at + 12 <= len(blob):
            namesz, descsz, ntype = struct.unpack_from("<III", blob, at)
            if not namesz:
                break
            name = blob[at + 12:at + 12 + namesz].rstrip(b"\0").decode()
            d = at + 12 + ((namesz + 3) & ~3)
            out.append((name, ntype, blob[d:d + descsz]))
            at = d + ((descsz + 3) & ~3)
    return out


def symbolizer(elf):
    syms = []
    for line in subprocess.run(["nm", "-n", elf], capture_output=True, text=True).stdout.splitlines():
        parts = line.split()
        # functions only: NASM's local labels (name.label) are not functions
        if len(parts) == 3 and parts[1] in "tTwW" and "." not in parts[2]:
            syms.append((int(parts[0], 16), parts[2]))
    addrs = [a for a, _ in syms]

    def name(addr):
        i = bisect.bisect_right(addrs, addr) - 1
        return f"{syms[i][1]}+{addr - syms[i][0]:#x}" if i >= 0 else "?"
    return name


def report(dump):
    notes = notes_of(dump)
    regs, cpus, info = {}, {}, None
    for name, ntype, desc in notes:
        if name == "CORE" and ntype == 1:
            pid, = struct.unpack_from("<I", desc, 32)
            regs[pid - 1] = struct.unpack_from("<27Q", desc, 112)
        elif name == "CRASHPATH" and ntype == 0x43500001:
            f = struct.unpack_from("<8I6Q", desc)
            cpus[f[1]] = {"apic": f[2], "outcome": f[4], "answer_tsc": f[13]}
        elif name == "CRASHPATH" and ntype == 0x43500002:
            # format, version, crashing_cpu, crashing_apic_id, nr_cpus, nr_not_answered,
            # timeout_ms, send_mode, tsc_khz, tsc_crash_entry, tsc_nmis_sent, tsc_wait_end,
            # tsc_handoff, reason (docs/notes.md)
            info = struct.unpack_from("<8I5Q", desc) + (desc[72:200].split(b"\0")[0].decode(),) + \
                struct.unpack_from("<IIQ", desc, 328)       # integrity, corrupt_segments, integrity_ticks
    sym = symbolizer(runner.HV_ELF)
    tsc_khz, entry = info[8], info[9]
    print()
    print(f"crash: \"{info[13]}\" on CPU {info[2]}; {info[4]} CPUs, {info[5]} did not answer; "
          f"shootdown {(info[11] - info[9]) * 1000 / tsc_khz:.0f} us, crash to jump "
          f"{(info[12] - info[9]) * 1000 / tsc_khz:.0f} us (guest TSC), of which the SHA-256 check of the "
          f"kdump segments {info[16] * 1000 / tsc_khz:.0f} us ({'intact' if info[14] == 1 else 'CORRUPT'})")
    print()
    print(f"{'CPU':>3}  {'APIC':>4}  {'outcome':<13} {'RIP':<42} {'RSP':<18}  answered after crash entry")
    for i in sorted(cpus):
        c = cpus[i]
        r = regs.get(i)
        rip = f"{r[16]:#018x} {sym(r[16])}" if r else "-"
        rsp = f"{r[19]:#018x}" if r else "-"
        if c["outcome"] == 2:
            lat = f"{(c['answer_tsc'] - entry) * 1000 / tsc_khz:.0f} us"
        else:
            lat = "-"
        print(f"{i:>3}  {c['apic']:>4}  {OUTCOMES.get(c['outcome'], '?'):<13} {rip:<42} {rsp:<18}  {lat}")
    return info[2]


def crasher_backtrace(dump, crasher):
    out = subprocess.run(["gdb", "-batch", "-nx", "-ex", "thread apply all bt", runner.HV_ELF, dump],
                         capture_output=True, text=True).stdout
    for block in out.split("\nThread ")[1:]:
        if f"(LWP {crasher + 1})" in block.split("\n", 1)[0]:
            return "Thread " + block.strip()
    return "(gdb found no thread for the crashing CPU)"


def main():
    rows = {r.name: r for r in runner.load_table()}
    row = rows[ROW]
    print(f"crashpath demo: QEMU {row.cpus} vCPUs ({row.apic}), crash on AP {row.cpus - 1}, "
          "kdump into Debian's Linux 6.1")
    rank, what, elapsed, log_path = runner.run_row(row, False, Stages())
    print(f"  [{elapsed:5.1f} s] {rank}: {what}")
    dump = os.path.join(runner.BUILD, "scenarios", ROW + ".vmcore")
    if rank != runner.PASS or not os.path.exists(dump):
        print(f"console: {os.path.relpath(log_path, ROOT)}")
        return 1
    crasher = report(dump)
    print()
    print("gdb backtrace of the crashing CPU:")
    print(crasher_backtrace(dump, crasher))
    print()
    print(f"dump:    {os.path.relpath(dump, ROOT)} (readelf -n, or gdb {os.path.relpath(runner.HV_ELF, ROOT)} <dump>)")
    print(f"console: {os.path.relpath(log_path, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
