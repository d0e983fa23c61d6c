#!/usr/bin/env bash
# Configures and builds one flavour of the tree, warnings as errors (the project's development and
# CI setting; a plain cmake build leaves them as warnings). Usage: build.sh BUILD_DIR [cmake options...]
# The compiler comes from CC/CXX as usual (CI builds with GCC and, for the sanitizer build, Clang).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$1"
shift
# Release (-O3), as a packager or user builds it, with -g1: line tables only, enough for sanitizer
# and crash stack traces, and much quicker to build and link on a 2-core machine than full
# debug information.
cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DXENBAKED_WERROR=ON \
  -DCMAKE_CXX_FLAGS_RELEASE="-O3 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELEASE="-O3 -g1 -DNDEBUG" \
  "$@" >/dev/null
cmake --build "$dir" -j "$(nproc)"
