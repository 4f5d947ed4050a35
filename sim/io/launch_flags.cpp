// The flag table of the launch-script reader and the grouping of command-line words into flags.
#include "sim/io/launch_flags.h"

#include <algorithm>
#include <map>

namespace moesim::io::launch {

namespace {

using enum FlagUse;
using enum Arity;

// Every flag of the launch scripts under ../shared/validation/ascend/scripts and of the Megatron-LM
// moe_recipes YAMLs in tests/data/launch, and the flags the argument writer emits. What each model and
// layout flag sets is in launch_translate.cpp; the irrelevant ones are training hyperparameters, paths,
// logging, checkpointing and fused kernels (their speed is part of the profile's fitted efficiencies).
constexpr FlagInfo flag_table[] = {
    // Model
    {"num-layers", model, one}, {"hidden-size", model, one}, {"ffn-hidden-size", model, one},
    {"num-attention-heads", model, one}, {"num-query-groups", model, one}, {"group-query-attention", model, none},
    {"kv-channels", model, one}, {"vocab-size", model, one}, {"padded-vocab-size", model, one},
    {"make-vocab-size-divisible-by", model, one}, {"tokenizer-type", model, one}, {"swiglu", model, none},
    {"untie-embeddings-and-output-weights", model, none}, {"position-embedding-type", model, one},
    {"no-position-embedding", model, none}, {"use-rotary-position-embeddings", model, none},
    {"hidden-dropout", model, one}, {"attention-dropout", model, one}, {"noop-layers", model, one},
    {"num-experts", model, one}, {"moe-router-topk", model, one}, {"moe-ffn-hidden-size", model, one},
    {"moe-intermediate-size", model, one}, {"moe-shared-expert-intermediate-size", model, one},
    {"n-shared-experts", model, one}, {"first-k-dense-replace", model, one}, {"moe-layer-freq", model, one},
    {"moe-router-num-groups", model, one}, {"moe-router-group-topk", model, one}, {"topk-group", model, one},
    {"multi-latent-attention", model, none}, {"multi-head-latent-attention", model, none}, {"q-lora-rank", model, one},
    {"kv-lora-rank", model, one}, {"qk-head-dim", model, one}, {"qk-nope-head-dim", model, one},
    {"qk-pos-emb-head-dim", model, one}, {"qk-rope-head-dim", model, one}, {"v-head-dim", model, one},
    {"mtp-num-layers", model, one}, {"seq-length", model, one},
    // Layout
    {"tensor-model-parallel-size", layout, one}, {"pipeline-model-parallel-size", layout, one},
    {"num-layers-per-virtual-pipeline-stage", layout, one}, {"num-virtual-stages-per-pipeline-rank", layout, one},
    {"pipeline-model-parallel-layout", layout, one}, {"num-layer-list", layout, one},
    {"expert-model-parallel-size", layout, one}, {"expert-tensor-parallel-size", layout, one},
    {"moe-tp-extend-ep", layout, none}, {"context-parallel-size", layout, one}, {"sequence-parallel", layout, none},
    {"micro-batch-size", layout, one}, {"global-batch-size", layout, one}, {"recompute-granularity", layout, one},
    {"recompute-modules", layout, list}, {"use-distributed-optimizer", layout, none}, {"bf16", layout, none},
    {"fp16", layout, none}, {"fp8-format", layout, one}, {"fp8-recipe", layout, one}, {"use-flash-attn", layout, none},
    {"transformer-impl", layout, one}, {"use-mc2", layout, none}, {"use-ascend-coc", layout, none}, {"tp-comm-overlap", layout, none},
    {"overlap-grad-reduce", layout, none}, {"overlap-param-gather", layout, none},
    {"moe-alltoall-overlap-comm", layout, none}, {"overlap-moe-expert-parallel-comm", layout, none},
    {"moe-fb-overlap", layout, none}, {"delay-wgrad-compute", layout, none}, {"schedules-method", layout, one},
    {"moe-token-dispatcher-type", layout, one}, {"moe-flex-dispatcher-backend", layout, one},
    {"moe-train-capacity-factor", layout, one}, {"moe-expert-capacity-factor", layout, one},
    {"moe-pad-expert-input-to-capacity", layout, none}, {"moe-deepep-num-sms", layout, one},
    {"moe-hybridep-num-sms", layout, one},
    {"cuda-graph-impl", layout, one}, {"cuda-graph-scope", layout, list}, {"cross-entropy-loss-fusion", layout, none},
    {"cross-entropy-fusion-impl", layout, one}, {"use-precision-aware-optimizer", layout, none},
    {"exp-avg-dtype", layout, one}, {"exp-avg-sq-dtype", layout, one}, {"grad-reduce-in-bf16", layout, none},
    {"main-grads-dtype", layout, one}, {"main-params-dtype", layout, one},
    {"account-for-embedding-in-pipeline-split", layout, none}, {"account-for-loss-in-pipeline-split", layout, none},
    // Known, would change performance, not modelled
    {"recompute-method", layout, one}, {"recompute-num-layers", layout, one},
    {"swap-attention", not_modelled, none}, {"swap-optimizer", layout, none},
    {"context-parallel-algo", not_modelled, one}, {"cp-attention-mask-type", not_modelled, one},
    {"cp-window-size", not_modelled, one}, {"use-cp-send-recv-overlap", layout, none},
    {"moe-expert-rank-capacity-factor", not_modelled, one},
    {"moe-permutation-async-comm", layout, none},
    {"reset-attention-mask", not_modelled, none}, {"reset-position-ids", not_modelled, none},
    {"optimize-recomp-communication-level", not_modelled, one}, {"reuse-fp32-param", not_modelled, none},
    {"mtp-mem-efficient-logits", not_modelled, none}, {"output-layer-slice-num", not_modelled, one},
    {"offload-optimizer-states", not_modelled, none}, {"fine-grained-activation-offloading", not_modelled, none},
    {"offload-modules", not_modelled, list}, {"delay-offload-until-cuda-graph", not_modelled, none},
    {"moe-paged-stash", not_modelled, none}, {"moe-paged-stash-buffer-size-factor-cpu", not_modelled, one},
    {"moe-paged-stash-buffer-size-factor-cuda", not_modelled, one}, {"moe-paged-stash-page-size", not_modelled, one},
    {"external-cuda-graph", layout, none}, {"fp8-param-gather", not_modelled, none},
    {"reuse-grad-buf-for-mxfp8-param-ag", not_modelled, none}, {"overlap-p2p-comm", not_modelled, none},
    {"qk-layernorm", not_modelled, none},
    {"add-qkv-bias", not_modelled, none}, {"shared-expert-gate", not_modelled, none},
    {"is-instruction-dataset", not_modelled, none}, {"moe-router-load-balancing-type", not_modelled, one},
    {"moe-router-force-load-balancing", not_modelled, none}, {"moe-mlp-glu-interleave-size", not_modelled, one},
    {"moe-enable-deepep", not_modelled, none}, {"post-norm", not_modelled, none}, {"spec", not_modelled, list},
    {"stage", not_modelled, one}, {"apply-query-key-layer-scaling", not_modelled, none},
    // Irrelevant to performance
    {"lr", irrelevant, one}, {"min-lr", irrelevant, one}, {"lr-decay-style", irrelevant, one},
    {"lr-warmup-fraction", irrelevant, one}, {"lr-warmup-iters", irrelevant, one}, {"lr-decay-iters", irrelevant, one},
    {"lr-warmup-init", irrelevant, one}, {"lr-decay-samples", irrelevant, one}, {"lr-warmup-samples", irrelevant, one},
    {"weight-decay", irrelevant, one}, {"clip-grad", irrelevant, one}, {"adam-beta1", irrelevant, one},
    {"adam-beta2", irrelevant, one}, {"adam-eps", irrelevant, one}, {"initial-loss-scale", irrelevant, one},
    {"init-method-std", irrelevant, one}, {"seed", irrelevant, one}, {"train-iters", irrelevant, one},
    {"train-samples", irrelevant, one}, {"exit-duration-in-mins", irrelevant, one}, {"split", irrelevant, one},
    {"data-path", irrelevant, list}, {"mock-data", irrelevant, none}, {"vocab-file", irrelevant, one},
    {"merge-file", irrelevant, one}, {"tokenizer-name-or-path", irrelevant, one}, {"tokenizer-model", irrelevant, one},
    {"load", irrelevant, one}, {"save", irrelevant, one}, {"save-interval", irrelevant, one},
    {"eval-interval", irrelevant, one}, {"eval-iters", irrelevant, one}, {"log-interval", irrelevant, one},
    {"log-throughput", irrelevant, none}, {"log-timers-to-tensorboard", irrelevant, none},
    {"log-memory-to-tensorboard", irrelevant, none}, {"log-num-zeros-in-grad", irrelevant, none},
    {"log-params-norm", irrelevant, none}, {"log-validation-ppl-to-tensorboard", irrelevant, none},
    {"logging-level", irrelevant, one}, {"tensorboard-dir", irrelevant, one}, {"wandb-exp-name", irrelevant, one},
    {"wandb-project", irrelevant, one}, {"no-load-optim", irrelevant, none}, {"no-load-rng", irrelevant, none},
    {"no-save-optim", irrelevant, none}, {"no-save-rng", irrelevant, none}, {"finetune", irrelevant, none},
    {"auto-detect-ckpt-format", irrelevant, none}, {"dist-ckpt-strictness", irrelevant, one},
    {"ckpt-format", irrelevant, one}, {"no-shared-storage", irrelevant, none}, {"distributed-backend", irrelevant, one},
    {"distributed-timeout-minutes", irrelevant, one}, {"num-workers", irrelevant, one},
    {"max-position-embeddings", irrelevant, one}, {"rotary-base", irrelevant, one}, {"rotary-percent", irrelevant, one},
    {"rotary-scaling-factor", irrelevant, one}, {"rope-scaling-type", irrelevant, one},
    {"rope-scaling-factor", irrelevant, one}, {"rope-scaling-mscale", irrelevant, one},
    {"rope-scaling-mscale-all-dim", irrelevant, one}, {"rope-scaling-original-max-position-embeddings", irrelevant, one},
    {"rope-scaling-beta-fast", irrelevant, one}, {"rope-scaling-beta-slow", irrelevant, one},
    {"beta-fast", irrelevant, one}, {"beta-slow", irrelevant, one}, {"mscale", irrelevant, one},
    {"mscale-all-dim", irrelevant, one}, {"normalization", irrelevant, one}, {"norm-epsilon", irrelevant, one},
    {"disable-bias-linear", irrelevant, none}, {"use-mcore-models", layout, none},
    {"use-fused-rmsnorm", irrelevant, none}, {"use-fused-swiglu", irrelevant, none},
    {"use-fused-rotary-pos-emb", irrelevant, none}, {"use-fused-moe-token-permute-and-unpermute", irrelevant, none},
    {"no-masked-softmax-fusion", layout, none}, {"attention-softmax-in-fp32", layout, none},
    {"no-gradient-accumulation-fusion", layout, none}, {"gemm-gradient-accumulation-fusion", layout, none},
    {"no-bias-swiglu-fusion", irrelevant, none}, {"no-bias-gelu-fusion", irrelevant, none},
    {"no-bias-dropout-fusion", irrelevant, none}, {"no-rope-fusion", irrelevant, none},
    {"moe-grouped-gemm", layout, none}, {"moe-permute-fusion", irrelevant, none}, {"moe-router-fusion", irrelevant, none},
    {"moe-router-dtype", irrelevant, one}, {"moe-router-score-function", irrelevant, one},
    {"moe-router-enable-expert-bias", irrelevant, none}, {"moe-router-bias-update-rate", irrelevant, one},
    {"moe-router-topk-scaling-factor", irrelevant, one}, {"moe-router-pre-softmax", irrelevant, none},
    {"moe-router-padding-for-fp8", irrelevant, none}, {"moe-router-padding-for-quantization", irrelevant, none},
    {"moe-pad-experts-for-cuda-graph-inference", irrelevant, none}, {"moe-aux-loss-coeff", irrelevant, one},
    {"moe-device-level-aux-loss-coeff", irrelevant, one}, {"moe-comm-aux-loss-coeff", irrelevant, one},
    {"seq-aux", irrelevant, none}, {"noisy-gate-policy", layout, one}, {"routed-scaling-factor", irrelevant, one},
    {"mtp-loss-scaling-factor", irrelevant, one}, {"mla-mm-split", irrelevant, none},
    {"mla-fa-without-pad", irrelevant, none}, {"manual-gc", irrelevant, none}, {"manual-gc-interval", irrelevant, one},
    {"no-check-for-nan-in-loss-and-grad", irrelevant, none}, {"no-create-attention-mask-in-dataloader", irrelevant, none},
    {"te-rng-tracker", irrelevant, none}, {"cuda-graph-warmup-steps", irrelevant, one},
    {"enable-experimental", irrelevant, none}, {"use-transformer-engine-op-fuser", irrelevant, none},
    {"input-jitter", irrelevant, none}, {"scale-emb", irrelevant, one}, {"scale-depth", irrelevant, one},
    {"dim-model-base", irrelevant, one}, {"embedding-multiplier-scale", irrelevant, one},
    {"output-multiplier-scale", irrelevant, one},
};

}  // namespace

std::string canonical_flag(const std::string& flag) {
  std::string name = flag.starts_with("--") ? flag.substr(2) : flag;
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

const FlagInfo* find_flag(const std::string& flag) {
  static const std::map<std::string, const FlagInfo*> by_name = [] {
    std::map<std::string, const FlagInfo*> m;
    for (const FlagInfo& f : flag_table) m.emplace(f.name, &f);
    return m;
  }();
  const auto it = by_name.find(canonical_flag(flag));
  return it == by_name.end() ? nullptr : it->second;
}

std::vector<LaunchArgument> group_arguments(const std::vector<Word>& words, const std::string& file) {
  std::vector<LaunchArgument> args;
  for (std::size_t i = 0; i < words.size(); ++i) {
    const Word& w = words[i];
    if (!w.text.starts_with("--")) {
      throw InputError(file + ":" + std::to_string(w.line) + ": '" + w.text.substr(0, 80) +
                       "': expected a --flag (a value with no flag before it)");
    }
    const FlagInfo* info = find_flag(w.text);
    if (!info) {
      throw InputError(file + ":" + std::to_string(w.line) + ": " + w.text.substr(0, 80) +
                       ": unknown flag (not a Megatron-LM / MindSpeed-LLM argument moesim knows)");
    }
    LaunchArgument a{info->name, {}, w.line};
    const auto is_value = [&](std::size_t j) { return j < words.size() && !words[j].text.starts_with("--"); };
    if (info->arity == Arity::one) {
      // A path from a variable the script leaves unset (exported by the caller) expands to nothing: no
      // harm for a flag that does not change performance, an error for one that does.
      if (!is_value(i + 1) && info->use != FlagUse::irrelevant)
        throw InputError(file + ":" + std::to_string(w.line) + ": " + w.text + ": expected a value after the flag");
      a.values.push_back(is_value(i + 1) ? words[++i].text : "(unset)");
      // Placeholder paths with spaces ("your tokenizer path", unquoted in the script) split into several
      // words; for a path or other irrelevant value they are taken as one, not as stray values.
      while (info->use == FlagUse::irrelevant && is_value(i + 1)) a.values.back() += " " + words[++i].text;
    } else if (info->arity == Arity::list) {
      while (is_value(i + 1)) a.values.push_back(words[++i].text);
      if (a.values.empty()) throw InputError(file + ":" + std::to_string(w.line) + ": " + w.text + ": expected one or more values after the flag");
    }
    args.push_back(std::move(a));
  }
  return args;
}

}  // namespace moesim::io::launch
