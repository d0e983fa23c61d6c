#!/usr/bin/env bash
# Every program's man page renders without a warning, and the bash completion script completes an
# option of every program (and subcommands, and an option's values).
#
# Usage: cli_docs_test.sh COMPLETION_SCRIPT PAGE...   (PAGE: BUILD/.../NAME.SECTION)
set -euo pipefail
completion="$1"
shift
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# --- man pages -----------------------------------------------------------------------------------
for page in "$@"; do
  [ -s "$page" ] || { fail "$page: missing or empty"; continue; }
  warnings=$(MANWIDTH=80 man -l "$page" 2>&1 >/dev/null) || fail "$page: man -l failed"
  [ -z "$warnings" ] || fail "$page: man -l warns: $warnings"
  warnings=$(preconv "$page" | groff -man -ww -z -Tutf8 2>&1) || fail "$page: groff failed"
  [ -z "$warnings" ] || fail "$page: groff -ww warns: $warnings"
  text=$(MANWIDTH=80 man -l "$page" 2>/dev/null)
  for section in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS"; do
    grep -q "^$section" <<<"$text" || fail "$page: no $section section"
  done
  grep -q -- "--help" <<<"$text" || fail "$page: --help not listed"
  grep -qE "ENUM:|[a-z]->[0-9]|OR \{" <<<"$text" && fail "$page: CLI11 internals in the text"
done

# --- completion ----------------------------------------------------------------------------------
# complete LINE: what the completion offers for the last word of LINE ("" completes a new word).
complete_line() {
  bash --norc --noprofile -c '
    source "$1"
    read -ra COMP_WORDS <<<"$2"
    [[ $2 == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    _xenbake
    printf "%s\n" "${COMPREPLY[@]}"' _ "$completion" "$1"
}
expect_completion() {  # expect_completion LINE WORD: LINE completes to (among others) WORD
  local got
  got=$(complete_line "$1")
  grep -qxF -- "$2" <<<"$got" || fail "completing '$1': no '$2' in: $(tr '\n' ' ' <<<"$got")"
}
expect_completion "xenbaked --shm-" --shm-name
expect_completion "xenbaked --log-level " debug
expect_completion "xenbake-dump --for" --format
expect_completion "xenbake-dump --format " json
expect_completion "xenbake-dump -" --output
expect_completion "xenbake-account --no-" --no-vcpus
expect_completion "xenbake-report --format " csv
expect_completion "xenbake-timeline --fol" --follow
expect_completion "xenbake-top --bat" --batch
expect_completion "xenbake-top --sort " wait
expect_completion "xenbake-tbuf s" show
expect_completion "xenbake-tbuf show --for" --format
expect_completion "xenbake-tbuf enable --" --mask
expect_completion "xenbake-sim o" overflow-study
expect_completion "xenbake-sim run --dom" --domains
# Registered for every program.
for program in xenbaked xenbake-dump xenbake-account xenbake-report xenbake-timeline xenbake-top \
  xenbake-tbuf xenbake-sim; do
  bash --norc --noprofile -c 'source "$1"; complete -p "$2"' _ "$completion" "$program" \
    >/dev/null 2>&1 || fail "no completion registered for $program"
done

((failures == 0)) || exit 1
echo "OK: $# man pages render cleanly; completion covers every program"
