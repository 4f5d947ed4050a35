#!/usr/bin/env python3
"""MoE granularity scan: predicted MFU and tokens/s against experts x top-k at fixed total and active
parameters, with the MoE layer's time per part, on H100 and Ascend 910B2 (issue 25).

The base is Qwen3-30B-A3B (models/qwen3-30b-a3b.json: 128 experts of width 768, top-8) on the layout of the
Megatron-LM moe_recipes run mcore-moe-recipe-qwen3_30b-h100-bf16_32gpu_tp1pp1ep8 (validation/published_runs.json:
32 devices, EP 8, micro-batch 1, global batch 256, sequence 4096). Total expert parameters per layer are
experts x 3 x hidden x width and active ones top_k x 3 x hidden x width, so both stay fixed when
experts x width and top_k x width do: width = 98304 / experts, top_k = experts / 16 (16x1 .. 512x32; every
other weight is unchanged). Each point runs `moesim simulate` (MFU, tokens/s) and `moesim ops` (the MoE
layer's forward + backward time per op of one microbatch, summed into router, permutation, dispatch and
combine, grouped GEMMs, activation). Measured runs of the validation files with this model, layout and
hardware are placed on the scan: measured tokens/s = the point's predicted tokens/s x measured / predicted of
`moesim validate` for that run.

Usage: scripts/granularity_scan.py [--moesim build/moesim] [--hw h100-sxm ascend-910b2] [--markdown]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE_RUN = "mcore-moe-recipe-qwen3_30b-h100-bf16_32gpu_tp1pp1ep8"
EXPERT_WIDTH_PRODUCT = 128 * 768  # experts x width: total expert parameters per layer / (3 x hidden)
EXPERTS_PER_ACTIVE = 16           # experts / top_k: active expert parameters = total / 16
EXPERT_COUNTS = [16, 32, 64, 128, 256, 512]
# MoE layer ops by part (costmodels/moe_layer.cpp names).
PARTS = {
    "router": ("router", "router_score", "router_topk", "router_aux_loss", "router_histogram"),
    "permutation": ("permute_index", "permute", "unpermute_probs", "unpermute"),
    "dispatch+combine": ("ep_dispatch", "ep_combine", "ep_all_gather", "ep_reduce_scatter"),
    "grouped GEMM": ("expert_fc1", "expert_fc2"),
    "activation": ("expert_act",),
}


def run(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit("granularity_scan: %s exited %d: %s" % (" ".join(cmd[:2]), done.returncode, done.stderr.strip()[:400]))
    return done.stdout


def moe_layer_ops(ops_text):
    """The rows of the MoE layer table of `moesim ops`: {name: kind, gflop, mb, fwd_us, bwd_us}."""
    lines = ops_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("moe layer"))
    rows = {}
    for line in lines[start + 2:]:
        if line.startswith("total") or not line.strip():
            break
        f = line.split()
        if len(f) >= 8 and f[0] != "algorithm":
            # name kind [shape ...] GFLOP MB-hbm fwd-us bwd-us bound eff
            rows[f[0]] = {"kind": f[1], "gflop": float(f[-6]), "mb": float(f[-5]), "fwd_us": float(f[-4]),
                          "bwd_us": float(f[-3])}
    return rows


def moe_layer_parts(ops_text):
    """Forward + backward microseconds per part of the MoE layer."""
    rows = moe_layer_ops(ops_text)
    return {part: sum(rows[op]["fwd_us"] + rows[op]["bwd_us"] for op in ops if op in rows) for part, ops in PARTS.items()}


def measured_points(moesim, hw):
    """{experts: measured / predicted} for validation runs of this base model, layout and hardware."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "v.json")
        run([moesim, "validate", os.path.join(ROOT, "validation/published_runs.json"), "--json", out])
        scored = json.load(open(out))["runs"]
    points = {}
    for r in scored:
        if r["id"] == BASE_RUN and r["hardware"] == hw and "error_pct" in r:
            points[128] = 1.0 / (1.0 + r["error_pct"] / 100.0)
    return points


def scan(moesim, hw, layout, model):
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        layout_file = os.path.join(tmp, "layout.json")
        json.dump(layout, open(layout_file, "w"))
        for experts in EXPERT_COUNTS:
            m = json.loads(json.dumps(model))
            m["name"] = "qwen3-30b-a3b-%dx%d" % (experts, experts // EXPERTS_PER_ACTIVE)
            m["moe"]["experts"] = experts
            m["moe"]["top_k"] = experts // EXPERTS_PER_ACTIVE
            m["moe"]["expert_intermediate"] = EXPERT_WIDTH_PRODUCT // experts
            m.pop("published_params", None)  # the variants have the base's parameter counts by construction
            model_file = os.path.join(tmp, m["name"] + ".json")
            json.dump(m, open(model_file, "w"))
            report_file = os.path.join(tmp, "report.json")
            run([moesim, "simulate", "--model", model_file, "--hw", hw, "--layout", layout_file, "--json", report_file])
            report = json.load(open(report_file))
            ops = run([moesim, "ops", "--model", model_file, "--hw", hw, "--layout", layout_file])
            rows.append({"experts": experts, "top_k": m["moe"]["top_k"], "width": m["moe"]["expert_intermediate"],
                         "mfu": report["mfu"], "tokens_per_s": report["tokens_per_s"],
                         "fits": report["memory"].get("fits", True), "parts_us": moe_layer_parts(ops)})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moesim", default=os.path.join(ROOT, "build/moesim"))
    parser.add_argument("--hw", nargs="+", default=["h100-sxm", "ascend-910b2"])
    parser.add_argument("--markdown", action="store_true", help="a README table instead of JSON")
    args = parser.parse_args()
    published = json.load(open(os.path.join(ROOT, "validation/published_runs.json")))
    record = next(r for r in published if r["id"] == BASE_RUN)
    layout = dict(record["layout"], devices=record["hardware"]["devices"])
    model = json.load(open(os.path.join(ROOT, "models/qwen3-30b-a3b.json")))
    result = {}
    for hw in args.hw:
        rows = scan(args.moesim, hw, layout, model)
        for experts, ratio in measured_points(args.moesim, hw).items():
            for row in rows:
                if row["experts"] == experts:
                    row["measured_tokens_per_s"] = row["tokens_per_s"] * ratio
        result[hw] = rows
    if not args.markdown:
        json.dump(result, sys.stdout, indent=1)
        print()
        return
    parts = list(PARTS)
    print("| hardware | experts x top-k (width) | MFU | tokens/s | measured tokens/s | " +
          " | ".join(p + " (ms)" for p in parts) + " |")
    print("|---|---|---:|---:|---:|" + "---:|" * len(parts))
    for hw, rows in result.items():
        for r in rows:
            measured = "%.0f" % r["measured_tokens_per_s"] if "measured_tokens_per_s" in r else ""
            print("| %s | %dx%d (%d)%s | %.1f%% | %.0f | %s | %s |" % (
                hw, r["experts"], r["top_k"], r["width"], "" if r["fits"] else " (does not fit)", 100 * r["mfu"],
                r["tokens_per_s"], measured, " | ".join("%.2f" % (r["parts_us"][p] / 1000) for p in parts)))


if __name__ == "__main__":
    main()
