#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""compare.py — crashpath side by side with Xen's and Linux's own kdump (`make xen-kdump`): each
comparison row runs four times under the same QEMU (TCG, -cpu max, the same CPU count and
APIC mode): as the reference hypervisor crashing through crashpath; as Xen 4.17 built with
crashpath (make xen) and as Debian's Xen 4.17 with its own kdump, both crashed by the 'C' debug
key; as Debian's Linux 6.1 crashed through sysrq (kexec_file_load,
tests/kdump/linux/crash-init). All four hand off to the same Debian Linux 6.1 kdump kernel,
initramfs and command line, which saves /proc/vmcore with makedumpfile. Each run is one line in
the scenario runner's format; then each dump is read on the host the same way for all:

  booted        the kdump kernel reached /init and saved the dump
  notes         NT_PRSTATUS notes against the machine's CPUs
  interrupted   notes whose RIP lies in the code the CPU was running, not in the crash path
                (crashpath: outside the library's text, cp.lib; Xen and Linux: outside their
                kexec, crash and panic functions)
  pr_pid        distinct pr_pid values among the notes (gdb and lldb make one thread each)
  gdb threads   threads gdb lists on the dump with the hypervisor's symbols (hv.elf, xen-syms;
                for Linux the dump alone: Debian ships no vmlinux or System.map outside its
                -dbg package, so the RIPs of Linux's notes are named from /proc/kallsyms,
                which the kdump kernel, the same kernel without KASLR, saves beside the dump)

Xen's or Linux's own kdump failing a row is a result, printed in the table; the exit status is non-zero only when
crashpath's run fails or the harness breaks. Results go to build/compare/results.json; --doc
also writes the table into docs/comparison.md.

  tests/compare.py                 every comparison row
  tests/compare.py NAME...         rows whose name contains a NAME
  tests/compare.py --doc           and write docs/comparison.md's table
  tests/compare.py --merge NAME    run some rows again, keep the others' earlier runs
"""
import argparse
import bisect
import dataclasses
import datetime
import json
import os
import re
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import scenario_runner as runner  # noqa: E402
import crashpath_dump  # noqa: E402  (ELF notes and symbols, the installed tool's reader)

OUT = os.path.join(runner.BUILD, "compare")
DOC = os.path.join(ROOT, "docs", "comparison.md")
DOC_BEGIN, DOC_END = "<!-- compare.py table begin -->", "<!-- compare.py table end -->"


@dataclasses.dataclass
class Case:
    """One comparison row: what happens around the crash, the same for both hypervisors."""
    name: str
    cpus: int
    apic: str
    kind: str           # plain | storm | mce | spin
    what: str           # one line for the table


CASES = [Case(f"plain-{n}-{mode}", n, mode, "plain", f"a crash, {n} CPUs, {mode}")
         for n in (2, 4, 8) for mode in ("xapic", "x2apic")] + [
    Case("nmi-storm-4-x2apic", 4, "x2apic", "storm",
         "NMIs back to back (HMP nmi, every LINT1) from before the crash to the kdump kernel's first line"),
    Case("mce-handoff-4-x2apic", 4, "x2apic", "mce",
         "a machine check into CPU 1 as the crashing CPU hands off"),
    Case("spin-4-x2apic", 4, "x2apic", "spin",
         "the other CPUs busy when the crash comes (crashpath: spinning with interrupts off in the "
         "hypervisor; Xen: dom0's vCPUs spinning, the closest Xen allows without a patch; Linux: "
         "shell loops on every other CPU)"),
]

# Where each hypervisor says it hands off (for the machine check of the mce row). Linux prints
# nothing between its panic line and the jump; its panic line comes just before the shootdown.
HANDOFF_LINE = {"hv": "entering_kdump_kernel", "xen": "Executing_kexec_image",
                "linux": "Kernel_panic_-_not_syncing:_sysrq_triggered_crash"}
# Xen built with crashpath (make xen): the source Debian's archive serves (ports/xen/fetch-src.sh)
XEN_SOURCE_VERSION = "4.17.5+72-g01140da4e8"
NAMES = {"hv": "crashpath", "xencp": "Xen 4.17 + crashpath", "xen": "Xen 4.17", "linux": "Linux 6.1"}


def crashpath_row(case):
    """The reference hypervisor's run of a case: crasher CPU 1 (an AP, as Xen's crash key is
    taken wherever the serial interrupt goes)."""
    scenario = "spin" if case.kind == "spin" else "halt"
    expect, events = "-", []
    if case.kind == "storm":
        expect = "crash_delay_ms=300"
        events = runner.parse_events("nmistorm@kdump_image_loaded", case.name)
    if case.kind == "mce":
        expect = "slow_console_ms=400"
        events = runner.parse_events(f"mce:crasher@{HANDOFF_LINE['hv']};mce:0@{HANDOFF_LINE['hv']}", case.name)
    return runner.Row(name=f"compare/crashpath/{case.name}", cpus=case.cpus, apic=case.apic, cpu="max",
                      target="linux", timeout=300, scenario=scenario, crasher="1", expect=expect, events=events)


def xen_row(case, with_crashpath=False):
    """Xen's run of a case, the same dom0 and key either way: Debian's Xen with its own kdump
    (dom0 loads the kdump kernel with kexec-tools), or Xen 4.17 built with crashpath (make xen;
    the kdump image given as multiboot modules, dom0's load refused; crashpath's dump, judged)."""
    loaded = "dom0:_kexec_-p_refused" if with_crashpath else "dom0:_kdump_kernel_loaded"
    events = f"crashkey@{loaded}"
    dom0_extra = ""
    if case.kind == "storm":
        events = f"nmistorm@{loaded};crashkey@{loaded}"
    if case.kind == "mce":
        events += f";mce:1@{HANDOFF_LINE['hv' if with_crashpath else 'xen']}"
    if case.kind == "spin":
        dom0_extra, events = "xk.spin=1", "crashkey@dom0:_spinning"
    kind = "xencp" if with_crashpath else "xen"
    return runner.Row(name=f"compare/{kind}/{case.name}", cpus=case.cpus, apic=case.apic, cpu="max",
                      target="linux", timeout=300, scenario="-", crasher="any" if with_crashpath else "0",
                      expect="-", events=runner.parse_events(events, case.name), hypervisor=kind,
                      dom0_extra=dom0_extra, keep_dump=with_crashpath)


def linux_row(case):
    """Linux's own run of a case: its /init loads the kdump kernel and crashes through sysrq on
    CPU 1 (tests/kdump/linux/crash-init), as crashpath's rows do."""
    loaded = "linux-crash:_kdump_kernel_loaded"
    events, extra = "", ""
    if case.kind == "storm":
        events = f"nmistorm@{loaded}"
    if case.kind == "mce":
        events = f"mce:1@{HANDOFF_LINE['linux']}"
    if case.kind == "spin":
        extra = "lk.spin=1"
    extra = f"kdump.kallsyms=1 {extra}".strip()
    return runner.Row(name=f"compare/linux/{case.name}", cpus=case.cpus, apic=case.apic, cpu="max",
                      target="linux", timeout=300, scenario="-", crasher="0", expect="-",
                      events=runner.parse_events(events, case.name) if events else [], hypervisor="linux",
                      dom0_extra=extra)


class Kallsyms:
    """RIP -> "symbol+0xoff" from /proc/kallsyms's text symbols (Linux's, nokaslr)."""

    def __init__(self, path):
        pairs = []
        for line in open(path):
            parts = line.split()
            if len(parts) >= 3 and parts[1] in ("T", "t"):
                pairs.append((int(parts[0], 16), parts[2]))
        pairs.sort()
        self.addrs = [a for a, _ in pairs]
        self.names = [n for _, n in pairs]

    def __call__(self, rip):
        i = bisect.bisect_right(self.addrs, rip) - 1
        if i < 0 or rip - self.addrs[i] > 0x100000:
            return "?"
        return f"{self.names[i]}+{rip - self.addrs[i]:#x}"


def prstatus_notes(dump):
    """(pr_pid, RIP) of each NT_PRSTATUS note, in file order."""
    out = []
    for name, ntype, desc in crashpath_dump.read_notes(dump):
        if name == "CORE" and ntype == crashpath_dump.NT_PRSTATUS and len(desc) >= crashpath_dump.PRSTATUS_SIZE:
            pid = struct.unpack_from("<I", desc, crashpath_dump.PR_PID)[0]
            regs = struct.unpack_from("<27Q", desc, crashpath_dump.PR_REG)
            out.append((pid, regs[crashpath_dump.PR_REG_NAMES.index("rip")]))
    return out


def crash_path_test(row, log_text):
    """A function (RIP, symbol) -> True when the RIP is inside the crash path: crashpath's own
    text, or the host's crash functions (where a crashing CPU records itself)."""
    if row.is_xen_crashpath:
        lo, hi = runner.xen_crashpath_text()
        return lambda rip, sym: lo <= rip < hi or sym.startswith(("crashpath_xen_crash", "kexec_crash"))
    if row.is_xen:
        # Xen's crash path: kexec_crash() and what it calls (machine_crash_shutdown,
        # nmi_shootdown_cpus, the NMI callback do_nmi_crash, kexec_crash_save_cpu)
        return lambda rip, sym: bool(re.match(r"(kexec|machine_crash|nmi_shootdown|do_nmi_crash|crash)", sym))
    if row.is_own_linux:
        # Linux's: panic() and __crash_kexec(), where the crashing CPU's registers are taken
        # (crash_setup_regs), and the sysrq handler that called panic
        return lambda rip, sym: bool(re.match(r"(panic|__crash_kexec|crash_|machine_crash|native_machine_crash|"
                                              r"kdump_nmi|nmi_shootdown|sysrq_handle_crash)", sym))
    m = re.search(r"cp\.lib=(0x[0-9a-f]+)-(0x[0-9a-f]+)", log_text)
    lo, hi = (int(m[1], 16), int(m[2], 16)) if m else (0, 0)
    return lambda rip, sym: lo <= rip < hi


def crashing_pid(row, dump, rips, in_crash_path):
    """The pr_pid of the crashing CPU's note: crashpath names the crashing CPU in its crash-info
    note (pr_pid = index + 1); Linux's crasher is the one note inside its crash path; Xen's own
    notes do not say (every one is in its crash path)."""
    if row.is_crashpath:
        try:
            info = crashpath_dump.read_dump(dump)["info"]
        except crashpath_dump.DumpError:
            info = None
        return info["crashing_cpu"] + 1 if info else None
    inside = [pid for pid, rip, sym in rips if in_crash_path(rip, sym)]
    return inside[0] if len(inside) == 1 else None


def gdb_threads(elf, dump):
    """Threads gdb lists on the dump (with no symbol file, elf None: the dump alone)."""
    args = [elf, dump] if elf else ["-core", dump]
    out = subprocess.run(["gdb", "-batch", "-nx", "-ex", "info threads"] + args,
                         capture_output=True, text=True, timeout=120).stdout
    return sum(1 for ln in out.splitlines() if re.match(r"^\*?\s+\d+\s+(Thread|LWP|process)", ln))


def analyse(case, row, rank, what, elapsed, log_path):
    """What the dump of one run shows, the same way for both hypervisors."""
    log_text = open(log_path, errors="replace").read() if os.path.exists(log_path) else ""
    dump = os.path.join(runner.BUILD, "scenarios", row.name + ".vmcore")
    res = {"case": case.name, "hypervisor": NAMES[row.hypervisor], "rank": rank,
           "what": what, "seconds": round(elapsed, 1), "cpus": case.cpus,
           "booted": "kdump: /init reached" in log_text and "vmcore-check: saved " in log_text}
    m = re.search(r"crash to /init ([\d.]+) s", what)
    res["to_init_s"] = float(m[1]) if m else None
    # what the kdump kernel said: from its "Linux version" line on, the first for the reference
    # hypervisor, the second for Xen (dom0 speaks first) and Linux (its first kernel's panic is the crash itself);
    # nothing if it never spoke
    lines = log_text.splitlines()
    kernels = [i for i, ln in enumerate(lines) if "Linux version" in ln]
    nth = 0 if row.hypervisor == "hv" else 1
    kdump_lines = lines[kernels[nth]:] if len(kernels) > nth else []
    said = [ln.strip() for ln in kdump_lines if any(b in ln for b in runner.LINUX_BAD)]
    res["kdump_kernel_said"] = re.sub(r"^\[[ \d.]+\] ", "", said[0]) if said else ""
    if not os.path.exists(dump) or rank != runner.PASS:
        res.update(notes=None, interrupted=None, victims=None, crasher_rip=None, pids=None, gdb_threads=None,
                   rips=[])
        return res
    if row.is_own_linux:
        kallsyms = dump[:-len(".vmcore")] + ".kallsyms"
        elf, symbols = None, (Kallsyms(kallsyms) if os.path.exists(kallsyms) else lambda rip: "?")
    else:
        elf = runner.XEN_CP_SYMS if row.is_xen_crashpath else runner.XEN_SYMS if row.is_xen else runner.HV_ELF
        symbols = crashpath_dump.Symbols(elf)
    in_crash_path = crash_path_test(row, log_text)
    notes = prstatus_notes(dump)
    rips = [(pid, rip, symbols(rip)) for pid, rip in notes]
    crasher = crashing_pid(row, dump, rips, in_crash_path)
    victims = [(pid, rip, sym) for pid, rip, sym in rips if pid != crasher or crasher is None]
    if crasher is None and victims:
        victims = victims[1:]       # Xen's own: one of them crashed, which one no note says
    crashed = [sym for pid, rip, sym in rips if pid == crasher] or \
        ([f"every note: {rips[0][2]}"] if len({sym for _, _, sym in rips}) == 1 else ["?"])
    res.update(notes=len(notes), pids=len({pid for pid, _ in notes}),
               victims=len(victims),
               interrupted=sum(1 for _, rip, sym in victims if not in_crash_path(rip, sym)),
               crasher_rip=crashed[0],
               gdb_threads=gdb_threads(elf, dump),
               rips=[f"pid {pid} {rip:#x} {sym}" for pid, rip, sym in rips])
    saved = re.search(r"vmcore-check: saved \S+, [^:]*: ([\d.]+) MiB of ([\d.]+) MiB in ([\d.]+) s", log_text)
    if saved:
        res["saved_mib"], res["raw_mib"], res["save_s"] = map(float, saved.groups())
    return res


def cell(res, key):
    v = res.get(key)
    if key == "booted":
        return "yes" if v else "NO"
    if v is None:
        return "-"
    if key == "interrupted":
        return f"{v}/{res['victims']}"
    if key == "crasher_rip":
        return f"`{v}`"
    return f"{v}/{res['cpus']}"


def table(results):
    """The side-by-side table, Markdown (it prints as it reads)."""
    head = ("| row | crash path | run | kdump kernel booted | NT_PRSTATUS notes | victims' interrupted context "
            "| crashing CPU's note | distinct pr_pid | gdb threads | crash to /init | the kdump kernel said |")
    lines = [head, "|" + "---|" * 11]
    for r in results:
        to_init = f"{r['to_init_s']:.1f} s" if r.get("to_init_s") is not None else "-"
        lines.append(f"| {r['case']} | {r['hypervisor']} | {r['rank']} | {cell(r, 'booted')} | {cell(r, 'notes')} "
                     f"| {cell(r, 'interrupted')} | {cell(r, 'crasher_rip')} | {cell(r, 'pids')} "
                     f"| {cell(r, 'gdb_threads')} | {to_init} "
                     f"| {r['kdump_kernel_said'] or '-'} |")
    return "\n".join(lines)


def write_doc(results, text, merged):
    versions = open(os.path.join(runner.XEN_DIR, "xen-version")).read().strip()
    runs = ("Runs of `make xen-kdump` merged into one table (`tests/compare.py --merge`, some rows run "
            "again)" if merged else "One run of `make xen-kdump`")
    block = (f"{DOC_BEGIN}\n{runs} on {datetime.date.today()}: QEMU {qemu_version()} (TCG, -cpu max), Debian's "
             f"Xen {versions} for its own kdump, Xen {XEN_SOURCE_VERSION} built with crashpath, Debian's Linux "
             f"6.1 as the kdump kernel.\n\n{text}\n{DOC_END}")
    doc = open(DOC).read()
    if DOC_BEGIN in doc and DOC_END in doc:
        doc = doc[:doc.index(DOC_BEGIN)] + block + doc[doc.index(DOC_END) + len(DOC_END):]
    else:
        doc += "\n" + block + "\n"
    open(DOC, "w").write(doc)


def qemu_version():
    out = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout
    m = re.search(r"version (\S+)", out)
    return m[1] if m else "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="run comparison rows whose name contains one of these")
    ap.add_argument("--doc", action="store_true", help="write the table into docs/comparison.md")
    ap.add_argument("--only", choices=["crashpath", "xen-crashpath", "xen", "linux"], help="run one crash path only")
    ap.add_argument("--no-run", action="store_true", help="with --merge: run nothing, only read the dumps again")
    ap.add_argument("--merge", action="store_true",
                    help="keep the other runs of build/compare/results.json (the runs made now replace theirs) "
                         "and read every dump and console again: one table from runs of different times")
    args = ap.parse_args()
    cases = [c for c in CASES if not args.names or any(n in c.name for n in args.names)]
    if not cases:
        sys.exit(f"compare: no row matches {args.names}")
    for path in (runner.HV, runner.HV_ELF, runner.LINUX_KERNEL, runner.LINUX_INITRD, runner.XEN_IMG,
                 runner.XEN_SYMS, runner.XEN_DOM0_INITRD, runner.LINUX_OWN_INITRD, runner.XEN_CP_IMG,
                 runner.XEN_CP_SYMS):
        if not os.path.exists(path):
            sys.exit(f"compare: {path} missing (make hv xen-images linux-own-kdump xen)")
    os.makedirs(OUT, exist_ok=True)
    results_path = os.path.join(OUT, "results.json")
    earlier = {}
    if args.merge and os.path.exists(results_path):
        earlier = {(r["case"], r["hypervisor"]): r for r in json.load(open(results_path))}
    results, crashpath_failed = [], 0
    for case in CASES:
        for row in (crashpath_row(case), xen_row(case, with_crashpath=True), xen_row(case), linux_row(case)):
            selected = not args.no_run and case in cases and (not args.only or row.hypervisor == {
                "crashpath": "hv", "xen-crashpath": "xencp"}.get(args.only, args.only))
            log_path = os.path.join(runner.BUILD, "scenarios", row.name + ".log")
            if selected:
                rank, what, elapsed, log_path = runner.run_row(row, False)
                console = "" if rank == runner.PASS else f"  (console: {os.path.relpath(log_path, ROOT)})"
                print(f"{rank} {row.name:40s} {elapsed:5.1f} s  {what}{console}", flush=True)
                if rank != runner.PASS and row.is_crashpath:
                    crashpath_failed += 1
                    runner.print_console_tail(log_path)
            elif (case.name, NAMES[row.hypervisor]) in earlier:
                r = earlier[(case.name, NAMES[row.hypervisor])]
                rank, what, elapsed = r["rank"], r["what"], r["seconds"]
            else:
                continue
            results.append(analyse(case, row, rank, what, elapsed, log_path))
    text = table(results)
    print()
    print(text)
    with open(results_path, "w") as f:
        json.dump(results, f, indent=1)
    if args.doc:
        write_doc(results, text, args.merge)
        print(f"\n(table written to {os.path.relpath(DOC, ROOT)})")
    print(f"\n{sum(r['rank'] == runner.PASS for r in results)} runs ended with a saved dump, "
          f"{crashpath_failed} crashpath runs failed")
    return 1 if crashpath_failed else 0


if __name__ == "__main__":
    sys.exit(main())
