#!/bin/sh
# CPU of an idle xenbaked with many domains: the xenbaked binary on its Xen backend against
# xenbake-sim through the libxen shim (so every libxenctrl/libxenstore call is a real round trip
# to another process, as to Xen and xenstored), almost no records. Prints the daemon's user and
# system CPU over a steady window (from /proc/PID/stat, after a warm-up that includes naming
# every domain once), as ms per second of wall time. Not a pass/fail test.
#   idle_domains.sh XENBAKED XENBAKE_SIM LIBXENBAKE_SHIM [DOMAINS] [SECONDS]
set -eu
xenbaked=$1 sim=$2 shim=$3 domains=${4:-1000} seconds=${5:-20}
work=$(mktemp -d /tmp/xenbaked-idle-XXXXXX)
sim_pid= daemon_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null || true
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$sim" run --shm "$work/mem" --cpus 4 --domains "$domains" --vcpus 1 --seed 1 --speed 1 \
  --busy-fraction 0 --hypercall-hz 0 --io-hz 0 --ready-file "$work/ready" --exit-after-disable \
  >/dev/null &
sim_pid=$!
while [ ! -e "$work/ready" ]; do sleep 0.05; done
XENBAKE_SIM="$work/mem" LD_PRELOAD="$shim" "$xenbaked" --backend xen --quiet --shm-name "" \
  --log-level warning --interval-ms 1000 --socket "$work/api.sock" 2>"$work/daemon.err" &
daemon_pid=$!
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14, $15}' "/proc/$daemon_pid/stat"; }
sleep 5
set -- $(cpu)
u0=$1 s0=$2
t0=$(date +%s.%N)
sleep "$seconds"
set -- $(cpu)
u1=$1 s1=$2
t1=$(date +%s.%N)
awk -v u="$((u1 - u0))" -v s="$((s1 - s0))" -v t0="$t0" -v t1="$t1" -v hz="$ticks" \
  -v d="$domains" 'BEGIN {
    w = t1 - t0
    printf "domains %d: user %.1f ms/s, system %.1f ms/s, total %.1f ms/s (over %.1f s)\n",
           d, 1000 * u / hz / w, 1000 * s / hz / w, 1000 * (u + s) / hz / w, w }'
kill -TERM "$daemon_pid"
wait "$daemon_pid" || true
daemon_pid=
