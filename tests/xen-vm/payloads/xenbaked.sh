#!/bin/sh
# Payload: xenbaked in a real dom0 (not yet in run-tier.sh: its host-side check is still to be
# written). Starts both guests, runs xenbaked with a raw capture, an accounting log and the socket
# API, reads it with xenbake-top and xenbake-tbuf, destroys one guest while it runs, then lets it
# finish. Run with:
#   tests/xen-vm/run.sh --payload tests/xen-vm/payloads/xenbaked.sh --out OUT --timeout 900 \
#     --bin build/xenbaked/xenbaked --bin build/dom0-tools/top/xenbake-top \
#     --bin build/dom0-tools/tbuf/xenbake-tbuf
# and compare OUT/xenbaked.err's totals with `xenbake-account OUT/raw.xt` on the host.
# xenbaked binds VIRQ_TBUF, so nothing else (xentrace) may run at the same time.
set -u
# shellcheck source=SCRIPTDIR/../dom0/lib.sh
. "$XENVM_LIB"
mkdir -p "$RESULTS/log" /dev/shm
mountpoint -q /dev/shm || mount -t tmpfs -o mode=1777 tmpfs /dev/shm
guest_start sleeper spinner
xenvm_run 30 xl-list.txt xl list || xenvm_die "xl list failed"

xenbaked --backend xen --initial-contents discard --capture "$RESULTS/raw.xt" \
    --log-dir "$RESULTS/log" --socket "$RESULTS/api.sock" --duration 12 --quiet \
    >"$RESULTS/xenbaked.out" 2>"$RESULTS/xenbaked.err" &
pid=$!
sleep 5
xenbake-top --batch --iterations 2 >"$RESULTS/top.json" 2>"$RESULTS/top.err" || true
xenbake-tbuf show >"$RESULTS/tbuf-show.txt" 2>&1 || true
xl destroy sleeper >"$RESULTS/destroy.txt" 2>&1 || true
wait "$pid"
echo "exit=$?" >"$RESULTS/xenbaked.rc"
xenvm_log "xenbaked payload done: $(cat "$RESULTS/xenbaked.rc")"
