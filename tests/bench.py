#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""bench.py — `make bench`: crashpath's numbers, measured the same way every time. Timings come
from the dump itself (the crash-info note's TSCs and each CPU's answer TSC), read back by the
mini verifier; host wall time from the console. Nothing here is a test: no time is asserted.

Writes the table to the terminal, build/bench/results.json and build/bench/latency.svg."""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "build", "bench")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenario_runner as runner  # noqa: E402

CPU_COUNTS = [2, 4, 8, 16, 32, 64, 128, 255, 288, 1024]
SEND_MODES = {"cluster": "send=cluster", "per-cpu": "send=per", "all-but-self": "send=all"}
# Above 255 vCPUs: a two-socket server on q35 (pc stops at 255), each socket's IDs from a
# power of two (1024: 0..1023 dense; 288: 0..143 and 256..399).
PC_MAX_CPUS = 255
CLOCKS = {"tcg": [], "icount": ["-icount", "shift=0,sleep=off"]}
# -icount makes all vCPUs share one host thread in round-robin, and every
# instruction then costs more the more vCPUs there are (halted ones included):
# a run's host time grows with the CPU count, minutes at 255 and about 15 at 1024 (the reference
# hypervisor starts its APs together here, smp=parallel, or it would grow
# with the square).
# --icount-max-cpus bounds it. Guest time under icount is a function of the
# instructions executed: every run of a point gives the same figures, so above
# ICOUNT_ONE_RUN_ABOVE CPUs it runs once.
ICOUNT_MAX_CPUS = 1024
ICOUNT_ONE_RUN_ABOVE = 8
# Above 255 vCPUs a TCG run takes minutes too (1024 threads on the host's cores) and its
# figures are host scheduling more than anything: one run.
TCG_ONE_RUN_ABOVE = 255
STACK_BUDGET = 512
TEXT_BUDGET = 8192


def one_run(cpus, send, clock, index):
    topology = runner.Topology(2, cpus // 2, 1, []) if cpus > PC_MAX_CPUS else None
    row = runner.Row(name=f"bench-{cpus}-{send}-{clock}-{index}", cpus=cpus, topology=topology, apic="x2apic",
                     cpu="max", target="mini", timeout=600.0 + 2 * cpus, scenario="halt", crasher="last",
                     # under icount the APs start together (smp=parallel): one INIT wait for all
                     expect=SEND_MODES[send] + (";smp=parallel" if clock == "icount" else ""),
                     qemu_extra=list(CLOCKS[clock]))
    seen = {}

    def watch(line):
        now = time.time()
        if "crashpath: CPU" in line and "crashing" in line:
            seen.setdefault("crash", now)
        if line.startswith("VERDICT:"):
            seen.setdefault("verdict", now)
        if "BENCH " in line:
            seen["bench"] = dict(kv.split("=") for kv in line.split("BENCH ", 1)[1].split())
        if "STACK cpu=" in line:
            f = dict(kv.split("=") for kv in line.split("STACK ", 1)[1].split())
            seen.setdefault("stacks", {})[int(f["cpu"])] = int(f["bytes"])

    rank, what, elapsed, log_path = runner.run_row(row, False, watch)
    if rank != runner.PASS or "bench" not in seen:
        raise SystemExit(f"bench: run {row.name} failed: {what} (console: {log_path})")
    b = {k: int(v) for k, v in seen["bench"].items()}
    us = lambda ticks: ticks * 1000.0 / b["khz"]
    return {
        "shootdown_us": us(b["last_answer"] - b["entry"]) if cpus > 1 else 0.0,
        # crash entry to the last shootdown NMI sent: the election, every CPU's gates, the sends;
        # and of it, from the gates rewritten to the last NMI sent: the ICR writes alone
        "send_phase_us": us(b["sent"] - b["entry"]),
        "nmi_send_us": us(b["sent"] - b["gates"]),
        "icr_writes": b["icr_writes"],
        "send_used": b["send_used"],
        "entry_to_jump_us": us(b["handoff"] - b["entry"]),
        "integrity_us": us(b["integrity_ticks"]),
        "wall_crash_to_verdict_s": seen["verdict"] - seen["crash"],
        "stack_max": b["stack_max"],
        "stacks": seen.get("stacks", {}),
    }


# crashpath against Linux's own kdump: the same QEMU settings (CPUs, RAM, TCG), the same
# kdump kernel, initramfs and command line; host wall time from the crash to the kdump
# kernel's /init, from the console.
KDUMP_CPU_COUNTS = [2, 4, 8]


def crashpath_to_init(cpus, index):
    row = runner.Row(name=f"bench-kdump-crashpath-{cpus}-{index}", cpus=cpus, apic="x2apic", cpu="max",
                     target="linux", timeout=300.0, scenario="halt", crasher="last")
    seen = {}

    def watch(line):
        if "crashpath: CPU" in line and "crashing" in line:
            seen.setdefault("crash", time.time())
        if "kdump: /init reached" in line:
            seen.setdefault("init", time.time())
        # the shootdown as crashpath reports it: "crashpath: N of N CPUs answered, wait U us"
        m = re.search(r"CPUs answered, wait (\d+) us", line)
        if m:
            seen.setdefault("wait_us", int(m[1]))

    rank, what, elapsed, log_path = runner.run_row(row, False, watch)
    if rank != runner.PASS or "crash" not in seen or "init" not in seen:
        raise SystemExit(f"bench: {row.name} failed: {what} (console: {log_path})")
    dump = os.path.join(runner.BUILD, "scenarios", row.name + ".vmcore")
    if os.path.exists(dump):
        os.unlink(dump)
    return seen["init"] - seen["crash"], seen.get("wait_us")


def console_lines(proc, deadline):
    """The emulator's console, line by line, until it ends or the deadline passes (a silent
    emulator cannot hold the bench)."""
    console, buf = runner.PipeConsole(proc), b""
    while time.time() < deadline:
        chunk = console.read(min(0.5, max(0.0, deadline - time.time())))
        if chunk is None:
            return
        buf += chunk
        while b"\n" in buf:
            raw, buf = buf.split(b"\n", 1)
            yield raw.decode("utf-8", "replace").rstrip()


def own_kdump_to_init(row, crash_line, loaded_line=None):
    """Host seconds from `crash_line` to the kdump kernel's /init, where the run stops, for a
    row of Xen's or Linux's own kdump (tests/compare.py's machines); Xen's crash key is typed
    when `loaded_line` shows."""
    base = os.path.join(OUT, row.name)
    runner.make_dump_disk(base + ".disk", 64 << 20)
    cmd = runner.qemu_command(row, base + ".qmp", base + ".disk")
    seen = {}
    deadline = time.time() + row.timeout
    with open(base + ".log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.PIPE)
        for line in console_lines(proc, deadline):
            log.write(line + "\n")
            if loaded_line and loaded_line in line and "typed" not in seen:
                seen["typed"] = True
                for keys in runner.XEN_CRASH_KEYS:
                    proc.stdin.write(keys)
                    proc.stdin.flush()
                    time.sleep(0.2)
            if crash_line in line:
                seen.setdefault("crash", time.time())
            if "kdump: /init reached" in line:
                seen.setdefault("init", time.time())
                break
            if "dom0: FAIL" in line or "linux-crash: FAIL" in line:
                break
        proc.kill()
        proc.wait()
    os.unlink(base + ".disk")
    if "crash" not in seen or "init" not in seen:
        raise SystemExit(f"bench: {row.name} did not reach the kdump kernel's /init (console: {base}.log)")
    return seen["init"] - seen["crash"]


def xen_to_init(cpus, index, purgatory=True):
    """Xen's own kdump: Debian's Xen 4.17, dom0 loading the same kdump kernel, initramfs and
    command line with `kexec -p` (with -i, purgatory's checksum of the segments skipped, when
    purgatory is False), crashed by the 'C' key typed on the serial line; from Xen's "'C'
    pressed" line. Xen reports no shootdown time."""
    row = runner.Row(name=f"bench-kdump-xen{'' if purgatory else '-i'}-{cpus}-{index}", cpus=cpus, apic="x2apic",
                     cpu="max", target="linux", timeout=300.0, scenario="-", crasher="0", hypervisor="xen",
                     dom0_extra="" if purgatory else "xk.nopurgatory=1")
    return own_kdump_to_init(row, runner.XEN_CRASH_LINE, "dom0: kdump kernel loaded")


def linux_own_to_init(cpus, index):
    """Linux's own kdump: Debian's kernel boots with crashkernel=, its /init loads the kdump
    kernel with kexec_file_load (what `kexec -p -s` does) and crashes through sysrq; from
    Linux's "sysrq: Trigger a crash" line."""
    row = runner.Row(name=f"bench-kdump-linux-{cpus}-{index}", cpus=cpus, apic="x2apic", cpu="max",
                     target="linux", timeout=300.0, scenario="-", crasher="0", hypervisor="linux")
    return own_kdump_to_init(row, runner.LINUX_OWN_CRASH_LINE)


def library_size():
    out = subprocess.run(["size", "-A", os.path.join(ROOT, "build", "libcrashpath.a")],
                         capture_output=True, text=True).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in (".text", ".text.crashpath_load", ".data", ".bss", ".rodata"):
            sizes[parts[0]] = sizes.get(parts[0], 0) + int(parts[1])
    return sizes


def svg_plot(results, path):
    """Median shootdown latency against CPU count, one line per send mode and clock."""
    w, h, left, bottom = 720, 420, 70, 50
    series = {}
    for r in results:
        series.setdefault((r["send"], r["clock"]), []).append((r["cpus"], r["shootdown_median_us"]))
    ymax = max(v for pts in series.values() for _, v in pts) * 1.1 or 1
    xs = sorted({r["cpus"] for r in results})
    xpos = lambda c: left + (w - left - 20) * xs.index(c) / max(len(xs) - 1, 1)
    ypos = lambda v: h - bottom - (h - bottom - 20) * v / ymax
    colors = {("per-cpu", "tcg"): "#1f77b4", ("all-but-self", "tcg"): "#d62728", ("cluster", "tcg"): "#2ca02c",
              ("per-cpu", "icount"): "#6baed6", ("all-but-self", "icount"): "#fc9272", ("cluster", "icount"): "#98df8a"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="16" text-anchor="middle">crashpath shootdown latency (median, guest TSC)</text>',
           f'<line x1="{left}" y1="{h - bottom}" x2="{w - 20}" y2="{h - bottom}" stroke="black"/>',
           f'<line x1="{left}" y1="20" x2="{left}" y2="{h - bottom}" stroke="black"/>',
           f'<text x="{w / 2}" y="{h - 10}" text-anchor="middle">CPUs</text>',
           f'<text x="15" y="{h / 2}" transform="rotate(-90 15 {h / 2})" text-anchor="middle">microseconds</text>']
    for c in xs:
        out.append(f'<text x="{xpos(c)}" y="{h - bottom + 16}" text-anchor="middle">{c}</text>')
    for i in range(6):
        v = ymax * i / 5
        out.append(f'<text x="{left - 6}" y="{ypos(v) + 4}" text-anchor="end">{v:.0f}</text>')
        out.append(f'<line x1="{left}" y1="{ypos(v)}" x2="{w - 20}" y2="{ypos(v)}" stroke="#eee"/>')
    for n, (key, pts) in enumerate(sorted(series.items())):
        pts.sort()
        d = " ".join(f"{xpos(c):.1f},{ypos(v):.1f}" for c, v in pts)
        out.append(f'<polyline points="{d}" fill="none" stroke="{colors.get(key, "black")}" stroke-width="2"/>')
        out.append(f'<text x="{left + 10}" y="{36 + 16 * n}" fill="{colors.get(key, "black")}">{key[0]}, {key[1]}</text>')
    out.append("</svg>")
    open(path, "w").write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cpus", default=",".join(map(str, CPU_COUNTS)))
    ap.add_argument("--icount-max-cpus", type=int, default=ICOUNT_MAX_CPUS)
    ap.add_argument("--send", default=",".join(SEND_MODES), help="send modes to run, of " + ", ".join(SEND_MODES))
    ap.add_argument("--kdump-cpus", default=",".join(map(str, KDUMP_CPU_COUNTS)),
                    help="CPU counts for crashpath against Linux's own kdump ('' to skip)")
    ap.add_argument("--kdump-runs", type=int, default=5)
    ap.add_argument("--no-xen", action="store_true", help="leave Xen's own kdump out of the kdump comparison")
    args = ap.parse_args()
    counts = [int(c) for c in args.cpus.split(",") if c]
    os.makedirs(OUT, exist_ok=True)
    results, warnings = [], []
    print(f"{'CPUs':>4} {'send':<12} {'clock':<6} {'ICR writes':>10} {'send phase us':>13} {'of it NMIs us':>13} "
          f"{'shootdown med/max us':>22} {'entry->jump us':>15} {'SHA-256 us':>11} {'wall s':>7} {'stack max':>9}",
          flush=True)
    sends = [m for m in args.send.split(",") if m]
    for m in sends:
        if m not in SEND_MODES:
            ap.error(f"unknown send mode {m}")
    for cpus in counts:
        for send in sends:
            for clock in CLOCKS:
                if clock == "icount" and cpus > args.icount_max_cpus:
                    continue
                one = cpus > (ICOUNT_ONE_RUN_ABOVE if clock == "icount" else TCG_ONE_RUN_ABOVE)
                n = 1 if one else args.runs
                runs = [one_run(cpus, send, clock, i) for i in range(n)]
                sd = [r["shootdown_us"] for r in runs]
                r = {
                    "cpus": cpus, "send": send, "clock": clock, "runs": len(runs),
                    "icr_writes": runs[-1]["icr_writes"],
                    "send_phase_median_us": statistics.median(x["send_phase_us"] for x in runs),
                    "nmi_send_median_us": statistics.median(x["nmi_send_us"] for x in runs),
                    "shootdown_median_us": statistics.median(sd), "shootdown_max_us": max(sd),
                    "entry_to_jump_median_us": statistics.median(x["entry_to_jump_us"] for x in runs),
                    "integrity_median_us": statistics.median(x["integrity_us"] for x in runs),
                    "wall_crash_to_verdict_median_s": statistics.median(x["wall_crash_to_verdict_s"] for x in runs),
                    "stack_max_bytes": max(x["stack_max"] for x in runs),
                    "stack_per_cpu_last_run": runs[-1]["stacks"],
                }
                results.append(r)
                print(f"{cpus:>4} {send:<12} {clock:<6} {r['icr_writes']:>10} {r['send_phase_median_us']:>13.0f} "
                      f"{r['nmi_send_median_us']:>13.1f} "
                      f"{r['shootdown_median_us']:>10.0f} / {r['shootdown_max_us']:<9.0f} "
                      f"{r['entry_to_jump_median_us']:>15.0f} {r['integrity_median_us']:>11.0f} "
                      f"{r['wall_crash_to_verdict_median_s']:>7.2f} {r['stack_max_bytes']:>9}", flush=True)
                if r["stack_max_bytes"] > STACK_BUDGET:
                    warnings.append(f"WARNING: {cpus} CPUs {send} {clock}: victim stack use "
                                    f"{r['stack_max_bytes']} bytes exceeds the {STACK_BUDGET}-byte budget")
    # How the send phase grows: largest against smallest count of at least 16 CPUs measured,
    # per send mode and clock (the goal for the cluster send: at most 4 from 16 to 1024).
    growth = []
    for send in SEND_MODES:
        for clock in CLOCKS:
            pts = {r["cpus"]: r for r in results if r["send"] == send and r["clock"] == clock and r["cpus"] >= 16}
            if len(pts) >= 2:
                lo, hi = min(pts), max(pts)
                g = {"send": send, "clock": clock, "from_cpus": lo, "to_cpus": hi,
                     "icr_writes": [pts[lo]["icr_writes"], pts[hi]["icr_writes"]],
                     "send_phase_ratio": pts[hi]["send_phase_median_us"] / max(pts[lo]["send_phase_median_us"], 1e-9),
                     "nmi_send_ratio": pts[hi]["nmi_send_median_us"] / max(pts[lo]["nmi_send_median_us"], 1e-9)}
                growth.append(g)
    if growth:
        print("\nsend phase growth (crash entry to the last NMI sent, median):")
        for g in growth:
            print(f"  {g['send']:<12} {g['clock']:<6} {g['to_cpus']} / {g['from_cpus']} CPUs: "
                  f"send phase x{g['send_phase_ratio']:.2f}, of it the NMIs x{g['nmi_send_ratio']:.2f} "
                  f"(ICR writes {g['icr_writes'][0]} -> {g['icr_writes'][1]})")
    kdump = []
    kdump_counts = [int(c) for c in args.kdump_cpus.split(",") if c]
    if kdump_counts:
        print(f"\ncrash to the kdump kernel's /init, host wall time, median of {args.kdump_runs}, the runs "
              f"interleaved so that all see the same host load (same kernel, initramfs, command line, CPUs; "
              f"Xen: 1 GiB of RAM for dom0, the same 192 MiB crash area):")
        print(f"{'CPUs':>4} {'crashpath s':>12} {'its shootdown us':>17} {'Linux kdump s':>14} {'Xen s':>8} "
              f"{'Xen -i s':>9}", flush=True)
    xen = not args.no_xen
    for cpus in kdump_counts:
        ours, waits, theirs, xen_p, xen_i = [], [], [], [], []
        for i in range(args.kdump_runs):
            seconds, wait_us = crashpath_to_init(cpus, i)
            ours.append(seconds)
            waits.append(wait_us)
            theirs.append(linux_own_to_init(cpus, i))
            if xen:
                xen_p.append(xen_to_init(cpus, i, purgatory=True))
                xen_i.append(xen_to_init(cpus, i, purgatory=False))
        k = {"cpus": cpus, "runs": args.kdump_runs,
             "crashpath_crash_to_init_median_s": statistics.median(ours), "crashpath_all_s": ours,
             # the shootdown wait crashpath prints; Xen prints none ("Shot down all CPUs" only)
             "crashpath_shootdown_wait_median_us": statistics.median(w for w in waits if w is not None)
             if any(w is not None for w in waits) else None,
             "linux_kdump_crash_to_init_median_s": statistics.median(theirs), "linux_kdump_all_s": theirs}
        if xen:
            k.update(xen_crash_to_init_median_s=statistics.median(xen_p), xen_all_s=xen_p,
                     xen_no_purgatory_crash_to_init_median_s=statistics.median(xen_i), xen_no_purgatory_all_s=xen_i)
        kdump.append(k)
        cells = f"{statistics.median(xen_p):>8.2f} {statistics.median(xen_i):>9.2f}" if xen else f"{'-':>8} {'-':>9}"
        wait = k["crashpath_shootdown_wait_median_us"]
        print(f"{cpus:>4} {k['crashpath_crash_to_init_median_s']:>12.2f} {wait if wait is not None else '-':>17} "
              f"{k['linux_kdump_crash_to_init_median_s']:>14.2f} {cells}", flush=True)
    size = library_size()
    crash_text, load_text = size.get(".text", 0), size.get(".text.crashpath_load", 0)
    print(f"\nlibcrashpath.a: text {crash_text + load_text} bytes (crash path .text {crash_text}, load time "
          f".text.crashpath_load {load_text}), .rodata {size.get('.rodata', 0)}, "
          f".data {size.get('.data', 0)}, .bss {size.get('.bss', 0)}")
    if crash_text + load_text > TEXT_BUDGET:
        warnings.append(f"WARNING: text {crash_text + load_text} bytes exceeds the {TEXT_BUDGET}-byte budget "
                        f"(the crash path's own .text is {crash_text})")
    for wline in warnings:
        print(wline)
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    meta = {"date": datetime.date.today().isoformat(), "qemu": qemu, "host_cpu": cpu,
            "host": platform.platform(), "runs_per_point": args.runs}
    xen_version = os.path.join(runner.XEN_DIR, "xen-version")
    if not args.no_xen and os.path.exists(xen_version):
        meta["xen"] = open(xen_version).read().strip()
    json.dump({"meta": meta, "results": results, "send_phase_growth": growth, "kdump_vs_linux": kdump,
               "library_size": size,
               "warnings": warnings},
              open(os.path.join(OUT, "results.json"), "w"), indent=1)
    if results:     # --cpus '' runs the kdump comparison only
        svg_plot(results, os.path.join(OUT, "latency.svg"))
    print(f"\nwrote build/bench/results.json and build/bench/latency.svg ({meta['date']}, {qemu}, {cpu})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
