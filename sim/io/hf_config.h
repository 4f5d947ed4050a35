#pragma once
// The parts of reading a HuggingFace config.json that decide what moesim can model: fields that change
// an architecture's cost beyond what ModelSpec describes are refused (one line naming the file and the
// field), and sliding-window attention is read the way transformers' configuration classes derive it.
#include "costmodels/specs.h"
#include "sim/io/json_reader.h"

namespace moesim::io {

// Throws InputError naming the first field of `f` whose documented meaning changes the cost of the
// architecture and that moesim does not model (linear attention, Mamba / SSM mixers, sparse-attention
// indexers, chunked attention, MoE layers at intervals). Fields that do not change the cost
// (tokenizer ids, RoPE scaling, logit soft-capping, ...) pass silently.
void check_hf_fields_modelled(const Field& f);

// Sliding-window attention of a config with `layers` decoder layers into a.sliding_window and
// a.layer_pattern (the shortest period of the per-layer spans), from `layer_types` where given, else
// from the model type's rule in transformers (sliding_window_pattern, use_sliding_window and
// max_window_layers, alternating layers, or every layer). GPT-OSS configs also set a.sinks, Qwen3-Next
// configs a.linear, DeepSeek-V3.2 configs a.sparse.
void read_hf_attention_spans(const Field& f, int layers, AttentionSpec& a);

// DeepSeek-V4 (model_type deepseek_v4; Megatron-LM dev experimental/lite/megatron/lite/model/
// deepseek_v4/config.py lists its config.json fields): the hybrid attention's shapes and per-layer
// compress_ratios into a (AttentionType::hybrid_compressed), and mHC's hc_mult and hc_sinkhorn_iters and
// the hash-routed layers (num_hash_layers) into m.
void read_hf_deepseek_v4(const Field& f, ModelSpec& m);

// The shortest prefix of `spans` that repeats to give all of them (layer i: prefix[i % size]).
std::vector<AttentionSpan> shortest_period(const std::vector<AttentionSpan>& spans);

}  // namespace moesim::io
