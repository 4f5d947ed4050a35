# Shared by the CLI test scripts (tests/cli/*.sh), sourced once they have set `bin` (the moesim binary):
# a scratch folder $tmp removed at exit, `fail` (counts a failure and goes on), `expect_error` and
# `finish`.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# expect_error DESCRIPTION WORD... -- ARGS...: `moesim ARGS` exits with status 2 and writes one line on
# stderr containing every WORD (the file, the field, what was expected).
expect_error() {
  local desc=$1 words=() problems=""
  shift
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    words+=("$1")
    shift
  done
  shift
  "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [ "$rc" -eq 2 ] || problems+=" exit status $rc, expected 2$([ "$rc" -gt 128 ] && echo " (killed by signal $((rc - 128)))");"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || problems+=" $(wc -l <"$tmp/err") lines on stderr, expected 1;"
  local word
  for word in "${words[@]}"; do
    grep -qF -- "$word" "$tmp/err" || problems+=" stderr does not name '$word';"
  done
  if [ -n "$problems" ]; then
    fail "[$desc]$problems stderr was: $(head -c 500 "$tmp/err")"
  else
    echo "ok   [$desc]: $(head -c 300 "$tmp/err")"
  fi
}

# finish WHAT: exit status 1 when a check failed, else a line saying that WHAT passed.
finish() {
  if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s) in $1"
    exit 1
  fi
  echo "$1: all checks passed"
}
