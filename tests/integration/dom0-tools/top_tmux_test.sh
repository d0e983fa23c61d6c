#!/usr/bin/env bash
# xenbake-top as a person uses it: in a real terminal (tmux), against xenbaked running on its
# built-in simulator. Start, read the screen, press keys, resize the window, quit. Then the
# failures a person meets: no daemon, a stopped daemon, another snapshot version.
#
# Usage: top_tmux_test.sh XENBAKED XENBAKE_TOP
# Exit 77 (skipped) when tmux is missing. Waits are polls with a deadline, never fixed sleeps.
set -euo pipefail
xenbaked="$1"
top="$2"
command -v tmux >/dev/null || { echo "SKIP: tmux is not installed"; exit 77; }

work="$(mktemp -d)"
name="xenbake-top-test-$$"
shm="/dev/shm/$name"
session="xbtop$$"
export TMUX_TMPDIR="$work"  # a private tmux server: never touches a person's sessions
daemon_pid=""
cleanup() {
  tmux kill-server 2>/dev/null || true
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  rm -rf "$work" "$shm" "/dev/shm/$name-v99"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  echo "--- screen ---"
  tmux capture-pane -p -t "$session" 2>/dev/null || true
  echo "--- daemon log ---"
  cat "$work/daemon.log" 2>/dev/null | tail -20 || true
  exit 1
}
# until_true DESCRIPTION SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds.
until_true() {
  local what="$1" seconds="$2"
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out waiting for: $what"
    sleep 0.1
  done
}
screen() { tmux capture-pane -p -t "$session"; }
screen_has() { screen | grep -qF -- "$1"; }
pane_size() { tmux display-message -p -t "$session" '#{pane_width}x#{pane_height}'; }

# --- a daemon on the simulator ------------------------------------------------------------------
"$xenbaked" --simulate --sim-domains 4 --sim-vcpus 2 --sim-cpus 2 --interval-ms 200 \
  --windows 1,10 --shm-name "$name" --quiet >"$work/daemon.log" 2>&1 &
daemon_pid=$!
until_true "the daemon's snapshot $shm" 20 test -s "$shm"
until_true "a first 1 s window" 20 bash -c "'$top' --shm '$shm' --batch -f json -n 1 2>/dev/null |
  grep -q '\"1s\":{'"

# --- start in a 150x40 terminal ------------------------------------------------------------------
tmux new-session -d -s "$session" -x 150 -y 40 "TERM=xterm-256color '$top' --shm '$shm' --delay 0.2"
until_true "the domain table" 10 screen_has "CPU% 1s/10s"
screen_has "xenbake-top" || fail "no title line"
screen_has "xenbaked simulated up" || fail "no health line"
screen | grep -qE '^ +0 Domain-0 ' || fail "no row for domain 0 with its name"
screen | grep -qE '^ +[1-3] ' || fail "no guest rows"
screen_has "physical CPUs: all 2" || fail "no CPU panel"
screen_has "WARNING" && fail "a warning on a live daemon"

# --- keys ---------------------------------------------------------------------------------------
tmux send-keys -t "$session" c
until_true "the CPU panel on cpu 0" 5 screen_has "physical CPU 0 (c: next)"
tmux send-keys -t "$session" c
until_true "the CPU panel on cpu 1" 5 screen_has "physical CPU 1 (c: next)"
tmux send-keys -t "$session" c
until_true "the CPU panel back on all CPUs" 5 screen_has "physical CPUs: all 2"
tmux send-keys -t "$session" I
until_true "sorting by id" 5 screen_has "sort: id asc"
# Sorted by id ascending, domain 0 is the first row under the header.
screen | grep -A1 -F "CPU% 1s/10s" | tail -1 | grep -qE '^ +0 ' || fail "domain 0 not first by id"
tmux send-keys -t "$session" r
until_true "reversed sort" 5 screen_has "sort: id desc"
tmux send-keys -t "$session" W
until_true "sorting by wait" 5 screen_has "sort: wait desc"

# --- resize -------------------------------------------------------------------------------------
tmux resize-window -t "$session" -x 90 -y 20
until_true "the 90x20 window" 5 bash -c "[ \"\$(tmux display-message -p -t '$session' '#{pane_width}x#{pane_height}')\" = 90x20 ]"
until_true "a redraw at the new size" 5 bash -c "tmux capture-pane -p -t '$session' | head -1 | grep -q 'xenbake-top'"
screen_has "ID NAME" || fail "no table after shrinking"
[ "$(screen | awk '{ if (length($0) > 90) n++ } END { print n + 0 }')" = 0 ] ||
  fail "lines wider than the window"
tmux resize-window -t "$session" -x 160 -y 45
until_true "the 160x45 window" 5 bash -c "[ \"\$(tmux display-message -p -t '$session' '#{pane_width}x#{pane_height}')\" = 160x45 ]"
until_true "the CPU panel after growing" 5 screen_has "physical CPUs: all 2"

# --- quit ---------------------------------------------------------------------------------------
tmux send-keys -t "$session" q
until_true "xenbake-top to exit on q" 5 bash -c "! tmux has-session -t '$session' 2>/dev/null"

# --- batch mode ---------------------------------------------------------------------------------
"$top" --shm "$shm" --batch --format json --iterations 2 --delay 0.2 -o "$work/batch.json" ||
  fail "batch mode failed"
[ "$(wc -l <"$work/batch.json")" = 2 ] || fail "batch mode: not one line per interval"
grep -q '"daemon":"live"' "$work/batch.json" || fail "batch mode: daemon not live"
"$top" --shm "$shm" --batch -n 1 --format text | grep -qF "CPU% 1s/10s" ||
  fail "batch text mode"

# --- failures -----------------------------------------------------------------------------------
expect_failure() {  # expect_failure MESSAGE_PATTERN ARGS...: exits 1 quickly, says why
  local pattern="$1"
  shift
  local status=0
  timeout 10 "$top" "$@" >"$work/out" 2>"$work/err" || status=$?
  [ "$status" = 1 ] || fail "xenbake-top $* exited $status, expected 1"
  grep -q "$pattern" "$work/err" || fail "xenbake-top $*: message lacks '$pattern': $(cat "$work/err")"
}
expect_failure "is xenbaked running" --shm "/dev/shm/no-such-$name" --batch
expect_failure "is xenbaked running" --shm "/dev/shm/no-such-$name"
# A snapshot of another layout version.
python3 - "/dev/shm/$name-v99" <<'PY'
import sys
region = bytearray(4096)
region[0:8] = b"XBAKSHM\0"
region[8] = 99
open(sys.argv[1], "wb").write(region)
PY
expect_failure "another xenbaked version" --shm "/dev/shm/$name-v99" --batch
# The daemon stops: its snapshot says so, and xenbake-top refuses to show it as live.
kill -TERM "$daemon_pid"
wait "$daemon_pid" || true
daemon_pid=""
expect_failure "stopped" --shm "$shm" --batch
expect_failure "stopped" --shm "$shm"
echo "PASS"
