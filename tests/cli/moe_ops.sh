#!/usr/bin/env bash
# `moesim ops` of the fine-grained Qwen3-30B-A3B (128 experts of width 768, top-8) on 8 H100 and on 8
# Ascend 910B2 (EP 8): the MoE layer lists its router, permutation, dispatch, grouped GEMMs and combine as
# ops with positive times, and the times are physically possible and plausible: no GEMM faster than its
# FLOPs at the profile's peak, no memory-bound op faster than its bytes at the profile's HBM bandwidth,
# the grouped GEMMs at 10% of peak or better, and the dispatch within 0.1..10 ms for its 134 MB.
# Usage: bash moe_ops.sh MOESIM_BINARY SOURCE_DIR
set -u
bin=${1:?usage: moe_ops.sh MOESIM_BINARY SOURCE_DIR}
src=${2:?usage: moe_ops.sh MOESIM_BINARY SOURCE_DIR}
source "$src/tests/cli.bash"

for hw in h100-sxm ascend-910b2; do
  if ! "$bin" ops --model qwen3-30b-a3b --hw "$hw" --devices 8 --ep 8 --global-batch 64 --seq-len 4096 \
    >"$tmp/$hw.ops" 2>"$tmp/stderr"; then
    fail "ops qwen3-30b-a3b on $hw exited $?: $(head -c 300 "$tmp/stderr")"
    continue
  fi
  python3 - "$tmp/$hw.ops" "$src/hw_profiles/$hw.json" "$src/scripts" <<'PY' || fail "$hw: MoE layer ops (see above)"
import json, sys
sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, sys.argv[3])
from granularity_scan import moe_layer_ops
rows = moe_layer_ops(open(sys.argv[1]).read())
device = json.load(open(sys.argv[2]))["device"]
peak, hbm = device["matrix_flops"]["bf16"], device["hbm_bandwidth"]
problems = []
parts = ["router", "router_score", "router_topk", "router_aux_loss", "router_histogram", "permute_index", "permute",
         "ep_dispatch", "expert_fc1", "expert_act", "expert_fc2", "ep_combine", "unpermute_probs", "unpermute"]
for name in parts:
    r = rows.get(name)
    if r is None:
        problems.append("no row " + name)
    elif not (r["fwd_us"] > 0 and r["bwd_us"] > 0):
        problems.append(f"{name}: times {r['fwd_us']} / {r['bwd_us']} us")
for name in ("router", "expert_fc1", "expert_fc2"):
    r = rows.get(name)
    if r is None:
        continue
    floor_us = r["gflop"] * 1e9 / peak * 1e6
    if r["fwd_us"] < floor_us:
        problems.append(f"{name}: {r['fwd_us']} us beats peak ({floor_us:.1f} us)")
    if name != "router" and r["fwd_us"] > 10 * floor_us:
        problems.append(f"{name}: {r['fwd_us']} us, under 10% of peak ({floor_us:.1f} us at peak)")
    if r["kind"] != ("gemm" if name == "router" else "grouped_gemm"):
        problems.append(f"{name}: kind {r['kind']}")
for name in ("permute", "unpermute", "unpermute_probs", "expert_act"):
    r = rows.get(name)
    if r and r["fwd_us"] < r["mb"] * 1e6 / hbm * 1e6:
        problems.append(f"{name}: {r['fwd_us']} us beats HBM bandwidth for {r['mb']} MB")
for name in ("ep_dispatch", "ep_combine"):
    r = rows.get(name)
    if r and not 100 <= r["fwd_us"] <= 10000:
        problems.append(f"{name}: {r['fwd_us']} us for 134 MB")
if problems:
    print("\n".join(problems))
    sys.exit(1)
print(sys.argv[2].split("/")[-1], "MoE layer parts:", ", ".join(f"{n} {rows[n]['fwd_us']:.0f} us" for n in parts))
PY
done
# The flex dispatcher (DeepEP / HybridEP) sends a token once per member holding one of its experts: on 8
# H100 with top-8 its dispatch is named deduplicated and is 1 - 8(1 - (7/8)^8)/8 = 34% shorter.
printf '{"devices": 8, "ep": 8, "global_batch": 64, "seq_len": 4096, "moe_dispatcher": "flex"}' >"$tmp/flex.json"
if "$bin" ops --model qwen3-30b-a3b --hw h100-sxm --layout "$tmp/flex.json" >"$tmp/flex.ops" 2>"$tmp/stderr"; then
  python3 - "$tmp/flex.ops" "$tmp/h100-sxm.ops" "$src/scripts" <<'PY' || fail "flex dispatch (see above)"
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[3])
from granularity_scan import moe_layer_ops
flex, a2a = (moe_layer_ops(open(f).read()) for f in sys.argv[1:3])
ratio = flex["ep_dispatch"]["fwd_us"] / a2a["ep_dispatch"]["fwd_us"]
text = open(sys.argv[1]).read()
if "algorithm deduplicated(" not in text or not 0.6 < ratio < 0.72:
    sys.exit(f"flex dispatch {flex['ep_dispatch']['fwd_us']} us against alltoall {a2a['ep_dispatch']['fwd_us']} us")
PY
else
  fail "ops with moe_dispatcher flex exited $?: $(head -c 300 "$tmp/stderr")"
fi
finish "moe_ops"
