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
  if ((a.type != AttentionType::mla && a.type != AttentionType::hybrid_compressed) || a.q_lora_rank == 0)
    sp.fail("index_heads", "absent unless attention.type is mla or deepseek_v4 with a q_lora_rank (the indexer reads the query latent)");
}

}  // namespace

// attention.sliding_window (tokens) and attention.layer_pattern (["sliding", "full", "linear", ...]
// repeated over the decoder layers from layer 0; absent: every layer slides), AttentionSpec;
// attention.sinks; attention.linear for the linear layers; attention.sparse for the full ones.
void read_attention_variants(const Field& a, int layers, AttentionSpec& s) {
  if (s.type == AttentionType::hybrid_compressed) return;  // read_compressed_attention
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


void read_compress_ratios(const Field& f, const std::string& key, int layers, int mtp_layers, AttentionSpec& s) {
  const json& r = f.raw().contains(key) ? f.raw().at(key) : json();
  if (!r.is_array()) f.fail(key, "a list of per-layer compress ratios (0, 4 or 128)");
  std::vector<int> ratios;
  for (const json& e : r) {
    if (!e.is_number_integer()) f.fail(key, "integer entries (0, 4 or 128)");
    ratios.push_back(e.get<int>());
  }
  const auto n = ratios.size();
  if (n != static_cast<std::size_t>(layers) && n != static_cast<std::size_t>(layers + mtp_layers))
    f.fail(key, "a list of layers (" + std::to_string(layers) + ") or layers + mtp_layers (" +
                    std::to_string(layers + mtp_layers) + ") compress ratios");
  const CompressedAttentionSpec& c = s.compressed;
  std::vector<AttentionSpan> spans;
  for (int r : ratios) {
    if (r == 0) spans.push_back(AttentionSpan::sliding);
    else if (r == c.csa_ratio) spans.push_back(AttentionSpan::compressed_sparse);
    else if (r == c.hca_ratio) spans.push_back(AttentionSpan::compressed);
    else f.fail(key, "entries 0 (sliding window), " + std::to_string(c.csa_ratio) + " (compressed sparse) or " +
                         std::to_string(c.hca_ratio) + " (heavily compressed), not " + std::to_string(r));
  }
  // The MTP modules' ratio where the list has them (Megatron-LM csa_compress_ratios), else full attention.
  s.mtp_span = n > static_cast<std::size_t>(layers) ? spans.back() : AttentionSpan::full;
  spans.resize(static_cast<std::size_t>(layers));
  s.layer_pattern = spans;
  bool sparse = false;
  for (AttentionSpan span : spans) sparse = sparse || span == AttentionSpan::compressed_sparse;
  if (sparse && !s.sparse.active()) f.fail(key, "no " + std::to_string(c.csa_ratio) + " entries without an indexer (sparse)");
}

void read_compressed_shapes(const Field& f, AttentionSpec& s) {
  s.type = AttentionType::hybrid_compressed;
  s.head_dim = s.v_head_dim = f.positive_int("head_dim");
  s.kv_heads = 1;  // one key-value entry shared by all heads
  s.qk_rope_head_dim = f.positive_int("qk_rope_head_dim");
  if (s.qk_rope_head_dim >= s.head_dim) f.fail("qk_rope_head_dim", "less than head_dim (" + std::to_string(s.head_dim) + ")");
  s.qk_nope_head_dim = s.head_dim - s.qk_rope_head_dim;
  s.q_lora_rank = f.positive_int("q_lora_rank");
  s.compressed.o_groups = f.positive_int("o_groups");
  if (s.heads % s.compressed.o_groups != 0) f.fail("o_groups", "a divisor of the heads (" + std::to_string(s.heads) + ")");
  s.compressed.o_lora_rank = f.positive_int("o_lora_rank");
  s.sliding_window = f.positive_int("sliding_window");
}

void read_compressed_attention(const Field& a, int layers, int mtp_layers, AttentionSpec& s) {
  read_compressed_shapes(a, s);
  if (auto sp = a.optional_child("sparse")) read_sparse_attention(*sp, s, s.sparse);
  read_compress_ratios(a, "compress_ratios", layers, mtp_layers, s);
}

}  // namespace moesim::io
