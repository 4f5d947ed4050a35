#include "costmodels/deploy.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "costmodels/comm.h"

namespace moesim::deploy {

QuantFormat quant_format(WeightPrecision precision, int group_size) {
  if (group_size < 1) throw std::invalid_argument("quantisation group size must be >= 1");
  switch (precision) {
    case WeightPrecision::bf16: return {precision, 16, 0, 0};
    case WeightPrecision::int8: return {precision, 8, group_size, 2};  // bf16 scale
    case WeightPrecision::int4: return {precision, 4, group_size, 4};  // bf16 scale + bf16 zero point
  }
  return {};
}

count ExpertSelection::kept_total() const {
  return std::accumulate(kept_per_moe_layer.begin(), kept_per_moe_layer.end(), 0.0);
}

ExpertSelection all_experts(const ModelSpec& m) {
  if (!m.moe) return {};
  return {std::vector<int>(static_cast<std::size_t>(m.moe_layers()), m.moe->experts), m.moe->top_k};
}

ExpertSelection keep_uniform(const ModelSpec& m, int top_k, int keep) {
  if (!m.moe) throw std::invalid_argument(m.name + " has no routed experts to prune");
  if (keep < 1 || keep > m.moe->experts)
    throw std::invalid_argument("experts kept must be in 1.." + std::to_string(m.moe->experts) + ", got " +
                                std::to_string(keep));
  if (top_k < 1 || top_k > keep)
    throw std::invalid_argument("experts activated per token must be in 1.." + std::to_string(keep) + ", got " +
                                std::to_string(top_k));
  return {std::vector<int>(static_cast<std::size_t>(m.moe_layers()), keep), top_k};
}

ParamBreakdown pruned_params(const ModelSpec& m, const ExpertSelection& s) {
  ParamBreakdown p = count_params(m);
  if (!m.moe) return p;
  const double kept = s.kept_total();
  // count_params counts hidden x experts router weights and experts x expert_params per MoE layer.
  p.router = kept * m.hidden;
  p.routed_experts = kept * expert_params(m);
  p.active_routed = m.moe_layers() * s.top_k * expert_params(m);
  return p;
}

bytes weight_bytes(const ParamBreakdown& p, const QuantFormat& q) {
  const count full_precision = p.embedding + p.norms + p.router;
  return full_precision * 2.0 + (p.total() - full_precision) * q.bytes_per_weight();
}

bytes kv_bytes_per_token(const ModelSpec& m, bytes bytes_per_value) {
  const AttentionSpec& a = m.attention;
  if (a.type == AttentionType::hybrid_compressed) {
    // DeepSeek-V4 caches per token only its compressed entries (head_dim per csa_ratio or hca_ratio
    // tokens, plus the indexer's key on compressed-sparse layers); the sliding window's last
    // sliding_window entries are a fixed amount per sequence, not per token, and are left out.
    const CompressedAttentionSpec& c = a.compressed;
    double values = 0;
    for (int i = 0; i < m.layers; ++i) {
      const AttentionSpan span = a.span_of_layer(i);
      if (span == AttentionSpan::compressed_sparse) values += (a.head_dim + a.sparse.index_head_dim) / static_cast<double>(c.csa_ratio);
      if (span == AttentionSpan::compressed) values += a.head_dim / static_cast<double>(c.hca_ratio);
    }
    return values * bytes_per_value;
  }
  const double per_layer = a.type == AttentionType::mla ? a.kv_lora_rank + a.qk_rope_head_dim
                                                        : 2.0 * a.kv_heads * a.head_dim;
  return m.layers * per_layer * bytes_per_value;
}

bytes activation_bytes(const ModelSpec& m, int top_k, double tokens, double sequences) {
  const AttentionSpec& a = m.attention;
  const double h = m.hidden;
  double attention = 0;
  if (a.type == AttentionType::mla) {
    const double qk = a.qk_nope_head_dim + a.qk_rope_head_dim;
    attention = a.heads * (2 * qk + a.v_head_dim) + a.q_lora_rank + a.kv_lora_rank + a.qk_rope_head_dim;
  } else if (a.type == AttentionType::hybrid_compressed) {
    attention = 2.0 * a.heads * a.head_dim + a.q_lora_rank + a.head_dim;  // queries, output, query latent, entry
  } else {
    attention = (2.0 * a.heads + 2.0 * a.kv_heads) * a.head_dim;
  }
  double ffn = m.dense_layers() > 0 ? 3 * m.ffn.intermediate : 0.0;
  if (m.moe)
    ffn = std::max(ffn, top_k * (h + 3 * m.moe->expert_intermediate) +
                            m.moe->shared_experts * 3 * m.moe->shared_expert_intermediate);
  const bytes bf16 = 2, fp32 = 4;
  return tokens * bf16 * (2 * h + std::max(attention, ffn)) + sequences * m.vocab * fp32;
}

double expected_experts_touched(int kept, int top_k, double tokens) {
  if (kept < 1) return 0;
  return kept * (1.0 - std::pow(1.0 - static_cast<double>(std::min(top_k, kept)) / kept, tokens));
}

Deployment plan_deployment(const ModelSpec& m, const ExpertSelection& s, const QuantFormat& format,
                           const Workload& w, const HardwareProfile& hw) {
  if (w.batch < 1 || w.context < 1 || w.prefill_chunk < 1)
    throw std::invalid_argument("batch, context and prefill chunk must be >= 1");
  if (m.moe && static_cast<int>(s.kept_per_moe_layer.size()) != m.moe_layers())
    throw std::invalid_argument("expert selection has " + std::to_string(s.kept_per_moe_layer.size()) +
                                " MoE layers, " + m.name + " has " + std::to_string(m.moe_layers()));
  Deployment d;
  d.format = format;
  d.params = pruned_params(m, s);
  d.weights = weight_bytes(d.params, format);
  const double sequences = w.batch;
  d.kv_cache = sequences * w.context * kv_bytes_per_token(m, w.kv_bytes_per_value);
  const double prefill_tokens = std::min<double>(sequences * w.context, w.prefill_chunk);
  d.activations = activation_bytes(m, m.moe ? s.top_k : 0, prefill_tokens, std::min(sequences, prefill_tokens));
  d.reserve = hw.device.framework_reserve;

  // Weights and KV cache split evenly over n devices (expert/tensor parallel); every device also holds
  // its own activations and reserve: the smallest n with (weights + kv)/n + activations + reserve <= HBM.
  const bytes per_device_fixed = d.activations + d.reserve;
  const bytes sharded = d.weights + d.kv_cache;
  if (per_device_fixed < hw.device.hbm_bytes)
    d.devices_needed = std::max(1, static_cast<int>(std::ceil(sharded / (hw.device.hbm_bytes - per_device_fixed))));
  d.total = sharded + std::max(d.devices_needed, 1) * per_device_fixed;

  // Decode step: one token per sequence. Memory-bound (decode GEMMs have M = batch), so the step
  // streams every weight it touches and the whole KV cache once from HBM (the DESIGN.md op-time rule
  // with the compute term negligible). Routed experts: only those some token of the batch picks.
  const count routed_one = expert_params(m);
  count routed_touched = 0;
  for (int kept : s.kept_per_moe_layer) routed_touched += expected_experts_touched(kept, s.top_k, sequences) * routed_one;
  // Everything but the input embedding (a lookup of `batch` rows) and the routed experts is read whole.
  const count always_read = d.params.total() - d.params.embedding - d.params.routed_experts;
  const count full_precision_read = d.params.norms + d.params.router;
  d.decode.weights_read = full_precision_read * 2.0 +
                          (always_read - full_precision_read + routed_touched) * format.bytes_per_weight();
  d.decode.kv_read = d.kv_cache;
  const int n = std::max(d.devices_needed, 1);
  d.decode.memory_s = (d.decode.weights_read + d.decode.kv_read) / n /
                      (hw.device.hbm_bandwidth * hw.device.hbm_efficiency);
  if (n > 1 && !hw.tiers.empty()) {
    // Megatron-LM tensor parallelism (Shoeybi et al. 2019 §3): two all-reduces of the layer's output
    // activations per layer in the forward pass; here batch x hidden bf16 values each.
    const bytes message = sequences * m.hidden * 2.0;
    const comm::CollectiveCost ar =
        comm::collective_time(comm::CollectiveKind::all_reduce, message, comm::GroupPlacement{n, 1}, hw.tiers);
    d.decode.comm_s = 2.0 * m.layers * ar.time;
  }
  return d;
}

const char* to_string(WeightPrecision p) {
  switch (p) {
    case WeightPrecision::bf16: return "bf16";
    case WeightPrecision::int8: return "int8";
    case WeightPrecision::int4: return "int4";
  }
  return "?";
}

}  // namespace moesim::deploy
