#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# fetch-src.sh — Debian's Xen 4.17 source package (the version bookworm's main archive serves),
# unpacked with Debian's quilt patches applied, as the tree the Xen port of crashpath is built
# against. /etc/apt is never edited: a private sources list (deb-src of the archive URI this
# machine already uses) and private apt lists and cache under OUTDIR. Installs flex, bison and
# m4 (the hypervisor build needs them) and dpkg-dev only when missing. A second run does nothing.
# Usage: fetch-src.sh OUTDIR      (prints the unpacked tree's path last)
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
version=4.17.5+72-g01140da4e8-1
upstream=${version%-*}
mkdir -p "$1"
out=$(cd "$1" && pwd)
src=$out/xen-$upstream
stamp=$out/.fetch-src-$version.stamp

# The build's tools, installed only when missing.
need=()
for tool in flex bison m4; do
    command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
command -v dpkg-source >/dev/null 2>&1 || need+=(dpkg-dev)
if [ ${#need[@]} -gt 0 ]; then
    echo "fetch-src: installing ${need[*]}"
    apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
    apt_install || { apt-get -qq update && apt_install; }   # stale package lists: refresh once
fi

if [ -f "$stamp" ] && [ -f "$src/xen/Makefile" ]; then
    echo "fetch-src: Xen $version already unpacked (stamp $stamp)"
    echo "$src"
    exit 0
fi

# The archive: the first source whose suites name the release's codename itself (not -updates,
# -security, -backports), from one-line .list files or deb822 .sources files.
# shellcheck source=/dev/null
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
archive() {   # prints "URI SIGNED-BY" (SIGNED-BY may be empty)
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v c="$codename" '
            $1 != "deb" && $1 != "deb-src" { next }
            { opts = ""; i = 2
              if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) { opts = opts " " $i; i++ }
                                opts = opts " " $i; i++ } }
            $(i + 1) == c { sb = ""
              if (match(opts, /signed-by=[^] ]+/)) sb = substr(opts, RSTART + 10, RLENGTH - 10)
              print $i, sb; exit }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v c="$codename" '
            function flush() { n = split(suites, s, " ")
                               for (k = 1; k <= n; k++) if (s[k] == c && uris != "" && enabled) {
                                   split(uris, u, " "); print u[1], signed; exit }
                               uris = ""; suites = ""; signed = ""; enabled = 1 }
            BEGIN { enabled = 1 }
            /^[ \t]*$/ { flush(); next }
            /^#/ { next }
            tolower($1) == "uris:" { $1 = ""; uris = $0 }
            tolower($1) == "suites:" { $1 = ""; suites = $0 }
            tolower($1) == "signed-by:" { signed = $2 }
            tolower($1) == "enabled:" { enabled = (tolower($2) != "no") }
            END { flush() }' "$f"
    done
}
read -r uri signed < <(archive | head -n 1) || true
[ -n "${uri:-}" ] || { echo "fetch-src: no $codename archive in /etc/apt/sources.list{,.d}" >&2; exit 1; }
case "$signed" in
    /*) opt="[signed-by=$signed] " ;;
    *) opt="" ;;   # an inline key block or none: apt's trusted keyring decides
esac

apt=$out/apt
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/parts" "$out/dl"
echo "deb-src ${opt}$uri $codename main" > "$apt/sources.list"
aptopts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=$apt/parts"
         -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
         -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "APT::Sandbox::User=root")
echo "fetch-src: deb-src from $uri $codename"
apt-get "${aptopts[@]}" -qq update
(cd "$out/dl" && apt-get "${aptopts[@]}" -qq source --download-only "xen=$version" >/dev/null)
dsc=$out/dl/xen_${version#*:}.dsc
[ -f "$dsc" ] || { echo "fetch-src: $dsc was not downloaded" >&2; exit 1; }

rm -rf "$src"
dpkg-source -x --no-check "$dsc" "$src" >/dev/null
# dpkg-source applies debian/patches (format 3.0 (quilt)) and records them in .pc/.
series=$src/debian/patches/series
if [ -f "$series" ]; then
    want=$(grep -cv '^[[:space:]]*\(#\|$\)' "$series" || true)
    have=$( [ -f "$src/.pc/applied-patches" ] && wc -l < "$src/.pc/applied-patches" || echo 0)
    [ "$want" -eq "$have" ] || { echo "fetch-src: $have of $want patches applied" >&2; exit 1; }
    echo "fetch-src: $have Debian patches applied"
fi
echo "$version" > "$stamp"
echo "fetch-src: Xen $version unpacked in $src"
echo "$src"
