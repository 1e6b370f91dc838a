#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# fetch.sh — Debian's Xen 4.17 and what its own kdump needs in dom0, unpacked into build/ (never
# installed, nothing into /boot): the hypervisor (gunzipped: QEMU's -kernel takes the multiboot
# ELF), its symbols (xen-syms, from the -dbg package), and kexec-tools with the Xen libraries
# it links, and xen-hptool (xen-utils-4.17: CPU hotplug from dom0, for the Xen rows that take a
# CPU offline). The dom0 kernel is the kdump kernel tests/kdump/linux/fetch.sh unpacked.
# Usage: fetch.sh OUTDIR
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/debs"
cd "$out/debs"
get() {   # get PKG: download once
    ls "${1}"_*.deb >/dev/null 2>&1 || apt-get download "$1" 2>/dev/null >/dev/null
    ls "${1}"_*.deb >/dev/null 2>&1 || { echo "fetch: apt-get download $1 failed" >&2; exit 1; }
}
get xen-hypervisor-4.17-amd64
get xen-hypervisor-4.17-amd64-dbg
# kexec-tools and the Xen libraries it links
seen=$(bash "$here/../kdump/linux/download-with-libs.sh" kexec-tools)
seen="$seen $(bash "$here/../kdump/linux/download-with-libs.sh" xen-utils-4.17)"
rm -rf ../root && mkdir -p ../root
for deb in *.deb; do
    dpkg -x "$deb" ../root
done
zcat ../root/boot/xen-4.17-amd64.gz > ../xen.img
cp ../root/usr/lib/debug/boot/xen-syms-4.17-amd64 ../xen-syms
[ -x ../root/usr/lib/xen-4.17/bin/xen-hptool ] || { echo "fetch: xen-utils-4.17 has no xen-hptool" >&2; exit 1; }
dpkg-deb -f xen-hypervisor-4.17-amd64_*.deb Version > ../xen-version
echo "fetch: Xen $(cat ../xen-version), xen-syms, kexec-tools, xen-hptool and their libraries ($seen) unpacked in $out"
