#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""demo.py — `make demo`: boot the reference hypervisor on 4 vCPUs under QEMU, crash it on an
AP, let crashpath hand off to Debian's Linux 6.1 as the kdump kernel, and report from the dump
with crashpath-dump (tools/crashpath_dump.py): each CPU's APIC ID, outcome, RIP with symbol, RSP
and answer latency, and the crash-info note; then gdb's backtrace of the crashing CPU, then where
the dump is."""
import dataclasses
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROW = "linux-4-x2apic"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import scenario_runner as runner  # noqa: E402
# the report from the dump is crashpath-dump's, the tool `make install` installs
import crashpath_dump  # noqa: E402


class Stages:
    """Say which stage the machine is in, as the console shows it."""
    STEPS = [
        ("hv: reference hypervisor", "booting the reference hypervisor on 4 vCPUs"),
        ("CPUs up", "all CPUs up; crashpath configured, kdump image loaded"),
        ("crashing", "crashed: crashpath is shooting down the other CPUs"),
        ("entering kdump kernel", "handed off: Debian's Linux 6.1 is booting as the kdump kernel"),
        ("kdump: /init reached", "kdump kernel at /init: checking /proc/vmcore, then saving it with makedumpfile"),
        ("VERDICT:", "vmcore-check gave its verdict; reading the dump on the host (readelf, gdb)"),
    ]

    def __init__(self):
        self.t0 = time.time()
        self.next = 0

    def __call__(self, line):
        while self.next < len(self.STEPS) and self.STEPS[self.next][0] in line:
            print(f"  [{time.time() - self.t0:5.1f} s] {self.STEPS[self.next][1]}", flush=True)
            self.next += 1


def saved_lines(log_path):
    """What makedumpfile saved in the kdump kernel, as vmcore-check said it: each format's size
    against the raw /proc/vmcore, and how long the save took."""
    try:
        lines = open(log_path, errors="replace").read().splitlines()
    except OSError:
        return []
    return [ln[len("vmcore-check: "):] for ln in lines if ln.startswith("vmcore-check: saved ")]


def crasher_backtrace(dump, crasher):
    out = subprocess.run(["gdb", "-batch", "-nx", "-ex", "thread apply all bt", runner.HV_ELF, dump],
                         capture_output=True, text=True).stdout
    for block in out.split("\nThread ")[1:]:
        if f"(LWP {crasher + 1})" in block.split("\n", 1)[0]:
            return "Thread " + block.strip()
    return "(gdb found no thread for the crashing CPU)"


def main():
    rows = {r.name: r for r in runner.load_table()}
    # the demo also has makedumpfile save the compressed format, to show what it gains
    row = dataclasses.replace(rows[ROW], kdump_save="elf,lzo")
    print(f"crashpath demo: QEMU {row.cpus} vCPUs ({row.apic}), crash on AP {row.cpus - 1}, "
          "kdump into Debian's Linux 6.1")
    rank, what, elapsed, log_path = runner.run_row(row, False, Stages())
    print(f"  [{elapsed:5.1f} s] {rank}: {what}")
    for line in saved_lines(log_path):
        print(f"  {line}")
    dump = os.path.join(runner.BUILD, "scenarios", ROW + ".vmcore")
    if rank != runner.PASS or not os.path.exists(dump):
        print(f"console: {os.path.relpath(log_path, ROOT)}")
        return 1
    try:
        data = crashpath_dump.read_dump(dump, runner.HV_ELF)
    except crashpath_dump.DumpError as e:
        print(f"crashpath-dump: {e}")
        return 1
    print()
    print(crashpath_dump.format_text(data))
    if data["info"] is not None:
        print()
        print("gdb backtrace of the crashing CPU:")
        print(crasher_backtrace(dump, data["info"]["crashing_cpu"]))
    print()
    print(f"dump:    {os.path.relpath(dump, ROOT)} (tools/crashpath_dump.py <dump> {os.path.relpath(runner.HV_ELF, ROOT)}, "
          f"readelf -n, or gdb {os.path.relpath(runner.HV_ELF, ROOT)} <dump>)")
    print(f"console: {os.path.relpath(log_path, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
