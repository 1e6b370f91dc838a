#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""mkinitramfs.py — write an uncompressed newc cpio archive (what the kernel unpacks as its
initramfs) from (archive path, host file or None for a directory, mode) entries, without
needing cpio on the host; gzip-compressed when OUT ends in .gz, as distributions ship theirs.
Usage: mkinitramfs.py OUT DEST=SRC[:MODE] ... (SRC '-' = directory)"""
import gzip
import io
import os
import sys


def entry(out, ino, name, data, mode):
    name_b = name.encode() + b"\0"
    hdr = "070701" + "".join(f"{v:08x}" for v in (
        ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
    out.write(hdr.encode() + name_b)
    out.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
    out.write(data)
    out.write(b"\0" * ((4 - len(data) % 4) % 4))


def main():
    out_path, specs = sys.argv[1], sys.argv[2:]
    out = io.BytesIO()
    ino = 1
    for spec in specs:
        dest, _, src = spec.partition("=")
        src, _, mode = src.partition(":")
        if src == "-":
            entry(out, ino, dest, b"", 0o040755)
        else:
            data = open(src, "rb").read()
            entry(out, ino, dest, data, 0o100000 | int(mode or "644", 8))
        ino += 1
    entry(out, ino, "TRAILER!!!", b"", 0)
    data = out.getvalue()
    if out_path.endswith(".gz"):
        # a compressed initramfs is also less for crashpath to hash at crash time; mtime 0
        # keeps the archive the same from build to build
        data = gzip.compress(data, compresslevel=9, mtime=0)
    with open(out_path, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()
