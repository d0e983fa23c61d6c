#!/bin/sh
# Domains created while the daemon runs get their names: the unmodified xenbaked binary on the
# Xen backend (libxenctrl, libxenstore) against xenbake-sim through the libxen shim, with domains
# created and destroyed during the run. Passes when the socket API names a domain that did not
# exist at the daemon's start with the name xenstore (the shim) gives it ("guest-<id>").
#   shim_names.sh XENBAKED XENBAKE_SIM LIBXENBAKE_SHIM
set -eu
xenbaked=$1 sim=$2 shim=$3
work=$(mktemp -d /tmp/xenbaked-shim-names-XXXXXX)
sim_pid=
daemon_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null || true
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Three domains at start (ids 0-2); the churn creates more, each living ~20 s.
"$sim" run --shm "$work/mem" --cpus 2 --domains 3 --vcpus 1 --seed 5 --speed 1 \
  --churn-hz 2 --lifetime-ms 20000 --ready-file "$work/ready" --exit-after-disable \
  >"$work/sim.out" &
sim_pid=$!
tries=0
while [ ! -e "$work/ready" ]; do
  tries=$((tries + 1))
  [ "$tries" -gt 600 ] && { echo "xenbake-sim never became ready" >&2; exit 1; }
  kill -0 "$sim_pid" 2>/dev/null || { echo "xenbake-sim died" >&2; exit 1; }
  sleep 0.05  # start-up, not a timing assertion
done

preload="$shim"
asan=$(ldd "$xenbaked" 2>/dev/null | grep -o '/[^ ]*libasan[^ ]*' | head -1 || true)
[ -n "$asan" ] && preload="$asan:$shim"
XENBAKE_SIM="$work/mem" LD_PRELOAD="$preload" "$xenbaked" --backend xen --duration 30 --quiet --shm-name "" \
  --log-level info --socket "$work/run/api.sock" --interval-ms 200 2>"$work/daemon.err" &
daemon_pid=$!
# Until a domain created after the start is named (bounded by the daemon's --duration).
python3 - "$work/run/api.sock" "$daemon_pid" <<'PY' || { cat "$work/daemon.err" >&2; exit 1; }
import json, os, socket, sys, time
path, pid = sys.argv[1], int(sys.argv[2])
def alive():
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
deadline = time.monotonic() + 60
while time.monotonic() < deadline and alive():
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(b'{"cmd":"domains"}\n')
        line = s.makefile().readline()
        s.close()
        names = {d["domid"]: d["name"] for d in json.loads(line).get("data", [])}
        late = {i: n for i, n in names.items() if 3 <= i < 32767}
        if any(n == f"guest-{i}" for i, n in late.items()):
            print("named after start:", json.dumps(late))
            sys.exit(0)
    except (OSError, ValueError):
        pass
    time.sleep(0.05)  # polling an external process; not a timing assertion
print("no domain created after the start was named", file=sys.stderr)
sys.exit(1)
PY
kill -TERM "$daemon_pid"
wait "$daemon_pid" || { cat "$work/daemon.err" >&2; echo "xenbaked failed" >&2; exit 1; }
daemon_pid=
echo "shim names: OK"
