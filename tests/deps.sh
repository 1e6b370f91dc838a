#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# deps.sh — install what building and testing crashpath needs on Debian 12, only what is missing.
# Run by `make deps` (and so by `make check` and `make demo`); safe to run again.
set -euo pipefail

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "deps: need root to install $*" >&2; exit 1; }
        SUDO=sudo
    else
        SUDO=
    fi
}

apt_updated=0
apt_install() {   # apt_install [-t suite] pkg...
    need_root "$@"
    export DEBIAN_FRONTEND=noninteractive
    if [ $apt_updated -eq 0 ]; then
        $SUDO apt-get update -qq
        apt_updated=1
    fi
    echo "deps: installing $*"
    $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# QEMU 7.2 (bookworm) has no x2APIC under TCG; 9.0 and later do. Take it
# from bookworm-backports, declared with the same archive URI and keyring as
# the machine's own Debian source.
ensure_backports() {
    local src=/etc/apt/sources.list.d/crashpath-backports.sources uri keyring
    grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ && return 0
    uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    keyring=$(awk '/^Signed-By:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=http://deb.debian.org/debian
    [ -n "$keyring" ] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    need_root backports
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
        "$uri" "$keyring" | $SUDO tee "$src" >/dev/null
    apt_updated=0
}

qemu_ok() {
    command -v qemu-system-x86_64 >/dev/null 2>&1 || return 1
    local major
    major=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -1)
    [ "${major:-0}" -ge 9 ]
}

missing=()
command -v nasm >/dev/null 2>&1 || missing+=(nasm)           # entry stubs
command -v clang >/dev/null 2>&1 || missing+=(clang)         # second compiler, -Werror clean
command -v python3 >/dev/null 2>&1 || missing+=(python3)     # scenario runner
command -v objcopy >/dev/null 2>&1 || missing+=(binutils)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)   # the out-of-tree consumer test
# Bochs, the second CPU model (VMX, CET), booted from a GRUB ISO (tests/bochs.py)
command -v bochs-bin >/dev/null 2>&1 || missing+=(bochs)
[ -e /usr/share/bochs/BIOS-bochs-latest ] || missing+=(bochsbios)
[ -e /usr/share/vgabios/vgabios.bin ] || missing+=(vgabios)
command -v grub-mkrescue >/dev/null 2>&1 || missing+=(grub-common)
[ -d /usr/lib/grub/i386-pc ] || missing+=(grub-pc-bin)
command -v xorriso >/dev/null 2>&1 || missing+=(xorriso)
command -v mformat >/dev/null 2>&1 || missing+=(mtools)
# The dump readers a user may reach for, each opening one Linux row's dump (scenario_runner.py)
command -v eu-stack >/dev/null 2>&1 || missing+=(elfutils)
/usr/bin/python3 -c 'import drgn' >/dev/null 2>&1 || missing+=(python3-drgn)
command -v lldb >/dev/null 2>&1 || missing+=(lldb)
# The Linux rows' dump disk: an ext2 file system made by mke2fs, read back with debugfs
[ -x /sbin/mke2fs ] && [ -x /sbin/debugfs ] || missing+=(e2fsprogs)
# Xen 4.17 from Debian's source with crashpath (make xen, ports/xen): unpacking and patching the
# source, and the hypervisor's build
command -v dpkg-source >/dev/null 2>&1 || missing+=(dpkg-dev)
command -v patch >/dev/null 2>&1 || missing+=(patch)
for tool in flex bison m4; do command -v $tool >/dev/null 2>&1 || missing+=($tool); done
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

# libFuzzer and the sanitizer runtimes clang links with -fsanitize=fuzzer
fuzz_ok() {
    local d
    d=$(mktemp -d)
    echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' > "$d/f.c"
    clang -fsanitize=fuzzer,address,undefined "$d/f.c" -o "$d/f" >/dev/null 2>&1
    local rc=$?
    rm -rf "$d"
    return $rc
}
fuzz_ok || apt_install "libclang-rt-$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)-dev"
fuzz_ok || { echo "deps: clang cannot build libFuzzer targets" >&2; exit 1; }

if ! qemu_ok; then
    ensure_backports
    apt_install -t bookworm-backports qemu-system-x86
    qemu_ok || { echo "deps: qemu-system-x86_64 9.0 or later is required" >&2; exit 1; }
fi
echo "deps: all present ($(qemu-system-x86_64 --version | head -1))"
