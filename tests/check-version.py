#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""check-version.py — one version everywhere: include/crashpath.h's CRASHPATH_VERSION_MAJOR, MINOR
and PATCH, the newest released version in CHANGELOG.md and, given an installed crashpath.pc, its
Version line. Run by `make lint` and, on the installed copy, by `make embed`; exits 1 on a
mismatch. Usage: check-version.py [CRASHPATH.PC]"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def header_version():
    text = open(os.path.join(ROOT, "include", "crashpath.h")).read()
    parts = []
    for name in ("MAJOR", "MINOR", "PATCH"):
        m = re.search(rf"^#define CRASHPATH_VERSION_{name} (\d+)\s*$", text, re.M)
        if not m:
            sys.exit(f"version: include/crashpath.h defines no CRASHPATH_VERSION_{name}")
        parts.append(m.group(1))
    return ".".join(parts)


def changelog_version():
    """The first '## [X.Y.Z]' heading of CHANGELOG.md: the newest release ([Unreleased] is not one)."""
    for line in open(os.path.join(ROOT, "CHANGELOG.md")):
        m = re.match(r"## \[(\d+\.\d+\.\d+)\]", line)
        if m:
            return m.group(1)
    sys.exit("version: CHANGELOG.md has no released version (## [X.Y.Z] - DATE)")


def pc_version(path):
    for line in open(path):
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    sys.exit(f"version: {path} has no Version line")


def main():
    found = {"include/crashpath.h": header_version(), "CHANGELOG.md": changelog_version()}
    if len(sys.argv) > 1:
        found[sys.argv[1]] = pc_version(sys.argv[1])
    if len(set(found.values())) != 1:
        print("version: these disagree:")
        for where, version in found.items():
            print(f"  {where}: {version}")
        return 1
    print(f"version: {found['include/crashpath.h']} ({', '.join(os.path.basename(w) for w in found)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
