#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""check-spdx.py — every file git tracks names its license in an SPDX line within its first two
lines (the second after a shebang), save the few that cannot hold a comment, listed below with
the reason. Run by `make lint`; exits 1 listing each file without one. Usage: check-spdx.py"""
import fnmatch
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The licenses a file may name: LICENSE's. Another one only for a file that really is under it.
LICENSES = {"BSD-2-Clause"}
# ... and those: the Xen port's patches change Xen's own files, which are GPL-2.0-only.
PATH_LICENSES = [("ports/xen/patches/*.patch", "GPL-2.0-only")]

# Tracked files that carry no SPDX line, and why.
EXEMPT = [
    ("LICENSE", "the license text itself"),
    ("*.md", "documentation (Markdown)"),
    ("*.json", "data: JSON has no comments"),
    ("*.pyc", "Python bytecode"),
    ("tests/kdump/linux/cmdline", "data: the kdump kernel's command line, read verbatim"),
]

SPDX = re.compile(r"SPDX-License-Identifier:\s*(\S+)")


def tracked():
    """The files git tracks; outside a git checkout (a copied tree), every file but build/."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        return [f for f in out.stdout.decode().split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for top, dirs, names in os.walk(ROOT):
            dirs[:] = [d for d in dirs if not (top == ROOT and d in ("build", ".git"))]
            files += [os.path.relpath(os.path.join(top, n), ROOT) for n in names]
        return sorted(files)


def problem(path):
    """Why path fails the rule, or None."""
    try:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            head = [f.readline() for _ in range(2)]
    except UnicodeDecodeError:
        return "not text: give it an SPDX line or an EXEMPT entry in tests/check-spdx.py"
    except FileNotFoundError:
        return None                                   # deleted in the work tree, not yet in git
    for line in head:
        m = SPDX.search(line)
        if m:
            lic = m.group(1).rstrip("*/").strip()
            allowed = LICENSES | {l for pat, l in PATH_LICENSES if fnmatch.fnmatch(path, pat)}
            return None if lic in allowed else f"names {lic}, not {' or '.join(sorted(allowed))}"
    return "no SPDX-License-Identifier line in its first two lines"


def main():
    bad = []
    checked = 0
    for path in tracked():
        if any(fnmatch.fnmatch(path, pat) for pat, _ in EXEMPT):
            continue
        checked += 1
        why = problem(path)
        if why:
            bad.append(f"  {path}: {why}")
    if bad:
        print(f"spdx: {len(bad)} of {checked} files break the license-line rule:")
        print("\n".join(bad))
        return 1
    print(f"spdx: ok ({checked} files name {', '.join(sorted(LICENSES))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
