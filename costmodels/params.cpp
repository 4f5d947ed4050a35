#include "costmodels/params.h"

namespace moesim {

namespace {
// SwiGLU has gate and up projections plus down (Shazeer 2020); GELU has up and down.
double ffn_matrices(Activation a) { return a == Activation::swiglu ? 3.0 : 2.0; }
}  // namespace

// DeepSeek-V4's hybrid attention on a layer of `span` (Megatron-LM deepseek_v4_hybrid_attention.py and
// csa.py parameters; costmodels/compressed_attention.cpp builds the ops that use them).
AttentionParams compressed_attention_params(const ModelSpec& m, AttentionSpan span) {
  const AttentionSpec& a = m.attention;
  const CompressedAttentionSpec& c = a.compressed;
  const double h = m.hidden, d = a.head_dim, heads = a.heads;
  AttentionParams p;
  // linear_q_down_proj (duplicated over TP) and q_layernorm; linear_kv_proj (one head_dim-wide entry)
  // and kv_layernorm, replicated like MLA's down-projections (Megatron asserts TP 1 for this attention).
  p.replicated = h * a.q_lora_rank + a.q_lora_rank + h * d + d;
  // linear_q_up_proj, linear_o_group_proj (heads x d / o_groups -> o_lora_rank per group), linear_proj
  // (o_groups x o_lora_rank -> h) and the fp32 attention sink per head, split with the heads.
  p.projections = a.q_lora_rank * heads * d + heads * d * c.o_lora_rank + static_cast<double>(c.o_groups) * c.o_lora_rank * h + heads;
  // Compressor: linear_wkv and linear_wgate (h -> coff x width each), the position bias ape (ratio x
  // coff x width) and the RMSNorm of its entries (width).
  const auto compressor = [&](double ratio, double coff, double width) {
    return 2 * h * coff * width + ratio * coff * width + width;
  };
  if (span == AttentionSpan::compressed_sparse) {
    const double HI = a.sparse.index_heads, dI = a.sparse.index_head_dim, coff = c.csa_ratio == 4 ? 2 : 1;
    p.replicated += compressor(c.csa_ratio, coff, d);
    // CSAIndexer: linear_wq_b (q_lora_rank -> index heads x dim), linear_weights_proj (h -> index heads)
    // and its own compressor of index_head_dim.
    p.replicated += a.q_lora_rank * HI * dI + h * HI + compressor(c.csa_ratio, coff, dI);
  } else if (span == AttentionSpan::compressed) {
    p.replicated += compressor(c.hca_ratio, 1, d);
  }
  return p;
}

AttentionParams attention_params(const ModelSpec& m, AttentionSpan span) {
  const AttentionSpec& a = m.attention;
  const double h = m.hidden;
  AttentionParams p;
  if (a.type == AttentionType::hybrid_compressed) return compressed_attention_params(m, span);
  if (a.type == AttentionType::mla) {
    // DeepSeek-V2 §2.1.2 (arXiv 2405.04434): low-rank joint KV compression and query compression.
    const double qk_head = a.qk_nope_head_dim + a.qk_rope_head_dim;
    if (a.q_lora_rank > 0) {
      p.replicated += h * a.q_lora_rank + a.q_lora_rank;  // W_DQ and its RMSNorm
      p.projections += static_cast<double>(a.q_lora_rank) * a.heads * qk_head;  // W_UQ, W_QR
    } else {
      p.projections += h * a.heads * qk_head;
    }
    p.replicated += h * (a.kv_lora_rank + a.qk_rope_head_dim) + a.kv_lora_rank;  // W_DKV, W_KR, norm
    p.projections += static_cast<double>(a.kv_lora_rank) * a.heads * (a.qk_nope_head_dim + a.v_head_dim);
    p.projections += static_cast<double>(a.heads) * a.v_head_dim * h;  // W_O
    if (a.sparse.active()) {
      // DSA's lightning indexer (DeepSeek-V3.2-Exp inference/model.py Indexer): wq_b (q_lora_rank ->
      // index heads x dim), wk (h -> dim), its LayerNorm (weight and bias), weights_proj (h -> heads);
      // replicated over TP (Megatron-Core DSAIndexer).
      const double heads = a.sparse.index_heads, dim = a.sparse.index_head_dim;
      p.replicated += a.q_lora_rank * heads * dim + h * dim + 2 * dim + h * heads;
    }
  } else {
    const double q = static_cast<double>(a.heads) * a.head_dim;
    const double kv = static_cast<double>(a.kv_heads) * a.head_dim;
    // A gated attention's q_proj also emits the gate (AttentionSpec::output_gate).
    p.projections = h * ((a.output_gate ? 2 : 1) * q + 2 * kv) + q * h;
    if (a.sinks) p.projections += a.heads;  // one sink logit per head, split over TP with its head
  }
  return p;
}

AttentionParams linear_mixer_params(const ModelSpec& m) {
  const LinearAttentionSpec& s = m.attention.linear;
  const double h = m.hidden, heads = s.heads;
  const double kw = static_cast<double>(s.key_heads) * s.key_head_dim, vw = heads * s.value_head_dim;
  AttentionParams p;
  // Projections as costmodels/linear_mixer.cpp builds them (in_proj widths, out_proj vw x h); per-head
  // and per-channel vectors beside them. GDN (transformers Qwen3NextGatedDeltaNet): conv1d over q, k,
  // v without bias, A_log and dt_bias per value head, gated RMSNorm of width dv. Lightning
  // (MiniMaxLightningAttention): qkv_proj, output_gate, norm of width vw. Mamba-2 (Mamba2Mixer): conv1d
  // with bias over x, B, C, A_log, D and dt_bias per head, gated RMSNorm of width vw.
  switch (s.kind) {
    case LinearMixer::gated_deltanet:
      p.projections = h * (2 * kw + 2 * vw + 2 * heads) + vw * h + (2 * kw + vw) * s.conv_kernel + 2 * heads;
      p.replicated = s.value_head_dim;
      break;
    case LinearMixer::lightning:
      p.projections = h * (2 * kw + 2 * vw) + vw * h + vw;
      break;
    case LinearMixer::mamba2:
      p.projections = h * (2 * vw + 2 * kw + heads) + vw * h + (vw + 2 * kw) * (s.conv_kernel + 1) + 3 * heads + vw;
      break;
  }
  return p;
}

AttentionParams mixer_params(const ModelSpec& m, AttentionSpan span) {
  return span == AttentionSpan::linear ? linear_mixer_params(m) : attention_params(m, span);
}

count dense_ffn_params(const ModelSpec& m) { return ffn_matrices(m.ffn.activation) * m.hidden * m.ffn.intermediate; }

count expert_params(const ModelSpec& m) {
  return m.moe ? ffn_matrices(m.ffn.activation) * m.hidden * m.moe->expert_intermediate : 0.0;
}

count shared_expert_params(const ModelSpec& m) {
  return m.moe ? m.moe->shared_experts * ffn_matrices(m.ffn.activation) * m.hidden * m.moe->shared_expert_intermediate
               : 0.0;
}

// Two norms per layer (pre-attention, pre-FFN), one in a parallel block; LayerNorm has a bias, RMSNorm
// does not. With mHC, each of the two sublayers' HyperConnectionModule (hyper_connection.py): mapping_proj
// (n h -> n^2 + 2n), its bias (n^2 + 2n) and alpha_pre, alpha_post, alpha_res.
count layer_norm_params(const ModelSpec& m) {
  const double n = m.residual_streams, mhc = n > 1 ? 2 * ((n * m.hidden + 1) * (n * n + 2 * n) + 3) : 0;
  return (m.parallel_block ? 1.0 : 2.0) * (m.ffn.activation == Activation::gelu ? 2.0 : 1.0) * m.hidden + mhc;
}

count mtp_module_params(const ModelSpec& m) {
  // DeepSeek-V3 §2.2 (arXiv 2412.19437): per module a projection [2h -> h], two RMSNorms on its inputs
  // and one Transformer block (here an MoE block); embedding and output head are shared with the model.
  const double h = m.hidden;
  count block = attention_params(m, m.attention.mtp_span).total() + layer_norm_params(m);
  if (m.moe) {
    block += m.moe->experts * expert_params(m) + shared_expert_params(m) + h * m.moe->experts;
  } else {
    block += dense_ffn_params(m);
  }
  return 2 * h * h + 2 * h + block;
}

ParamBreakdown count_params(const ModelSpec& m) {
  ParamBreakdown p;
  const double h = m.hidden;
  p.embedding = m.vocab * h + (m.learned_position_embeddings ? m.seq_len * h : 0.0);
  p.lm_head_compute = m.vocab * h;
  p.lm_head = m.tie_embeddings ? 0.0 : m.vocab * h;
  for (int i = 0; i < m.layers; ++i) p.attention += mixer_params(m, m.attention.span_of_layer(i)).total();
  p.norms = m.layers * layer_norm_params(m) + (m.ffn.activation == Activation::gelu ? 2.0 : 1.0) * h;  // + final norm
  p.dense_ffn = m.dense_layers() * dense_ffn_params(m);
  if (m.moe) {
    const count moe_layers = m.moe_layers();  // a double, so that products with counts cannot wrap
    p.router = moe_layers * h * m.moe->experts;
    p.shared_experts = moe_layers * shared_expert_params(m);
    p.routed_experts = moe_layers * m.moe->experts * expert_params(m);
    p.active_routed = moe_layers * m.moe->top_k * expert_params(m);
  }
  p.mtp = m.mtp_layers * mtp_module_params(m);
  return p;
}

LayerParams layer_params(const ModelSpec& m, int layer) {
  LayerParams p;
  p.dense_sharded = mixer_params(m, m.attention.span_of_layer(layer)).total() + layer_norm_params(m);
  if (m.moe && layer >= m.moe->first_dense_layers) {
    p.dense_sharded += m.hidden * m.moe->experts + shared_expert_params(m);
    p.expert_sharded = m.moe->experts * expert_params(m);
  } else {
    p.dense_sharded += dense_ffn_params(m);
  }
  return p;
}

}  // namespace moesim
