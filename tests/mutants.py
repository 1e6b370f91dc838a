#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""mutants.py — break each protection of the crash path on purpose, one at a time, in a copy of
the tree, and require that the unit test named for it fails. A protection no test notices is a
protection nobody would notice losing. The mutants themselves are data: tests/mutants.toml.

  tests/mutants.py [TEXT]            the mutants of `make check` (rule or test containing TEXT)
  tests/mutants.py --suite xen       the Xen port's (make mutants-xen): each rebuilds Xen"""
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (rule broken, file, text to replace, replacement, test that must fail, suite), from
# tests/mutants.toml; suite "xen" mutants break the Xen port and need Xen rebuilt (2 minutes
# each), so they run apart (make mutants-xen)
with open(os.path.join(ROOT, "tests", "mutants.toml"), "rb") as table:
    MUTANTS = [(m["rule"], m["file"], m["old"], m["new"], m["test"], m.get("suite", "check"))
               for m in tomllib.load(table)["mutant"]]

sys.path.insert(0, os.path.join(ROOT, "tests"))
import scenario_runner  # noqa: E402  (the table, read the runner's way)


def images_for(name):
    """The hypervisor images the rows run-scenarios NAME selects (every row whose name contains
    it) boot: QEMU's, the 16-CPU Bochs build, or both."""
    bochs = {bool(r.bochs_model) for r in scenario_runner.load_table() if name in r.name}
    return [img for flag, img in ((False, "build/hv/hv.elf32"), (True, "build/hv16/hv.elf32")) if flag in bochs]


def run(cmd, cwd, timeout):
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)


def failure_reason(out, test):
    """The first reason the run gave, so the log says how the mutant failed."""
    for line in out.splitlines():
        if "check failed: " in line:
            return ": " + line.split("check failed: ", 1)[1][:150]
        if line.startswith(f"FAIL {test}") and " s  " in line:
            return ": " + line.split(" s  ", 1)[1].split("  (console")[0][:150]
    return ""


def try_mutant(mutant, work):
    """Apply one mutant in a fresh copy of the tree at work; returns (caught, line to print)."""
    rule, path, old, new, test, suite = mutant
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns("build", ".git"))
    src = os.path.join(work, path)
    text = open(src).read()
    if text.count(old) != 1:
        return False, f"MISSED  {rule}: mutation site not found once in {path}"
    open(src, "w").write(text.replace(old, new))
    if test.startswith("build:"):
        # the library's own build must refuse the mutant, saying why
        build = run(["make", "--no-print-directory", "all"], work, 300)
        why = test[len("build:"):]
        ok = build.returncode != 0 and why in build.stdout
        said = [l.strip() for l in build.stdout.splitlines() if l.strip() and not l.startswith(("  ", "make"))]
        verdict = ("fails: " + " / ".join(said))[:200] if ok else \
            "still builds" if build.returncode == 0 else "fails for another reason"
        return ok, f"{'CAUGHT' if ok else 'MISSED'}  {rule} -> the build {verdict}"
    if test.startswith("check:"):
        # a build check (tests/check-<name>.py) over the archive must refuse the mutant
        build = run(["make", "--no-print-directory", "all"], work, 300)
        if build.returncode != 0:
            return False, f"MISSED  {rule} -> {test} mutant does not build (fix the mutation)"
        out = run(["python3", f"tests/check-{test[len('check:'):]}.py", "build/libcrashpath.a"], work, 120)
        ok = out.returncode != 0
        verdict = ("fails: " + out.stdout.splitlines()[0][:150]) if ok else "still passes"
        return ok, f"{'CAUGHT' if ok else 'MISSED'}  {rule} -> {test} {verdict}"
    if test.startswith("scenario:"):
        test = test[len("scenario:"):]
        targets = images_for(test) + ["mini"]
        # a Linux row borrows the kernel and initramfs already built (make linux-kdump); a
        # mutant of the kdump side (vmcore-check, the verifier) borrows only what fetch.sh
        # unpacked and builds its own vmcore-check and initramfs
        linux = os.path.join(ROOT, "build", "kdump", "linux")
        if os.path.isdir(linux):
            os.makedirs(os.path.join(work, "build", "kdump"), exist_ok=True)
            if path.startswith("tests/kdump/"):
                os.makedirs(os.path.join(work, "build", "kdump", "linux"))
                for name in ("vmlinuz", "vmlinuz-align16m", "root", "debs", "kernel-package"):
                    os.symlink(os.path.join(linux, name), os.path.join(work, "build", "kdump", "linux", name))
                targets.append("linux-kdump")
            else:
                os.symlink(linux, os.path.join(work, "build", "kdump", "linux"))
        if suite == "xen":
            # the Xen rows: Debian's Xen and dom0 side as fetched (make xen-images), the source as
            # unpacked; the mutant's Xen is built anew from them
            xen = os.path.join(ROOT, "build", "xen")
            os.makedirs(os.path.join(work, "build", "xen"), exist_ok=True)
            for name in os.listdir(xen):
                if name not in ("tree", "xen-crashpath.img", "xen-crashpath-syms"):
                    os.symlink(os.path.join(xen, name), os.path.join(work, "build", "xen", name))
            targets.append("xen")
        # only the hypervisor images the selected rows boot (QEMU's, Bochs's 16-CPU build)
        # scenario mutants run one at a time, so their build has both cores
        build = run(["make", "--no-print-directory", "-j2"] + targets, work, 900)
        check_cmd = ["tests/run-scenarios", test]
    else:
        build = run(["make", "--no-print-directory", "build/unit/run-unit"], work, 300)
        check_cmd = ["env", "CRASHPATH_TEST_TIMEOUT=20", "build/unit/run-unit", test]
    if build.returncode != 0:
        return False, f"MISSED  {rule} -> {test} mutant does not build (fix the mutation)"
    out = run(check_cmd, work, 600).stdout
    ok = f"FAIL {test}" in out
    verdict = "fails" + failure_reason(out, test) if ok else "still passes"
    return ok, f"{'CAUGHT' if ok else 'MISSED'}  {rule} -> {test} {verdict}"


def main():
    args = sys.argv[1:]
    suite = "check"
    if args[:1] == ["--suite"] and len(args) > 1:
        suite, args = args[1], args[2:]
    only = args[0] if args else None
    chosen = [m for m in MUTANTS if m[5] == suite and (not only or only in m[0] or only in m[4])]
    tmp = tempfile.mkdtemp(prefix="crashpath-mutants-")
    results = {}
    try:
        # Unit-test and build-check mutants are builds plus a short test: two at a time,
        # one per core. Scenario mutants run QEMU under timing: one at a time, alone.
        quick = [i for i, m in enumerate(chosen) if not m[4].startswith("scenario:")]
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            futures = {pool.submit(try_mutant, chosen[i], os.path.join(tmp, f"tree{i}")): i for i in quick}
            for f in concurrent.futures.as_completed(futures):
                results[futures[f]] = f.result()
                shutil.rmtree(os.path.join(tmp, f"tree{futures[f]}"), ignore_errors=True)
        for i in quick:
            print(results[i][1], flush=True)
        for i, m in enumerate(chosen):
            if i not in results:
                results[i] = try_mutant(m, os.path.join(tmp, "tree"))
                print(results[i][1], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    caught = sum(1 for ok, _ in results.values() if ok)
    missed = len(results) - caught
    print(f"mutants: {caught} caught, {missed} missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
