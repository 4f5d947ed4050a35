// DeepSeek-V4's hybrid attention as operators (LayerBuilder::compressed_attention), as Megatron-LM
// dev trains it (commit 9c5258f109): DSv4HybridSelfAttention's projections
// (experimental_attention_variant/deepseek_v4_hybrid_attention.py), the Compressor, CSAIndexer and
// CompressedSparseAttention of csa.py, and the grouped low-rank output projection.
#include "costmodels/compressed_attention.h"

#include <algorithm>
#include <cmath>

#include "costmodels/layer_builder.h"
#include "costmodels/sparse_attention.h"

namespace moesim::graph {

double causal_compressed_pairs(double s, int ratio, double cap) {
  if (s <= 0 || ratio <= 0 || cap <= 0) return 0;
  // F(P) = sum over p = 1..P of floor(p / r): p in [j r, j r + r - 1] gives j, so with q = floor(P / r)
  // the full blocks j = 1..q-1 give r q (q - 1) / 2 and the last, from q r to P, gives q (P - q r + 1).
  const auto F = [ratio](double P) {
    if (P < ratio) return 0.0;
    const double r = ratio, q = std::floor(P / r);
    return r * q * (q - 1) / 2 + q * (P - q * r + 1);
  };
  // floor(p / r) reaches the cap at p = cap r; every later query sees exactly cap entries.
  const double capped_from = cap * ratio;
  if (s < capped_from) return F(s);
  return F(capped_from - 1) + cap * (s - capped_from + 1);
}

AttentionKeys compressed_attention_keys(const AttentionSpec& a, AttentionSpan span, double seq_len) {
  AttentionKeys keys = attention_keys(seq_len, AttentionSpan::sliding, a.sliding_window, true);
  const CompressedAttentionSpec& c = a.compressed;
  if (span == AttentionSpan::compressed_sparse) {
    const double entries = std::floor(seq_len / c.csa_ratio), cap = std::min<double>(a.sparse.topk, entries);
    keys.model += cap;
    keys.executed += causal_compressed_pairs(seq_len, c.csa_ratio, cap) / seq_len;
  } else if (span == AttentionSpan::compressed) {
    const double entries = std::floor(seq_len / c.hca_ratio);
    keys.model += entries;
    keys.executed += causal_compressed_pairs(seq_len, c.hca_ratio, entries) / seq_len;
  }
  return keys;
}

AttentionKeys compressed_indexer_keys(const AttentionSpec& a, double seq_len) {
  const int r = a.compressed.csa_ratio;
  const double entries = std::floor(seq_len / r);
  return {.executed = causal_compressed_pairs(seq_len, r, entries) / seq_len, .model = entries};
}

flops compressed_core_flops_per_pair(const AttentionSpec& a, double heads) { return 4.0 * heads * a.head_dim; }

double sparse_kernel_slots(const AttentionSpec& a, AttentionSpan span, double seq_len) {
  const CompressedAttentionSpec& c = a.compressed;
  // Index columns per query (csa.py): the window's, then the indexer's top-k (compressed-sparse) or one
  // per compressed entry of the sequence (heavily compressed, get_compress_topk_idxs); -1 where masked.
  double width = a.sliding_window;
  if (span == AttentionSpan::compressed_sparse) width += a.sparse.topk;
  else if (span == AttentionSpan::compressed) width += std::floor(seq_len / c.hca_ratio);
  return std::ceil(width / sparse_topk_alignment) * sparse_topk_alignment;
}

int compressor_coff(const AttentionSpec& a, AttentionSpan span) {
  return span == AttentionSpan::compressed_sparse && a.compressed.csa_ratio == 4 ? 2 : 1;
}

}  // namespace moesim::graph

namespace moesim::graph::detail {

void LayerBuilder::compressor(const char* proj, const char* pool, double tokens, double ratio, int coff, double width) {
  const double h = m_.hidden;
  // linear_wkv and linear_wgate read the layer input, which kv_proj keeps already; Megatron runs them in
  // BF16 under FP8 recipes ("Run the compressor GEMMs in high precision", get_fp8_disabled_context).
  fused_gemm(proj, tokens, h, {coff * width, coff * width}).bf16_under_fp8 = true;
  // Gated pooling over each group of ratio (x 2 when overlapping) rows: add the position bias (ape),
  // softmax over the group, multiply and sum (~6 FLOPs per element), then RMSNorm (~5) and RoPE on the
  // pooled entries. Backward of the weighted sum needs the projected rows and their weights: kept.
  Op& op = vector(pool, tokens * coff * width, 6 + 5.0 / ratio, 3);
  op.saved_bytes = 2 * tokens * coff * width * a_;
}

void LayerBuilder::compressed_attention(AttentionSpan span) {
  const AttentionSpec& at = m_.attention;
  const CompressedAttentionSpec& c = at.compressed;
  const double h = m_.hidden, T = c_.tokens, cp = c_.cp, d = at.head_dim;
  const double heads = at.heads / c_.tp, groups = c.o_groups / c_.tp;
  // Queries through the query latent (replicated down-projection, TP-split up-projection) and their
  // per-head RMS norm (_q_rms_norm); one key-value entry per token, RMS-normed (kv_layernorm).
  gemm("q_down_proj", T, h, at.q_lora_rank).saved_bytes = gathered_input_saved(h, li_);
  vector("q_norm", T * at.q_lora_rank, 5).saved_bytes = T * at.q_lora_rank * a_;
  gemm("q_up_proj", T, at.q_lora_rank, heads * d).saved_bytes = T * at.q_lora_rank * li_;
  vector("q_head_norm", T * heads * d, 5).saved_bytes = T * heads * d * a_;  // autograd keeps its input
  gemm("kv_proj", T, h, d).saved_bytes = gathered_input_saved(h, li_);
  vector("kv_norm", T * d, 5).saved_bytes = T * d * a_;
  vector("rope", T * (heads + 1) * at.qk_rope_head_dim, 3);
  const bool sparse = span == AttentionSpan::compressed_sparse;
  const double ratio = sparse ? c.csa_ratio : c.hca_ratio;
  const double entries = span == AttentionSpan::sliding ? 0 : T / ratio;  // this device's compressed entries
  if (span != AttentionSpan::sliding) compressor("compressor_proj", "compressor_pool", T, ratio, compressor_coff(at, span), d);
  if (c_.cp > 1) {
    // Context parallelism (csa_utils/cp_utils.py): each rank takes the window's hidden rows of its left
    // neighbour (exchange_cp_boundary_hidden) and all-gathers the compressed entries of the ranks before it.
    collective("cp_window_exchange", comm::CollectiveKind::send_recv, GroupKind::cp, at.sliding_window * h * a_);
    if (entries > 0)
      collective("cp_compressed_all_gather", comm::CollectiveKind::all_gather, GroupKind::cp, cp * entries * d * a_);
  }
  const SparseAttentionSpec& s = at.sparse;
  if (sparse) {
    // CSAIndexer: queries from the query latent (linear_wq_b), head weights from the layer input
    // (linear_weights_proj, BF16) and keys from its own compressor (coff 2, index_head_dim wide, Hadamard
    // rotated); replicated over TP like DSA's indexer.
    const double HI = s.index_heads, dI = s.index_head_dim;
    gemm("indexer_q_proj", T, at.q_lora_rank, HI * dI);
    gemm("indexer_weights_proj", T, h, HI).bf16_under_fp8 = true;  // "stays in BF16 even under FP8 training"
    compressor("indexer_compressor_proj", "indexer_compressor_pool", T, ratio, compressor_coff(at, span), dI);
    vector("indexer_rotate", T * HI * dI + entries * dI, std::log2(dI) + 3);
    if (c_.cp > 1)
      collective("cp_index_key_all_gather", comm::CollectiveKind::all_gather, GroupKind::cp, cp * entries * dI * a_);
    // Index scores of every query against the compressed keys before it, fused with the top-k: the
    // DSA indexer's score per pair (costmodels/sparse_attention.h), over causal_compressed_pairs.
    const AttentionKeys ik = compressed_indexer_keys(at, c_.seq_len);
    Op idx;
    idx.name = "indexer_scores";
    idx.kind = OpKind::attention;
    idx.model_flop_count = T * ik.model * dsa_indexer_flops_per_pair(s);
    idx.flop_count = T * ik.executed * (dsa_indexer_flops_per_pair(s) + HI + 1);  // + ReLU, top-k compare
    const bytes indices = T * s.topk * 4;
    idx.hbm_bytes = T * (HI * dI + HI) * a_ + cp * entries * dI * a_ + indices;
    idx.working_bytes = idx.hbm_bytes;
    // Kept for the indexer's backward (its KL loss to the main attention): queries, weights, keys, indices.
    idx.saved_bytes = idx.hbm_bytes;
    graph_.forward.push_back(idx);
  }
  // One sparse kernel over the window's indices concatenated with the compressed ones (csa.py
  // CompressedSparseAttention: topk_idxs = cat([window_idxs, compress_topk_idxs])), MQA with a learned
  // sink logit per head in the softmax denominator. HBM: the queries, each token's own entry once (the
  // windows of neighbouring queries overlap in all but one row, so they are served from cache), the
  // compressed rows each query gathers, the output and its log-sum-exp.
  const AttentionKeys keys = compressed_attention_keys(at, span, c_.seq_len);
  const AttentionKeys window = attention_keys(c_.seq_len, AttentionSpan::sliding, at.sliding_window, true);
  Op core;
  core.name = "attention_core";
  core.kind = OpKind::attention;
  core.model_flop_count = T * keys.model * compressed_core_flops_per_pair(at, heads);
  core.flop_count = T * keys.executed * compressed_core_flops_per_pair(at, heads) + 3 * T * heads;  // + sink
  // The kernels run every slot of the index tensor (sparse_kernel_slots), the masked ones too.
  const double masked_slots = std::max(0.0, sparse_kernel_slots(at, span, c_.seq_len) - keys.executed);
  core.masked_flop_count = T * masked_slots * compressed_core_flops_per_pair(at, heads);
  const bytes q = T * heads * d * a_, kv = (T + cp * entries) * d * a_, o = T * heads * (d * a_ + 4);
  core.hbm_bytes = q + T * d * a_ + T * (keys.executed - window.executed) * d * a_ + o + heads * 4;
  core.working_bytes = q + kv + o;
  core.saved_bytes = q + kv + T * heads * 4;  // queries, entries, log-sum-exp; the output is kept by o_group_proj
  graph_.forward.push_back(core);
  if (sparse) {
    // The indexer's sparse KL loss (dsa_indexer_use_sparse_loss): its target, the main attention's
    // distribution over the selected compressed entries summed over heads, is a kernel of its own
    // (csa_utils/fused_sparse_attention.py FusedCSAIndexerSparseAttnFunc step 5, _compute_attn_target):
    // Q K^T again on those entries, 2 heads head_dim per pair. Training work outside the model's FLOPs,
    // as DSA's (costmodels/sparse_attention.cpp).
    const double selected = keys.executed - window.executed;
    Op target;
    target.name = "indexer_target";
    target.kind = OpKind::attention;
    target.flop_count = T * selected * 2 * heads * d;
    // cuDNN's sparse_attn_score_recompute_wrapper takes no per-query length: all top-k columns run.
    target.masked_flop_count = T * std::max(0.0, s.topk - selected) * 2 * heads * d;
    target.hbm_bytes = q + T * selected * d * a_ + T * s.topk * 4;
    target.saved_bytes = T * s.topk * 4;  // fp32 target distribution
    target.working_bytes = q + kv + target.hbm_bytes;
    graph_.forward.push_back(target);
  }
  // The MLA up-projection recompute (recompute_modules mla_up_proj) reruns the query up-projection and
  // RoPE in backward instead of keeping the queries (DSv4HybridAttention.recompute_up_proj).
  mark_recompute(RecomputeModule::mla_up_proj, {"attention_core", "q_head_norm"}, {"q_up_proj", "q_head_norm", "rope"});
  // Inverse RoPE on the output's rotary dimensions, then the grouped output projection: the heads x
  // head_dim output in o_groups groups, each mapped to o_lora_rank (einsum "...gd,grd->...gr"), and
  // linear_proj from o_groups x o_lora_rank to hidden (row-parallel).
  vector("inverse_rope", T * heads * at.qk_rope_head_dim, 3);
  Op& og = gemm("o_group_proj", T, heads * d / groups, c.o_lora_rank, groups);
  og.saved_bytes = T * heads * d * a_;  // its bf16 input, the attention output
  og.bf16_under_fp8 = true;  // torch.einsum on linear_o_group_proj, a plain bf16 Parameter
  gemm("attn_out_proj", T, groups * c.o_lora_rank, h).saved_bytes = T * groups * c.o_lora_rank * li_;
}

void LayerBuilder::hyper_connection_pre(bool attention_side) {
  const char* mapping = attention_side ? "mhc_attn_mapping" : "mhc_ffn_mapping";
  const char* sinkhorn = attention_side ? "mhc_attn_sinkhorn" : "mhc_ffn_sinkhorn";
  const char* aggregate = attention_side ? "mhc_attn_aggregate" : "mhc_ffn_aggregate";
  const double n = m_.residual_streams, h = m_.hidden, T = tokens_sp_;
  // HyperConnectionModule.compute_mappings (megatron/core/transformer/hyper_connection.py): an
  // RMS-normalised fp32 projection of the n x h streams to n^2 + 2n mixing logits per token
  // (mapping_proj), Sinkhorn-Knopp on the n x n block (per iteration a row and a column normalisation,
  // ~4 FLOPs per element), then the aggregate H_pre x of the streams (n multiply-adds per output).
  // Saved (fused_mhc_kernels.py CutileProjRmsComputeH, FusedHAggregate, FusedHPostBDA): the bf16
  // streams, once for all three, and the fp32 mixing weights; the aggregate's output is the next norm's
  // saved input.
  Op& map = gemm(mapping, T, n * h, n * n + 2 * n);
  map.bf16_under_fp8 = true;  // an fp32 matmul (mark_keep_in_fp32), never FP8: timed at the BF16 rate at best
  map.hbm_bytes = T * n * h * a_ + n * h * (n * n + 2 * n) * 4 + T * (n * n + 2 * n) * 4;
  map.saved_bytes = T * n * h * a_;
  vector(sinkhorn, T * n * n, 4.0 * m_.sinkhorn_iterations + 5).saved_bytes = T * (n * n + 2 * n) * 4;
  vector(aggregate, T * n * h, 2, (n + 1) / n);
  // The mhc recompute (recompute_modules mhc; megatron/core/transformer/mhc_recompute.py) keeps the
  // layer's input streams and rebuilds the rest in backward: the FFN side's streams come from rerunning
  // the attention side's mixing (hyper_connection_post).
  if (attention_side) mark_recompute(RecomputeModule::mhc, {sinkhorn}, {sinkhorn, aggregate});
  else mark_recompute(RecomputeModule::mhc, {mapping, sinkhorn}, {mapping, sinkhorn, aggregate});
}

void LayerBuilder::hyper_connection_post(const char* name, bool attention_side) {
  const double n = m_.residual_streams, h = m_.hidden, T = tokens_sp_;
  // FusedHPostBDA: the new streams H_res^T x + H_post^T F(.), n + 1 multiply-adds per output element;
  // reads the n streams and the sublayer output, writes n streams. Keeps the sublayer output F(.).
  Op& op = vector(name, T * n * h, 2 * n + 2, (2 * n + 1) / n);
  op.saved_bytes = T * h * a_;
  if (attention_side) mark_recompute(RecomputeModule::mhc, {}, {name});
}

}  // namespace moesim::graph::detail
