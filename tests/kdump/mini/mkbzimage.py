#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""mkbzimage.py — wrap the mini verifier's flat payload in a bzImage: setup sectors with the
boot protocol 2.15 header (HdrS, XLF_KERNEL_64, relocatable, init_size), payload after them,
so crashpath loads it exactly as it loads Linux. Usage: mkbzimage.py payload.bin mini.elf out"""
import struct
import subprocess
import sys

SETUP_SECTS = 4


def symbol(elf, name):
    for line in subprocess.run(["nm", elf], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    sys.exit(f"mkbzimage: {name} not in {elf}")


def main():
    payload_path, elf, out = sys.argv[1:4]
    payload = open(payload_path, "rb").read()
    bss_end = symbol(elf, "__bss_end")
    init_size = (max(bss_end, len(payload)) + 0xfff) & ~0xfff
    setup = bytearray(512 * (SETUP_SECTS + 1))
    setup[0x1f1] = SETUP_SECTS
    struct.pack_into("<H", setup, 0x1fe, 0xaa55)
    setup[0x200] = 0xeb                           # jmp over the header ...
    setup[0x201] = 0x6a                           # ... which ends at 0x202 + 0x6a
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, 0x020f)  # protocol 2.15
    setup[0x211] = 0x01                           # LOADED_HIGH
    struct.pack_into("<I", setup, 0x214, 0x100000)  # code32_start (unused: 64-bit entry)
    struct.pack_into("<I", setup, 0x230, 0x200000)  # kernel_alignment
    setup[0x234] = 1                              # relocatable_kernel
    setup[0x235] = 21                             # min_alignment: 2 MiB
    # XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G | XLF_5LEVEL: the verifier never touches paging,
    # so it starts under whatever 4- or 5-level tables the hand-off built
    struct.pack_into("<H", setup, 0x236, 0x0023)
    struct.pack_into("<I", setup, 0x238, 2047)    # cmdline_size
    struct.pack_into("<I", setup, 0x260, init_size)
    open(out, "wb").write(bytes(setup) + payload)


if __name__ == "__main__":
    main()
