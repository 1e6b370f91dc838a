#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""dump_tool_test.py — `make dump-tool-test`: runs crashpath-dump (each copy named on the command
line: the source, the installed one) on the dump the unit test kdump_core_file_for_crashpath_dump
wrote, checks its table and JSON against that test's crash, and checks that it refuses files that
are not crashpath dumps it can read.

Usage: dump_tool_test.py OUT_DIR UNIT_BIN TOOL...
OUT_DIR holds unit.core and unit.core.bias (the unit test binary's load bias); UNIT_BIN is that
binary, whose symbols name the RIPs once objcopy has moved them by the bias.
"""
import json
import os
import re
import struct
import subprocess
import sys

# What kdump_core_file_for_crashpath_dump did (tests/unit/test_kdump.c): five CPUs with the
# simulated machine's APIC IDs (2i + 1), CPU 1 crashing through th_crash.
OUTCOMES = ["answered", "crasher", "answered late", "not present", "timed out"]
APIC_IDS = [1, 3, 5, 7, 9]
SYMBOL_PREFIX = ["th_spin_loop+", "th_crash_ret+0x0", "th_spin_loop+", None, None]
REASON = "kdump test"
NT_CRASH_INFO = 0x43500002

failures = []
passed = 0


def check(cond, what):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(what)
        print(f"    check failed: {what}")


def run(tool, *args):
    return subprocess.run([tool, *args], capture_output=True, text=True)


def nm_address(binary, symbol):
    for line in subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == symbol:
            return int(parts[0], 16)
    raise SystemExit(f"dump_tool_test: no {symbol} in {binary}")


def info_note_at(core):
    """Offset of the crash-info note's header in the core file (found by its bytes, not by the
    tool, so a broken walk in the tool cannot hide here)."""
    head = struct.pack("<III", 10, 368, NT_CRASH_INFO) + b"CRASHPATH\0\0\0"
    at = core.find(head)
    if at < 0:
        raise SystemExit("dump_tool_test: no crash-info note of 368 bytes in the unit test's dump "
                         "(has struct crashpath_info_note changed? then teach tools/crashpath_dump.py)")
    return at


def check_json(tool, core, rebased, bias, unit_bin):
    r = run(tool, "--json", core, rebased)
    check(r.returncode == 0, f"--json exits 0 (got {r.returncode}: {r.stderr.strip()})")
    if r.returncode:
        return
    d = json.loads(r.stdout)
    cpus, info = d["cpus"], d["info"]
    check([c["cpu_index"] for c in cpus] == list(range(5)), "one CPU note per configured CPU, in index order")
    check([c["apic_id"] for c in cpus] == APIC_IDS, f"APIC IDs {[c['apic_id'] for c in cpus]}")
    check([c["outcome_name"] for c in cpus] == OUTCOMES, f"outcomes {[c['outcome_name'] for c in cpus]}")
    for c, want in zip(cpus, SYMBOL_PREFIX):
        got = c["rip_symbol"]
        check(got is None if want is None else (got or "").startswith(want),
              f"CPU {c['cpu_index']} RIP named {got!r}, want {want!r}...")
    # the name is the right one: the crasher's RIP is th_crash_ret where the binary was loaded
    check(cpus[1]["rip"] == nm_address(unit_bin, "th_crash_ret") + bias, "crasher's RIP is th_crash_ret (nm) + bias")
    check(cpus[3]["rsp"] is None and cpus[4]["rsp"] is None, "no registers for CPUs that saved none")
    wait_end = info["us_after_entry"]["wait_end"]
    lat = [c["latency_us"] for c in cpus]
    check(lat[0] is not None and 0 < lat[0] < wait_end, f"answered CPU's latency {lat[0]} us within the wait")
    check(lat[2] is not None and lat[2] > wait_end, f"late CPU's latency {lat[2]} us after the wait ({wait_end})")
    check(lat[1] is None and lat[3] is None and lat[4] is None, "no latency for crasher, absent, silent CPUs")
    check(info["reason"] == REASON, f"reason {info['reason']!r}")
    check((info["crashing_cpu"], info["crashing_apic_id"]) == (1, 3), "crashing CPU 1, APIC ID 3")
    check((info["nr_cpus"], info["nr_not_answered"], info["not_answered_cpus"]) == (5, 2, [2, 4]),
          f"5 CPUs, CPUs 2 and 4 not answered (got {info['nr_not_answered']}, {info['not_answered_cpus']})")
    check(info["timeout_ms"] == 300 and info["tsc_khz"] == 1000000, "timeout 300 ms, simulated TSC 1 GHz")
    # a CPU never started rules out the cluster send: one physical NMI per present victim
    check((info["send_mode_name"], info["send_used_name"], info["icr_writes"]) == ("cluster", "per-CPU", 3),
          f"send cluster configured, per-CPU used, 3 ICR writes (got {info['send_used_name']}, {info['icr_writes']})")
    check(info["integrity_name"] == "intact", f"kdump segments {info['integrity_name']}")
    after = info["us_after_entry"]
    check(0 <= after["gates_done"] <= after["nmis_sent"] <= after["wait_end"] <= after["handoff"],
          f"times in order: {after}")
    # the tool knows every field the library writes (the dump is this build's)
    unread = [k for k, v in info.items() if v is None] + [f"cpu{c['cpu_index']}.{k}" for c in cpus
                                                         for k in ("machine_checks", "faulted_steps") if c[k] is None]
    check(not unread and info["unknown_bytes"] == 0 and all(c["unknown_bytes"] == 0 for c in cpus),
          f"every field read, none left over (missing {unread}, {info['unknown_bytes']} bytes unread)")


def check_text(tool, core, rebased):
    r = run(tool, core, rebased)
    check(r.returncode == 0, f"text report exits 0 (got {r.returncode}: {r.stderr.strip()})")
    out = r.stdout
    for i, (apic, outcome, sym) in enumerate(zip(APIC_IDS, OUTCOMES, SYMBOL_PREFIX)):
        rest = rf"0x[0-9a-f]{{16}} {re.escape(sym)}" if sym else r"-\s+-\s+-"
        check(re.search(rf"^\s*{i}\s+{apic}\s+{re.escape(outcome)}\s+{rest}", out, re.M),
              f"table row for CPU {i}: APIC {apic}, {outcome}, {sym or 'no registers'}")
    check(re.search(r"^crash-info note \(format 3, crashpath \d+\.\d+\.\d+\):$", out, re.M), "crash-info heading")
    check(f'reason           "{REASON}"' in out, "reason line")
    check("crashing CPU     1 (APIC ID 3)" in out, "crashing CPU line")
    check("had not answered when the wait ended (CPU 2, 4)" in out, "not-answered line")
    check(re.search(r"^  resent NMIs\s+0$", out, re.M), "resent line")
    # without the hypervisor's ELF the table still has the RIPs, unnamed
    bare = run(tool, core).stdout
    check(re.search(r"^\s*1\s+3\s+crasher\s+0x[0-9a-f]{16}\s+0x[0-9a-f]{16}", bare, re.M) and "th_" not in bare,
          "without HV_ELF: RIPs printed without symbols")


def expect_refusal(tool, path, why, *more):
    r = run(tool, path, *more)
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 1 and not r.stdout and len(lines) == 1 and lines[0].startswith("crashpath-dump: ")
          and why in lines[0], f"{os.path.basename(path)} refused with one line saying {why!r} "
                               f"(got {r.returncode}: {r.stderr.strip()!r})")


def check_refusals(tool, out, core, unit_bin):
    with open(core, "rb") as f:
        data = f.read()
    text = os.path.join(out, "not-elf.txt")
    with open(text, "w") as f:
        f.write("not a dump\n")
    expect_refusal(tool, text, "not an ELF file")
    expect_refusal(tool, unit_bin, "not a core dump")
    # an ELF core with nothing in it: header only, no program headers
    empty = os.path.join(out, "empty.core")
    with open(empty, "wb") as f:
        f.write(b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, 0, 0, 0, 64, 56, 0, 64, 0, 0))
    expect_refusal(tool, empty, "no crashpath notes")
    # a crash-info note of a format this tool does not know
    at = info_note_at(data) + 24
    future = os.path.join(out, "format99.core")
    with open(future, "wb") as f:
        f.write(data[:at] + struct.pack("<I", 99) + data[at + 4:])
    expect_refusal(tool, future, "format 99")
    expect_refusal(tool, core, "not an ELF file", text)        # HV_ELF that is no ELF


def check_older_note(tool, out, core):
    """A dump from a build before resent and tsc_gates_done (format 3, a 352-byte crash-info
    note, like build/scenarios' older dumps): read, the missing fields said to be missing."""
    with open(core, "rb") as f:
        data = bytearray(f.read())
    at = info_note_at(data)
    struct.pack_into("<I", data, at + 4, 352)
    data[at + 24 + 352:at + 24 + 368] = bytes(16)     # that build's buffer ended in zeros there
    older = os.path.join(out, "older.core")
    with open(older, "wb") as f:
        f.write(data)
    r = run(tool, "--json", older)
    check(r.returncode == 0, f"352-byte crash-info note read (got {r.returncode}: {r.stderr.strip()})")
    if r.returncode == 0:
        info = json.loads(r.stdout)["info"]
        check(info["resent"] is None and info["tsc_gates_done"] is None and info["icr_writes"] == 3,
              "352-byte note: icr_writes read, resent and tsc_gates_done absent")
    check(re.search(r"^  gates rewritten\s+\(not in this note\)$", run(tool, older).stdout, re.M),
          "352-byte note: the text says what the note lacks")


def main():
    out, unit_bin, tools = sys.argv[1], sys.argv[2], sys.argv[3:]
    core = os.path.join(out, "unit.core")
    with open(core + ".bias") as f:
        bias = int(f.read(), 16)
    rebased = os.path.join(out, "run-unit.rebased")
    subprocess.run(["objcopy", f"--change-addresses={bias:#x}", unit_bin, rebased], check=True)
    for tool in tools:
        before = len(failures)
        check_json(tool, core, rebased, bias, unit_bin)
        check_text(tool, core, rebased)
        check_refusals(tool, out, core, unit_bin)
        check_older_note(tool, out, core)
        print(f"{'FAIL' if len(failures) > before else 'PASS'} crashpath-dump {tool}")
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
