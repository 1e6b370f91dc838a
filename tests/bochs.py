# SPDX-License-Identifier: BSD-2-Clause
"""bochs — the scenario runner's second CPU model: Bochs 2.7, whose CPU, NMI, IRET and local APIC
models were written independently of QEMU's and which emulates what QEMU's TCG does not (Intel
VMX, CET shadow stacks and IBT, PCID). A row runs here when its cpu column says bochs:MODEL.

Bochs has no multiboot loader and no isa-debug-exit: the reference hypervisor and its kdump
module boot from a GRUB ISO, and the verdict is read from the serial console alone (the
runner turns the console's last word into the status QEMU's debug-exit would have given).
Python 3 standard library only.
"""
import os
import shutil
import subprocess

BIOS = "/usr/share/bochs/BIOS-bochs-latest"
VGABIOS = "/usr/share/vgabios/vgabios.bin"
# Bochs 2.7 registers a timer per CPU and stops past its table ("register_timer: too many
# registered timers") above 15 CPUs, or 16 without the HPET (tried here).
MAX_CPUS = 16
# What each model has (Bochs 2.7's CPUID for it; ../shared/reference/bochs-and-xen.md):
# a row that needs what its model lacks is skipped by the reference hypervisor, which asks
# CPUID itself; this table only names the models the runner accepts.
MODELS = {
    "tigerlake": "Intel: VMX, CET shadow stacks and IBT, x2APIC, PCID, SMEP, SMAP, UMIP, FSGSBASE",
    "corei7_icelake_u": "Intel: VMX, x2APIC, PCID, no CET",
    "corei7_skylake_x": "Intel: VMX, x2APIC, PCID, no CET",
    "ryzen": "AMD: SVM, no x2APIC, no VMX",
}
INSTRUCTIONS_PER_SECOND = 50000000


def model_of(cpu):
    """The Bochs model of a cpu column value bochs:MODEL, or None for a QEMU row."""
    return cpu.split(":", 1)[1] if cpu.startswith("bochs:") else None


def why_not(row):
    """Why the row cannot run under Bochs at all, or None. (A missing CPU feature is not a
    reason here: the reference hypervisor finds it out and ends the row as SKIP.)"""
    if model_of(row.cpu) not in MODELS:
        return f"unknown Bochs model {model_of(row.cpu)!r} (known: {', '.join(MODELS)})"
    if row.events:
        return "its events are injected through QEMU's monitor (QMP), which Bochs has not"
    if row.topology:
        return "its APIC ID topology is QEMU's -smp/-device (Bochs numbers CPUs 0..N-1)"
    if row.cpus > MAX_CPUS:
        return f"Bochs 2.7 runs at most {MAX_CPUS} CPUs"
    if row.is_linux:
        # (Linux itself would also need IA32_MISC_ENABLE defined, cpu: msrs=, and minutes a row)
        return "the Linux rows copy the dump out over virtio-blk, which Bochs has not"
    return None


def grub_cfg(hv_cmdline, modules):
    """GRUB 2 hands a module only the words after its file name, where QEMU's -initrd string
    includes the name: repeat the name so the reference hypervisor sees the same string."""
    lines = ["serial --unit=0 --speed=115200", "terminal_input serial", "terminal_output serial",
             "set timeout=0", "menuentry crashpath {", f"  multiboot /hv.elf32 {hv_cmdline}"]
    for name, args in modules:
        lines.append(f"  module /{name} {name} {args}".rstrip())
    return "\n".join(lines + ["}", ""])


def bochsrc(row, iso, console):
    model = model_of(row.cpu)
    lines = [
        # reset_on_triple_fault=0: a triple fault stops the machine and leaves no verdict,
        # a failure, instead of rebooting into a second run of the row
        f"cpu: model={model}, count={row.cpus}, ips={INSTRUCTIONS_PER_SECOND}, reset_on_triple_fault=0",
        "memory: guest=512, host=512",
        # fastboot: no F12 boot menu wait (5-34 s a run without it)
        f"romimage: file={BIOS}, options=fastboot",
        f"vgaromimage: file={VGABIOS}",
        f"ata0-master: type=cdrom, path={iso}, status=inserted",
        "boot: cdrom",
        f"com1: enabled=1, mode=file, dev={console}",
        "clock: sync=none",
        # Debian's build has no 'nogui'; an RFB display nobody connects to costs nothing
        'display_library: rfb, options="timeout=0"',
        # the sound plugin aborts without these
        "speaker: enabled=0",
        "sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy",
        "panic: action=fatal",
        f"log: {console}.bochs",
    ]
    if row.cpus >= MAX_CPUS:
        lines.append("pci: enabled=1, chipset=i440fx, advopts=nohpet")
    return "\n".join(lines) + "\n"


def prepare(row, base, hv, hv_cmdline, modules):
    """Write the ISO and bochsrc for one run under `base` (a path prefix). modules:
    (path, args) pairs, as QEMU's -initrd takes them. Returns (command, console path)."""
    iso_dir = base + ".iso.d"
    iso = base + ".iso"
    console = base + ".com1"
    for stale in (iso, console, console + ".bochs"):
        if os.path.exists(stale):
            os.unlink(stale)
    os.makedirs(os.path.join(iso_dir, "boot", "grub"), exist_ok=True)
    for path in [hv] + [m for m, _ in modules]:
        dst = os.path.join(iso_dir, os.path.basename(path))
        shutil.copyfile(path, dst)
    with open(os.path.join(iso_dir, "boot", "grub", "grub.cfg"), "w") as f:
        f.write(grub_cfg(hv_cmdline, [(os.path.basename(m), a) for m, a in modules]))
    made = subprocess.run(["grub-mkrescue", "-o", iso, iso_dir], capture_output=True, text=True)
    if made.returncode != 0:
        raise OSError(f"grub-mkrescue failed: {made.stderr.strip()[-300:]}")
    rc = base + ".bochsrc"
    with open(rc, "w") as f:
        f.write(bochsrc(row, iso, console))
    # Debian's bochs-bin has the internal debugger compiled in and waits at its prompt before
    # the first instruction: a command file holding 'c' lets it run.
    cont = base + ".bochs-rc"
    with open(cont, "w") as f:
        f.write("c\n")
    open(console, "wb").close()
    return ["bochs-bin", "-q", "-f", rc, "-rc", cont], console


def cleanup(base):
    """The ISO is 10 MB a row: keep only the console and the bochsrc."""
    if os.path.exists(base + ".iso"):
        os.unlink(base + ".iso")
    shutil.rmtree(base + ".iso.d", ignore_errors=True)
