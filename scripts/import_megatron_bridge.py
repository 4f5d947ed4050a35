#!/usr/bin/env python3
"""Write validation/megatron_bridge_runs.json: the dense Llama 3 pre-training rows of NVIDIA
Megatron-Bridge's published performance summary (NeMo 25.11 container) as moesim validation records.

    python3 scripts/import_megatron_bridge.py [--out PATH]

Source table: NVIDIA-NeMo/Megatron-Bridge docs/performance-summary.md, section "25.11 NeMo Container",
read at commit 00b7660be0254ac6f95f44164ddd0c3e9cc798ed. Its columns give the layout, batch, precision
and the measured tokens/s per GPU. What the table leaves out (recompute, CUDA graphs, TP overlap, CPU
activation offload, the pipeline split) comes from the performance recipes the page points to
(scripts/performance/ in the same repository), at the commits named in each record's assumptions.

The metric is tokens/s (tokens/s per GPU x GPUs): it needs no FLOP-counting convention. The table's
model TFLOP/s per GPU is kept under measured.other. Only the FP8 current-scaling (FP8-CS) figures are
recorded; the bracketed MXFP8 ones would get the same prediction (moesim does not tell the two apart).
The MoE rows (DeepSeek-V3, Qwen3, GPT-OSS) are not imported yet.

Python 3 standard library only.
"""

import argparse
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "validation" / "megatron_bridge_runs.json"

SOURCE = {
    "url": "https://github.com/NVIDIA-NeMo/Megatron-Bridge/blob/00b7660be0254ac6f95f44164ddd0c3e9cc798ed/docs/performance-summary.md",
    "title": "NVIDIA-NeMo/Megatron-Bridge docs/performance-summary.md (NeMo 25.11 container, pre-training performance)",
}
RECIPES_A = ("scripts/performance/configs/llama3/workload_base_configs.py, llama3_llm_pretrain.py, "
             "configs/llama31/workload_base_configs.py, utils/helpers.py @ 0fa501acee1ebfe3d1ab8088b638e2089d800df6")
RECIPES_L = "scripts/performance/configs/llama/llama31_workload_base_configs.py @ 0013c9a8ed4d655cd4e8ad8f918b11588e53c85d"
RECIPE_R = "src/megatron/bridge/recipes/llama/llama3.py (405B: account_for_embedding_in_pipeline_split, account_for_loss_in_pipeline_split)"

SYSTEMS = {  # table heading -> (moesim profile, hardware label)
    "DGX-GB300": ("gb300-nvl72", "GB300 NVL72"),
    "DGX-GB200": ("gb200-nvl72", "GB200 NVL72"),
    "DGX-B200": ("b200", "DGX B200"),
    "DGX-H100": ("h100-sxm", "DGX H100"),
}
MODELS = {"LLAMA3_8B": ("llama3-8b", 32), "LLAMA3_70B": ("llama3-70b", 80), "LLAMA3.1_405B": ("llama3-405b", 126)}

# system, model, GPUs, GBS, MBS, seq, FSDP, TP, PP, CP, VP (None: n/a), GA, tokens/s/GPU, model TFLOP/s/GPU
ROWS = [
    ("DGX-GB300", "LLAMA3_8B", 8, 128, 2, 8192, 0, 1, 1, 1, None, 8, 37556, 1933),
    ("DGX-GB300", "LLAMA3_70B", 64, 256, 2, 8192, 1, 1, 1, 1, 1, 2, 4520, 2030),
    ("DGX-GB300", "LLAMA3.1_405B", 256, 1536, 1, 8192, 0, 2, 8, 2, 4, 192, 999, 2522),
    ("DGX-GB200", "LLAMA3_8B", 8, 128, 2, 8192, 0, 1, 1, 1, None, 8, 31508, 1622),
    ("DGX-GB200", "LLAMA3_70B", 64, 256, 2, 8192, 1, 1, 1, 1, 1, 2, 4312, 1937),
    ("DGX-GB200", "LLAMA3.1_405B", 256, 1536, 1, 8192, 0, 4, 16, 1, 4, 384, 813, 2053),
    ("DGX-B200", "LLAMA3_8B", 8, 128, 2, 8192, 0, 1, 1, 1, None, 8, 30624, 1576),
    ("DGX-B200", "LLAMA3.1_405B", 128, 64, 1, 8192, 0, 4, 8, 2, 8, 32, 661, 1667),
    ("DGX-H100", "LLAMA3_8B", 8, 128, 1, 8192, 1, 1, 1, 1, None, 16, 14451, 744),
    ("DGX-H100", "LLAMA3_70B", 64, 128, 1, 8192, 0, 4, 8, 1, 5, 64, 1602, 719),
    ("DGX-H100", "LLAMA3.1_405B", 1024, 512, 1, 8192, 0, 8, 8, 2, 8, 64, 292, 737),
]

# Recipe settings beyond the table, per (system, model): CUDA graphs, CPU activation offload (layers),
# and what the recipe files say about the row.
RECIPE = {
    ("DGX-GB300", "LLAMA3_8B"): ("full", 0, f"preset cuda_graph_impl local, scope full_iteration ({RECIPES_A}); "
                                            "the preset's micro-batch is 4, the table's 2 is recorded"),
    ("DGX-GB200", "LLAMA3_8B"): ("none", 0, f"the FP8-CS preset sets no CUDA graphs ({RECIPES_A}; the later {RECIPES_L} "
                                            "sets local/full_iteration: ambiguous, the earlier kept)"),
    ("DGX-B200", "LLAMA3_8B"): ("full", 0, f"preset cuda_graph_impl local, scope full_iteration ({RECIPES_A})"),
    ("DGX-H100", "LLAMA3_8B"): ("none", 0, f"Megatron-FSDP optim_grads_params with nccl_ub, no CUDA graphs ({RECIPES_A})"),
    ("DGX-GB300", "LLAMA3_70B"): ("none", 20, f"Megatron-FSDP optim_grads_params, CPU activation offload of 20 layers, "
                                              f"no CUDA graphs ({RECIPES_A}; its preset GBS is 128, the table's 256 is recorded)"),
    ("DGX-GB200", "LLAMA3_70B"): ("none", 40, f"Megatron-FSDP optim_grads_params, CPU activation offload of 40 layers, "
                                              f"no CUDA graphs ({RECIPES_A}; its preset GBS is 128, the table's 256 is recorded)"),
    ("DGX-H100", "LLAMA3_70B"): ("none", 0, f"userbuffers TP overlap, no CUDA graphs ({RECIPES_A})"),
    ("DGX-GB300", "LLAMA3.1_405B"): ("none", 0, f"the table's layout is the GB300_FP8_MX_V2 preset ({RECIPES_L}; the "
                                                "FP8-CS preset there is TP4 PP8 CP1): no CUDA graphs, no offload"),
    ("DGX-GB200", "LLAMA3.1_405B"): ("none", 0, f"GB200_FP8_CS_V2 preset ({RECIPES_L}): no FSDP, no offload, no CUDA graphs"),
    ("DGX-B200", "LLAMA3.1_405B"): ("none", 0, f"preset ({RECIPES_A}): no CUDA graphs"),
    ("DGX-H100", "LLAMA3.1_405B"): ("none", 0, f"preset ({RECIPES_A}): no CUDA graphs"),
}


def pipeline_split(layers, stages):
    """Megatron's account_for_embedding/loss_in_pipeline_split: the embedding and the loss count as
    one layer each, the layers + 2 slots are split evenly over the virtual stages."""
    slots = (layers + 2) // stages
    if slots * stages != layers + 2:
        raise SystemExit(f"{layers} layers + 2 do not split over {stages} virtual stages")
    return [slots - 1] + [slots] * (stages - 2) + [slots - 1]


def record(row):
    system, model, gpus, gbs, mbs, seq, fsdp, tp, pp, cp, vp, ga, tokens, tflops = row
    profile, label = SYSTEMS[system]
    name, layers = MODELS[model]
    graphs, offload_layers, recipe_note = RECIPE[(system, model)]
    dp = gpus // (tp * pp * cp)
    if dp * tp * pp * cp != gpus or gbs != mbs * dp * ga:
        raise SystemExit(f"{system} {model}: GPUs, batch and GA do not agree")
    vpp = vp or 1
    layout = {
        "tp": tp, "pp": pp, "vpp": vpp, "ep": 1, "etp": 1, "cp": cp,
        "sequence_parallel": tp > 1,
        "micro_batch": mbs, "global_batch": gbs, "seq_len": seq,
        "recompute": "none",
        "schedule": "interleaved" if vpp > 1 else "1f1b",
        "distributed_optimizer": True,
        "precision": "fp8",
        "cross_entropy": "fused",
        "main_grads": "bf16",
        "cuda_graphs": graphs,
        "overlap": {"ep_all_to_all": False, "tp_comm": tp > 1, "dp_grad_reduce": True, "dp_param_gather": True},
    }
    assumptions = {
        "recompute": f"no Llama preset sets recompute_num_layers ({RECIPES_A}): none",
        "cuda_graphs": recipe_note,
        "sequence_parallel": f"WorkloadBaseConfig sets sequence_parallel = TP > 1 ({RECIPES_A})",
        "overlap": "the recipe's DDP config: overlap_grad_reduce, overlap_param_gather, distributed optimizer; "
                   "TP communication overlap (userbuffers) where TP > 1",
        "precision": "FP8-CS: Transformer Engine FP8 current (tensorwise) scaling, fp8 hybrid, FP8 parameter gather",
        "cross_entropy": "set_common_perf_overrides: cross_entropy_fusion_impl te (fused)",
        "main_grads": "the FP8-CS mixed-precision config and the DDP config set grad_reduce_in_fp32 False: bf16 main "
                      "gradients (src/megatron/bridge/training/mixed_precision.py @ 05097809102de3cbe888267e7d701868165153d8). "
                      "Not modelled: fp8_param_gather keeps the model's parameters in FP8 (1 B instead of 2)",
    }
    if fsdp:
        layout["zero_stage"] = 3
        assumptions["zero_stage"] = ("FSDP 1: Megatron-FSDP with data_parallel_sharding_strategy optim_grads_params "
                                     "(parameters, gradients and optimizer states sharded: ZeRO-3)")
    if offload_layers:
        layout["activation_swap"] = offload_layers / layers
        assumptions["activation_swap"] = (f"CPU activation offload of {offload_layers} of {layers} layers "
                                          f"(cpu_offloading_num_layers, weights not offloaded): a {offload_layers}/{layers} share")
    if vpp > 1 and model == "LLAMA3.1_405B":
        layout["pipeline_layers"] = pipeline_split(layers, pp * vpp)
        assumptions["pipeline_layers"] = f"{RECIPE_R}: (126 + 2) slots over {pp * vpp} virtual stages"
    return {
        "id": f"megatron-bridge-25.11-{system.lower()}-{name}-fp8cs-{gpus}gpu",
        "source": dict(SOURCE, where=f"section '25.11 NeMo Container', System: {system}, row {model} "
                                     f"(FP8-CS, {gpus} GPUs, GBS {gbs}, MBS {mbs}, TP{tp} PP{pp} CP{cp} VP{vp or 'n/a'}, "
                                     f"FSDP {fsdp}, GA {ga})"),
        "model": name,
        "hardware": {"profile": profile, "devices": gpus},
        "layout": layout,
        "assumptions": assumptions,
        "measured": {"tokens_per_s": tokens * gpus,
                     "other": {"tokens_per_s_per_gpu": tokens, "model_tflops_per_s_per_gpu": tflops}},
        "convention": "none",
        "notes": f"{label}; Megatron-Bridge performance recipe (mock data, vocabulary 128256 padded, sequence 8192).",
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    records = [record(r) for r in ROWS]
    args.out.write_text(json.dumps(records, indent=2) + "\n")
    print(f"wrote {len(records)} records to {args.out}")


if __name__ == "__main__":
    main()
