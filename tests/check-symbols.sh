#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# check-symbols.sh — the archive's symbol contract: it needs nothing from the host but libgcc
# helpers, exports the public API and the four entry stubs (all crashpath_-prefixed: a host has
# its own trap_nop and enable_nmis), and keeps everything else local.
set -euo pipefail
lib=${1:-build/libcrashpath.a}
fail=0

# Undefined symbols: only libgcc's helpers may appear (crashpath's host
# hooks are function pointers in struct crashpath_config, not symbols).
undef=$(nm -u "$lib" | awk 'NF == 2 { print $2 }' | sort -u)
bad=$(printf '%s\n' "$undef" | grep -v -E '^$|^__(u?(div|mod|mul)[a-z]*[0-9]|popcount|clz|ctz|ffs|bswap|ashl|ashr|lshr)' || true)
if [ -n "$bad" ]; then
    echo "symbols: $lib needs symbols the host may not have:"; printf '  %s\n' $bad; fail=1
fi

# Exports: exactly the public API, each a function with a size.
want="crashpath_apic_mode crashpath_crash crashpath_enable_nmis crashpath_init crashpath_kdump_info crashpath_load_kdump crashpath_mce_crash crashpath_nmi_crash crashpath_nmi_vmexit crashpath_strerror crashpath_trap_nop"
have=$(nm -g --defined-only "$lib" | awk 'NF == 3 { print $3 }' | sort | tr '\n' ' ' | sed 's/ $//')
if [ "$have" != "$want" ]; then
    echo "symbols: exported set differs"; echo "  want: $want"; echo "  have: $have"; fail=1
fi
for sym in $want; do
    if ! readelf -sW "$lib" | awk -v s="$sym" '$8 == s && $4 == "FUNC" && $3 > 0 { ok = 1 } END { exit !ok }'; then
        echo "symbols: $sym is not a sized FUNC symbol"; fail=1
    fi
done

[ $fail -eq 0 ] && echo "symbols: ok ($(echo $want | wc -w) exported, no undefined)"
exit $fail
