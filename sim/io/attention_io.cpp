#include "sim/io/attention_io.h"

#include <algorithm>
#include <string>

namespace moesim::io {

namespace {

// attention.linear: the linear token mixer of the pattern's "linear" layers (LinearAttentionSpec).
void read_linear_mixer(const Field& lin, LinearAttentionSpec& s) {
  const std::string kind = lin.choice("kind", {"gated_deltanet", "lightning", "mamba2"});
  s.kind = kind == "lightning" ? LinearMixer::lightning : kind == "mamba2" ? LinearMixer::mamba2 : LinearMixer::gated_deltanet;
  s.heads = lin.positive_int("heads");
  s.key_heads = s.kind == LinearMixer::lightning ? lin.positive_int_or("key_heads", s.heads) : lin.positive_int("key_heads");
  if (s.heads % s.key_heads != 0) lin.fail("key_heads", "a divisor of heads (" + std::to_string(s.heads) + ")");
  s.key_head_dim = lin.positive_int("key_head_dim");
  s.value_head_dim = lin.positive_int("value_head_dim");
  s.conv_kernel = lin.non_negative_int_or("conv_kernel", 0);
  s.chunk = lin.positive_int("chunk");
}

// attention.sparse: DeepSeek sparse attention on the full-span layers (SparseAttentionSpec), as
// DeepSeek-V3.2 instantiates it: on MLA with a query latent, whose output the indexer's queries read.
void read_sparse_attention(const Field& sp, const AttentionSpec& a, SparseAttentionSpec& s) {
  s.index_heads = sp.positive_int("index_heads");
  s.index_head_dim = sp.positive_int("index_head_dim");
  s.topk = sp.positive_int("topk");
  if (a.type != AttentionType::mla || a.q_lora_rank == 0)
    sp.fail("index_heads", "absent unless attention.type is mla with a q_lora_rank (DSA's indexer reads MLA's query latent)");
}

}  // namespace

// attention.sliding_window (tokens) and attention.layer_pattern (["sliding", "full", "linear", ...]
// repeated over the decoder layers from layer 0; absent: every layer slides), AttentionSpec;
// attention.sinks; attention.linear for the linear layers; attention.sparse for the full ones.
void read_attention_variants(const Field& a, int layers, AttentionSpec& s) {
  if (auto sp = a.optional_child("sparse")) read_sparse_attention(*sp, s, s.sparse);
  s.sliding_window = a.non_negative_int_or("sliding_window", 0);
  s.sinks = a.boolean_or("sinks", false);
  s.output_gate = a.boolean_or("output_gate", false);
  if (auto lin = a.optional_child("linear")) read_linear_mixer(*lin, s.linear);
  if (!a.has("layer_pattern")) {
    if (s.linear.heads > 0) a.fail("layer_pattern", "the layers that use attention.linear (\"linear\" entries)");
    return;
  }
  const json& pattern = a.raw().at("layer_pattern");
  const std::string expected =
      "a non-empty array of at most layers (" + std::to_string(layers) + ") \"sliding\" | \"full\" | \"linear\"";
  if (!pattern.is_array() || pattern.empty() || pattern.size() > static_cast<std::size_t>(layers)) a.fail("layer_pattern", expected);
  for (const json& e : pattern) {
    if (e == "sliding") s.layer_pattern.push_back(AttentionSpan::sliding);
    else if (e == "full") s.layer_pattern.push_back(AttentionSpan::full);
    else if (e == "linear") s.layer_pattern.push_back(AttentionSpan::linear);
    else a.fail("layer_pattern", expected);
  }
  const auto has = [&](AttentionSpan span) {
    return std::find(s.layer_pattern.begin(), s.layer_pattern.end(), span) != s.layer_pattern.end();
  };
  if (has(AttentionSpan::sliding) && s.sliding_window == 0) a.fail("sliding_window", "a window in tokens (layer_pattern has sliding layers)");
  if (has(AttentionSpan::linear) && s.linear.heads == 0) a.fail("linear", "an object (layer_pattern has linear layers)");
  if (!has(AttentionSpan::linear) && s.linear.heads > 0) a.fail("layer_pattern", "\"linear\" entries (attention.linear is given)");
}


}  // namespace moesim::io
