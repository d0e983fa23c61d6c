#!/usr/bin/env bash
# tests/xen-vm/check-xenbaked.sh — host-side checks of what payloads/xenbaked.sh left: xenbaked
# on the real hypervisor, compared with our offline tools over the raw capture of the same run.
#
# Usage: tests/xen-vm/check-xenbaked.sh OUT_DIR
#   BUILD_DIR  (default: build, beside tests/) holds the host's xenbake-account, xenbake-dump
#              and xenbake-report.
# Needs jq. Prints one line per check, with the figures it compared, and a closing
# "N passed, N failed"; exits 1 if any failed.
set -euo pipefail

(($# == 1)) || { echo "usage: $0 OUT_DIR" >&2; exit 1; }
OUT=$1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
ACCOUNT=$BUILD_DIR/dom0-tools/account/xenbake-account
DUMP=$BUILD_DIR/dom0-tools/dump/xenbake-dump
REPORT=$BUILD_DIR/dom0-tools/report/xenbake-report
command -v jq >/dev/null || { echo "check-xenbaked: jq is missing (scripts/install-deps.sh)" >&2; exit 1; }
for t in "$ACCOUNT" "$DUMP" "$REPORT"; do
    [[ -x $t ]] || { echo "check-xenbaked: $t not built (BUILD_DIR=$BUILD_DIR)" >&2; exit 1; }
done

pass=0 fail=0
ok() { echo "PASS  $1"; pass=$((pass + 1)); }
bad() { echo "FAIL  $1"; fail=$((fail + 1)); }
check() {  # check NAME CMD... — CMD's status decides
    local name=$1; shift
    if "$@" >/dev/null 2>&1; then ok "$name"; else bad "$name"; fi
}
expect_eq() {  # expect_eq NAME GOT WANT
    if [[ $2 == "$3" ]]; then ok "$1 ($2)"; else bad "$1: got '$2', expected '$3'"; fi
}
expect() {  # expect NAME SHELL-ARITHMETIC (figures in NAME)
    if (($2)); then ok "$1"; else bad "$1"; fi
}
indent() { sed 's/^/        /'; }
jq_if() {  # jq_if EXPR — 1 if the jq expression (of numbers) is true, else 0
    jq -n "if ($1) then 1 else 0 end" 2>/dev/null || echo 0
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ERR=$OUT/xenbaked.err

# --- the run itself -------------------------------------------------------------------------
check "console.log kept" test -s "$OUT/console.log"
check "payload exited 0" grep -qx 0 "$OUT/xenvm/payload.rc"
if [[ -s $OUT/failed-steps.txt ]]; then
    bad "payload steps failed: $(tr '\n' ' ' < "$OUT/failed-steps.txt")(see $OUT/xenvm/payload.log)"
else
    check "every payload step succeeded" test -f "$OUT/failed-steps.txt"
fi
expect_eq "xenbaked exited 0 after SIGTERM" "$(cat "$OUT/xenbaked.rc" 2>/dev/null || echo none)" 0
check "xenbaked logged the signal and its final drain" grep -q "signal 15: final drain and exit" "$ERR"

nr_cpus=$(sed -nE 's/^nr_cpus +: ([0-9]+)$/\1/p' "$OUT/xl-info.txt" 2>/dev/null || true)
nr_cpus=${nr_cpus:-2}
domid_of() {  # domid_of NAME — from the xl list taken once both guests were up
    awk -v n="$1" '$1 == n { print $2 }' "$OUT/xl-list.txt" 2>/dev/null
}
sleeper=$(domid_of sleeper)
spinner=$(domid_of spinner)
expect "xl list gave the guests' ids (sleeper ${sleeper:-?}, spinner ${spinner:-?})" \
    "${#sleeper} > 0 && ${#spinner} > 0"
sleeper=${sleeper:-none} spinner=${spinner:-none}

# --- the daemon on the real hypervisor (its own log) ------------------------------------------
map_line=$(grep -m1 "libxenforeignmemory: t_info and" "$ERR" || true)
pages=$(sed -nE 's/.* CPU buffer\(s\) of ([0-9]+) pages mapped.*/\1/p' <<<"$map_line")
mapped_cpus=$(sed -nE 's/.* t_info and ([0-9]+) CPU buffer\(s\).*/\1/p' <<<"$map_line")
expect "buffers mapped through libxenctrl/libxenforeignmemory, VIRQ_TBUF bound (${map_line#*: })" \
    "${#map_line} > 0"
expect_eq "a buffer mapped for every CPU" "${mapped_cpus:-none}" "$nr_cpus"
expect_eq "buffer size the daemon asked for (--pages 32) is what it mapped" "${pages:-none}" 32
check "backend xen" grep -q "tracing on $nr_cpus CPU(s), 32 pages each, backend xen" "$ERR"
exit_line=$(grep -m1 "exit: .* records drained" "$ERR" || true)
field() { sed -nE "s/.*$1.*/\\1/p" <<<"$exit_line"; }
d_records=$(field 'exit: ([0-9]+) records drained')
d_lost_run=$(field ' ([0-9]+) lost during the run')
d_lost_start=$(field 'and ([0-9]+) before start')
d_anomalies=$(field ' ([0-9]+) anomalies,')
d_late=$(field ' ([0-9]+) late records')
d_irq=$(field 'wakes irq ([0-9]+) ')
d_timer=$(field 'wakes irq [0-9]+ timer ([0-9]+)')
expect "daemon's exit summary present" "${#d_records} > 0 && ${#d_irq} > 0 && ${#d_lost_run} > 0"
d_records=${d_records:-0} d_lost_run=${d_lost_run:-0} d_lost_start=${d_lost_start:-0}
d_anomalies=${d_anomalies:-1} d_late=${d_late:-none} d_irq=${d_irq:-0} d_timer=${d_timer:-0}
expect "VIRQ_TBUF woke the daemon (irq $d_irq, backstop timer $d_timer)" "d_irq >= 1"
expect_eq "no ring anomalies while draining" "$d_anomalies" 0
expect_eq "no record reached the merge after a newer one had been accounted (late records)" \
    "$d_late" 0
# The per-period reconciliation with Xen's cpu_time rests on knowing when Xen's clock was read,
# which the daemon takes from the TSC; under QEMU/TCG the VM's TSCs are unsynchronized (dom0's
# kernel marks the TSC unstable), so a period's bound can be wrong there. Its warnings are shown
# for the record; the run's per-vCPU totals are checked against Xen below.
reconcile_warnings=$(grep -E "^xenbaked: warning: .*differs from Xen's cpu_time" "$ERR" 2>/dev/null | head -n 3 || true)
if [[ -n $reconcile_warnings ]]; then
    echo "INFO  per-period reconciliation outside its bound on this VM (TSC $(grep -q 'Marking TSC unstable' "$OUT/console.log" 2>/dev/null && echo unstable || echo stable)):"
    indent <<<"$reconcile_warnings"
fi
warnings=$(grep -E "^xenbaked: (warning|error):" "$ERR" 2>/dev/null |
    grep -v "differs from Xen's cpu_time" | head -n 5 || true)
if [[ -z $warnings ]]; then ok "no warnings or errors from the daemon"; else
    bad "the daemon warned:"; indent <<<"$warnings"; fi

# --- the raw capture ------------------------------------------------------------------------
RAW=$OUT/raw.xt
check "raw capture written, with its .meta sidecar" test -s "$RAW" -a -s "$RAW.meta"
summary=$WORK/summary.json
if "$DUMP" --summary --format json "$RAW" >"$summary" 2>"$WORK/dump.err"; then
    ok "raw capture decodes whole ($(jq .records "$summary") records, $(stat -c %s "$RAW") bytes)"
else
    bad "raw capture decodes whole: $(cat "$WORK/dump.err")"
fi
expect_eq "raw capture: no anomaly" "$(jq -c '.anomalies' "$summary" 2>/dev/null)" "[]"
expect_eq "raw capture: TSC never backwards on a CPU" \
    "$(jq '[.tsc[].backwards] | add' "$summary" 2>/dev/null)" 0
c_per_cpu=$(jq -c '.per_cpu' "$summary" 2>/dev/null || echo '{}')
expect "records drained on every CPU ($c_per_cpu)" \
    "$(jq --argjson n "$nr_cpus" '[range(0; $n) | tostring] - (.per_cpu | with_entries(select(.value > 0)) | keys) | length' "$summary" 2>/dev/null || echo 1) == 0"
expect_eq "the capture holds exactly what the daemon drained" \
    "$(jq '[.per_cpu[]] | add' "$summary" 2>/dev/null)" "$d_records"
c_lost=$(jq .lost_records "$summary" 2>/dev/null || echo none)
expect_eq "lost records: the daemon's report equals the capture's LOST_RECORDS" \
    "$((d_lost_run + d_lost_start))" "$c_lost"
# The capture read independently: on each CPU, the first record the hypervisor wrote after the
# daemon emptied the buffer at start (WRAP padding aside) reports what was lost before; any
# other LOST_RECORDS is loss during the run.
# Lines read "off=N cpu=C tsc=T [ns=N] EVENT field=value...": the event is the first field
# without "=".
read -r c_lost_start c_lost_run < <("$DUMP" --order file "$RAW" | awk '
    { ev = ""; for (i = 1; i <= NF; i++) if ($i !~ /=/) { ev = $i; break } }
    ev == "TRACE_CPU_CHANGE" || ev == "TRACE_WRAP_BUFFER" { next }
    { split($2, c, "="); n = 0
      if (ev == "LOST_RECORDS") { split($(i + 1), k, "="); n = k[2] }
      if (!(c[2] in seen)) { seen[c[2]] = 1; start += n } else run += n }
    END { print start + 0, run + 0 }')
expect_eq "lost before start (buffers full since boot): daemon vs capture" \
    "$d_lost_start" "$c_lost_start"
expect_eq "lost during the run: daemon vs capture" "$d_lost_run" "$c_lost_run"
# Not a check (the two above are): which case this run was, for whoever reads the figures.
echo "INFO  records lost during the run at this load: $c_lost_run (32 pages per CPU)"

# --- accounting: the daemon against xenbake-account over the same capture --------------------
acct=$WORK/account.json
if "$ACCOUNT" --format json "$RAW" >"$acct" 2>"$WORK/account.err"; then
    ok "xenbake-account reads the raw capture ($(jq .records "$acct") records, $(jq .elapsed_ns "$acct") ns)"
else
    bad "xenbake-account reads the raw capture: $(cat "$WORK/account.err")"
fi
expect_eq "cpu_khz in the capture's sidecar is xl info's cpu_mhz" \
    "$(jq .cpu_khz "$acct" 2>/dev/null)" \
    "$(awk '$1 == "cpu_mhz" { printf "%d", $3 * 1000 + 0.5 }' "$OUT/xl-info.txt")"
expect_eq "capture accounted on every CPU" "$(jq '.cpus | length' "$acct" 2>/dev/null)" "$nr_cpus"
ratios=$(jq -r '[.cpus[] | "cpu\(.cpu) \(.capture_ratio * 10000 | round / 100)%"] | join(", ")' "$acct" 2>/dev/null)
expect "capture ratio >= 99% on every CPU ($ratios)" \
    "$(jq '[.cpus[] | select(.capture_ratio < 0.99)] | length' "$acct" 2>/dev/null || echo 1) == 0 && ${#ratios} > 0"
# A runstate change that contradicts the vCPU's known state is an anomaly; it happens only where
# records were lost (the chain of changes broke), never otherwise.
a_kinds=$(jq -c .anomaly_kinds "$acct" 2>/dev/null || echo '?')
a_total=$(jq .anomalies "$acct" 2>/dev/null || echo 1)
if ((c_lost_run == 0)); then
    expect_eq "accounting anomalies in the capture ($a_kinds)" "$a_total" 0
else
    expect_eq "accounting anomalies only runstate chains broken by the loss ($a_kinds)" \
        "$(jq '.anomaly_kinds | .switch_mismatch + .bad_id + .time_backwards' "$acct" 2>/dev/null)" 0
fi

report=$WORK/report.json
if "$REPORT" --format json "$OUT/log/accounting.log" >"$report" 2>"$WORK/report.err"; then
    ok "accounting log reads back whole ($(jq .windows "$report") windows)"
else
    bad "accounting log reads back whole: $(cat "$WORK/report.err")"
fi
# Every domain incarnation xenbake-account finds has the daemon's final record with the same
# totals, and the other way round: the daemon accounts the records it drained in the order the
# capture's merge gives them, snapshots at the newest record as the offline tool does, so the
# figures are equal to the nanosecond.
fields='running_ns runnable_ns blocked_ns offline_ns dispatches'
jq -r --arg f "$fields" '.domains[] | . as $d | [($f | split(" "))[] | $d[.]] |
    "\($d.domid)/\($d.instance) \(join(" "))"' "$acct" 2>/dev/null | sort >"$WORK/offline.txt" || true
jq -r --arg f "$fields" '.domains[] | select(.final != null) | . as $d |
    [($f | split(" "))[] | $d.final[.]] | "\($d.domid)/\($d.instance) \(join(" "))"' \
    "$report" 2>/dev/null | sort >"$WORK/daemon.txt" || true
if [[ -s $WORK/offline.txt ]] && diff -u "$WORK/offline.txt" "$WORK/daemon.txt" >"$WORK/totals.diff"; then
    ok "daemon's final totals = xenbake-account's, per domain ($(wc -l <"$WORK/offline.txt") incarnations; domid/instance $fields):"
    indent <"$WORK/offline.txt"
else
    bad "daemon's final totals = xenbake-account's (domid/instance $fields; - offline, + daemon):"
    indent <"$WORK/totals.diff"
fi

final_of() {  # final_of DOMID FIELD — the daemon's final record of that domain's last incarnation
    jq -r --argjson id "$1" --arg f "$2" \
        '[.domains[] | select(.domid == $id and .final != null)] | last | .final[$f] // empty' \
        "$report" 2>/dev/null
}
name_of() {
    jq -r --argjson id "$1" '[.domains[] | select(.domid == $id)] | last | .name // empty' \
        "$report" 2>/dev/null
}
if [[ $sleeper != none && $spinner != none ]]; then
    expect_eq "destroyed guest (sleeper, domain $sleeper) has a final record" \
        "$(final_of "$sleeper" reason)" destroyed
    expect_eq "spinner's final record is the daemon's shutdown" "$(final_of "$spinner" reason)" shutdown
    expect_eq "Domain-0's final record is the daemon's shutdown" "$(final_of 0 reason)" shutdown
    expect_eq "name of domain $sleeper, from xenstore" "$(name_of "$sleeper")" sleeper
    expect_eq "name of domain $spinner, from xenstore" "$(name_of "$spinner")" spinner
    expect_eq "name of domain 0, from xenstore" "$(name_of 0)" Domain-0
    sleeper_blocked=$(final_of "$sleeper" blocked_ns)
    expect "sleeper blocked over the run (${sleeper_blocked:-?} ns)" "${sleeper_blocked:-0} > 0"

    # In the steady state — windows that began after both guests were up and ended before the
    # destroy — the spinner never blocks. (It did block while its kernel booted, before.)
    ready=$(cat "$OUT/guests-ready.unix") destroy=$(cat "$OUT/destroy.unix")
    steady=$WORK/steady.json
    "$REPORT" --format json --from "$((ready + 2))" --to "$destroy" "$OUT/log/accounting.log" \
        >"$steady" 2>/dev/null || true
    windows=$(jq .windows "$steady" 2>/dev/null || echo 0)
    in_steady() {
        jq -r --argjson id "$1" --arg f "$2" \
            '[.domains[] | select(.domid == $id)] | last | .[$f] // empty' "$steady" 2>/dev/null
    }
    s_run=$(in_steady "$spinner" running_ns) s_blk=$(in_steady "$spinner" blocked_ns)
    z_blk=$(in_steady "$sleeper" blocked_ns) z_run=$(in_steady "$sleeper" running_ns)
    expect "steady state covered by whole windows ($windows)" "windows >= 2"
    expect "spinner: no blocked time in the steady state (running ${s_run:-?} ns, blocked ${s_blk:-?} ns)" \
        "${#s_blk} > 0 && s_blk == 0 && ${s_run:-0} > 0"
    expect "sleeper: blocked time in the steady state (running ${z_run:-?} ns, blocked ${z_blk:-?} ns)" \
        "${z_blk:-0} > 0 && ${z_run:-0} > 0"
fi

# --- Xen's own clock: each vCPU's running time against cpu_time ---------------------------------
# The payload read every vCPU's cpu_time with xenvm-vcpu-times (libxenctrl alone, none of our
# code) before xenbaked started (pre-start), once it was up (start), just before and just after
# `xl destroy sleeper`, just before SIGTERM (end) and after xenbaked exited (after-stop). cpu_time
# only grows and the capture lies between those reads, so each vCPU's true running time within the
# capture is sandwiched: at least Xen's over [start, end] (sleeper: [its creation, pre-destroy]),
# at most Xen's over [pre-start, after-stop] (sleeper: up to pre-destroy plus the wall time until
# the destroy returned). xenbake-account's running time on the daemon's capture (equal to the
# daemon's own, checked above) must lie within that sandwich, widened by 0.5 % of Xen's figure; its
# running + unknown must reach the lower side. The floor, printed per vCPU as "gap", is the width
# of the sandwich: Xen's running time in the gaps between each read and the capture's edges.
vt() { echo "$OUT/vcpu-times-$1.txt"; }
if [[ -s $(vt pre-start) && -s $(vt start) && -s $(vt pre-destroy) && -s $(vt post-destroy) &&
      -s $(vt end) && -s $(vt after-stop) && -s $acct ]]; then
    sleeper_id=$(awk '$1 == "sleeper" { print $2 }' "$OUT/xl-list.txt")
    jq -r '.domains[] | .domid as $d | .vcpus[] |
           "A \($d) \(.vcpu) \(.running_ns) \(.unknown_ns)"' "$acct" >"$WORK/acct-vcpus.txt"
    awk -v sleeper="${sleeper_id:--1}" '
        FNR == 1 { file++ }
        /^#/ { if (file == 3) pd0 = $3; if (file == 4) pd1 = $4; next }
        file <= 6 { t[file, $1 " " $2] = $3; next }
        {
            key = $2 " " $3
            if (!((5, key) in t) && !((3, key) in t)) next   # the idle domain: not Xen-listed
            p = ((1, key) in t) ? t[1, key] : 0; s = ((2, key) in t) ? t[2, key] : 0
            if ($2 == sleeper) { e = t[3, key]; a = t[3, key] + (pd1 - pd0) }
            else { e = t[5, key]; a = t[6, key] }
            lower = e - s; upper = a - p; run = $4; unk = $5
            ok = run + unk >= lower - 0.005 * lower && run <= upper + 0.005 * upper
            printf "%s dom%s.vcpu%s xen[%.3f, %.3f] ms xenbaked %.3f ms unknown %.3f ms gap %.3f ms\n",
                ok ? "ok " : "BAD", $2, $3, lower / 1e6, upper / 1e6, run / 1e6, unk / 1e6,
                (upper - lower) / 1e6
        }' "$(vt pre-start)" "$(vt start)" "$(vt pre-destroy)" "$(vt post-destroy)" \
        "$(vt end)" "$(vt after-stop)" "$WORK/acct-vcpus.txt" >"$WORK/vcpu-vs-xen.txt"
    indent <"$WORK/vcpu-vs-xen.txt"
    expect "every vCPU's running time within Xen's cpu_time sandwich, 0.5 % ($(wc -l <"$WORK/vcpu-vs-xen.txt") vCPUs)" \
        "$(grep -c '^ok ' "$WORK/vcpu-vs-xen.txt") == $(wc -l <"$WORK/vcpu-vs-xen.txt") && $(wc -l <"$WORK/vcpu-vs-xen.txt") >= 4"
else
    bad "xenvm-vcpu-times read every vCPU's cpu_time at the payload's six points"
fi

# --- the tools against the running daemon ----------------------------------------------------
tb=$OUT/tbuf-show.json
expect_eq "xenbake-tbuf show: pages per CPU = the daemon's" "$(jq .pages_per_cpu "$tb" 2>/dev/null)" "${pages:-32}"
expect_eq "xenbake-tbuf show: CPUs" "$(jq .nr_cpus "$tb" 2>/dev/null)" "$nr_cpus"
expect_eq "xenbake-tbuf show: cpu_khz = the capture's" "$(jq .cpu_khz "$tb" 2>/dev/null)" \
    "$(jq .cpu_khz "$acct" 2>/dev/null)"
check "xenbake-tbuf show (text) names the size" grep -Eq "^buffers: +32 pages per CPU" "$OUT/tbuf-show.txt"
top=$OUT/top.json
expect_eq "xenbake-top --batch: one JSON object per iteration" \
    "$(jq -s length "$top" 2>/dev/null)" 3
# "stale" is a sane answer too when dom0 stalled for seconds (a loaded host): the snapshot's
# heartbeat is older than 3 intervals. Stopped or gone would not be.
states=$(jq -r '"\(.daemon)/\(.health.backend)"' "$top" 2>/dev/null | sort | uniq -c | xargs)
expect "xenbake-top: daemon live (or briefly stale) on backend xen ($states)" \
    "$(jq -s '[.[] | select(.health.backend == "xen" and (.daemon == "live" or .daemon == "stale"))] | length' "$top" 2>/dev/null || echo 0) == 3 && $(jq -s '[.[] | select(.daemon == "live")] | length' "$top" 2>/dev/null || echo 0) >= 1"
last_top=$(jq -s 'last' "$top" 2>/dev/null || echo '{}')
top_pct() { jq -r --argjson id "$1" --arg f "$2" \
    '.domains[] | select(.domid == $id) | .windows["1s"][$f] // empty' <<<"$last_top"; }
if [[ $sleeper != none && $spinner != none ]]; then
    expect_eq "xenbake-top lists Domain-0, sleeper and spinner by name" \
        "$(jq -r --argjson a "$sleeper" --argjson b "$spinner" \
            '[.domains[] | select(.domid == 0 or .domid == $a or .domid == $b) | .name] | sort | join(",")' \
            <<<"$last_top")" "Domain-0,sleeper,spinner"
    sp_cpu=$(top_pct "$spinner" cpu_pct) sp_blk=$(top_pct "$spinner" blocked_pct)
    expect "xenbake-top: spinner runs, never blocks (1 s: cpu ${sp_cpu:-?}%, blocked ${sp_blk:-?}%)" \
        "${#sp_cpu} > 0 && $(jq_if "${sp_cpu:-0} > 0 and ${sp_cpu:-0} <= 101 and ${sp_blk:-1} == 0")"
    sl_blk=$(top_pct "$sleeper" blocked_pct)
    expect "xenbake-top: sleeper blocks (1 s: blocked ${sl_blk:-?}%)" \
        "$(jq_if "${sl_blk:-0} > 0 and ${sl_blk:-0} <= 201")"
fi
expect_eq "xenbake-top: every CPU's panel row" "$(jq '.cpus | length' <<<"$last_top" 2>/dev/null)" "$nr_cpus"

echo "xenbaked: $pass passed, $fail failed"
((fail == 0))
