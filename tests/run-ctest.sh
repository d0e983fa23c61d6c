#!/usr/bin/env bash
# Runs ctest on one build and, in strict mode, fails the run when a test skipped that is not on
# tests/allowed-skips.txt. ctest reports a skipped test (GTEST_SKIP, or exit 77 from a script) as
# passed-with-a-note and exits 0, so a test that silently stopped running — its data or peer tool
# missing on a fresh machine — would otherwise go unnoticed.
#
#   run-ctest.sh BUILD_DIR [ctest options...]
#
# Strict mode is on when XENBAKED_STRICT_SKIPS=1 (scripts/run-tests.sh sets it under CI=true).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$1"
shift
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

status=0
ctest --test-dir "$build" --output-on-failure "$@" 2>&1 | tee "$log" || status=$?
((status == 0)) || exit "$status"
[[ ${XENBAKED_STRICT_SKIPS:-0} == 1 ]] || exit 0

# ctest's closing list: "The following tests did not run:" then "\t<n> - <name> (Skipped)".
mapfile -t skipped < <(sed -n 's/^[[:space:]]*[0-9]\+ - \(.*\) (Skipped)$/\1/p' "$log")
mapfile -t allowed < <(grep -v '^[[:space:]]*\(#\|$\)' "$here/allowed-skips.txt" || true)
unexpected=()
for name in "${skipped[@]}"; do
  ok=0
  for pattern in "${allowed[@]}"; do
    if [[ $name =~ ^${pattern}$ ]]; then ok=1; break; fi
  done
  ((ok)) || unexpected+=("$name")
done
if ((${#unexpected[@]} > 0)); then
  echo "run-ctest: ${#unexpected[@]} test(s) skipped that must run here (tests/allowed-skips.txt):"
  printf '  %s\n' "${unexpected[@]}"
  exit 1
fi
echo "run-ctest: ${#skipped[@]} skipped, all allowed"
