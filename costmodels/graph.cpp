#include "costmodels/graph.h"

#include <algorithm>
#include <string_view>

#include "costmodels/layer_builder.h"
#include "costmodels/params.h"

namespace moesim::graph {

const char* to_string(OpKind k) {
  switch (k) {
    case OpKind::gemm: return "gemm";
    case OpKind::grouped_gemm: return "grouped_gemm";
    case OpKind::attention: return "attention";
    case OpKind::vector: return "vector";
    case OpKind::collective: return "collective";
  }
  return "?";
}

const char* to_string(GroupKind g) {
  switch (g) {
    case GroupKind::tp: return "tp";
    case GroupKind::cp: return "cp";
    case GroupKind::ep: return "ep";
    case GroupKind::etp: return "etp";
    case GroupKind::pp: return "pp";
    case GroupKind::dp: return "dp";
    case GroupKind::expert_dp: return "expert_dp";
  }
  return "?";
}

const char* to_string(LayerKind k) {
  switch (k) {
    case LayerKind::dense: return "dense";
    case LayerKind::moe: return "moe";
    case LayerKind::mtp: return "mtp";
    case LayerKind::embedding: return "embedding";
    case LayerKind::lm_head: return "lm_head";
  }
  return "?";
}

bytes LayerGraph::saved_bytes(Recompute policy, double imbalance) const {
  if (policy == Recompute::full) return layer_input_bytes;
  // Op-level selective AC keeps the checkpointed block's input (torch.utils.checkpoint) and the outputs
  // its policy marks MUST_SAVE; everything else is rebuilt from them in backward.
  bytes total = policy == Recompute::selective_op ? layer_input_bytes : 0;
  for (const Op& op : forward) {
    const double scale = op.scales_with_imbalance ? imbalance : 1.0;
    if (policy == Recompute::selective_op) {
      total += op.kept_by_op_sac * scale;
      continue;
    }
    if (policy == Recompute::selective && op.dropped_by_selective) continue;
    total += op.saved_bytes * scale;
  }
  return total;
}

flops LayerGraph::recompute_flops(Recompute policy) const {
  flops total = 0;
  for (const Op& op : forward) total += rerun_fraction(op, policy) * op.flop_count;
  return total;
}

flops LayerGraph::forward_flops() const {
  flops total = 0;
  for (const Op& op : forward) total += op.flop_count;
  return total;
}

flops LayerGraph::model_forward_flops() const {
  flops total = 0;
  for (const Op& op : forward) total += op.model_flop_count;
  return total;
}

GraphContext make_context(const ModelSpec& model, const LayoutSpec& layout) {
  GraphContext ctx;
  const int seq = layout.seq_len > 0 ? layout.seq_len : model.seq_len;
  ctx.seq_len = seq;
  ctx.tokens = static_cast<double>(layout.micro_batch) * seq / layout.cp;
  ctx.tp = layout.tp;
  ctx.cp = layout.cp;
  ctx.ep = layout.ep;
  ctx.etp = layout.etp;
  ctx.sequence_parallel = layout.sequence_parallel;
  ctx.flash_attention = layout.flash_attention;
  ctx.softmax_fusion = layout.softmax_fusion;
  ctx.softmax_in_fp32 = layout.softmax_in_fp32;
  ctx.dropout = model.dropout;
  ctx.dispatch_bytes = layout.precision == Precision::fp8 && layout.fp8_dispatch ? 1.0 : 2.0;
  ctx.cross_entropy = layout.cross_entropy;
  ctx.loss_parallel = layout.loss_parallel;
  ctx.sp_saves_gathered_inputs = layout.sp_saves_gathered_inputs;
  ctx.cp_kv_all_gather = layout.cp_kv_all_gather && layout.cp > 1;
  ctx.cp_send_recv_overlap = layout.cp_send_recv_overlap;
  ctx.recompute_modules = layout.recompute_modules;
  ctx.moe_dispatcher = layout.moe_dispatcher;
  ctx.moe_permutation_async_comm = layout.moe_permutation_async_comm;
  ctx.moe_grouped_gemm = layout.moe_grouped_gemm;
  ctx.moe_capacity_factor = layout.moe_capacity_factor;
  if (layout.precision == Precision::fp8 && layout.fp8_cached_inputs) ctx.linear_input_bytes = 1;
  ctx.fp8 = layout.precision == Precision::fp8;
  ctx.fp8_recipe = layout.fp8_recipe;
  // Only FP8 weight casts read the microbatch count (fp8_cast.cpp: once per iteration); without FP8 it
  // stays 1, so layouts that differ only in batch split share one graph (the sweep pre-screen's cache).
  if (ctx.fp8 && layout.dp > 0 && layout.micro_batch > 0) ctx.microbatches = std::max(1, layout.microbatches());
  return ctx;
}

GraphContext make_context(const ModelSpec& model, const LayoutSpec& layout, const DeviceSpec& device) {
  GraphContext ctx = make_context(model, layout);
  ctx.fp8 = ctx.fp8 && device.matrix_fp8 > device.matrix_bf16;
  if (!ctx.fp8) ctx.microbatches = 1;
  ctx.fp8_any_layout = device.matrix.fp8_any_layout;
  ctx.ring_update_bytes = device.ring_update_bytes;
  return ctx;
}

using detail::LayerBuilder;


LayerGraph build_layer(const ModelSpec& model, const GraphContext& ctx, LayerKind kind, AttentionSpan span) {
  LayerBuilder b(model, ctx);
  // A decoder layer has 20-45 ops (an MTP module the most: projection, attention, MoE and head), the
  // embedding and the output head a few; the sweep pre-screen builds graphs for every layout it screens.
  b.reserve(kind == LayerKind::embedding || kind == LayerKind::lm_head ? 8 : 64);
  if (kind != LayerKind::dense && kind != LayerKind::moe) span = AttentionSpan::full;
  const auto mixer = [&] { if (span == AttentionSpan::linear) b.linear_mixer(); else b.attention(span); };
  switch (kind) {
    case LayerKind::dense:
      b.set_layer_input();
      mixer();
      b.dense_mlp(model.ffn.intermediate);
      break;
    case LayerKind::moe:
      b.set_layer_input();
      mixer();
      b.moe_block();
      break;
    case LayerKind::mtp:
      b.set_layer_input();
      b.mtp_projection();
      b.attention(model.attention.mtp_span);
      if (model.moe) b.moe_block(); else b.dense_mlp(model.ffn.intermediate);
      b.lm_head();
      break;
    case LayerKind::embedding:
      b.embedding();
      break;
    case LayerKind::lm_head:
      b.lm_head();
      break;
  }
  return b.take(kind, span);
}

FlopsPerToken model_flops_per_token(const ModelSpec& model, int seq_len, Recompute policy, bool flash_attention) {
  GraphContext ctx;
  ctx.tokens = seq_len;
  ctx.seq_len = seq_len;
  ctx.flash_attention = flash_attention;
  const ModelGraphs graphs = build_model_graphs(model, ctx);
  FlopsPerToken f;
  auto add = [&](const LayerGraph& g, int n) {
    if (n <= 0) return;
    for (const Op& op : g.forward) {
      f.forward += n * op.model_flop_count / seq_len;
      if (op.kind == OpKind::attention) {
        f.attention_core += n * op.model_flop_count / seq_len;
        f.attention_core_masked += n * (op.model_flop_count - op.flop_count) / seq_len;
      }
      if (g.kind != LayerKind::lm_head) f.recompute += n * g.rerun_fraction(op, policy) * op.model_flop_count / seq_len;
    }
  };
  for (const LayerGraph* g : graphs.decoder_graphs()) add(*g, graphs.decoder_layers_of(model, *g));
  add(graphs.mtp, model.mtp_layers);
  add(graphs.lm_head, 1);
  f.training = 3 * f.forward;
  return f;
}

}  // namespace moesim::graph

namespace moesim::graph {

int ModelGraphs::decoder_layers_of(const ModelSpec& model, const LayerGraph& g) const {
  int n = 0;
  for (int i = 0; i < model.layers; ++i) n += &decoder(model, i) == &g ? 1 : 0;
  return n;
}

ModelGraphs build_model_graphs(const ModelSpec& model, const GraphContext& ctx) {
  ModelGraphs g;
  g.dense = build_layer(model, ctx, LayerKind::dense);
  if (model.moe) g.moe = build_layer(model, ctx, LayerKind::moe);
  const auto uses = [&](AttentionSpan span) {
    for (int i = 0; i < model.layers; ++i)
      if (model.attention.span_of_layer(i) == span) return true;
    return false;
  };
  for (AttentionSpan span : {AttentionSpan::sliding, AttentionSpan::linear, AttentionSpan::compressed_sparse,
                            AttentionSpan::compressed}) {
    if (!uses(span)) continue;
    g.of(false, span) = build_layer(model, ctx, LayerKind::dense, span);
    if (model.moe) g.of(true, span) = build_layer(model, ctx, LayerKind::moe, span);
  }
  if (model.mtp_layers > 0) g.mtp = build_layer(model, ctx, LayerKind::mtp);
  g.embedding = build_layer(model, ctx, LayerKind::embedding);
  g.lm_head = build_layer(model, ctx, LayerKind::lm_head);
  return g;
}

}  // namespace moesim::graph
