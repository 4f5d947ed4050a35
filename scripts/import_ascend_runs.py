#!/usr/bin/env python3
"""Convert the shared collection of measured Ascend training runs into moesim's
validation record format, reading each run's own launch script or YAML.

    python3 scripts/import_ascend_runs.py [--src PATH] [--scripts DIR] [--out PATH]

Reads  ../shared/validation/ascend_runs.json (relative to the repo root) and, for
       every run that has one, ../shared/validation/ascend/scripts/<id>.sh|.yaml
       (the MindSpeed-LLM launch script or MindFormers YAML that ran it)
Writes validation/ascend_runs.json

The record format and the FLOP-counting conventions are described in
validation/README.md ("Record format", "Ascend runs").  Rules applied here:

  * The model and the layout come from the script's own arguments (MindSpeed-LLM:
    the arguments the launch line passes to pretrain_gpt.py / posttrain_gpt.py,
    after the shell variables are expanded; MindFormers: the YAML's
    model.model_config, moe_config, parallel_config, recompute_config, parallel).
    The shared record's model fields are used only where the script gives no
    value (the tokenizer's vocabulary), and assumptions[<field>] says so.
  * Every argument of the script is classified (see FLAGS / YAML_KEYS): translated
    into a model or layout field (listed in assumptions["translated_flags"]),
    performance-relevant but not modelled (assumptions["not_modelled.<flag>"]),
    or performance-irrelevant (assumptions["ignored_flags"]).  An argument that is
    in none of the tables stops the import, so a new script cannot slip through.
  * A built-in model name is used only when the script's architecture equals
    that model file's (layers, widths, heads, vocabulary, experts, embeddings).
  * measured holds only what the source states, in SI units: MFU as a fraction;
    tokens/s as the whole job's rate (the source's per-device figure x devices,
    the per-device figure kept in measured.other); s/step where stated.
  * Atlas A3 (910C): one simulator device is one compute die (profile
    ascend-910c-cm384), as CANN exposes it and as the scripts count it (16 dies
    per node); the two dies of a package are paired by the profile's SIO tier.

Python 3 standard library only.
"""

import argparse
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_SRC = ROOT.parent / "shared" / "validation" / "ascend_runs.json"
DEFAULT_SCRIPTS = ROOT.parent / "shared" / "validation" / "ascend" / "scripts"
DEFAULT_OUT = ROOT / "validation" / "ascend_runs.json"
MODELS = ROOT / "models"
# Hand-written record of the Pangu Ultra MoE 6K run (layout and its reasons).
PANGU_RECORD = ROOT / "validation" / "pangu-ultra-moe.json"

SHARED_README = "../shared/validation/ascend/README.md"


# --------------------------------------------------------------------------
# Reading the scripts
# --------------------------------------------------------------------------

def parse_shell(text):
    """The argument list a MindSpeed-LLM launch script passes to its training entry point.

    Shell variables (NAME=value, NAME="multi-line value") are expanded as bash would
    expand them unquoted on the launch line: backslash-newlines vanish and the value
    is split on whitespace.  Only the arguments on the launch line count, so an
    argument group the script defines but does not pass is not part of the run.
    """
    lines = text.split("\n")
    variables = {}

    def expand(s):
        s = re.sub(r"\$\(\([^)]*\)\)", "", s)  # arithmetic ($((GPUS * NODES))): not needed
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables.get(m.group(1) or m.group(2), ""), s)

    launch = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^\s*(?:export\s+)?([A-Za-z_]\w*)=(.*)$", line)
        if m:
            name, value = m.group(1), m.group(2)
            if value.startswith('"'):
                body = value[1:]
                while '"' not in body:
                    i += 1
                    body += "\n" + lines[i]
                variables[name] = expand(body[:body.index('"')].replace("\\\n", "\n"))
            elif value.startswith("'"):
                variables[name] = value[1:value.index("'", 1)]
            else:
                variables[name] = expand(value.split("#")[0].strip())
        elif re.search(r"\b(pre|post)train_gpt\.py\b", line):
            command = line
            while command.rstrip().endswith("\\"):
                i += 1
                command = command.rstrip()[:-1] + " " + lines[i]
            launch = command
        i += 1
    if launch is None:
        raise ValueError("no launch line (pretrain_gpt.py / posttrain_gpt.py) found")
    words = expand(launch).split("|")[0].replace("2>&1", " ").split()
    start = next(k for k, w in enumerate(words) if w.endswith("_gpt.py"))
    return words[start + 1:]


def flags_of(argv):
    """--flag value... pairs in order; a repeated flag keeps its last value (argparse)."""
    flags, current = {}, None
    for word in argv:
        if word.startswith("--"):
            current = word
            flags[current] = []
        elif current is None:
            raise ValueError("argument before any flag: " + word)
        else:
            flags[current].append(word)
    return {f: " ".join(v) for f, v in flags.items()}


def parse_scalar(text):
    t = text.strip()
    if t == "":
        return None
    if t[0] in "[{":
        return json.loads(t)
    if t[0] in "\"'":
        return t[1:t.rindex(t[0])]
    if t in ("True", "true"):
        return True
    if t in ("False", "false"):
        return False
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def strip_comment(line):
    quote = None
    for k, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "#" and (k == 0 or line[k - 1].isspace()):
            return line[:k]
    return line


def parse_yaml(text):
    """The small YAML subset of MindFormers configs: nested mappings, lists of mappings
    ("- type: X"), JSON-style inline lists/maps, scalars; anchors dropped, aliases kept as text."""
    rows = []
    for raw in text.split("\n"):
        line = strip_comment(raw).rstrip()
        if line.strip():
            rows.append((len(line) - len(line.lstrip()), line.strip()))

    def block(k, indent):
        if rows[k][1].startswith("- "):
            items = []
            while k < len(rows) and rows[k][0] == indent and rows[k][1].startswith("- "):
                inner = rows[k][1][2:]
                rows[k] = (indent + 2, inner)
                value, k = block(k, indent + 2)
                items.append(value)
            return items, k
        mapping = {}
        while k < len(rows) and rows[k][0] == indent:
            key, _, rest = rows[k][1].partition(":")
            rest = re.sub(r"^\s*&\w+", "", rest).strip()
            k += 1
            if rest:
                mapping[key.strip()] = parse_scalar(rest)
            elif k < len(rows) and rows[k][0] > indent:
                mapping[key.strip()], k = block(k, rows[k][0])
            else:
                mapping[key.strip()] = None
        return mapping, k

    value, k = block(0, rows[0][0])
    assert k == len(rows), "unparsed YAML from row %d: %s" % (k, rows[k])
    return value


def flatten(tree, prefix=""):
    out = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.update(flatten(value, prefix + key + "."))
    elif isinstance(tree, list) and tree and all(isinstance(x, dict) for x in tree):
        for n, value in enumerate(tree):
            out.update(flatten(value, prefix + str(n) + "."))
    else:
        out[prefix[:-1]] = tree
    return out


# --------------------------------------------------------------------------
# Argument tables
# --------------------------------------------------------------------------

T, N, I = "translated", "not_modelled", "ignored"

# MindSpeed-LLM / Megatron arguments.  T: (T, what it becomes); N: (N, why it is not
# modelled; "{v}" is the script's value); I: (I, None).  A callable decides per script.
FLAGS = {
    # parallel layout
    "--tensor-model-parallel-size": (T, "layout.tp"),
    "--pipeline-model-parallel-size": (T, "layout.pp"),
    "--num-layers-per-virtual-pipeline-stage": (T, "layout.vpp = layers / (pp x this), schedule interleaved"),
    "--expert-model-parallel-size": (T, "layout.ep"),
    "--expert-tensor-parallel-size": (T, "layout.etp"),
    "--context-parallel-size": (T, "layout.cp"),
    "--sequence-parallel": (T, "layout.sequence_parallel"),
    "--use-distributed-optimizer": (T, "layout.distributed_optimizer"),
    "--overlap-grad-reduce": (T, "layout.overlap.dp_grad_reduce"),
    "--overlap-param-gather": (T, "layout.overlap.dp_param_gather"),
    "--use-mc2": (T, "layout.overlap.tp_comm (MC2 fuses the TP matmuls with their all-gather / reduce-scatter)"),
    "--use-ascend-coc": (T, "layout.overlap.tp_comm (communication-over-computation splits the TP matmuls "
                            "and pipelines them with their collectives)"),
    "--moe-fb-overlap": (T, "layout.overlap.ep_all_to_all (the forward of one microbatch runs beside the "
                            "backward of another, hiding the EP all-to-all, as DualPipe does)"),
    "--moe-alltoall-overlap-comm": (T, "layout.overlap.ep_all_to_all"),
    "--schedules-method": (T, "layout.schedule dualpipe (see assumptions.schedule)"),
    "--num-layer-list": (T, "layout.pipeline_layers"),
    "--noop-layers": (T, "model.layers = num-layers minus the noop layers; layout.pipeline_layers keeps the "
                         "script's layer slots per stage"),
    "--micro-batch-size": (T, "layout.micro_batch"),
    "--global-batch-size": (T, "layout.global_batch"),
    "--seq-length": (T, "layout.seq_len, model.seq_len"),
    "--recompute-granularity": (T, "layout.recompute"),
    "--recompute-method": (T, "layout.recompute (with --recompute-num-layers)"),
    "--recompute-num-layers": (T, "layout.recompute_num_layers (block method: the first N layers of each "
                                  "model chunk; uniform method: every layer)"),
    "--bf16": (T, "layout.precision bf16"),
    "--fp16": (T, "layout.precision bf16 (FP16 and BF16 run at the same rate on the 910B cube units)"),
    "--use-flash-attn": (T, "layout.flash_attention"),
    "--context-parallel-algo": None,  # decided per value below
    "--use-cp-send-recv-overlap": (T, "layout.cp_send_recv_overlap (absent: false, each ring step's send and receive "
                                      "run in turn on one communicator)"),
    "--cp-attention-mask-type": (T, "causal attention (moesim's)"),
    "--cp-window-size": (T, "window 1 = plain ring attention (moesim's)"),
    # model
    "--num-layers": (T, "model.layers"),
    "--hidden-size": (T, "model.hidden"),
    "--ffn-hidden-size": (T, "model.ffn.intermediate"),
    "--num-attention-heads": (T, "model.attention.heads"),
    "--group-query-attention": (T, "model.attention.type gqa"),
    "--num-query-groups": (T, "model.attention.kv_heads"),
    "--multi-head-latent-attention": (T, "model.attention.type mla"),
    "--multi-latent-attention": (T, "model.attention.type mla"),
    "--q-lora-rank": (T, "model.attention.q_lora_rank"),
    "--kv-lora-rank": (T, "model.attention.kv_lora_rank"),
    "--qk-nope-head-dim": (T, "model.attention.qk_nope_head_dim"),
    "--qk-head-dim": (T, "model.attention.qk_nope_head_dim"),
    "--qk-rope-head-dim": (T, "model.attention.qk_rope_head_dim"),
    "--qk-pos-emb-head-dim": (T, "model.attention.qk_rope_head_dim"),
    "--v-head-dim": (T, "model.attention.v_head_dim"),
    "--mla-fa-without-pad": (T, "moesim's MLA attention has no padding of v_head_dim to the qk head dim"),
    "--num-experts": (T, "model.moe.experts"),
    "--moe-router-topk": (T, "model.moe.top_k"),
    "--moe-intermediate-size": (T, "model.moe.expert_intermediate"),
    "--moe-ffn-hidden-size": (T, "model.moe.expert_intermediate"),
    "--n-shared-experts": (T, "model.moe.shared_experts 1 of width n x expert_intermediate (MindSpeed builds "
                              "the shared experts as one MLP of that width)"),
    "--moe-shared-expert-intermediate-size": (T, "model.moe.shared_experts 1, shared_expert_intermediate"),
    "--first-k-dense-replace": (T, "model.moe.first_dense_layers"),
    "--moe-layer-freq": (T, "every layer MoE (value 1), moesim's layout of MoE layers"),
    "--moe-router-num-groups": (T, "model.moe.router_groups"),
    "--moe-router-group-topk": (T, "model.moe.router_group_top_k"),
    "--moe-token-dispatcher-type": None,  # per value
    "--moe-grouped-gemm": (T, "layout.moe_grouped_gemm (absent in a MoE script: one GEMM per local expert)"),
    "--moe-permute-fusion": (T, "moesim's token permutation is one fused memory pass"),
    "--use-fused-moe-token-permute-and-unpermute": (T, "moesim's token permutation is one fused memory pass"),
    "--mtp-num-layers": (T, "model.mtp_layers"),
    "--untie-embeddings-and-output-weights": (T, "model.tie_embeddings false"),
    "--swiglu": (T, "model.ffn.activation swiglu"),
    "--vocab-size": (T, "model.vocab (padded as Megatron pads)"),
    "--padded-vocab-size": (T, "model.vocab"),
    "--make-vocab-size-divisible-by": (T, "model.vocab padding"),
    "--attention-dropout": (T, "model.dropout"),
    "--hidden-dropout": (T, "model.dropout"),
    "--position-embedding-type": (T, "model.learned_position_embeddings (rope/alibi: no position table)"),
    "--no-position-embedding": (T, "model.learned_position_embeddings false"),
    "--use-rotary-position-embeddings": (T, "rope: no position table (moesim's rope vector op)"),
    "--normalization": (T, "moesim's norm vector op (RMSNorm and LayerNorm cost alike)"),
    "--use-fused-rmsnorm": (T, "moesim counts the norm as one fused vector pass"),
    "--use-fused-swiglu": (T, "moesim counts the activation as one fused vector pass"),
    "--use-fused-rotary-pos-emb": (T, "moesim counts rope as one fused vector pass"),
    "--disable-bias-linear": (T, "moesim's linears have no bias"),
    "--gemm-gradient-accumulation-fusion": (T, "layout.gradient_accumulation_fusion (the GEMM accumulates "
                                               "into main_grad)"),
    "--max-position-embeddings": (T, "position table size when positions are learned (= seq-length)"),
    # performance-relevant, not modelled
    "--swap-attention": (N, "MindSpeed swap-attention offloads every layer's attention activations to host memory "
                            "and prefetches them in backward; with --recompute-num-layers N it also recomputes the "
                            "MLP block of the first N layers of each stage. moesim can neither swap only the "
                            "attention activations nor recompute only a MoE block: recorded as recompute full "
                            "(see assumptions.recompute)"),
    "--swap-optimizer": (T, "layout.optimizer_swap (optimizer states in host memory, reloaded in chunks for the "
                            "step)"),
    "--reuse-fp32-param": (N, "bf16 parameters share the fp32 master copy's memory (memory only)"),
    "--mtp-mem-efficient-logits": (N, "MTP logits computed in chunks to save memory (memory only)"),
    "--moe-permutation-async-comm": (T, "layout.moe_permutation_async_comm (MindSpeed's allgather permutation: "
                                        "an argsort and a second row gather; the combine accumulated in an fp32 "
                                        "buffer of all gathered tokens; with alltoall, MindSpeed's SequentialMLP: per-expert last-dim gathers and "
                                        "an output buffer filled by copies)"),
    "--moe-train-capacity-factor": (T, "layout.moe_capacity_factor (with layout.moe_dispatcher einsum: no "
                                       "--use-mcore-models)"),
    "--no-gradient-accumulation-fusion": (T, "layout.gradient_accumulation_fusion false (the weight-gradient "
                                             "GEMM writes a separate gradient, added to main_grad in one more "
                                             "pass per microbatch)"),
    "--no-bias-gelu-fusion": (N, "bias-add and GeLU run as separate kernels (an extra HBM pass); moesim counts one "
                                 "fused activation pass and no bias"),
    "--no-bias-swiglu-fusion": (N, "bias-add and SwiGLU run as separate kernels; moesim counts one fused pass"),
    "--no-bias-dropout-fusion": (N, "bias-add, dropout and residual add run as separate kernels; moesim counts "
                                    "one fused pass"),
    "--no-rope-fusion": (N, "rope runs as unfused elementwise kernels; moesim counts one fused pass"),
    "--mla-mm-split": (N, "MLA up-projections run as split matmuls (MindSpeed kernel choice)"),
    "--qk-layernorm": (N, "RMSNorm over every query and key head (a small vector op moesim omits)"),
    "--add-qkv-bias": (N, "bias on the QKV projection (a small vector op moesim omits)"),
    "--reset-attention-mask": (N, "document-masked (EOD-reset) attention: the attention FLOPs depend on the "
                                  "documents packed in each sequence; moesim computes full causal attention"),
    "--output-layer-slice-num": (N, "output layer computed in {v} slices to save memory"),
    "--optimize-recomp-communication-level": (N, "MindSpeed skips re-running TP communication inside full "
                                                 "recompute (level {v}); moesim recomputes the collectives"),
    "--topk-group": (N, "group-limited greedy routing to the best {v} device groups; the group count is not in "
                        "the script and moesim's router groups only change the hierarchical dispatch, which this "
                        "run does not use"),
    "--shared-expert-gate": (N, "sigmoid gate on the shared expert (one h x 1 GEMM per token; negligible)"),
    # performance-irrelevant
    **{f: (I, None) for f in (
        "--adam-beta1", "--adam-beta2", "--adam-eps", "--apply-query-key-layer-scaling", "--attention-softmax-in-fp32",
        "--beta-fast", "--beta-slow", "--ckpt-format", "--clip-grad", "--data-path", "--dim-model-base",
        "--distributed-backend", "--distributed-timeout-minutes", "--embedding-multiplier-scale", "--eval-interval",
        "--eval-iters", "--finetune", "--init-method-std", "--initial-loss-scale", "--input-jitter",
        "--is-instruction-dataset", "--load", "--log-interval", "--log-throughput", "--lr", "--lr-decay-iters",
        "--lr-decay-style", "--lr-warmup-fraction", "--lr-warmup-iters", "--manual-gc", "--manual-gc-interval",
        "--merge-file", "--min-lr", "--moe-aux-loss-coeff", "--moe-comm-aux-loss-coeff",
        "--moe-device-level-aux-loss-coeff", "--moe-router-dtype", "--moe-router-enable-expert-bias",
        "--moe-router-load-balancing-type", "--moe-router-score-function", "--moe-router-topk-scaling-factor",
        "--mtp-loss-scaling-factor", "--no-check-for-nan-in-loss-and-grad", "--no-load-optim", "--no-load-rng",
        "--no-masked-softmax-fusion", "--no-save-optim", "--no-save-rng", "--no-shared-storage",
        "--noisy_gate_policy", "--norm-epsilon", "--num-workers", "--output-multiplier-scale", "--post-norm",
        "--reset-position-ids", "--rope-scaling-beta-fast", "--rope-scaling-beta-slow", "--rope-scaling-factor",
        "--rope-scaling-mscale", "--rope-scaling-mscale-all-dim", "--rope-scaling-original-max-position-embeddings",
        "--rope-scaling-type", "--rotary-base", "--routed-scaling-factor", "--save", "--save-interval",
        "--scale-depth", "--scale-emb", "--seed", "--seq-aux", "--spec", "--split", "--stage", "--tokenizer-model",
        "--tokenizer-name-or-path", "--tokenizer-type", "--train-iters", "--transformer-impl", "--use-mcore-models",
        "--vocab-file", "--weight-decay")},
}


def classify_flag(flag, value, flags):
    """(category, text) for one MindSpeed argument."""
    if flag == "--context-parallel-algo":
        if int(flags.get("--context-parallel-size", 1)) == 1:
            return I, None  # no context parallelism: the algorithm is unused
        if value == "megatron_cp_algo":
            return T, "layout.cp as ring attention (Megatron CP; moesim's CP)"
        return N, ("%s: DeepSpeed-Ulysses CP (all-to-all of the heads before and after attention); moesim "
                   "models CP as ring attention (KV exchange), recorded as that" % value)
    if flag == "--moe-token-dispatcher-type":
        if value in ("alltoall", "allgather"):
            return T, "layout.moe_dispatcher %s" % value
        return N, ("%s dispatcher: moesim models the alltoall and allgather dispatchers only" % value)
    if flag in ("--no-masked-softmax-fusion", "--attention-softmax-in-fp32") and "--use-flash-attn" not in flags:
        field = "softmax_fusion false" if flag == "--no-masked-softmax-fusion" else "softmax_in_fp32"
        return T, ("layout.%s (unfused attention: the torch softmax path's passes over the s x s scores)" % field)
    if flag not in FLAGS:
        raise KeyError("unclassified MindSpeed argument " + flag + " (add it to FLAGS)")
    category, text = FLAGS[flag]
    return category, (text or "").replace("{v}", value)


# MindFormers YAML keys (flattened with dots).  Prefixes listed in YAML_IGNORED_PREFIXES
# are performance-irrelevant as a whole (data, logging, optimizer hyper-parameters ...).
YAML_IGNORED_PREFIXES = (
    "seed", "output_dir", "load_checkpoint", "src_strategy_path_or_dir", "auto_trans_ckpt", "only_save_strategy",
    "resume_training", "run_mode", "trainer.", "do_eval", "eval_step_interval", "eval_epoch_interval",
    "runner_config.epochs", "runner_config.sink_mode", "runner_config.sink_size",
    "runner_config.gradient_accumulation_steps", "optimizer.", "lr_schedule.", "train_dataset.", "train_dataset_task.",
    "eval_dataset.", "eval_dataset_task.", "use_parallel", "callbacks.", "eval_callbacks.", "processor.", "metric.",
    "runner_wrapper.", "auto_tune", "filepath_prefix", "autotune_per_step", "profile", "init_start_profile",
    "layer_scale", "layer_decay", "lr_scale_factor", "remote_save_url", "ignore_data_skip", "transform_process_num",
    "context.mode", "context.device_target", "context.enable_graph_kernel", "context.max_call_depth",
    "context.max_device_memory", "context.save_graphs", "context.save_graphs_path", "context.device_id",
    "context.jit_config", "context.memory_optimize_level", "context.mempool_block_size", "parallel.parallel_mode",
    "parallel.gradients_mean", "parallel.full_batch", "parallel.search_mode", "parallel.strategy_ckpt_save_file",
    "parallel.parallel_optimizer_config.gradient_accumulation_shard",
    "parallel.parallel_optimizer_config.parallel_optimizer_threshold", "parallel_config.gradient_aggregation_group",
    "model.model_config.type", "model.model_config.batch_size", "model.model_config.multiple_of",
    "model.model_config.rms_norm_eps", "model.model_config.bos_token_id", "model.model_config.eos_token_id",
    "model.model_config.pad_token_id", "model.model_config.ignore_token_id", "model.model_config.theta",
    "model.model_config.use_past", "model.model_config.extend_method", "model.model_config.checkpoint_name_or_path",
    "model.model_config.repetition_penalty", "model.model_config.max_decode_length", "model.model_config.top_k",
    "model.model_config.top_p", "model.model_config.do_sample", "model.model_config.max_position_embeddings",
    "model.model_config.auto_register", "model.model_config.sigma", "model.model_config.mean",
    "model.model_config.pretrain_seqlen", "model.model_config.use_past_shard", "model.model_config.rotary_dtype",
    "model.model_config.softmax_compute_type", "model.model_config.layernorm_compute_type",
    "model.model_config.router_dense_type", "model.model_config.parallel_optimizer", "model.arch.",
    "moe_config.aux_loss_factor", "moe_config.aux_loss_factors", "moe_config.aux_loss_types",
    "moe_config.routing_policy", "moe_config.router_dense_type", "moe_config.use_fused_ops_topkrouter",
    "moe_config.routed_scaling_factor", "moe_config.norm_topk_prob", "moe_config.z_loss_factor",
    "moe_config.balance_via_topk_bias", "moe_config.topk_bias_update_rate", "moe_config.comp_comm_parallel_degree",
    "micro_batch_interleave_num", "model.model_config.embed_dropout_prob",
)

YAML_KEYS = {
    "parallel_config.data_parallel": (T, "devices = data_parallel x model_parallel x pipeline_stage; dp"),
    "parallel_config.model_parallel": (T, "layout.tp"),
    "parallel_config.pipeline_stage": (T, "layout.pp"),
    "parallel_config.expert_parallel": (T, "layout.ep (carved out of data_parallel)"),
    "parallel_config.use_seq_parallel": (T, "layout.sequence_parallel"),
    "parallel_config.micro_batch_num": (T, "layout.global_batch = data_parallel x batch_size x micro_batch_num"),
    "parallel_config.vocab_emb_dp": (T, "embedding and output layer split over TP as moesim splits them (False, "
                                        "or True at model_parallel 1 where both are the same)"),
    "runner_config.batch_size": (T, "layout.micro_batch"),
    "parallel.enable_parallel_optimizer": (T, "layout.distributed_optimizer (MindSpore's parallel optimizer "
                                              "shards optimizer states over data parallel)"),
    "parallel.enable_alltoall": (T, "EP dispatch as all-to-all (moesim's)"),
    "parallel.pipeline_config.pipeline_interleave": (T, "layout.schedule interleaved"),
    "parallel.pipeline_config.pipeline_scheduler": (T, "1f1b-based interleaved schedule"),
    "recompute_config.recompute": (T, "layout.recompute"),
    "recompute_config.select_recompute": (T, "layout.recompute selective"),
    "model.model_config.seq_length": (T, "layout.seq_len, model.seq_len"),
    "model.model_config.hidden_size": (T, "model.hidden"),
    "model.model_config.intermediate_size": (T, "model.ffn.intermediate"),
    "model.model_config.num_layers": (T, "model.layers"),
    "model.model_config.num_heads": (T, "model.attention.heads"),
    "model.model_config.n_kv_heads": (T, "model.attention.kv_heads"),
    "model.model_config.vocab_size": (T, "model.vocab"),
    "model.model_config.kv_lora_rank": (T, "model.attention.kv_lora_rank"),
    "model.model_config.q_lora_rank": (T, "model.attention.q_lora_rank"),
    "model.model_config.qk_rope_head_dim": (T, "model.attention.qk_rope_head_dim"),
    "model.model_config.qk_nope_head_dim": (T, "model.attention.qk_nope_head_dim"),
    "model.model_config.v_head_dim": (T, "model.attention.v_head_dim"),
    "model.model_config.compute_dtype": (T, "layout.precision bf16 (float16 runs at the same rate on the 910B)"),
    "model.model_config.param_init_type": (T, "mixed precision with fp32 master weights and optimizer states "
                                              "(moesim's accounting)"),
    "model.model_config.use_flash_attention": (T, "layout.flash_attention"),
    "model.model_config.pp_interleave_num": (T, "layout.vpp"),
    "model.model_config.offset": (T, "layout.pipeline_layers (layers per stage = layers / stages + offset)"),
    "model.model_config.hidden_dropout_prob": (T, "model.dropout"),
    "model.model_config.attention_dropout_prob": (T, "model.dropout"),
    "model.model_config.fine_grain_interleave": (T, "layout.overlap.tp_comm (the micro-batch is split in {v} "
                                                    "interleaved slices so that TP communication of one runs "
                                                    "beside the compute of the other)"),
    "moe_config.expert_num": (T, "model.moe.experts"),
    "moe_config.num_experts_chosen": (T, "model.moe.top_k"),
    "moe_config.shared_expert_num": (T, "model.moe.shared_experts"),
    "moe_config.moe_intermediate_size": (T, "model.moe.expert_intermediate"),
    "moe_config.first_k_dense_replace": (T, "model.moe.first_dense_layers"),
    "moe_config.n_group": (T, "model.moe.router_groups"),
    "moe_config.topk_group": (T, "model.moe.router_group_top_k"),
    "moe_config.topk_method": (T, "group-limited routing (model.moe.router_groups)"),
    "moe_config.expert_group_size": (T, "group-limited routing (model.moe.router_groups)"),
    "moe_config.ep_extend_tp": (T, "layout.ep = expert_parallel x model_parallel, etp 1 (as MindSpeed's "
                                   "--moe-tp-extend-ep)"),
    "moe_config.group_wise_a2a": (T, "False: plain EP all-to-all (moesim's)"),
    "moe_config.comp_comm_parallel": (T, "False: no EP overlap (layout.overlap.ep_all_to_all false)"),
    "moe_config.capacity_factor": (N, "experts run on a fixed capacity of {v} x the balanced share of tokens "
                                      "(drop-and-pad: padded slots are computed, overflow dropped); moesim routes "
                                      "every token once (dropless), so a factor above 1 costs compute moesim does not "
                                      "count"),
    "moe_config.enable_sdrop": (N, "token dropping by capacity (see capacity_factor)"),
    "recompute_config.mp_comm_recompute": (N, "the TP communication of recomputed layers is recomputed too "
                                              "(value {v}); moesim recomputes the forward collectives of full recompute"),
    "recompute_config.recompute_slice_activation": (N, "saved activations sliced over TP (memory only, value {v})"),
    "recompute_config.parallel_optimizer_comm_recompute": (N, "the parallel optimizer's weight all-gather is "
                                                              "recomputed in backward instead of kept (value {v})"),
    "recompute_config.select_comm_recompute": (N, "communication operators recomputed per stage {v} (memory); "
                                                  "moesim's selective recompute reruns the attention core only"),
    "model.model_config.res_dtype": (N, "residual stream kept in {v} (extra HBM traffic and memory for the "
                                        "residual adds)"),
    "parallel.parallel_optimizer_config.optimizer_weight_shard_size": (
        N, "optimizer states sharded over {v} data-parallel ranks only (moesim's distributed optimizer shards over "
           "all of them)"),
    "context.ascend_config.parallel_speed_up_json_path": (
        N, "MindSpore communication/compute overlap switches in a JSON file ({v}) that is not in the repository"),
}


def classify_yaml_key(key, value, cfg):
    if key == "parallel_config.vocab_emb_dp" and value and cfg["parallel_config"]["model_parallel"] > 1:
        return N, ("True: the embedding and output layer stay data-parallel (whole vocabulary on every rank of the "
                   "model-parallel group); moesim splits them over TP")
    if key in YAML_KEYS:
        category, text = YAML_KEYS[key]
        return category, text.replace("{v}", json.dumps(value) if not isinstance(value, str) else value)
    if key.startswith(YAML_IGNORED_PREFIXES):
        return I, None
    raise KeyError("unclassified MindFormers YAML key " + key + " (add it to YAML_KEYS)")


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------

def canonical(model):
    """The architecture of a model object, for comparison with the built-in model files."""
    att = model["attention"]
    moe = model.get("moe")
    return (
        model["layers"], model["hidden"], model["vocab"],
        tuple(sorted((k, v) for k, v in att.items() if k != "head_dim"))
        + (("head_dim", att.get("head_dim", model["hidden"] // att["heads"])),) if att["type"] != "mla"
        else tuple(sorted(att.items())),
        model["ffn"]["intermediate"] if not moe or moe.get("first_dense_layers") else None,
        model["ffn"]["activation"],
        None if not moe else (moe["experts"], moe["top_k"], moe["expert_intermediate"], moe.get("shared_experts", 0),
                              moe.get("shared_expert_intermediate", moe["expert_intermediate"])
                              if moe.get("shared_experts") else None,
                              moe.get("first_dense_layers", 0), moe.get("router_groups"),
                              moe.get("router_group_top_k")),
        model.get("mtp_layers", 0), model.get("tie_embeddings", False), model.get("learned_position_embeddings", False),
        model.get("dropout", False), model.get("parallel_attention_ffn", False),
    )


def builtin_name(model):
    """The built-in model file whose architecture equals this model's, or None."""
    mine = canonical(model)
    for path in sorted(MODELS.glob("*.json")):
        other = json.loads(path.read_text())
        if "attention" in other and canonical(other) == mine:
            return path.stem
    return None


def padded_vocab(vocab, divisible_by, tp):
    multiple = divisible_by * tp
    return -(-vocab // multiple) * multiple


def model_from_flags(F, shared, tp, assume):
    """Inline model (models/*.json format) from MindSpeed-LLM arguments."""
    sm = shared["model"]
    total_layers = int(F["--num-layers"])
    noop = [int(x) for x in F["--noop-layers"].split(",")] if "--noop-layers" in F else []
    hidden = int(F["--hidden-size"])
    heads = int(F["--num-attention-heads"])
    if "--multi-head-latent-attention" in F or "--multi-latent-attention" in F:
        attention = {
            "type": "mla", "heads": heads,
            "q_lora_rank": int(F.get("--q-lora-rank", 0)),
            "kv_lora_rank": int(F["--kv-lora-rank"]),
            "qk_nope_head_dim": int(F.get("--qk-nope-head-dim") or F["--qk-head-dim"]),
            "qk_rope_head_dim": int(F.get("--qk-rope-head-dim") or F["--qk-pos-emb-head-dim"]),
            "v_head_dim": int(F["--v-head-dim"]),
        }
    else:
        kv = int(F["--num-query-groups"]) if "--group-query-attention" in F else heads
        attention = {"type": "gqa" if kv < heads else "mha", "heads": heads, "kv_heads": kv}
        if kv == heads and shared["model"]["num_kv_heads"] != kv:
            assume("model.attention.kv_heads", "script has no --group-query-attention: MHA (%d heads)" % heads)
        elif kv != (sm.get("num_kv_heads") or heads):
            assume("model.attention.kv_heads", "the script's %d query groups, not the public model's %s (the "
                                               "script is what ran)" % (kv, sm.get("num_kv_heads")))

    divisible = int(F.get("--make-vocab-size-divisible-by", 128))
    if "--padded-vocab-size" in F:
        vocab = int(F["--padded-vocab-size"])
    elif "--vocab-size" in F:
        vocab = padded_vocab(int(F["--vocab-size"]), divisible, tp)
    else:
        vocab = padded_vocab(sm["vocab_size"], divisible, tp)
        assume("model.vocab", "the script takes the vocabulary from its tokenizer (not in the repository): the "
                              "shared record's %d (%s), padded to a multiple of make-vocab-size-divisible-by %d x "
                              "TP %d = %d" % (sm["vocab_size"], sm["arch_source"], divisible, tp, vocab))

    ffn = int(F.get("--ffn-hidden-size", 4 * hidden))
    if "--ffn-hidden-size" not in F:
        assume("model.ffn.intermediate", "no --ffn-hidden-size: Megatron's default 4 x hidden = %d" % ffn)
    model = {
        "name": sm["name"] + " (launch script)",
        "layers": total_layers - len(noop),
        "hidden": hidden,
        "vocab": vocab,
        "seq_len": int(F["--seq-length"]),
        "attention": attention,
        "ffn": {"intermediate": ffn, "activation": "swiglu" if "--swiglu" in F else "gelu"},
    }
    if "--num-experts" in F:
        expert_ffn = int(F.get("--moe-intermediate-size") or F.get("--moe-ffn-hidden-size") or ffn)
        moe = {
            "experts": int(F["--num-experts"]),
            "top_k": int(F.get("--moe-router-topk", 2)),
            "expert_intermediate": expert_ffn,
            "shared_experts": 0,
            "first_dense_layers": int(F.get("--first-k-dense-replace", 0)),
        }
        if "--moe-router-topk" not in F:
            assume("model.moe.top_k", "no --moe-router-topk: Megatron's default 2")
        if "--n-shared-experts" in F:
            moe["shared_experts"] = 1
            moe["shared_expert_intermediate"] = int(F["--n-shared-experts"]) * expert_ffn
        if "--moe-shared-expert-intermediate-size" in F:
            moe["shared_experts"] = 1
            moe["shared_expert_intermediate"] = int(F["--moe-shared-expert-intermediate-size"])
        if "--moe-router-num-groups" in F:
            moe["router_groups"] = int(F["--moe-router-num-groups"])
            moe["router_group_top_k"] = int(F["--moe-router-group-topk"])
        model["moe"] = moe
    model["mtp_layers"] = int(F.get("--mtp-num-layers", 0))
    model["tie_embeddings"] = "--untie-embeddings-and-output-weights" not in F
    position = F.get("--position-embedding-type", "learned_absolute")
    if position == "learned_absolute" and "--no-position-embedding" not in F:
        model["learned_position_embeddings"] = True
        if "--position-embedding-type" not in F:
            assume("model.learned_position_embeddings", "no --position-embedding-type: Megatron's default "
                                                        "learned_absolute")
    dropout = [float(F.get(k, 0.1)) for k in ("--attention-dropout", "--hidden-dropout")]
    if any(dropout):
        model["dropout"] = True
        assume("model.dropout", "attention / hidden dropout %g / %g (Megatron's default 0.1 where the script sets "
                                "none)" % tuple(dropout))
    model["source"] = {"config": "launch script " + shared["id"] + ".sh (" + source_line(shared) + ")"}
    return model


def source_line(shared):
    src = shared["source"]
    return "%s at commit %s" % (src["url"].split("/blob/")[0], src.get("commit") or "-")


def finish_model(model, assume):
    name = builtin_name(model)
    if name:
        assume("model", "the script's architecture equals the built-in model %s (models/%s.json); the name is used"
                        % (name, name))
        return name
    return model


# --------------------------------------------------------------------------
# Hardware
# --------------------------------------------------------------------------

def is_a3(shared):
    return shared["hardware"]["devices_per_node"] == 16


def hardware_of(shared, assume):
    dies = shared["hardware"]["num_devices"]
    if is_a3(shared):
        assume("hardware.profile", "Atlas A3 / 910C: ascend-910c-cm384, whose device is one compute die of a 910C "
                                   "package (its 'reasoning'). " + shared["hardware"]["accelerator"])
        assume("hardware.devices", "the script counts %d logical devices (16 per node = 8 dual-die 910C packages "
                                   "per node, CANN exposes each die as a rank): %d dies, the two dies of a package "
                                   "joined by the profile's SIO tier" % (dies, dies))
        return {"profile": "ascend-910c-cm384", "devices": dies}
    assume("hardware.profile", "Ascend 910B; the bin (910B1/B2/B3) is not stated: ascend-910b2 (24 cube cores, "
                               "353.9 TFLOPS BF16, the 354 TFLOPS MindSpeed divides by). Source: "
                               + shared["hardware"]["accelerator"])
    return {"profile": "ascend-910b2", "devices": dies}


# --------------------------------------------------------------------------
# Layout from MindSpeed-LLM arguments
# --------------------------------------------------------------------------

OVERLAP_FLAGS = (
    ("dp_grad_reduce", ("--overlap-grad-reduce",)),
    ("dp_param_gather", ("--overlap-param-gather",)),
    ("tp_comm", ("--use-mc2", "--use-ascend-coc")),
    ("ep_all_to_all", ("--moe-alltoall-overlap-comm", "--moe-fb-overlap")),
)


def layout_from_flags(F, shared, model, hardware, assume):
    total_layers = int(F["--num-layers"])
    tp = int(F.get("--tensor-model-parallel-size", 1))
    pp = int(F.get("--pipeline-model-parallel-size", 1))
    cp = int(F.get("--context-parallel-size", 1))
    ep = int(F.get("--expert-model-parallel-size", 1))
    is_moe = "--num-experts" in F
    if "--expert-tensor-parallel-size" in F:
        etp = int(F["--expert-tensor-parallel-size"])
    else:
        etp = tp
        if is_moe:
            assume("etp", "no --expert-tensor-parallel-size: experts split over TP like the dense layers "
                          "(Megatron's default expert TP = TP)")
        else:
            assume("etp", "dense model: unused (= tp)")
    if "--moe-tp-extend-ep" in F:
        ep, etp = tp * ep, 1
    for name, value, flag in (("tp", tp, "--tensor-model-parallel-size"), ("pp", pp, "--pipeline-model-parallel-size"),
                              ("cp", cp, "--context-parallel-size"), ("ep", ep, "--expert-model-parallel-size")):
        if flag not in F:
            assume(name, "no %s in the script: Megatron's default 1" % flag)
    if "--num-layers-per-virtual-pipeline-stage" in F:
        per = int(F["--num-layers-per-virtual-pipeline-stage"])
        vpp = total_layers // (pp * per)
        assert vpp * pp * per == total_layers, shared["id"]
    else:
        vpp = 1
        assume("vpp", "no --num-layers-per-virtual-pipeline-stage: no interleaving")

    # Recompute
    granularity = F.get("--recompute-granularity")
    method = F.get("--recompute-method")
    stage_layers = total_layers // pp
    recompute_num_layers = 0
    chunk_layers = total_layers // (pp * vpp)
    if granularity == "full":
        recompute = "full"
        # Megatron-LM of 2023-24 (ModelLink's base) defaults --recompute-num-layers to 1.
        n = int(F.get("--recompute-num-layers", 1))
        if method == "uniform":
            assume("recompute", "full, uniform method with groups of %d layer(s): every layer is recomputed" % n)
        elif n < chunk_layers:
            recompute_num_layers = n
            assume("recompute_num_layers", "block method: %d of the %d layers of each model chunk recomputed%s" % (
                n, chunk_layers, "" if "--recompute-num-layers" in F else
                " (no --recompute-num-layers: the Megatron-LM default of the period, 1)"))
        else:
            assume("recompute", "full, block method with %d layers >= the %d layers per model chunk: every layer" % (
                n, chunk_layers))
    elif granularity == "selective":
        recompute = "selective"
    elif "--swap-attention" in F:
        recompute = "full"
        n = int(F.get("--recompute-num-layers", 0))
        assume("recompute", "no --recompute-granularity, but --swap-attention with --recompute-num-layers %d "
                            ">= the %d layers per stage: MindSpeed recomputes the MLP (here MoE) block of every "
                            "layer and swaps the attention activations to host. Recorded as full recompute, the "
                            "closest moesim setting (it also recomputes the attention forward, which MindSpeed "
                            "prefetches instead)" % (n, stage_layers))
    else:
        recompute = "none"
        assume("recompute", "no --recompute-granularity in the arguments passed to the training script: none")

    if F.get("--schedules-method") == "dualpipev":
        schedule = "dualpipe"
        assume("schedule", "--schedules-method dualpipev: DualPipeV folds the layers into 2 x PP chunks, device d "
                           "holding chunks d and 2PP-1-d, with one copy of the parameters. moesim's dualpipe is "
                           "DeepSeek's DualPipe (each device runs stage d of one direction and stage PP-1-d of the "
                           "other): the same bidirectional bubble and per-device work, but two parameter copies, so "
                           "weight and gradient memory and the DP gradient traffic are overstated")
    elif vpp > 1:
        schedule = "interleaved"
    else:
        schedule = "1f1b"
        assume("schedule", "Megatron 1F1B (no virtual pipeline, no other schedule flag)")

    overlap = {}
    absent = []
    for field, flags in OVERLAP_FLAGS:
        overlap[field] = any(f in F for f in flags)
        if not overlap[field]:
            absent.append("%s (%s)" % (field, " / ".join(flags)))
    if absent:
        assume("overlap", "off where the script has no flag for it: " + ", ".join(absent))

    precision = "bf16"
    if "--fp16" in F:
        assume("precision", "--fp16: recorded as bf16, FP16 and BF16 run at the same rate on the 910B cube units "
                            "(the FP16 label 376 TFLOPS is the marketing figure of the same cores)")
    elif "--bf16" not in F:
        raise ValueError(shared["id"] + ": neither --bf16 nor --fp16")

    layout = {
        "tp": tp, "pp": pp, "vpp": vpp, "ep": ep, "etp": etp, "cp": cp,
        "sequence_parallel": "--sequence-parallel" in F,
        "micro_batch": int(F["--micro-batch-size"]),
        "global_batch": int(F["--global-batch-size"]),
        "seq_len": int(F["--seq-length"]),
        "recompute": recompute,
        "schedule": schedule,
        "distributed_optimizer": "--use-distributed-optimizer" in F,
        "precision": precision,
        "overlap": overlap,
        "flash_attention": "--use-flash-attn" in F,
    }
    if "--use-flash-attn" not in F:
        # Megatron's FusedScaleMaskSoftmax: unfused torch softmax with --no-masked-softmax-fusion, in fp32 with
        # --attention-softmax-in-fp32 (the same translation as sim/io/launch_translate.cpp).
        layout["softmax_fusion"] = "--no-masked-softmax-fusion" not in F
        layout["softmax_in_fp32"] = "--attention-softmax-in-fp32" in F
    if cp > 1 and F.get("--context-parallel-algo") == "megatron_cp_algo" and "--use-cp-send-recv-overlap" not in F:
        # MindSpeed's ring posts each step's send and receive on one communicator without the flag
        # (mindspeed/core/context_parallel/utils.py RingP2P): they run in turn.
        layout["cp_send_recv_overlap"] = False
    if recompute_num_layers:
        layout["recompute_num_layers"] = recompute_num_layers
    if "--no-gradient-accumulation-fusion" in F:
        layout["gradient_accumulation_fusion"] = False
    if "--swap-optimizer" in F:
        layout["optimizer_swap"] = True
    if is_moe and "--moe-grouped-gemm" not in F:
        layout["moe_grouped_gemm"] = False
        assume("moe_grouped_gemm", "no --moe-grouped-gemm: one GEMM per local expert (Megatron's SequentialMLP)")
    if F.get("--moe-token-dispatcher-type") == "allgather":
        layout["moe_dispatcher"] = "allgather"
    elif is_moe and "--moe-token-dispatcher-type" not in F:
        if "--use-mcore-models" in F:
            layout["moe_dispatcher"] = "allgather"
            assume("moe_dispatcher", "no --moe-token-dispatcher-type: Megatron-Core's default, allgather "
                                     "(megatron/training/arguments.py, default='allgather')")
        elif "--moe-train-capacity-factor" in F or "--noisy_gate_policy" in F:
            capacity = float(F.get("--moe-train-capacity-factor", 1.0))  # ModelLink adaptor_arguments.py default
            layout["moe_dispatcher"] = "einsum"
            layout["moe_capacity_factor"] = capacity
            assume("moe_dispatcher", "no --use-mcore-models and no --moe-token-dispatcher-type, with "
                                     "--moe-train-capacity-factor %g and --noisy_gate_policy: MindSpeed-LLM's legacy "
                                     "MoE (modellink/model/moe.py SwitchMLP over AscendSpeed's DeepSpeed-style MoE, "
                                     "ascendspeed/components/moe: GShard top2gating with capacity ceil(k x %g x S / E), "
                                     "dense S x E x C masks, einsum dispatch and combine as matmuls, experts on the "
                                     "padded buffers): einsum" % (capacity, capacity))
        else:
            assume("moe_dispatcher", "no --moe-token-dispatcher-type and no --use-mcore-models (legacy model "
                                     "path, dispatcher not named): alltoall; at EP <= 2 with top-2 the allgather "
                                     "dispatcher moves the same bytes")
    # MindSpeed's permutation and expert paths (the same rule as sim/io/launch_translate.cpp).
    if layout.get("moe_dispatcher") != "einsum" and "--moe-permutation-async-comm" in F:
        layout["moe_permutation_async_comm"] = True
    if "--sequence-parallel" in F and tp == 1:
        assume("sequence_parallel", "--sequence-parallel with TP 1 has no effect")
    if "--sequence-parallel" not in F and tp > 1:
        assume("sequence_parallel", "no --sequence-parallel although TP %d: off" % tp)
    if "--use-distributed-optimizer" not in F:
        assume("distributed_optimizer", "no --use-distributed-optimizer: plain DP optimizer")
    if "--use-flash-attn" not in F:
        assume("flash_attention", "no --use-flash-attn: unfused attention (scores materialised)")
    if "--num-layer-list" in F:
        layout["pipeline_layers"] = [int(x) for x in F["--num-layer-list"].split(",")]
    if "--noop-layers" in F:
        noop = [int(x) for x in F["--noop-layers"].split(",")]
        parts = pp if schedule == "dualpipe" else pp * vpp
        per = total_layers // parts
        layout["pipeline_layers"] = [per - sum(1 for x in noop if k * per <= x < (k + 1) * per) for k in range(parts)]
        assume("pipeline_layers", "--num-layers %d with --noop-layers %s: %d real layers; the noop layers (no "
                                  "compute) sit in the script's last layer slots, so the last part holds %d real "
                                  "layers" % (total_layers, F["--noop-layers"], total_layers - len(noop),
                                              layout["pipeline_layers"][-1]))
    return layout


# --------------------------------------------------------------------------
# MindFormers (YAML)
# --------------------------------------------------------------------------

def from_yaml(shared, cfg, assume):
    Y = flatten(cfg)
    mc = cfg["model"]["model_config"]
    moe_cfg = cfg.get("moe_config")
    pc = cfg["parallel_config"]
    dp, tp, pp = pc["data_parallel"], pc["model_parallel"], pc["pipeline_stage"]
    sm = shared["model"]
    hidden, heads = mc["hidden_size"], mc["num_heads"]
    if "kv_lora_rank" in mc:
        attention = {"type": "mla", "heads": heads, "q_lora_rank": mc["q_lora_rank"],
                     "kv_lora_rank": mc["kv_lora_rank"], "qk_nope_head_dim": mc["qk_nope_head_dim"],
                     "qk_rope_head_dim": mc["qk_rope_head_dim"], "v_head_dim": mc["v_head_dim"]}
    else:
        kv = mc.get("n_kv_heads") or heads
        attention = {"type": "gqa" if kv < heads else "mha", "heads": heads, "kv_heads": kv}
    model = {
        "name": sm["name"] + " (MindFormers YAML)",
        "layers": mc["num_layers"],
        "hidden": hidden,
        "vocab": mc["vocab_size"],
        "seq_len": mc["seq_length"],
        "attention": attention,
        "ffn": {"intermediate": mc["intermediate_size"], "activation": "swiglu"},
    }
    assume("model.ffn.activation", "not a YAML key: SwiGLU, the gated FFN of the %s model class (LLaMA-style "
                                   "feed_forward w1/w2/w3)" % mc["type"])
    ep = 1
    etp = tp
    if moe_cfg:
        moe = {"experts": moe_cfg["expert_num"], "top_k": moe_cfg["num_experts_chosen"],
               "expert_intermediate": moe_cfg.get("moe_intermediate_size", mc["intermediate_size"]),
               "shared_experts": moe_cfg.get("shared_expert_num", 0),
               "first_dense_layers": moe_cfg.get("first_k_dense_replace", 0)}
        if "n_group" in moe_cfg:
            moe["router_groups"] = moe_cfg["n_group"]
            moe["router_group_top_k"] = moe_cfg["topk_group"]
        model["moe"] = moe
        ep = pc.get("expert_parallel", 1)
        if moe_cfg.get("ep_extend_tp"):
            assume("ep", "expert_parallel %d with ep_extend_tp: the experts are split over expert_parallel x "
                         "model_parallel = %d ranks without splitting their weights (as MindSpeed's "
                         "--moe-tp-extend-ep, validation/pangu-ultra-moe.json)" % (ep, ep * tp))
            ep, etp = ep * tp, 1
            assume("etp", "ep_extend_tp: expert weights are not split over model_parallel")
        else:
            assume("etp", "MindFormers splits expert weights over model_parallel (expert TP = TP %d)" % tp)
    else:
        assume("etp", "dense model: unused (= tp)")
    model["mtp_layers"] = 0
    model["tie_embeddings"] = False
    assume("model.tie_embeddings", "not a YAML key; untied input and output embeddings assumed (%s)" % sm["name"])
    if mc.get("hidden_dropout_prob") or mc.get("attention_dropout_prob"):
        model["dropout"] = True
    model["source"] = {"config": "MindFormers YAML " + shared["id"] + ".yaml (" + source_line(shared) + ")"}

    micro = cfg["runner_config"]["batch_size"]
    gbs = dp * micro * pc["micro_batch_num"]
    assume("global_batch", "data_parallel %d x batch_size %d x micro_batch_num %d = %d sequences (MindFormers' "
                           "global batch with pipeline stages)" % (dp, micro, pc["micro_batch_num"], gbs))
    rc = cfg["recompute_config"]
    stage_layers = mc["num_layers"] // pp
    if rc.get("select_recompute") is True and not rc.get("recompute"):
        recompute = "selective"
    elif rc.get("recompute") is True:
        recompute = "full"
    elif isinstance(rc.get("recompute"), list):
        recompute = "full"
        assume("not_modelled.recompute_config.recompute",
               "per-stage full recompute %s of the %d layers per stage: only some layers of some stages are "
               "recomputed; moesim recomputes all (recompute full)" % (rc["recompute"], stage_layers))
    else:
        recompute = "none"
    vpp = mc.get("pp_interleave_num", 1)
    schedule = "interleaved" if vpp > 1 else "1f1b"
    assume("schedule", "MindSpore pipeline parallel: 1F1B%s (MindSpore's pipeline_scheduler default)"
           % (", interleaved over %d chunks" % vpp if vpp > 1 else ""))
    layout = {
        "tp": tp, "pp": pp, "vpp": vpp, "ep": ep, "etp": etp, "cp": 1,
        "sequence_parallel": bool(pc.get("use_seq_parallel")),
        "micro_batch": micro, "global_batch": gbs, "seq_len": mc["seq_length"],
        "recompute": recompute, "schedule": schedule,
        "distributed_optimizer": bool(cfg["parallel"].get("enable_parallel_optimizer")),
        "precision": "bf16",
        "overlap": {"ep_all_to_all": bool(moe_cfg and moe_cfg.get("comp_comm_parallel")),
                    "tp_comm": bool(mc.get("fine_grain_interleave", 1) > 1),
                    "dp_grad_reduce": True, "dp_param_gather": True},
        "flash_attention": bool(mc.get("use_flash_attention")),
    }
    assume("cp", "no context parallelism in the YAML")
    assume("overlap", "MindSpore graph mode overlaps the data-parallel gradient reduction and the parallel "
                      "optimizer's weight gathers with compute (assumed); TP overlap only with fine_grain_interleave; "
                      "no EP overlap (comp_comm_parallel not set)")
    if mc["compute_dtype"] == "float16":
        assume("precision", "compute_dtype float16: recorded as bf16, the same rate on the 910B cube units")
    if isinstance(mc.get("offset"), list):
        base = mc["num_layers"] // (pp * vpp)
        layout["pipeline_layers"] = [base + off for chunk in mc["offset"] for off in chunk]
        assume("pipeline_layers", "offset %s per interleave chunk and stage added to %d layers per virtual stage "
                                  "(chunk-major, as moesim orders virtual stages)" % (mc["offset"], base))
    return model, layout, Y


# --------------------------------------------------------------------------
# Flag bookkeeping
# --------------------------------------------------------------------------

def record_flags(items, classify, assume):
    translated, ignored = [], []
    for key, value in items:
        category, text = classify(key, value)
        if category == T:
            translated.append("%s -> %s" % (key, text))
        elif category == N:
            assume("not_modelled." + key, text)
        else:
            ignored.append(key)
    assume("translated_flags", "; ".join(translated))
    assume("ignored_flags", " ".join(ignored))


# --------------------------------------------------------------------------
# Measured
# --------------------------------------------------------------------------

def stated_per_device(shared, hardware, assume):
    """(tokens_per_s for the whole job, note) from the source's per-device figure."""
    per = shared["measured"]["tokens_per_sec_per_device"]
    dies = shared["hardware"]["num_devices"]
    rid = shared["id"]
    if not is_a3(shared):
        return per * dies, "%g tokens/s per NPU as stated x %d NPUs" % (per, dies)
    if rid == "mindspeed-mixtral-8x22b-a3internal-32k":
        assume("measured.tokens_per_s", "'tokens/p/s' of the README's 性能2 column: read per logical device (die), "
                                        "the unit the 910B column of the same row uses for the same script and "
                                        "layout (239 per 910B). Per 910C package it would be 254 x 32 = 8128 "
                                        "tokens/s, half the 64-NPU 910B cluster's 15296 with twice its silicon, "
                                        "which is implausible; per die it is 6% above the 910B row")
        return per * dies, "%g tokens/s per logical device (die) x %d dies" % (per, dies)
    assume("measured.tokens_per_s", "the 2026 A3 table prints only 'tokens/s': read per 910C package (chip), as "
                                    "%s ('Conventions and peaks: A3 units') concludes: per die the Qwen3-8B row "
                                    "would need about 373 TFLOPS per die, impossible" % SHARED_README)
    return per * (dies // 2), "%g tokens/s per 910C package x %d packages (%d dies)" % (per, dies // 2, dies)


def measured_of(shared, hardware, metric, assume):
    src = shared["measured"]
    out, other = {}, {}
    if metric == "mfu":
        out["mfu"] = round(src["mfu_pct"] / 100, 6)
    elif metric == "tokens_per_s":
        total, how = stated_per_device(shared, hardware, assume)
        out["tokens_per_s"] = round(total, 3)
        other["tokens_per_s_per_device_stated"] = src["tokens_per_sec_per_device"]
        other["tokens_per_s_method"] = how
    if src.get("iteration_time_s") is not None:
        out["iteration_time_s"] = src["iteration_time_s"]
    if metric != "mfu" and src.get("mfu_pct") is not None:
        other["mfu"] = round(src["mfu_pct"] / 100, 6)
    if other:
        out["other"] = other
    return out


# --------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------

SKIP = {
    "mindformers-deepseek-v2-236b-64npu-ft-4k":
        "unit in doubt: 36 tokens/s per NPU is about 1.6% MFU (6 TFLOPS per NPU); the collectors flag it as "
        "either an early bring-up figure or not per NPU (../shared/validation/ascend_runs.json notes) and it is "
        "usable only as a sanity bound",
    "pangu-ultra-moe-718b-10k-41mfu":
        "no device count ('万卡', about 10,000 NPUs, exact number not published), no batch and no micro-batch; "
        "known only from press summaries",
}
for _n in (256, 512, 1024, 2048, 4096, 6144, 7968):
    SKIP["mindspeed-gpt3-175b-linearity-%dnpu" % _n] = (
        "layout and batch not stated for the chart's points above 128 NPUs (the only GPT-3 175B script, TP8 PP16 "
        "VPP3 MBS2 GBS1024, is for 128 NPUs; whether the chart scaled the batch with the devices is not said)"
        + ("; 7968 is not even a multiple of TP8 x PP16 = 128" if _n == 7968 else ""))

MFU_SCORED = {  # records whose source states MFU directly (scored on mfu)
    "mindspeed-mixtral-8x7b-64npu-mfu31.0", "mindspeed-llama2-7b-8npu-mfu68.8", "mindspeed-llama2-70b-32npu-mfu55.8",
    "mindspeed-llama2-70b-32npu-mfu44.1", "mindspeed-llama2-7b-8npu-sft16k-mfu56.0",
}

CONVENTION_MINDSPEED = "mindspeed"


def base_record(shared):
    src = shared["source"]
    return {
        "id": shared["id"],
        "source": {"url": src["url"], "where": src["location"], "title": src["title"]},
    }


def convert_script(shared, script_dir):
    rid = shared["id"]
    assumptions = {}

    def assume(field, reason):
        assumptions[field] = reason

    hardware = hardware_of(shared, assume)
    sh = script_dir / (rid + ".sh")
    yml = script_dir / (rid + ".yaml")
    linearity = rid.startswith("mindspeed-gpt3-175b-linearity-")
    if linearity:
        sh = script_dir / "mindspeed-gpt3-175b-128npu.sh"
    if sh.exists():
        F = flags_of(parse_shell(sh.read_text()))
        tp = int(F.get("--tensor-model-parallel-size", 1))
        model = model_from_flags(F, shared, tp, assume)
        layout = layout_from_flags(F, shared, model, hardware, assume)
        record_flags(F.items(), lambda k, v: classify_flag(k, v, F), assume)
        script_name = sh.name
        framework = "MindSpeed-LLM (Megatron-LM on Ascend)"
    else:
        cfg = parse_yaml(yml.read_text())
        model, layout, Y = from_yaml(shared, cfg, assume)
        record_flags(Y.items(), lambda k, v: classify_yaml_key(k, v, cfg), assume)
        script_name = yml.name
        framework = "MindSpore Transformers (MindFormers), MindSpore graph mode; modelled with Megatron semantics"
        assume("framework", "MindFormers YAML run (full-parameter fine-tuning on samples padded to seq_length: the "
                            "same compute as pre-training); MindSpore's semi-auto parallel is modelled with "
                            "Megatron-Core's TP/PP/EP semantics")
    if linearity:
        n = hardware["devices"]
        assume("layout", "the chart (commit %s) gives no layout: every value comes from the only GPT-3 175B script "
                         "(mindspeed-gpt3-175b-128npu.sh, commit 62c40eef, three months earlier), which fits %d "
                         "NPUs; whether the chart's run used it is not stated" % (shared["source"]["commit"][:8], n))
        if n != 128:
            dp = n // 128
            layout["global_batch"] = 8 * n
            assume("global_batch", "not stated: the 128-NPU script's 8 sequences per NPU (guess, skipped record)")
    model_out = finish_model(model, assume)

    if rid in MFU_SCORED or linearity:
        metric, convention = "mfu", CONVENTION_MINDSPEED
    else:
        metric, convention = "tokens_per_s", "none"
    out = base_record(shared)
    out.update({
        "model": model_out,
        "hardware": hardware,
        "layout": layout,
        "assumptions": assumptions,
        "measured": measured_of(shared, hardware, metric, assume),
        "convention": convention,
        "confidence": shared["confidence"],
        "quote": shared["quote"],
        "notes": "%s; script %s (../shared/validation/ascend/scripts/). %s" % (framework, script_name,
                                                                             shared["notes"]),
    })
    if rid == "mindspeed-llama2-7b-8npu-sft16k-mfu56.0":
        out["measured"]["other"] = {"samples_per_s": 1.78}
        out["derived"] = {"tokens_per_s_per_device": {
            "value": shared["measured"]["tokens_per_sec_per_device"],
            "method": "1.78 samples/s x 16384 / 8 NPUs (the collectors' arithmetic)"}}
        assume("measured", "the source states MFU 56.0% and 1.78 samples/s; MFU is the figure the MFU table states "
                           "directly and is scored, samples/s kept in measured.other")
    if rid in SKIP:
        out["skip_reason"] = SKIP[rid]
    return out


def convert_pangu_moe(shared):
    full = json.loads(PANGU_RECORD.read_text())[0]
    out = base_record(shared)
    rid = shared["id"]
    if rid == "pangu-ultra-moe-718b-6k-30mfu":
        assumptions = {"layout": "copied with its reasons from %s (record %s), which is hand-written"
                                 % (PANGU_RECORD.relative_to(ROOT), full["id"])}
        assumptions.update(full["assumptions"])
        out.update({"model": full["model"], "hardware": full["hardware"], "layout": full["layout"],
                    "assumptions": assumptions,
                    "measured": {"mfu": 0.30, "other": {"tokens_per_s": 1.46e6,
                                                       "tokens_per_s_note": "secondary transcriptions only"}},
                    "convention": "pangu", "derived": full["derived"]})
    elif rid == "pangu-ultra-moe-718b-4k-baseline":
        layout = dict(full["layout"])
        layout["overlap"] = dict(layout["overlap"], ep_all_to_all=False)
        layout["ep_all_to_all"] = "pairwise"
        layout["global_batch"] = 2048
        # The memory optimisation (fine-grained recompute + swap) came after the baseline: stock full recompute.
        layout["recompute"] = "full"
        del layout["recompute_modules"]
        layout["activation_swap"] = 0.0
        assumptions = {
            "layout": "the baseline's layout is not published (../shared/reference/pangu.md 4.4 has only 4K NPUs, "
                      "18.9%% MFU, 0.61M tokens/s): the 6K run's layout (%s) with the optimizations the paper adds "
                      "after the baseline switched off; every value below is an assumption" % full["id"],
            "hardware.profile": full["assumptions"]["hardware.profile"],
            "hardware.devices": "'4K' NPUs read as 4096 = TP 8 x PP 16 x DP 32 (pangu.md 7.1 uses 4096 as well)",
            "tp": "as the 6K run (secondary: TP 8), assumed unchanged",
            "pp": "as the 6K run (secondary: PP 16), assumed unchanged",
            "vpp": "as the 6K run (VPP 2), assumed unchanged",
            "ep": "as the 6K run: TP-extend-EP over TP 8 x EP 4 = 32 ranks, assumed unchanged",
            "etp": "TP-extend-EP does not split expert weights",
            "cp": "not found; 1",
            "sequence_parallel": full["assumptions"]["sequence_parallel"],
            "micro_batch": "as the 6K run (secondary: 2)",
            "global_batch": "not found. 2048 sequences: 32 microbatches per pipeline at DP 32 x MBS 2, the same "
                            "count (and interleaved bubble) as the 6K record's 3072 at DP 48 (3072 is not a multiple "
                            "of DP 32 x MBS 2 x PP 16 = 1024 as the interleaved schedule needs)",
            "seq_len": "not found; 4096 as the 6K record",
            "recompute": "full, no swap: the memory optimisation (fine-grained recomputation with tensor swapping) is "
                         "one of the optimizations the paper adds after the baseline (pangu.md 4.4), so the baseline ran "
                         "without it; full recompute as MindSpeed-LLM's own recipe for this model shape runs it "
                         "(DeepSeek-V3: --recompute-granularity full --recompute-method block --recompute-num-layers 8, "
                         "every layer of a 4-layer stage; ../shared/validation/ascend/scripts/"
                         "mindspeed-deepseek-v3-671b-a3-512dev-4k.sh)",
            "activation_swap": "0: tensor swapping is part of the later memory optimisation",
            "pipeline_layers": full["assumptions"]["pipeline_layers"],
            "expert_balance": "the dynamic device-level load balancing added after the baseline is not modelled as its "
                              "absence: the baseline's per-expert load is not published, so both records run balanced",
            "schedule": "interleaved, implied by VPP 2",
            "distributed_optimizer": full["assumptions"]["distributed_optimizer"],
            "precision": full["assumptions"]["precision"],
            "overlap.ep_all_to_all": "false: Adaptive Pipe Overlap is one of the optimizations added after the "
                                     "baseline (pangu.md 4.4)",
            "ep_all_to_all": "pairwise: Hierarchical EP All-to-All is one of the optimizations added after the "
                             "baseline (pangu.md 4.4)",
            "overlap.tp_comm": full["assumptions"]["overlap.tp_comm"],
            "overlap.dp_grad_reduce": full["assumptions"]["overlap.dp_grad_reduce"],
            "overlap.dp_param_gather": full["assumptions"]["overlap.dp_param_gather"],
            "measured": "MFU and tokens/s both from secondary transcriptions; MFU scored (as the 6K record, same "
                        "FLOP definition: the two records' tokens/s per NPU and MFU change by the same ratio), "
                        "tokens/s kept in measured.other",
        }
        out.update({"model": full["model"], "hardware": {"profile": "ascend-910b2", "devices": 4096},
                    "layout": layout, "assumptions": assumptions,
                    "measured": {"mfu": 0.189, "other": {"tokens_per_s": 0.61e6}},
                    "derived": {"tokens_per_s_per_device": {"value": 148.9, "method": "0.61M tokens/s / 4096 NPUs "
                                                                                      "(the collectors' arithmetic)"}},
                    "convention": "pangu"})
    else:  # 10K 41% (skipped)
        layout = dict(full["layout"], seq_len=8192)
        out.update({"model": full["model"], "hardware": {"profile": "ascend-910b2", "devices": 6144},
                    "layout": layout,
                    "assumptions": {"layout": "copied from %s with seq_len 8192 (press summary); the devices (about "
                                              "10K), batch and micro-batch are unknown; record skipped" % full["id"],
                                    "hardware.devices": "unknown ('万卡'); 6144 is a placeholder"},
                    "measured": {"mfu": 0.41}, "convention": "palm"})
    out.update({"confidence": shared["confidence"], "quote": shared["quote"],
                "notes": "Pangu Ultra MoE (MindSpeed + Megatron on Atlas 800T A2). " + shared["notes"]})
    if rid in SKIP:
        out["skip_reason"] = SKIP[rid]
    return out


def convert_pangu_dense(shared):
    out = base_record(shared)
    mc2 = shared["id"].endswith("52mfu")
    layout = {"tp": 8, "pp": 8, "vpp": 6, "ep": 1, "etp": 8, "cp": 1, "sequence_parallel": True,
              "micro_batch": 1, "global_batch": 2048, "seq_len": 4096, "recompute": "none",
              "schedule": "interleaved", "distributed_optimizer": True, "precision": "bf16",
              "overlap": {"ep_all_to_all": False, "tp_comm": mc2, "dp_grad_reduce": True, "dp_param_gather": True},
              "flash_attention": True}
    assumptions = {
        "model": "pangu-ultra-135b (models/pangu-ultra-135b.json): the report's §2 architecture",
        "hardware.profile": "8,192 Ascend NPUs, 8 per node on HCCS full mesh, 64 GB, RoCE 200 Gbps (report §4.1): "
                            "Atlas 800T A2-class 910B; the bin is not stated: ascend-910b2",
        "tp": "report §4.2: 8-way TP", "pp": "report §4.2: 8-way PP",
        "vpp": "report §4.2: 6 virtual stages per device",
        "ep": "dense model", "etp": "dense model: unused (= tp)", "cp": "4K sequences: no CP (sub-sequence CP is "
                                                                        "for 128K, §4.3)",
        "sequence_parallel": "report §4.2: sequence parallelism with TP",
        "micro_batch": "not stated; 1 reproduces both bubble figures of §4.2 (1F1B 7/23 = 30.43%, interleaved "
                       "7/103 = 6.8%) with 2048 sequences",
        "global_batch": "not stated for the MFU measurement; 2048 sequences of 4K, the main-phase batch (§3), which "
                        "with MBS 1 and DP 128 gives the 16 microbatches that reproduce the bubble figures",
        "seq_len": "main pre-training phase 4K (§3)",
        "recompute": "not stated; none assumed",
        "schedule": "interleaved 1F1B (§4.2)",
        "distributed_optimizer": "report §4.2: DP with ZeRO",
        "precision": "not stated; BF16 (910B has no FP8)",
        "overlap.tp_comm": ("MC2 (MatMul fused with the TP/SP all-gather and reduce-scatter) is among the §4.3 "
                            "optimizations that reach 52%" if mc2 else
                            "false: MC2 is one of the §4.3 optimizations added after this 43% baseline"),
        "overlap.dp_grad_reduce": "not stated; MindSpeed/Megatron DP overlap assumed",
        "overlap.dp_param_gather": "not stated; MindSpeed/Megatron DP overlap assumed",
        "overlap.ep_all_to_all": "dense model",
        "flash_attention": ("NPU Fusion Attention (§4.3; the 52% run adds its compressed reset-attention mask)"
                            if mc2 else "assumed: Ascend's fused attention kernel; the §4.3 change is its "
                                        "compressed mask, not the kernel itself"),
        "convention": "the report cites PaLM for MFU (6N + attention, non-causal) and gives no peak: palm at the "
                      "profile's 353.9 TFLOPS. The Ultra MoE report's pangu convention (256 TFLOPS, the figure the "
                      "later Pro MoE report states) rests on that report's two points; nothing here pins this "
                      "report's peak",
    }
    if mc2:
        assumptions["not_modelled.fused_ops"] = ("fused RMSNorm / SwiGLU / RoPE / gradient accumulation / PP "
                                                 "send-recv and NPU-side mask generation (§4.3): moesim already "
                                                 "counts one pass per vector op; mask generation and send-recv "
                                                 "fusion are not modelled")
        assumptions["measured"] = "stated as 'over 52%': 0.52 recorded"
    out.update({"model": "pangu-ultra-135b", "hardware": {"profile": "ascend-910b2", "devices": 8192},
                "layout": layout, "assumptions": assumptions,
                "measured": {"mfu": round(shared["measured"]["mfu_pct"] / 100, 6)}, "convention": "palm",
                "confidence": shared["confidence"], "quote": shared["quote"],
                "notes": "Pangu Ultra 135B dense (MindSpeed + Megatron). " + shared["notes"]})
    return out


def convert(shared, script_dir):
    rid = shared["id"]
    if rid.startswith("pangu-ultra-moe-"):
        out = convert_pangu_moe(shared)
    elif rid.startswith("pangu-ultra-135b-"):
        out = convert_pangu_dense(shared)
    else:
        out = convert_script(shared, script_dir)
    check(out)
    return out


ENUMS = {
    "recompute": {"none", "selective", "selective_op", "full"},
    "schedule": {"1f1b", "interleaved", "zero-bubble", "dualpipe", "gpipe"},
    "precision": {"bf16", "fp8"},
}
LAYOUT_FIELDS = ("tp", "pp", "vpp", "ep", "etp", "cp", "sequence_parallel", "micro_batch", "global_batch", "seq_len",
                 "recompute", "schedule", "distributed_optimizer", "precision", "overlap")


def check(rec):
    """Consistency checks; raise on anything the harness would trip over."""
    lay, rid = rec["layout"], rec["id"]
    for field in LAYOUT_FIELDS:
        assert field in lay, (rid, field)
    for field, allowed in ENUMS.items():
        assert lay[field] in allowed, (rid, field, lay[field])
    for field in ("tp", "pp", "vpp", "ep", "etp", "cp", "micro_batch", "global_batch", "seq_len"):
        assert isinstance(lay[field], int) and lay[field] >= 1, (rid, field, lay[field])
    devices = rec["hardware"]["devices"]
    model_parallel = lay["tp"] * lay["pp"] * lay["cp"]
    if devices % model_parallel:
        assert "skip_reason" in rec, (rid, devices, model_parallel)
        return
    dp = devices // model_parallel
    if lay["global_batch"] % (dp * lay["micro_batch"]):
        assert "skip_reason" in rec, (rid, "GBS not a multiple of DP x MBS", dp)
    if "skip_reason" not in rec:
        assert any(k in rec["measured"] for k in ("mfu", "tflops_per_device", "tokens_per_s", "iteration_time_s")), rid


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=pathlib.Path, default=DEFAULT_SRC)
    parser.add_argument("--scripts", type=pathlib.Path, default=DEFAULT_SCRIPTS)
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    source = json.loads(args.src.read_text())
    records = [convert(rec, args.scripts) for rec in source]

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n")

    skipped = [r for r in records if "skip_reason" in r]
    print("wrote %d records to %s (%d scored, %d skipped)"
          % (len(records), args.out, len(records) - len(skipped), len(skipped)))
    for r in skipped:
        print("  skipped %s: %s" % (r["id"], r["skip_reason"]))


if __name__ == "__main__":
    main()
