#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# fetch.sh — Debian's kdump-kernel pieces, unpacked into build/ (never installed): the kernel
# package linux-image-amd64 depends on, and busybox-static. Usage: fetch.sh OUTDIR
set -euo pipefail
out=$1
mkdir -p "$out/debs"
cd "$out/debs"
pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
if [ -z "$pkg" ]; then
    echo "fetch: apt-cache knows no linux-image-amd64 (run apt-get update)" >&2
    exit 1
fi
ls ${pkg}_*.deb >/dev/null 2>&1 || apt-get download "$pkg" 2>/dev/null
ls busybox-static_*.deb >/dev/null 2>&1 || apt-get download busybox-static 2>/dev/null
rm -rf ../root && mkdir -p ../root
dpkg -x ${pkg}_*.deb ../root
dpkg -x busybox-static_*.deb ../root
cp ../root/boot/vmlinuz-* ../vmlinuz
echo "$pkg" > ../kernel-package
echo "fetch: $pkg and busybox-static unpacked in $out"
