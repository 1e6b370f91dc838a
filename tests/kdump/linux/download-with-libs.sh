#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# download-with-libs.sh — apt-get download a program's package and, transitively, the library
# packages it depends on (lib*, zlib1g), each once, into the current directory (the caller's
# debs/); prints the packages' names on one line. Which files of them an initramfs takes is
# decided later by the ELF's DT_NEEDED (needed-libs.py). Usage: download-with-libs.sh PKG
set -euo pipefail
queue=("$1") seen=" "
while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]} queue=("${queue[@]:1}")
    case "$seen" in *" $p "*) continue ;; esac
    seen="$seen$p "
    ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download "$p" >/dev/null 2>&1 || true
    ls "${p}"_*.deb >/dev/null 2>&1 || { echo "fetch: apt-get download $p failed" >&2; exit 1; }
    for d in $(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
                   --no-replaces --no-enhances "$p" | awk '$1 == "Depends:" { print $2 }'); do
        case "$d" in lib*|zlib1g) queue+=("${d%%:*}") ;; esac
    done
done
seen=${seen# }
echo "${seen% }"
