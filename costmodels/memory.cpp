#include "costmodels/memory.h"

#include <algorithm>
#include <array>

#include "costmodels/params.h"

namespace moesim::memory {

namespace {

// Per-device share of one decoder layer's parameters (Megatron: projections and FFNs split over TP,
// norms, router and MLA down-projections replicated; experts split over EP and ETP).
DeviceParams layer_device_params(const ModelSpec& m, const LayoutSpec& l, bool moe_layer,
                                 AttentionSpan span = AttentionSpan::full) {
  DeviceParams p;
  const AttentionParams at = mixer_params(m, span);
  p.dense = at.projections / l.tp + at.replicated + layer_norm_params(m);
  if (moe_layer) {
    p.dense += m.hidden * m.moe->experts + shared_expert_params(m) / l.tp;
    p.expert = static_cast<double>(m.moe->experts) / l.ep * expert_params(m) / l.etp;
  } else {
    p.dense += dense_ffn_params(m) / l.tp;
  }
  return p;
}

// The largest set of one layer's activations the recompute policy drops and its backward rebuilds.
bytes recomputed_layer_bytes(const ModelSpec& m, const LayoutSpec& l, const graph::ModelGraphs& g,
                             const PipelinePlan& plan, int stage, double imbalance) {
  const auto rebuilt = [&](const graph::LayerGraph& layer, Recompute policy) {
    return std::max(0.0, layer.saved_bytes(Recompute::none, imbalance) - layer.saved_bytes(policy, imbalance));
  };
  bytes largest = 0;
  for (int c = 0; c < plan.chunks; ++c) {
    const ChunkContent& chunk = plan.at(stage, c);
    for (int i = chunk.first_layer; i < chunk.first_layer + chunk.layers; ++i)
      largest = std::max(largest, rebuilt(g.decoder(m, i), l.recompute_of_layer(i - chunk.first_layer)));
    if (chunk.mtp_layers > 0) largest = std::max(largest, rebuilt(g.mtp, l.recompute));
  }
  return largest;
}

// Activations one layer saves for backward under its recompute policy, as one device holds them.
bytes layer_saved_bytes(const graph::LayerGraph& layer, const LayoutSpec& l, Recompute policy, double imbalance) {
  const bytes saved = layer.saved_bytes(policy, imbalance);
  // distribute_saved_activations: the full-recompute checkpoint split over the TP group (specs.h).
  return policy == Recompute::full && l.distribute_saved_activations ? saved / l.tp : saved;
}

// Buffers torch.distributed.pipelining holds on one device beside the saved activations
// (LayoutSpec::pipeline_runtime torch; torch/distributed/pipelining/stage.py and _backward.py), per model
// chunk with `in_flight` microbatches whose backward has not run, at the peak (the last forward before
// the stage's first backward of the cool-down: `microbatches - in_flight` backwards are done):
// - receiving chunks: a receive buffer per microbatch (the in-flight ones are the first layer's saved
//   input already), and the input gradient each finished backward left in its buffer's .grad;
// - sending chunks: a gradient-receive buffer per microbatch, and each in-flight output in fwd_cache;
// - the chunk with the output head: every earlier microbatch's logits in output_chunks (the current
//   one is the loss phase's own).
bytes torch_pipeline_bytes(const ModelSpec& m, const LayoutSpec& l, const graph::ModelGraphs& g,
                           const PipelinePlan& plan, int stage, double in_flight) {
  const double n = l.microbatches(), per_chunk = in_flight / plan.chunks;
  const bytes hidden = g.dense.layer_input_bytes;  // the tensor between stages (sequence-split under SP)
  const double tokens = static_cast<double>(l.micro_batch) * (l.seq_len > 0 ? l.seq_len : m.seq_len) / l.cp;
  const bytes logits = tokens * (l.loss_parallel ? m.vocab / l.tp : m.vocab) * weight_bytes_per_param;
  bytes total = 0;
  for (int c = 0; c < plan.chunks; ++c) {
    const ChunkContent& chunk = plan.at(stage, c);
    if (!chunk.embedding) total += 2 * std::max(0.0, n - per_chunk) * hidden;
    if (!chunk.lm_head) total += (n + per_chunk) * hidden;
    if (chunk.lm_head) total += std::max(0.0, n - 1) * logits;
  }
  return total;
}

}  // namespace

namespace {

// What one decoder layer of each kind holds on a device of the layout: the same for every layer of a
// kind, so computed once per layout (the pre-screen bounds the static memory of many layouts).
struct LayerShares {
  // Indexed by AttentionSpan: a decoder layer of that span without and with an MoE FFN (linear mixers,
  // DeepSeek-V4's compressors and indexer hold other parameters than full attention).
  static constexpr std::size_t spans = 5;
  std::array<DeviceParams, spans> dense{}, moe{};
  const DeviceParams& of(bool moe_layer, AttentionSpan span) const {
    return (moe_layer ? moe : dense)[static_cast<std::size_t>(span)];
  }
};

LayerShares layer_shares(const ModelSpec& m, const LayoutSpec& l) {
  LayerShares s;
  for (std::size_t i = 0; i < LayerShares::spans; ++i) {
    const auto span = static_cast<AttentionSpan>(i);
    s.dense[i] = layer_device_params(m, l, false, span);
    if (m.moe) s.moe[i] = layer_device_params(m, l, true, span);
  }
  return s;
}

DeviceParams chunk_params(const ModelSpec& m, const LayoutSpec& l, const ChunkContent& chunk, const LayerShares& s) {
  DeviceParams p;
  for (int i = chunk.first_layer; i < chunk.first_layer + chunk.layers; ++i) {
    const bool moe = m.moe && i >= m.moe->first_dense_layers;
    const DeviceParams& lp = s.of(moe, m.attention.span_of_layer(i));
    p.dense += lp.dense;
    p.expert += lp.expert;
  }
  // The token embedding is vocab-split over TP unless the framework replicates it (specs.h).
  const double embedding_split = l.embedding_tp_replicated ? 1.0 : l.tp;
  if (chunk.embedding)
    p.dense += m.vocab * m.hidden / embedding_split + (m.learned_position_embeddings ? m.seq_len * m.hidden : 0);
  // The last stage keeps its own output head; tied embeddings share it only when one stage holds both.
  if (chunk.lm_head && !(chunk.embedding && m.tie_embeddings)) p.dense += m.vocab * m.hidden / l.tp + m.hidden;
  if (chunk.mtp_layers > 0) {
    const DeviceParams& block = s.of(m.moe.has_value(), m.attention.mtp_span);
    p.dense += chunk.mtp_layers * (block.dense + (2 * m.hidden * m.hidden) / l.tp + 2 * m.hidden);
    p.expert += chunk.mtp_layers * block.expert;
  }
  return p;
}

DeviceParams stage_params(const ModelSpec& m, const LayoutSpec& l, const PipelinePlan& plan, int stage,
                          const LayerShares& s) {
  DeviceParams p;
  for (int c = 0; c < plan.chunks; ++c) {
    const DeviceParams cp = chunk_params(m, l, plan.at(stage, c), s);
    p.dense += cp.dense;
    p.expert += cp.expert;
  }
  return p;
}

}  // namespace

DeviceParams chunk_params(const ModelSpec& m, const LayoutSpec& l, const ChunkContent& chunk) {
  return chunk_params(m, l, chunk, layer_shares(m, l));
}

DeviceParams stage_params(const ModelSpec& m, const LayoutSpec& l, const PipelinePlan& plan, int stage) {
  return stage_params(m, l, plan, stage, layer_shares(m, l));
}

bytes chunk_activation_bytes(const ModelSpec& m, const LayoutSpec& l, const graph::ModelGraphs& g,
                             const ChunkContent& chunk, double imbalance) {
  bytes total = 0;
  for (int i = chunk.first_layer; i < chunk.first_layer + chunk.layers; ++i)
    total += layer_saved_bytes(g.decoder(m, i), l, l.recompute_of_layer(i - chunk.first_layer), imbalance);
  if (chunk.embedding) total += g.embedding.saved_bytes(Recompute::none, imbalance);
  if (chunk.lm_head) total += g.lm_head.saved_bytes(Recompute::none, imbalance);
  total += chunk.mtp_layers * layer_saved_bytes(g.mtp, l, l.recompute, imbalance);
  return total;
}

OpWorkingSets op_working_sets(const graph::ModelGraphs& g) {
  // Per set, the largest working set of the ops that do not scale with imbalance and of those that do:
  // x -> x * imbalance is monotone, so max(plain, expert * imbalance) is the largest op at any imbalance.
  const auto largest = [](const std::vector<const graph::LayerGraph*>& graphs, bytes& plain, bytes& expert) {
    for (const graph::LayerGraph* lg : graphs)
      for (const graph::Op& op : lg->forward) {
        bytes& into = op.scales_with_imbalance ? expert : plain;
        into = std::max(into, op.working_bytes);
      }
  };
  OpWorkingSets w;
  std::vector<const graph::LayerGraph*> layers = g.decoder_graphs();
  layers.push_back(&g.mtp);
  largest(layers, w.decoder, w.decoder_expert);
  largest({&g.embedding}, w.embedding, w.embedding_expert);
  largest({&g.lm_head}, w.head, w.head_expert);
  return w;
}

std::vector<StageMemory> stage_memory(const ModelSpec& m, const LayoutSpec& l, const PipelinePlan& plan,
                                      const graph::ModelGraphs& g, const HardwareProfile& hw,
                                      const std::vector<double>& inflight, double imbalance) {
  return stage_memory(m, l, plan, g, hw, inflight, imbalance, op_working_sets(g));
}

std::vector<StageMemory> stage_memory(const ModelSpec& m, const LayoutSpec& l, const PipelinePlan& plan,
                                      const graph::ModelGraphs& g, const HardwareProfile& hw,
                                      const std::vector<double>& inflight, double imbalance,
                                      const OpWorkingSets& w) {
  // Transient buffers: the largest single op's working set (inputs, weights, outputs live at once)
  // plus the pipeline's send and receive buffers of one microbatch's activations. Decoder-layer ops and
  // the embedding / output-head ops run in different phases, so they are kept apart: under full
  // recompute a decoder op's backward also holds its layer's recomputed activations. Expert ops: the
  // busiest rank does `imbalance` x the mean work.
  const bytes largest_decoder_op = std::max(w.decoder, w.decoder_expert * imbalance);
  const bytes largest_embedding_op = std::max(w.embedding, w.embedding_expert * imbalance);
  const bytes largest_head_op = std::max(w.head, w.head_expert * imbalance);
  // Megatron-LM's p2p_communication: one microbatch's send and receive tensors.
  const bytes p2p = l.pp > 1 ? 2 * g.dense.layer_input_bytes : 0;

  // Distributed optimizer (Megatron-LM): optimizer states sharded over the data-parallel group
  // (DP x CP for dense parameters, expert-DP for experts). ZeRO-3 shards weights and gradients too
  // (dense ones over its shard group).
  const double dense_shard = l.zero_stage >= 3         ? l.zero_shard_group()
                            : l.distributed_optimizer ? static_cast<double>(l.dp) * l.cp
                                                      : 1.0;
  const double expert_shard = l.distributed_optimizer ? l.expert_dp() : 1.0;
  const double zero3_dense = l.zero_stage >= 3 ? l.zero_shard_group() : 1.0;
  const double zero3_expert = l.zero_stage >= 3 ? expert_shard : 1.0;

  const LayerShares shares = layer_shares(m, l);
  std::vector<StageMemory> out;
  out.reserve(plan.stages);
  for (int s = 0; s < plan.stages; ++s) {
    // Filled in place (reserved above): a local copied in at the end cost the pre-screen a stall per field.
    StageMemory& sm = out.emplace_back();
    sm.stage = s;
    const DeviceParams p = stage_params(m, l, plan, s, shares);
    sm.params = p.total();
    // The edges of the model this stage holds: the embedding (first stage), the output head and loss (last).
    ChunkContent edges;
    for (int c = 0; c < plan.chunks; ++c) {
      edges.embedding = edges.embedding || plan.at(s, c).embedding;
      edges.lm_head = edges.lm_head || plan.at(s, c).lm_head;
    }
    sm.weights = weight_bytes_per_param * (p.dense / zero3_dense + p.expert / zero3_expert);
    sm.gradients = grad_bytes_per_param(l) * (p.dense / zero3_dense + p.expert / zero3_expert);
    const bytes sharded_states = sm.weights + sm.gradients;
    if (l.zero_stage >= 3 && !l.zero_reshard_after_forward) {
      // FSDP2 without resharding after forward (torchtitan with PP, parallelize_llama.py apply_fsdp):
      // the stage's 16-bit parameters stay unsharded. With pp > 1 torch.distributed.pipelining turns
      // gradient sync off until the last backward (stage.py backward_maybe_with_nosync), and FSDP2 keeps
      // the unsharded gradients in its fp32 reduce dtype meanwhile (_fsdp_param.py
      // to_accumulated_grad_if_needed). Static sum: on the first stage the gradients exist only from the
      // first backward on, when one microbatch fewer is in flight (an over-count of at most one).
      sm.weights = weight_bytes_per_param * p.total();
      if (l.pp > 1) sm.gradients = grad_bytes_per_param(l) * p.total();
    } else if (l.zero_stage >= 3) {
      // FSDP2 never reshards the root module after forward ("The root FSDP state has its value
      // specially set to False as a heuristic since its parameters would typically be immediately
      // all-gathered for backward", torch fully_shard reshard_after_forward), and torchtitan's root
      // holds the embedding, final norm and output head (apply_fsdp wraps each block, then the model):
      // their 16-bit parameters stay gathered from the forward through the loss and the backward.
      const count root = chunk_params(m, l, edges, shares).dense;
      sm.weights += weight_bytes_per_param * root * (1 - 1 / zero3_dense);
      // zero_no_sync: the stage's whole unsharded fp32 gradient is live from the first microbatch's
      // backward through the forward of the last.
      if (l.zero_no_sync && l.microbatches() > 1) sm.gradients = fsdp_reduce_bytes_per_param * p.total();
    }
    sm.optimizer = optimizer_bytes_per_param(l) * (p.dense / dense_shard + p.expert / expert_shard) /
                   (l.optimizer_swap ? LayoutSpec::optimizer_swap_chunks : 1);
    const double in_flight = s < static_cast<int>(inflight.size()) ? inflight[s] : 1.0;
    bytes per_chunk = 0, head_saved = 0;
    int layers_per_chunk = 0;
    if (in_flight > 0) {  // nothing in flight (a static lower bound) needs no activation sizes
      for (int c = 0; c < plan.chunks; ++c) {
        per_chunk += chunk_activation_bytes(m, l, g, plan.at(s, c), imbalance);
        layers_per_chunk += plan.at(s, c).layers + plan.at(s, c).mtp_layers;
      }
      // With model chunks (interleaved 1F1B, DualPipe) the output head sits on the last virtual stage,
      // which starts each microbatch's backward from the loss right after its forward (PyTorch
      // ScheduleInterleaved1F1B and Megatron's interleaved schedule alike: the last virtual stage has no
      // warm-up), so the head's saved tensors are held for one microbatch, not averaged over the
      // chunks' in-flight count.
      if (plan.chunks > 1 && edges.lm_head) {
        head_saved = g.lm_head.saved_bytes(Recompute::none, imbalance);
        per_chunk -= head_saved;
      }
      per_chunk /= plan.chunks;
      layers_per_chunk = std::max(1, layers_per_chunk / plan.chunks);
    }
    // Layer-wise activation offload (Megatron-Core --cpu-offloading-num-layers over Transformer Engine's
    // CPU offload context; MindSpeed's swap): a layer's saved activations go to host memory after its
    // forward and come back before its backward, in every microbatch including the one being computed.
    // The swapped share is off the device at the peak (the start of a backward) except the one layer
    // in transit.
    const double resident_share = 1 - l.activation_swap;
    sm.activations = per_chunk * in_flight * resident_share +
                     (l.activation_swap > 0 && in_flight > 0 ? per_chunk / layers_per_chunk : 0.0) +
                     head_saved * std::min(in_flight, 1.0);
    // Recompute reruns one layer's forward inside that layer's backward, so what it dropped is live
    // again on top of what it kept (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost",
    // §3: peak = checkpoints + the largest recomputed segment). The loss and output head finish their
    // backward before the first layer is recomputed, so that phase is not added to theirs.
    const bytes recomputed =
        l.recompute != Recompute::none && in_flight > 0 ? recomputed_layer_bytes(m, l, g, plan, s, imbalance) : 0;
    // Only the stage that holds the embedding (the output head and loss) runs those ops.
    const bytes largest_edge_op =
        std::max(edges.embedding ? largest_embedding_op : 0.0, edges.lm_head ? largest_head_op : 0.0);
    const bytes pipeline = l.pipeline_runtime == PipelineRuntime::torch && l.pp > 1
                               ? torch_pipeline_bytes(m, l, g, plan, s, in_flight)
                               : p2p;
    sm.buffers = std::max(largest_edge_op, largest_decoder_op + recomputed) + pipeline;
    sm.reserve = hw.device.framework_reserve;
    // The ZeRO-3 branches above add the unsharded copies: gathered at a forward, freed after a backward.
    sm.per_step = sm.activations + sm.buffers + (sm.weights + sm.gradients - sharded_states);
    sm.allocator_cache = allocator_cache_bytes(sm.per_step, hw.device.allocator_cache_share);
  }
  return out;
}

}  // namespace moesim::memory
