#!/usr/bin/env bash
# Builds account_benchmark and xenbake-account in Release, runs the benchmark on a generated
# capture (the mix of a real `xentrace -e all` capture), then times xenbake-account and Debian's
# xenalyze --summary on the same file and prints the ratio of their per-record CPU costs.
#
#   tests/bench/account/run-account-benchmark.sh [RECORDS]     default 4,000,000 records
#
# Environment: BUILD_DIR (default build-bench), XENALYZE (a xenalyze binary; otherwise
# /usr/bin/xenalyze or one unpacked from Debian's xen-utils-common into ~/.cache/xenbaked with
# apt-get download + dpkg-deb -x — never installed on the host).
set -euo pipefail

root=$(cd "$(dirname "$0")/../../.." && pwd)
records=${1:-4000000}
build=${BUILD_DIR:-$root/build-bench}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
  -DXENBAKED_BENCHMARKS=ON >/dev/null
cmake --build "$build" --target account_benchmark xenbake-account -j2 >/dev/null
bench=$build/tests/bench/account/account_benchmark
account=$build/dom0-tools/account/xenbake-account

# shellcheck source=tests/bench/find-xenalyze.sh
source "$root/tests/bench/find-xenalyze.sh"

# CPU seconds (user + system) of a command: comparable across tools on a shared machine.
cpu_seconds() {
  { TIMEFORMAT='%U %S'; time "$@" >/dev/null 2>"$work/stderr"; } 2>&1 | awk '{ print $1 + $2 }'
}

capture=$work/capture.bin
"$bench" --generate="$capture" --records="$records"
echo "== account_benchmark ($records records)"
"$bench" --capture="$capture" --benchmark_min_time=1 --benchmark_counters_tabular=true

account_s=$(cpu_seconds "$account" --cpu-khz 2596120 --json "$capture")
awk -v s="$account_s" -v n="$records" 'BEGIN {
  printf "xenbake-account --json: %.1f ns/record, %.1f M records/s (%.3f s CPU)\n",
         s * 1e9 / n, n / s / 1e6, s }'
xenalyze=$(find_xenalyze || true)
if [[ -n $xenalyze ]]; then
  xenalyze_s=$(cpu_seconds "$xenalyze" --summary "$capture")
  awk -v a="$account_s" -v x="$xenalyze_s" -v n="$records" 'BEGIN {
    printf "xenalyze --summary:     %.1f ns/record (%.3f s CPU)\n", x * 1e9 / n, x
    printf "ratio xenalyze / xenbake-account: %.1fx\n", x / a }'
else
  echo "== xenalyze not available: ratio skipped"
fi
