#!/usr/bin/env bash
# A real Prometheus (Debian's package) scraping three xenbaked daemons on the built-in simulator
# as three hosts — different seeds, sizes and domain churn; one made to lose records — with the
# project's rules (deploy/prometheus) loaded, then checked through Prometheus's HTTP API:
#   - no counter of any daemon ever reset (totals only grow, through churn and loss);
#   - what Prometheus stored equals what each daemon published (its socket API), per domain;
#   - churned domains appeared and their series went stale;
#   - XenbakedLostRecords fires for the lossy host only, XenbakedDown goes pending for a stopped one;
#   - every PromQL expression of the Grafana dashboard (deploy/grafana) runs without error and
#     returns data.
# Usage: run-tier.sh BUILD_DIR OUT_DIR. Stops everything it started. About 3 minutes.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "$1" && pwd)"
out="$(mkdir -p "$2" && cd "$2" && pwd)"
xenbaked="$build/xenbaked/xenbaked"
[ -x "$xenbaked" ] || { echo "no $xenbaked: build first" >&2; exit 1; }
command -v prometheus >/dev/null || { echo "prometheus is not installed (scripts/install-deps.sh)" >&2; exit 1; }

failures=0
fail() { echo "prometheus-tier: FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "prometheus-tier: ok: $*"; }

rm -rf "$out/run" && mkdir -p "$out/run"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f /dev/shm/xenbaked-promtier-$$-*
}
trap cleanup EXIT

free_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
  done
  return 1
}

# Three hosts: h1 steady with idle CPUs, h2 overcommitted with churn, h3 with one-page buffers
# and its simulator at 50x real time (about 700,000 records/s: it loses records on a quiet
# machine too, where at 1x the drain keeps up with one page).
declare -A metrics_port
start_daemon() {
  local host="$1"; shift
  local dir="$out/run/$host"
  mkdir -p "$dir"
  metrics_port[$host]="$(free_port)"
  "$xenbaked" --simulate --socket "$dir/api.sock" --shm-name "xenbaked-promtier-$$-$host" \
    --log-dir "$dir/log" \
    --metrics-port "${metrics_port[$host]}" --duration 600 --log-level info "$@" \
    >"$dir/daemon.log" 2>&1 &
  pids+=($!)
  eval "pid_$host=$!"
}
start_daemon h1 --sim-cpus 8 --sim-domains 8 --sim-vcpus 1 --sim-seed 11
start_daemon h2 --sim-cpus 4 --sim-domains 30 --sim-vcpus 2 --sim-seed 22 --sim-churn 0.5
start_daemon h3 --sim-cpus 8 --sim-domains 200 --sim-vcpus 4 --sim-seed 33 --pages 1 --sim-speed 50

prom_port="$(free_port)"
cat >"$out/run/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $root/deploy/prometheus/xenbaked-rules.yml
scrape_configs:
  - job_name: xenbaked
    static_configs:
      - targets: ['127.0.0.1:${metrics_port[h1]}']
        labels: {instance: h1}
      - targets: ['127.0.0.1:${metrics_port[h2]}']
        labels: {instance: h2}
      - targets: ['127.0.0.1:${metrics_port[h3]}']
        labels: {instance: h3}
YAML
promtool check config "$out/run/prometheus.yml" >/dev/null
prometheus --config.file="$out/run/prometheus.yml" --storage.tsdb.path="$out/run/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$out/run/prometheus.log" 2>&1 &
pids+=($!)

api="http://127.0.0.1:$prom_port/api/v1"
# query EXPR [TIME]: the result vector as JSON; a failed query fails the tier.
query() {
  local args=(--data-urlencode "query=$1")
  [ -z "${2:-}" ] || args+=(--data-urlencode "time=$2")
  local answer
  answer="$(curl -fsS "$api/query" "${args[@]}")" || { echo "query failed: $1" >&2; echo '[]'; return 1; }
  jq -c '.data.result' <<<"$answer"
}
for _ in $(seq 60); do curl -fsS "$api/status/buildinfo" >/dev/null 2>&1 && break; sleep 1; done
curl -fsS "$api/status/buildinfo" >/dev/null || { cat "$out/run/prometheus.log"; fail "prometheus did not start"; exit 1; }
pass "prometheus $(curl -fsS "$api/status/buildinfo" | jq -r .data.version) on port $prom_port"

# api_totals HOST: {"<domid>": {"r": running_ns, "v": vCPUs}} from the daemon's socket API.
api_totals() {
  printf '{"cmd":"domains"}\n' | timeout 10 socat -t 5 - "UNIX-CONNECT:$out/run/$1/api.sock" |
    jq -c '[.data[] | select(.destroyed | not) | {key: (.domid|tostring), value: {r: .totals.running_ns, v: .vcpus}}] | from_entries'
}

# Let every target be scraped for a while, with the churn making and ending domains.
sleep 40
t1="$(date +%s.%N)"; declare -A api1
for h in h1 h2; do api1[$h]="$(api_totals "$h")"; done
sleep 60
t2="$(date +%s.%N)"; declare -A api2
for h in h1 h2; do api2[$h]="$(api_totals "$h")"; done
sleep 3  # the scrape after t2

up="$(query 'sum(up{job="xenbaked"})')"
[ "$(jq -r '.[0].value[1]' <<<"$up")" = 3 ] && pass "three daemons scraped" || fail "up: $up"

# The exposition passes Prometheus's own linter (names, units, HELP and TYPE of every family).
for h in h1 h2 h3; do
  if lint="$(curl -fsS "http://127.0.0.1:${metrics_port[$h]}/metrics" | promtool check metrics 2>&1)"; then
    pass "$h: promtool check metrics is clean"
  else
    fail "$h: promtool check metrics: $lint"
  fi
done

# Totals only grow: no reset of any xenbaked counter over the whole run, through churn and loss.
# resets() drops the metric name, so each counter family is asked on its own.
families="$(curl -fsS "$api/label/__name__/values" | jq -r '.data[] | select(test("^xenbaked_.*_total$"))')"
resets_seen=0 families_n=0
for f in $families; do
  families_n=$((families_n + 1))
  r="$(query "sum by (instance) (resets(${f}[10m]))")" || { fail "resets($f) query"; continue; }
  echo "$f $r" >>"$out/resets.txt"
  if ! jq -e 'all(.[]; .value[1] == "0")' <<<"$r" >/dev/null; then
    fail "$f reset: $r"
    resets_seen=1
  fi
done
if ((families_n >= 10 && resets_seen == 0)); then
  pass "no reset of any of $families_n counter families on any host (resets() = 0)"
elif ((families_n < 10)); then
  fail "only $families_n counter families scraped: $families"
fi

# What Prometheus stored is what the daemon published: each domain alive at t1 and t2, its running
# time between them by the socket API and by Prometheus's samples at t1 and t2. A sample is at most
# one publication (1 s) plus one scrape (1 s) older than the instant asked, so the two differ by at
# most 2 s × the domain's rate (≤ its vCPUs): the bound is 2 s × vCPUs.
for h in h1 h2; do
  p1="$(query "xenbaked_domain_cpu_seconds_total{instance=\"$h\"}" "$t1")"
  p2="$(query "xenbaked_domain_cpu_seconds_total{instance=\"$h\"}" "$t2")"
  report="$(jq -n --argjson a1 "${api1[$h]}" --argjson a2 "${api2[$h]}" --argjson p1 "$p1" --argjson p2 "$p2" '
    def byid(v): v | map({key: .metric.domid, value: (.value[1] | tonumber)}) | from_entries;
    (byid($p1)) as $q1 | (byid($p2)) as $q2 |
    [$a1 | keys[] | select($a2[.] != null and $q1[.] != null and $q2[.] != null) |
      {domid: ., vcpus: $a2[.].v, api: (($a2[.].r - $a1[.].r) / 1e9), prom: ($q2[.] - $q1[.])}] |
    map(. + {diff: ((.api - .prom) | fabs)})')"
  echo "$report" >"$out/compare-$h.json"
  n="$(jq length <<<"$report")"
  worst="$(jq 'map(.diff / .vcpus) | max // 0 | . * 1000 | round / 1000' <<<"$report")"
  busy="$(jq 'map(select(.api > 5)) | length' <<<"$report")"
  if ((n >= 5)) && ((busy >= 1)) && jq -e 'all(.[]; .vcpus >= 1 and .diff <= 2 * .vcpus)' <<<"$report" >/dev/null; then
    pass "$h: $n domains, Prometheus's CPU seconds over 60 s equal the daemon's within ${worst} s per vCPU (bound 2 s)"
  else
    fail "$h: stored and published CPU seconds differ (worst $worst s per vCPU over $n domains, $busy busy): $out/compare-$h.json"
  fi
done

# Churn: more h2 domains were seen over the run than are alive now, and every alive one is there.
seen="$(query 'count(count_over_time(xenbaked_domain_cpu_seconds_total{instance="h2"}[10m]))')"
now="$(query 'count(xenbaked_domain_cpu_seconds_total{instance="h2"})')"
seen_n="$(jq -r '.[0].value[1] // 0' <<<"$seen")"; now_n="$(jq -r '.[0].value[1] // 0' <<<"$now")"
if ((seen_n > now_n)) && ((now_n > 0)); then
  pass "h2: $seen_n domain series over the run, $now_n live now: destroyed domains' series went stale"
else
  fail "h2 churn: $seen_n series seen, $now_n live"
fi

# Alerts: the lossy host only.
lost="$(query 'ALERTS{alertname="XenbakedLostRecords",alertstate="firing"}')"
h3_lost="$(query 'xenbaked_lost_records_total{instance="h3"}')"
if jq -e 'map(.metric.instance) == ["h3"]' <<<"$lost" >/dev/null; then
  pass "XenbakedLostRecords fires for h3 only ($(jq -r '.[0].value[1]' <<<"$h3_lost") records lost there)"
else
  fail "XenbakedLostRecords: $lost (h3 lost $(jq -r '.[0].value[1] // "?"' <<<"$h3_lost"))"
fi

# A stopped daemon: up goes to 0 and XenbakedDown goes pending (it fires after 2 minutes, which
# promtool's rule tests check). h3 is the one stopped: h1, the only host with idle CPUs (h2 and h3
# are overcommitted), keeps the dashboard's idle panel in data.
kill -TERM "$pid_h3"
sleep 8
down="$(query 'ALERTS{alertname="XenbakedDown"}')"
if jq -e 'map(.metric.instance) == ["h3"] and .[0].metric.alertstate == "pending"' <<<"$down" >/dev/null; then
  pass "XenbakedDown pending for the stopped h3"
else
  fail "XenbakedDown after stopping h3: $down"
fi

# The dashboard: every expression runs and returns data, with its variables set to "all".
while IFS= read -r expr; do
  e="${expr//\$instance/.*}"; e="${e//\$domain/.*}"
  if ! result="$(query "$e")"; then
    fail "dashboard expression errs: $e"
  elif [ "$(jq length <<<"$result")" -eq 0 ]; then
    fail "dashboard expression returns nothing: $e"
  else
    pass "dashboard: $e ($(jq length <<<"$result") series)"
  fi
done < <(jq -r '.panels[] | .targets[]?.expr' "$root/deploy/grafana/xenbaked-fleet.json")

cleanup
trap - EXIT
for h in h1 h2 h3; do
  grep -q "terminate called\|AddressSanitizer\|runtime error" "$out/run/$h/daemon.log" &&
    fail "$h's daemon log reports a crash"
done
if ((failures > 0)); then echo "prometheus-tier: $failures check(s) failed"; exit 1; fi
echo "prometheus-tier: all checks passed"
