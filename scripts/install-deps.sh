#!/usr/bin/env bash
# Installs everything xenbaked needs to build and test on Debian 12, from Debian's packages only.
# Idempotent: packages already present are not fetched again. Run as root (or with sudo).
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
  # libraries (README.md says why each was chosen)
  libxen-dev libboost-dev nlohmann-json3-dev libcli11-dev libfmt-dev libsystemd-dev
  libncurses-dev libgtest-dev libgmock-dev libbenchmark-dev
  # test tiers: terminal tests, the real-Xen tier under QEMU (jq reads its JSON), timings
  tmux qemu-system-x86 busybox-static cpio xz-utils time jq
  # man pages: rendered and checked for warnings by the tests
  man-db groff-base
  # the Prometheus tier (a real Prometheus and promtool; curl and socat ask it and the daemons)
  prometheus curl socat
  # the Debian package: built, linted, installed and purged
  debhelper dpkg-dev fakeroot lintian
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-deps: installing ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's xentrace and xenalyze are tools we test against. Their packages' install hooks touch
# the boot configuration, so they are unpacked into a cache instead of installed.
"$(dirname "$0")/fetch-xen-tools.sh" >/dev/null
