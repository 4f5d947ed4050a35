#!/usr/bin/env bash
# moesim sweep: results do not depend on --jobs, and --resume after a truncated file or a kill -9 at
# a random moment ends with the same lines as an uninterrupted run.
# Usage: bash sweep_resume.sh MOESIM_BINARY SOURCE_DIR
set -uo pipefail
moesim=${1:?usage: sweep_resume.sh MOESIM_BINARY SOURCE_DIR}
source_dir=${2:?usage: sweep_resume.sh MOESIM_BINARY SOURCE_DIR}
bin=$moesim
source "$source_dir/tests/cli.bash"
work=$tmp

# The small test spec, plus a longer one (tests/data/sweep-uneven.json: 60 points of uneven cost, about
# a second) so that kills land mid-run.
small=$source_dir/tests/data/sweep-small.json

for spec in "$small" "$source_dir/tests/data/sweep-uneven.json"; do
  "$moesim" sweep "$spec" --jobs 2 --out "$work/full.jsonl" > /dev/null
  "$moesim" sweep "$spec" --jobs 1 --out "$work/one.jsonl" > /dev/null
  cmp -s "$work/full.jsonl" "$work/one.jsonl" || fail "$spec: --jobs 1 and --jobs 2 differ"
  lines=$(wc -l < "$work/full.jsonl")
  points=$(grep -c '"index"' "$work/full.jsonl")
  [ "$lines" -eq "$points" ] && [ "$lines" -gt 0 ] || fail "$spec: expected one line per point, got $lines"

  # Truncated halfway, in the middle of a line.
  size=$(wc -c < "$work/full.jsonl")
  head -c $((size / 2)) "$work/full.jsonl" > "$work/cut.jsonl"
  "$moesim" sweep "$spec" --jobs 2 --out "$work/cut.jsonl" --resume > /dev/null
  cmp -s "$work/full.jsonl" "$work/cut.jsonl" || fail "$spec: resume after truncation differs from a full run"
done

# kill -9 at seeded random moments spread over the long sweep's run time, then resume. What the killed
# run left must be a byte prefix of the full run (every line flushed whole, in order, at most one torn
# last line), and the resumed file must equal the full run byte for byte (nothing lost, nothing twice).
RANDOM=20261129
start=$(date +%s%N)
"$moesim" sweep "$source_dir/tests/data/sweep-uneven.json" --jobs 2 --out "$work/timed.jsonl" > /dev/null
run_ms=$(( ($(date +%s%N) - start) / 1000000 ))
partial_runs=0
for attempt in 1 2 3 4 5 6; do
  rm -f "$work/killed.jsonl"
  delay_ms=$(( RANDOM % (run_ms + 1) ))
  "$moesim" sweep "$source_dir/tests/data/sweep-uneven.json" --jobs 2 --out "$work/killed.jsonl" > /dev/null &
  pid=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  kill -9 "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
  before=0
  if [ -f "$work/killed.jsonl" ]; then
    before=$(wc -l < "$work/killed.jsonl")
    size=$(wc -c < "$work/killed.jsonl")
    cmp -s -n "$size" "$work/killed.jsonl" "$work/full.jsonl" ||
      fail "attempt $attempt: the killed run's file is not a prefix of the full run"
  fi
  [ "$before" -gt 0 ] && [ "$before" -lt "$(wc -l < "$work/full.jsonl")" ] && partial_runs=$((partial_runs + 1))
  "$moesim" sweep "$source_dir/tests/data/sweep-uneven.json" --jobs 2 --out "$work/killed.jsonl" --resume > /dev/null
  cmp -s "$work/killed.jsonl" "$work/full.jsonl" ||
    fail "attempt $attempt: resume after kill -9 at ${delay_ms} ms (with $before lines written) differs from a full run"
  echo "sweep_resume: kill -9 at ${delay_ms} ms of ${run_ms} ms: $before lines kept, resumed to the full run"
done
[ "$partial_runs" -gt 0 ] || fail "no kill landed mid-run (run time ${run_ms} ms)"

# A results file that is not ours is refused rather than overwritten.
printf 'not json\n' > "$work/bad.jsonl"
expect_error "resume over a damaged file" "bad.jsonl" "line 1" "cannot resume" -- sweep "$small" --out "$work/bad.jsonl" --resume
grep -qx "not json" "$work/bad.jsonl" || fail "the refused resume changed bad.jsonl"
# Results of the default (operator-level) search are not resumed at pass level, nor the other way round.
"$moesim" sweep "$small" --jobs 2 --out "$work/op.jsonl" > /dev/null
head -n 1 "$work/op.jsonl" > "$work/op-cut.jsonl"
expect_error "resume at the other level" "op-cut.jsonl" "line 1" "operator-level search" "--pass-level" -- \
  sweep "$small" --pass-level --out "$work/op-cut.jsonl" --resume
"$moesim" sweep "$small" --jobs 2 --pass-level --out "$work/pass.jsonl" > /dev/null
head -n 1 "$work/pass.jsonl" > "$work/pass-cut.jsonl"
expect_error "resume at the other level" "pass-cut.jsonl" "line 1" "pass-level search" -- sweep "$small" --out "$work/pass-cut.jsonl" --resume
finish sweep_resume
