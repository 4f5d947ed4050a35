// A linear token-mixer layer as operators (LayerBuilder::linear_mixer): the input projection, the short
// convolution, the chunked recurrence core, the gated output norm and the output projection, as
// transformers Qwen3NextGatedDeltaNet, MiniMaxLightningAttention and NemotronHMamba2Mixer run them.
#include "costmodels/linear_mixer.h"

#include "costmodels/layer_builder.h"

namespace moesim::graph {

flops linear_core_flops_per_token(const LinearAttentionSpec& s, double heads, double key_heads) {
  const double C = s.chunk, dk = s.key_head_dim, dv = s.value_head_dim;
  switch (s.kind) {
    case LinearMixer::gated_deltanet: return heads * (6 * dk * dv + C * (6 * dk + 4 * dv) + 2 * C * C / 3);
    case LinearMixer::lightning: return heads * (2 * C * (dk + dv) + 4 * dk * dv);
    case LinearMixer::mamba2: return heads * (2 * C * dv + 4 * dk * dv) + key_heads * 2 * C * dk;
  }
  return 0;
}

flops linear_cp_correction_flops_per_token(const LinearAttentionSpec& s, double heads) {
  const double per_head = 2.0 * s.key_head_dim * s.value_head_dim;
  return heads * (s.kind == LinearMixer::gated_deltanet ? 2 * per_head : per_head);
}

bytes linear_state_bytes(const LinearAttentionSpec& s) { return 4.0 * s.key_head_dim * s.value_head_dim; }

}  // namespace moesim::graph

namespace moesim::graph::detail {

void LayerBuilder::linear_mixer() {
  const LinearAttentionSpec& s = m_.attention.linear;
  const double t = c_.tp, h = m_.hidden, T = c_.tokens;
  // Heads split over TP (Megatron-Core's MambaMixer and GatedDeltaNet shard heads and groups).
  const double heads = s.heads / t, key_heads = s.key_heads / t;
  const double kw = key_heads * s.key_head_dim, vw = heads * s.value_head_dim;
  if (m_.residual_streams > 1) hyper_connection_pre(true);
  norm("attn_norm");
  tp_gather("attn_tp_all_gather");
  // Input projection widths in call order, and the channels the short convolution mixes.
  // GDN (Qwen3NextGatedDeltaNet): in_proj_qkvz -> q, k, v, z; in_proj_ba -> beta, alpha per value head;
  // conv over q, k, v. Lightning (MiniMax): qkv_proj -> q, k, v, then output_gate -> gate; no conv.
  // Mamba-2 (Mamba2Mixer in_proj): z, x, B, C, dt; conv over x, B, C (key_heads = groups, dk = N).
  double conv_channels = 0;
  switch (s.kind) {
    case LinearMixer::gated_deltanet:
      linear(fused_gemm("linear_in_proj", T, h, {kw, kw, vw, vw, heads, heads}), Fp8Cast::normed_input, Fp8Gather::input).saved_bytes =
          gathered_input_saved(h, li_);
      conv_channels = 2 * kw + vw;
      break;
    case LinearMixer::lightning:
      linear(fused_gemm("linear_in_proj", T, h, {kw, kw, vw, vw}), Fp8Cast::normed_input, Fp8Gather::input).saved_bytes =
          gathered_input_saved(h, li_);
      break;
    case LinearMixer::mamba2:
      linear(fused_gemm("linear_in_proj", T, h, {vw, vw, kw, kw, heads}), Fp8Cast::normed_input, Fp8Gather::input).saved_bytes =
          gathered_input_saved(h, li_);
      conv_channels = vw + 2 * kw;
      break;
  }
  if (s.conv_kernel > 0) {
    // Depthwise causal conv1d (kernel K: K multiply-adds per channel) and its SiLU (~4 FLOPs); the
    // causal_conv1d kernel saves its input for backward.
    vector("linear_conv", T * conv_channels, 2.0 * s.conv_kernel + 4).saved_bytes = T * conv_channels * a_;
  }
  if (c_.cp > 1) {
    // LASP-2 (arXiv 2502.07563): one all-gather of every rank's final state per layer, instead of ring
    // attention's cp - 1 exchanges of K and V; the short convolution's K - 1 boundary tokens are
    // negligible beside it.
    collective("cp_state_all_gather", comm::CollectiveKind::all_gather, GroupKind::cp,
               c_.cp * heads * linear_state_bytes(s));
  }
  Op core;
  core.name = "linear_core";
  core.kind = OpKind::attention;
  core.model_flop_count = T * linear_core_flops_per_token(s, heads, key_heads);
  core.flop_count = core.model_flop_count + (c_.cp > 1 ? T * linear_cp_correction_flops_per_token(s, heads) : 0);
  // Reads q, k, v and the per-head gates (fp32), writes o; writes and reads back every chunk's state
  // (the chunked kernels materialise the state at each chunk boundary: fla chunk_gated_delta_rule_fwd_h,
  // mamba_chunk_scan_combined's chunk states).
  const double qkv = T * (2 * kw + vw) * a_, gates = T * heads * 2 * 4;
  const bytes chunk_states = T / s.chunk * heads * linear_state_bytes(s);
  core.hbm_bytes = qkv + gates + T * vw * a_ + 2 * chunk_states;
  core.working_bytes = qkv + gates + T * vw * a_ + chunk_states;
  // Saved for backward: q, k, v and the gates; the delta rule also keeps the fp32 chunk inverse T
  // (C per token and head: fla ChunkGatedDeltaRuleFunction saves A). Chunk states are recomputed.
  core.saved_bytes = qkv + gates + (s.kind == LinearMixer::gated_deltanet ? T * heads * s.chunk * 4 : 0);
  graph_.forward.push_back(core);
  // Gated output norm (GDN, Mamba-2: RMSNorm(o) * SiLU(z); MiniMax: norm(o) * sigmoid(gate)): keeps o
  // and the gate.
  vector("linear_gated_norm", T * vw, 10, 3).saved_bytes = 2 * T * vw * a_;
  linear(gemm("linear_out_proj", T, vw, h), Fp8Cast::input, Fp8Gather::gradient).saved_bytes = T * vw * li_;
  tp_reduce("attn_tp_reduce");
  residual("attn_residual");
}

}  // namespace moesim::graph::detail
