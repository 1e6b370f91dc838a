# SPDX-License-Identifier: BSD-2-Clause
"""scenario_runner — boot the reference hypervisor under QEMU (TCG) for each row of
tests/scenarios.table, crash it, let the kdump kernel judge the dump, and report one line per
row, then "N passed, N failed". A QEMU exit status of 0, a missing verdict or a timeout is a
failure. Python 3 standard library only; QMP over a Unix socket for injected events.

The module behind tests/run-scenarios, imported by stress.py, bench.py and demo.py: rows are
Row records; a run is boot() (QEMU, the console scanned line by line, events injected on
their triggers), then judge() (the verdict from what the console and QEMU said), then, for a
Linux row, extract_dump() and check_dump_on_host().

  tests/run-scenarios                 every row
  tests/run-scenarios NAME...         rows whose name contains any NAME
  tests/run-scenarios --show NAME     also copy the console to the terminal
"""
import argparse
import dataclasses
import functools
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Callable, List, Optional

import bochs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = os.path.join(ROOT, "tests", "scenarios.table")
BUILD = os.path.join(ROOT, "build")
HV = os.path.join(BUILD, "hv", "hv.elf32")
HV_ELF = os.path.join(BUILD, "hv", "hv.elf")
# The Bochs rows boot the same hypervisor built with a CPU table of 16 (Makefile: hv16).
HV16 = os.path.join(BUILD, "hv16", "hv.elf32")
# Xen's own kdump, side by side with crashpath (tests/compare.py, make xen-kdump): Debian's Xen
# 4.17 (tests/xen/fetch.sh) and a dom0 initramfs that loads the same kdump kernel, initramfs
# and command line through kexec-tools
XEN_DIR = os.path.join(BUILD, "xen")
XEN_IMG = os.path.join(XEN_DIR, "xen.img")
XEN_SYMS = os.path.join(XEN_DIR, "xen-syms")
XEN_DOM0_INITRD = os.path.join(XEN_DIR, "dom0-initramfs.cpio.gz")
# Xen needs RAM for dom0 besides the crash area; the crash area is as large as the reference
# hypervisor's crash region (192 MiB), so the kdump kernel runs in the same memory
XEN_MEMORY = "1G"
XEN_CMDLINE = ("console=com1 com1=115200,8n1 dom0_mem=384M,max:384M crashkernel=192M loglvl=all "
               "guest_loglvl=all noreboot")
DOM0_CMDLINE = "console=hvc0 earlyprintk=xen rdinit=/init"
# Xen's debug keys on its serial line: three Ctrl-A switch the input to Xen, 'C' crashes it
XEN_CRASH_KEYS = (b"\x01\x01\x01", b"C")
XEN_CRASH_LINE = "'C' pressed -> triggering crashdump"
# Xen 4.17 with its crash path handed to crashpath (make xen, ports/xen): the same machine and
# dom0, the kdump kernel and initramfs given as multiboot modules marked for crashpath, and
# the glue's test key 'P', which calls panic() on the CPU that takes it
XEN_CP_IMG = os.path.join(XEN_DIR, "xen-crashpath.img")
XEN_CP_SYMS = os.path.join(XEN_DIR, "xen-crashpath-syms")
XEN_PANIC_KEYS = (b"\x01\x01\x01", b"P")
XEN_PANIC_LINE = "crashpath test key 'P' pressed"
XEN_CP_REASONS = {"crashkey": "xen-debug-key", "panickey": "xen-panic"}
# Linux's own kdump, side by side too: Debian's kernel as the first kernel, its /init
# (tests/kdump/linux/crash-init) loading the same kdump kernel, initramfs and command line with
# kexec_file_load and crashing through sysrq; the same RAM and crash area size as the
# reference hypervisor's machine
LINUX_OWN_INITRD = os.path.join(BUILD, "kdump", "linux", "crash-initramfs.cpio")
LINUX_OWN_CMDLINE = "console=ttyS0,115200 crashkernel=192M nokaslr no5lvl panic=-1 rdinit=/init"
LINUX_OWN_CRASH_LINE = "sysrq: Trigger a crash"
LINUX_KERNEL = os.path.join(BUILD, "kdump", "linux", "vmlinuz")
LINUX_INITRD = os.path.join(BUILD, "kdump", "linux", "initramfs.cpio.gz")
# linux-align16m: the same kernel with its header's kernel_alignment raised to 16 MiB, as
# distribution kernels built with CONFIG_PHYSICAL_ALIGN=0x1000000 ask (tests/kdump/linux/realign.py)
TARGETS = {"mini": os.path.join(BUILD, "kdump", "mini.bzImage"), "linux": LINUX_KERNEL,
           "linux-align16m": os.path.join(BUILD, "kdump", "linux", "vmlinuz-align16m")}
# The command line kdump users run, plus what our /init needs (one file, shared with the
# Linux-kdump side-by-side in make bench).
LINUX_CMDLINE = open(os.path.join(ROOT, "tests", "kdump", "linux", "cmdline")).read().strip()
# What the kdump kernel must never say about our dump.
LINUX_BAD = ["not sane", "Exceeded p_memsz", "Zero PT_NOTE entries", "ioremap on RAM",
             "vmcore not initialized", "Kernel panic"]
DISK_SIZE = 1 << 30
COLUMNS = ["name", "cpus", "apic", "cpu", "target", "timeout", "scenario", "crasher", "expect", "events"]
# isa-debug-exit: QEMU exits with (value << 1) | 1, so a guest can never produce 0.
MINI_PASS_STATUS = (0x10 << 1) | 1
MINI_FAIL_STATUS = (0x11 << 1) | 1
HV_SKIP_STATUS = (0x12 << 1) | 1       # tests/hv: the CPU model lacks a feature the row needs
HV_FAIL_STATUS = (0x13 << 1) | 1
# How a row ends, ranked as XTF ranks its tests: PASS; SKIP, the CPU model cannot run it (no
# SVM, VMX or CET); FAIL, crashpath or the row's expectation failed; ERROR, the harness itself
# broke (QEMU missing, QMP gone). The closing line counts ERROR among the failed.
PASS, SKIP, FAIL, ERROR = "PASS", "SKIP", "FAIL", "ERROR"


@dataclasses.dataclass
class Event:
    """WHAT@TRIGGER[*COUNT] of the table's events column."""
    what: str               # nmi | nmistorm | mce
    cpu: str                # for mce: a CPU number or "crasher"
    trigger: str            # console text that sets it off
    count: int = 1


@dataclasses.dataclass
class Row:
    """One scenario: a line of tests/scenarios.table, or one that stress.py or bench.py makes."""
    name: str
    cpus: int
    apic: str               # xapic | x2apic
    cpu: str                # QEMU -cpu model
    target: str             # a key of TARGETS
    timeout: float          # seconds of host time
    scenario: str           # halt | spin | nmi
    crasher: str            # a CPU number or "last"
    expect: str = "-"       # ';'-separated tokens, or '-'
    events: List[Event] = dataclasses.field(default_factory=list)
    halt_on: Optional[str] = None   # passes when the console shows this and no kdump kernel runs
    qemu_extra: List[str] = dataclasses.field(default_factory=list)
    topology: Optional["Topology"] = None   # APIC IDs the platform's way, not -smp N's dense 0..N-1
    machine: str = "pc"     # QEMU -machine; a topology row runs q35
    kdump_smp: bool = False  # the Linux kdump kernel without nr_cpus=1 (it starts the parked CPUs)
    kdump_save: str = "elf"  # the formats makedumpfile saves the dump in (vmcore-check's kdump.save=)
    dump_disk_mb: int = 0    # the dump disk's size (0: DISK_SIZE)
    verdict_fail: Optional[str] = None  # passes when vmcore-check says FAIL with this text
    hypervisor: str = "hv"   # hv: the reference hypervisor with crashpath; xencp: Xen 4.17 with
                             # crashpath (make xen); xen: Xen's own kdump; linux: Linux's own
                             # kdump (the last two: tests/compare.py)
    keep_dump: bool = False  # Xen with crashpath: keep the dump after a pass (others are deleted)
    long: bool = False       # left out of make check (its 20 minutes); --long, or its name, runs it
    dom0_extra: str = ""     # Xen rows: words added to dom0's command line (xk.nopurgatory=1, xk.spin=1);
                             # Linux's own: to the first kernel's (lk.spin=1)

    @property
    def bochs_model(self):
        """The Bochs CPU model if the row runs under Bochs (cpu column bochs:MODEL), else None."""
        return bochs.model_of(self.cpu)

    @property
    def emulator(self):
        return "Bochs" if self.bochs_model else "QEMU"

    def qemu_cpu_index(self, cpu):
        """QEMU's index of the reference hypervisor's CPU `cpu` (HMP mce takes it): the hypervisor
        numbers CPUs in APIC ID order; QEMU numbers a topology's CPUs by slot, present or not."""
        if not self.topology:
            return cpu
        return self.topology.slots().index(self.topology.present_cpus()[cpu])

    def smp_args(self):
        """QEMU's -machine, -smp and CPU -device arguments for this row."""
        if not self.topology:
            return ["-machine", self.machine, "-smp", str(self.cpus)]
        return self.topology.qemu_args(self.cpu)

    @property
    def is_xen(self):
        """Xen boots (its own crash path or crashpath's): Xen's machine, dom0, the debug keys."""
        return self.hypervisor in ("xen", "xencp")

    @property
    def is_xen_crashpath(self):
        return self.hypervisor == "xencp"

    @property
    def is_own_linux(self):
        return self.hypervisor == "linux"

    @property
    def is_crashpath(self):
        """The row crashes through crashpath (the reference hypervisor or Xen with crashpath);
        Xen's and Linux's own kdump rows are compared, not judged."""
        return self.hypervisor in ("hv", "xencp")

    @property
    def is_linux(self):
        return self.target.startswith("linux")

    @property
    def crasher_index(self):
        """The crashing CPU's index; None for "any" (Xen: wherever the key is taken)."""
        if self.crasher == "any":
            return None
        return self.cpus - 1 if self.crasher == "last" else int(self.crasher)

    @property
    def expect_tokens(self):
        return self.expect.split(";") if self.expect != "-" else []


@dataclasses.dataclass
class Topology:
    """The cpus column's sSOCKETScCORESsTHREADS[:S.C.T,...]: QEMU's topology, whose APIC IDs have
    the thread, core and socket numbers in separate bit fields (each as wide as its count needs),
    so IDs leave holes and sockets start high (1 << 8 with 256 cores). Without a list every CPU
    of the topology is present; with one, the boot CPU 0.0.0 is, and the listed ones are
    cold-plugged with -device, so a few vCPUs can have IDs of 256 and more."""
    sockets: int
    cores: int
    threads: int
    plugged: List[tuple]    # (socket, core, thread) besides the boot CPU; empty: all present

    @classmethod
    def parse(cls, text, where):
        m = re.fullmatch(r"s(\d+)c(\d+)t(\d+)(?::(\d+\.\d+\.\d+(?:,\d+\.\d+\.\d+)*))?", text)
        if not m:
            sys.exit(f"{where}: cpus must be N or sSOCKETScCOREStTHREADS[:S.C.T,...], not {text}")
        plugged = [tuple(int(x) for x in t.split(".")) for t in m.group(4).split(",")] if m.group(4) else []
        topo = cls(int(m.group(1)), int(m.group(2)), int(m.group(3)), plugged)
        for s_, c_, t_ in plugged:
            if s_ >= topo.sockets or c_ >= topo.cores or t_ >= topo.threads or (s_, c_, t_) == (0, 0, 0):
                sys.exit(f"{where}: CPU {s_}.{c_}.{t_} is not a pluggable CPU of {text}")
        return topo

    @property
    def possible(self):
        return self.sockets * self.cores * self.threads

    @property
    def present(self):
        return 1 + len(self.plugged) if self.plugged else self.possible

    def apic_id(self, socket, core, thread):
        """As QEMU (and the SDM's CPUID leaf 0xB) number them: each field as wide as its count needs."""
        width = lambda n: (n - 1).bit_length()
        return (socket << (width(self.cores) + width(self.threads))) | (core << width(self.threads)) | thread

    @property
    def max_apic_id(self):
        return self.apic_id(*self.present_cpus()[-1])

    def slots(self):
        """Every (socket, core, thread) of the topology, in QEMU's order: its CPU index."""
        return [(s_, c_, t_) for s_ in range(self.sockets) for c_ in range(self.cores) for t_ in range(self.threads)]

    def present_cpus(self):
        """The present CPUs in APIC ID order, as the reference hypervisor numbers them (MADT order)."""
        cpus = [(0, 0, 0)] + self.plugged if self.plugged else self.slots()
        return sorted(cpus, key=lambda c: self.apic_id(*c))

    def qemu_args(self, model):
        smp = f"sockets={self.sockets},cores={self.cores},threads={self.threads}"
        args = ["-machine", "q35"]
        if self.max_apic_id > 254:
            # A server with x2APIC IDs above 254 has interrupt remapping in extended (x2APIC)
            # mode: an IO-APIC or MSI message has 8 destination bits without it, and Linux
            # refuses x2APIC, and panics, if it finds none ("IRQ remapping doesn't support
            # X2APIC mode"). QEMU's documented way: an Intel IOMMU with intremap=on,eim=on.
            args += ["-device", "intel-iommu,intremap=on,eim=on"]
        if not self.plugged:
            return args + ["-smp", f"{self.possible},{smp}"]
        args += ["-smp", f"1,maxcpus={self.possible},{smp}"]
        for s_, c_, t_ in self.plugged:
            args += ["-device", f"{model}-x86_64-cpu,socket-id={s_},core-id={c_},thread-id={t_}"]
        return args


def parse_cpus(text, where):
    """The cpus column: a count, or a Topology. Returns (count, topology or None)."""
    if text.isdigit():
        return int(text), None
    topo = Topology.parse(text, where)
    return topo.present, topo


def load_table():
    rows = []
    for lineno, line in enumerate(open(TABLE), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != len(COLUMNS):
            sys.exit(f"{TABLE}:{lineno}: {len(fields)} columns, want {len(COLUMNS)}")
        f = dict(zip(COLUMNS, fields))
        cpus, topology = parse_cpus(f["cpus"], f"{TABLE}:{lineno}")
        row = Row(name=f["name"], cpus=cpus, topology=topology, apic=f["apic"], cpu=f["cpu"], target=f["target"],
                  timeout=float(f["timeout"]), scenario=f["scenario"], crasher=f["crasher"], expect=f["expect"],
                  events=parse_events(f["events"], f"{TABLE}:{lineno}"))
        if row.target not in TARGETS:
            sys.exit(f"{TABLE}:{lineno}: unknown target {row.target}")
        if row.bochs_model and bochs.why_not(row):
            sys.exit(f"{TABLE}:{lineno}: {row.name} cannot run under Bochs: {bochs.why_not(row)}")
        # expect token halt_on=TEXT: the row passes when the console shows TEXT
        # ('_' for a space) and no kdump kernel ever runs; kdump_smp=1: the Linux kdump
        # kernel runs without nr_cpus=1, so it starts every CPU crashpath parked;
        # kdump_save=FORMAT[,FORMAT]: what makedumpfile saves (elf, lzo); dump_disk_mb=N:
        # a dump disk of N MiB; verdict_fail=TEXT: the row passes when vmcore-check's
        # verdict is FAIL and says TEXT ('_' for a space)
        for tok in row.expect_tokens:
            key, _, value = tok.partition("=")
            if key == "halt_on":
                row.halt_on = value.replace("_", " ")
            elif tok == "kdump_smp=1":
                row.kdump_smp = True
            elif key == "kdump_save":
                row.kdump_save = value
            elif key == "dump_disk_mb":
                row.dump_disk_mb = int(value)
            elif key == "verdict_fail":
                row.verdict_fail = value.replace("_", " ")
            elif key == "hypervisor":
                if value != "xen":
                    sys.exit(f"{TABLE}: {row.name}: hypervisor=xen is the only other hypervisor")
                row.hypervisor = "xencp"
            elif key == "long":
                row.long = value == "1"
            elif key == "dom0_spin":
                row.dom0_extra = (row.dom0_extra + " xk.spin=1").strip()
            elif key == "dom0_offline":
                row.dom0_extra = (row.dom0_extra + f" xk.offline={value}").strip()
            elif key == "dom0_reonline":
                row.dom0_extra = (row.dom0_extra + " xk.reonline=1").strip()
        rows.append(row)
    names = [r.name for r in rows]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        sys.exit(f"{TABLE}: duplicate rows {sorted(dup)}")
    return rows


# An NMI storm runs from its trigger until the kdump kernel speaks (or this many).
STORM_MAX = 50000
STORM_END = ("mini: entered", "Linux version", "VERDICT:")


def parse_events(text, where):
    """events: '-' or ';'-separated WHAT@TRIGGER[*COUNT]: when a console line
    contains TRIGGER, inject WHAT (nmi: QMP inject-nmi, every CPU through
    LINT1) COUNT times; nmistorm: HMP nmi (the same) back to back from the trigger
    until the kdump kernel's first line; mce:CPU (a number or "crasher"): an
    uncorrected machine check into that CPU through HMP mce; crashkey: Xen's crash debug key
    typed on the serial line; panickey: the Xen glue's test key 'P', which calls panic()."""
    events = []
    if text == "-":
        return events
    for item in text.split(";"):
        what, _, rest = item.partition("@")
        trigger, _, count = rest.partition("*")
        what, _, cpu = what.partition(":")
        if what not in ("nmi", "nmistorm", "mce", "crashkey", "panickey") or not trigger or (what == "mce") != bool(cpu):
            sys.exit(f"{where}: bad event {item!r}")
        events.append(Event(what, cpu, trigger.replace("_", " "), int(count or 1)))
    return events


# An uncorrected machine check for HMP "mce CPU BANK STATUS MCG_STATUS ADDR MISC": bank 1,
# MCi_STATUS VAL|UC|EN, MCG_STATUS MCIP|RIPV. QEMU resets the machine if one comes while MCIP is
# still set ("Previous MCE still in progress"), as a shutdown would on hardware: crashpath_mce_crash must
# have cleared it.
MCE_ARGS = "1 0xb000000000000000 0x5 0 0"


def inject_mce(qmp, row, cpu, log):
    index = row.crasher_index if cpu == "crasher" else int(cpu)
    qemu_index = row.qemu_cpu_index(index)
    reply = qmp.command("human-monitor-command", **{"command-line": f"mce {qemu_index} {MCE_ARGS}"})
    log.write(f"# injected mce into CPU {index} (QEMU CPU {qemu_index}): {json.dumps(reply)}\n")
    if reply.get("return", None) != "":
        return f"mce into CPU {index} refused: {json.dumps(reply)}"
    return None


def mce_expectations(row):
    """What the row's machine checks make the dump show, derived from the events themselves:
    every CPU hit counts one in its note (cp.mce), and a victim hit after parking, whose #MC
    handler IRETs, is re-entered by its queued self-NMI (cp.reentered); the crasher never is.
    With crasher "any" (Xen) every CPU hit is listed and the checker drops the one that crashed."""
    hit = []
    for ev in row.events:
        if ev.what == "mce":
            cpu = row.crasher_index if ev.cpu == "crasher" else int(ev.cpu)
            if cpu is None:
                sys.exit(f"{row.name}: mce:crasher needs a known crasher, not 'any'")
            if cpu not in hit:
                hit.append(cpu)
    if not hit:
        return []
    victims = [c for c in hit if c != row.crasher_index]
    tokens = ["cp.mce=" + ",".join(map(str, hit))]
    if victims:
        tokens.append("cp.reentered=" + ",".join(map(str, victims)))
    return tokens


# expect tokens the runner keeps for itself
RUNNER_TOKENS = ("halt_on=", "kdump_smp=", "kdump_save=", "dump_disk_mb=", "verdict_fail=", "hypervisor=",
                 "dom0_spin=", "dom0_offline=", "dom0_reonline=", "long=")


def linux_cmdline(row):
    """The kdump kernel's command line: kdump users' own (every CPU for kdump_smp=1), and the
    formats vmcore-check has makedumpfile save."""
    words = LINUX_CMDLINE.split()
    if row.kdump_smp:
        words = [w for w in words if not w.startswith("nr_cpus=")]
    return " ".join(words + [f"kdump.save={row.kdump_save}"])


def hv_cmdline(row):
    """The reference hypervisor's command line: the row's knobs, which the hypervisor turns into
    the dump's expectations itself, and what the events imply."""
    args = [f"apic={row.apic}", f"scenario={row.scenario}", f"crash_cpu={row.crasher}"]
    args += [t for t in row.expect_tokens if not t.startswith(RUNNER_TOKENS)]
    args += mce_expectations(row)
    return " ".join(args)


def xen_cmdline(row):
    """Xen's command line: the kdump users' settings, xAPIC mode when the row says so (Xen
    otherwise switches to x2APIC wherever the CPU has it); with crashpath, its test key."""
    return (XEN_CMDLINE + (" x2apic=false" if row.apic == "xapic" else "") +
            (" crashpath-test-keys" if row.is_xen_crashpath else ""))


@functools.lru_cache(maxsize=None)
def xen_symbols():
    """{name: [(address, size), ...]} of the built xen-syms (nm -S), read once."""
    syms = subprocess.run(["nm", "-S", "--defined-only", XEN_CP_SYMS], capture_output=True, text=True,
                          check=True).stdout
    out = {}
    for ln in syms.splitlines():
        parts = ln.split()
        if len(parts) in (3, 4):
            out.setdefault(parts[-1], []).append((int(parts[0], 16), int(parts[1], 16) if len(parts) == 4 else 0))
    return out


@functools.lru_cache(maxsize=None)
def xen_crashpath_text():
    """(lo, hi) of crashpath's crash-time code inside Xen's xen-syms: the functions of the
    archive's .text (the load-time .text.crashpath_load excluded), found by name where the name
    is unique in xen-syms; no saved RIP may lie there."""
    archive = subprocess.run(["objdump", "-t", os.path.join(BUILD, "libcrashpath.a")], capture_output=True,
                             text=True, check=True).stdout
    names = {ln.split()[-1] for ln in archive.splitlines() if re.search(r"\sF \.text\s", ln)}
    spans = [v[0] for name, v in xen_symbols().items() if name in names and len(v) == 1]
    if not spans:
        sys.exit(f"run-scenarios: no crashpath function found in {XEN_CP_SYMS}")
    return min(a for a, _ in spans), max(a + n for a, n in spans)


def xen_text():
    """[_stext, _etext) of the Xen with crashpath: its code, which gdb names. A RIP outside it
    may still be Xen's (the per-CPU SYSCALL stubs Xen maps just below its image's end, where a
    PV guest's SYSCALL enters) or a guest's."""
    syms = xen_symbols()
    return syms["_stext"][0][0], syms["_etext"][0][0]


def xen_crashpath_kdump_cmdline(row):
    """The kdump kernel's command line for Xen with crashpath: what the dump must show, from
    what the row does (the crash key or the panic key; either CPU may take it)."""
    keys = [ev.what for ev in row.events if ev.what in XEN_CP_REASONS]
    lo, hi = xen_crashpath_text()
    words = [linux_cmdline(row), f"cp.cpus={row.cpus}", "cp.crasher=any",
             f"cp.reason={XEN_CP_REASONS[keys[0]] if keys else 'xen-crash'}", f"cp.lib={lo:#x}-{hi:#x}"]
    words += [t for t in row.expect_tokens if t.startswith("cp.")]
    words += mce_expectations(row)
    return " ".join(words)


def qemu_command(row, qmp_path, disk_path):
    if row.is_xen:
        kernel, append, memory = XEN_CP_IMG if row.is_xen_crashpath else XEN_IMG, xen_cmdline(row), XEN_MEMORY
        dom0 = f"{DOM0_CMDLINE} {row.dom0_extra}{' xk.crashpath=1' if row.is_xen_crashpath else ''}".strip()
    elif row.is_own_linux:
        # the kdump kernel saves its dump unjudged (crash-init passes kdump.* words on)
        kernel, memory = LINUX_KERNEL, "512M"
        append = f"{LINUX_OWN_CMDLINE} kdump.save={row.kdump_save} kdump.judge=none {row.dom0_extra}".strip()
    else:
        kernel, append, memory = HV, hv_cmdline(row), "512M"
    cmd = [
        "qemu-system-x86_64", "-accel", "tcg", "-cpu", row.cpu] + row.smp_args() + ["-m", memory,
        "-display", "none", "-no-reboot", "-nodefaults", "-monitor", "none", "-serial", "stdio",
        "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
        # two monitors: QMP for single events, and an HMP one of its own for an NMI storm
        # (class Storm says why not QMP)
        "-qmp", f"unix:{qmp_path},server=on,wait=off",
        "-chardev", f"socket,id=storm,path={qmp_path}.storm,server=on,wait=off",
        "-mon", "chardev=storm,mode=readline",
        "-kernel", kernel, "-append", append,
    ] + row.qemu_extra
    # multiboot modules, "file args" each, comma-separated (a comma in args is ",,")
    if row.is_xen_crashpath:
        # dom0 and its initramfs, then the kdump kernel (its command line after the marker) and
        # initramfs, which crashpath's glue claims before dom0 is built
        kdump = xen_crashpath_kdump_cmdline(row)
        cmd += ["-initrd", f"{LINUX_KERNEL} {dom0.replace(',', ',,')},{XEN_DOM0_INITRD},"
                f"{LINUX_KERNEL} crashpath=kernel {kdump.replace(',', ',,')},{LINUX_INITRD} crashpath=initrd",
                "-drive", f"file={disk_path},format=raw,if=none,id=dump", "-device", "virtio-blk-pci,drive=dump"]
    elif row.is_xen:
        # dom0 loads the kdump kernel and initramfs from its own initramfs (tests/xen/dom0-init)
        cmd += ["-initrd", f"{LINUX_KERNEL} {dom0.replace(',', ',,')},{XEN_DOM0_INITRD}",
                "-drive", f"file={disk_path},format=raw,if=none,id=dump", "-device", "virtio-blk-pci,drive=dump"]
    elif row.is_own_linux:
        cmd += ["-initrd", LINUX_OWN_INITRD,
                "-drive", f"file={disk_path},format=raw,if=none,id=dump", "-device", "virtio-blk-pci,drive=dump"]
    elif row.is_linux:
        cmd += ["-initrd", f"{TARGETS[row.target]} {linux_cmdline(row).replace(',', ',,')},{LINUX_INITRD}",
                "-drive", f"file={disk_path},format=raw,if=none,id=dump", "-device", "virtio-blk-pci,drive=dump"]
    else:
        cmd += ["-initrd", f"{TARGETS['mini']} console=ttyS0"]
    return cmd


def e2fs_tool(name):
    """mke2fs and debugfs live in /sbin, which a user's PATH may not hold."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin") or name


def make_dump_disk(disk_path, size):
    """The kdump kernel's dump disk: a sparse image holding an empty ext2 file system (e2fsprogs'
    mke2fs; a few inodes, no reserved blocks), which /init mounts at /var/crash."""
    with open(disk_path, "wb") as d:
        d.truncate(size)
    subprocess.run([e2fs_tool("mke2fs"), "-q", "-F", "-t", "ext2", "-L", "crashdump", "-N", "16", "-m", "0",
                    "-O", "^resize_inode", disk_path], check=True, capture_output=True)


def extract_dump(disk_path, name, out_path):
    """Copy file /NAME out of the dump disk's file system (e2fsprogs' debugfs, no mount, no
    root); returns out_path, or None when the disk holds no such file."""
    if os.path.exists(out_path):
        os.unlink(out_path)
    subprocess.run([e2fs_tool("debugfs"), "-R", f"dump /{name} {out_path}", disk_path], capture_output=True)
    return out_path if os.path.exists(out_path) and os.path.getsize(out_path) > 0 else None


def check_dump_on_host(row, dump, guest_notes, log):
    """readelf -n counts the notes vmcore-check counted inside the kdump kernel (guest_notes:
    NT_PRSTATUS, crashpath CPU notes), every CPU with a crashpath note; gdb opens the dump with
    one thread per saved CPU and unwinds each through the hypervisor's symbols."""
    notes = subprocess.run(["readelf", "-n", dump], capture_output=True, text=True).stdout
    log.write("# readelf -n\n" + notes)
    prstatus = notes.count("NT_PRSTATUS")
    cpu_notes = notes.count("(0x43500001)")
    info_notes = notes.count("(0x43500002)")
    if guest_notes is None:
        return "vmcore-check did not say how many notes it saw"
    want, want_cpu = guest_notes
    if prstatus != want or cpu_notes != want_cpu or cpu_notes != row.cpus or info_notes != 1:
        return (f"readelf -n: {prstatus} NT_PRSTATUS (vmcore-check saw {want}), {cpu_notes} CPU notes "
                f"(vmcore-check saw {want_cpu}, {row.cpus} CPUs), {info_notes} crash-info notes")
    elf = XEN_CP_SYMS if row.is_xen_crashpath else HV_ELF
    gdb = subprocess.run(["gdb", "-batch", "-nx", "-ex", "info threads", "-ex", "thread apply all bt 8",
                          elf, dump], capture_output=True, text=True, timeout=120).stdout
    log.write("# gdb info threads; thread apply all bt\n" + gdb)
    threads = [b for b in gdb.split("\nThread ")[1:]]
    if len(threads) != want:
        return f"gdb: {len(threads)} threads, want {want}"
    for t in threads:
        first = t.split("\n", 1)[0]
        frame0 = next((ln for ln in t.splitlines() if ln.startswith("#0")), "")
        if row.is_xen_crashpath:
            # What Xen was running: its idle loop, a hypercall, or guest context (dom0 is a PV
            # guest, whose code xen-syms cannot name); never crashpath's own code
            problem = xen_thread_problem(first, frame0, t)
            if problem:
                return problem
            continue
        if "??" in frame0 or not frame0:
            return f"gdb: thread {first}: innermost frame has no symbol: {frame0!r}"
        if "play_role" not in t:
            return f"gdb: thread {first}: backtrace does not reach the hypervisor's play_role"
    if row.name == READERS_ROW:
        return check_other_readers(row, dump, want, log)
    return None


def xen_thread_problem(first, frame0, thread):
    """Xen with crashpath: a thread's innermost frame must be Xen's code, named (or, for a CPU
    stopped in guest context, outside Xen's image), never inside crashpath's crash-time text;
    the crashing CPU's backtrace reaches kexec_crash() (its stack may lie in pages Xen freed
    from its image's .init and reaches through its direct map)."""
    if "crashpath_xen_crash" in frame0 and "kexec_crash" not in thread:
        return f"gdb: thread {first}: the crashing CPU's backtrace does not reach kexec_crash"
    m = re.match(r"#0\s+(?:(0x[0-9a-f]+) in )?(\S+)", frame0)
    if not m:
        return f"gdb: thread {first}: no innermost frame"
    lo, hi = xen_crashpath_text()
    rip = int(m[1], 16) if m[1] else None
    if rip is not None and lo <= rip < hi:
        return f"gdb: thread {first}: stopped inside crashpath's own code: {frame0!r}"
    text_lo, text_hi = xen_text()
    if m[2] == "??" and (rip is None or text_lo <= rip < text_hi):
        return f"gdb: thread {first}: a RIP in Xen's text without a symbol: {frame0!r}"
    return None


# The Xen row whose dump stays in build/scenarios after a pass, for gdb (the others are deleted).
XEN_KEPT_DUMP_ROW = "xen-crashkey-4-x2apic"
# The Linux row whose dump every other reader a user may reach for must open as well (make demo's).
READERS_ROW = "linux-4-x2apic"
# Debian's python3-drgn is built for the system Python, not a python3 that PATH may put first.
SYSTEM_PYTHON = "/usr/bin/python3"
DRGN_THREADS = """
import sys, drgn
prog = drgn.Program()
prog.set_core_dump(sys.argv[1])
try:
    prog.load_debug_info([sys.argv[2]])
except drgn.MissingDebugInfoError:
    pass
for t in prog.threads():
    trace = t.stack_trace()
    print("thread", t.tid, getattr(trace[0], "name", None) if len(trace) else None)
"""


def check_other_readers(row, dump, want, log):
    """elfutils (eu-readelf -n, eu-stack --core), drgn and lldb each find one thread per saved
    CPU; drgn names the crasher's innermost frame from the hypervisor's symbols."""
    def run(cmd):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        log.write(f"# {' '.join(cmd)}\n{out.stdout}{out.stderr}")
        return out.stdout + out.stderr

    notes = run(["eu-readelf", "-n", dump])
    if notes.count(" PRSTATUS") != want or notes.count(" PRPSINFO") != 1:
        return f"eu-readelf -n: {notes.count(' PRSTATUS')} PRSTATUS (want {want}), {notes.count(' PRPSINFO')} PRPSINFO"
    # eu-stack names no function (libdwfl finds modules only through ELF headers or build IDs
    # in the dumped memory) and so exits 1; what matters is that it attaches and unwinds
    stack = run(["eu-stack", "--core", dump, "-e", HV_ELF])
    tids = sum(1 for ln in stack.splitlines() if ln.startswith("TID "))
    if "PID 1 - core" not in stack or tids != want:
        return f"eu-stack --core: {tids} threads (want {want}): {stack.strip().splitlines()[:1]}"
    drgn = run([SYSTEM_PYTHON, "-c", DRGN_THREADS, dump, HV_ELF])
    threads = [ln.split() for ln in drgn.splitlines() if ln.startswith("thread ")]
    crasher = [t for t in threads if t[1] == str(row.crasher_index + 1)]
    if len(threads) != want or not crasher or crasher[0][2] == "None":
        return f"drgn: {len(threads)} threads (want {want}), crasher's frame {crasher[0][2] if crasher else '?'}"
    lldb = run(["lldb", "-b", "-o", f"target create --arch x86_64-pc-linux --core {dump} {HV_ELF}",
                "-o", "thread list"])
    lthreads = sum(1 for ln in lldb.splitlines() if "thread #" in ln)
    if lthreads != want:
        return f"lldb: {lthreads} threads (want {want})"
    return None


QMP_TIMEOUT = 10


class Storm(threading.Thread):
    """HMP `nmi` (QEMU's inject-nmi: every CPU through LINT1) back to back, on a human monitor of
    its own, until stopped. Not QMP: after thousands of QMP commands, QEMU 10 failed about once
    in 250 runs to exit when the guest wrote its verdict to isa-debug-exit, its main thread
    waiting for ever in monitor_cleanup() for the QMP dispatcher coroutine, whether the storm's
    connection was cut mid-command or closed cleanly (the runner logs a timed-out QEMU's thread
    backtraces). A human monitor runs its commands from the chardev's read handler; the QMP
    dispatcher never sees the storm."""

    PROMPT = b"(qemu) "

    def __init__(self, hmp_path, deadline, log):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.count = 0
        self.log = log
        self.sock = None
        while time.time() < deadline and self.sock is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(hmp_path)
                s.settimeout(QMP_TIMEOUT)
                self.sock = s
            except OSError:
                s.close()
                time.sleep(0.05)
        if self.sock is None:
            raise OSError(f"no human monitor at {hmp_path}")
        self.buf = b""
        self.until_prompt()          # the banner

    def until_prompt(self):
        while self.PROMPT not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise OSError("human monitor closed")
            self.buf += chunk
        self.buf = self.buf.split(self.PROMPT, 1)[1]

    def run(self):
        while not self.stop.is_set() and self.count < STORM_MAX:
            try:
                self.sock.sendall(b"nmi\n")
                self.until_prompt()
            except OSError:
                break
            self.count += 1

    def finish(self):
        self.stop.set()
        # the command in flight gets its prompt back before the connection closes; only a
        # QEMU that stopped answering gets its socket shut under it
        self.join(timeout=QMP_TIMEOUT)
        if self.is_alive():
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.join(timeout=5)
        self.sock.close()
        self.log.write(f"# NMI storm: {self.count} HMP nmi\n")


class Qmp:
    """Just enough QMP to inject events."""

    def __init__(self, path, deadline):
        self.sock = None
        while time.time() < deadline:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                self.sock = s
                break
            except OSError:
                time.sleep(0.05)
        if self.sock:
            # never wait on QEMU for ever: a QEMU that is exiting may not answer
            self.sock.settimeout(QMP_TIMEOUT)
            self.file = self.sock.makefile("rw")
            self.file.readline()                              # greeting
            self.command("qmp_capabilities")

    def command(self, name, **arguments):
        msg = {"execute": name}
        if arguments:
            msg["arguments"] = arguments
        self.file.write(json.dumps(msg) + "\n")
        self.file.flush()
        while True:
            line = self.file.readline()
            if not line:
                raise OSError("QMP connection closed")
            reply = json.loads(line)
            if "return" in reply or "error" in reply:
                return reply

    def close(self):
        if self.sock:
            self.sock.close()


@dataclasses.dataclass
class Boot:
    """What one QEMU run of a row left: its status, the console's marks and verdict."""
    status: int
    timed_out: bool
    marks: dict             # crash, init, verdict (host times), bad, halted, skip, notes, refused, storm
    verdict: Optional[str]  # the VERDICT: line, if any
    pending: List[Event]    # events whose trigger never came
    elapsed: float
    log_path: str
    disk_path: str
    dump_path: str


def scan_console(row, line, marks):
    """Note what a console line says about the run: when the crash and the kdump kernel's /init
    came, the verdict, a complaint from Linux, crashpath saying it halts."""
    if line.startswith("VERDICT:"):
        marks.setdefault("verdict", time.time())
    if ("crashpath: CPU" in line and "crashing" in line) or XEN_CRASH_LINE in line or XEN_PANIC_LINE in line or \
            (row.is_own_linux and LINUX_OWN_CRASH_LINE in line):
        marks.setdefault("crash", time.time())
    if "Linux version" in line:
        marks["kernels"] = marks.get("kernels", 0) + 1
    if "kdump: /init reached" in line:
        marks.setdefault("init", time.time())
    if line.startswith("vmcore-check: saved "):
        # "vmcore-check: saved PATH, WHAT: X MiB of Y MiB in Z s"
        m = re.match(r"vmcore-check: saved (\S+), (.*): ([\d.]+) MiB of ([\d.]+) MiB in ([\d.]+) s", line)
        if m:
            marks.setdefault("saved", []).append(
                (os.path.basename(m[1]), m[2], float(m[3]), float(m[4]), float(m[5])))
    if line.startswith("vmcore-check: NOTES "):
        f = dict(kv.split("=") for kv in line.split("NOTES ", 1)[1].split())
        marks["notes"] = (int(f["prstatus"]), int(f["cpu"]))
    # (only the kdump kernel is heard: under Xen it is the second Linux to boot, after dom0; in
    # Linux's own kdump the first kernel panics on purpose)
    kdump_kernel = 1 if row.hypervisor == "hv" else 2
    if row.is_linux and any(b in line for b in LINUX_BAD) and marks.get("kernels", 0) >= kdump_kernel:
        marks.setdefault("bad", line.strip())
    if row.halt_on and row.halt_on in line:
        marks.setdefault("halted", line.strip())
    if line.startswith("hv: SKIP: "):
        marks.setdefault("skip", line[len("hv: SKIP: "):].strip())
    if line.startswith("hv: FAIL: "):
        marks.setdefault("hv_fail", line[len("hv: FAIL: "):].strip())
    if row.is_xen and line.startswith("dom0: FAIL"):
        # dom0's /init could not do its part (tests/xen/dom0-init): nothing the row waits for follows
        marks.setdefault("dom0_fail", line.strip())


class Injector:
    """The row's events, each injected once when its trigger shows on the console."""

    def __init__(self, row, qmp_path, log, serial_in=None):
        self.row, self.qmp_path, self.log = row, qmp_path, log
        self.serial_in = serial_in      # the emulator's serial input (QEMU's stdin), for crashkey
        self.pending = list(row.events)
        self.qmp = None
        self.storm = None

    def on_line(self, line, deadline, marks):
        if self.storm and any(t in line for t in STORM_END):
            self.storm.finish()
            marks["storm"] = self.storm.count
            self.storm = None
        for ev in [e for e in self.pending if e.trigger in line]:
            self.pending.remove(ev)
            problem = self.inject(ev, deadline)
            if problem:
                marks.setdefault("refused", problem)

    def inject(self, ev, deadline):
        try:
            if ev.what in ("crashkey", "panickey"):
                for keys in XEN_CRASH_KEYS if ev.what == "crashkey" else XEN_PANIC_KEYS:
                    self.serial_in.write(keys)
                    self.serial_in.flush()
                    time.sleep(0.2)
                self.log.write(f"# typed Xen's {'crash' if ev.what == 'crashkey' else 'panic'} key (Ctrl-A x3, "
                               f"{'C' if ev.what == 'crashkey' else 'P'})\n")
                return None
            if ev.what == "nmistorm":
                self.storm = Storm(self.qmp_path + ".storm", deadline, self.log)
                self.storm.start()
                return None
            if self.qmp is None:
                self.qmp = Qmp(self.qmp_path, deadline)
            if ev.what == "mce":
                return inject_mce(self.qmp, self.row, ev.cpu, self.log)
            for _ in range(ev.count):
                reply = self.qmp.command("inject-nmi")
                self.log.write(f"# injected nmi: {json.dumps(reply)}\n")
        except (OSError, ValueError) as e:
            # QEMU went away or stopped answering: the row cannot pass
            self.log.write(f"# QMP failed: {e}\n")
            return f"QMP {ev.what} failed: {e}"
        return None

    def finish(self, marks):
        if self.storm:
            self.storm.finish()
            marks["storm"] = self.storm.count
        if self.qmp:
            self.qmp.close()


def fresh_paths(row):
    base = os.path.join(BUILD, "scenarios", row.name)
    os.makedirs(os.path.dirname(base), exist_ok=True)
    for stale in (base + ".qmp", base + ".qmp.storm", base + ".disk", base + ".vmcore", base + ".vmcore.kdump",
                  base + ".kallsyms"):
        if os.path.exists(stale):
            os.unlink(stale)
    return base + ".log", base + ".qmp", base + ".disk", base + ".vmcore"


class PipeConsole:
    """QEMU's serial port on its stdout."""

    def __init__(self, proc):
        self.proc = proc

    def read(self, wait):
        """Bytes the console gave within `wait` seconds: b"" if none yet, None once it ended."""
        ready, _, _ = select.select([self.proc.stdout], [], [], wait)
        if not ready:
            return None if self.proc.poll() is not None else b""
        return os.read(self.proc.stdout.fileno(), 65536) or None


class FileConsole:
    """Bochs's serial port, written to a file as it comes."""

    def __init__(self, proc, path):
        self.proc, self.file = proc, open(path, "rb")

    def read(self, wait):
        chunk = self.file.read(65536)
        if chunk:
            return chunk
        if self.proc.poll() is not None:
            return self.file.read(65536) or None
        time.sleep(min(wait, 0.1))
        return b""


# Under Bochs nothing exits the machine: the console's last word is the status the mini
# verifier's and the hypervisor's isa-debug-exit would have given under QEMU.
CONSOLE_ENDS = (("VERDICT: PASS", MINI_PASS_STATUS), ("VERDICT: FAIL", MINI_FAIL_STATUS),
                ("hv: SKIP: ", HV_SKIP_STATUS), ("hv: FAIL: ", HV_FAIL_STATUS))


def start_machine(row, base, qmp_path, disk_path):
    """Start the row's emulator: (process, console, the command, status_from_console)."""
    if row.bochs_model:
        modules = [(TARGETS[row.target], "console=ttyS0")]
        cmd, console_path = bochs.prepare(row, base, HV16, hv_cmdline(row), modules)
        out = open(base + ".bochs-out", "wb")
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        out.close()
        return proc, FileConsole(proc, console_path), cmd, True
    cmd = qemu_command(row, qmp_path, disk_path)
    # stdin is the serial line's input: Xen rows type its crash key there
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.PIPE,
                            start_new_session=True)
    return proc, PipeConsole(proc), cmd, False


def boot(row, show, progress=None):
    """Run the row's emulator until it exits, or its console's last word (Bochs), or the row
    times out, scanning the console and injecting its events on their triggers."""
    log_path, qmp_path, disk_path, dump_path = fresh_paths(row)
    base = log_path[:-len(".log")]
    if row.is_linux:
        make_dump_disk(disk_path, (row.dump_disk_mb << 20) or DISK_SIZE)
    start = time.time()
    marks = {}
    deadline = start + row.timeout
    verdict = None
    console_status = None
    with open(log_path, "w") as log:
        proc, console, cmd, status_from_console = start_machine(row, base, qmp_path, disk_path)
        log.write("# " + " ".join(cmd) + "\n")
        injector = Injector(row, qmp_path, log, proc.stdin)
        buf = b""
        timed_out = False
        while True:
            left = deadline - time.time()
            if left <= 0:
                timed_out = console_status is None
                break
            chunk = console.read(min(left, 0.5))
            if chunk is None:
                break
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode("utf-8", "replace").rstrip("\r")
                log.write(line + "\n")
                if show:
                    print("  | " + line, flush=True)
                if progress:
                    progress(line)
                if line.startswith("VERDICT:"):
                    verdict = line
                halted_before = "halted" in marks
                scan_console(row, line, marks)
                if "dom0_fail" in marks:
                    deadline = min(deadline, time.time() + 1)
                if "halted" in marks and not halted_before:
                    # crashpath said it halts: give a kdump kernel a moment to prove it wrong
                    deadline = min(deadline, time.time() + 2)
                if status_from_console and console_status is None:
                    for word, code in CONSOLE_ENDS:
                        if line.startswith(word):
                            # the machine's last word: let the rest of the line drain, then stop
                            console_status = code
                            deadline = min(deadline, time.time() + 0.3)
                injector.on_line(line, deadline, marks)
        injector.finish(marks)
        if timed_out and proc.poll() is None and not row.bochs_model and "dom0_fail" not in marks:
            log.write(emulator_backtraces(proc.pid))
        if timed_out or console_status is not None:
            os.killpg(proc.pid, signal.SIGKILL)
            if "halted" in marks:
                timed_out = False
        try:
            status = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            status = proc.wait()
        if console_status is not None:
            status = console_status
        if buf:
            log.write(buf.decode("utf-8", "replace") + "\n")
        log.write(f"# exit status {status}, {time.time() - start:.1f} s\n")
    if row.bochs_model:
        bochs.cleanup(base)
    return Boot(status, timed_out, marks, verdict, injector.pending, time.time() - start, log_path,
                disk_path, dump_path)


def emulator_backtraces(pid):
    """Where a timed-out emulator's threads are (gdb attached for a moment), for the log: a row
    whose guest said its verdict but whose QEMU never exited is told apart from a guest hang."""
    try:
        out = subprocess.run(["gdb", "-batch", "-nx", "-p", str(pid), "-ex", "thread apply all bt 15"],
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        out = f"(gdb could not attach: {e})\n"
    return "# the emulator's threads at the timeout\n" + "".join("#   " + ln + "\n" for ln in out.splitlines()
                                                             if ln.startswith(("Thread", "#")))


def emulator_said(b):
    """Why Bochs stopped by itself, from its log (a PANIC, a triple fault), or ''."""
    log = b.log_path[:-len(".log")] + ".com1.bochs"
    if not os.path.exists(log):
        return ""
    said = [ln.strip() for ln in open(log, errors="replace") if ">>PANIC<<" in ln or "triple fault" in ln
            or "shutdown" in ln.lower()]
    return f"; Bochs: {said[-1][-160:]}" if said else ""


def judge(row, b):
    """The row's verdict from one boot: (rank, what to say)."""
    marks, verdict, status = b.marks, b.verdict, b.status
    if status == HV_SKIP_STATUS and "skip" in marks:
        return SKIP, marks["skip"]
    if "refused" in marks and marks["refused"].startswith("QMP"):
        return ERROR, marks["refused"]
    if "dom0_fail" in marks:
        return FAIL, marks["dom0_fail"]
    if b.timed_out:
        return FAIL, f"timeout after {row.timeout:.0f} s"
    if status == 0:
        return FAIL, f"{row.emulator} exited with status 0 (no debug-exit from the guest){emulator_said(b)}"
    if "halted" in marks:
        # a row whose expected end is crashpath refusing to jump: no kdump kernel may run
        if verdict is not None or "init" in marks:
            return FAIL, "a kdump kernel ran although crashpath should have halted"
        return PASS, f"halted as expected: {marks['halted']}"
    if verdict is None:
        if status == HV_FAIL_STATUS:
            return FAIL, "hypervisor failed: " + marks.get("hv_fail", "(no hv: FAIL line)")
        return FAIL, f"no verdict ({row.emulator} status {status}){emulator_said(b)}"
    if b.pending:
        return FAIL, f"event never triggered: {b.pending[0].trigger!r}"
    if "refused" in marks:
        return FAIL, marks["refused"]
    if row.verdict_fail:
        # a row whose expected end is vmcore-check failing the dump (a disk too small to save it)
        if verdict.startswith("VERDICT: FAIL") and row.verdict_fail in verdict and status == MINI_FAIL_STATUS:
            marks["failed_as_expected"] = True
            if os.path.exists(b.disk_path):
                os.unlink(b.disk_path)     # nothing on it to read
            return PASS, f"failed as expected: {verdict[len('VERDICT: FAIL '):]}"
        return FAIL, f"want a FAIL verdict saying {row.verdict_fail!r}, got {verdict!r} ({row.emulator} status {status})"
    if not verdict.startswith("VERDICT: PASS") or status != MINI_PASS_STATUS:
        return FAIL, f"{verdict[len('VERDICT: '):]} ({row.emulator} status {status})"
    what = verdict[len("VERDICT: PASS "):]
    if "bad" in marks:
        if row.is_crashpath:
            return FAIL, f"kdump kernel complained: {marks['bad']}"
        # Xen's and Linux's own dumps are compared, not judged: what the kdump kernel said is a result
        what += f"; kdump kernel complained: {marks['bad']}"
    if "storm" in marks:
        what += f"; {marks['storm']} NMIs injected"
    return PASS, what


def judge_linux_dump(row, b):
    """A Linux row's dump, saved by makedumpfile in the guest and read on the host: (passed, what
    to add). Every format saved is copied out (vmcore, vmcore.kdump); the disk is then deleted."""
    saved = b.marks.get("saved", [])
    if not extract_dump(b.disk_path, "vmcore", b.dump_path):
        return False, "no dump (/vmcore) on the dump disk"
    if row.is_own_linux:
        extract_dump(b.disk_path, "kallsyms", b.dump_path[:-len(".vmcore")] + ".kallsyms")
    for name, *_ in saved:
        if name != "vmcore" and not extract_dump(b.disk_path, name, b.dump_path + name[len("vmcore"):]):
            return False, f"vmcore-check saved {name}, but the dump disk holds none"
    os.unlink(b.disk_path)
    if not row.is_crashpath:
        # not crashpath's dump: tests/compare.py reads it (and, for Linux's own, the kernel's
        # text symbols the kdump kernel saved beside it, kdump.kallsyms=1)
        what = "; dump copied out"
    else:
        with open(b.log_path, "a") as log:
            problem = check_dump_on_host(row, b.dump_path, b.marks.get("notes"), log)
        if problem:
            return False, problem
        what = "; readelf and gdb agree" + ("; eu-readelf, eu-stack, drgn and lldb too" if row.name == READERS_ROW else "")
        if row.is_xen_crashpath and not row.keep_dump and row.name != XEN_KEPT_DUMP_ROW:
            # a dump of Xen's whole machine (130 MiB after makedumpfile): once checked, the
            # row's log keeps what readelf and gdb said of it
            os.unlink(b.dump_path)
            what += " (dump deleted)"
    if "crash" in b.marks and "init" in b.marks:
        what += (f"; crash to /init {b.marks['init'] - b.marks['crash']:.1f} s, "
                 f"to verdict {b.marks['verdict'] - b.marks['crash']:.1f} s")
    return True, what


def on_bochs(rows, model):
    """The QEMU rows again on Bochs model `model`, each named MODEL/NAME (its files go to
    build/scenarios/MODEL/); rows the table already runs under Bochs are left out."""
    out = []
    for row in rows:
        if row.bochs_model:
            continue
        out.append(dataclasses.replace(row, name=f"{model}/{row.name}", cpu=f"bochs:{model}", machine="pc"))
    return out


def run_row(row, show, progress: Optional[Callable[[str], None]] = None):
    """One row: boot, judge, and for Linux the dump on the host. Returns (rank, what, seconds,
    console log path); rank is PASS, SKIP, FAIL or ERROR. A row Bochs cannot run at all (QMP
    events, a QEMU topology, a Linux row) is a SKIP that says why."""
    if row.bochs_model and bochs.why_not(row):
        return SKIP, f"not under Bochs: {bochs.why_not(row)}", 0.0, ""
    try:
        b = boot(row, show, progress)
    except OSError as e:
        return ERROR, f"the harness could not run the row: {e}", 0.0, os.path.join(BUILD, "scenarios", row.name + ".log")
    rank, what = judge(row, b)
    if rank == PASS and row.is_linux and "halted" not in b.marks and "failed_as_expected" not in b.marks:
        ok, more = judge_linux_dump(row, b)
        rank, what = (PASS, what + more) if ok else (FAIL, more)
    return rank, what, b.elapsed, b.log_path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="run rows whose name contains one of these")
    ap.add_argument("--show", action="store_true", help="copy each console to the terminal")
    ap.add_argument("--list", action="store_true", help="list the rows and exit")
    ap.add_argument("--on", metavar="bochs:MODEL[,...]", help="the table's Bochs rows, then its QEMU rows "
                    f"again on each Bochs model named ({', '.join(bochs.MODELS)}); a row Bochs cannot run "
                    "is a SKIP that says why")
    ap.add_argument("--machine", choices=["qemu", "bochs"], help="only the table's rows of this emulator")
    ap.add_argument("--long", action="store_true", help="also the rows make check leaves out (long=1); "
                    "a row named on the command line runs anyway")
    args = ap.parse_args()
    rows = load_table()
    if not args.long:
        rows = [r for r in rows if not r.long or any(n in r.name for n in args.names)]
    if args.machine:
        rows = [r for r in rows if bool(r.bochs_model) == (args.machine == "bochs")]
    if args.on:
        models = [bochs.model_of(m) for m in args.on.split(",")]
        if any(m not in bochs.MODELS for m in models):
            sys.exit(f"run-scenarios: --on takes bochs:MODEL[,...], MODEL one of {', '.join(bochs.MODELS)}")
        rows = [r for r in rows if r.bochs_model] + [r for m in models for r in on_bochs(rows, m)]
    if args.names:
        rows = [r for r in rows if any(n in r.name for n in args.names)]
        if not rows:
            sys.exit(f"run-scenarios: no row matches {args.names}")
    if args.list:
        for r in rows:
            print(r.name)
        return 0
    needed = [HV16 if r.bochs_model else XEN_CP_IMG if r.is_xen_crashpath else HV for r in rows] + \
        [TARGETS[r.target] for r in rows]
    if any(r.is_xen_crashpath for r in rows):
        needed += [XEN_CP_SYMS, XEN_DOM0_INITRD]
    if any(r.is_linux for r in rows):
        needed += [LINUX_INITRD, HV_ELF]
    for path in dict.fromkeys(needed):
        if not os.path.exists(path):
            sys.exit(f"run-scenarios: {path} missing (make hv mini linux-kdump)")
    counts = {PASS: 0, SKIP: 0, FAIL: 0, ERROR: 0}
    results = {}
    for row in rows:
        rank, what, elapsed, log_path = run_row(row, args.show)
        results[row.name] = rank
        counts[rank] += 1
        console = "" if rank in (PASS, SKIP) else f"  (console: {os.path.relpath(log_path, ROOT)})"
        print(f"{rank} {row.name:28s} {elapsed:5.1f} s  {what}{console}", flush=True)
        if rank in (FAIL, ERROR):
            print_console_tail(log_path)
    print_matrix(rows, results)
    failed = counts[FAIL] + counts[ERROR]
    if counts[ERROR]:
        print(f"({counts[ERROR]} of the failures are harness errors, not crashpath's)")
    print(f"{counts[PASS]} passed, {failed} failed, {counts[SKIP]} skipped")
    return 1 if failed or not counts[PASS] else 0


def print_console_tail(log_path, lines=25):
    """A failed row's last console lines, indented under its result line: CI keeps only what
    the runner prints, and a hang is diagnosed by where the console stopped."""
    try:
        with open(log_path, "rb") as f:
            tail = f.read().decode("utf-8", "replace").splitlines()[-lines:]
    except OSError as e:
        print(f"    | (no console: {e})")
        return
    for line in tail:
        print(f"    | {line.rstrip()}")


def print_matrix(rows, results):
    """Rows x APIC mode: a row named BASE-xapic / BASE-x2apic (the mode the
    reference hypervisor ran in) is one line; '-' where the row has no such
    mode (it applies to one only), the result otherwise."""
    order, cells = [], {}
    for row in rows:
        base = row.name
        for suffix in ("-xapic", "-x2apic"):
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        if base not in cells:
            order.append(base)
            cells[base] = {}
        cells[base][row.apic] = results[row.name]
    width = max(len(b) for b in order)
    print(f"{'':{width}}  xAPIC  x2APIC")
    for base in order:
        c = cells[base]
        print(f"{base:{width}}  {c.get('xapic', '-'):5}  {c.get('x2apic', '-'):6}")
