#pragma once
// Linear-attention and state-space token mixers (AttentionSpan::linear, LinearAttentionSpec): the
// FLOPs of their chunked training kernels per token. Pure math; LayerBuilder::linear_mixer
// (costmodels/linear_mixer.cpp) builds the layer's ops from it.
#include "costmodels/specs.h"

namespace moesim::graph {

// Forward FLOPs per token of the mixer core (the chunked recurrence, without the projections,
// convolution and norm) for `heads` value heads and `key_heads` key heads (Mamba-2: B/C groups), as the
// chunked algorithm of each paper computes it. A multiply-add counts 2 FLOPs. C: spec.chunk.
//  gated_deltanet, per value head (chunkwise WY form: Yang et al. 2024, DeltaNet arXiv 2406.06484 §3.3,
//   and its gated form, Gated DeltaNet arXiv 2412.06464 §3.3; fla chunk_gated_delta_rule): per chunk
//   A = tril(beta K K^T) 2C^2 dk, T = (I + A)^-1 by forward substitution C^3 / 3 multiply-adds,
//   W = T beta K 2C^2 dk, U = T beta V 2C^2 dv, U - W S 2C dk dv, Q S 2C dk dv, Q K^T 2C^2 dk,
//   (Q K^T . M)(U - W S) 2C^2 dv, state update K^T (U - W S) 2C dk dv; per token
//   6 dk dv + C (6 dk + 4 dv) + 2 C^2 / 3.
//  lightning, per head (Qin et al. 2024, Lightning Attention-2 arXiv 2401.04658 Algorithm 1, block B = C):
//   intra-block Q K^T and its product with V 2B dk + 2B dv, inter-block Q KV 2 dk dv, KV update
//   K^T V 2 dk dv; per token 2C (dk + dv) + 4 dk dv.
//  mamba2 (Dao and Gu 2024, arXiv 2405.21060 §6, the SSD algorithm with chunk Q = C, state N = dk,
//   head dim P = dv): step 1 diagonal blocks C B^T 2QN per group and (L . C B^T) X 2QP per head;
//   step 2 chunk states B^T X 2NP per head; step 3 state passing (N P per chunk, negligible); step 4
//   state-to-output C h 2NP per head; per token heads (2QP + 4NP) + groups 2QN.
flops linear_core_flops_per_token(const LinearAttentionSpec& spec, double heads, double key_heads);

// Extra forward FLOPs per token when context parallelism splits the sequence (LASP-2, Sun et al. 2025,
// arXiv 2502.07563 §3: each rank runs its chunk from a zero state, the ranks all-gather their final
// states, and each adds the contribution of the states before it): the incoming state applied to the
// queries (Q S_in, 2 dk dv per head) and, for the delta rule, to the keys' correction (W S_in, another
// 2 dk dv).
flops linear_cp_correction_flops_per_token(const LinearAttentionSpec& spec, double heads);

// Bytes of one head's recurrent state as the kernels keep it (fp32, dk x dv).
bytes linear_state_bytes(const LinearAttentionSpec& spec);

}  // namespace moesim::graph
