#pragma once
// Inference deployment of a (possibly expert-pruned) model: weight bytes at a weight-only precision,
// KV cache for a batch and context, transient activations, framework reserve, devices of a hardware
// profile needed to hold it, and a memory-bound decode-step time. Pure math over specs; parameter
// counts come from costmodels/params.h.
#include <vector>

#include "costmodels/params.h"
#include "costmodels/specs.h"

namespace moesim::deploy {

enum class WeightPrecision { bf16, int8, int4 };

// Weight-only quantisation with group-wise scales: `bits` per weight plus `group_overhead` bytes per
// `group_size` consecutive input weights of a row.
struct QuantFormat {
  WeightPrecision precision = WeightPrecision::bf16;
  double bits = 16;
  int group_size = 0;          // 0: no groups (bf16)
  bytes group_overhead = 0;    // scale (+ zero point) per group
  double bytes_per_weight() const { return bits / 8 + (group_size > 0 ? group_overhead / group_size : 0.0); }
};

// int4: asymmetric, one bf16 scale and one bf16 zero point per group (PreMoe convert.py /
// quant_process.py from gpt-fast, group 128: 0.5 + 4/128 = 0.53125 B/weight; premoe.md §2.4).
// int8: symmetric, one bf16 scale per group (the same grouping with no zero point: 1 + 2/128 B/weight).
QuantFormat quant_format(WeightPrecision precision, int group_size = 128);

// Routed experts kept in each MoE layer (in layer order) and experts activated per token.
struct ExpertSelection {
  std::vector<int> kept_per_moe_layer;
  int top_k = 0;
  count kept_total() const;
};
ExpertSelection all_experts(const ModelSpec& m);
// "k/M": M experts kept in every MoE layer, k activated per token (premoe.md §1.1).
ExpertSelection keep_uniform(const ModelSpec& m, int top_k, int keep);

// count_params of the model with each MoE layer's routed experts (and the router rows that score them,
// which PreMoe slices with them, premoe.md §1.4) cut to the kept ones. active_routed uses the new top_k.
ParamBreakdown pruned_params(const ModelSpec& m, const ExpertSelection& selection);

// Bytes of all weights: the embedding, norms and router stay bf16, every other matrix (attention,
// dense FFN, shared and routed experts, LM head) takes the quantised format, as PreMoe's convert.py
// does (premoe.md §2.4). MTP modules are not deployed (PreMoe's converter drops them).
bytes weight_bytes(const ParamBreakdown& p, const QuantFormat& q);

// KV cache per token over all layers. MLA caches the compressed latent and the decoupled RoPE key:
// (kv_lora_rank + qk_rope_head_dim) values per layer (DeepSeek-V2 §2.1.2, arXiv 2405.04434, "only
// (d_c + d_h^R) l elements"); MHA/GQA cache K and V: 2 x kv_heads x head_dim per layer.
bytes kv_bytes_per_token(const ModelSpec& m, bytes bytes_per_value);

struct Workload {
  int batch = 1;            // concurrent sequences
  int context = 4096;       // tokens per sequence held in the KV cache
  int prefill_chunk = 8192; // prompt tokens per forward pass (chunked prefill, Sarathi-Serve arXiv 2403.02310);
                            // assumption: 8192, a common vLLM max_num_batched_tokens for throughput serving
  bytes kv_bytes_per_value = 2;  // bf16 KV cache (weight-only quantisation leaves it in bf16)
};

// Largest transient working set of one forward pass over `tokens` tokens, in bf16: the residual stream
// and its normalised copy (2h) plus the widest of attention (MLA: up-projected q, k, v of all heads and
// the latents; MHA/GQA: q, k, v and output) and FFN (dense: gate, up and activated, 3 x intermediate;
// MoE: each of the k routed copies of the token, h, with its 3 x expert width, plus the shared experts),
// and fp32 logits of the last token of each of `sequences` sequences. Inference frees a layer's tensors
// before the next layer runs, so only one layer counts. moesim's estimate; no published figure.
bytes activation_bytes(const ModelSpec& m, int top_k, double tokens, double sequences);

struct DecodeStep {
  bytes weights_read = 0;   // all devices together
  bytes kv_read = 0;
  seconds memory_s = 0;     // busiest device: its share of the bytes over its HBM bandwidth
  seconds comm_s = 0;       // split over devices: 2 all-reduces of the batch's hidden states per layer
  seconds total() const { return memory_s + comm_s; }
};

struct Deployment {
  ParamBreakdown params;
  QuantFormat format;
  bytes weights = 0;
  bytes kv_cache = 0;
  bytes activations = 0;      // per device
  bytes reserve = 0;          // per device (profile framework_reserve)
  int devices_needed = 0;     // 0: activations and reserve alone exceed one device
  bytes total = 0;            // weights + kv_cache + devices x (activations + reserve)
  DecodeStep decode;
};

Deployment plan_deployment(const ModelSpec& m, const ExpertSelection& selection, const QuantFormat& format,
                           const Workload& workload, const HardwareProfile& hw);

// Expected distinct experts, out of `kept`, that a batch of `tokens` tokens routes to, each token
// choosing `top_k` distinct experts uniformly: kept x (1 - (1 - top_k/kept)^tokens).
double expected_experts_touched(int kept, int top_k, double tokens);

const char* to_string(WeightPrecision p);

}  // namespace moesim::deploy
