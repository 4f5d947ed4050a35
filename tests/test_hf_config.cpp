// sim/io/hf_config: HuggingFace configs with sliding-window attention (and Qwen3-Next's linear-attention
// layers, tests/test_linear_mixer.cpp) read as transformers derives their layer types, and configs whose architecture moesim does not model (linear attention, Mamba, sparse
// attention indexers on models other than DeepSeek-V3.2, MoE at intervals) fail with one line naming the
// file and the field.
//
// Fixtures in tests/data/hf: gpt-oss-120b-config.json is openai/gpt-oss-120b's config.json;
// qwen3-next-80b-a3b-config.json is Qwen/Qwen3-Next-80B-A3B-Instruct's; deepseek-v32-config.json is the
// DeepSeek-V3 fixture with DeepSeek-V3.2-Exp's model_type and index_* keys (read in tests/test_sparse_attention.cpp); nemotron-h-8b-config.json,
// gemma3-27b-text-config.json and mistral-7b-v0.1-config.json are abridged to the keys that matter.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "costmodels/params.h"
#include "sim/io/hf_config.h"
#include "sim/io/specs_io.h"
#include "tests/support.h"

using namespace moesim;
using test::check_names;
using test::input_error;

namespace {

std::string hf(const std::string& name) { return std::string(MOESIM_SOURCE_DIR) + "/tests/data/hf/" + name; }

constexpr AttentionSpan S = AttentionSpan::sliding, F = AttentionSpan::full;

}  // namespace

TEST_CASE("hf config: GPT-OSS-120B reads as the built-in model, windows and sinks", "[io][hf][sliding]") {
  const ModelSpec m = io::load_model(hf("gpt-oss-120b-config.json"));
  const ModelSpec builtin = io::load_model("gpt-oss-120b");
  CHECK(m.layers == 36);
  CHECK(m.attention.sliding_window == 128);
  CHECK(m.attention.layer_pattern == std::vector<AttentionSpan>{S, F});  // layer_types, shortest period
  CHECK(m.attention.sinks);
  CHECK(m.attention.layer_pattern == builtin.attention.layer_pattern);
  CHECK(m.attention.head_dim == 64);
  REQUIRE(m.moe);
  CHECK(m.moe->experts == 128);
  CHECK(m.moe->top_k == 4);
  CHECK(m.moe->expert_intermediate == 2880);
  CHECK(count_params(m).total() == Approx(count_params(builtin).total()).epsilon(1e-12));
  CHECK(count_params(m).total() == Approx(116.83e9).epsilon(0.005));  // model card, arXiv 2508.10925 Table 1
}

TEST_CASE("hf config: sliding layers as transformers derives them", "[io][hf][sliding]") {
  // Gemma3TextConfig: sliding_window_pattern 6, five local layers to one global.
  const ModelSpec gemma = io::load_model(hf("gemma3-27b-text-config.json"));
  CHECK(gemma.attention.sliding_window == 1024);
  CHECK(gemma.attention.layer_pattern == std::vector<AttentionSpan>{S, S, S, S, S, F});
  CHECK(gemma.attention.span_of_layer(5) == F);
  CHECK(gemma.attention.span_of_layer(61) == S);  // 62 layers: the last two slide
  CHECK_FALSE(gemma.attention.sinks);
  // MistralConfig: sliding_window on every layer.
  const ModelSpec mistral = io::load_model(hf("mistral-7b-v0.1-config.json"));
  CHECK(mistral.attention.sliding_window == 4096);
  CHECK(mistral.attention.layer_pattern == std::vector<AttentionSpan>{S});
  // Qwen2Config: the window applies only with use_sliding_window, from layer max_window_layers on.
  io::json qwen = io::read_json_file(hf("qwen2-57b-a14b-config.json"));
  CHECK(io::parse_hf_config(qwen, "qwen2/config.json").attention.sliding_window == 0);  // use_sliding_window false
  qwen["use_sliding_window"] = true;
  qwen["max_window_layers"] = 21;
  const ModelSpec q = io::parse_hf_config(qwen, "qwen2/config.json");
  CHECK(q.attention.sliding_window == 65536);
  CHECK(q.attention.span_of_layer(20) == F);
  CHECK(q.attention.span_of_layer(21) == S);
  CHECK(q.attention.layer_pattern.size() == static_cast<std::size_t>(q.layers));
  // Mixtral's "sliding_window": null: no windows.
  CHECK(io::load_model(hf("mixtral-8x7b-config.json")).attention.sliding_window == 0);
  // A sliding window on a model type whose layer rule moesim does not know: which layers slide is asked for.
  io::json llama = io::read_json_file(hf("llama3-8b-config.json"));
  llama["sliding_window"] = 4096;
  check_names(input_error([&] { io::parse_hf_config(llama, "llama/config.json"); }), "llama/config.json", "layer_types");
}

TEST_CASE("hf config: architectures moesim does not model fail naming the field", "[io][hf][errors]") {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"nemotron-h-8b-config.json", "hybrid_override_pattern"},        // Mamba-2 hybrid
  };
  for (const auto& c : cases) {
    const std::string file = hf(c.first);
    const std::string& field = c.second;
    CAPTURE(file);
    const std::string msg = input_error([&] { io::load_model(file); });
    check_names(msg, file, field);
    CHECK_THAT(msg, Catch::Contains("moesim does not model"));
  }
}

TEST_CASE("hf config: each unmodelled field alone is refused, its harmless default accepted", "[io][hf][errors]") {
  const io::json base = io::read_json_file(hf("qwen2-57b-a14b-config.json"));
  const std::string file = "hybrid/config.json";
  const std::vector<std::pair<std::string, io::json>> refused{
      {"full_attention_interval", 4},
      {"linear_num_value_heads", 32},
      {"mamba_d_state", 16},
      {"ssm_state_size", 128},
      {"index_topk", 2048},
      {"compress_ratios", io::json::array({0, 4, 128})},
      {"hc_mult", 4},
      {"attention_chunk_size", 8192},
      {"attn_layer_period", 8},
      {"decoder_sparse_step", 2},
      {"moe_layer_freq", 2},
      {"mlp_only_layers", io::json::array({0, 1})},
      {"layer_types", std::vector<std::string>(28, "linear_attention")},
      {"model_type", "nemotron_h"},
  };
  for (const auto& [key, value] : refused) {
    CAPTURE(key);
    io::json j = base;
    j[key] = value;
    check_names(input_error([&] { io::parse_hf_config(j, file); }), file, key);
  }
  {
    // A deepseek_v4 model type reads the hybrid attention's shapes, and names the first one that does
    // not fit it (Qwen2-57B's 4 key-value heads; DeepSeek-V4 has one).
    io::json j = base;
    j["model_type"] = "deepseek_v4";
    check_names(input_error([&] { io::parse_hf_config(j, file); }), file, "num_key_value_heads");
  }
  {
    // A qwen3_next model type reads the Gated DeltaNet shapes, and names the first one missing.
    io::json j = base;
    j["model_type"] = "qwen3_next";
    check_names(input_error([&] { io::parse_hf_config(j, file); }), file, "linear_num_value_heads");
  }
  // Defaults that leave every layer alike, and fields that do not change the cost, pass.
  io::json j = base;
  j["decoder_sparse_step"] = 1;
  j["mlp_only_layers"] = io::json::array();
  j["moe_layer_freq"] = 1;
  j["attn_logit_softcapping"] = 50.0;  // tanh on the scores, inside the fused kernel
  j["final_logit_softcapping"] = 30.0;
  j["linear_conv_kernel_dim"] = nullptr;  // null: absent
  CHECK(io::parse_hf_config(j, file).layers == 28);
  // layer_types of the wrong length.
  j["layer_types"] = std::vector<std::string>(3, "full_attention");
  check_names(input_error([&] { io::parse_hf_config(j, file); }), file, "layer_types");
}

TEST_CASE("model file: sliding_window and layer_pattern", "[io][sliding]") {
  io::json j = io::read_json_file(std::string(MOESIM_SOURCE_DIR) + "/models/gpt-oss-120b.json");
  const ModelSpec m = io::parse_model(j, "gpt.json");
  CHECK(m.attention.sliding_window == 128);
  CHECK(m.attention.layer_pattern == std::vector<AttentionSpan>{S, F});
  CHECK(m.attention.sinks);
  {
    io::json k = j;
    k["attention"].erase("layer_pattern");  // a window without a pattern: every layer slides
    const ModelSpec all = io::parse_model(k, "gpt.json");
    CHECK(all.attention.span_of_layer(1) == S);
  }
  {
    io::json k = j;
    k["attention"]["layer_pattern"] = {"sliding", "chunked"};
    check_names(input_error([&] { io::parse_model(k, "gpt.json"); }), "gpt.json", "attention.layer_pattern");
  }
  {
    io::json k = j;
    k["attention"].erase("sliding_window");
    check_names(input_error([&] { io::parse_model(k, "gpt.json"); }), "gpt.json", "attention.sliding_window");
  }
  {
    io::json k = j;
    k["attention"]["layer_pattern"] = std::vector<std::string>(37, "full");  // longer than the 36 layers
    check_names(input_error([&] { io::parse_model(k, "gpt.json"); }), "gpt.json", "attention.layer_pattern");
  }
  // Every existing built-in model still reads, without windows (GPT-OSS's and DeepSeek-V4's have them).
  for (const std::string& name : io::builtin_models()) {
    CAPTURE(name);
    const ModelSpec b = io::load_model(name);
    CHECK((b.attention.sliding_window > 0) == (name == "gpt-oss-120b" || name.starts_with("deepseek-v4")));
  }
}

TEST_CASE("hf config: shortest period of per-layer spans", "[io][sliding]") {
  CHECK(io::shortest_period({S, F, S, F, S, F}) == std::vector<AttentionSpan>{S, F});
  CHECK(io::shortest_period({S, S, F, S, S}) == std::vector<AttentionSpan>{S, S, F});  // need not divide
  CHECK(io::shortest_period({F, F, S, S}) == std::vector<AttentionSpan>{F, F, S, S});
  CHECK(io::shortest_period({}).empty());
}
