#!/usr/bin/env bash
# promtool checks deploy/prometheus's rules and runs their unit tests (each alert's firing and
# silence, each recording rule's value on series whose answer is known); the dashboard is valid
# JSON whose every panel query names a series the daemon or the rules define.
set -euo pipefail
root="$1"
command -v promtool >/dev/null || { echo "SKIP: promtool not installed (Debian's prometheus)"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
cd "$root/deploy/prometheus"
promtool check rules xenbaked-rules.yml
promtool test rules xenbaked-rules.test.yml

dashboard="$root/deploy/grafana/xenbaked-fleet.json"
exprs="$(jq -r '.panels[] | .targets[]?.expr' "$dashboard")"
[ -n "$exprs" ] || { echo "no panel queries in $dashboard"; exit 1; }
recorded="$(grep -o 'record: [^ ]*' xenbaked-rules.yml | cut -d' ' -f2)"
exported="$(grep -o '"xenbaked_[a-z_]*"' "$root/xenbaked/src/publish/metrics_text.cc" | tr -d '"' | sort -u)"
status=0
while IFS= read -r name; do
  case "$name" in up | time) continue ;; esac
  if ! grep -qx -- "$name" <<<"$recorded"$'\n'"$exported"; then
    echo "dashboard names $name, which neither the daemon nor the rules define"
    status=1
  fi
done < <(grep -o '[a-zA-Z_:][a-zA-Z0-9_:]*{' <<<"$exprs" | tr -d '{' | sort -u)
exit $status
