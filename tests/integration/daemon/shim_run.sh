#!/bin/sh
# The same xenbaked binary that runs in dom0, unmodified, against xenbake-sim through the libxen
# shim (LD_PRELOAD). Passes when the daemon exits 0 and its raw capture holds every record the
# simulator produced, in order per CPU, none missing and none extra (xenbake-sim check).
#   shim_run.sh XENBAKED XENBAKE_SIM LIBXENBAKE_SHIM
set -eu
xenbaked=$1 sim=$2 shim=$3
work=$(mktemp -d /tmp/xenbaked-shim-XXXXXX)
sim_pid=
cleanup() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$sim" run --shm "$work/mem" --cpus 2 --domains 4 --vcpus 2 --seed 3 --speed 1 \
  --ready-file "$work/ready" --exit-after-disable --produced "$work/produced.xt" \
  --truth "$work/truth.json" &
sim_pid=$!
# Wait (bounded) for the simulator to accept the shim; this is start-up, not a timing assertion.
tries=0
while [ ! -e "$work/ready" ]; do
  tries=$((tries + 1))
  [ "$tries" -gt 600 ] && { echo "xenbake-sim never became ready" >&2; exit 1; }
  kill -0 "$sim_pid" 2>/dev/null || { echo "xenbake-sim died" >&2; exit 1; }
  sleep 0.05
done

XENBAKE_SIM="$work/mem" LD_PRELOAD="$shim" "$xenbaked" --backend xen --duration 3 --quiet \
  --initial-contents account --capture "$work/capture.xt" --log-level info
wait "$sim_pid"
sim_pid=
"$sim" check --capture "$work/capture.xt" --reference "$work/produced.xt"
echo "shim run: OK"
