#!/usr/bin/env bash
# moesim sweep: results do not depend on --jobs, and --resume after a truncated file or a kill -9 at
# a random moment ends with the same lines as an uninterrupted run.
# Usage: bash sweep_resume.sh MOESIM_BINARY SOURCE_DIR
set -euo pipefail
moesim=$1
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "sweep_resume: $*" >&2; exit 1; }

# The small test spec, plus a longer one (60 points, about a second) so that kills land mid-run.
small=$source_dir/tests/data/sweep-small.json
cat > "$work/long.json" <<'JSON'
{
  "base_model": "mixtral-8x7b",
  "hardware": "h100-sxm",
  "devices": 32,
  "seq_len": 2048,
  "global_batch_tokens": 131072,
  "model_axes": {"layers": {"from": 4, "to": 32, "step": 2}, "hidden": [2048, 4096], "experts": [8, 16]},
  "layout": "auto",
  "layout_axes": {"tp": [1, 2, 4], "pp": [1, 2, 4], "vpp": [1, 2], "micro_batch": [1, 2]},
  "objective": "mfu"
}
JSON

for spec in "$small" "$work/long.json"; do
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

# kill -9 at random moments of the long sweep, then resume.
sort "$work/full.jsonl" > "$work/full.sorted"
for attempt in 1 2 3 4 5; do
  rm -f "$work/killed.jsonl"
  "$moesim" sweep "$work/long.json" --jobs 2 --out "$work/killed.jsonl" > /dev/null &
  pid=$!
  sleep "0.$(printf '%03d' $((RANDOM % 1000)))"
  kill -9 "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
  before=$( [ -f "$work/killed.jsonl" ] && wc -l < "$work/killed.jsonl" || echo 0)
  "$moesim" sweep "$work/long.json" --jobs 2 --out "$work/killed.jsonl" --resume > /dev/null
  sort "$work/killed.jsonl" | cmp -s - "$work/full.sorted" ||
    fail "attempt $attempt: resume after kill -9 (with $before lines written) differs from a full run"
done

# A results file that is not ours is refused rather than overwritten.
printf 'not json\n' > "$work/bad.jsonl"
if "$moesim" sweep "$small" --out "$work/bad.jsonl" --resume > /dev/null 2> "$work/err"; then fail "resume accepted a damaged file"; fi
grep -q "cannot resume" "$work/err" || fail "unexpected error: $(cat "$work/err")"
echo "sweep_resume: ok"
