#!/usr/bin/env python3
"""Write validation/megatron_bridge_runs.json: the dense Llama 3 pre-training rows of NVIDIA
Megatron-Bridge's published performance summaries (NeMo 25.11 and 26.02 containers) as moesim validation
records.

    python3 scripts/import_megatron_bridge.py [--out PATH]

Source tables: NVIDIA-NeMo/Megatron-Bridge docs/performance-summary.md, section "25.11 NeMo Container",
read at commit 00b7660be0254ac6f95f44164ddd0c3e9cc798ed, and docs/performance-summary-archive.md, section
"26.02 NeMo Container" (commit 0a25f911b2ed6c6905a539504fdb8e5b40e3438b). Their columns give the layout,
batch, precision and the measured tokens/s per GPU. What the table leaves out (recompute, CUDA graphs, TP overlap, CPU
activation offload, the pipeline split) comes from the performance recipes the page points to
(scripts/performance/ in the same repository), at the commits named in each record's assumptions.

The metric is tokens/s (tokens/s per GPU x GPUs): it needs no FLOP-counting convention. The table's
model TFLOP/s per GPU is kept under measured.other. In 25.11 only the FP8 current-scaling (FP8-CS) figures
are recorded; the bracketed MXFP8 ones would get the same prediction (moesim does not tell the two apart).
26.02's MXFP8 rows have layouts of their own and are recorded; its NVFP4 rows are not (no FP4 precision).
The MoE rows (DeepSeek-V3, Qwen3, GPT-OSS) are not imported.

Python 3 standard library only.
"""

import argparse
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "validation" / "megatron_bridge_runs.json"

SOURCES = {  # release -> source of its table
    "25.11": {
        "url": "https://github.com/NVIDIA-NeMo/Megatron-Bridge/blob/00b7660be0254ac6f95f44164ddd0c3e9cc798ed/docs/performance-summary.md",
        "title": "NVIDIA-NeMo/Megatron-Bridge docs/performance-summary.md (NeMo 25.11 container, pre-training performance)",
        "section": "25.11 NeMo Container",
    },
    "26.02": {
        "url": "https://github.com/NVIDIA-NeMo/Megatron-Bridge/blob/0a25f911b2ed6c6905a539504fdb8e5b40e3438b/docs/performance-summary-archive.md",
        "title": "NVIDIA-NeMo/Megatron-Bridge docs/performance-summary-archive.md (NeMo 26.02 container, pre-training performance)",
        "section": "26.02 NeMo Container",
    },
}
RECIPES_A = ("scripts/performance/configs/llama3/workload_base_configs.py, llama3_llm_pretrain.py, "
             "configs/llama31/workload_base_configs.py, utils/helpers.py @ 0fa501acee1ebfe3d1ab8088b638e2089d800df6")
RECIPES_L = "scripts/performance/configs/llama/llama31_workload_base_configs.py @ 0013c9a8ed4d655cd4e8ad8f918b11588e53c85d"
RECIPES_70B_V2 = "scripts/performance/configs/llama/llama3_workload_base_configs.py @ 3dafb00ae7041e3a0d0ec598eed055c0a7887ae4"
RECIPES_405B_V2 = "scripts/performance/configs/llama/llama31_workload_base_configs.py @ 3d277f69a3bd6b81dccdd0cc1d756b168e929004"
RECIPE_R = "src/megatron/bridge/recipes/llama/llama3.py (405B: account_for_embedding_in_pipeline_split, account_for_loss_in_pipeline_split)"
PRECISION = {
    "FP8-CS": "Transformer Engine FP8 current (tensorwise) scaling, fp8 hybrid, FP8 parameter gather",
    "FP8-MX": "MXFP8 (e4m3 with 32-element block scales), FP8 parameter gather",
}
FP8_RECIPE = {"FP8-CS": "tensorwise", "FP8-MX": "mxfp8"}  # moesim's layout fp8_recipe of each table precision

SYSTEMS = {  # table heading -> (moesim profile, hardware label)
    "DGX-GB300": ("gb300-nvl72", "GB300 NVL72"),
    "DGX-GB200": ("gb200-nvl72", "GB200 NVL72"),
    "DGX-B200": ("b200", "DGX B200"),
    "DGX-H100": ("h100-sxm", "DGX H100"),
}
MODELS = {"LLAMA3_8B": ("llama3-8b", 32), "LLAMA3_70B": ("llama3-70b", 80), "LLAMA3.1_405B": ("llama3-405b", 126)}


def row(release, system, model, precision, gpus, gbs, mbs, fsdp, tp, pp, cp, vp, tokens, tflops, graphs="none",
        offload_layers=0, recipe=""):
    """One table row (sequence 8192) and what its recipe adds: CUDA graphs, CPU-offloaded layers, where read."""
    return dict(release=release, system=system, model=model, precision=precision, gpus=gpus, gbs=gbs, mbs=mbs,
                fsdp=fsdp, tp=tp, pp=pp, cp=cp, vp=vp, tokens=tokens, tflops=tflops, graphs=graphs,
                offload_layers=offload_layers, recipe=recipe)


ROWS = [
    # 25.11: the dense FP8-CS rows (the bracketed FP8-MX figures would get the same prediction).
    row("25.11", "DGX-GB300", "LLAMA3_8B", "FP8-CS", 8, 128, 2, 0, 1, 1, 1, None, 37556, 1933, "full", 0,
        f"preset cuda_graph_impl local, scope full_iteration ({RECIPES_A}); the preset's micro-batch is 4, the table's 2 is recorded"),
    row("25.11", "DGX-GB300", "LLAMA3_70B", "FP8-CS", 64, 256, 2, 1, 1, 1, 1, 1, 4520, 2030, "none", 20,
        f"Megatron-FSDP optim_grads_params, CPU activation offload of 20 layers, no CUDA graphs ({RECIPES_A}; "
        "its preset GBS is 128, the table's 256 is recorded)"),
    row("25.11", "DGX-GB300", "LLAMA3.1_405B", "FP8-CS", 256, 1536, 1, 0, 2, 8, 2, 4, 999, 2522, "none", 0,
        f"the table's layout is the GB300_FP8_MX_V2 preset ({RECIPES_L}; the FP8-CS preset there is TP4 PP8 CP1): "
        "no CUDA graphs, no offload"),
    row("25.11", "DGX-GB200", "LLAMA3_8B", "FP8-CS", 8, 128, 2, 0, 1, 1, 1, None, 31508, 1622, "none", 0,
        f"the FP8-CS preset sets no CUDA graphs ({RECIPES_A}; the later {RECIPES_L} sets local/full_iteration: "
        "ambiguous, the earlier kept)"),
    row("25.11", "DGX-GB200", "LLAMA3_70B", "FP8-CS", 64, 256, 2, 1, 1, 1, 1, 1, 4312, 1937, "none", 40,
        f"Megatron-FSDP optim_grads_params, CPU activation offload of 40 layers, no CUDA graphs ({RECIPES_A}; "
        "its preset GBS is 128, the table's 256 is recorded)"),
    row("25.11", "DGX-GB200", "LLAMA3.1_405B", "FP8-CS", 256, 1536, 1, 0, 4, 16, 1, 4, 813, 2053, "none", 0,
        f"GB200_FP8_CS_V2 preset ({RECIPES_L}): no FSDP, no offload, no CUDA graphs"),
    row("25.11", "DGX-B200", "LLAMA3_8B", "FP8-CS", 8, 128, 2, 0, 1, 1, 1, None, 30624, 1576, "full", 0,
        f"preset cuda_graph_impl local, scope full_iteration ({RECIPES_A})"),
    row("25.11", "DGX-B200", "LLAMA3.1_405B", "FP8-CS", 128, 64, 1, 0, 4, 8, 2, 8, 661, 1667, "none", 0,
        f"preset ({RECIPES_A}): no CUDA graphs"),
    row("25.11", "DGX-H100", "LLAMA3_8B", "FP8-CS", 8, 128, 1, 1, 1, 1, 1, None, 14451, 744, "none", 0,
        f"Megatron-FSDP optim_grads_params with nccl_ub, no CUDA graphs ({RECIPES_A})"),
    row("25.11", "DGX-H100", "LLAMA3_70B", "FP8-CS", 64, 128, 1, 0, 4, 8, 1, 5, 1602, 719, "none", 0,
        f"userbuffers TP overlap, no CUDA graphs ({RECIPES_A})"),
    row("25.11", "DGX-H100", "LLAMA3.1_405B", "FP8-CS", 1024, 512, 1, 0, 8, 8, 2, 8, 292, 737, "none", 0,
        f"preset ({RECIPES_A}): no CUDA graphs"),
    # 26.02: "FP8" is FP8-CS (an earlier copy of the page labels these rows so); NVFP4 rows are left out
    # (moesim has no FP4 precision).
    row("26.02", "DGX-GB300", "LLAMA3_70B", "FP8-MX", 64, 256, 1, 0, 1, 4, 1, 5, 4596, 2064, "none", 0,
        f"LLAMA3_70B_PRETRAIN_CONFIG_GB300_FP8_MX_V2 ({RECIPES_70B_V2}): no recompute, CUDA graphs or offload"),
    row("26.02", "DGX-GB200", "LLAMA3_70B", "FP8-MX", 64, 256, 1, 0, 2, 4, 1, 5, 3613, 1623, "none", 0,
        f"LLAMA3_70B_PRETRAIN_CONFIG_GB200_FP8_MX_V2 ({RECIPES_70B_V2}): userbuffers TP overlap; no recompute, "
        "CUDA graphs or offload"),
    row("26.02", "DGX-GB300", "LLAMA3_70B", "FP8-CS", 64, 256, 2, 1, 1, 1, 1, None, 5003, 2248, "none", 20,
        f"LLAMA3_70B_PRETRAIN_CONFIG_GB300_FP8_CS_V2 ({RECIPES_70B_V2}): Megatron-FSDP optim_grads_params, CPU "
        "activation offload of 20 layers, no CUDA graphs"),
    row("26.02", "DGX-GB200", "LLAMA3_70B", "FP8-CS", 64, 256, 2, 1, 1, 1, 1, None, 4040, 1815, "none", 40,
        f"LLAMA3_70B_PRETRAIN_CONFIG_GB200_FP8_CS_V2 ({RECIPES_70B_V2}): Megatron-FSDP optim_grads_params, CPU "
        "activation offload of 40 layers, no CUDA graphs"),
    row("26.02", "DGX-H100", "LLAMA3_70B", "FP8-CS", 64, 256, 1, 0, 4, 8, 1, 5, 1621, 728, "none", 0,
        f"LLAMA3_70B_PRETRAIN_CONFIG_H100_FP8_CS_V2 ({RECIPES_70B_V2}): userbuffers TP overlap, no CUDA graphs"),
    row("26.02", "DGX-GB300", "LLAMA3.1_405B", "FP8-MX", 256, 1536, 1, 0, 2, 8, 2, 4, 931, 2349, "none", 0,
        f"LLAMA31_405B_PRETRAIN_CONFIG_GB300_FP8_MX_V2 ({RECIPES_405B_V2}): userbuffers TP overlap, no CUDA graphs"),
    row("26.02", "DGX-GB200", "LLAMA3.1_405B", "FP8-MX", 256, 1536, 1, 0, 4, 16, 1, 8, 786, 1983, "none", 0,
        f"LLAMA31_405B_PRETRAIN_CONFIG_GB200_FP8_MX_V2 ({RECIPES_405B_V2}): userbuffers TP overlap, no CUDA graphs"),
    row("26.02", "DGX-GB300", "LLAMA3.1_405B", "FP8-CS", 256, 1536, 1, 0, 4, 8, 1, 4, 988, 2495, "none", 0,
        f"LLAMA31_405B_PRETRAIN_CONFIG_GB300_FP8_CS_V2 ({RECIPES_405B_V2}): no FSDP, no offload, no CUDA graphs"),
    row("26.02", "DGX-GB200", "LLAMA3.1_405B", "FP8-CS", 256, 1536, 1, 0, 4, 16, 1, 4, 793, 2004, "none", 0,
        f"LLAMA31_405B_PRETRAIN_CONFIG_GB200_FP8_CS_V2 ({RECIPES_405B_V2}): no FSDP, no offload, no CUDA graphs"),
    row("26.02", "DGX-H100", "LLAMA3.1_405B", "FP8-CS", 1024, 1536, 1, 0, 8, 8, 2, 8, 311, 784, "none", 0,
        f"LLAMA31_405B_PRETRAIN_CONFIG_H100_FP8_CS_V2 ({RECIPES_405B_V2}): userbuffers TP overlap, no CUDA graphs"),
]


def pipeline_split(layers, stages):
    """Megatron's account_for_embedding/loss_in_pipeline_split: the embedding and the loss count as
    one layer each, the layers + 2 slots are split evenly over the virtual stages."""
    slots = (layers + 2) // stages
    if slots * stages != layers + 2:
        raise SystemExit(f"{layers} layers + 2 do not split over {stages} virtual stages")
    return [slots - 1] + [slots] * (stages - 2) + [slots - 1]


def record(r):
    profile, label = SYSTEMS[r["system"]]
    name, layers = MODELS[r["model"]]
    gpus, gbs, mbs, tp, pp, cp = r["gpus"], r["gbs"], r["mbs"], r["tp"], r["pp"], r["cp"]
    dp = gpus // (tp * pp * cp)
    if dp * tp * pp * cp != gpus or gbs % (mbs * dp) != 0:
        raise SystemExit(f"{r['release']} {r['system']} {r['model']}: GPUs and batch do not agree")
    vpp = r["vp"] or 1
    layout = {
        "tp": tp, "pp": pp, "vpp": vpp, "ep": 1, "etp": 1, "cp": cp,
        "sequence_parallel": tp > 1,
        "micro_batch": mbs, "global_batch": gbs, "seq_len": 8192,
        "recompute": "none",
        "schedule": "interleaved" if vpp > 1 else "1f1b",
        "distributed_optimizer": True,
        "precision": "fp8",
        "fp8_recipe": FP8_RECIPE[r["precision"]],
        "cross_entropy": "fused",
        "main_grads": "bf16",
        "cuda_graphs": r["graphs"],
        "overlap": {"ep_all_to_all": False, "tp_comm": tp > 1, "dp_grad_reduce": True, "dp_param_gather": True},
    }
    assumptions = {
        "recompute": "no Llama preset sets recompute_num_layers or recompute_modules: none",
        "cuda_graphs": r["recipe"],
        "sequence_parallel": f"WorkloadBaseConfig sets sequence_parallel = TP > 1 ({RECIPES_A})",
        "overlap": "the recipe's DDP config: overlap_grad_reduce, overlap_param_gather, distributed optimizer; "
                   "TP communication overlap (userbuffers) where TP > 1",
        "precision": f"{r['precision']}: {PRECISION[r['precision']]}",
        "cross_entropy": "set_common_perf_overrides: cross_entropy_fusion_impl te (fused)",
        "main_grads": "the FP8 mixed-precision config and the DDP config set grad_reduce_in_fp32 False: bf16 main "
                      "gradients (src/megatron/bridge/training/mixed_precision.py @ 05097809102de3cbe888267e7d701868165153d8). "
                      "Not modelled: fp8_param_gather keeps the model's parameters in FP8 (1 B instead of 2) and casts "
                      "them on the optimizer's shard instead of at the first microbatch",
    }
    if r["fsdp"]:
        layout["zero_stage"] = 3
        assumptions["zero_stage"] = ("FSDP: Megatron-FSDP with data_parallel_sharding_strategy optim_grads_params "
                                     "(parameters, gradients and optimizer states sharded over all GPUs: ZeRO-3)")
    if r["offload_layers"]:
        layout["activation_swap"] = r["offload_layers"] / layers
        assumptions["activation_swap"] = (f"CPU activation offload of {r['offload_layers']} of {layers} layers "
                                          f"(cpu_offloading_num_layers, weights not offloaded): a "
                                          f"{r['offload_layers']}/{layers} share")
    if vpp > 1 and r["model"] == "LLAMA3.1_405B":
        layout["pipeline_layers"] = pipeline_split(layers, pp * vpp)
        assumptions["pipeline_layers"] = f"{RECIPE_R}: (126 + 2) slots over {pp * vpp} virtual stages"
    src = SOURCES[r["release"]]
    precision_tag = r["precision"].lower().replace("-", "")
    return {
        "id": f"megatron-bridge-{r['release']}-{r['system'].lower()}-{name}-{precision_tag}-{gpus}gpu",
        "source": {"url": src["url"], "title": src["title"],
                   "where": f"section '{src['section']}', {r['system']} row {r['model']} ({r['precision']}, {gpus} GPUs, "
                            f"GBS {gbs}, MBS {mbs}, TP{tp} PP{pp} CP{cp} VP{r['vp'] or 'n/a'}, FSDP {r['fsdp']})"},
        "model": name,
        "hardware": {"profile": profile, "devices": gpus},
        "layout": layout,
        "assumptions": assumptions,
        "measured": {"tokens_per_s": r["tokens"] * gpus,
                     "other": {"tokens_per_s_per_gpu": r["tokens"], "model_tflops_per_s_per_gpu": r["tflops"]}},
        "convention": "none",
        "notes": f"{label}; Megatron-Bridge {r['release']} performance recipe (mock data, vocabulary 128256 padded, "
                 "sequence 8192).",
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    records = [record(r) for r in ROWS]
    if len({r["id"] for r in records}) != len(records):
        raise SystemExit("duplicate record ids")
    args.out.write_text(json.dumps(records, indent=2) + "\n")
    print(f"wrote {len(records)} records to {args.out}")


if __name__ == "__main__":
    main()
