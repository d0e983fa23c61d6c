# shellcheck shell=sh
# /usr/lib/xenvm/lib.sh in dom0 — helpers for payloads (busybox sh). Source it with
#   . "$XENVM_LIB"
# Environment a payload gets from /init:
#   RESULTS    directory whose contents end up in the host's OUT_DIR (cwd of the payload)
#   GUEST_DIR  where the guests' NAME.cfg, NAME.cpio.gz and kernel (vmlinux) are
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

# guest_create NAME — `xl create` of $GUEST_DIR/NAME.cfg (seconds on an idle host,
# minutes on a loaded one: the bound is loose, the payload's watchdog is the backstop).
guest_create() {
    xenvm_log "xl create $1"
    timeout 400 xl create "$GUEST_DIR/$1.cfg" || xenvm_die "xl create $1 failed (exit $?)"
}

# guest_wait_ready NAME [SECONDS] — wait until the guest's /init printed its marker
# into the console log that xenconsoled --log=guest keeps. A guest needs 5–8 s after
# `xl create` returns to get there on an idle host, minutes on a loaded one (seen:
# 270 s with the host's load average at 15). The default wait is long because the
# payload's own limit in /init is the real backstop.
guest_wait_ready() {
    _log=/var/log/xen/console/guest-$1.log
    read -r _up _ < /proc/uptime
    _deadline=$(( ${_up%.*} + ${2:-600} ))
    while :; do
        _late=0
        read -r _up _ < /proc/uptime
        [ "${_up%.*}" -ge "$_deadline" ] && _late=1
        # Look once more after the deadline passed: the marker may have come meanwhile.
        if grep -q "XENVM-GUEST-READY $1" "$_log" 2>/dev/null; then
            xenvm_log "guest $1 ready: $(grep "XENVM-GUEST-READY $1" "$_log" | sed -n 1p | tr -d '\r')"
            return 0
        fi
        [ "$_late" -eq 1 ] && break
        sleep 1
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
