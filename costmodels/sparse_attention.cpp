// A DeepSeek Sparse Attention layer's indexer and core as operators (LayerBuilder::
// sparse_attention_core), as Megatron-Core's DSAttention / DSAIndexer run them in training
// (megatron/core/transformer/experimental_attention_variant/dsa.py) after the MLA down-projections.
#include "costmodels/sparse_attention.h"

#include <cmath>

#include "costmodels/layer_builder.h"

namespace moesim::graph {

flops dsa_indexer_flops_per_pair(const SparseAttentionSpec& s) {
  return 2.0 * s.index_heads * (s.index_head_dim + 1.0);
}

flops dsa_core_flops_per_pair(const AttentionSpec& a, double heads) {
  return 2.0 * heads * (2.0 * a.kv_lora_rank + a.qk_rope_head_dim);
}

}  // namespace moesim::graph

namespace moesim::graph::detail {

void LayerBuilder::sparse_attention_core(double heads) {
  const AttentionSpec& at = m_.attention;
  const SparseAttentionSpec& s = at.sparse;
  const double h = m_.hidden, T = c_.tokens, cp = c_.cp;
  const double HI = s.index_heads, dI = s.index_head_dim, topk = s.topk;
  const double latent = at.kv_lora_rank + at.qk_rope_head_dim;  // one MLA cache entry (d_c + d_R)
  // Indexer projections (DeepSeek-V3.2-Exp inference/model.py Indexer; Megatron-Core DSAIndexer):
  // queries from MLA's query latent (wq_b), one key per token and the head weights from the layer
  // input (wk, weights_proj). Every TP rank computes all index_n_heads (DSAIndexer's parameters are
  // replicated and marked average_gradients_across_tp_domain), so TP does not split the indexer. Their
  // inputs are the ones q_up_proj and q_down_proj already keep for backward.
  gemm("indexer_q_proj", T, at.q_lora_rank, HI * dI);
  fused_gemm("indexer_k_weights_proj", T, h, {dI, HI});
  // The key's LayerNorm (~5 FLOPs per element), RoPE on both and the Hadamard rotation of queries
  // and keys (rotate_activation: log2 d_I butterfly adds per element) before scoring.
  vector("indexer_rotate", T * (HI + 1) * dI, std::log2(dI) + 5);
  if (c_.cp > 1) {
    // Megatron-Core's DSA context parallelism all-gathers keys instead of ring-exchanging them
    // (dsa.py: "Non-packed DSA allgather CP"): every rank's index keys, and every rank's MLA latent
    // entries from which the top-k rows are read (one d_c + d_R entry per token, shared by all heads).
    collective("cp_index_key_all_gather", comm::CollectiveKind::all_gather, GroupKind::cp, cp * T * dI * a_);
    collective("cp_latent_all_gather", comm::CollectiveKind::all_gather, GroupKind::cp, cp * T * latent * a_);
  }
  // Index scores against every preceding token (a causal kernel computes half of them, like full
  // attention; model FLOPs count all, costmodels/attention_span.h) and the top-k selection, fused so
  // that the T x s scores stay on chip; its output is the int32 indices of the selected keys.
  const AttentionKeys all = attention_keys(c_.seq_len, AttentionSpan::full, 0, c_.causal);
  Op idx;
  idx.name = "indexer_scores";
  idx.kind = OpKind::attention;
  idx.model_flop_count = T * all.model * dsa_indexer_flops_per_pair(s);
  idx.flop_count = T * all.executed * (dsa_indexer_flops_per_pair(s) + HI + 1);  // + ReLU, top-k compare
  const bytes indices = T * topk * 4;
  idx.hbm_bytes = T * (HI * dI + HI) * a_ + cp * T * dI * a_ + indices;
  idx.working_bytes = idx.hbm_bytes;
  // Saved for the indexer's backward (its KL loss to the main attention, report §2.1 eq. (3)): the
  // queries, weights, the gathered keys (the indexer's key cache) and the selected indices.
  idx.saved_bytes = idx.hbm_bytes;
  idx.kept_by_op_sac = indices;
  idx.rerun_by_op_sac = 0;
  graph_.forward.push_back(idx);
  // MQA mode absorbs W_UK into each head's query: q_nope (d_h) -> d_c per head, in place of the
  // up-projection of keys and values (the kv_up_proj of MHA-mode MLA; same FLOPs with o_absorb).
  gemm("q_absorb", T, at.qk_nope_head_dim, at.kv_lora_rank, heads).saved_bytes = T * heads * at.qk_nope_head_dim * li_;
  // The core over the selected keys: a query at position i sees min(i + 1, k) of them, as a window
  // of k does (attention_keys with the window k; model FLOPs count k per query).
  const AttentionKeys sel = attention_keys(c_.seq_len, AttentionSpan::sliding, s.topk, c_.causal);
  Op core;
  core.name = "attention_core";
  core.kind = OpKind::attention;
  core.model_flop_count = T * sel.model * dsa_core_flops_per_pair(at, heads);
  core.flop_count = T * sel.executed * dsa_core_flops_per_pair(at, heads);
  // Reads the queries and each query's selected latent rows (one load serves all its heads: FlashMLA's
  // sparse kernels), writes the latent output.
  const bytes q = T * heads * latent * a_, kv = cp * T * latent * a_, o = T * heads * at.kv_lora_rank * a_;
  core.hbm_bytes = q + T * sel.executed * latent * a_ + o;
  core.working_bytes = q + kv + o;
  core.saved_bytes = q + kv;  // the output is kept by o_absorb
  core.kept_by_op_sac = T * heads * (at.kv_lora_rank * a_ + 4);  // output and log-sum-exp
  core.rerun_by_op_sac = 0;
  graph_.forward.push_back(core);
  // The indexer loss's target (§2.1 eq. (3), sparse stage: the main attention's distribution over the
  // selected keys, summed over heads): Megatron-Core's sparse_mla_topk_reducesum kernel recomputes
  // Q K^T on the selected keys, 2 heads (d_c + d_R) per pair. Training work outside the model's FLOPs.
  Op target;
  target.name = "indexer_target";
  target.kind = OpKind::attention;
  target.flop_count = T * sel.executed * 2 * heads * latent;
  target.hbm_bytes = q + T * sel.executed * latent * a_ + indices;
  target.saved_bytes = T * topk * 4;  // fp32 target distribution
  target.working_bytes = q + kv + indices + target.saved_bytes;  // the selected rows stream through on chip
  graph_.forward.push_back(target);
  // Back from the latent output to each head's value through W_UV: d_c -> d_v per head.
  gemm("o_absorb", T, at.kv_lora_rank, at.v_head_dim, heads).saved_bytes = T * heads * at.kv_lora_rank * li_;
}

}  // namespace moesim::graph::detail
