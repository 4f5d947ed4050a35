// FP8 quantisation of the Transformer Engine linears as operators of their own, as TE runs it in
// Megatron-Core (TransformerEngine d0067d0, transformer_engine/pytorch/module/linear.py _Linear
// forward/backward, layernorm_linear.py, grouped_linear.py GroupedLinear; Megatron-LM d98e8a6,
// megatron/core/extensions/transformer_engine.py TELinear/TEGroupedLinear forward):
// - forward: the linear's bf16 input is quantised with row-wise usage (the fprop GEMM) and column-wise
//   usage (kept for the wgrad GEMM: input_quantizer.set_usage(rowwise=True, columnwise=backward_needs_input));
//   GroupedLinear quantises the permuted tokens of all its experts the same way (tex.group_quantize /
//   split_quantize with the m_splits), and the SwiGLU output before fc2 is fc2's input;
// - backward: the output gradient with row-wise (dgrad) and column-wise (wgrad) usage
//   (grad_output_quantizer.set_usage(rowwise=True, columnwise=True), base.py grad_output_preprocess);
// - weights with row-wise (fprop) and column-wise (dgrad) usage, only when is_first_microbatch is None or
//   True (quantize_weight(update_workspace=...)): Megatron-Core sets it at the first microbatch of each
//   step (pipeline_parallel/schedules.py set_is_first_microbatch) and TE reuses the cached FP8 weights for
//   the others, so a layer quantises its weights once per iteration.
#include "costmodels/fp8_cast.h"

#include <string_view>
#include <utility>

#include "costmodels/layer_builder.h"

namespace moesim::graph {

double fp8_cast_bytes(Fp8Recipe recipe, Fp8Operand operand, bool any_layout, bool from_norm) {
  // Tensor-scaled FP8 (delayed, tensorwise) is one tensor numerically whichever way it is read: where
  // the FP8 GEMMs take any operand layout it is one copy; on TN-only hardware TE's cast_transpose writes
  // the transposed copy too. Block-scaled recipes scale along rows or columns, so the row-wise and
  // column-wise copies differ and both are made from the bf16 tensor (recipe/__init__.py,
  // Float8BlockScaling and MXFP8BlockScaling: "both versions are computed from the high precision input").
  const bool tensor_scaled = recipe == Fp8Recipe::delayed || recipe == Fp8Recipe::tensorwise;
  const double copies = tensor_scaled && any_layout ? 1 : 2;
  // Delayed scaling's LayerNormLinear writes the norm's output in FP8 directly (csrc/extensions/
  // normalization.cpp, Impl::FULLY_FUSED): the norm writes 1 B instead of 2 and the transposed copy, where
  // needed, reads and writes 1 B: net 1 B per element on TN-only hardware, none otherwise.
  if (from_norm && recipe == Fp8Recipe::delayed) return copies - 1;
  // Scales per element: Float8BlockScaling's fp32 scale per 1x128 block of inputs and gradients and per
  // 128x128 block of weights (x_block_scaling_dim 1, w_block_scaling_dim 2); MXFP8's E8M0 byte per 32.
  double scale = 0;
  if (recipe == Fp8Recipe::blockwise) scale = operand == Fp8Operand::weight ? 4.0 / (128 * 128) : 4.0 / 128;
  if (recipe == Fp8Recipe::mxfp8) scale = 1.0 / 32;
  // Current scaling reads the tensor once more for its amax before the cast (csrc/quantizer.cpp,
  // Float8CurrentScalingQuantizer::quantize_impl: nvte_compute_amax, then nvte_quantize_v2), except after
  // a norm that computes the amax itself (Impl::FUSED_NORM_AMAX_FP8).
  const double amax_pass = recipe == Fp8Recipe::tensorwise && !from_norm ? 2 : 0;
  return 2 + amax_pass + copies * (1 + scale);
}

namespace detail {

namespace {

// Op::name is a literal: the cast of each TE linear of the layer graphs.
const char* cast_name(std::string_view gemm) {
  static constexpr std::pair<std::string_view, const char*> names[] = {
      {"q_down_proj", "q_down_proj_fp8_cast"},   {"q_up_proj", "q_up_proj_fp8_cast"},
      {"q_proj", "q_proj_fp8_cast"},             {"kv_down_proj", "kv_down_proj_fp8_cast"},
      {"kv_up_proj", "kv_up_proj_fp8_cast"},     {"qkv_proj", "qkv_proj_fp8_cast"},
      {"attn_out_proj", "attn_out_proj_fp8_cast"}, {"mlp_fc1", "mlp_fc1_fp8_cast"},
      {"mlp_fc2", "mlp_fc2_fp8_cast"},           {"expert_fc1", "expert_fc1_fp8_cast"},
      {"expert_fc2", "expert_fc2_fp8_cast"},     {"shared_fc1", "shared_fc1_fp8_cast"},
      {"shared_fc2", "shared_fc2_fp8_cast"},     {"linear_in_proj", "linear_in_proj_fp8_cast"},
      {"linear_out_proj", "linear_out_proj_fp8_cast"}, {"mtp_proj", "mtp_proj_fp8_cast"}};
  for (const auto& [linear, cast] : names)
    if (linear == gemm) return cast;
  return "fp8_cast";
}

}  // namespace

// HBM bytes of casting `elements` of one operand of a linear, `gathered` when sequence parallelism
// all-gathers it over TP: TE then quantises the local 1/tp shard before the gather and gathers FP8. A
// tensor-scaled FP8 tensor cannot be gathered column-wise (supports_only_rowwise_all_gather), so the shard
// is cast row-wise only and, on TN-only hardware, the gathered tensor is transposed where the other GEMM
// needs it (Float8Tensor update_usage(columnwise_usage=True): read and write 1 B per element of the
// gathered tensor); block-scaled recipes cast both copies on the shard and gather the column-wise one too.
LayerBuilder::Fp8Bytes LayerBuilder::fp8_operand_bytes(double elements, Fp8Operand operand, bool gathered,
                                                       bool from_norm) const {
  const bool tensor_scaled = c_.fp8_recipe == Fp8Recipe::delayed || c_.fp8_recipe == Fp8Recipe::tensorwise;
  if (!gathered || c_.tp <= 1 || !c_.sequence_parallel)
    return {elements * fp8_cast_bytes(c_.fp8_recipe, operand, c_.fp8_any_layout, from_norm), 0};
  const double shard = elements / c_.tp;
  if (!tensor_scaled) return {shard * fp8_cast_bytes(c_.fp8_recipe, operand, c_.fp8_any_layout, from_norm), 0};
  // One row-wise copy on the shard (fp8_cast_bytes' single copy), the transposed copy after the gather.
  return {shard * fp8_cast_bytes(c_.fp8_recipe, operand, true, from_norm), c_.fp8_any_layout ? 0 : 2 * elements};
}

// One op per TE linear: forward, its input's cast and 1/microbatches of its weight's; backward, its
// output gradient's cast (and the transposed copies of gathered operands, made in backward for wgrad).
// Memory-bound: bytes from fp8_cast_bytes, ~2 FLOPs per element (abs-max compare, scale multiply).
Op LayerBuilder::fp8_cast_op(const Op& gemm) const {
  const compute::GemmShape& s = gemm.shape;
  const bool from_norm = gemm.fp8_cast == Fp8Cast::normed_input;
  const double input = s.m * s.k * s.count, gradient = s.m * s.n * s.count;
  const double weight = s.k * s.n * s.count / c_.microbatches;
  const Fp8Bytes in = fp8_operand_bytes(input, Fp8Operand::input, gemm.fp8_gathered == Fp8Gather::input, from_norm);
  const Fp8Bytes grad =
      fp8_operand_bytes(gradient, Fp8Operand::gradient, gemm.fp8_gathered == Fp8Gather::gradient, false);
  Op op;
  op.name = cast_name(gemm.name);
  op.kind = OpKind::vector;
  op.flop_count = 2 * (input + weight);
  op.hbm_bytes = in.cast + weight * fp8_cast_bytes(c_.fp8_recipe, Fp8Operand::weight, c_.fp8_any_layout);
  op.backward_hbm_bytes = grad.cast + grad.transpose + in.transpose;
  // Its bf16 input and FP8 output are the GEMM's operands: the GEMM's working bytes stand for them.
  op.scales_with_imbalance = gemm.scales_with_imbalance;
  // split_quantize casts each expert's rows with a kernel of its own, except delayed scaling with both
  // copies, which one fused multi-tensor cast-transpose serves (TE csrc/extensions/cast.cpp,
  // multi_tensor_quantize_impl: "only have fused kernel for FP8 delayed scaling").
  const bool fused = c_.fp8_recipe == Fp8Recipe::delayed && !c_.fp8_any_layout;
  if (gemm.kind == OpKind::grouped_gemm && !fused) op.per_expert_kernels = s.count;
  // A rerun GEMM quantises its recomputed input again.
  op.recomputed_by_selective = gemm.recomputed_by_selective;
  op.rerun_by_op_sac = gemm.rerun_by_op_sac;
  return op;
}

void LayerBuilder::add_fp8_casts() {
  if (!c_.fp8) return;
  std::vector<Op> ops;
  ops.reserve(graph_.forward.size() * 2);
  for (const Op& op : graph_.forward) {
    if (op.fp8_cast != Fp8Cast::none) {
      // A gathered input is cast on its shard before the sequence-parallel all-gather, which then moves
      // FP8 and feeds the GEMM (and stays next to it, for the TP overlap that chunks the two together).
      const bool before_gather = op.fp8_gathered == Fp8Gather::input && !ops.empty() &&
                                 ops.back().kind == OpKind::collective && ops.back().collective.group == GroupKind::tp &&
                                 ops.back().collective.kind == comm::CollectiveKind::all_gather;
      ops.insert(before_gather ? ops.end() - 1 : ops.end(), fp8_cast_op(op));
    }
    ops.push_back(op);
  }
  graph_.forward = std::move(ops);
}

}  // namespace detail
}  // namespace moesim::graph
