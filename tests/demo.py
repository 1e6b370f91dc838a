#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""demo.py — `make demo`: boot the reference hypervisor on 4 vCPUs under QEMU, crash it on an
AP, let crashpath hand off to Debian's Linux 6.1 as the kdump kernel, and report from the dump
with crashpath-dump (tools/crashpath_dump.py): each CPU's APIC ID, outcome, RIP with symbol, RSP
and answer latency, and the crash-info note; then gdb's backtrace of the crashing CPU, then where
the dump is.

`make xen-demo` (--xen): the same for Xen 4.17 built with crashpath (make xen), with dom0 up,
crashed by its 'C' debug key; gdb's backtrace of every CPU."""
import argparse
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
    XEN_STEPS = [
        ("Xen version", "booting Xen 4.17 (built with crashpath) on 4 vCPUs"),
        ("crashpath: owns the crash path", "crashpath configured from Xen's CPU tables; the kdump image placed "
                                           "in Xen's crash area"),
        ("dom0: /init reached", "dom0 (Debian's Linux 6.1) is up"),
        ("kexec -p refused", "dom0's crash-image load refused: the crash area is crashpath's; typing the 'C' key"),
        ("'C' pressed", "Xen's kexec_crash() called crashpath: shooting down the other CPUs"),
        ("entering kdump kernel", "handed off: Debian's Linux 6.1 is booting as the kdump kernel"),
        ("kdump: /init reached", "kdump kernel at /init: checking /proc/vmcore, then saving it with makedumpfile"),
        ("VERDICT:", "vmcore-check gave its verdict; reading the dump on the host (readelf, gdb)"),
    ]
    STEPS = [
        ("hv: reference hypervisor", "booting the reference hypervisor on 4 vCPUs"),
        ("CPUs up", "all CPUs up; crashpath configured, kdump image loaded"),
        ("crashing", "crashed: crashpath is shooting down the other CPUs"),
        ("entering kdump kernel", "handed off: Debian's Linux 6.1 is booting as the kdump kernel"),
        ("kdump: /init reached", "kdump kernel at /init: checking /proc/vmcore, then saving it with makedumpfile"),
        ("VERDICT:", "vmcore-check gave its verdict; reading the dump on the host (readelf, gdb)"),
    ]

    def __init__(self, steps):
        self.t0 = time.time()
        self.next = 0
        self.STEPS = steps

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


def backtraces(elf, dump, crasher=None):
    """gdb's backtrace of the crashing CPU (its note's pr_pid is its index + 1), or of every CPU."""
    out = subprocess.run(["gdb", "-batch", "-nx", "-ex", "thread apply all bt", elf, dump],
                         capture_output=True, text=True).stdout
    blocks = ["Thread " + b.strip() for b in out.split("\nThread ")[1:]]
    if crasher is None:
        return "\n\n".join(sorted(blocks, key=lambda b: int(b.split("(LWP ")[1].split(")")[0])))
    for block in blocks:
        if f"(LWP {crasher + 1})" in block.split("\n", 1)[0]:
            return block
    return "(gdb found no thread for the crashing CPU)"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--xen", action="store_true", help="Xen 4.17 built with crashpath (make xen)")
    args = ap.parse_args()
    rows = {r.name: r for r in runner.load_table()}
    # the Xen row whose dump the runner keeps
    name = runner.XEN_KEPT_DUMP_ROW if args.xen else ROW
    elf = runner.XEN_CP_SYMS if args.xen else runner.HV_ELF
    if args.xen:
        row = rows[name]
        print(f"crashpath demo: Xen 4.17 with crashpath, QEMU {row.cpus} vCPUs ({row.apic}), dom0 up, "
              "crashed by Xen's 'C' key, kdump into Debian's Linux 6.1")
    else:
        # the demo also has makedumpfile save the compressed format, to show what it gains
        row = dataclasses.replace(rows[name], kdump_save="elf,lzo")
        print(f"crashpath demo: QEMU {row.cpus} vCPUs ({row.apic}), crash on AP {row.cpus - 1}, "
              "kdump into Debian's Linux 6.1")
    rank, what, elapsed, log_path = runner.run_row(row, False, Stages(Stages.XEN_STEPS if args.xen else Stages.STEPS))
    print(f"  [{elapsed:5.1f} s] {rank}: {what}")
    for line in saved_lines(log_path):
        print(f"  {line}")
    dump = os.path.join(runner.BUILD, "scenarios", name + ".vmcore")
    if rank != runner.PASS or not os.path.exists(dump):
        print(f"console: {os.path.relpath(log_path, ROOT)}")
        return 1
    try:
        data = crashpath_dump.read_dump(dump, elf)
    except crashpath_dump.DumpError as e:
        print(f"crashpath-dump: {e}")
        return 1
    print()
    print(crashpath_dump.format_text(data))
    if args.xen:
        print()
        print("gdb backtraces of every CPU (xen-syms of the build; what each CPU ran when it was stopped):")
        print(backtraces(elf, dump))
    elif data["info"] is not None:
        print()
        print("gdb backtrace of the crashing CPU:")
        print(backtraces(elf, dump, data["info"]["crashing_cpu"]))
    print()
    print(f"dump:    {os.path.relpath(dump, ROOT)} (tools/crashpath_dump.py <dump> {os.path.relpath(elf, ROOT)}, "
          f"readelf -n, or gdb {os.path.relpath(elf, ROOT)} <dump>)")
    print(f"console: {os.path.relpath(log_path, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
