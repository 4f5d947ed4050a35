#pragma once
// The attention variants of a model file's `attention` object (costmodels/specs.h AttentionSpec):
// sliding windows and the layer pattern, sinks, the output gate, linear mixers and DeepSeek sparse
// attention. One line naming file, field and expectation for any bad value.
#include "costmodels/specs.h"
#include "sim/io/json_reader.h"

namespace moesim::io {

// attention.sliding_window, layer_pattern, sinks, output_gate, linear and sparse of a model with
// `layers` decoder layers, into s (whose type and MLA ranks are read already).
void read_attention_variants(const Field& a, int layers, AttentionSpec& s);

// DeepSeek-V4's hybrid attention (AttentionType::hybrid_compressed): the shapes of the model file's
// attention object of type "deepseek_v4" (heads, head_dim, qk_rope_head_dim, q_lora_rank, o_groups,
// o_lora_rank, sliding_window, sparse) and its per-layer compress_ratios (0, 4 or 128; layers or
// layers + mtp_layers entries, the last ones the MTP modules').
void read_compressed_attention(const Field& a, int layers, int mtp_layers, AttentionSpec& s);

// The shapes DeepSeek-V4's model file and config.json name alike (head_dim, qk_rope_head_dim,
// q_lora_rank, o_groups, o_lora_rank, sliding_window), with s.heads read already.
void read_compressed_shapes(const Field& f, AttentionSpec& s);

// The spans of DeepSeek-V4's per-layer compress ratios, the array f[key] (as config.json
// compress_ratios), into s.layer_pattern (layers entries) and s.mtp_span.
void read_compress_ratios(const Field& f, const std::string& key, int layers, int mtp_layers, AttentionSpec& s);

}  // namespace moesim::io
