#!/bin/bash
# Acceptance test of the simulator (issue 3): Debian's own, unmodified xentrace records a
# xenbake-sim workload through the libxen shim, and the capture holds exactly the records the
# simulator produced, per CPU and in order; under overflow, the TRC_LOST_RECORDS counts equal the
# simulator's drop count.
#
#   xentrace_acceptance.sh XENBAKE_SIM_BINARY SHIM_LIBRARY WORK_DIR (exact|overflow)
#
# xentrace comes from the xen-utils-4.17 package, downloaded and unpacked into WORK_DIR (never
# installed on the host). Exit 77 (ctest SKIP) only when it cannot be obtained.
set -u
SIM=$1 SHIM=$2 WORK=$3 MODE=$4

# scripts/fetch-xen-tools.sh's folder (run-tests.sh exports it) when it has xentrace already.
XENTRACE_ROOT="$WORK/xen-utils"
if [ -x "${XENBAKED_XEN_TOOLS:-/nonexistent}/usr/lib/xen-4.17/bin/xentrace" ]; then
  XENTRACE_ROOT="$XENBAKED_XEN_TOOLS"
fi
XENTRACE="$XENTRACE_ROOT/usr/lib/xen-4.17/bin/xentrace"
if [ ! -x "$XENTRACE" ]; then
  mkdir -p "$WORK/deb" && cd "$WORK/deb" || exit 1
  if ! apt-get download xen-utils-4.17 >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1
    apt-get download xen-utils-4.17 >/dev/null 2>&1
  fi
  deb=$(ls "$WORK"/deb/xen-utils-4.17_*.deb 2>/dev/null | head -1)
  if [ -z "$deb" ] || ! dpkg-deb -x "$deb" "$XENTRACE_ROOT" || [ ! -x "$XENTRACE" ]; then
    echo "SKIP: cannot obtain Debian's xentrace (apt-get download xen-utils-4.17 failed)"
    exit 77
  fi
  cd - >/dev/null || exit 1
fi

CHECK_ARGS=()
RUN="$WORK/run-$MODE"
rm -rf "$RUN" && mkdir -p "$RUN"
SHM="/dev/shm/xenbake-sim-acceptance-$$-$MODE"
case "$MODE" in
  exact)    SIM_ARGS=(--cpu-ids 0,1,3 --offline-cpus 2 --domains 6 --vcpus 2 --churn-hz 20
                      --lifetime-ms 200); XT_ARGS=(-e all -S 8 -T 3) ;;
  overflow) SIM_ARGS=(--cpus 2 --domains 4 --overflow --burst-interval-ms 50)
            XT_ARGS=(-e all -S 2 -T 2) ;;
  # tbuf_size= on Xen's command line: full buffers at first map; xentrace -D discards them, and
  # each CPU's capture must then start with [WRAP_BUFFER] LOST_RECORDS.
  boot)     SIM_ARGS=(--cpus 2 --domains 4 --boot-pages 4 --boot-ms 1000)
            XT_ARGS=(-D -e all -S 32 -T 2); CHECK_ARGS=(--discarded-prefix) ;;
  *) echo "unknown mode $MODE"; exit 1 ;;
esac

"$SIM" run --shm "$SHM" "${SIM_ARGS[@]}" --seed 42 --exit-after-disable --duration 120 \
  --truth "$RUN/truth.json" --produced "$RUN/produced.bin" --ready-file "$RUN/ready" \
  >"$RUN/sim.out" 2>"$RUN/sim.err" &
sim_pid=$!
trap 'kill $sim_pid 2>/dev/null; rm -f "$SHM" "$SHM.sock"' EXIT
# Wait for the simulator to be ready (a condition, bounded; no timing is asserted).
for _ in $(seq 600); do
  [ -e "$RUN/ready" ] && break
  kill -0 $sim_pid 2>/dev/null || { cat "$RUN/sim.err"; echo "xenbake-sim died"; exit 1; }
  sleep 0.1
done
[ -e "$RUN/ready" ] || { echo "xenbake-sim never became ready"; exit 1; }

# In a sanitizer build the shim needs the ASan runtime loaded first (xentrace has none).
PRELOAD="$SHIM"
asan=$(ldd "$SHIM" 2>/dev/null | grep -o '/[^ ]*libasan[^ ]*' | head -1)
[ -n "$asan" ] && PRELOAD="$asan:$SHIM"
echo "+ LD_PRELOAD=$PRELOAD XENBAKE_SIM=$SHM $XENTRACE ${XT_ARGS[*]} $RUN/xentrace.bin"
LD_PRELOAD="$PRELOAD" ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" XENBAKE_SIM="$SHM" \
  timeout 60 "$XENTRACE" "${XT_ARGS[@]}" "$RUN/xentrace.bin" 2>"$RUN/xentrace.err"
rc=$?
cat "$RUN/xentrace.err"
[ $rc -eq 0 ] || { echo "xentrace failed: $rc"; exit 1; }
wait $sim_pid
sim_rc=$?
trap - EXIT
[ $sim_rc -eq 0 ] || { cat "$RUN/sim.err"; echo "xenbake-sim failed: $sim_rc"; exit 1; }

"$SIM" check --capture "$RUN/xentrace.bin" --reference "$RUN/produced.bin" \
  --truth "$RUN/truth.json" "${CHECK_ARGS[@]}" | tee "$RUN/check.out"
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
if [ "$MODE" = boot ]; then
  bad=$(grep -E '^  cpu [0-9]+:' "$RUN/check.out" | grep -v -E 'starting (TRACE_WRAP_BUFFER |WRAP_BUFFER )?LOST_RECORDS')
  [ -z "$bad" ] || { echo "a CPU's capture does not start with [WRAP] LOST: $bad"; exit 1; }
fi
if [ "$MODE" = overflow ]; then
  # The workload must really have overflowed for this case to prove anything.
  grep -q '"dropped_reported": [1-9]' "$RUN/truth.json" || { echo "no loss: not an overflow"; exit 1; }
fi
echo "PASS ($MODE)"
