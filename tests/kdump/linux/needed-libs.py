#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""needed-libs.py — the shared libraries a dynamically linked program unpacked under ROOT needs,
found the way ld.so finds them (DT_NEEDED, transitively, in Debian's multiarch directories under
ROOT, never the host's), printed as mkinitramfs.py entries: the program interpreter at the path
the ELF names, each library under lib/x86_64-linux-gnu/ (the init exports LD_LIBRARY_PATH).
Usage: needed-libs.py ROOT PROGRAM"""
import os
import subprocess
import sys

SEARCH = ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "lib"]


def dynamic_info(path):
    """(interpreter or None, [DT_NEEDED names]) from readelf (binutils)."""
    out = subprocess.run(["readelf", "-ldW", path], capture_output=True, text=True, check=True).stdout
    interp, needed = None, []
    for line in out.splitlines():
        if "[Requesting program interpreter:" in line:
            interp = line.split(":", 1)[1].strip(" ]")
        elif "(NEEDED)" in line:
            needed.append(line.split("[", 1)[1].rstrip("]"))
    return interp, needed


def find(root, name):
    for d in SEARCH:
        p = os.path.join(root, d, name)
        if os.path.exists(p):
            return os.path.realpath(p)
    sys.exit(f"needed-libs: {name} is in none of {SEARCH} under {root} (fetch.sh downloads the packages)")


def main():
    root, program = sys.argv[1], sys.argv[2]
    interp, todo = dynamic_info(program)
    if not interp:
        sys.exit(f"needed-libs: {program} has no program interpreter (static?)")
    entries = {interp.lstrip("/"): find(root, os.path.basename(interp))}
    seen = set()
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        path = find(root, name)
        entries[f"lib/x86_64-linux-gnu/{name}"] = path
        todo += dynamic_info(path)[1]
    for dest, src in entries.items():
        print(f"{dest}={src}:755")


if __name__ == "__main__":
    main()
