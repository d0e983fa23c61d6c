#!/usr/bin/env bash
# xenbake-tbuf through the real libxenctrl calls, against xenbake-sim via the libxen shim: show,
# enable with a size, the one-shot size rule, masks, disable; and the message when not on Xen.
#
# Usage: tbuf_sim_test.sh XENBAKE_SIM SHIM_LIBRARY XENBAKE_TBUF
set -euo pipefail
sim="$1"
shim="$2"
tbuf="$3"
work="$(mktemp -d)"
shm="/dev/shm/xenbake-tbuf-test-$$"
sim_pid=""
cleanup() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  rm -rf "$work" "$shm" "$shm.sock"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  tail -20 "$work/sim.err" 2>/dev/null || true
  exit 1
}

# Not on Xen: no privcmd here (a CI container), no shim.
if [ ! -e /dev/xen/privcmd ] && [ ! -e /proc/xen/privcmd ]; then
  status=0
  env -u LD_PRELOAD -u XENBAKE_SIM "$tbuf" show >"$work/out" 2>"$work/err" || status=$?
  [ "$status" = 1 ] || fail "show without Xen exited $status, expected 1"
  grep -q "not running on Xen" "$work/err" || fail "no clear message without Xen: $(cat "$work/err")"
fi

"$sim" run --shm "$shm" --cpus 2 --domains 3 --vcpus 1 --seed 7 --duration 600 \
  --ready-file "$work/ready" >"$work/sim.out" 2>"$work/sim.err" &
sim_pid=$!
deadline=$((SECONDS + 60))
until [ -e "$work/ready" ]; do
  kill -0 "$sim_pid" 2>/dev/null || fail "xenbake-sim died"
  ((SECONDS < deadline)) || fail "xenbake-sim never became ready"
  sleep 0.1
done

# In a sanitizer build the shim needs the ASan runtime loaded first.
preload="$shim"
asan=$(ldd "$shim" 2>/dev/null | grep -o '/[^ ]*libasan[^ ]*' | head -1 || true)
[ -n "$asan" ] && preload="$asan:$shim"
run() {
  LD_PRELOAD="$preload" XENBAKE_SIM="$shm" ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
    timeout 30 "$tbuf" "$@"
}

run show >"$work/show0" || fail "show failed"
grep -q "not allocated" "$work/show0" || fail "fresh host: buffers should not be allocated: $(cat "$work/show0")"
grep -q "2 online" "$work/show0" || fail "show: CPUs: $(cat "$work/show0")"

run enable --size 8 --mask sched --cpus 0-1 >"$work/enable" || fail "enable failed"
grep -q "8 pages per CPU (32 KiB)" "$work/enable" || fail "enable: $(cat "$work/enable")"
run show --format json >"$work/show1.json" || fail "show --format json failed"
python3 - "$work/show1.json" <<'PY' || fail "show --format json: $(cat "$work/show1.json")"
import json, sys
state = json.load(open(sys.argv[1]))
assert state["pages_per_cpu"] == 8, state
assert state["bytes_per_cpu"] == 8 * 4096, state
assert state["nr_cpus"] == 2, state
PY

status=0
run set --size 16 2>"$work/err" || status=$?
[ "$status" = 1 ] || fail "a second size was not refused (exit $status)"
grep -q "once per boot" "$work/err" || fail "no reason for the refusal: $(cat "$work/err")"

run set --mask sched,pv --cpus 0 >/dev/null || fail "set masks failed"
status=0
run set --cpus 0-9999 2>"$work/err" || status=$?
[ "$status" = 1 ] || fail "a CPU beyond the host was accepted (exit $status)"
status=0
run set --mask nonsense 2>"$work/err" || status=$?
[ "$status" = 2 ] || fail "a bad mask was accepted (exit $status)"

run disable >"$work/disable" || fail "disable failed"
grep -q "tracing disabled" "$work/disable" || fail "disable: $(cat "$work/disable")"
run show | grep -q "8 pages per CPU" || fail "buffers gone after disable"
echo "PASS"
