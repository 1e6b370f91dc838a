#!/usr/bin/env bash
# deps.sh — install what building and testing crashpath needs on Debian 12, only what is missing.
# Run by `make deps` (and so by `make check` and `make demo`); safe to run again.
set -euo pipefail

# command -> Debian package
declare -A want=(
    [nasm]=nasm           # entry stubs
    [clang]=clang         # the second compiler the library must build warning-free with
)

missing=()
for cmd in "${!want[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all present"
    exit 0
fi

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=sudo
    else
        echo "deps: need root to install ${missing[*]} (apt-get install ${missing[*]})" >&2
        exit 1
    fi
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
