#!/bin/sh
# The same xenbaked binary that runs in dom0, unmodified, against xenbake-sim through the libxen
# shim (LD_PRELOAD). Passes when the daemon exits 0 and its raw capture holds every record the
# simulator produced, in order per CPU, none missing and none extra (xenbake-sim check), and its
# socket API names the domains with the names xenstore (the shim) gives them. The host has a third
# CPU that comes online only after the daemon enabled tracing (so it has no trace buffer, as on
# Xen): the daemon must warn that it is not traced (xc_getcpuinfo through the shim). The daemon
# reads every vCPU's cpu_time through the shim's xc_vcpu_getinfo and reconciles with it.
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

"$sim" run --shm "$work/mem" --cpus 2 --offline-cpus 2 --online-after-enable 2 \
  --domains 4 --vcpus 2 --seed 3 --speed 1 \
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

# In a sanitizer build the ASan runtime must come first in the library list, before the shim.
preload="$shim"
asan=$(ldd "$xenbaked" 2>/dev/null | grep -o '/[^ ]*libasan[^ ]*' | head -1 || true)
[ -n "$asan" ] && preload="$asan:$shim"
XENBAKE_SIM="$work/mem" LD_PRELOAD="$preload" "$xenbaked" --backend xen --duration 3 --quiet --shm-name '' \
  --initial-contents account --capture "$work/capture.xt" --log-level info \
  --socket "$work/run/api.sock" --interval-ms 200 2>"$work/daemon.err" &
daemon_pid=$!
# Ask the running daemon for its domains until a publication has named them (bounded by the
# daemon's own --duration: once it exits the socket is gone and the client gives up).
python3 - "$work/run/api.sock" "$daemon_pid" >"$work/names.json" <<'PY' || names_ok=no
import json, os, socket, sys, time
path, pid = sys.argv[1], int(sys.argv[2])
def alive():
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
deadline = time.monotonic() + 30
while time.monotonic() < deadline and alive():
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(b'{"cmd":"domains"}\n')
        line = s.makefile().readline()
        s.close()
        answer = json.loads(line)
        names = {d["domid"]: d["name"] for d in answer.get("data", [])}
        if names.get(0) == "Domain-0" and names.get(1) == "guest-1":
            # Then the reconciliation: every vCPU's cpu_time read through the shim's
            # xc_vcpu_getinfo (4 domains x 2 vCPUs), and periods compared.
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            s.sendall(b'{"cmd":"health"}\n')
            health = json.loads(s.makefile().readline())
            s.close()
            rec = health.get("data", {}).get("reconcile") or {}
            if rec.get("reads", 0) >= 2 and rec.get("vcpus_read") == 8 and rec["host"]["vcpus"] > 0:
                print(json.dumps({"names": names, "reconcile_host": rec["host"]}))
                sys.exit(0)
    except (OSError, ValueError):
        pass
    time.sleep(0.05)  # polling an external process; not a timing assertion
print("no domain names, or no reconciliation through the shim, from the socket API",
      file=sys.stderr)
sys.exit(1)
PY
wait "$daemon_pid" || { cat "$work/daemon.err" >&2; echo "xenbaked failed" >&2; exit 1; }
grep -q "CPU(s) 2 online without a trace buffer" "$work/daemon.err" || {
  cat "$work/daemon.err" >&2
  echo "the CPU that came online without a buffer was not reported" >&2
  exit 1
}
[ "${names_ok:-yes}" = yes ] || { echo "domain names or the reconciliation did not come through the shim" >&2; exit 1; }
echo "names and reconciliation: $(cat "$work/names.json")"
wait "$sim_pid"
sim_pid=
"$sim" check --capture "$work/capture.xt" --reference "$work/produced.xt"
echo "shim run: OK"
