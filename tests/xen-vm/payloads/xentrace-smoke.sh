#!/bin/sh
# Payload: xentrace smoke test (runs in dom0 under busybox sh; see tests/xen-vm/run.sh).
# Proves the tier end to end: both PV guests boot under the real toolstack, Debian's
# xentrace captures scheduler records from the real hypervisor, and xl sees and
# destroys domains. tests/xen-vm/check-smoke.sh checks what it leaves in $RESULTS.
#
# xentrace binds VIRQ_TBUF; Xen allows one binder, so a payload that runs xenbaked must
# not run xentrace at the same time.
set -u
# shellcheck source=SCRIPTDIR/../dom0/lib.sh
. "$XENVM_LIB"

# sleeper first: the spinner, once up, takes a whole CPU and slows whatever boots after it.
guest_start sleeper spinner

xenvm_run 30 xl-list.txt xl list || xenvm_die "xl list failed"
xenvm_run 30 xl-info.txt xl info || xenvm_die "xl info failed"
xenvm_log "xl list:"; cat "$RESULTS/xl-list.txt"

# -D discards what is already in the buffers (tracing has been on since boot because of
# tbuf_size=), -e 0x0002f000 is TRC_SCHED, -T 3 stops after 3 seconds.
xenvm_run 60 xentrace.log xentrace -D -e 0x0002f000 -T 3 "$RESULTS/trace.bin" \
    || xenvm_die "xentrace failed: $(cat "$RESULTS/xentrace.log")"
xenvm_log "trace.bin: $(wc -c < "$RESULTS/trace.bin") bytes"

xenvm_run 60 xl-destroy.txt xl destroy sleeper || xenvm_die "xl destroy sleeper failed"
xenvm_run 30 xl-list-after-destroy.txt xl list || xenvm_die "xl list failed"
cat "$RESULTS/xl-list-after-destroy.txt"
xenvm_log "smoke payload done"
