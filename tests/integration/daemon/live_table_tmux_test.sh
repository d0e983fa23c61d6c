#!/usr/bin/env bash
# xenbaked's live table as a person sees it, in a real terminal (tmux): xenbake-top's column
# names, every line within the terminal's width; `kill -HUP` with the terminal there reopens the
# logs and the daemon runs on; closing the terminal (a hang-up) ends the daemon cleanly, with its
# final drain, instead of leaving it running, still drawing, with nobody watching.
#
# Usage: live_table_tmux_test.sh XENBAKED
# Exit 77 (skipped) when tmux is missing. Waits are polls with a deadline, never fixed sleeps.
set -euo pipefail
xenbaked="$1"
command -v tmux >/dev/null || { echo "SKIP: tmux is not installed"; exit 77; }

work="$(mktemp -d)"
session="xbdlive$$"
export TMUX_TMPDIR="$work"  # a private tmux server: never touches a person's sessions
pid=""
cleanup() {
  tmux kill-server 2>/dev/null || true
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  echo "--- screen ---"
  tmux capture-pane -p -J -t "$session" 2>/dev/null || true
  echo "--- daemon log ---"
  tail -20 "$work/daemon.err" 2>/dev/null || true
  exit 1
}
until_true() {  # until_true DESCRIPTION SECONDS COMMAND...: polls COMMAND until it succeeds
  local what="$1" seconds="$2"
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out waiting for: $what"
    sleep 0.1
  done
}
# -J joins wrapped lines, so a line wider than the terminal shows as one long line.
screen() { tmux capture-pane -p -J -t "$session"; }
screen_has() { screen | grep -qF -- "$1"; }
gone() { ! kill -0 "$pid" 2>/dev/null; }

# The daemon is the terminal's only process (exec), as a foreground daemon in a closed window is.
width=72
tmux new-session -d -s "$session" -x "$width" -y 16 \
  "exec '$xenbaked' --simulate --sim-domains 30 --sim-speed 4 --interval-ms 200 --shm-name '' \
     --log-dir '$work/log' 2>'$work/daemon.err'"
pid=$(tmux list-panes -t "$session" -F '#{pane_pid}')
until_true "the live table" 20 screen_has "DISP/s"

header=$(screen | grep -F "DISP/s")
for column in ID NAME VCPU "CPU%" WAIT "BLK%" "DISP/s" LOST; do
  grep -qw -- "$column" <<<"$header" || fail "column $column missing from: $header"
done
widest=$(screen | awk '{ if (length($0) > n) n = length($0) } END { print n + 0 }')
((widest <= width)) || fail "a line of $widest columns on a $width-column terminal"
screen | grep -q "more lines" || fail "30 domains on 16 rows: no '... more lines'"

# SIGHUP with the terminal there: log rotation, the daemon runs on.
kill -HUP "$pid"
until_true "the log reopen" 10 grep -q "SIGHUP: reopening logs" "$work/daemon.err"
gone && fail "the daemon ended on a SIGHUP for log rotation"

# The terminal hangs up: the daemon ends on its own, after its final drain.
tmux kill-session -t "$session"
until_true "the daemon to end after the hang-up" 20 gone
grep -q "terminal hung up: final drain and exit\|terminal is gone: final drain and exit" \
  "$work/daemon.err" || fail "no hang-up message"
grep -q "^.*exit: [0-9]* records drained" "$work/daemon.err" || fail "no final drain logged"
pid=""
echo "OK: live table fits ${width} columns with xenbake-top's names; SIGHUP rotates; hang-up ends it"
