#!/usr/bin/env bash
# moesim simulate --op-level: the operator-level table beside the pass-level one, a trace holding every
# operator with its pass and stream, the JSON report's op_level block; bad --op-level-finalists refused.
# Usage: bash op_level.sh MOESIM_BINARY SOURCE_DIR
set -uo pipefail
bin=${1:?usage: op_level.sh MOESIM_BINARY SOURCE_DIR}
source_dir=${2:?usage: op_level.sh MOESIM_BINARY SOURCE_DIR}
source "$source_dir/tests/cli.bash"

if "$bin" simulate --model mixtral-8x7b --hw h100-sxm --devices 64 --tp 2 --pp 4 --vpp 2 --schedule interleaved --ep 8 \
  --global-batch 64 --ep-overlap true --op-level --trace "$tmp/trace.json" --json "$tmp/report.json" >"$tmp/out" 2>"$tmp/err"; then
  grep -q "^operator level (" "$tmp/out" || fail "simulate --op-level printed no operator-level table"
  python3 - "$tmp/trace.json" "$tmp/report.json" <<'PY' || fail "op-level trace or report"
import json, sys
events = [e for e in json.load(open(sys.argv[1]))["traceEvents"] if e["ph"] == "X"]
report = json.load(open(sys.argv[2]))["op_level"]
assert len(events) == report["tasks"], (len(events), report["tasks"])
names = {e["name"] for e in events}
for op in ("ep_dispatch", "ep_combine", "optimizer step", "dp grad bucket"):
    assert any(op in n for n in names), op
assert report["iteration_time_s"] > 0 and report["pass_level"]["iteration_time_s"] > 0
print(f"op-level: {len(events)} operators, {report['iteration_time_s']:.3f} s (pass level {report['pass_level']['iteration_time_s']:.3f} s)")
PY
else
  fail "simulate --op-level exited $?: $(head -c 300 "$tmp/err")"
fi
# validate --op-level: each row shows the pass-level error and how far the operator level moves the
# prediction; the three agree ((1 + op) / (1 + pass) - 1 = moved, to the printed rounding) and the summary
# counts every compared row.
if "$bin" validate "$source_dir/validation/published_runs.json" --op-level >"$tmp/validate" 2>"$tmp/err"; then
  python3 - "$tmp/validate" <<'PY' || fail "validate --op-level: pass-level columns"
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
print(f"validate --op-level: {len(rows)} rows beside the pass level")
PY
else
  fail "validate --op-level exited $?: $(head -c 300 "$tmp/err")"
fi
expect_error "negative finalists" "--op-level-finalists" ">= 0" -- sweep "$source_dir/sweeps/gpt3-175b-1024-a100.json" --op-level-finalists -1 --out "$tmp/x.jsonl"
finish op_level
