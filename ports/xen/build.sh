#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# build.sh — builds the hypervisor of a Xen source tree unpacked by fetch-src.sh the way Debian's
# debian/rules does: debian/xen-kconfig (CONFIG_DEBUG=n over the defaults) copied to xen/.config
# and completed by `make -C xen olddefconfig`, then `make -C xen build` with Debian's make
# arguments (its own CC/LD, V=1, -ffile-prefix-map; no dpkg-buildflags for the hypervisor).
# Leaves xen/xen.gz, xen/xen and xen/xen-syms; the full log is SRCDIR/build-xen.log. Rerunning
# rebuilds only what changed.
# Usage: build.sh SRCDIR [make arguments...]   (JOBS=n overrides -j2; Kconfig options are changed
# in SRCDIR/xen/.config, not on this command line)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 SRCDIR [make args...]" >&2; exit 2; }
src=$(cd "$1" && pwd)
shift
if [ ! -f "$src/xen/Makefile" ] || [ ! -f "$src/debian/xen-kconfig" ]; then
    echo "build: $src is not an unpacked Debian Xen source (run fetch-src.sh)" >&2; exit 1
fi
for tool in flex bison m4 gcc ld make; do
    command -v "$tool" >/dev/null 2>&1 || { echo "build: $tool missing (fetch-src.sh installs flex, bison, m4)" >&2; exit 1; }
done
jobs=${JOBS:-2}
log=$src/build-xen.log
cd "$src"

# What debian/rules exports for the hypervisor build (patch 0003 prints the package version and
# maintainer in the boot banner; the build date is the changelog's, for a reproducible build).
DEB_VERSION=$(sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)
DEB_MAINTAINER=$(sed -n 's/^Maintainer: \(.*\)$/\1/p' debian/control)
export DEB_VERSION DEB_MAINTAINER
if command -v dpkg-parsechangelog >/dev/null 2>&1; then
    epoch=$(dpkg-parsechangelog -l debian/changelog -STimestamp)
    XEN_BUILD_DATE=$(LC_ALL=C date -u -d "@$epoch")
    XEN_BUILD_TIME=$(LC_ALL=C date -u -d "@$epoch" +%T)
    export XEN_BUILD_DATE XEN_BUILD_TIME
fi
unset CFLAGS CXXFLAGS CPPFLAGS LDFLAGS
export WGET=/bin/false GIT=/bin/false
triplet=x86_64-linux-gnu
cc=$triplet-gcc; command -v "$cc" >/dev/null 2>&1 || cc=gcc
ld=$triplet-ld; command -v "$ld" >/dev/null 2>&1 || ld=ld
args=(CC="$cc" LD="$ld" XEN_COMPILE_ARCH=x86_64 XEN_TARGET_ARCH=x86_64 V=1
      "EXTRA_CFLAGS_XEN_CORE=-ffile-prefix-map=$src=. -fdebug-prefix-map=$src=.")

: > "$log"
# Debian's configuration, applied again only when debian/xen-kconfig changed since the last run
# (copying it anew every time would make Kconfig regenerate its headers and rebuild everything).
stamp=xen/.crashpath-kconfig
if [ ! -f xen/.config ] || [ ! -f "$stamp" ] || ! cmp -s debian/xen-kconfig "$stamp"; then
    cp debian/xen-kconfig xen/.config
    make -C xen olddefconfig "${args[@]}" >> "$log" 2>&1
    cp debian/xen-kconfig "$stamp"
fi

start=$(date +%s)
if ! make -C xen build -j"$jobs" "${args[@]}" "$@" >> "$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "build: make -C xen build failed (log: $log)" >&2
    exit 1
fi
end=$(date +%s)
for f in xen/xen.gz xen/xen xen/xen-syms; do
    [ -f "$f" ] || { echo "build: $f missing after the build (log: $log)" >&2; exit 1; }
done
echo "build: xen.gz, xen and xen-syms in $src/xen in $((end - start)) s (-j$jobs; log $log)"
grep -E '^CONFIG_(KEXEC|XEN_IBT|XEN_SHSTK|HAS_CC_CET_IBT|INDIRECT_THUNK|SPECULATIVE_HARDEN_BRANCH|XSM|DEBUG)=' \
    xen/.config | sed 's/^/build:   /'
