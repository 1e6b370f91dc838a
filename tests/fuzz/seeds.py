#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""seeds.py — starting inputs for the fuzz targets: a well-formed bzImage and a well-formed
small crashpath dump, so the fuzzers begin inside the valid formats. Usage: seeds.py OUTDIR"""
import os
import struct
import sys


def bzimage():
    setup_sects, payload = 4, bytes((i * 7 + 3) & 0xff for i in range(8192))
    s = bytearray(512 * (setup_sects + 1))
    s[0x1f1] = setup_sects
    struct.pack_into("<H", s, 0x1fe, 0xaa55)
    s[0x200:0x202] = b"\xeb\x6a"
    s[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", s, 0x206, 0x020f)
    struct.pack_into("<I", s, 0x230, 0x200000)
    s[0x234] = 1
    struct.pack_into("<H", s, 0x236, 0x7f)
    struct.pack_into("<I", s, 0x238, 2047)
    struct.pack_into("<I", s, 0x260, 4 << 20)
    return bytes(s) + payload + b"console=ttyS0 nr_cpus=1".ljust(64, b" ")


def note(name, ntype, desc):
    n = name.encode() + b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)
    return struct.pack("<III", len(n), len(desc), ntype) + pad(n) + pad(desc)


def dump():
    notes = b""
    for cpu in range(4):
        prs = bytearray(336)
        struct.pack_into("<I", prs, 32, cpu + 1)
        struct.pack_into("<Q", prs, 112 + 16 * 8, 0x1800)
        cpn = struct.pack("<8I6Q", 1, cpu, cpu, 3, 1 if cpu == 1 else (3 if cpu == 2 else 2), 0x41, 1, 0,
                          0, 0, 0, 0, 0, 0)
        notes += note("CORE", 1, bytes(prs)) + note("CRASHPATH", 0x43500001, cpn)
    info = bytearray(344)
    struct.pack_into("<8I", info, 0, 1, 0x100, 1, 1, 4, 1, 1000, 0)
    info[72:76] = b"fuzz"
    struct.pack_into("<I", info, 328, 1)
    notes += note("CRASHPATH", 0x43500002, bytes(info)) + b"\0" * 12
    note_off = 64 + 2 * 56
    load_off = note_off + len(notes)
    mem = bytes(0x2000)
    ehdr = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, 64, 0, 0, 64, 56, 2, 0, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 4, 0, note_off, 0, 0, len(notes), len(notes), 0)
    ph += struct.pack("<IIQQQQQQ", 1, 7, load_off, 0, 0, len(mem), len(mem), 0)
    return ehdr + ph + notes + mem


def main():
    out = sys.argv[1]
    for name, data in (("bzimage", bzimage()), ("dumpcheck", dump())):
        os.makedirs(os.path.join(out, name), exist_ok=True)
        open(os.path.join(out, name, "seed"), "wb").write(data)


if __name__ == "__main__":
    main()
