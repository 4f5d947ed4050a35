#!/usr/bin/env bash
# `moesim prune` and `moesim deploy` end to end: the PreMoe paper's 390 GB (Pangu Ultra MoE 4/64 bf16),
# pruning real router data (../shared/routing: ESFT DeepSeek-V2-Lite tasks, PreMoe's DeepSeek-R1 pattern)
# into pruned-model files that deploy reads, task store and retrieval, and one-line errors on bad input.
# Usage: bash prune_deploy.sh MOESIM_BINARY SOURCE_DIR
set -u
bin=${1:?usage: prune_deploy.sh MOESIM_BINARY SOURCE_DIR}
src=${2:?usage: prune_deploy.sh MOESIM_BINARY SOURCE_DIR}
routing="$src/../shared/routing"
source "$src/tests/cli.bash"
run() {  # run ARGS...: must exit 0 with an empty stderr
  if ! "$bin" "$@" >"$tmp/stdout" 2>"$tmp/stderr"; then
    fail "moesim $* exited non-zero: $(head -c 300 "$tmp/stderr")"
    return 1
  fi
  [ -s "$tmp/stderr" ] && fail "moesim $* wrote to stderr: $(head -c 300 "$tmp/stderr")"
  return 0
}
# json_check FILE PYTHON_EXPRESSION MESSAGE: the expression over `r` (the parsed JSON) must be true.
json_check() {
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1" || fail "$3"
}

# 1. The paper's figure and the report's contract fields.
if run deploy --model pangu-ultra-moe-718b --prune 4/64 --precision bf16 --hw ascend-910b2 --json "$tmp/pangu.json"; then
  for field in weights_bytes kv_cache_bytes activation_bytes total_bytes devices_needed decode_step_s; do
    json_check "$tmp/pangu.json" "isinstance(r.get('$field'), (int, float)) and r['$field'] >= 0" "deploy JSON lacks $field"
  done
  json_check "$tmp/pangu.json" "abs(r['weights_bytes'] / 390e9 - 1) <= 0.02" "Pangu 4/64 bf16 weights not within 2% of 390 GB"
  json_check "$tmp/pangu.json" "r['total_bytes'] >= r['weights_bytes'] + r['kv_cache_bytes']" "total below weights + KV"
fi

# 2. PreMoe's shipped DeepSeek-R1 pattern -> 8/32 pruned file -> deploy reads it like --prune 8/32.
if [ -f "$routing/premoe-deepseek-r1/example_pattern.json" ]; then
  if run prune --premoe-pattern "$routing/premoe-deepseek-r1/example_pattern.json" --prune 8/32 --out "$tmp/r1.json"; then
    json_check "$tmp/r1.json" "len(r['layers']) == 58 and r['layers'][0]['experts'][0] == 207" "R1 pruned file: 58 layers, layer 3 led by expert 207"
    run deploy --model deepseek-v3-671b --pruned "$tmp/r1.json" --precision int4 --hw h200 --json "$tmp/r1_file.json"
    run deploy --model deepseek-v3-671b --prune 8/32 --precision int4 --hw h200 --json "$tmp/r1_flag.json"
    python3 - "$tmp/r1_file.json" "$tmp/r1_flag.json" <<'PY' || fail "--pruned and --prune 8/32 disagree"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
sys.exit(0 if a["weights_bytes"] == b["weights_bytes"] and a["devices_needed"] == b["devices_needed"] == 1 else 1)
PY
  fi
else
  fail "needs ../shared/routing/premoe-deepseek-r1 (not found under $routing)"
fi

# 3. ESFT DeepSeek-V2-Lite tasks: prune, store two tasks, retrieve, deploy the pruned file.
esft="$routing/esft-deepseek-v2-lite-tasks"
if [ -d "$esft" ]; then
  for task in intent law; do
    run prune --topk-ids "$esft/$task/expert_ids.npy" --topk-probs "$esft/$task/gate_weights_x1e4.npy" --prob-scale 1e-4 \
      --experts 64 --first-layer 1 --prune 6/16 --task "$task" --store "$tmp/store.json" --out "$tmp/$task.json"
  done
  json_check "$tmp/store.json" "[t['task'] for t in r['tasks']] == ['intent', 'law']" "store does not hold intent and law"
  if run prune --retrieve --store "$tmp/store.json" --topk-ids "$esft/law/expert_ids.npy" \
    --topk-probs "$esft/law/gate_weights_x1e4.npy" --prob-scale 1e-4 --experts 64 --first-layer 1 --prune 6/16 --out "$tmp/retrieved.json"; then
    grep -q "retrieved task 'law'" "$tmp/stdout" || fail "retrieval of law's own data did not return law"
    cmp -s "$tmp/retrieved.json" "$tmp/law.json" || fail "retrieved pruned model differs from law's"
  fi
  if run deploy --model "$src/tests/data/model-deepseek-v2-lite.json" --pruned "$tmp/law.json" --precision bf16 --hw h200 \
    --json "$tmp/lite.json"; then
    json_check "$tmp/lite.json" "r['experts_kept_per_layer'] == [16] * 26 and r['top_k'] == 6" "V2-Lite pruned deploy: 16 experts in 26 layers"
  fi
else
  fail "needs ../shared/routing/esft-deepseek-v2-lite-tasks (not found under $routing)"
fi

# 4. Bad input: one line, exit 2.
head -c 200 "$esft/law/expert_ids.npy" >"$tmp/truncated.npy" 2>/dev/null || printf '\x93NUMPY' >"$tmp/truncated.npy"
expect_error "truncated .npy" "truncated.npy" -- prune --logits "$tmp/truncated.npy" --prune 8/32
expect_error "bad K/M" "--prune" -- deploy --model deepseek-v3-671b --prune 9/8 --hw h200
expect_error "M above the experts" "256" -- deploy --model deepseek-v3-671b --prune 8/512 --hw h200
expect_error "bad precision" "--precision" -- deploy --model deepseek-v3-671b --precision fp3 --hw h200
if [ -f "$tmp/law.json" ]; then
  expect_error "pruned file for another model" "field 'experts'" -- deploy --model deepseek-v3-671b --pruned "$tmp/law.json" --hw h200
fi
echo '{"format": "moesim-pruned-experts", "experts": 64, "top_k": 6, "layers": [{"layer": 1, "experts": [1, 2, 3]}]}' >"$tmp/few.json"
expect_error "fewer kept than top_k" "layers[0].experts" -- deploy --model "$src/tests/data/model-deepseek-v2-lite.json" --pruned "$tmp/few.json" --hw h200
expect_error "two router-data sources" "exactly one" -- prune --logits "$tmp/truncated.npy" --router-json "$tmp/few.json" --prune 8/32

finish "prune/deploy CLI"
