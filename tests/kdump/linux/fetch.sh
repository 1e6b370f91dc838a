#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# fetch.sh — Debian's kdump-kernel pieces, unpacked into build/ (never installed): the kernel
# package linux-image-amd64 depends on, busybox-static, and makedumpfile with the shared
# libraries it runs on (what every distribution's kdump service saves the dump with).
# Usage: fetch.sh OUTDIR
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/debs"
cd "$out/debs"
pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
if [ -z "$pkg" ]; then
    echo "fetch: apt-cache knows no linux-image-amd64 (run apt-get update)" >&2
    exit 1
fi
ls ${pkg}_*.deb >/dev/null 2>&1 || apt-get download "$pkg" 2>/dev/null
ls busybox-static_*.deb >/dev/null 2>&1 || apt-get download busybox-static 2>/dev/null

# makedumpfile and the library packages it runs on
seen=$(bash "$here/download-with-libs.sh" makedumpfile)

rm -rf ../root && mkdir -p ../root
for deb in *.deb; do
    dpkg -x "$deb" ../root
done
cp ../root/boot/vmlinuz-* ../vmlinuz
echo "$pkg" > ../kernel-package
echo "fetch: $pkg, busybox-static, makedumpfile and its libraries ($seen) unpacked in $out"
