#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""stress.py — randomized crash runs: each run draws, from its own seed, a scenario family,
2 to 16 CPUs, an APIC mode, a crashing CPU, and NMIs and machine checks injected at random
moments, then runs it through tests/scenario_runner.py (same verifier, same rules: a
missing verdict, a timeout or QEMU status 0 fails). A failing run prints the seed that
reproduces it.

  tests/stress.py                     200 runs from a random base seed (printed)
  tests/stress.py --seed N            exactly the run with seed N (make stress SEED=N)
  tests/stress.py --base B --runs R   runs with seeds B .. B+R-1 (make check: a fixed few)
"""
import argparse
import os
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenario_runner as runner  # noqa: E402

# Moments at which an NMI may be injected (console lines): before the crash (the
# hypervisor has its IDT by then), as the shootdown starts, once the victims have
# answered, and as the crasher hands off. Machine checks only once the crashing CPU
# has taken over: into a parked victim after it answered, into the crasher only once
# every #MC gate points at crashpath_trap_nop (before that its #MC is the host's, which panics
# into crashpath again; crashpath refuses the re-entry and the host gives up).
NMI_MOMENTS = ["kdump image loaded", "crashing:", "CPUs answered", "entering kdump kernel"]
VICTIM_MCE_MOMENTS = ["CPUs answered", "entering kdump kernel"]
CRASHER_MCE_MOMENT = "entering kdump kernel"

# family: (scenario, minimum CPUs, modes, how to specialise a run)
FAMILIES = ["halt", "spin", "nmi-crasher", "stuck-victim", "stuck-late", "two-crashers", "never-started",
            "lapic-disabled", "victim-went-x2apic", "gp-in-stop-hook", "ist-nmi-canary", "ist-mc-canary",
            "svm-guests", "svm-clgi"]


def pick_other(rng, cpus, taken):
    free = [i for i in range(cpus) if i not in taken]
    return rng.choice(free)


def make_run(seed):
    """The row for one seed: everything about it comes from random.Random(seed)."""
    rng = random.Random(seed)
    family = rng.choice(FAMILIES)
    min_cpus = 2 if family in ("halt", "spin", "nmi-crasher", "svm-guests") else 3
    cpus = rng.randint(min_cpus, 16)
    apic = "xapic" if family == "victim-went-x2apic" else rng.choice(["xapic", "x2apic"])
    crasher = rng.randrange(cpus)
    scenario = rng.choice(["halt", "spin"])
    expect = []
    special = {crasher}         # CPUs with a role of their own: no machine check for them
    quiet = set()               # CPUs that will not be parked normally when machine checks come

    if family == "nmi-crasher":
        scenario = "nmi"
    elif family in ("stuck-victim", "stuck-late"):
        stuck = pick_other(rng, cpus, special)
        special.add(stuck)
        expect += [f"stuck_cpu={stuck}", "timeout_ms=200"]
        if family == "stuck-late":
            expect += ["stuck_ms=900", "slow_console_ms=400"]
        quiet.add(stuck)
    elif family == "two-crashers":
        second = pick_other(rng, cpus, special)
        special.add(second)
        expect += [f"crash_cpu2={second}"]
        scenario = "halt"
    elif family == "never-started":
        absent = pick_other(rng, cpus, special | {0})
        special.add(absent)
        quiet.add(absent)
        expect += [f"nostart={absent}"]
    elif family == "lapic-disabled":
        expect += [f"lapic_off_cpu={pick_other(rng, cpus, special)}"]
    elif family == "victim-went-x2apic":
        cpu = pick_other(rng, cpus, special)
        expect += [f"x2apic_cpu={cpu}"]
    elif family == "gp-in-stop-hook":
        cpu = pick_other(rng, cpus, special)
        special.add(cpu)
        expect += [f"gp_in_hook_cpu={cpu}"]
    elif family in ("ist-nmi-canary", "ist-mc-canary"):
        cpu = pick_other(rng, cpus, special)
        expect += [f"ist_canary_cpu={cpu}", "ist_canary=" + ("mc" if family == "ist-mc-canary" else "nmi")]
        scenario = "spin"
        if family == "ist-mc-canary":
            # its machine check comes while its #MC gate is still the host's,
            # IST dropped: the frame must land below its RSP
            special.add(cpu)
            expect += ["slow_console_ms=400"]
            ist_mce = f"mce:{cpu}@CPUs_answered"
    elif family in ("svm-guests", "svm-clgi"):
        expect += ["svm=1"]
        scenario = "halt"
        if family == "svm-clgi":
            cpu = pick_other(rng, cpus, special)
            expect += [f"clgi_cpu={cpu}"]

    # A CPU that runs on its own NMI IST stack is only safe from NMIs once the
    # shootdown has dropped that IST: that is what the row is about.
    on_ist = family.startswith("ist-")
    moments = NMI_MOMENTS[1:] if on_ist else NMI_MOMENTS
    events = [ist_mce] if family == "ist-mc-canary" else []
    for _ in range(rng.randint(0, 3)):
        events.append(f"nmi@{rng.choice(moments)}*{rng.randint(1, 5)}".replace(" ", "_"))
    # (a storm delays the crash, which would move a late victim's answer into
    # the crasher's wait: no storm for it)
    if not on_ist and family != "stuck-late" and rng.random() < 0.15:
        events.append("nmistorm@kdump_image_loaded")
        expect.append("crash_delay_ms=200")
    # An SVM CPU busy in its host with an injected NMI's exit when the shootdown
    # comes parks through crashpath_nmi_crash instead of the VM exit: both are right.
    if family.startswith("svm-") and any(e.startswith(("nmi@kdump", "nmistorm")) for e in events):
        expect.append("cp.svm_entry=any")
    # Machine checks: into up to two parked victims, and perhaps into the crasher.
    victims = [i for i in range(cpus) if i not in special and i not in quiet]
    if victims and rng.random() < 0.6:
        for cpu in rng.sample(victims, min(len(victims), rng.randint(1, 2))):
            events.append(f"mce:{cpu}@{rng.choice(VICTIM_MCE_MOMENTS)}".replace(" ", "_"))
        # which of two crashers wins is not known in advance
        if family != "two-crashers" and rng.random() < 0.5:
            events.append(f"mce:crasher@{CRASHER_MCE_MOMENT}".replace(" ", "_"))
    if any(e.startswith("mce:") for e in events) and not any(t.startswith("slow_console_ms=") for t in expect):
        expect.append("slow_console_ms=400")

    # How the NMIs go out, and in x2APIC mode where the APIC IDs lie: a topology with holes,
    # sockets high (IDs of 256 and more), the CPUs picked from it. All-but-self would also
    # reach a CPU never started: not for that family.
    send = rng.choice(["cluster", "per"] + (["all"] if family != "never-started" else []))
    if send != "cluster":
        expect.append(f"send={send}")
    topology = None
    if apic == "x2apic" and rng.random() < 0.3:
        topology = runner.Topology(2, rng.choice([12, 100, 256]), rng.choice([1, 2, 3]), [])
        others = topology.slots()[1:]       # all but the boot CPU, 0.0.0
        topology.plugged = sorted(rng.sample(others, min(cpus - 1, len(others))))
        cpus = topology.present

    events_text = ";".join(events) if events else "-"
    row = runner.Row(name=f"stress-{seed}", cpus=cpus, topology=topology, apic=apic, cpu="max", target="mini",
                     timeout=120.0,
                     scenario=scenario, crasher=str(crasher), expect=";".join(expect) if expect else "-",
                     events=runner.parse_events(events_text, f"seed {seed}"))
    where = f" ids={[topology.apic_id(*c) for c in topology.present_cpus()]}" if topology else ""
    summary = f"{family} cpus={cpus}{where} {apic} {scenario} crasher={crasher} expect={row.expect} events={events_text}"
    return row, summary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, help="run exactly this seed")
    ap.add_argument("--base", type=int, help="first seed (default: random, printed)")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--show", action="store_true", help="copy each console to the terminal")
    args = ap.parse_args()
    for path in (runner.HV, runner.TARGETS["mini"]):
        if not os.path.exists(path):
            sys.exit(f"stress: {path} missing (make hv mini)")
    if args.seed is not None:
        seeds = [args.seed]
    else:
        base = args.base if args.base is not None else random.SystemRandom().randrange(1, 10**6)
        seeds = list(range(base, base + args.runs))
        print(f"stress: seeds {seeds[0]}..{seeds[-1]} ({len(seeds)} runs)", flush=True)
    passed, failed, start = 0, [], time.time()
    for seed in seeds:
        row, summary = make_run(seed)
        rank, what, elapsed, log_path = runner.run_row(row, args.show)
        if rank == runner.PASS:
            passed += 1
            print(f"PASS seed={seed:<7} {elapsed:5.1f} s  {summary}", flush=True)
        else:
            failed.append(seed)
            print(f"{rank} seed={seed:<7} {elapsed:5.1f} s  {summary}: {what}  (console: "
                  f"{os.path.relpath(log_path, ROOT)}; reproduce: make stress SEED={seed})", flush=True)
    print(f"stress: {len(seeds)} runs in {time.time() - start:.0f} s")
    if failed:
        print("failing seeds: " + " ".join(str(s) for s in failed))
    print(f"{passed} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
