#!/usr/bin/env bash
# The Debian package, as an administrator meets it: built from a copy of the tree with
# dpkg-buildpackage, checked by lintian (no errors), installed with dpkg -i, every installed
# program asked for --version, the systemd unit verified, the configuration checked to be a
# conffile, then removed and purged with nothing of the package left behind.
# Usage: run-deb.sh OUT_DIR   (needs root: it installs and purges the package on this machine)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$(mkdir -p "$1" && cd "$1" && pwd)"
fail() { echo "run-deb: FAIL: $*" >&2; exit 1; }
pass() { echo "run-deb: ok: $*"; }

if dpkg-query -W -f='${Status}' xenbaked 2>/dev/null | grep -q "install ok"; then
  fail "a xenbaked package is already installed here; this test installs and purges its own"
fi

# Build from a clean copy: dpkg-buildpackage writes its results beside the source directory.
installed=0
rm -rf "$out/src" "$out"/*.deb "$out"/*.buildinfo "$out"/*.changes
mkdir -p "$out/src"
git -C "$root" ls-files -z --cached --others --exclude-standard |
  (cd "$root" && xargs -0 cp --parents -t "$out/src")
# Line tables (-g1) rather than full debug information keep the build short on a small CI
# machine; a release build leaves DEB_*FLAGS_APPEND unset and gets Debian's -g.
(cd "$out/src" && DEB_CFLAGS_APPEND="${DEB_CFLAGS_APPEND:--g1}" \
  DEB_CXXFLAGS_APPEND="${DEB_CXXFLAGS_APPEND:--g1}" DEB_BUILD_OPTIONS="parallel=$(nproc)" \
  dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1 ||
  { tail -40 "$out/build.log"; fail "dpkg-buildpackage (log: $out/build.log)"; }
deb="$(ls "$out"/xenbaked_*.deb)"
pass "built $(basename "$deb")"

lintian --no-tag-display-limit "$deb" >"$out/lintian.txt" 2>&1 || true
if grep -q '^E: ' "$out/lintian.txt"; then
  cat "$out/lintian.txt"
  fail "lintian reports errors"
fi
pass "lintian: no errors ($(grep -c '^W: ' "$out/lintian.txt" || true) warnings, in $out/lintian.txt)"

DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >"$out/install.log" 2>&1 ||
  { cat "$out/install.log"; fail "dpkg -i"; }
pass "installed"
# From here a failure still removes the package: the machine is left as it was found.
installed=1
trap 'if ((installed)); then DEBIAN_FRONTEND=noninteractive dpkg --purge xenbaked >/dev/null 2>&1; fi' EXIT

programs=(/usr/sbin/xenbaked /usr/sbin/xenbake-tbuf /usr/bin/xenbake-top /usr/bin/xenbake-dump
  /usr/bin/xenbake-account /usr/bin/xenbake-report /usr/bin/xenbake-timeline /usr/bin/xenbake-sim)
for p in "${programs[@]}"; do
  [ -x "$p" ] || fail "$p not installed"
  version="$("$p" --version)" || fail "$p --version exits $?"
  case "$version" in *0.1*) ;; *) fail "$p --version says '$version'" ;; esac
  pass "$p --version: $version"
done

getent group xenbaked >/dev/null || fail "postinst did not create the xenbaked group"
pass "group xenbaked exists"
grep -qx 'socket-group = "xenbaked"' /etc/xenbaked/xenbaked.conf ||
  fail "the packaged configuration does not give the socket to the xenbaked group"
dpkg-query -W -f='${Conffiles}\n' xenbaked | grep -q '/etc/xenbaked/xenbaked.conf' ||
  fail "/etc/xenbaked/xenbaked.conf is not a conffile"
pass "/etc/xenbaked/xenbaked.conf is a conffile with socket-group xenbaked"
# The installed daemon runs with the installed configuration (on its simulator: this machine has
# no Xen) and writes where the unit lets it: its accounting log under /var/log/xenbaked.
timeout 60 /usr/sbin/xenbaked --config /etc/xenbaked/xenbaked.conf --simulate --duration 2 \
  --quiet >"$out/daemon.log" 2>&1 || { cat "$out/daemon.log"; fail "xenbaked with the packaged configuration"; }
ls /var/log/xenbaked/*.log >/dev/null 2>&1 || fail "no accounting log in /var/log/xenbaked"
/usr/bin/xenbake-report /var/log/xenbaked/*.log >"$out/report.txt" ||
  fail "xenbake-report on the installed daemon's log"
pass "the installed daemon ran with the packaged configuration; xenbake-report reads its log"

unit="$(dpkg -L xenbaked | grep -E '/systemd/system/xenbaked\.service$')" ||
  fail "no systemd unit in the package"
# Units the unit merely orders itself after (xenstored) are not on a machine without Xen: verify
# reports them, which is not a defect of ours; anything else is.
if ! systemd-analyze verify "$unit" >"$out/verify.txt" 2>&1; then
  if grep -v -E 'xenstored\.service|proc-xen\.mount' "$out/verify.txt" | grep -q .; then
    cat "$out/verify.txt"
    fail "systemd-analyze verify $unit"
  fi
fi
pass "systemd-analyze verify $unit"
# On a host without Xen nothing is started: the unit's condition holds it back.
grep -q '^ConditionPathExists=/proc/xen/capabilities$' "$unit" || fail "the unit lacks its Xen condition"

# The man pages and completion, when the build installs them, come with the package.
for page in $(dpkg -L xenbaked | grep -E '/man/man[0-9]/.*\.gz$' || true); do
  MANWIDTH=80 man -l "$page" >/dev/null 2>"$out/man.err" || fail "man -l $page"
  [ ! -s "$out/man.err" ] || { cat "$out/man.err"; fail "man -l $page warns"; }
  pass "man -l $page"
done

files="$(dpkg -L xenbaked | grep -v -E '^/\.$' )"
DEBIAN_FRONTEND=noninteractive dpkg --purge xenbaked >"$out/purge.log" 2>&1 ||
  { cat "$out/purge.log"; fail "dpkg --purge"; }
left=()
while IFS= read -r f; do
  [ -e "$f" ] && [ ! -d "$f" ] && left+=("$f")
done <<<"$files"
((${#left[@]} == 0)) || fail "left after purge: ${left[*]}"
[ ! -e /etc/xenbaked ] || fail "/etc/xenbaked left after purge"
installed=0
pass "purged: no file of the package left"
