#pragma once
// Parameter counts of a model, per component. Pure arithmetic over ModelSpec.
#include "costmodels/specs.h"

namespace moesim {

// Parameters of one component of one layer (or of the whole model for embedding/head).
struct AttentionParams {
  count projections = 0;  // Q/K/V/O (or the MLA down/up projections), split over TP
  count replicated = 0;   // MLA down-projections and norms, replicated over TP in Megatron
  count total() const { return projections + replicated; }
};

struct ParamBreakdown {
  count embedding = 0;            // input embedding (+ learned positions)
  count lm_head = 0;              // output projection (0 when tied)
  count attention = 0;            // all decoder layers
  count dense_ffn = 0;            // FFN of dense layers
  count router = 0;
  count shared_experts = 0;
  count routed_experts = 0;       // all routed experts of all MoE layers
  count norms = 0;
  count mtp = 0;                  // multi-token-prediction modules (not in published totals)

  // What published totals count: everything but the MTP modules.
  count total() const {
    return embedding + lm_head + attention + dense_ffn + router + shared_experts + routed_experts + norms;
  }
  count active_routed = 0;        // routed-expert parameters one token activates (top-k of each layer)
  // Parameters one token's computation touches, excluding the input embedding (a table lookup, not a
  // matmul): the N of the 6N rule (Kaplan et al. 2020 §2.1 count non-embedding; the LM head is a
  // matmul and counts, as in PaLM's 6N).
  count active() const {
    return lm_head_compute + attention + dense_ffn + router + shared_experts + active_routed + norms;
  }
  count active_with_embedding() const { return active() + embedding; }
  count lm_head_compute = 0;  // vocab x hidden even when tied (the matmul still runs)
};

// One softmax-attention layer (of the given span: DeepSeek-V4's compressors and indexer differ by span).
AttentionParams attention_params(const ModelSpec& m, AttentionSpan span = AttentionSpan::full);
AttentionParams linear_mixer_params(const ModelSpec& m);  // one linear-mixer layer (AttentionSpec::linear)
AttentionParams mixer_params(const ModelSpec& m, AttentionSpan span);  // the token mixer of a layer of that span
count dense_ffn_params(const ModelSpec& m);  // one dense layer's FFN
count expert_params(const ModelSpec& m);     // one routed expert
count shared_expert_params(const ModelSpec& m);  // all shared experts of one MoE layer
count layer_norm_params(const ModelSpec& m);     // norms (and mHC mixing) of one decoder layer
count mtp_module_params(const ModelSpec& m);     // one MTP module (DeepSeek-V3 §2.2): projection + one MoE layer + norms

ParamBreakdown count_params(const ModelSpec& m);

// Parameters of one decoder layer (index from 0), split into those sharded like attention
// (TP x CP x DP) and those sharded like experts (ETP x EP x expert-DP).
struct LayerParams {
  count dense_sharded = 0;   // attention, dense FFN, router, shared experts, norms
  count expert_sharded = 0;  // routed experts
};
LayerParams layer_params(const ModelSpec& m, int layer);

}  // namespace moesim
