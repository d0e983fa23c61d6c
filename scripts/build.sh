#!/usr/bin/env bash
# Configures and builds one flavour of the tree. Usage: build.sh BUILD_DIR [cmake options...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$1"
shift
# -g1: line tables only, enough for sanitizer and crash stack traces, and much quicker to build
# and link on a 2-core CI machine than full debug information.
cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  "$@" >/dev/null
cmake --build "$dir" -j "$(nproc)"
