#pragma once
// DeepSeek-V4's hybrid attention (AttentionType::hybrid_compressed, CompressedAttentionSpec): how many
// key-value entries a query attends to on each kind of layer, and the FLOPs per (query, entry) pair.
// Pure math; LayerBuilder::compressed_attention (costmodels/compressed_attention.cpp) builds the
// layer's ops from it. Sources: Megatron-LM dev, commit 9c5258f109 (2026-08-11),
// megatron/core/transformer/experimental_attention_variant/csa.py (Compressor, CSAIndexer,
// CompressedSparseAttention) and deepseek_v4_hybrid_attention.py (DSv4HybridAttention).
#include "costmodels/attention_span.h"
#include "costmodels/specs.h"

namespace moesim::graph {

// Compressed entries a query at 0-based position i sees: min(floor((i + 1) / ratio), cap) (csa.py
// Compressor docstring: "a query token at 0-indexed position i attends to min((i+1) // ratio,
// n_compressed_in_segment) compressed entries"; the indexer keeps at most cap = topk of them). Summed
// over the s queries of a sequence: sum over p = 1..s of min(floor(p / ratio), cap).
double causal_compressed_pairs(double s, int ratio, double cap);

// Entries per query of a compressed layer's core over a sequence of seq_len tokens, window included:
// executed, what the causal kernel attends to on average; model, what model FLOPs count, the unmasked
// count as for full attention (attention_span.h): the window, plus min(topk, s / csa_ratio) entries
// on a compressed-sparse layer or s / hca_ratio on a heavily compressed one.
AttentionKeys compressed_attention_keys(const AttentionSpec& a, AttentionSpan span, double seq_len);

// Entries per query the indexer of a compressed-sparse layer scores: all compressed keys up to it.
AttentionKeys compressed_indexer_keys(const AttentionSpec& a, double seq_len);

// Forward FLOPs of the core per (query, entry) pair for `heads` query heads: the entry is one
// head_dim-wide vector serving as key and value of every head (MQA), so QK^T and PV are 2 x head_dim
// multiply-adds per head: 4 heads head_dim (Megatron-LM training.py _dsv4_hybrid_self_attention_flops:
// "num_attention_heads * (window + entries) * v_head_dim * 2", times its FMA factor 2).
flops compressed_core_flops_per_pair(const AttentionSpec& a, double heads);

// Index slots per query that DeepSeek-V4's sparse kernels run, masked ones included. Megatron's
// training paths (csa_utils/fused_sparse_attention.py: FusedCSAIndexerSparseAttnFunc for compressed-
// sparse layers, csa_sparse_attn from CompressedSparseAttention._forward_fused_no_indexer otherwise) pass
// FlashMLA's sparse forward and cuDNN's DSA backward no per-query topk_length, so every query walks the
// whole index tensor (FlashMLA csrc/sm100/prefill/sparse/fwd/head64/phase1.cuh: num_k_blocks =
// ceil(topk_length / B_TOPK), topk_length = the tensor's width when none is given; invalid -1 slots are
// masked, not skipped), its width padded to sparse_topk_alignment (_csa_fwd_flash_mla). Window +
// top-k on a compressed-sparse layer (128 + 512 = 640 for V4-Flash, 1152 for V4-Pro), window + s /
// hca_ratio on a heavily compressed one (160 -> 192 at 4K), the window on a sliding one.
double sparse_kernel_slots(const AttentionSpec& a, AttentionSpan span, double seq_len);
// FlashMLA's top-k alignment on SM100 for head_dim 512 (_get_topk_alignment: B_TOPK 64; SM90 steps by
// 128, not separated here: the V4 runs modelled are on Blackwell).
constexpr double sparse_topk_alignment = 64;

// Compressor projection widths per token (csa.py Compressor: linear_wkv and linear_wgate, each
// hidden -> coff x head_dim, coff 2 for the overlapping 4:1 compression, 1 otherwise).
int compressor_coff(const AttentionSpec& a, AttentionSpan span);

}  // namespace moesim::graph
