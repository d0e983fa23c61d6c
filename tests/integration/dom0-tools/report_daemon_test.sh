#!/usr/bin/env bash
# xenbake-report on a log the daemon really wrote: xenbaked on its simulator three times into the
# same --log-dir (engine time starts again at 0 in each run), then the report as table, CSV, JSON
# and SVG, which must cover the time the three runs ran, one row per domain incarnation per run;
# a damaged copy of the log; inputs that never end.
#
# Usage: report_daemon_test.sh XENBAKED XENBAKE_REPORT
set -euo pipefail
xenbaked="$1"
report="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() {
  echo "FAIL: $*"
  tail -20 "$work/daemon.log" 2>/dev/null || true
  exit 1
}

for duration in 4 2.5 2.5; do
  timeout 120 "$xenbaked" --simulate --sim-domains 3 --sim-vcpus 2 --sim-cpus 2 \
    --duration "$duration" --interval-ms 200 --windows 1,10 --log-dir "$work" --quiet --shm-name '' \
    >>"$work/daemon.log" 2>&1 || fail "the daemon failed"
done
log="$work/accounting.log"
[ -s "$log" ] || fail "no accounting log"

"$report" "$log" >"$work/table" || fail "table failed"
grep -q "Domain-0" "$work/table" || fail "table without Domain-0: $(cat "$work/table")"
grep -q "over 3 daemon runs" "$work/table" || fail "table without the runs: $(cat "$work/table")"
"$report" --format csv "$log" >"$work/csv" || fail "csv failed"
"$report" --format json --svg "$work/plot.svg" -o "$work/json" "$log" || fail "json failed"
python3 - "$work/json" "$work/csv" "$work/plot.svg" <<'PY' || fail "report content"
import csv, json, sys, xml.dom.minidom
report = json.load(open(sys.argv[1]))
# Three runs of 4, 2.5 and 2.5 s: whole 1 s windows 3 + 1 + 1 at the least, 9 s at the most.
assert len(report["runs"]) == 3, report["runs"]
assert report["windows"] >= 5, report["windows"]
assert 5e9 <= report["period_ns"] <= 9e9, report["period_ns"]
assert sum(r["period_ns"] for r in report["runs"]) == report["period_ns"]
assert all(r["ended_cleanly"] for r in report["runs"]), report["runs"]
assert report["lost_at_start_known"]
assert report["lost_records"] == \
    report["lost_records_at_start"] + report["lost_records_during_run"]
domains = {d["domid"]: d for d in report["domains"]}
assert 0 in domains and 32767 in domains, sorted(domains)
for d in report["domains"]:
    for key in ("cpu_pct", "wait_pct", "blocked_pct"):
        assert 0 <= d[key] <= 100.0 * 2 + 1e-6, (d["domid"], key, d[key])  # 2 vCPUs at most
# Every CPU's time is somebody's: running over all domains, idle included, is the CPUs' time.
total_running = sum(d["running_ns"] for d in report["domains"])
assert abs(total_running - 2 * report["period_ns"]) <= 0.01 * 2 * report["period_ns"], \
    (total_running, report["period_ns"])
# Each run counts domain incarnations afresh: a row is one incarnation in one run, never the
# sum of several runs, and its final record (which also covers the time after the last window)
# is at least what its windows add up to.
keys = [(d["domid"], d["run"], d["instance"]) for d in report["domains"]]
assert len(keys) == len(set(keys)), keys
assert len({d["run"] for d in report["domains"]}) == 3, keys
for d in report["domains"]:
    run_period = report["runs"][d["run"]]["period_ns"]
    assert d["running_ns"] <= 2 * run_period * 1.01, (d["domid"], d["run"], d["running_ns"])
    if d["final"] is not None:
        assert d["final"]["running_ns"] >= d["running_ns"] * 0.99, (d["domid"], d["run"])
assert report["rejected"] == [], report["rejected"]
rows = list(csv.DictReader(open(sys.argv[2])))
assert len(rows) == len(report["domains"])
svg = xml.dom.minidom.parse(sys.argv[3])  # well-formed XML
assert svg.getElementsByTagName("polyline"), "no lines in the plot"
PY

# Damage one byte in the middle: the records before it are still reported, exit status 3.
size=$(stat -c %s "$log")
cp "$log" "$work/damaged.log"
printf '\xff\xff\xff\xff' | dd of="$work/damaged.log" bs=1 seek=$((size / 2)) conv=notrunc status=none
status=0
"$report" --format json "$work/damaged.log" >"$work/damaged.json" 2>"$work/err" || status=$?
[ "$status" = 3 ] || fail "damaged log: exit $status, expected 3"
grep -q "damaged" "$work/err" || fail "no message for the damage: $(cat "$work/err")"
grep -q "byte" "$work/err" || fail "no offset in the message: $(cat "$work/err")"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); assert r['windows'] >= 1" \
  "$work/damaged.json" || fail "nothing reported before the damage"
# Inputs that never end are refused at once, not read for ever.
mkfifo "$work/fifo"
for input in /dev/zero "$work/fifo"; do
  status=0
  timeout 20 "$report" "$input" >/dev/null 2>"$work/err" || status=$?
  [ "$status" = 1 ] || fail "$input: exit $status, expected 1"
  grep -q "not a regular file" "$work/err" || fail "$input: $(cat "$work/err")"
done
status=0
"$report" --from "" "$log" >/dev/null 2>&1 || status=$?
[ "$status" = 2 ] || fail "--from \"\": exit $status, expected 2 (usage)"
echo "PASS"
