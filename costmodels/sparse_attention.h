#pragma once
// DeepSeek Sparse Attention (AttentionSpec::sparse): FLOPs of the lightning indexer and of the MQA-mode
// MLA core over the selected keys. Pure math; LayerBuilder::sparse_attention_core
// (costmodels/sparse_attention.cpp) builds the layer's ops from it.
#include "costmodels/specs.h"

namespace moesim::graph {

// Forward FLOPs of the indexer per (query, key) pair: the index score I_{t,s} = sum_j w_{t,j}
// ReLU(q_{t,j} . k_s) of the DeepSeek-V3.2-Exp report eq. (1) is index_heads dot products of width
// index_head_dim (2 d_I each) and index_heads weighted adds (2 each): 2 H_I (d_I + 1). The ReLU
// (H_I comparisons) is not a multiply-add and is counted as executed work only.
flops dsa_indexer_flops_per_pair(const SparseAttentionSpec& s);

// Forward FLOPs of the MLA core in MQA mode per (query, selected key) pair for `heads` query heads:
// each head's absorbed query (kv_lora_rank + qk_rope_head_dim wide) against the shared latent entry,
// and the probabilities against the latent value (kv_lora_rank wide): 2 heads (2 d_c + d_R) (report
// §2.1 "Instantiate DSA Under MLA": MQA mode, each latent vector shared across all query heads).
flops dsa_core_flops_per_pair(const AttentionSpec& a, double heads);

}  // namespace moesim::graph
