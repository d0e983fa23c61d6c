# /usr/lib/xenvm/lib.sh in dom0 — helpers for payloads (busybox sh). Source it with
#   . "$XENVM_LIB"
# Environment a payload gets from /init:
#   RESULTS    directory whose contents end up in the host's OUT_DIR (cwd of the payload)
#   GUEST_DIR  where the guests' NAME.cfg, NAME.cpio.gz and vmlinuz are
#   XENVM_LIB  this file
# plus every --env KEY=VALUE given to run.sh. The payload's stdout/stderr go to
# $RESULTS/xenvm/payload.log (and the console); a non-zero exit fails run.sh.

# xenvm_log MSG... — a progress line (with dom0 uptime). It goes to payload.log, which
# /init mirrors onto the console, where run.sh picks out the "XENVM" lines live.
xenvm_log() {
    echo "XENVM payload: [$(cut -d' ' -f1 /proc/uptime)] $*"
}

xenvm_die() {
    xenvm_log "FAILED: $*"
    exit 1
}

# guest_create NAME — `xl create` of $GUEST_DIR/NAME.cfg (11–14 s each under TCG).
guest_create() {
    xenvm_log "xl create $1"
    timeout 120 xl create "$GUEST_DIR/$1.cfg" || xenvm_die "xl create $1 failed"
}

# guest_wait_ready NAME [SECONDS] — wait until the guest's /init printed its marker
# into the console log that xenconsoled --log=guest keeps; a guest needs 5–8 s after
# `xl create` returns to get there under TCG.
guest_wait_ready() {
    _log=/var/log/xen/console/guest-$1.log
    _n=${2:-120}
    while [ "$_n" -gt 0 ]; do
        if grep -q "XENVM-GUEST-READY $1" "$_log" 2>/dev/null; then
            xenvm_log "guest $1 ready: $(grep -m1 "XENVM-GUEST-READY $1" "$_log" | tr -d '\r')"
            return 0
        fi
        sleep 1
        _n=$((_n - 1))
    done
    xenvm_log "guest $1 console log so far:"
    tail -n 30 "$_log" 2>/dev/null
    xenvm_die "guest $1 did not reach its /init"
}

# guest_start NAME... — create each guest, then wait until every one is ready.
guest_start() {
    for _g in "$@"; do guest_create "$_g"; done
    for _g in "$@"; do guest_wait_ready "$_g"; done
}

# xenvm_run SECONDS OUTFILE CMD... — run CMD bounded, stdout+stderr into OUTFILE
# (relative to $RESULTS), and log its exit status. Returns CMD's status.
xenvm_run() {
    _t=$1 _o=$2; shift 2
    xenvm_log "run: $*"
    timeout "$_t" "$@" > "$RESULTS/$_o" 2>&1
    _rc=$?
    [ "$_rc" -eq 0 ] || xenvm_log "exit $_rc: $*"
    return "$_rc"
}
