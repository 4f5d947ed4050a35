// moesim model and layout -> the Megatron-LM or MindSpeed-LLM arguments that run them: the flags of
// launch_translate.cpp written back, so that reading the block gives the same model and layout.
#include <fmt/format.h>

#include "sim/io/input_error.h"
#include "sim/io/launch_flags.h"
#include "sim/io/specs_io.h"

namespace moesim::io {

namespace {

class ArgumentWriter {
 public:
  void flag(const std::string& name) {
    // Only flags the reader knows are written: the round trip holds by construction.
    if (!launch::find_flag(name)) throw std::logic_error("launch_arguments: flag --" + name + " is not in the flag table");
    lines_.push_back("--" + name);
  }
  template <typename T>
  void flag(const std::string& name, const T& value) {
    flag(name);
    lines_.back() += fmt::format(" {}", value);
  }
  void comment(const std::string& text) { comments_.push_back("# " + text); }
  std::string block() const {
    std::string out;
    for (const auto& c : comments_) out += c + "\n";
    out += "GPT_ARGS=\"\n";
    for (std::size_t i = 0; i < lines_.size(); ++i) out += "    " + lines_[i] + (i + 1 < lines_.size() ? " \\\n" : "\n");
    return out + "\"\n";
  }

 private:
  std::vector<std::string> lines_, comments_;
};

void write_model(ArgumentWriter& w, const ModelSpec& m, const LayoutSpec& l, LaunchDialect dialect) {
  const AttentionSpec& a = m.attention;
  // The flag table (launch_flags.cpp) has none of Megatron-LM dev's DeepSeek-V4 flags (o-groups,
  // csa-compress-ratios, enable-hyper-connections, ...): refuse rather than write another model.
  if (a.type == AttentionType::hybrid_compressed || m.residual_streams > 1)
    throw InputError("model '" + m.name + "': attention.type deepseek_v4 / residual_streams: moesim writes no launch "
                     "arguments for DeepSeek-V4 attention or mHC yet");
  w.flag("num-layers", m.layers);
  w.flag("hidden-size", static_cast<long>(m.hidden));
  w.flag("ffn-hidden-size", static_cast<long>(m.ffn.intermediate));
  w.flag("num-attention-heads", a.heads);
  if (a.type == AttentionType::mla) {
    w.flag("multi-latent-attention");
    if (a.q_lora_rank > 0) w.flag("q-lora-rank", a.q_lora_rank);
    w.flag("kv-lora-rank", a.kv_lora_rank);
    w.flag("qk-head-dim", a.qk_nope_head_dim);
    w.flag("qk-pos-emb-head-dim", a.qk_rope_head_dim);
    w.flag("v-head-dim", a.v_head_dim);
  } else {
    if (a.kv_heads < a.heads) {
      w.flag("group-query-attention");
      w.flag("num-query-groups", a.kv_heads);
    }
    if (a.head_dim * a.heads != static_cast<long>(m.hidden)) w.flag("kv-channels", a.head_dim);
  }
  if (m.ffn.activation == Activation::swiglu) w.flag("swiglu");
  if (!m.tie_embeddings) w.flag("untie-embeddings-and-output-weights");
  w.flag("position-embedding-type", m.learned_position_embeddings ? "learned_absolute" : "rope");
  w.flag("hidden-dropout", m.dropout ? 0.1 : 0.0);
  w.flag("attention-dropout", m.dropout ? 0.1 : 0.0);
  // MindSpeed-LLM takes the padded size as given; Megatron-LM pads --vocab-size to a multiple of TP.
  if (dialect == LaunchDialect::mindspeed) w.flag("padded-vocab-size", static_cast<long>(m.vocab));
  else w.flag("vocab-size", static_cast<long>(m.vocab));
  w.flag("make-vocab-size-divisible-by", 1);
  w.flag("seq-length", l.seq_len);
  w.flag("max-position-embeddings", l.seq_len);
  if (m.mtp_layers > 0) w.flag("mtp-num-layers", m.mtp_layers);
  if (!m.moe) return;
  const MoeSpec& e = *m.moe;
  w.flag("num-experts", e.experts);
  w.flag("moe-router-topk", e.top_k);
  w.flag("moe-ffn-hidden-size", static_cast<long>(e.expert_intermediate));
  if (e.shared_experts > 0) {
    if (dialect == LaunchDialect::mindspeed && e.shared_expert_intermediate == e.expert_intermediate) {
      w.flag("n-shared-experts", e.shared_experts);
    } else {
      w.flag("moe-shared-expert-intermediate-size", static_cast<long>(e.shared_experts * e.shared_expert_intermediate));
    }
  }
  if (e.first_dense_layers > 0) {
    if (dialect == LaunchDialect::mindspeed) w.flag("first-k-dense-replace", e.first_dense_layers);
    else w.flag("moe-layer-freq", fmt::format("([0]*{}+[1]*{})", e.first_dense_layers, m.layers - e.first_dense_layers));
  }
  if (e.router_groups > 1) {
    w.flag("moe-router-num-groups", e.router_groups);
    w.flag("moe-router-group-topk", e.router_group_top_k);
  }
  if (l.moe_grouped_gemm) w.flag("moe-grouped-gemm");
  if (l.moe_dispatcher == MoeDispatcher::einsum) {
    // MindSpeed-LLM's legacy MoE: no dispatcher flag, its capacity factor (launch_translate.cpp).
    if (dialect == LaunchDialect::mindspeed) w.flag("moe-train-capacity-factor", l.moe_capacity_factor);
    else w.comment("moe_dispatcher einsum (MindSpeed-LLM's legacy GShard MoE) has no Megatron-LM flag: left out");
    return;
  }
  if (l.moe_capacity_factor > 0) {
    w.flag("moe-expert-capacity-factor", l.moe_capacity_factor);
    if (l.moe_pad_to_capacity) w.flag("moe-pad-expert-input-to-capacity");
  }
  if (l.moe_dispatcher == MoeDispatcher::allgather) {
    w.flag("moe-token-dispatcher-type", "allgather");
  } else if (l.moe_dispatcher == MoeDispatcher::flex) {
    // A layout with FP8 dispatch names DeepEP (the backend that can take FP8 tokens); HybridEP asserts it has no
    // FP8 dispatch (megatron/core/transformer/moe/fused_a2a.py).
    w.flag("moe-token-dispatcher-type", "flex");
    w.flag("moe-flex-dispatcher-backend", l.fp8_dispatch ? "deepep" : "hybridep");
    if (l.fp8_dispatch) w.flag("moe-deepep-num-sms", l.ep_dispatch_sms);
    else w.flag("moe-hybridep-num-sms", l.ep_dispatch_sms);
  } else {
    w.flag("moe-token-dispatcher-type", "alltoall");
  }
  if (l.moe_permutation_async_comm && dialect == LaunchDialect::mindspeed) w.flag("moe-permutation-async-comm");
}

void write_layout(ArgumentWriter& w, const ModelSpec& m, const LayoutSpec& l, LaunchDialect dialect) {
  w.flag("tensor-model-parallel-size", l.tp);
  w.flag("pipeline-model-parallel-size", l.pp);
  if (!l.pipeline_layers.empty() && l.vpp == 1 && dialect == LaunchDialect::mindspeed) {
    w.flag("num-layer-list", fmt::format("{}", fmt::join(l.pipeline_layers, ",")));
  } else if (!l.pipeline_layers.empty()) {
    // Megatron-Core's layout string: one '|'-separated group of 't' (decoder layers) per virtual stage,
    // the embedding (E) first and the loss (L) last.
    std::string stages = "E";
    for (std::size_t i = 0; i < l.pipeline_layers.size(); ++i) stages += (i ? "|" : "") + std::string(l.pipeline_layers[i], 't');
    w.flag("pipeline-model-parallel-layout", stages + "L");
  } else if (l.vpp > 1) {
    if (m.layers % (l.pp * l.vpp) == 0) w.flag("num-layers-per-virtual-pipeline-stage", m.layers / (l.pp * l.vpp));
    else w.flag("num-virtual-stages-per-pipeline-rank", l.vpp);
  }
  w.flag("expert-model-parallel-size", l.ep);
  w.flag("expert-tensor-parallel-size", l.etp);
  w.flag("context-parallel-size", l.cp);
  if (l.cp > 1 && dialect == LaunchDialect::mindspeed) {
    w.flag("context-parallel-algo", "megatron_cp_algo");  // moesim's CP is ring attention
    if (l.cp_send_recv_overlap) w.flag("use-cp-send-recv-overlap");
  } else if (!l.cp_send_recv_overlap) {
    w.comment("cp_send_recv_overlap false (MindSpeed's ring without --use-cp-send-recv-overlap) has no Megatron-LM flag: "
              "its ring sends and receives at once");
  }
  if (l.sequence_parallel) w.flag("sequence-parallel");
  w.flag("micro-batch-size", l.micro_batch);
  w.flag("global-batch-size", l.global_batch);
  if (l.distributed_optimizer) w.flag("use-distributed-optimizer");
  if (!l.gradient_accumulation_fusion) w.flag("no-gradient-accumulation-fusion");
  if (l.optimizer_swap) {
    if (dialect == LaunchDialect::mindspeed) w.flag("swap-optimizer");
    else w.comment("optimizer_swap (MindSpeed --swap-optimizer) has no Megatron-LM flag: left out");
  }
  if (l.overlap.dp_grad_reduce) w.flag("overlap-grad-reduce");
  if (l.overlap.dp_param_gather) w.flag("overlap-param-gather");
  if (l.recompute == Recompute::full) {
    w.flag("recompute-granularity", "full");
    if (l.recompute_num_layers > 0) {  // the first N layers of each model chunk
      w.flag("recompute-method", "block");
      w.flag("recompute-num-layers", l.recompute_num_layers);
    } else {
      w.flag("recompute-method", "uniform");  // every layer of the stage
      w.flag("recompute-num-layers", 1);
    }
  } else if (l.recompute == Recompute::selective) {
    w.flag("recompute-granularity", "selective");
    if (l.recompute_modules != static_cast<unsigned>(RecomputeModule::core_attn))
      w.flag("recompute-modules", fmt::format("{}", fmt::join(recompute_module_names(l.recompute_modules), " ")));
  } else if (l.recompute == Recompute::selective_op) {
    w.comment("recompute selective_op (torchtitan's op-level checkpointing) has no Megatron flag: left out");
  }
  if (l.overlap.tp_comm) w.flag(dialect == LaunchDialect::mindspeed ? "use-mc2" : "tp-comm-overlap");
  if (l.overlap.ep_all_to_all) {
    w.flag(dialect == LaunchDialect::mindspeed ? "moe-alltoall-overlap-comm" : "overlap-moe-expert-parallel-comm");
    if (l.overlap.delay_wgrad) w.flag("delay-wgrad-compute");
  }
  if (l.schedule == ScheduleKind::dualpipe) {
    if (dialect == LaunchDialect::mindspeed) w.flag("schedules-method", "dualpipev");
    else w.comment("schedule dualpipe has no Megatron-LM flag: runs as 1f1b / interleaved");
  } else if (l.schedule == ScheduleKind::zero_bubble || l.schedule == ScheduleKind::gpipe) {
    w.comment(std::string("schedule ") + to_string(l.schedule) + " has no Megatron flag: runs as 1f1b / interleaved");
  }
  w.flag("bf16");
  if (l.precision == Precision::fp8) {
    w.flag("fp8-format", "e4m3");
    w.flag("fp8-recipe", to_string(l.fp8_recipe));
  }
  if (l.flash_attention) w.flag("use-flash-attn");
  if (!l.softmax_fusion) w.flag("no-masked-softmax-fusion");
  if (l.softmax_in_fp32) w.flag("attention-softmax-in-fp32");
  if (l.cross_entropy == CrossEntropy::fused) {
    w.flag("cross-entropy-loss-fusion");
    w.flag("cross-entropy-fusion-impl", "te");
  }
  if (l.adam_moment_bytes == 2) {
    w.flag("use-precision-aware-optimizer");
    w.flag("exp-avg-dtype", "bf16");
    w.flag("exp-avg-sq-dtype", "bf16");
  }
  if (l.main_grad_bytes == 2) w.flag("grad-reduce-in-bf16");
  if (l.cuda_graphs == CudaGraphs::partial) {
    w.flag("cuda-graph-impl", "transformer_engine");
  } else if (l.cuda_graphs == CudaGraphs::full) {
    w.flag("cuda-graph-impl", "local");
    w.flag("cuda-graph-scope", "full_iteration");
  }
}

}  // namespace

std::string launch_arguments(const ModelSpec& model, const LayoutSpec& layout, LaunchDialect dialect) {
  ArgumentWriter w;
  w.comment(fmt::format("{} arguments for {} on {} devices (NNODES x {}_PER_NODE = {}): written by moesim",
                        dialect == LaunchDialect::mindspeed ? "MindSpeed-LLM" : "Megatron-LM", model.name, layout.devices,
                        dialect == LaunchDialect::mindspeed ? "NPUS" : "GPUS", layout.devices));
  write_model(w, model, layout, dialect);
  write_layout(w, model, layout, dialect);
  return w.block();
}

}  // namespace moesim::io
