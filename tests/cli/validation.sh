#!/usr/bin/env bash
# The validation harness on the project's published runs: an error that grows past the threshold fails CI.
# Threshold: current MAPE 6.73% over 129 GPU/TPU runs at operator level, the default prediction (6.8% at pass level,
# `validate --pass-level`; see README "Accuracy"); lower it as the models improve. At pass level it was
# 6.6% over 127 until the two DeepSeek-V4 recipe records were scored (+28.0% and +43.7% then, +13.8% and +38.8% since
# the sparse kernels' masked index slots are timed: validation/README.md "DeepSeek-V4 recipe runs"); the other 127
# are at 6.4% (operator level, max 27.4%, DeepSeek-V3 on B200).
# The Pangu Ultra MoE run is scored with the other Ascend runs below (validation/pangu-ultra-moe.json is the
# hand-written source of its record and is skipped).
# The 21 Megatron-Bridge 25.11/26.02 Llama 3 runs (validation/megatron_bridge_runs.json, added after every
# profile was fitted, so held out for all of them): MAPE 7.50% at operator level (8.33% at pass level), max 20.2% (19.8%), all fit
# (7.16% and 7.98% before the GB200 host issue refit of issue 25 moved the 26.02 Llama 3 70B MXFP8 GB200 run +2.7 -> +11.3%).
# Memory (validation/memory_runs.json, scored apart): MAPE 4.5% over 8 runs, max 16.8% (405B 1F1B; 70B -9.8%, see
# validation/README.md "Memory" for what the model misses; 7.2% / 19.4% before the caching allocator's cache,
# allocator_cache_share, was counted in max_memory_reserved); the 4 FSDP + CP full-recompute rows -0.1..+0.6%, the
# 2 op-level selective AC rows -3.3% and -4.3%; the ceilings fail CI if it grows. Runs that ran but are
# predicted not to fit: 1 (from 15 before the loss-phase, FP8-input, Adam-moment and recompute-module settings,
# and 2 before distribute_saved_activations fitted PaLM): Llama3-8x70B folding at DP 1, allowed by id below
# (validation/README.md "Runs that ran but were predicted not to fit"); Pangu Ultra MoE fits with its Selective R/S.
set -euo pipefail
moesim=$1
root=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$moesim" validate "$root/validation/published_runs.json" \
  "$root/validation/megatron_bridge_runs.json" "$root/validation/memory_runs.json" --json "$out/validation.json" \
  --max-mape 6.8 > "$out/table.txt"
tail -10 "$out/table.txt"
python3 - "$out/validation.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
s = v["summary"]
assert s["count"] >= 129, s
scored = [r for r in v["runs"] if "error_pct" in r]
for r in scored:
    assert set(r) >= {"id", "hardware", "metric", "measured", "predicted", "error_pct"}, r
# Per-family ceilings on the calibrated families.
assert s["by_hardware"]["h100-sxm"]["mape_pct"] < 8, s["by_hardware"]["h100-sxm"]
# A100 includes the DeepSpeed ZeRO-3 baselines (per-micro-step gathers over one NIC per GPU).
assert s["by_hardware"]["a100-sxm-80g"]["mape_pct"] < 6, s["by_hardware"]["a100-sxm-80g"]
# GB200 includes eager / partial-CUDA-graph runs whose host issue time bounds the passes, and DeepSeek-V4 Flash
# (8.3%, with V4-Flash's masked sparse-kernel slots; 8.7% 9.6% before the per-expert host calls and the split at the token-count sync, issue 25).
assert s["by_hardware"]["gb200-nvl72"]["mape_pct"] < 9.1, s["by_hardware"]["gb200-nvl72"]
# B200 (15.0% at operator level, 11.6% at pass level): the DeepSeek-V3 recipe (-27.4%; -16.6% at pass level) is
# bound by its EP stream, whose all-to-alls (the alltoall stand-in for DeepEP) alone take 12.1 s of an iteration
# measured at about 11 s; the pass-level formula hid more of them than the event order lets run beside compute.
assert s["by_hardware"]["b200"]["mape_pct"] < 15.5, s["by_hardware"]["b200"]
# GB300: attention on Blackwell Ultra's doubled exponential units (moe_recipes and Megatron-Bridge runs); 7.1%
# (7.9% before; the GB200 host issue refit it shares moved its DeepSeek-V3 partial-graph run -1.5 -> -8.6%, the
# masked sparse-kernel slots V4-Pro +28.0 -> +13.8%).
assert s["by_hardware"]["gb300-nvl72"]["mape_pct"] < 7.6, s["by_hardware"]["gb300-nvl72"]
# Megatron-Bridge Llama 3 runs on GB300, GB200, B200 and H100: a source no profile was fitted to.
bridge = [r for r in scored if r["id"].startswith("megatron-bridge-")]
assert len(bridge) == 21 and all(r["fits"] for r in bridge), bridge
assert sum(abs(r["error_pct"]) for r in bridge) / len(bridge) < 8, bridge
# 20.5 (was 15): the FP8 casts are ops of their own (costmodels/fp8_cast.cpp) and TE quantises a weight once
# per iteration, not in every microbatch as the former lump on each GEMM did; that lump had held the H100 and
# B200 Llama 3 405B runs (64 and 32 microbatches of 0.4 B parameters per device) 5-6 points slower.
assert max(abs(r["error_pct"]) for r in bridge) < 20.5, bridge
# TPU v4 (PaLM, +10.8%): the model-parallel collectives are exposed.
assert s["by_hardware"]["tpu-v4"]["mape_pct"] < 12, s["by_hardware"]["tpu-v4"]
# Worst runs: DeepSeek-V3 on B200 (-27.4%, its EP stream, above), then Qwen2-57B and Mixtral 8x22B on 1024 GPUs (-21.1%,
# -20.8%, the 1F1B bubble; validation/README.md, MoE Parallel Folding).
throughput = [r for r in scored if r["metric"] != "memory"]
v4 = [r for r in throughput if r["id"].startswith("mcore-moe-recipe-deepseek_v4")]
# +13.8% Pro, +38.3% Flash (+28.0% / +43.3% before the sparse kernels' masked index slots were timed).
assert len(v4) == 2 and max(abs(r["error_pct"]) for r in v4) < 40, v4
# Fine-grained MoE (issue 25: Qwen3-30B-A3B and Qwen3-235B-A22B recipes, 128 experts of width 768 / 1536):
# 5.7% MAPE over 11 at operator level (6.2% at pass level; 7.2% before the qwen3_30b GB200 MXFP8 record took its
# recipe's TE partial CUDA graphs and the Grace host's per-expert calls and token-count sync were modelled,
# 8.2% before block-scaled FP8's Hopper rate and the per-expert FP8 casts); the bar is 5%.
fine = [r for r in throughput if "qwen3_30b" in r["id"] or "qwen3_235b" in r["id"]]
assert len(fine) == 11 and sum(abs(r["error_pct"]) for r in fine) / len(fine) < 6.0, fine
others = [r for r in throughput if r not in v4]
assert max(abs(r["error_pct"]) for r in others) < 28, max(others, key=lambda r: abs(r["error_pct"]))
# At operator level every throughput row carries its pass-level prediction (the model the sweep pre-screens with).
assert all("pass_level_error_pct" in r for r in throughput), [r["id"] for r in throughput if "pass_level_error_pct" not in r]
pass_mape = sum(abs(r["pass_level_error_pct"]) for r in throughput) / len(throughput)
assert 6.5 < pass_mape < 7.3, pass_mape  # 7.1% at pass level
memory = [r for r in scored if r["metric"] == "memory"]
assert len(memory) >= 8 and all(r["measured"] > 1e9 and r["predicted"] > 1e9 for r in memory), memory
m = s["memory"]
assert m["count"] == len(memory), m
assert m["mape_pct"] < 5.0 and m["max_abs_error_pct"] < 17.5, m
table2 = [r for r in memory if r["id"].startswith("torchtitan-t2-")]
assert len(table2) == 4 and all(abs(r["error_pct"]) < 2 for r in table2), table2
op_sac = [r for r in memory if r["id"].startswith(("torchtitan-t1-", "torchtitan-t3-"))]
assert len(op_sac) == 2 and all(abs(r["error_pct"]) < 5 for r in op_sac), op_sac
# Every record is a run that ran: a "does not fit" is a wrong memory prediction, and fails CI. None is allowed:
# the one there was, the MoE Parallel Folding Llama3-8x70B row at 128 GPUs, is skipped with its reason (its
# device count comes from Table 4's merged cells; at DP 1 it cannot hold its 67.5 GB of states plus the
# activations of 16 microbatches without recompute, and with full recompute its MFU would be 58% HFU).
not_fitting = {r["id"] for r in scored if not r["fits"]}
assert not not_fitting, not_fitting
assert len(not_fitting) == s["predicted_not_to_fit"], not_fitting
print("memory ok:", round(m["mape_pct"], 2), "% MAPE over", m["count"], "runs")
print("validation ok:", round(s["mape_pct"], 2), "% MAPE over", s["count"], "runs")
PY
# More torchtitan memory records (validation/memory_runs_extra.json: 10 rows of the Dec 2024 H100 benchmark the
# first file did not take, 2 H200 rows of June 2025): memory MAPE 5.7% over 12, max 17.0% (405B at CP 8; 6.7% / 19.6%
# before torch's interleaved warm-up and the caching allocator's cache; validation/README.md "Memory records
# (extra)"). The two H200 rows (Trainy) are held out of the cache share's fit and stay within 3%; the Table 5
# interleaved row (+2.4%, +6.4% under Megatron's all-forwards-first warm-up) stays within 4%.
"$moesim" validate "$root/validation/memory_runs_extra.json" --json "$out/memory_extra.json" > /dev/null
python3 - "$out/memory_extra.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
m = v["summary"]["memory"]
assert m["count"] == 12 and m["mape_pct"] < 6.2 and m["max_abs_error_pct"] < 17.5, m
runs = {r["id"]: r for r in v["runs"] if "error_pct" in r}
assert all(abs(r["error_pct"]) < 3 for i, r in runs.items() if "trainy" in i), runs
assert abs(runs["torchtitan-t5-llama3.1-405b-fsdp8-tp8-pp8-interleaved"]["error_pct"]) < 4, runs
not_fitting = {r["id"] for r in v["runs"] if "error_pct" in r and not r["fits"]}
assert len(not_fitting) == v["summary"]["predicted_not_to_fit"] == 0, not_fitting
print("memory (extra) ok:", round(m["mape_pct"], 2), "% MAPE over", m["count"], "runs")
PY
# KempnerForge memory records (validation/memory_runs_kempnerforge.json, 11 rows of its April 2026 H200 benchmark:
# Llama-3 7B/13B/70B, FSDP2 and TP, pure bf16, max_memory_allocated): memory MAPE 7.5%, max 11.2% (the TP rows
# 1-11% low; validation/README.md "Memory records (KempnerForge)"). Fails past 8% / 12% or on any not-fit.
"$moesim" validate "$root/validation/memory_runs_kempnerforge.json" --json "$out/memory_kf.json" > /dev/null
python3 - "$out/memory_kf.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
m = v["summary"]["memory"]
assert m["count"] == 11 and m["mape_pct"] < 8 and m["max_abs_error_pct"] < 12, m
runs = [r for r in v["runs"] if "error_pct" in r]
assert all(r["fits"] for r in runs) and v["summary"]["predicted_not_to_fit"] == 0, [r["id"] for r in runs if not r["fits"]]
# The rows without TP, where every framework memory setting of the source is modelled, stay within 12%.
assert all(abs(r["error_pct"]) < 12 for r in runs if "-tp" not in r["id"]), runs
print("memory (KempnerForge) ok:", round(m["mape_pct"], 2), "% MAPE over", m["count"], "runs")
PY
# MoE memory records (validation/memory_runs_megatron_bridge.json, validation/README.md "Memory records (Megatron-Bridge,
# MoE)"), all max_memory_allocated on H100: Qwen3-30B-A3B on 16 GPUs (EP 16, no recompute) with HybridEP (-0.3%; its
# "GiB" may be decimal GB, then +7.0%) and with the alltoall fallback of a 2026-05-17 smoke run (+8.5%), and the six rows
# of Bridge's matched Moonlight-16B-A3B recompute study on 8 GPUs (MLA, TP 2, EP 8; one workload with six
# recompute_modules lists: -0.3% to +1.6%). All were added after the model and are held out of every fit. They check
# the expert/dense split of the optimizer states, the MoE layer's saved tensors, bf16 gradient buffers and bf16 Adam
# moments, and what each Megatron-Core recompute module drops. Fails past 10% on a row (3% on a Moonlight row), 3% MAPE,
# or if one does not fit.
"$moesim" validate "$root/validation/memory_runs_megatron_bridge.json" --json "$out/memory_mb.json" > /dev/null
python3 - "$out/memory_mb.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
runs = [r for r in v["runs"] if "error_pct" in r]
assert len(runs) == 8 and all(r["metric"] == "memory" for r in runs), runs
assert all(abs(r["error_pct"]) < 10 and r["fits"] for r in runs), runs
assert v["summary"]["memory"]["mape_pct"] < 3, v["summary"]["memory"]
moonlight = {r["id"].rsplit("recompute-", 1)[1]: r for r in runs if "moonlight" in r["id"]}
assert len(moonlight) == 6 and all(abs(r["error_pct"]) < 3 for r in moonlight.values()), moonlight
# The study's ordering: each recompute list keeps less than none (mla_up_proj, moe_act), and core_attn under fused
# attention keeps about what none keeps (36.614 against 36.618 GB measured).
assert moonlight["mla-up-proj"]["predicted"] < moonlight["none"]["predicted"], moonlight
assert moonlight["moe-act"]["predicted"] < moonlight["none"]["predicted"], moonlight
assert abs(moonlight["core-attn"]["predicted"] / moonlight["none"]["predicted"] - 1) < 0.005, moonlight
print("memory (Megatron-Bridge MoE) ok:", round(v["summary"]["memory"]["mape_pct"], 2), "% MAPE over", len(runs))
PY
# Ascend runs (validation/ascend_runs.json, written by scripts/import_ascend_runs.py from the shared records and
# their launch scripts): every record parses and at least 20 are scored. Ceilings on the fitted Ascend
# profiles (README "Accuracy", validation/README.md "Ascend runs"), at operator level, the default prediction:
# MAPE 27.2% over 26 runs (pass level 26.5%), 910B 26.1% over 23 (fitted; pass level 25.2%), the 3 A3 runs, which
# take the 910B values, 36.3% (27.3% / 36.4% before ring-CP scripts without --use-cp-send-recv-overlap sent and
# received in turn). It was 29.7% before MindSpeed's allgather permutation and SequentialMLP were
# modelled, ring attention's dK/dV exchange and output merge counted and the Pangu Ultra MoE records given the
# global batch their Adaptive Pipe Overlap needs (grouped_gemm_factor refit 0.35 -> 0.45 -> 0.35 on the way); the
# host issue time is the one measured on a 910B host trace (0.080 ms per op). Fails past 27.7% (910B past 26.5%,
# A3 past 36.8%). The Pangu Ultra MoE 6K run is scored
# here once. Runs that ran but are predicted not to fit: none (DeepSeek-V3 on A3 fits with its
# --swap-optimizer, though DualPipeV is recorded as DualPipe's two parameter copies). The committed file must
# be what the importer writes.
"$moesim" validate "$root/validation/ascend_runs.json" --json "$out/ascend.json" > "$out/ascend.txt"
tail -4 "$out/ascend.txt"
python3 - "$out/ascend.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
scored = [r for r in v["runs"] if "error_pct" in r]
assert len(scored) >= 20 and v["summary"]["count"] == len(scored), (len(scored), v["summary"])
assert all(r["hardware"] in ("ascend-910b2", "ascend-910c-cm384") for r in scored), scored
assert v["summary"]["mape_pct"] < 27.7, v["summary"]
assert v["summary"]["by_hardware"]["ascend-910b2"]["mape_pct"] < 26.5, v["summary"]["by_hardware"]
assert v["summary"]["by_hardware"]["ascend-910c-cm384"]["mape_pct"] < 36.8, v["summary"]["by_hardware"]
not_fitting = {r["id"] for r in scored if not r["fits"]}
assert len(not_fitting) == v["summary"]["predicted_not_to_fit"] == 0, not_fitting
assert any(r["id"] == "pangu-ultra-moe-718b-6k-30mfu" and r["fits"] for r in scored), "Pangu 6K must fit"
# The paper's optimisations (hierarchical EP all-to-all, adaptive pipe overlap, fine-grained recompute with
# swap) take Pangu Ultra MoE from 18.9% to 30.0% MFU (x1.59): the two records' predicted ratio must be within
# 10% of it (x1.51 at 28.3% / 18.7%; x1.17 before the baseline took full recompute). Both records are also within
# 10% of their measured MFU (-0.9%, -5.6%), the issue's bar for the main job.
pangu = {r["id"]: r for r in scored if r["id"].startswith("pangu-ultra-moe-718b-")}
ratio = pangu["pangu-ultra-moe-718b-6k-30mfu"]["predicted"] / pangu["pangu-ultra-moe-718b-4k-baseline"]["predicted"]
assert abs(ratio / (0.300 / 0.189) - 1) < 0.10, ratio
assert len(pangu) == 2 and all(abs(r["error_pct"]) < 10 for r in pangu.values()), pangu
print("ascend runs ok:", len(scored), "scored of", len(v["runs"]), "MAPE", round(v["summary"]["mape_pct"], 2), "%")
PY
python3 "$root/scripts/import_ascend_runs.py" --out "$out/ascend_runs.json" > /dev/null
cmp "$out/ascend_runs.json" "$root/validation/ascend_runs.json"
