#!/usr/bin/env python3
"""Convert the shared collection of published training runs into moesim's
validation record format.

    python3 scripts/import_published_runs.py [--src PATH] [--out PATH]

Reads  ../shared/validation/published_runs.json (relative to the repo root)
Writes validation/published_runs.json

The record format, the FLOP-counting conventions and the skip rules are
described in validation/README.md.  In short, every output record has
id, source, model, hardware, layout, assumptions, measured, convention and
notes; records the harness must not score also carry skip_reason, and
figures computed by someone other than the source sit under derived.

Rules applied here:
  * measured holds only what the source states, in SI units, as fractions
    (FLOP/s, tokens/s, seconds, bytes; 0.462 rather than 46.2 %).
  * every layout value the source does not state is filled with a chosen
    value, and assumptions[<field>] says why that value was chosen.
  * a model is a built-in name only when the record's architecture is
    exactly that public model; everything else is an inline model object.

Python 3 standard library only.
"""

import argparse
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_SRC = ROOT.parent / "shared" / "validation" / "published_runs.json"
DEFAULT_OUT = ROOT / "validation" / "published_runs.json"
# Hand-written full record of the Pangu Ultra MoE run; the shared data set only
# has its headline, so the converted headline record borrows this layout.
PANGU_RECORD = ROOT / "validation" / "pangu-ultra-moe.json"


# --------------------------------------------------------------------------
# Source groups: id prefix -> FLOP convention and defaults for unstated values
# --------------------------------------------------------------------------

GROUPS = {
    # prefix: (group label, convention)
    "narayanan2021": ("Narayanan et al. 2021 (Megatron-LM PTD-P)", "megatron2021"),
    "korthikanti2022": ("Korthikanti et al. 2022 (selective recompute + SP)", "korthikanti2022"),
    "megatron-readme-gpt3": ("Megatron-LM README, A100 GPT-3 example", "megatron2021"),
    "megatron-readme-h100": ("Megatron-LM README, H100 scaling (Megatron-Core r0.8)", "megatron_core_2024"),
    "deepseek-v3": ("DeepSeek-V3 technical report", "none"),
    "moe-folding2025": ("MoE Parallel Folding (Megatron-Core 2025)", "megatron_core_2025"),
    "mcore-moe-recipe": ("Megatron-LM examples/moe_recipes (2026)", "megatron_core_2026_causal"),
    "palm": ("PaLM 540B", "palm"),
    "mtnlg": ("MT-NLG 530B via PaLM Table 3", "palm"),
    "bloom": ("BLOOM-176B training logs", "megatron2021"),
    "opt": ("OPT-175B", "none"),
    "pangu": ("Pangu Ultra MoE (headline only)", "pangu"),
}


def group_of(record_id):
    for prefix in GROUPS:
        if record_id.startswith(prefix):
            return prefix
    raise ValueError("no source group for " + record_id)


# Records the harness lists but does not score.

SKIP_REASONS = {
    "korthikanti2022-22B-single-layer-timing":
        "per-layer microbenchmark (Korthikanti Table 4): no per-step figure",
    "megatron-readme-h100-strong-gpt3-177b-96gpu":
        "partial: parallel layout not stated (layout below is a guess)",
    "megatron-readme-h100-strong-gpt3-177b-4608gpu":
        "partial: parallel layout not stated (layout below is a guess)",
    "deepseek-v3-pretrain-2048xH800-derived":
        "no per-step measurement: only whole-run GPU-hours (averages incl. failures, "
        "evaluation, batch ramp); the derived throughput is under 'derived'",
    "moe-folding2025-t2-mixtral8x22b-fp8-mcore-128gpu":
        "partial: parallel mapping not restated for Table 2 (layout below is a guess)",
    "moe-folding2025-t2-mixtral8x22b-fp8-folding-128gpu":
        "partial: parallel mapping not restated for Table 2 (layout below is a guess)",
    "mtnlg-530b-2240xA100-via-palm":
        "partial: layout and batch not stated by the citing source (layout below is "
        "the MT-NLG paper's, unverified)",
    "opt-175b-992xA100":
        "FLOP convention unknown ('up to 147 TFLOP/s'); TP degree not stated",
    "pangu-ultra-moe-718b-6k-ascend":
        "partial headline-only record; the full record is validation/pangu-ultra-moe.json",
    "moe-folding2025-t4-llama3-8x70b-folding-128gpu":
        "device count in doubt: Table 4's cells are merged in the transcription and this row's values were "
        "assigned in row order; at 128 GPUs the folding layout (TP8 PP16 EP8) has DP 1, so the distributed "
        "optimizer shards nothing: 3.75B parameters x 18 bytes (bf16 weights, fp32 gradients, fp32 master and "
        "Adam) = 67.5 GB per GPU before activations, 93.6 GB of 80 with the 16 microbatches 1F1B keeps on the "
        "first stage; with full recompute it fits (73.5 GB) but its stated 43.7% MFU would then be 58% HFU",
}

# Guessed layouts for skipped partial records, so that every record carries a
# complete layout.  Each entry: field -> (value, reason).
GUESSED_LAYOUTS = {
    "megatron-readme-h100-strong-gpt3-177b-96gpu": {
        "tp": (8, "not stated; guessed equal to the 177B weak-scaling row (TP8 PP6)"),
        "pp": (6, "not stated; guessed equal to the 177B weak-scaling row (TP8 PP6)"),
    },
    "megatron-readme-h100-strong-gpt3-177b-4608gpu": {
        "tp": (8, "not stated; guessed equal to the 177B weak-scaling row (TP8 PP6)"),
        "pp": (6, "not stated; guessed equal to the 177B weak-scaling row (TP8 PP6)"),
    },
    "moe-folding2025-t2-mixtral8x22b-fp8-mcore-128gpu": {
        "tp": (2, "not restated; Table 3 Mixtral-8x22B MCore mapping (BF16 row of Table 2 equals Table 3)"),
        "pp": (8, "not restated; Table 3 mapping"),
        "ep": (4, "not restated; Table 3 mapping"),
        "etp": (2, "not restated; Table 3 mapping (MCore: expert TP = TP)"),
        "cp": (1, "not restated; Table 3 mapping"),
        "global_batch": (256, "not restated; Table 3 uses GBS 256"),
    },
    "moe-folding2025-t2-mixtral8x22b-fp8-folding-128gpu": {
        "tp": (2, "not restated; Table 3 Mixtral-8x22B folding mapping"),
        "pp": (8, "not restated; Table 3 mapping"),
        "ep": (8, "not restated; Table 3 mapping"),
        "etp": (1, "not restated; Table 3 mapping"),
        "cp": (1, "not restated; Table 3 mapping"),
        "global_batch": (256, "not restated; Table 3 uses GBS 256"),
    },
    "mtnlg-530b-2240xA100-via-palm": {
        "tp": (8, "MT-NLG paper (not re-verified): 8-way tensor parallelism"),
        "pp": (35, "MT-NLG paper (not re-verified): 35-way pipeline parallelism"),
        "cp": (1, "no context parallelism existed in 2021"),
        "global_batch": (1920, "MT-NLG paper batch 1920 (not re-verified); consistent with 65.43K tokens/s at 60.1 s/step"),
        "sequence_parallel": (False, "did not exist in 2021"),
        "distributed_optimizer": (True, "MT-NLG paper (not re-verified): DeepSpeed ZeRO-1 data parallelism"),
    },
    "opt-175b-992xA100": {
        "tp": (8, "not stated; metaseq/OPT-175B used 8-way Megatron TP (released as 8 model-parallel shards)"),
        "pp": (1, "FSDP + TP, no pipeline parallelism"),
        "cp": (1, "no context parallelism in 2022"),
        "global_batch": (992, "paper: ~2M tokens/batch; 992 x 2048 = 2.03M tokens with DP 124 (guess)"),
        "sequence_parallel": (False, "not used by metaseq (guess)"),
    },
}


# --------------------------------------------------------------------------
# Hardware
# --------------------------------------------------------------------------

# Checked in order: the first substring found in the accelerator name wins.
HARDWARE_PROFILES = [
    ("GB300", "gb300-nvl72"),
    ("GB200", "gb200-nvl72"),
    ("B300", "b300"),
    ("B200", "b200"),
    ("H800", "h800"),
    ("H200", "h200"),
    ("H100", "h100-sxm"),
    ("A100", "a100-sxm-80g"),
    ("TPU v4", "tpu-v4"),
    ("Ascend", "ascend-910b2"),
]


def hardware_of(rec):
    accel = rec["hardware"]["accelerator"]
    devices = rec["hardware"]["num_devices"]
    for key, profile in HARDWARE_PROFILES:
        if key in accel:
            return {"profile": profile, "devices": devices}
    raise ValueError("no hardware profile for " + accel)


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------

# Built-in model name for shared model names whose architecture is exactly the
# public model (public HF config; the shared record's dims match it).
BUILTIN_MODELS = {
    "Mixtral 8x22B": "mixtral-8x22b",
    "Qwen2-57B-A14B": "qwen2-57b-a14b",
    "Qwen3-235B-A22B": "qwen3-235b-a22b",
    "DeepSeek-V3": "deepseek-v3-671b",
    "DeepSeek-V3 (685B incl. MTP)": "deepseek-v3-671b",
    "Pangu Ultra MoE": "pangu-ultra-moe-718b",
    # The built-ins are the recipe YAMLs' shapes (models/deepseek-v4-*.json cite them), MTP included.
    "DeepSeek-V4-Pro": "deepseek-v4-pro",
    "DeepSeek-V4-Flash": "deepseek-v4-flash",
}


def inline_model(rec, assume):
    """Build an inline model object (models/*.json format) from a shared record.

    assume(field, reason) records a model assumption in the output record.
    """
    m = rec["model"]
    rid = rec["id"]
    heads = m["num_attention_heads"]
    hidden = m["hidden_size"]
    head_dim = m["head_dim"] or hidden // heads
    kv_heads = m["num_kv_heads"] or heads
    attention = {
        "type": "mha" if kv_heads == heads else "gqa",
        "heads": heads,
        "kv_heads": kv_heads,
        "head_dim": head_dim,
    }

    ffn_type = (m["ffn_type"] or "").lower()
    activation = "swiglu" if "swiglu" in ffn_type else "gelu"
    intermediate = m["ffn_hidden_size"]
    tie = False
    learned_pos = False

    if rid.startswith(("narayanan2021", "korthikanti2022", "megatron-readme-gpt3", "mtnlg")):
        # Megatron GPT (2021-2022): GeLU 4h MLP, learned absolute positions,
        # embedding tied to the output layer, vocab padded to 51200.
        tie, learned_pos = True, True
    elif rid.startswith("megatron-readme-h100"):
        intermediate = 4 * hidden
        assume("model.ffn", "not stated; 4h GeLU MLP (Megatron GPT default); the README's "
                            "parameter labels match 4h non-gated MLP with untied embeddings")
        assume("model.tie_embeddings", "not stated; untied (only untied embeddings reproduce "
                                       "the README parameter labels, e.g. 1.74B vs 1.48B tied for '1.7B')")
        assume("model.learned_position_embeddings", "not stated; Megatron-Core default "
                                                    "(learned_absolute); negligible for FLOPs")
        learned_pos = True
    elif rid.startswith("bloom"):
        tie = True  # BLOOM ties input/output embeddings; ALiBi, so no position table
    elif rid.startswith("palm"):
        tie = True  # PaLM shares input/output embeddings; RoPE
    elif rid.startswith("opt"):
        learned_pos = True
        assume("model.ffn.activation", "OPT uses ReLU; recorded as gelu (same GEMM shapes and "
                                       "FLOPs; the activation enum has no relu)")
    elif "Llama3-8x70B" in m["name"]:
        intermediate = 28672
    elif "Qwen3-30B-A3B" in m["name"]:
        intermediate = 6144  # HF config intermediate_size (unused: all layers are MoE)
    elif "G8T8" in m["name"]:
        intermediate = 16384  # the Mixtral-8x22B expert size the G8T8 experts were cut from

    if intermediate is None and m["moe"]:
        intermediate = m["moe"]["expert_ffn_hidden"]
    if intermediate is None:
        intermediate = 4 * hidden

    model = {
        "name": m["name"],
        "layers": m["num_layers"],
        "hidden": hidden,
        "vocab": m["vocab_size"],
        "seq_len": m["seq_len"],
        "attention": attention,
        "ffn": {"intermediate": intermediate, "activation": activation},
    }

    if m["moe"]:
        e = m["moe"]
        top_k = e["top_k"]
        if top_k is None:
            top_k = 2
            assume("model.moe.top_k", "not stated for the upcycled Llama3-8x70B; top-2 assumed "
                                      "(usual for 8-expert upcycled models, as in Mixtral)")
        moe = {
            "experts": e["num_experts"],
            "top_k": top_k,
            "expert_intermediate": e["expert_ffn_hidden"],
            "shared_experts": e["num_shared_experts"] or 0,
            "first_dense_layers": e["num_dense_layers"] or 0,
        }
        if e["shared_expert_ffn_hidden"]:
            moe["shared_expert_intermediate"] = e["shared_expert_ffn_hidden"]
        model["moe"] = moe

    model["mtp_layers"] = 0
    model["tie_embeddings"] = tie
    if learned_pos:
        model["learned_position_embeddings"] = True
    model["source"] = {"config": m["arch_source"]}
    if rid.startswith(("narayanan2021", "korthikanti2022", "megatron-readme-gpt3")):
        # Megatron-LM's GPT defaults (--attention-dropout 0.1, --hidden-dropout 0.1), which
        # Korthikanti et al. 2022 eq. 1 counts in the activation memory.
        model["dropout"] = True
        assume("model.dropout", "not stated; Megatron-LM GPT defaults attention/hidden dropout 0.1")

    if rid.startswith("palm"):
        # PaLM computes attention and MLP in parallel from one LayerNorm output.
        model["parallel_attention_ffn"] = True
    return model


def model_of(rec, assume):
    name = rec["model"]["name"]
    if name in BUILTIN_MODELS:
        return BUILTIN_MODELS[name]
    return inline_model(rec, assume)


# --------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------

def map_recompute(text):
    t = (text or "").lower()
    if t.startswith("full") or t.startswith("rematerialization"):
        return "full"
    if t.startswith("selective") or t.startswith("recompute rmsnorm"):
        return "selective"
    if t == "none":
        return "none"
    return None  # not stated


def map_precision(text):
    t = (text or "").lower()
    if "fp8" in t:
        return "fp8"
    if "bf16" in t or "bfloat16" in t:
        return "bf16"
    return None  # FP16, unspecified mixed precision, or not stated


def map_fp8_recipe(text):
    """moesim's fp8_recipe where the source names the FP8 scaling; None: not stated (the layout default,
    Megatron-Core's "delayed")."""
    t = (text or "").lower()
    if "mxfp8" in t:
        return "mxfp8"
    if "blockwise" in t or "1x128 / 128x128 block" in t:
        return "blockwise"
    if "delayed" in t:
        return "delayed"
    if "tensorwise" in t or "current scaling" in t:
        return "tensorwise"
    return None


def smallest_divisor_above_one(n):
    for d in range(2, n + 1):
        if n % d == 0:
            return d
    return 1


def layout_of(rec, group, assume):
    par, batch, train = rec["parallelism"], rec["batch"], rec["training"]
    rid = rec["id"]
    guessed = GUESSED_LAYOUTS.get(rid, {})
    derived = rec.get("derived") or {}
    is_moe = rec["model"]["arch_type"] == "moe"

    def pick(field, stated, default, reason):
        """Stated value if present, else a guessed/default value with a reason."""
        if field in guessed:
            value, why = guessed[field]
            assume(field, why)
            return value
        if stated is not None:
            if field in derived and "method" in derived[field]:
                assume(field, "inferred by the data set: " + derived[field]["method"])
            return stated
        assume(field, reason)
        return default

    tp = pick("tp", par["tp"], 1, "not stated")
    pp = pick("pp", par["pp"], 1, "not stated")
    cp = pick("cp", par["cp"], 1, "not stated; no context parallelism assumed")

    # Expert parallelism: trivially 1 for dense models.
    if is_moe:
        ep = pick("ep", par["ep"], 1, "not stated")
        etp_reason = "not stated"
        if group == "moe-folding2025":
            etp_reason = ("blank in the paper's table for this folding row; folding decouples "
                          "expert TP from attention TP, ETP 1 assumed")
        elif group == "deepseek-v3":
            etp_reason = "no tensor parallelism in DeepSeek-V3 training"
        etp = pick("etp", par["etp"], 1, etp_reason)
    else:
        ep, etp = 1, 1

    # Pipeline schedule and virtual stages.
    sched_text = ((par["pp_schedule"] or "") + " " + (par["parallel_notes"] or "")).lower()
    vpp = guessed.get("vpp", (par["vpp"], None))[0]
    if "vpp" in guessed:
        assume("vpp", guessed["vpp"][1])
    if pp == 1:
        schedule, vpp = "1f1b", 1  # no pipeline: schedule is moot
    elif "dualpipe" in sched_text:
        schedule, vpp = "dualpipe", vpp or 1
    elif "non-interleaved" in sched_text:
        schedule, vpp = "1f1b", 1
    elif "interleaved" in sched_text or (vpp or 1) > 1:
        schedule = "interleaved"
        if vpp is None:
            layers_per_stage = rec["model"]["num_layers"] // pp
            vpp = smallest_divisor_above_one(layers_per_stage)
            assume("vpp", "interleaved schedule stated but chunk count not; chose the smallest "
                          "interleaving that divides the %d layers per stage (Korthikanti 2022 "
                          "used m=3 for the 175B/530B configs)" % layers_per_stage)
    elif "1f1b" in sched_text:
        schedule, vpp = "1f1b", 1
    else:
        schedule, vpp = "1f1b", 1
        assume("schedule", "not stated; non-interleaved 1F1B (Megatron default) assumed")
        assume("vpp", "not stated; 1 (no interleaving) assumed")

    if tp == 1:
        sp_default, sp_reason = False, "not stated; moot with TP=1"
    elif group in ("megatron-readme-h100", "moe-folding2025", "mcore-moe-recipe"):
        sp_default, sp_reason = True, "not stated; Megatron-Core runs with TP>1 use sequence parallelism"
    else:
        sp_default, sp_reason = False, "not stated; Megatron-style sequence parallelism not used (assumed)"
    sequence_parallel = pick("sequence_parallel", par["sequence_parallel"], sp_default, sp_reason)

    micro_default, micro_reason = 1, "not stated; Megatron default 1"
    if group == "narayanan2021":
        micro_reason = ("not stated for Table 1; 1 as in the paper's Table 2 PTD-P runs "
                        "(gives an integral microbatch count per pipeline for every row)")
    elif group == "palm":
        micro_default = batch["global_batch_seqs"] // par["dp"]
        micro_reason = "not stated; GBS 2048 / DP 512 = 4 sequences per replica, no accumulation assumed"
    micro_batch = pick("micro_batch", batch["micro_batch"], micro_default, micro_reason)

    global_batch = pick("global_batch", batch["global_batch_seqs"], None, "not stated")
    seq_len = pick("seq_len", rec["model"]["seq_len"], None, "not stated")

    recompute = map_recompute(train["recompute"])
    if recompute is None:
        if group == "narayanan2021":
            recompute = "full"
            assume("recompute", "not stated for the ZeRO-3 baseline; full, as in the PTD-P rows "
                                "(the eq. 3 FLOP count assumes it, and 175B/530B with micro-batch "
                                "4 does not fit otherwise)")
        elif group == "megatron-readme-h100":
            recompute = "none"
            assume("recompute", "not stated; none (Megatron-Core perf runs with SP; the reported "
                                "FLOPs exclude recompute anyway)")
        elif group == "moe-folding2025":
            recompute = "none"
            assume("recompute", "not stated; none assumed")
        else:
            recompute = "full" if group in ("mtnlg", "opt") else "none"
            assume("recompute", "not stated; %s assumed" % recompute)
    elif "microbatch-level" in (train["recompute"] or ""):
        assume("recompute", "source: selective + microbatch-level recompute (activations of as many "
                            "microbatches as fit are kept); recorded as selective, an upper bound on "
                            "recompute work")
    elif group == "palm":
        assume("recompute", "source: rematerialization of all but one fully sharded activation tensor "
                            "per layer; mapped to full")
        assume("distribute_saved_activations",
               "source: the one activation tensor kept per layer is 'fully sharded', so each of the 12 "
               "model-parallel chips keeps 1/12 of it (as Megatron-LM's --distribute-saved-activations "
               "does) while the layer's matmuls still see the whole sequence (no sequence parallelism)")
    elif group == "deepseek-v3":
        assume("recompute", "source: recompute RMSNorm and MLA up-projections; mapped to selective with "
                            "recompute_modules layernorm and mla_up_proj")
    elif group == "mcore-moe-recipe" and recompute == "selective":
        assume("recompute", "recipe recomputes only these modules: " + train["recompute"].split(":", 1)[1].strip())

    zero_stage = par["zero_stage"] or 0
    dist_default = True
    dist_reason = "not stated; distributed optimizer assumed"
    if group in ("narayanan2021", "korthikanti2022", "megatron-readme-gpt3"):
        dist_default, dist_reason = False, "not stated; did not exist in Megatron-LM 2021/2022"
    elif group == "megatron-readme-h100":
        dist_reason = "not stated, but implied: the README's --overlap-param-gather requires it"
    if par["fsdp"] or zero_stage >= 1:
        distributed_optimizer = True
    else:
        distributed_optimizer = pick("distributed_optimizer", par["distributed_optimizer"],
                                     dist_default, dist_reason)

    precision = map_precision(train["precision"])
    if precision is None:
        precision = "bf16"
        text = train["precision"]
        if text and "fp16" in text.lower():
            assume("precision", "source: %s; recorded as bf16 (same tensor-core peak; the precision "
                                "enum has no fp16)" % text)
        else:
            assume("precision", "source: %s; bf16 assumed (16-bit peak)" % (text or "not stated"))
    elif precision == "fp8":
        assume("precision", "source: %s (recipe detail beyond the enum)" % train["precision"])

    layout = {
        "tp": tp, "pp": pp, "vpp": vpp, "ep": ep, "etp": etp, "cp": cp,
        "sequence_parallel": sequence_parallel,
        "micro_batch": micro_batch, "global_batch": global_batch, "seq_len": seq_len,
        "recompute": recompute, "schedule": schedule,
        "distributed_optimizer": distributed_optimizer,
        "precision": precision,
        "overlap": overlap_of(rec, group, is_moe, assume),
    }
    if precision == "fp8" and map_fp8_recipe(train["precision"]):
        layout["fp8_recipe"] = map_fp8_recipe(train["precision"])
    if zero_stage == 3 or par["fsdp"]:
        layout["zero_stage"] = 3
    features = rec["training"]["other_features"] or ""
    if "dispatcher deepep" in features or "dispatcher hybridep" in features:
        # Megatron-Core's flex dispatcher (DeepEP / HybridEP) sends a token once per rank and per remote domain
        # holding one of its experts; moesim's moe_dispatcher "flex" models that wire time, and it matches
        # DeepEP's own normal-kernel table (tests/test_dispatch_tables.cpp, 10.8%). Scored that way these runs
        # come out faster than measured wherever the dispatch crosses InfiniBand (qwen3_235b H100 EP32 +9.9 ->
        # +68.5%, B200 EP16 +4.9 -> +78.5%, deepseek_v3 B200 EP32 -17.0 -> +27.9%; inside one NVL72 domain
        # within 0.1-6 points), so the flex path costs more end to end than its wire time (preprocessing,
        # permutation, blocking token-count sync, SMs shared with overlapped compute: not modelled yet), and
        # the per-expert copy count of the alltoall dispatcher stands in for it.
        assume("moe_dispatcher", "recipe: flex with the %s backend; simulated as alltoall (a copy per expert): "
               "moesim's deduplicated flex dispatch leaves these runs 20-75%% too fast across InfiniBand "
               "(scripts/import_published_runs.py)" % ("deepep" if "dispatcher deepep" in features else "hybridep"))
    if precision == "fp8" and group == "mcore-moe-recipe":
        # Megatron-Core's HybridEP backend dispatches BF16 tokens ("HybridEP dispatcher does not support
        # fp8 dispatch now", megatron/core/transformer/moe/fused_a2a.py); DeepEP takes FP8 tokens
        # (DeepSeek-V3 sec. 3.3.4), kept as the simulator modelled it before the field existed.
        layout["fp8_dispatch"] = "dispatcher deepep" in features
        assume("fp8_dispatch", "dispatcher deepep: FP8 dispatch (DeepEP's FP8 path, not verified in the "
                               "recipe)" if layout["fp8_dispatch"] else
               "dispatcher hybridep: BF16 dispatch (Megatron-Core's HybridEP backend asserts it has no FP8 "
               "dispatch)")
    if group == "deepseek-v3":
        # DeepSeek-V3 technical report (arXiv 2412.19437): tokens go over InfiniBand once to the GPU with
        # the same in-node index on each target node, then over NVLink (sec. 3.2.2), and the dispatch
        # carries FP8 activations, the combine BF16 (sec. 3.3.4).
        layout["ep_all_to_all"] = "hierarchical"
        layout["fp8_dispatch"] = True
        assume("ep_all_to_all", "source sec. 3.2.2: IB to the same in-node index on each target node, then NVLink "
                                "(node-deduplicated: moesim's hierarchical dispatch)")
        assume("fp8_dispatch", "source sec. 3.3.4: FP8 dispatch, BF16 combine")
    if "CUDA graphs local full_iteration" in features:
        layout["cuda_graphs"] = "full"
    elif "CUDA graphs transformer_engine" in features:
        layout["cuda_graphs"] = "partial"
    elif rid.removeprefix("mcore-moe-recipe-") in RECIPES_WITH_EXTERNAL_CUDA_GRAPH:
        layout["cuda_graphs"] = "partial"
        assume("cuda_graphs", "recipe YAML: external_cuda_graph true (the deprecated alias of cuda_graph_impl "
                              "transformer_engine, megatron/training/arguments.py) with cuda_graph_scope attn, "
                              "moe_router, moe_preprocess; the shared record does not list it")
    elif group == "mcore-moe-recipe":
        layout["cuda_graphs"] = "none"
        assume("cuda_graphs", "the recipe names no CUDA graphs: eager execution")
    if recompute == "selective" and group in ("mcore-moe-recipe", "deepseek-v3"):
        layout["recompute_modules"] = recompute_modules_of(train["recompute"])
    if group == "mcore-moe-recipe":
        layout["cross_entropy"] = "fused"
        assume("cross_entropy", "recipe YAML: cross_entropy_loss_fusion true, cross_entropy_fusion_impl te "
                                "(Transformer Engine's parallel_cross_entropy)")
        if rid.removeprefix("mcore-moe-recipe-") in RECIPES_WITH_BF16_ADAM_MOMENTS:
            layout["adam_moments"] = "bf16"
            assume("adam_moments", "recipe YAML: use_precision_aware_optimizer true, exp_avg_dtype and "
                                   "exp_avg_sq_dtype bf16, main_params_dtype fp32")
        if rid.removeprefix("mcore-moe-recipe-") in RECIPES_WITH_BF16_MAIN_GRADS:
            layout["main_grads"] = "bf16"
            assume("main_grads", "recipe YAML: main_grads_dtype bf16 (precision-aware optimizer)")
        if rid.startswith("mcore-moe-recipe-deepseek_v4"):
            assume("convention", "Megatron-LM training.py num_floating_point_operations counts DeepSeek-V4 layers "
                                 "with _dsv4_hybrid_self_attention_flops (dev, unchanged from the recipe commit "
                                 "9c5258f109 to d48bd6be0a): MLA-style projections with the grouped output, the "
                                 "window and the causal average of compressed entries, compressors and indexer; "
                                 "csa_compress_ratios counts the MTP layer; no mHC, router or sink FLOPs")
    if group == "palm":
        # Stated: 256-way fully sharded data parallelism per pod, 2-way plain DP across pods.
        layout["zero_shard_dp"] = 256
        layout["distribute_saved_activations"] = True
    if group in PRE_FLASH_ATTENTION_GROUPS:
        layout["flash_attention"] = False
        assume("flash_attention", "FlashAttention (Dao et al., May 2022) postdates this software; "
                                  "the run materialised the s x s attention scores")
    return layout


# Memory settings of the Megatron-LM moe_recipes YAMLs (examples/moe_recipes/<model>/<gpu>/<name>.yaml,
# dev branch; read at commits 191d70cf0f (deepseek_v3 b200), 256f606507 (deepseek_v3 gb200 and
# h100 bf16, qwen3_235b gb200/gb300/h100, qwen3_30b gb200 mxfp8 and h100 bf16), 8a2ac1fdc7 (deepseek_v3
# gb300 and h100 fp8, qwen3_30b gb200 bf16), 6cb71dbc04 (qwen3_235b b200), 74ff982bb4 (qwen3_235b b300),
# 59bbfaf318 (qwen3_30b h100 fp8)). The shared record lists only throughput-relevant features.
# Every recipe sets cross_entropy_loss_fusion: true with cross_entropy_fusion_impl: te. These set
# use_precision_aware_optimizer: true with exp_avg_dtype and exp_avg_sq_dtype bf16 (main params fp32):
RECIPES_WITH_BF16_ADAM_MOMENTS = (
    "deepseek_v4_flash-gb200-mxfp8_sl4k_128gpu_tp1pp1ep64",
    "deepseek_v4_pro-gb300-mxfp8_sl4k_256gpu_tp1pp4ep64",
    "deepseek_v3-b200-mxfp8_256gpu_tp1pp8ep32",
    "deepseek_v3-gb200-mxfp8_256gpu_tp1pp4ep64",
    "deepseek_v3-gb300-mxfp8_256gpu_tp1pp4ep64",
    "qwen3_235b-b200-mxfp8_128gpu_tp2pp4ep16",
    "qwen3_235b-b300-mxfp8_128gpu_tp2pp1ep16_partial_cg",
    "qwen3_235b-gb200-mxfp8_128gpu_tp1pp1ep64_paged_stash_fullcg_overlap",
    "qwen3_235b-gb200-mxfp8_128gpu_tp1pp1ep64_partial_cg_overlap",
    "qwen3_235b-gb300-mxfp8_128gpu_tp1pp1ep64_paged_stash_full_cg",
    "qwen3_30b-h100-fp8_32gpu_tp1pp1ep8",
)


# Recipes that capture TE partial CUDA graphs with the deprecated flag external_cuda_graph: true
# (Megatron-LM 9c5258f109, megatron/training/arguments.py: "--external-cuda-graph is deprecated, use
# --cuda-graph-impl=transformer_engine instead", and it is turned into that), which the shared record's
# feature list misses: examples/moe_recipes/qwen3_30b/gb200/mxfp8_16GPU_TP1PP1EP16_partial_cg.yaml sets it
# with cuda_graph_scope [attn, moe_router, moe_preprocess] (read at 256f606507 and 9c5258f109).
RECIPES_WITH_EXTERNAL_CUDA_GRAPH = (
    "qwen3_30b-gb200-mxfp8_16gpu_tp1pp1ep16_partial_cg",
)


# Recipes that set main_grads_dtype: bf16 (the V4-Flash recipe keeps fp32).
RECIPES_WITH_BF16_MAIN_GRADS = (
    "deepseek_v4_pro-gb300-mxfp8_sl4k_256gpu_tp1pp4ep64",
)


# Megatron-Core --recompute-modules that moesim models (layout recompute_modules), from the shared
# record's recompute text ("selective: ['mla_up_proj', 'mlp']", "selective: moe_act layernorm",
# DeepSeek-V3's "recompute RMSNorm and MLA up-projections").
RECOMPUTE_MODULES = ("core_attn", "layernorm", "mla_up_proj", "mlp", "moe_act", "mhc")


def recompute_modules_of(text):
    t = text.lower().replace("rmsnorm", "layernorm").replace("mla up-projections", "mla_up_proj")
    words = set(re.findall(r"[a-z_]+", t))
    modules = [m for m in RECOMPUTE_MODULES if m in words]
    assert modules, text
    return modules


# Runs whose software predates fused (flash) attention: Megatron-LM 2021/2022, Megatron-DeepSpeed
# (BLOOM, 2022), and DeepSpeed ZeRO-3 (2021).
PRE_FLASH_ATTENTION_GROUPS = ("narayanan2021", "korthikanti2022", "megatron-readme-gpt3", "bloom",
                              "mtnlg", "opt")


def overlap_of(rec, group, is_moe, assume):
    features = (rec["training"]["other_features"] or "") + " " + (rec["parallelism"]["parallel_notes"] or "")
    par = rec["parallelism"]
    ep_stated = "EP comm overlap" in features or group == "deepseek-v3"

    if group in ("narayanan2021", "korthikanti2022", "megatron-readme-gpt3", "bloom", "mtnlg"):
        if par["zero_stage"] == 3:
            ov = {"ep_all_to_all": False, "tp_comm": False, "dp_grad_reduce": False, "dp_param_gather": True}
            why = ("not stated; DeepSpeed ZeRO-3 defaults: parameter prefetch on (stage3_prefetch_bucket_size "
                   "5e7), gradient reduce-scatter not overlapped (overlap_comm false; "
                   "https://www.deepspeed.ai/docs/config-json/)")
        else:
            ov = {"ep_all_to_all": False, "tp_comm": False, "dp_grad_reduce": False, "dp_param_gather": False}
            why = ("not stated; Megatron-LM 2021/2022 (and Megatron-DeepSpeed) all-reduce gradients "
                   "after the backward pass (Korthikanti states it for the DP=8 run); no TP overlap")
        assume("overlap", why)
    elif group == "megatron-readme-h100":
        ov = {"ep_all_to_all": False, "tp_comm": True, "dp_grad_reduce": True, "dp_param_gather": True}
        # stated by the README: --overlap-grad-reduce --overlap-param-gather --tp-comm-overlap
    elif group == "moe-folding2025":
        ov = {"ep_all_to_all": False, "tp_comm": False, "dp_grad_reduce": True, "dp_param_gather": True}
        assume("overlap", "not stated; Megatron-Core DP overlap (grad reduce, param gather) assumed; "
                          "no TP or EP communication overlap")
    elif group == "mcore-moe-recipe":
        ov = {"ep_all_to_all": ep_stated, "tp_comm": False, "dp_grad_reduce": True, "dp_param_gather": True}
        # Every recipe YAML that sets overlap_moe_expert_parallel_comm also sets delay_wgrad_compute: true
        # (examples/moe_recipes/*/*.yaml, dev branch), the weight gradients then also hide the backward
        # EP all-to-all.
        if ep_stated:
            ov["delay_wgrad"] = True
        assume("overlap", "ep_all_to_all from the recipe's EP-comm-overlap flag (overlap_moe_expert_parallel_comm), "
                          "delay_wgrad from the recipe's delay_wgrad_compute (set with it in every recipe); "
                          "DP overlap assumed (Megatron-Core perf default); TP overlap not recorded, assumed off")
    elif group == "deepseek-v3":
        ov = {"ep_all_to_all": True, "tp_comm": False, "dp_grad_reduce": True, "dp_param_gather": True}
        assume("overlap", "DualPipe overlaps EP all-to-all (stated); no TP; ZeRO-1 DP overlap assumed")
    elif group == "palm":
        ov = {"ep_all_to_all": False, "tp_comm": False, "dp_grad_reduce": True, "dp_param_gather": True}
        assume("overlap", "not stated; XLA/GSPMD prefetches the FSDP weight gathers and overlaps the "
                          "gradient reductions (assumed), but not the 12-way model-parallel collectives: "
                          "their results feed the next matmul, and XLA's decomposition that overlaps such "
                          "dependent collectives was published after PaLM (Wang et al., 'Overlap Communication with "
                          "Dependent Computation via Decomposition in Large Deep Learning Models', ASPLOS "
                          "2023: 1.14-1.38x throughput on TPU v4 from hiding them)")
    else:  # opt (skipped)
        ov = {"ep_all_to_all": is_moe, "tp_comm": False, "dp_grad_reduce": True, "dp_param_gather": True}
        assume("overlap", "not stated; assumed")
    return ov


# --------------------------------------------------------------------------
# Measured, derived
# --------------------------------------------------------------------------

def measured_of(rec, derived_out):
    src = rec["measured"]
    out = {}
    if src["mfu_pct"] is not None:
        out["mfu"] = round(src["mfu_pct"] / 100, 6)
    if src["hfu_pct"] is not None:
        out["hfu"] = round(src["hfu_pct"] / 100, 6)
    if src["tflops_per_device"] is not None:
        out["tflops_per_device"] = src["tflops_per_device"] * 1e12  # FLOP/s despite the name

    tokens_per_s = src["tokens_per_sec_total"]
    if tokens_per_s is not None:
        # The shared data set sometimes fills tokens/s from tokens-per-batch and the
        # stated iteration time.  That is our arithmetic, not the source's: keep it
        # out of measured.
        t_iter, tokens = src["iteration_time_s"], rec["batch"]["tokens_per_batch"]
        if t_iter and tokens and abs(tokens / t_iter - tokens_per_s) <= 1e-3 * tokens_per_s:
            derived_out["tokens_per_s"] = {
                "value": tokens_per_s,
                "method": "tokens per batch / stated iteration time (the source states only the time)",
            }
        else:
            out["tokens_per_s"] = tokens_per_s
    if src["tokens_per_sec_per_device"] is not None:
        out["tokens_per_s_per_device"] = src["tokens_per_sec_per_device"]
    if src["iteration_time_s"] is not None:
        out["iteration_time_s"] = src["iteration_time_s"]
    if src["memory_gb_per_device"] is not None:
        out["memory_bytes"] = src["memory_gb_per_device"] * 1e9

    other = {}
    if src["samples_per_sec"] is not None:
        other["samples_per_s"] = src["samples_per_sec"]
    if src["aggregate_pflops"] is not None:
        other["aggregate_flops_per_s"] = src["aggregate_pflops"] * 1e15
    if src["training_days_for_tokens"] is not None:
        days = src["training_days_for_tokens"]
        other["training_time_s_for_tokens"] = {
            "tokens": days["tokens"], "seconds": days["days"] * 86400,
            "note": "the source's projection from its throughput, not a per-step figure",
        }
    for key, value in (src["other_measured"] or {}).items():
        new_key, new_value = normalise_other(key, value)
        other[new_key] = new_value
    if other:
        out["other"] = other
    return out


def normalise_other(key, value):
    """SI units and fractions for the free-form extra measurements."""
    if key in ("percent_of_theoretical_peak", "percent_of_peak"):
        return "peak_fraction", value / 100
    if key == "per_layer_ms":
        return "per_layer_s", {mode: {k: round(v / 1000, 6) for k, v in t.items()} for mode, t in value.items()}
    if key == "wallclock_days_per_trillion_tokens_on_2048_gpus":
        return "wallclock_s_per_trillion_tokens_on_2048_gpus", value * 86400
    if key.startswith("mfu_pct"):
        return key.replace("mfu_pct", "mfu"), round(value / 100, 6)
    return key, value


def derived_of(rec, derived_out):
    for key, entry in (rec.get("derived") or {}).items():
        if key in ("dp", "tp", "pp"):
            continue  # layout inferences: recorded under assumptions instead
        value, method = entry["value"], entry["method"]
        if key.startswith(("mfu_pct", "hfu_pct", "mfu_check_pct")):
            key, value = key.replace("_pct", ""), round(value / 100, 6)
        elif key.startswith("tflops_per_device"):
            key, value = key.replace("tflops_per_device", "flops_per_s_per_device").lower(), value * 1e12
        elif key == "tokens_per_sec_per_device":
            key = "tokens_per_s_per_device"
        derived_out[key] = {"value": value, "method": method}


# --------------------------------------------------------------------------
# Notes
# --------------------------------------------------------------------------

GROUP_NOTES = {
    "narayanan2021": "TFLOP/s counts the recompute forward (eq. 3), so it is HFU-like; "
                     "end-to-end throughput.",
    "korthikanti2022": "MFU per eq. 7 (no recompute, full s^2); DP=1 except the 2240-GPU row.",
    "megatron-readme-gpt3": "Same FLOP count as Narayanan eq. 3 (recompute included).",
    "megatron-readme-h100": "Megatron-Core r0.8 throughput formula; MFU vs 989 TFLOP/s BF16.",
    "moe-folding2025": "Token-drop MoE, capacity factor 1 (not dropless); MFU vs 989.5 TFLOP/s BF16.",
    "mcore-moe-recipe": "Median TFLOP/s/GPU; mock data, force-balanced routing; causal attention "
                        "counted at half s^2; MTP and logits counted.",
    "deepseek-v3": "Whole-run GPU-hour figures only.",
    "palm": "MFU = 6N + attention FLOPs per token vs 275 TFLOP/s; 2 pods joined over DCN "
            "(12-way MP x 256-way FSDP per pod, 2-way DP across pods).",
    "mtnlg": "MFU computed by the PaLM authors from MT-NLG's step time.",
    "bloom": "Single steady-state log line; Jean Zay interconnect is Omni-Path (4 links per node), "
             "slower than the DGX A100 InfiniBand of the a100 profile.",
    "opt": "'Up to' figure of a production run; undefined FLOP count.",
    "pangu": "Headline only.",
}


def notes_of(rec, group):
    parts = [GROUP_NOTES[group]]
    feats = rec["training"]["other_features"]
    if group == "mcore-moe-recipe" and feats:
        parts.append("Recipe features: " + feats + ".")
    if rec["notes"]:
        parts.append(rec["notes"])
    return " ".join(parts)


# --------------------------------------------------------------------------
# Record
# --------------------------------------------------------------------------

def convert(rec):
    group = group_of(rec["id"])
    assumptions = {}

    def assume(field, reason):
        assumptions[field] = reason

    derived = {}
    if group == "pangu":
        return convert_pangu_headline(rec, group)
    out = {
        "id": rec["id"],
        "source": {
            "url": rec["source"]["url"],
            "where": rec["source"]["location"],
            "title": rec["source"]["title"],
        },
        "model": model_of(rec, assume),
        "hardware": hardware_of(rec),
        "layout": layout_of(rec, group, assume),
        "assumptions": assumptions,
        "measured": measured_of(rec, derived),
        "convention": GROUPS[group][1],
        "notes": notes_of(rec, group),
    }
    derived_of(rec, derived)
    if derived:
        out["derived"] = derived
    if rec["id"] in SKIP_REASONS:
        out["skip_reason"] = SKIP_REASONS[rec["id"]]
    check(out)
    return out


def convert_pangu_headline(rec, group):
    """The shared Pangu record is a headline only: point at the full record."""
    full = json.loads(PANGU_RECORD.read_text())[0]
    out = {
        "id": rec["id"],
        "source": {"url": rec["source"]["url"], "where": rec["source"]["location"],
                   "title": rec["source"]["title"]},
        "model": full["model"],
        "hardware": full["hardware"],
        "layout": full["layout"],
        "assumptions": {"layout": "copied from %s (record %s), which explains every value"
                                  % (PANGU_RECORD.relative_to(ROOT), full["id"])},
        "measured": measured_of(rec, {}),
        "convention": GROUPS[group][1],
        "notes": GROUP_NOTES[group],
        "skip_reason": SKIP_REASONS[rec["id"]],
    }
    check(out)
    return out


ENUMS = {
    "recompute": {"none", "selective", "full"},
    "schedule": {"1f1b", "interleaved", "zero-bubble", "dualpipe", "gpipe"},
    "precision": {"bf16", "fp8"},
}
CONVENTIONS = {"megatron2021", "korthikanti2022", "megatron_core_2024", "megatron_core_2025",
               "megatron_core_2026_causal", "palm", "pangu", "none"}


def check(rec):
    """Cheap consistency checks; raise on anything the harness would trip over."""
    lay, rid = rec["layout"], rec["id"]
    for field, allowed in ENUMS.items():
        assert lay[field] in allowed, (rid, field, lay[field])
    assert lay.get("cuda_graphs", "none") in {"none", "partial", "full"}, rid
    assert rec["convention"] in CONVENTIONS, rid
    for field in ("tp", "pp", "vpp", "ep", "etp", "cp", "micro_batch", "global_batch", "seq_len"):
        assert isinstance(lay[field], int) and lay[field] >= 1, (rid, field, lay[field])
    devices = rec["hardware"]["devices"]
    model_parallel = lay["tp"] * lay["pp"] * lay["cp"]
    if devices % model_parallel == 0:
        dp = devices // model_parallel
        if lay["global_batch"] % (dp * lay["micro_batch"]) != 0:
            print("warning: %s: GBS %d not a multiple of DP %d x MBS %d"
                  % (rid, lay["global_batch"], dp, lay["micro_batch"]), file=sys.stderr)
    else:
        print("warning: %s: %d devices not divisible by TP*PP*CP=%d" % (rid, devices, model_parallel),
              file=sys.stderr)
    if "skip_reason" not in rec:
        assert any(k in rec["measured"] for k in ("mfu", "tflops_per_device", "tokens_per_s",
                                                   "iteration_time_s")), rid


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=pathlib.Path, default=DEFAULT_SRC)
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    source = json.loads(args.src.read_text())
    records = [convert(rec) for rec in source]

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(records, indent=2) + "\n")

    skipped = [r for r in records if "skip_reason" in r]
    print("wrote %d records to %s (%d scored, %d skipped)"
          % (len(records), args.out, len(records) - len(skipped), len(skipped)))
    for r in skipped:
        print("  skipped %s: %s" % (r["id"], r["skip_reason"]))


if __name__ == "__main__":
    main()
