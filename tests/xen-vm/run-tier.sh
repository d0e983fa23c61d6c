#!/usr/bin/env bash
# tests/xen-vm/run-tier.sh — the real-Xen tier as scripts/run-tests.sh runs it: each
# payload in its own boot, each followed by its host-side check.
#
# Usage: tests/xen-vm/run-tier.sh BUILD_DIR OUT_ROOT
#   BUILD_DIR  the CMake build tree holding our binaries (for payloads that run them)
#   OUT_ROOT   each payload's results go to OUT_ROOT/NAME (emptied first)
# Environment: CACHE_DIR (default /var/cache/xenbaked-xen-vm); XENVM_TIMEOUT, the hard limit
# per boot (default here 900 s rather than run.sh's 300 s: a CI machine may be busy, and TCG
# slows down with the host's load — see README.md).
#
# Exits non-zero if any payload or check failed, after running all of them. Ends with the
# plain "N passed, N failed" line.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

(($# == 2)) || xenvm_die "usage: $0 BUILD_DIR OUT_ROOT"
BUILD_DIR=$(cd "$1" 2>/dev/null && pwd) || xenvm_die "build directory $1 not found"
OUT_ROOT=$2
export XENVM_TIMEOUT=${XENVM_TIMEOUT:-900}
mkdir -p "$OUT_ROOT"
OUT_ROOT=$(cd "$OUT_ROOT" && pwd)
passed=0 failed=0

# run_payload NAME CHECK [run.sh options...] — one boot with payloads/NAME.sh, then
# CHECK OUT_DIR on the host (CHECK may be "-" for none).
run_payload() {
    local name=$1 check=$2; shift 2
    local out=$OUT_ROOT/$name
    rm -rf -- "$out"
    xenvm_log "tier: payload $name"
    local t0=$SECONDS
    if "$XENVM_DIR/run.sh" --payload "$XENVM_DIR/payloads/$name.sh" --out "$out" "$@" \
        && { [[ $check == - ]] || "$check" "$out"; }; then
        xenvm_log "tier: $name passed ($((SECONDS - t0)) s)"
        passed=$((passed + 1))
    else
        xenvm_log "tier: $name FAILED ($((SECONDS - t0)) s); console: $out/console.log"
        failed=$((failed + 1))
    fi
}

# The infrastructure itself: both guests, Debian's xentrace, xl.
run_payload xentrace-smoke "$XENVM_DIR/check-smoke.sh"

# Payloads that run our binaries go here, e.g.
#   run_payload xenbaked "$XENVM_DIR/check-xenbaked.sh" \
#       --bin "$BUILD_DIR/xenbaked/xenbaked" --bin "$BUILD_DIR/.../xenbake-top" ...
# (never xentrace and xenbaked in the same moment: one VIRQ_TBUF binder at a time).
: "$BUILD_DIR"

echo "xen-vm: $passed passed, $failed failed"
((failed == 0))
