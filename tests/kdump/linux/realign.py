#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""realign.py — a copy of a bzImage whose setup header asks for another kernel_alignment, as a
kernel built with another CONFIG_PHYSICAL_ALIGN would (distribution kernels use 16 MiB). The
decompressor rounds its load address up to boot_params.hdr.kernel_alignment (what the loader
wrote there), so the loader must place the kernel at that alignment or lower the field no
further than 1 << min_alignment (Documentation/arch/x86/boot.rst).

    realign.py IN OUT ALIGNMENT"""
import struct
import sys

KERNEL_ALIGNMENT = 0x230    # u32
MIN_ALIGNMENT = 0x235       # u8, log2
HEADER = 0x202              # "HdrS"


def main():
    src, dst, align = sys.argv[1], sys.argv[2], int(sys.argv[3], 0)
    image = bytearray(open(src, "rb").read())
    if image[HEADER:HEADER + 4] != b"HdrS":
        sys.exit(f"realign: {src} has no HdrS setup header")
    if align & (align - 1) or align < (1 << image[MIN_ALIGNMENT]):
        sys.exit(f"realign: {align:#x} is not a power of two at or above 1 << min_alignment")
    struct.pack_into("<I", image, KERNEL_ALIGNMENT, align)
    open(dst, "wb").write(image)


if __name__ == "__main__":
    main()
