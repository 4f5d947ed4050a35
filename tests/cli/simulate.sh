#!/usr/bin/env bash
# `moesim simulate` end to end on the Pangu Ultra MoE 6K layout: exit 0, the DESIGN.md report fields in
# --json, a Chrome trace; a flags-only layout; `moesim models` and `moesim profiles` list every built-in.
# Usage: bash simulate.sh MOESIM_BINARY SOURCE_DIR
set -u
bin=${1:?usage: simulate.sh MOESIM_BINARY SOURCE_DIR}
src=${2:?usage: simulate.sh MOESIM_BINARY SOURCE_DIR}
source "$src/tests/cli.bash"

# 1. Pangu Ultra MoE on 6K Ascend 910B2 from the layout file, with JSON report and trace.
if "$bin" simulate --model pangu-ultra-moe-718b --hw ascend-910b2 \
  --layout "$src/validation/layouts/pangu-ultra-moe-6k.json" \
  --json "$tmp/out.json" --trace "$tmp/trace.json" >"$tmp/stdout" 2>"$tmp/stderr"; then
  [ -s "$tmp/stderr" ] && fail "pangu simulate wrote to stderr: $(head -c 300 "$tmp/stderr")"
  grep -q "iteration" "$tmp/stdout" || fail "pangu simulate printed no iteration line"
  python3 - "$tmp/out.json" "$tmp/trace.json" <<'PY' || fail "pangu report or trace check (see above)"
import json, math, sys
report = json.load(open(sys.argv[1]))
problems = []
def get(path):
    node = report
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            problems.append("missing field " + path)
            return None
        node = node[key]
    return node
def number(path, low=None, high=None):
    v = get(path)
    if v is None:
        return None
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        problems.append(f"{path} = {v!r} is not a finite number")
        return None
    if low is not None and not v > low:
        problems.append(f"{path} = {v} not > {low}")
    if high is not None and not v < high:
        problems.append(f"{path} = {v} not < {high}")
    return v
total = number("params.total", 7.1e11, 7.3e11)       # 718B published (719.1B counted)
number("params.active", 3.8e10, 4.0e10)              # 39B published
number("flops_per_token.model", 0)
number("flops_per_token.hardware", 0)
it = number("iteration_time_s", 0)
tps = number("tokens_per_s", 0)
mfu = number("mfu", 0, 1)
hfu = number("hfu", 0, 1)
number("tflops_per_device", 0)
number("time_breakdown.compute_s", 0)
number("time_breakdown.exposed_comm_s", -1e-12)
number("time_breakdown.bubble_s", -1e-12)
peak = number("memory.peak_bytes", 0)
number("memory.capacity_bytes", 0)
fits = get("memory.fits")
if not isinstance(fits, bool):
    problems.append(f"memory.fits = {fits!r} is not a boolean")
warnings = get("warnings")
if not isinstance(warnings, list):
    problems.append("warnings is not a list")
elif fits is False and not warnings:
    problems.append("does not fit but no warning")
stages = get("memory.stages")
if not isinstance(stages, list) or len(stages) != 16:
    problems.append(f"memory.stages should list 16 pipeline stages, got {stages if not isinstance(stages, list) else len(stages)}")
else:
    for s in stages:
        parts = [s.get(k) for k in ("weights", "gradients", "optimizer", "activations", "buffers")]
        if any(not isinstance(p, (int, float)) for p in parts) or "total" not in s:
            problems.append(f"stage entry lacks fields: {sorted(s)}")
            continue
        if s["total"] + 1 < sum(parts):
            problems.append(f"stage {s.get('stage')}: total {s['total']} < sum of parts {sum(parts)}")
    if peak is not None and abs(max(s["total"] for s in stages) - peak) > 1:
        problems.append("memory.peak_bytes is not the largest stage total")
if it and tps:
    expected = 3072 * 4096 / it  # global batch x seq_len per iteration, whole job (the layout file: 3072 sequences)
    if abs(tps / expected - 1) > 1e-9:
        problems.append(f"tokens_per_s {tps} != global_batch x seq_len / iteration_time = {expected}")
if mfu is not None and hfu is not None and hfu < mfu:
    problems.append(f"hfu {hfu} < mfu {mfu}")
trace = json.load(open(sys.argv[2]))
events = trace["traceEvents"] if isinstance(trace, dict) else trace
if not isinstance(events, list) or not events:
    problems.append("trace has no events")
for p in problems:
    print("  " + p)
sys.exit(1 if problems else 0)
PY
else
  fail "pangu simulate exited $?: $(head -c 500 "$tmp/stderr")"
fi

# 2. A flags-only layout (no --layout file).
if "$bin" simulate --model gpt3-175b --hw a100-sxm-80g --devices 64 --tp 8 --pp 2 --global-batch 64 \
  --micro-batch 1 --recompute selective --json "$tmp/flags.json" >"$tmp/stdout" 2>"$tmp/stderr"; then
  python3 - "$tmp/flags.json" <<'PY' || fail "flags-only report check"
import json, sys
r = json.load(open(sys.argv[1]))
l = r["layout"]
problems = []
for k, v in {"devices": 64, "tp": 8, "pp": 2, "dp": 4, "global_batch": 64, "micro_batch": 1, "seq_len": 2048,
             "recompute": "selective"}.items():
    if l.get(k) != v:
        problems.append(f"layout.{k} = {l.get(k)!r}, expected {v!r}")
if len(r["memory"]["stages"]) != 2:
    problems.append("expected 2 memory stages")
if not 0 < r["mfu"] < 1:
    problems.append(f"mfu {r['mfu']} not in (0, 1)")
for p in problems:
    print("  " + p)
sys.exit(1 if problems else 0)
PY
else
  fail "flags-only simulate exited $?: $(head -c 500 "$tmp/stderr")"
fi

# 3. Flags override the layout file.
if "$bin" simulate --model pangu-ultra-moe-718b --hw ascend-910b2 \
  --layout "$src/validation/layouts/pangu-ultra-moe-6k.json" --recompute full --json "$tmp/override.json" \
  >/dev/null 2>"$tmp/stderr"; then
  grep -q '"recompute": "full"' "$tmp/override.json" || fail "--recompute full did not override the layout file"
else
  fail "override simulate exited $?: $(head -c 500 "$tmp/stderr")"
fi

# 3b. The main job's layout fits in 64 GiB and --convention gives its MFU as the Pangu report counts it
# (PaLM FLOPs over 256 TFLOPS): both in the table and in the JSON, equal to moesim's MFU x 353.9 / 256.
if "$bin" simulate --model pangu-ultra-moe-718b --hw ascend-910b2 \
  --layout "$src/validation/layouts/pangu-ultra-moe-6k.json" --convention pangu --json "$tmp/pangu.json" \
  >"$tmp/pangu.txt" 2>"$tmp/stderr"; then
  grep -q '^MFU under the pangu convention: ' "$tmp/pangu.txt" || fail "--convention pangu printed no MFU line"
  python3 - "$tmp/pangu.json" <<'PY' || fail "--convention pangu JSON"
import json, sys
r = json.load(open(sys.argv[1]))
c = r["mfu_convention"]
assert c["convention"] == "pangu" and c["peak_flops"] == 256e12, c
assert abs(c["mfu"] - r["mfu"] * 353.9e12 / 256e12) < 1e-9, (c, r["mfu"])
assert r["memory"]["fits"], r["memory"]["peak_bytes"]
PY
else
  fail "simulate --convention pangu exited $?: $(head -c 500 "$tmp/stderr")"
fi
"$bin" simulate --model pangu-ultra-moe-718b --hw ascend-910b2 --layout "$src/validation/layouts/pangu-ultra-moe-6k.json" \
  --convention bogus >/dev/null 2>"$tmp/stderr" && fail "--convention bogus was accepted"
grep -q "expected a convention" "$tmp/stderr" || fail "--convention bogus: $(head -c 300 "$tmp/stderr")"

# 4. Built-in lists.
models=(deepseek-v3-671b deepseek-v3.2 deepseek-v4-flash deepseek-v4-pro gpt-oss-120b gpt3-175b kimi-k2 llama3-405b llama3-70b llama3-8b mixtral-8x22b
        mixtral-8x7b pangu-pro-moe-72b pangu-ultra-135b pangu-ultra-moe-718b qwen2-57b-a14b qwen3-235b-a22b
        qwen3-30b-a3b)
profiles=(a100-sxm-80g ascend-910b2 ascend-910b3 ascend-910c-cm384 b200 b300 gb200-nvl72 gb300-nvl72 h100-sxm
          h200 h800 tpu-v4)
if "$bin" models >"$tmp/models" 2>"$tmp/stderr"; then
  [ "$(wc -l <"$tmp/models")" -eq 19 ] || fail "moesim models printed $(wc -l <"$tmp/models") lines, expected 19"
  for m in "${models[@]}"; do grep -q "^$m " "$tmp/models" || fail "moesim models does not list $m"; done
else
  fail "moesim models exited $?: $(head -c 300 "$tmp/stderr")"
fi
if "$bin" profiles >"$tmp/profiles" 2>"$tmp/stderr"; then
  [ "$(wc -l <"$tmp/profiles")" -eq 13 ] || fail "moesim profiles printed $(wc -l <"$tmp/profiles") lines, expected 13"
  for p in "${profiles[@]}"; do grep -q "^$p " "$tmp/profiles" || fail "moesim profiles does not list $p"; done
else
  fail "moesim profiles exited $?: $(head -c 300 "$tmp/stderr")"
fi

# 5. Sliding-window attention: GPT-OSS-120B at 128K runs, its sliding layers' attention shows in 'ops' with
# their much smaller FLOPs.
gpt_layout=(--hw h100-sxm --devices 64 --ep 8 --cp 8 --seq-len 131072 --global-batch 64 --recompute full)
if "$bin" simulate --model gpt-oss-120b "${gpt_layout[@]}" >"$tmp/gpt" 2>"$tmp/stderr"; then
  grep -q "sliding layers 128 keys per query" "$tmp/gpt" || fail "GPT-OSS simulate does not state its windowed FLOPs"
else
  fail "GPT-OSS 128K simulate exited $?: $(head -c 300 "$tmp/stderr")"
fi
if "$bin" ops --model gpt-oss-120b "${gpt_layout[@]}" >"$tmp/gpt-ops" 2>"$tmp/stderr"; then
  cores=$(awk '/^moe layer/ {kind="full"} /^moe, sliding window 128 layer/ {kind="sliding"}
               /^attention_core/ && kind != "" {print kind, $3; kind=""}' "$tmp/gpt-ops")
  full=$(awk '$1 == "full" {print $2}' <<<"$cores")
  sliding=$(awk '$1 == "sliding" {print $2}' <<<"$cores")
  [ -n "$full" ] && [ -n "$sliding" ] || fail "moesim ops does not show both attention cores of GPT-OSS: $cores"
  awk -v f="$full" -v s="$sliding" 'BEGIN {exit !(s * 100 < f)}' ||
    fail "sliding attention core ($sliding GFLOP) not far below full ($full GFLOP)"
else
  fail "GPT-OSS ops exited $?: $(head -c 300 "$tmp/stderr")"
fi
# 6. Linear attention: Qwen3-Next's config.json loads (Gated DeltaNet on three layers in four), its
# 'ops' lists the linear layer's chunked core far below the full layer's attention core at 32K, and a
# Mamba-2 hybrid config (Nemotron-H, whose layers are not attention + FFN) is refused in one line.
qn_layout=(--hw h100-sxm --devices 8 --ep 8 --global-batch 8 --seq-len 32768 --recompute full)
if "$bin" ops --model "$src/tests/data/hf/qwen3-next-80b-a3b-config.json" "${qn_layout[@]}" >"$tmp/qn-ops" 2>"$tmp/stderr"; then
  full=$(awk '/^moe layer/ {k=1} /^attention_core/ && k {print $3; exit}' "$tmp/qn-ops")
  linear=$(awk '/^moe, linear gated_deltanet layer/ {k=1} /^linear_core/ && k {print $3; exit}' "$tmp/qn-ops")
  [ -n "$full" ] && [ -n "$linear" ] || fail "moesim ops does not show Qwen3-Next's attention and linear cores"
  awk -v f="$full" -v l="$linear" 'BEGIN {exit !(l * 10 < f)}' ||
    fail "Gated DeltaNet core ($linear GFLOP) not far below the full attention core ($full GFLOP) at 32K"
else
  fail "Qwen3-Next config.json ops exited $?: $(head -c 300 "$tmp/stderr")"
fi
"$bin" simulate --model "$src/tests/data/hf/nemotron-h-8b-config.json" --hw h100-sxm --devices 8 \
  --global-batch 8 --seq-len 4096 >/dev/null 2>"$tmp/stderr"
status=$?
[ "$status" -eq 2 ] || fail "Nemotron-H config.json exited $status, expected 2"
grep -q "hybrid_override_pattern" "$tmp/stderr" || fail "Nemotron-H refusal does not name hybrid_override_pattern"
[ "$(wc -l <"$tmp/stderr")" -eq 1 ] || fail "Nemotron-H refusal is not one line"
# 7. DeepSeek sparse attention: V3.2's config.json simulates at 128K and says so; 'ops' shows the indexer
# and the top-2048 core, together far below V3's dense MLA core on the same layout.
ds_layout=(--hw h100-sxm --devices 256 --ep 32 --pp 8 --cp 8 --seq-len 131072 --global-batch 32 --recompute full)
if "$bin" simulate --model "$src/tests/data/hf/deepseek-v32-config.json" "${ds_layout[@]}" >"$tmp/v32" 2>"$tmp/stderr"; then
  grep -q "DSA indexer over s keys, core over the top 2048" "$tmp/v32" || fail "DeepSeek-V3.2 simulate does not state its DSA"
else
  fail "DeepSeek-V3.2 config.json 128K simulate exited $?: $(head -c 300 "$tmp/stderr")"
fi
"$bin" ops --model deepseek-v3.2 "${ds_layout[@]}" >"$tmp/v32-ops" 2>"$tmp/stderr" || fail "DeepSeek-V3.2 ops exited $?"
"$bin" ops --model deepseek-v3-671b "${ds_layout[@]}" >"$tmp/v3-ops" 2>"$tmp/stderr" || fail "DeepSeek-V3 ops exited $?"
sparse=$(awk '/^moe, DSA top-2048 layer/ {k=1} k && /^(indexer_scores|attention_core) / {sum += $3} /^total/ {k=0} END {print sum}' "$tmp/v32-ops")
dense=$(awk '/^moe layer/ {k=1} k && /^attention_core / {print $3; exit}' "$tmp/v3-ops")
[ -n "$sparse" ] && [ -n "$dense" ] || fail "moesim ops does not show the DSA and dense MLA cores: '$sparse' '$dense'"
awk -v s="$sparse" -v d="$dense" 'BEGIN {exit !(s * 3 < d)}' ||
  fail "DSA indexer + core ($sparse GFLOP) not below a third of dense MLA's core ($dense GFLOP) at 128K"
# 8. DeepSeek-V4: its config.json simulates on the Flash recipe's layout and says how its compressed layers
# count; 'ops' prints one table for each of its three layer kinds (the MTP layer's too), and at 128K a
# compressed-sparse layer's indexer + core stay below a quarter of V3.2's DSA layer on the same layout (its
# indexer scores s/4 compressed keys, not s; its core 128 + 512 entries for 64 heads, not 2048 for 128).
v4_layout=(--hw gb200-nvl72 --devices 128 --ep 64 --global-batch 2048 --seq-len 4096 --recompute selective --precision fp8)
if "$bin" simulate --model "$src/tests/data/hf/deepseek-v4-flash-config.json" "${v4_layout[@]}" >"$tmp/v4" 2>"$tmp/stderr"; then
  grep -q "compressed layers: indexer over s/4 keys, top 512 of them, or all s/128" "$tmp/v4" ||
    fail "DeepSeek-V4 simulate does not state its compressed layers"
else
  fail "DeepSeek-V4 config.json simulate exited $?: $(head -c 300 "$tmp/stderr")"
fi
"$bin" ops --model deepseek-v4-flash "${v4_layout[@]}" >"$tmp/v4-ops" 2>"$tmp/stderr" || fail "DeepSeek-V4 ops exited $?"
for title in "moe, sliding window 128 layer" "moe, compressed sparse 1:4, top-512, window 128 layer" \
             "moe, compressed 1:128, window 128 layer" "mtp layer"; do
  grep -q "^$title" "$tmp/v4-ops" || fail "DeepSeek-V4 ops has no table '$title'"
done
"$bin" ops --model deepseek-v4-flash "${ds_layout[@]}" >"$tmp/v4-ops-128k" 2>"$tmp/stderr" || fail "DeepSeek-V4 128K ops exited $?"
csa=$(awk '/^moe, compressed sparse/ {k=1} k && /^(indexer_scores|attention_core) / {sum += $3} /^total/ {k=0} END {print sum}' "$tmp/v4-ops-128k")
[ -n "$csa" ] && [ -n "$sparse" ] || fail "moesim ops does not show V4's indexer and core: '$csa'"
awk -v c="$csa" -v s="$sparse" 'BEGIN {exit !(c * 4 < s)}' ||
  fail "V4 compressed-sparse indexer + core ($csa GFLOP) not below a quarter of V3.2's DSA ($sparse GFLOP) at 128K"

finish "simulate CLI"
