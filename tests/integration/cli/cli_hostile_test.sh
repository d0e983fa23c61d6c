#!/usr/bin/env bash
# What a careless command line must not do: write the output over the input it is about to read
# (by the same name, through a link, or onto a trace's .meta sidecar), or take "nan" for a number
# (a refresh interval of NaN spun at 100 % CPU; a NaN idle time or duration never ended).
# Usage: cli_hostile_test.sh SLICE_DIR DUMP ACCOUNT TIMELINE REPORT TOP SIM
set -uo pipefail
slices=$1 dump=$2 account=$3 timeline=$4 report=$5 top=$6 sim=$7
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

trace="$work/trace.bin"
cp "$(ls "$slices"/*.bin | head -1)" "$trace"
printf 'cpu_khz 2596120\n' >"$trace.meta"
ln -s "$trace" "$work/link.bin"
before=$(cat "$trace" "$trace.meta" | md5sum)

# expect_usage NAME COMMAND...: exit status 2, and the trace and its sidecar untouched.
expect_usage() {
  local name=$1 rc=0
  shift
  timeout 20 "$@" >"$work/out.txt" 2>"$work/err.txt" || rc=$?
  [ "$rc" -eq 2 ] || fail "$name: exit $rc, expected 2 ($(head -c 200 "$work/err.txt"))"
  [ "$(cat "$trace" "$trace.meta" | md5sum)" = "$before" ] || {
    fail "$name: the input was changed"
    cp "$(ls "$slices"/*.bin | head -1)" "$trace"
    printf 'cpu_khz 2596120\n' >"$trace.meta"
  }
}

for tool in "$dump" "$account"; do
  n=$(basename "$tool")
  expect_usage "$n -o INPUT" "$tool" -o "$trace" "$trace"
  expect_usage "$n -o LINK-TO-INPUT" "$tool" -o "$work/link.bin" "$trace"
  expect_usage "$n -o INPUT.meta" "$tool" -o "$trace.meta" "$trace"
done
expect_usage "xenbake-timeline -o INPUT" "$timeline" -o "$trace" "$trace"
expect_usage "xenbake-timeline -o INPUT.meta" "$timeline" -o "$trace.meta" "$trace"
# The report reads accounting logs: the refusal comes before any byte is read.
expect_usage "xenbake-report -o INPUT" "$report" -o "$trace" "$trace"
expect_usage "xenbake-report --svg INPUT" "$report" --svg "$work/link.bin" "$trace"
grep -q "is the input" "$work/err.txt" || fail "the refusal does not say why: $(cat "$work/err.txt")"

# An output that is not an input still works.
rc=0
"$dump" --summary -o "$work/summary.txt" "$trace" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 0 ] && [ -s "$work/summary.txt" ] || fail "xenbake-dump -o a new file: exit $rc"

expect_usage "xenbake-top -d nan" "$top" --batch -d nan --shm "$work/none"
expect_usage "xenbake-top -d inf" "$top" --batch -d inf --shm "$work/none"
expect_usage "xenbake-timeline --idle nan" "$timeline" --follow --idle nan "$trace"
expect_usage "xenbake-sim run --duration nan" "$sim" run --duration nan --shm "$work/sim"
expect_usage "xenbake-sim run --speed nan" "$sim" run --speed nan --shm "$work/sim"
expect_usage "xenbake-sim run --slice-ms nan" "$sim" run --slice-ms nan --shm "$work/sim"

((failures == 0)) || { echo "$failures failure(s)"; exit 1; }
echo "all refused as they should be"
