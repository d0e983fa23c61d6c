#!/usr/bin/env bash
# tests/xen-vm/check-smoke.sh — host-side checks of the infrastructure and Debian's xentrace,
# from what payloads/xentrace-smoke.sh or payloads/xenbaked.sh (which ends with the same
# xentrace capture, after xenbaked stopped and sleeper was destroyed) left.
#
# Usage: tests/xen-vm/check-smoke.sh OUT_DIR
#   CACHE_DIR  (default /var/cache/xenbaked-xen-vm) supplies Debian's xenalyze, used to
#              confirm the capture parses and holds both guests' scheduling; without it
#              that check is skipped, not failed.
#
# Prints one line per check and a closing "N passed, N failed"; exits 1 if any failed.
set -euo pipefail

(($# == 1)) || { echo "usage: $0 OUT_DIR" >&2; exit 1; }
OUT=$1
CACHE_DIR=${CACHE_DIR:-/var/cache/xenbaked-xen-vm}
pass=0 fail=0 skip=0

check() {  # check NAME CMD... — CMD's status decides
    local name=$1; shift
    if "$@" >/dev/null 2>&1; then
        echo "PASS  $name"; pass=$((pass + 1))
    else
        echo "FAIL  $name"; fail=$((fail + 1))
    fi
}

has_domain() {  # has_domain FILE NAME — a row of `xl list` for NAME
    grep -Eq "^$2[[:space:]]+[0-9]+[[:space:]]" "$1"
}
lacks_domain() { [[ -f $1 ]] && ! has_domain "$1" "$2"; }

check "console.log kept" test -s "$OUT/console.log"
check "payload exited 0" grep -qx 0 "$OUT/xenvm/payload.rc"
check "trace.bin exists and is non-empty" test -s "$OUT/trace.bin"
# xentrace writes whole records, each a multiple of 4 bytes.
check "trace.bin is whole records" \
    bash -c '(( $(stat -c %s "$1") % 4 == 0 ))' _ "$OUT/trace.bin"
check "xl list shows Domain-0" has_domain "$OUT/xl-list.txt" Domain-0
check "xl list shows spinner" has_domain "$OUT/xl-list.txt" spinner
check "xl list shows sleeper" has_domain "$OUT/xl-list.txt" sleeper
check "xl destroy removed sleeper" lacks_domain "$OUT/xl-list-after-destroy.txt" sleeper
check "spinner survived" has_domain "$OUT/xl-list-after-destroy.txt" spinner
check "xl info reports Xen 4.17" \
    bash -c 'grep -Eq "^xen_major +: 4$" "$1" && grep -Eq "^xen_minor +: 17$" "$1"' _ "$OUT/xl-info.txt"
check "xl info reports 2 CPUs" grep -Eq '^nr_cpus +: 2$' "$OUT/xl-info.txt"
for g in spinner sleeper; do
    check "guest $g reached /init" \
        grep -q "XENVM-GUEST-READY $g" "$OUT/xenvm/var-log-xen/console/guest-$g.log"
done

XENALYZE=$CACHE_DIR/root/usr/bin/xenalyze
if [[ -x $XENALYZE && -s $OUT/trace.bin ]]; then
    summary=$(mktemp)
    timeout 120 "$XENALYZE" --summary "$OUT/trace.bin" > "$summary" 2>&1 || true
    # Every domain alive while xentrace ran: the xl list the payload took just before it
    # (xenbaked.sh), or the one with both guests (xentrace-smoke.sh).
    at=$OUT/xl-list-at-xentrace.txt
    [[ -f $at ]] || at=$OUT/xl-list.txt
    domids=$(awk 'NR > 1 && $2 ~ /^[0-9]+$/ { print $2 }' "$at" 2>/dev/null | tr '\n' ' ')
    check "xl list before xentrace names domains (${domids:-none})" test -n "$domids"
    for d in $domids; do
        check "xenalyze sees domain $d in the capture" grep -q -- "|-- Domain $d --|" "$summary"
    done
    rm -f "$summary"
else
    echo "SKIP  xenalyze checks ($XENALYZE not found; run tests/xen-vm/prepare.sh)"
    skip=$((skip + 1))
fi

echo "smoke: $pass passed, $fail failed, $skip skipped"
((fail == 0))
