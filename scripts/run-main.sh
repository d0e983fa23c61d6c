#!/usr/bin/env bash
# The main job: installs what is needed, builds, and runs the daemon. With no hypervisor on this
# machine, xenbaked runs on its embedded simulator and prints live per-domain accounting.
# Extra arguments go to xenbaked (e.g. --duration 30 --sim-domains 8).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build" -DXENBAKED_BENCHMARKS=OFF
args=("$@")
((${#args[@]} > 0)) || args=(--duration 10)
if [ -e /dev/xen/privcmd ]; then
  exec "$root/build/xenbaked/xenbaked" "${args[@]}"
fi
exec "$root/build/xenbaked/xenbaked" --simulate "${args[@]}"
