#!/usr/bin/env bash
# tests/xen-vm/run-tier.sh — the real-Xen tier as scripts/run-tests.sh runs it: each
# payload in its own boot, each followed by its host-side checks.
#
# Usage: tests/xen-vm/run-tier.sh BUILD_DIR OUT_ROOT
#   BUILD_DIR  the CMake build tree holding our binaries (xenbaked, xenbake-top and -tbuf go
#              into dom0; the checks run xenbake-account, -dump and -report on the host)
#   OUT_ROOT   each payload's results go to OUT_ROOT/NAME (emptied first)
# Environment: CACHE_DIR (default /var/cache/xenbaked-xen-vm); XENVM_TIMEOUT, the hard limit
# per boot (default here 1200 s rather than run.sh's 300 s: a CI machine may be busy, and TCG
# slows down with the host's load — the boot took 10 min at load 11, 2–3 min when quiet; see
# README.md).
#
# Exits non-zero if any payload or check failed, after running all of them. Ends with the
# plain "N passed, N failed" line.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

(($# == 2)) || xenvm_die "usage: $0 BUILD_DIR OUT_ROOT"
BUILD_DIR=$(cd "$1" 2>/dev/null && pwd) || xenvm_die "build directory $1 not found"
OUT_ROOT=$2
export XENVM_TIMEOUT=${XENVM_TIMEOUT:-1200}
mkdir -p "$OUT_ROOT"
OUT_ROOT=$(cd "$OUT_ROOT" && pwd)
passed=0 failed=0

# run_payload NAME "CHECK..." [run.sh options...] — one boot with payloads/NAME.sh, then each
# CHECK OUT_DIR on the host. The checks run whenever the payload left results (also when it
# failed: they say what went wrong); the boot's console.log stays in OUT_DIR either way.
run_payload() {
    local name=$1 checks=$2; shift 2
    local out=$OUT_ROOT/$name ok=1 rc=0 check
    rm -rf -- "$out"
    xenvm_log "tier: payload $name"
    local t0=$SECONDS
    "$XENVM_DIR/run.sh" --payload "$XENVM_DIR/payloads/$name.sh" --out "$out" "$@" || rc=$?
    ((rc == 0)) || ok=0
    xenvm_log "tier: $name boot took $((SECONDS - t0)) s (run.sh exit $rc)"
    if [[ -f $out/xenvm/payload.rc ]]; then
        for check in $checks; do
            BUILD_DIR=$BUILD_DIR "$XENVM_DIR/$check" "$out" || ok=0
        done
    fi
    if ((ok)); then
        xenvm_log "tier: $name passed ($((SECONDS - t0)) s)"
        passed=$((passed + 1))
    else
        xenvm_log "tier: $name FAILED ($((SECONDS - t0)) s); console: $out/console.log"
        failed=$((failed + 1))
    fi
}

# One boot for the whole tier (each boot costs minutes under TCG): xenbaked on the real
# hypervisor with both guests, then Debian's xentrace in the same dom0 once the daemon has
# stopped (never both at once: Xen lets one consumer bind VIRQ_TBUF). check-xenbaked.sh compares
# the daemon with our offline tools; check-smoke.sh checks the infrastructure and xentrace.
# (payloads/xentrace-smoke.sh alone remains for debugging the infrastructure by hand.)
run_payload xenbaked "check-xenbaked.sh check-smoke.sh" \
    --bin "$BUILD_DIR/xenbaked/xenbaked" \
    --bin "$BUILD_DIR/dom0-tools/top/xenbake-top" \
    --bin "$BUILD_DIR/dom0-tools/tbuf/xenbake-tbuf" \
    --bin "$BUILD_DIR/tests/xen-vm/helpers/xenvm-vcpu-times"

echo "xen-vm: $passed passed, $failed failed"
((failed == 0))
