#!/usr/bin/env bash
# moesim simulate: the operator-level prediction (the default) with the pass-level one beside it, a trace holding
# every operator with its pass and stream, the JSON report's op_level block; --pass-level gives the pass-level
# model alone, --op-level is accepted (the default) but not with --pass-level; bad --op-level-finalists refused.
# Usage: bash op_level.sh MOESIM_BINARY SOURCE_DIR
set -uo pipefail
bin=${1:?usage: op_level.sh MOESIM_BINARY SOURCE_DIR}
source_dir=${2:?usage: op_level.sh MOESIM_BINARY SOURCE_DIR}
source "$source_dir/tests/cli.bash"

if "$bin" simulate --model mixtral-8x7b --hw h100-sxm --devices 64 --tp 2 --pp 4 --vpp 2 --schedule interleaved --ep 8 \
  --global-batch 64 --ep-overlap true --trace "$tmp/trace.json" --json "$tmp/report.json" >"$tmp/out" 2>"$tmp/err"; then
  grep -q "^operator level (" "$tmp/out" || fail "simulate printed no operator-level table"
  python3 - "$tmp/trace.json" "$tmp/report.json" <<'PY' || fail "op-level trace or report"
import json, sys
events = [e for e in json.load(open(sys.argv[1]))["traceEvents"] if e["ph"] == "X"]
report = json.load(open(sys.argv[2]))["op_level"]
assert len(events) == report["tasks"], (len(events), report["tasks"])
names = {e["name"] for e in events}
for op in ("ep_dispatch", "ep_combine", "optimizer step", "dp grad bucket"):
    assert any(op in n for n in names), op
assert report["iteration_time_s"] > 0 and report["pass_level"]["iteration_time_s"] > 0
# The report's prediction is the operator level's.
top = json.load(open(sys.argv[2]))
assert top["iteration_time_s"] == report["iteration_time_s"], (top["iteration_time_s"], report)
print(f"op-level: {len(events)} operators, {report['iteration_time_s']:.3f} s (pass level {report['pass_level']['iteration_time_s']:.3f} s)")
PY
else
  fail "simulate exited $?: $(head -c 300 "$tmp/err")"
fi
# --pass-level: the pass-level model alone, whose time the operator-level report printed beside its own.
layout=(--model mixtral-8x7b --hw h100-sxm --devices 64 --tp 2 --pp 4 --vpp 2 --schedule interleaved --ep 8 --global-batch 64 --ep-overlap true)
if "$bin" simulate "${layout[@]}" --pass-level --json "$tmp/pass.json" --trace "$tmp/pass-trace.json" >"$tmp/out" 2>"$tmp/err"; then
  ! grep -q "^operator level (" "$tmp/out" || fail "simulate --pass-level printed an operator-level table"
  python3 - "$tmp/pass.json" "$tmp/report.json" "$tmp/pass-trace.json" <<'PY' || fail "simulate --pass-level report"
import json, sys
p, o = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert "op_level" not in p and p["iteration_time_s"] == o["op_level"]["pass_level"]["iteration_time_s"], (p["iteration_time_s"], o["op_level"])
events = [e for e in json.load(open(sys.argv[3]))["traceEvents"] if e["ph"] == "X"]
assert len(events) < o["op_level"]["tasks"] / 4, len(events)  # one event per pass, not per operator
PY
else
  fail "simulate --pass-level exited $?: $(head -c 300 "$tmp/err")"
fi
expect_error "both levels" "--op-level and --pass-level" "at most one" -- simulate "${layout[@]}" --op-level --pass-level
# validate (operator level by default): each row shows the pass-level error and how far the operator level moves the
# prediction; the three agree ((1 + op) / (1 + pass) - 1 = moved, to the printed rounding) and the summary
# counts every compared row.
if "$bin" validate "$source_dir/validation/published_runs.json" --op-level >"$tmp/validate" 2>"$tmp/err"; then
  python3 - "$tmp/validate" <<'PY' || fail "validate: pass-level columns"
import re, sys
rows, summary = [], None
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 8 and all(re.fullmatch(r"[+-][0-9.]+", x) for x in f[5:8]):
        rows.append([float(x) for x in f[5:8]])
    m = re.search(r"(\d+) of (\d+) figures differ by more than 2%", line)
    if m:
        summary = int(m.group(2))
assert len(rows) >= 60 and summary == len(rows), (len(rows), summary)
for op, passed, moved in rows:
    assert abs(100 * ((1 + op / 100) / (1 + passed / 100) - 1) - moved) < 0.2, (op, passed, moved)
assert any(abs(moved) > 2 for _, _, moved in rows)
print(f"validate: {len(rows)} rows beside the pass level")
PY
else
  fail "validate exited $?: $(head -c 300 "$tmp/err")"
fi
expect_error "no finalists" "--op-level-finalists" ">= 1" -- sweep "$source_dir/sweeps/gpt3-175b-1024-a100.json" --op-level-finalists 0 --out "$tmp/x.jsonl"
expect_error "finalists at pass level" "--pass-level and --op-level-finalists" "at most one" -- sweep "$source_dir/sweeps/gpt3-175b-1024-a100.json" --pass-level --op-level-finalists 2 --out "$tmp/x.jsonl"
finish op_level
