#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# build-xen.sh — `make xen`: Debian's Xen 4.17 source with its crash path handed to crashpath.
# Unpacks the source (fetch-src.sh), copies it, applies ports/xen/patches/*.patch and adds the
# glue (ports/xen/files/), adds ports/xen/kconfig (CONFIG_CRASHPATH, debug info) to Debian's
# configuration and builds
# the hypervisor with Debian's make arguments (build.sh), linking the libcrashpath.a installed
# in PREFIX through Xen's own checks (check-endbr.sh on xen-syms, duplicate symbols).
# Leaves OUT/xen-crashpath.img (the multiboot image QEMU's -kernel boots) and
# OUT/xen-crashpath-syms (for gdb). A changed patch unpacks the tree anew; a changed glue
# file rebuilds what depends on it.
# Usage: build-xen.sh OUT PREFIX
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 OUT PREFIX" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
prefix=$(cd "$2" && pwd)
[ -f "$prefix/lib/libcrashpath.a" ] && [ -f "$prefix/include/crashpath.h" ] || {
    echo "build-xen: no crashpath installed in $prefix (make install PREFIX=$prefix)" >&2; exit 1; }

pristine=$(bash "$here/fetch-src.sh" "$out/src" | tail -n 1)
tree=$out/tree
stamp=$tree/.crashpath-patches
want=$(cat "$here"/patches/*.patch "$here/kconfig" | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    rm -rf "$tree"
    cp -a "$pristine" "$tree"
    for p in "$here"/patches/*.patch; do
        patch -d "$tree" -p1 --quiet --forward < "$p" || { echo "build-xen: $(basename "$p") does not apply" >&2; exit 1; }
    done
    # Debian's configuration (CONFIG_DEBUG=n over the defaults), crashpath on, debug info
    grep '^CONFIG_' "$here/kconfig" >> "$tree/debian/xen-kconfig"
    echo "$want" > "$stamp"
    echo "build-xen: $(ls "$here"/patches/*.patch | wc -l) patches applied to $tree"
fi
# The glue: copied where it differs, so that make rebuilds only what changed.
(cd "$here/files" && find . -type f) | while read -r f; do
    cmp -s "$here/files/$f" "$tree/$f" || install -D -m 644 "$here/files/$f" "$tree/$f"
done
# The library: a newer archive relinks xen-syms (Xen's prelink.o does not depend on it).
if [ "$prefix/lib/libcrashpath.a" -nt "$tree/xen/xen-syms" ] 2>/dev/null; then
    rm -f "$tree/xen/prelink.o"
fi
bash "$here/build.sh" "$tree" "CRASHPATH_DIR=$prefix"
for opt in $(grep '^CONFIG_' "$here/kconfig"); do
    grep -qx "$opt" "$tree/xen/.config" || { echo "build-xen: $opt did not take (xen/.config)" >&2; exit 1; }
done
nm "$tree/xen/xen-syms" | grep -c ' T crashpath_crash$' > /dev/null || {
    echo "build-xen: xen-syms holds no crashpath_crash" >&2; exit 1; }
cp "$tree/xen/xen" "$out/xen-crashpath.img"
cp "$tree/xen/xen-syms" "$out/xen-crashpath-syms"
echo "build-xen: $out/xen-crashpath.img and xen-crashpath-syms (Xen $(basename "$pristine" | sed 's/^xen-//') with crashpath $(sed -n 's/^Version: //p' "$prefix/lib/pkgconfig/crashpath.pc"))"
