#!/usr/bin/env bash
# `moesim replay TRACE --model ... --timeline FILE` end to end on the DeepSeek-V3 training trace of
# ../shared/traces (one H800 rank, a DualPipe chunk pair of 4 MoE layers, DeepEP dispatch and combine):
# the measured timeline is read as the trace shows it (963 kernels, the DeepEP stream busy most of the
# window, little of it exposed), the simulated stage beside it, both in --json and in one Chrome trace;
# flags that need a configuration are one-line errors without one.
# Usage: bash replay_side_by_side.sh MOESIM_BINARY SOURCE_DIR
set -u
bin=${1:?usage: replay_side_by_side.sh MOESIM_BINARY SOURCE_DIR}
src=${2:?usage: replay_side_by_side.sh MOESIM_BINARY SOURCE_DIR}
trace="$src/../shared/traces/deepseek-profile-data/train.json"
if [ ! -f "$trace" ]; then
  echo "FAIL: needs $trace"
  exit 1
fi
source "$src/tests/cli.bash"

# The layout of validation/published_runs.json's DeepSeek-V3 pre-training record, cut to 64 microbatches.
cat >"$tmp/layout.json" <<'EOF2'
{"devices": 2048, "tp": 1, "pp": 16, "ep": 64, "micro_batch": 1, "global_batch": 8192, "seq_len": 4096,
 "schedule": "dualpipe", "precision": "fp8", "recompute": "selective", "recompute_modules": ["layernorm", "mla_up_proj"],
 "overlap": {"ep_all_to_all": true, "dp_grad_reduce": true, "dp_param_gather": true},
 "ep_all_to_all": "hierarchical", "fp8_dispatch": true}
EOF2
if "$bin" replay "$trace" --hw h800 --model deepseek-v3-671b --layout "$tmp/layout.json" --stage 8 --json "$tmp/r.json" \
  --timeline "$tmp/timeline.json" >"$tmp/out" 2>"$tmp/err"; then
  grep -q "side by side" "$tmp/out" || fail "no side-by-side table: $(head -c 400 "$tmp/out")"
  python3 - "$tmp/r.json" "$tmp/timeline.json" <<'PY' || fail "side-by-side output"
import json, sys
r = json.load(open(sys.argv[1]))["side_by_side"]
m, s = r["measured"][0], r["simulated"]
share = lambda u, k: u[k] / u["window_s"]
# The trace: 963 kernels on streams 7 (compute), 27 (DeepEP) and 23; the DeepEP stream is busy about 88% of
# the 129 ms window and about 3% of the window has a collective with no compute beside it.
assert sum(st["events"] for st in m["streams"]) == 963, m
assert abs(m["window_s"] - 0.129) < 0.002, m
assert 0.85 < share(m, "communication_s") < 0.91 and share(m, "exposed_communication_s") < 0.05, m
ep = {st["name"]: st for st in m["streams"]}["stream 27"]
assert ep["communication_s"] > 0.8 * ep["busy_s"], ep
# The simulated middle stage: a whole iteration, its exposed communication within its communication.
assert s["name"] == "simulated: stage 8" and s["window_s"] > 1, s
assert 0 < s["exposed_communication_s"] <= s["communication_s"], s
assert abs(s["compute_s"] + s["exposed_communication_s"] + s["idle_s"] - s["window_s"]) < 1e-6 * s["window_s"], s
t = json.load(open(sys.argv[2]))["traceEvents"]
measured = [e for e in t if e["ph"] == "X" and e["pid"] >= 1000000]
simulated = [e for e in t if e["ph"] == "X" and e["pid"] < 1000000]
assert len(measured) == 963 and len(simulated) > 100000, (len(measured), len(simulated))
assert {e["tid"] for e in measured} == {7, 23, 27}
print("ok   side by side: measured communication %.0f%% of the window, %.1f%% exposed; simulated stage 8 %.0f%%, %.1f%%"
      % (100 * share(m, "communication_s"), 100 * share(m, "exposed_communication_s"),
         100 * share(s, "communication_s"), 100 * share(s, "exposed_communication_s")))
PY
else
  fail "replay side by side exited non-zero: $(cat "$tmp/err")"
fi

expect_error "--timeline without a configuration" "--timeline" "--model" -- replay "$trace" --hw h800 --timeline "$tmp/t.json"
expect_error "a layout flag without a configuration" "--tp" "--model" -- replay "$trace" --hw h800 --tp 4
expect_error "--stage past the pipeline" "--stage" "0 to 15" -- replay "$trace" --hw h800 --model deepseek-v3-671b \
  --layout "$tmp/layout.json" --stage 16

finish "replay side by side CLI"
