// The MoE block of a decoder layer as operators (LayerBuilder::moe_block): each part of the layer that
// runs as kernels of its own in Megatron-Core's MoELayer (megatron/core/transformer/moe/: router.py,
// moe_utils.py, token_dispatcher.py, experts.py) is an op with its own cost, so `moesim ops` shows the
// router, the permutation, the dispatch, the grouped GEMMs and the combine apart.
#include <cmath>

#include "costmodels/layer_builder.h"

namespace moesim::graph::detail {

namespace {

comm::ExpertRouting routing_of(const MoeSpec& moe) {
  return {.top_k = moe.top_k, .experts = moe.experts, .groups = moe.router_groups,
          .group_top_k = moe.router_group_top_k, .balanced_groups = moe.expert_groups};
}

// Router scores, probabilities and their losses are fp32 (Megatron-Core moe_router_dtype fp32, as the
// moe_recipes set; TopKRouter upcasts the logits).
constexpr bytes router_element = 4;

}  // namespace

// Router (Megatron-Core TopKRouter): gating GEMM T x h x E, score function (softmax / sigmoid), top-k
// (group-limited where the model has router groups), the load-balancing loss over the scores, and the
// token-count histogram (routing_map.sum(0)) that the dispatcher copies to the host.
void LayerBuilder::router(double tokens) {
  const MoeSpec& moe = *m_.moe;
  const double scores = tokens * moe.experts;
  gemm("router", tokens, m_.hidden, moe.experts).saved_bytes = tokens * m_.hidden * a_;
  // Softmax/sigmoid: read and write the fp32 scores, ~5 FLOPs per score (max, exp, sum, divide);
  // the probabilities are saved for its backward.
  Op& score = vector("router_score", scores, 5);
  score.hbm_bytes = 2 * scores * router_element;
  score.saved_bytes = scores * router_element;
  // Top-k: read the scores, write k probabilities (fp32) and indices (int64) per token; group-limited
  // routing first reduces each group to its best scores (DeepSeek-V3 §2.1.2), one more read.
  Op& topk = vector("router_topk", scores, 6);
  topk.hbm_bytes = scores * router_element * (moe.router_groups > 1 ? 2 : 1) + tokens * moe.top_k * 12;
  // Switch-style auxiliary loss (Fedus et al. 2021 eq. 4): per-expert mean probability and token share,
  // one more read of the scores (moe_utils.switch_load_balancing_loss_func).
  Op& aux = vector("router_aux_loss", scores, 2);
  aux.hbm_bytes = scores * router_element;
  // Token counts per expert from the boolean routing map (T x E bytes); the dispatcher's copy of them
  // to the host is the device-to-host sync that stops the host at every MoE layer (simulate.cpp).
  Op& hist = vector("router_histogram", scores, 1);
  hist.hbm_bytes = scores;
}

// Permutation (moe_utils.permute): the row indices of each expert's tokens from the routing map
// (transpose of the T x E boolean map and masked_select: ~3 bytes per map entry, 8-byte indices out),
// then a gather of T x k token rows (read and write).
void LayerBuilder::permute(double tokens) {
  const MoeSpec& moe = *m_.moe;
  Op& index = vector("permute_index", tokens * moe.experts, 1);
  index.hbm_bytes = 3 * tokens * moe.experts + 8 * tokens * moe.top_k;
  vector("permute", tokens * moe.top_k * m_.hidden, 0);
}

// Unpermutation (moe_utils.unpermute): the expert outputs times their routing probabilities (read and
// write T x k rows), then a scatter-add of the T x k rows into T output rows.
void LayerBuilder::unpermute(double tokens) {
  const MoeSpec& moe = *m_.moe;
  const double rows = tokens * moe.top_k * m_.hidden;
  vector("unpermute_probs", rows, 1).saved_bytes = rows * a_;  // the expert outputs, for the probs' gradient
  Op& scatter = vector("unpermute", rows, 1);
  scatter.hbm_bytes = (rows + tokens * m_.hidden) * a_;
}

// GShard / DeepSpeed MoE (MindSpeed-LLM's legacy model path: AscendSpeed ascendspeed/components/moe,
// gate.py top2gating and moe_layer.py MOELayer, Ascend/MindSpeed c95c80d8, 2024-03-04, copied from
// DeepSpeed's sharded_moe.py): every expert has C = ceil(k x factor x S / E) slots (utils._capacity with
// top2gating's factor x 2), so the E x C slots of the S local tokens number ~k x factor x S.
double LayerBuilder::gshard_slots(double tokens) const {
  const MoeSpec& moe = *m_.moe;
  return moe.experts * std::ceil(moe.top_k * c_.moe_capacity_factor * tokens / moe.experts);
}

// The gate turns its choices into dense S x E x C tensors: the fp32 combine weights of each choice
// ('se,sc->sec', 4 B written each), their sum (8 B read, 4 B written), the boolean dispatch mask (4 B
// read, 1 B written) and the bf16 casts of mask and weights for the matmuls (type_as: 1 + 2 and 4 + 2 B):
// 34 bytes per element. The dispatch ('sec,sm->ecm', utils.einsum: matmul(mask.reshape(s, e*c).t(), x))
// is a GEMM of the mask and the tokens; the mask needs no gradient, the tokens do.
void LayerBuilder::gshard_dispatch(double tokens) {
  const double slots = gshard_slots(tokens), elements = tokens * slots;
  Op& masks = vector("gshard_masks", elements, 3);
  masks.hbm_bytes = 34 * elements;
  masks.working_bytes = 17 * elements;  // both choices' fp32 weights and their sum, the mask and its casts
  masks.saved_bytes = 4 * elements;     // bf16 mask and weights, kept by the dispatch and combine matmuls
  // As x^T (h x S) times mask (S x EC): the mask is the K x N operand.
  Op& dispatch = gemm("gshard_dispatch", m_.hidden, tokens, slots);
  dispatch.model_flop_count = 0;  // not the model's: an artefact of dense dispatch
  dispatch.kn_is_weight = false;
  dispatch.kn_needs_gradient = false;
  // torch.distributed all_to_all_single of the padded E x C x h buffer (moe_layer._AllToAll): its size
  // does not depend on the routing.
  collective("ep_dispatch", comm::CollectiveKind::all_to_all, GroupKind::ep, slots * m_.hidden * a_);
}

// The all-to-all back, then the combine ('sec,ecm->sm': matmul(weights.reshape(s, e*c), y)) as y^T
// (h x EC) times the weights^T (EC x S); both operands need their gradient (the weights carry the gates').
void LayerBuilder::gshard_combine(double tokens) {
  const double slots = gshard_slots(tokens);
  collective("ep_combine", comm::CollectiveKind::all_to_all, GroupKind::ep, slots * m_.hidden * a_);
  Op& combine = gemm("gshard_combine", m_.hidden, slots, tokens);
  combine.model_flop_count = 0;
  combine.kn_is_weight = false;
  combine.saved_bytes = slots * m_.hidden * a_;  // the expert outputs, for the weights' gradient
}

// MindSpeed's allgather permutation (allgather_token_permutation in mindspeed/core/transformer/moe/
// token_dispatcher.py, Ascend/MindSpeed 4ea42a23, the commit MindSpeed-LLM's 2024-09 examples/README.md
// pins): after the gather it sorts the local experts' indices (torch.argsort of their float copy) and takes
// the rows in two gathers, global_hidden_states[global_local_map] then [indices]; permute() counts one.
// Rows per device: the gathered tokens' picks that land on this rank's experts (balanced).
void LayerBuilder::mindspeed_gather_rows(double tokens) {
  const double rows = tokens * m_.moe->top_k * c_.etp;
  Op& sort = vector("permute_argsort", rows, 1);
  sort.hbm_bytes = rows * (4 + 4 + 8);  // the fp32 keys written and read, int64 order out
  vector("permute_rows", rows * m_.hidden, 0);  // the second row gather: read and write the rows
}

// MindSpeed's allgather unpermutation (allgather_token_unpermutation and NewIndePut, same file): the
// combine buffer of all gathered tokens is allocated in fp32 (torch.zeros(..., dtype=torch.float)), the
// expert rows are cast to fp32 and index_put_ with accumulate=True into it, and the whole buffer is cast
// back to bf16 before the reduce-scatter; the backward gathers the rows' gradient with index_select.
void LayerBuilder::mindspeed_fp32_combine(double tokens) {
  constexpr bytes fp32 = 4;
  const double h = m_.hidden, rows = tokens * m_.moe->top_k * c_.etp;
  const double gathered = c_.ep * tokens * c_.tp;  // hidden_shape tokens x the tensor-and-expert group
  Op& zero = vector("combine_fp32_zero", gathered * h, 0);
  zero.hbm_bytes = zero.working_bytes = gathered * h * fp32;
  // Cast (read bf16, write fp32), then the accumulating scatter (read the rows, read and write the targets).
  Op& accumulate = vector("combine_fp32_accumulate", rows * h, 1);
  accumulate.hbm_bytes = rows * h * (a_ + 4 * fp32);
  accumulate.working_bytes = rows * h * (a_ + fp32) + gathered * h * fp32;
  Op& cast = vector("combine_fp32_cast", gathered * h, 0);
  cast.hbm_bytes = cast.working_bytes = gathered * h * (fp32 + a_);
}

// MindSpeed's SequentialMLP under the alltoall dispatcher (sequential_mlp_forward in mindspeed/core/
// transformer/moe/experts.py, Ascend/MindSpeed 4ea42a23, registered by megatron_adaptor.py
// mcore_moe_adaptation with --moe-permutation-async-comm and alltoall): each expert's rows arrive with h / TP
// columns and are all-gathered along the last dimension (Megatron's _gather_along_last_dim: a gather, then
// torch.cat of the pieces, one more read and write of the rows); the ETP all-gather itself is etp_all_gather.
void LayerBuilder::mindspeed_sequential_gather(double rows) {
  vector("expert_gather_concat", rows * m_.hidden, 0);
}

// The experts' outputs go into a zeroed buffer of all rows (get_zeros_with_tp), one copy per expert.
void LayerBuilder::mindspeed_sequential_output(double rows) {
  Op& zero = vector("expert_output_zero", rows * m_.hidden, 0);
  zero.hbm_bytes = zero.working_bytes = rows * m_.hidden * a_;
  vector("expert_output_copy", rows * m_.hidden, 0);
}

// MoE block with the alltoall dispatcher and parallel folding (Liu et al. 2025, arXiv 2504.14960):
// tokens are SP-sharded over TP before routing; the EP group carries dispatch and combine; ETP
// splits expert weights and gathers tokens.
void LayerBuilder::moe_block() {
  const MoeSpec& moe = *m_.moe;
  const double t = c_.tp, h = m_.hidden;
  const bool swiglu = m_.ffn.activation == Activation::swiglu;
  const double routed_tokens = c_.tokens / t;  // MoE requires SP with TP: each TP rank routes T/tp
  if (m_.residual_streams > 1) hyper_connection_pre(false);
  norm("moe_norm");
  router(routed_tokens);
  // Megatron's allgather dispatcher (MoEAllGatherTokenDispatcher) gathers all ranks' tokens over the
  // EP group and reduce-scatters the expert outputs: ep x T x h whatever the routing.
  const bool gathered = c_.moe_dispatcher == MoeDispatcher::allgather && c_.ep > 1;
  const bool einsum = c_.moe_dispatcher == MoeDispatcher::einsum;
  if (einsum) {
    gshard_dispatch(routed_tokens);
  } else if (gathered) {
    permute(routed_tokens);
    collective("ep_all_gather", comm::CollectiveKind::all_gather, GroupKind::ep, c_.ep * routed_tokens * h * a_);
    if (c_.moe_permutation_async_comm) mindspeed_gather_rows(routed_tokens);
  } else {
    permute(routed_tokens);
    Op& d = collective("ep_dispatch", comm::CollectiveKind::all_to_all, GroupKind::ep,
                       routed_tokens * moe.top_k * h * c_.dispatch_bytes);
    d.collective.expert_dispatch = true;
    d.collective.tokens = routed_tokens;
    d.collective.token_bytes = h * c_.dispatch_bytes;
    d.collective.routing = routing_of(moe);
  }
  const double expert_tokens = routed_tokens * moe.top_k * c_.etp;  // per device, balanced
  // The ETP gather and reduce-scatter move the routed (or capacity-padded) tokens: they scale as the experts' load.
  if (c_.etp > 1)
    collective("etp_all_gather", comm::CollectiveKind::all_gather, GroupKind::etp, expert_tokens * h * a_)
        .scales_with_imbalance = true;
  const bool mindspeed_sequential = c_.moe_permutation_async_comm && c_.moe_dispatcher == MoeDispatcher::alltoall &&
                                    !c_.moe_grouped_gemm && c_.etp > 1;
  if (mindspeed_sequential) mindspeed_sequential_gather(expert_tokens);
  const double local_experts = static_cast<double>(moe.experts) / c_.ep;
  const double width = moe.expert_intermediate / c_.etp;
  const double per_expert = expert_tokens / local_experts;
  {
    Op& fc1 = linear(gemm("expert_fc1", per_expert, h, (swiglu ? 2 : 1) * width, local_experts, true));
    fc1.saved_bytes = expert_tokens * h * li_;
    fc1.scales_with_imbalance = true;
    Op& act = vector("expert_act", expert_tokens * width, swiglu ? 4 : 8, swiglu ? 3 : 2);
    act.saved_bytes = expert_tokens * (swiglu ? 2 : 1) * width * a_;
    act.scales_with_imbalance = true;
    Op& fc2 = linear(gemm("expert_fc2", per_expert, width, h, local_experts, true));
    fc2.saved_bytes = expert_tokens * width * li_;
    fc2.scales_with_imbalance = true;
  }
  if (mindspeed_sequential) mindspeed_sequential_output(expert_tokens);
  mark_recompute(RecomputeModule::layernorm, {"router"}, {"moe_norm"});
  mark_recompute(RecomputeModule::moe_act, {"expert_fc2"}, {"expert_act"});
  if (c_.etp > 1) {
    Op& rs = collective("etp_reduce_scatter", comm::CollectiveKind::reduce_scatter, GroupKind::etp, expert_tokens * h * a_);
    rs.scales_with_imbalance = true;
    keep_reduce_scatter_output(rs, c_.etp);
  }
  if (einsum) {
    gshard_combine(routed_tokens);
  } else if (gathered) {
    if (c_.moe_permutation_async_comm) mindspeed_fp32_combine(routed_tokens);
    keep_reduce_scatter_output(collective("ep_reduce_scatter", comm::CollectiveKind::reduce_scatter, GroupKind::ep,
                                          c_.ep * routed_tokens * h * a_),
                               c_.ep);
  } else {
    Op& d = collective("ep_combine", comm::CollectiveKind::all_to_all, GroupKind::ep,
                       routed_tokens * moe.top_k * h * a_);
    d.collective.expert_dispatch = true;
    d.collective.tokens = routed_tokens;
    d.collective.token_bytes = h * a_;
    d.collective.routing = routing_of(moe);
  }
  if (!einsum) unpermute(routed_tokens);
  if (moe.shared_experts > 0) {
    // Shared experts are a TP-split dense MLP on all T tokens (Megatron-Core SharedExpertMLP).
    const double T = c_.tokens;
    const double sw = moe.shared_experts * moe.shared_expert_intermediate / t;
    tp_gather("shared_tp_all_gather");
    linear(swiglu ? fused_gemm("shared_fc1", T, h, {sw, sw}) : gemm("shared_fc1", T, h, sw), Fp8Cast::input, Fp8Gather::input).saved_bytes =
        gathered_input_saved(h, li_);
    vector("shared_act", T * sw, 4, 3).saved_bytes = T * (swiglu ? 2 : 1) * sw * a_;
    linear(gemm("shared_fc2", T, sw, h), Fp8Cast::input, Fp8Gather::gradient).saved_bytes = T * sw * li_;
    tp_reduce("shared_tp_reduce");
  }
  residual("moe_residual");
}

}  // namespace moesim::graph::detail
