#include "sim/io/hf_config.h"

#include <string>
#include <string_view>

#include "sim/io/attention_io.h"

namespace moesim::io {

namespace {

// A config field whose documented meaning changes the architecture's cost in a way ModelSpec cannot
// describe. `harmless` says which values leave the architecture as moesim models it (nullptr: none).
struct UnmodelledField {
  std::string_view key;
  bool prefix;                        // every key starting with `key`
  bool (*harmless)(const json& value);
  std::string_view meaning;           // what the field does, and where transformers documents it
};

bool equals_one(const json& v) { return v.is_number() && v.get<double>() == 1; }
bool empty_list(const json& v) { return v.is_array() && v.empty(); }

constexpr UnmodelledField unmodelled_fields[] = {
    {"full_attention_interval", false, nullptr,
     "every k-th layer full attention, the others Gated DeltaNet linear attention (transformers Qwen3NextConfig)"},
    {"linear_", true, nullptr,
     "shapes of linear-attention layers (Qwen3NextConfig linear_num_key_heads..., MiniMaxConfig, Kimi Linear)"},
    {"mamba_", true, nullptr, "Mamba / Mamba-2 mixer layers (JambaConfig, NemotronHConfig, FalconH1Config, BambaConfig)"},
    {"ssm_", true, nullptr, "state-space mixer layers (NemotronHConfig ssm_state_size, FalconMambaConfig)"},
    {"hybrid_override_pattern", false, nullptr,
     "per-layer Mamba-2 / attention / MLP pattern (transformers NemotronHConfig)"},
    {"hybrid_layer_ids", false, nullptr, "shared attention blocks among Mamba layers (transformers Zamba2Config)"},
    {"attn_layer_period", false, nullptr, "attention on every k-th layer only, Mamba elsewhere (transformers JambaConfig)"},
    {"attn_layer_offset", false, nullptr, "attention on every k-th layer only, Mamba elsewhere (transformers JambaConfig)"},
    {"attn_layer_indices", false, nullptr, "attention on the listed layers only, Mamba elsewhere (transformers BambaConfig)"},
    {"index_", true, nullptr,
     "a sparse-attention indexer outside DeepSeek-V3.2 (model_type deepseek_v32), e.g. DeepSeek-V4's compressed "
     "sparse attention"},
    {"compress_ratios", false, nullptr, "DeepSeek-V4's per-layer KV compression (compressed / heavily compressed attention)"},
    {"hc_mult", false, nullptr, "DeepSeek-V4's mHC residual streams (manifold-constrained hyper-connections)"},
    {"attention_chunk_size", false, nullptr,
     "chunked local attention on some layers (transformers Llama4TextConfig)"},
    {"moe_layer_freq", false, equals_one, "MoE FFN on every k-th layer only (DeepSeek-V2/V3 configuration)"},
    {"decoder_sparse_step", false, equals_one, "MoE FFN on every k-th layer only (transformers Qwen2MoeConfig, Qwen3MoeConfig)"},
    {"interleave_moe_layer_step", false, equals_one, "MoE FFN on every k-th layer only (transformers Llama4TextConfig)"},
    {"expert_layer_period", false, equals_one, "MoE FFN on every k-th layer only (transformers JambaConfig)"},
    {"mlp_only_layers", false, empty_list, "dense MLP instead of MoE on the listed layers (transformers Qwen2MoeConfig)"},
};

// layer_types entries transformers defines (configuration_utils.ALLOWED_LAYER_TYPES) that are not a
// full or sliding softmax attention layer.
constexpr std::pair<std::string_view, std::string_view> unmodelled_layer_types[] = {
    {"linear_attention", "linear attention (Qwen3-Next Gated DeltaNet, MiniMax lightning attention)"},
    {"chunked_attention", "chunked local attention (Llama 4)"},
    {"mamba", "Mamba mixer layers"},
};

// GPT-OSS, Gemma 2: sliding_attention on even layers, full on odd (transformers GptOssConfig and
// Gemma2Config __post_init__: "sliding_attention" if bool((i + 1) % 2)). Gemma 3 and Cohere 2: the
// (i + 1)-th layer is full when i + 1 is a multiple of sliding_window_pattern (Gemma3TextConfig: 6, five
// local layers to one global; Cohere2Config: 4).
int default_sliding_period(std::string_view model_type) {
  if (model_type == "gpt_oss" || model_type == "gemma2") return 2;
  if (model_type == "gemma3" || model_type == "gemma3_text") return 6;
  if (model_type == "cohere2") return 4;
  return 0;
}

// Per-layer spans as transformers derives layer_types when the config does not list them.
std::vector<AttentionSpan> derived_spans(const Field& f, int layers, std::string_view model_type) {
  std::vector<AttentionSpan> spans(static_cast<std::size_t>(layers), AttentionSpan::sliding);
  int period = default_sliding_period(model_type);
  if (f.has("sliding_window_pattern")) period = f.positive_int("sliding_window_pattern");
  if (period > 0) {
    for (int i = 0; i < layers; ++i)
      if ((i + 1) % period == 0) spans[static_cast<std::size_t>(i)] = AttentionSpan::full;
    return spans;
  }
  if (f.has("use_sliding_window")) {
    // Qwen2Config: layer i slides when i >= max_window_layers ("the first max_window_layers layers use
    // full attention").
    const int full_layers = f.non_negative_int_or("max_window_layers", 0);
    for (int i = 0; i < std::min(full_layers, layers); ++i) spans[static_cast<std::size_t>(i)] = AttentionSpan::full;
    return spans;
  }
  // MistralConfig, MixtralConfig: sliding_window applies to every layer.
  if (model_type == "mistral" || model_type == "mixtral") return spans;
  f.fail("layer_types", "a list of per-layer attention types (model_type '" + std::string(model_type) +
                            "' sets sliding_window and moesim does not know which of its layers slide)");
}

// Model types whose transformers configuration builds layers other than softmax attention + FFN even
// when the config file leaves the fields above at their defaults (Qwen3NextConfig derives three linear
// layers in four from a default full_attention_interval of 4).
constexpr std::pair<std::string_view, std::string_view> unmodelled_model_types[] = {
    {"nemotron_h", "Mamba-2 layers"},
    {"jamba", "Mamba layers"}, {"bamba", "Mamba-2 layers"}, {"falcon_h1", "parallel Mamba-2 mixers"},
    {"zamba", "Mamba layers"}, {"zamba2", "Mamba-2 layers"}, {"mamba", "Mamba layers"}, {"mamba2", "Mamba-2 layers"},
    {"falcon_mamba", "Mamba layers"}, {"minimax", "lightning (linear) attention layers"},
    {"granitemoehybrid", "Mamba-2 layers"}, {"lfm2", "short-convolution layers"},
};

// Fields of the list above that moesim reads for one model type (read_hf_linear_mixer).
constexpr std::pair<std::string_view, std::string_view> modelled_fields[] = {
    {"qwen3_next", "full_attention_interval"}, {"qwen3_next", "linear_conv_kernel_dim"},
    {"qwen3_next", "linear_key_head_dim"},     {"qwen3_next", "linear_num_key_heads"},
    {"qwen3_next", "linear_num_value_heads"},  {"qwen3_next", "linear_value_head_dim"},
    {"deepseek_v32", "index_n_heads"},         {"deepseek_v32", "index_head_dim"},
    {"deepseek_v32", "index_topk"},
    {"deepseek_v4", "index_n_heads"},          {"deepseek_v4", "index_head_dim"},
    {"deepseek_v4", "index_topk"},             {"deepseek_v4", "compress_ratios"},
    {"deepseek_v4", "hc_mult"},
};

bool modelled_for(std::string_view model_type, std::string_view key) {
  for (const auto& [type, field] : modelled_fields)
    if (type == model_type && field == key) return true;
  return false;
}

// Qwen3-Next's Gated DeltaNet layers (transformers Qwen3NextGatedDeltaNet) and gated attention
// (Qwen3NextAttention's q_proj emits the output gate). chunk 64: fla chunk_gated_delta_rule's chunk
// (BT = 64), the training kernel transformers calls.
void read_hf_linear_mixer(const Field& f, AttentionSpec& a) {
  if (f.string_or("model_type", "") != "qwen3_next") return;
  a.output_gate = true;
  LinearAttentionSpec& s = a.linear;
  s.kind = LinearMixer::gated_deltanet;
  s.heads = f.positive_int("linear_num_value_heads");
  s.key_heads = f.positive_int("linear_num_key_heads");
  if (s.heads % s.key_heads != 0)
    f.fail("linear_num_key_heads", "a divisor of linear_num_value_heads (" + std::to_string(s.heads) + ")");
  s.key_head_dim = f.positive_int("linear_key_head_dim");
  s.value_head_dim = f.positive_int("linear_value_head_dim");
  s.conv_kernel = f.positive_int("linear_conv_kernel_dim");
  s.chunk = 64;
}

// DeepSeek-V3.2's sparse attention (AttentionSpec::sparse): transformers DeepseekV32Config (and the
// DeepSeek-V3.2-Exp config.json) index_n_heads, index_head_dim, index_topk on every MLA layer.
void read_hf_sparse_attention(const Field& f, AttentionSpec& a) {
  if (f.string_or("model_type", "") != "deepseek_v32") return;
  if (a.type != AttentionType::mla || a.q_lora_rank == 0)
    f.fail("q_lora_rank", "a query latent rank (DSA's indexer reads MLA's query latent)");
  a.sparse.index_heads = f.positive_int("index_n_heads");
  a.sparse.index_head_dim = f.positive_int("index_head_dim");
  a.sparse.topk = f.positive_int("index_topk");
}

}  // namespace

void check_hf_fields_modelled(const Field& f) {
  const std::string model_type = f.string_or("model_type", "");
  for (const auto& [key, value] : f.raw().items()) {
    if (value.is_null() || modelled_for(model_type, key)) continue;
    for (const UnmodelledField& u : unmodelled_fields) {
      const bool matches = u.prefix ? std::string_view(key).starts_with(u.key) : key == u.key;
      if (!matches || (u.harmless && u.harmless(value))) continue;
      f.fail(key, std::string(u.harmless ? "its default (every layer alike) or absent" : "absent") +
                      ": moesim does not model " + std::string(u.meaning));
    }
  }
  for (const auto& [type, layers] : unmodelled_model_types)
    if (model_type == type) f.fail("model_type", "a model type without " + std::string(layers) + " (moesim does not model them)");
}

std::vector<AttentionSpan> shortest_period(const std::vector<AttentionSpan>& spans) {
  for (std::size_t period = 1; period < spans.size(); ++period) {
    bool repeats = true;
    for (std::size_t i = period; i < spans.size() && repeats; ++i) repeats = spans[i] == spans[i % period];
    if (repeats) return {spans.begin(), spans.begin() + static_cast<std::ptrdiff_t>(period)};
  }
  return spans;
}

void read_hf_attention_spans(const Field& f, int layers, AttentionSpec& a) {
  const std::string model_type = f.string_or("model_type", "");
  read_hf_linear_mixer(f, a);
  read_hf_sparse_attention(f, a);
  // GptOssAttention adds a learned sink logit per head to every softmax (AttentionSpec::sinks).
  a.sinks = model_type == "gpt_oss";
  int window = f.has("sliding_window") ? f.positive_int("sliding_window") : 0;
  // Qwen2Config (and the Qwen MoE / Qwen3 configs after it): "self.sliding_window = self.sliding_window
  // if self.use_sliding_window else None"; use_sliding_window defaults to false.
  if ((f.has("use_sliding_window") || f.has("max_window_layers")) && !f.boolean_or("use_sliding_window", false))
    window = 0;
  std::vector<AttentionSpan> spans;
  if (f.has("layer_types")) {
    const json& types = f.raw().at("layer_types");
    if (!types.is_array() || types.size() != static_cast<std::size_t>(layers))
      f.fail("layer_types", "a list of num_hidden_layers (" + std::to_string(layers) + ") attention types");
    for (const json& t : types) {
      const std::string type = t.is_string() ? t.get<std::string>() : t.dump();
      if (type == "linear_attention" && a.linear.heads > 0) {
        spans.push_back(AttentionSpan::linear);
      } else if (type == "full_attention" || (type == "sliding_attention" && window == 0)) {
        spans.push_back(AttentionSpan::full);  // a sliding layer without a window attends fully (HF mask)
      } else if (type == "sliding_attention") {
        spans.push_back(AttentionSpan::sliding);
      } else {
        for (const auto& [name, meaning] : unmodelled_layer_types)
          if (type == name)
            f.fail("layer_types", "full_attention or sliding_attention entries: moesim does not model " + std::string(meaning));
        f.fail("layer_types", "full_attention or sliding_attention entries, not '" + type + "'");
      }
    }
  } else if (a.linear.heads > 0) {
    // Qwen3NextConfig: "linear_attention" if bool((i + 1) % full_attention_interval) else
    // "full_attention"; full_attention_interval defaults to 4.
    const int interval = f.positive_int_or("full_attention_interval", 4);
    for (int i = 0; i < layers; ++i) spans.push_back((i + 1) % interval ? AttentionSpan::linear : AttentionSpan::full);
  } else if (window > 0) {
    spans = derived_spans(f, layers, model_type);
  }
  a.layer_pattern = shortest_period(spans);
  bool any_sliding = false, any_linear = false;
  for (AttentionSpan s : a.layer_pattern) {
    any_sliding = any_sliding || s == AttentionSpan::sliding;
    any_linear = any_linear || s == AttentionSpan::linear;
  }
  a.sliding_window = any_sliding ? window : 0;
  if (!any_linear) a.linear = {};
  if (!any_sliding && !any_linear) a.layer_pattern.clear();
}

void read_hf_deepseek_v4(const Field& f, ModelSpec& m) {
  AttentionSpec& a = m.attention;
  if (f.positive_int_or("num_key_value_heads", 1) != 1)
    f.fail("num_key_value_heads", "1 (DeepSeek-V4 attention has one key-value entry shared by all heads)");
  read_compressed_shapes(f, a);
  a.sparse.index_heads = f.positive_int("index_n_heads");
  a.sparse.index_head_dim = f.positive_int("index_head_dim");
  a.sparse.topk = f.positive_int("index_topk");
  m.mtp_layers = f.non_negative_int_or("num_nextn_predict_layers", 0);
  read_compress_ratios(f, "compress_ratios", m.layers, m.mtp_layers, a);
  m.residual_streams = f.positive_int_or("hc_mult", 1);
  if (m.residual_streams > 1) m.sinkhorn_iterations = f.positive_int("hc_sinkhorn_iters");
}

}  // namespace moesim::io
