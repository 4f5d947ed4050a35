// sim/io: HuggingFace config.json fixtures parse into the right ModelSpec fields, and every kind of bad
// input raises moesim::InputError whose one-line message names the file and the field.
#include <catch2/catch.hpp>
#include <string>
#include <tuple>
#include <typeinfo>
#include <vector>

#include "costmodels/layout.h"
#include "costmodels/params.h"
#include "sim/io/input_error.h"
#include "sim/io/specs_io.h"
#include "tests/support.h"

using namespace moesim;
using test::check_names;
using test::input_error;

namespace {

std::string data(const std::string& name) { return std::string(MOESIM_SOURCE_DIR) + "/tests/data/" + name; }

}  // namespace

TEST_CASE("io: HF config DeepSeek-V3", "[io][hf]") {
  const ModelSpec m = io::load_model(data("hf/deepseek-v3-config.json"));
  CHECK(m.layers == 61);
  CHECK(m.hidden == 7168);
  CHECK(m.vocab == 129280);
  CHECK(m.attention.type == AttentionType::mla);
  CHECK(m.attention.heads == 128);
  CHECK(m.attention.q_lora_rank == 1536);
  CHECK(m.attention.kv_lora_rank == 512);
  CHECK(m.attention.qk_nope_head_dim == 128);
  CHECK(m.attention.qk_rope_head_dim == 64);
  CHECK(m.attention.v_head_dim == 128);
  CHECK(m.ffn.intermediate == 18432);
  CHECK(m.ffn.activation == Activation::swiglu);
  REQUIRE(m.moe);
  CHECK(m.moe->experts == 256);
  CHECK(m.moe->top_k == 8);
  CHECK(m.moe->expert_intermediate == 2048);
  CHECK(m.moe->shared_experts == 1);
  CHECK(m.moe->shared_expert_intermediate == 2048);
  CHECK(m.moe->first_dense_layers == 3);
  CHECK(m.moe->router_groups == 8);  // n_group, topk_group: node-limited routing
  CHECK(m.moe->router_group_top_k == 4);
  CHECK(m.mtp_layers == 1);
  CHECK_FALSE(m.tie_embeddings);
  CHECK(m.seq_len == 0);  // not in config.json
  // Same parameters as the built-in model.
  CHECK(count_params(m).total() == Approx(count_params(io::load_model("deepseek-v3-671b")).total()).epsilon(1e-12));
}

TEST_CASE("io: HF config Pangu Ultra MoE (renamed keys)", "[io][hf]") {
  const ModelSpec m = io::load_model(data("hf/pangu-ultra-moe-config.json"));
  CHECK(m.layers == 61);
  CHECK(m.hidden == 7680);
  CHECK(m.vocab == 153600);
  CHECK(m.attention.type == AttentionType::mla);
  CHECK(m.attention.heads == 128);
  CHECK(m.attention.q_lora_rank == 1536);     // attention_q_lora_dim
  CHECK(m.attention.kv_lora_rank == 512);     // attention_kv_lora_dim
  CHECK(m.attention.qk_nope_head_dim == 128); // attention_qk_dim
  CHECK(m.attention.qk_rope_head_dim == 64);  // attention_qk_rope_dim
  CHECK(m.attention.v_head_dim == 128);       // attention_v_dim
  CHECK(m.ffn.intermediate == 18432);
  REQUIRE(m.moe);
  CHECK(m.moe->experts == 256);               // num_routed_experts
  CHECK(m.moe->top_k == 8);
  CHECK(m.moe->expert_intermediate == 2048);
  CHECK(m.moe->shared_experts == 1);          // num_shared_experts
  CHECK(m.moe->first_dense_layers == 3);      // num_dense_layers
  CHECK(m.mtp_layers == 1);                   // num_mtp_layers
  CHECK(count_params(m).total() == Approx(count_params(io::load_model("pangu-ultra-moe-718b")).total()).epsilon(1e-12));
}

TEST_CASE("io: HF config Mixtral 8x7B", "[io][hf]") {
  const ModelSpec m = io::load_model(data("hf/mixtral-8x7b-config.json"));
  CHECK(m.layers == 32);
  CHECK(m.hidden == 4096);
  CHECK(m.vocab == 32000);
  CHECK(m.attention.type == AttentionType::gqa);
  CHECK(m.attention.heads == 32);
  CHECK(m.attention.kv_heads == 8);
  CHECK(m.attention.head_dim == 128);
  REQUIRE(m.moe);
  CHECK(m.moe->experts == 8);                  // num_local_experts
  CHECK(m.moe->top_k == 2);
  CHECK(m.moe->expert_intermediate == 14336);  // experts are the FFN: intermediate_size
  CHECK(m.moe->shared_experts == 0);
  CHECK(m.moe->first_dense_layers == 0);
  CHECK(m.mtp_layers == 0);
  CHECK(count_params(m).total() == Approx(count_params(io::load_model("mixtral-8x7b")).total()).epsilon(1e-12));
}

TEST_CASE("io: HF config Qwen2-57B-A14B (shared_expert_intermediate_size)", "[io][hf]") {
  const ModelSpec m = io::load_model(data("hf/qwen2-57b-a14b-config.json"));
  CHECK(m.layers == 28);
  CHECK(m.hidden == 3584);
  CHECK(m.vocab == 151936);
  CHECK(m.attention.type == AttentionType::gqa);
  CHECK(m.attention.heads == 28);
  CHECK(m.attention.kv_heads == 4);
  CHECK(m.attention.head_dim == 128);
  REQUIRE(m.moe);
  CHECK(m.moe->experts == 64);  // num_experts
  CHECK(m.moe->top_k == 8);
  CHECK(m.moe->expert_intermediate == 2560);
  CHECK(m.moe->shared_experts == 1);
  CHECK(m.moe->shared_expert_intermediate == 20480);
  CHECK(m.moe->first_dense_layers == 0);
  CHECK(count_params(m).total() == Approx(count_params(io::load_model("qwen2-57b-a14b")).total()).epsilon(1e-12));
}

TEST_CASE("io: HF config Llama 3 8B (dense)", "[io][hf]") {
  const ModelSpec m = io::load_model(data("hf/llama3-8b-config.json"));
  CHECK(m.layers == 32);
  CHECK(m.hidden == 4096);
  CHECK(m.vocab == 128256);
  CHECK(m.attention.type == AttentionType::gqa);
  CHECK(m.attention.heads == 32);
  CHECK(m.attention.kv_heads == 8);
  CHECK(m.attention.head_dim == 128);
  CHECK(m.ffn.intermediate == 14336);
  CHECK(m.ffn.activation == Activation::swiglu);
  CHECK_FALSE(m.moe);
  CHECK(m.mtp_layers == 0);
  CHECK(m.name == "llama");
  CHECK(count_params(m).total() == Approx(count_params(io::load_model("llama3-8b")).total()).epsilon(1e-12));
}

TEST_CASE("io: valid fixtures load", "[io]") {
  const ModelSpec m = io::load_model(data("model-valid.json"));
  CHECK(m.name == "tiny-moe");
  REQUIRE(m.moe);
  CHECK(m.moe->first_dense_layers == 1);
  LayoutSpec l = io::load_layout(data("layout-valid.json"));
  CHECK(l.recompute == Recompute::selective);
  CHECK(l.sequence_parallel);  // defaults to tp > 1
  const auto err = complete_and_check_layout(m, l);
  CHECK_FALSE(err);
  CHECK(l.dp == 4);
  const HardwareProfile hw = io::load_profile(data("profile-valid.json"));
  CHECK(hw.tiers.size() == 2);
  CHECK(hw.device.matrix.peak_fraction == 0.8);
  CHECK(hw.matrix_peak(Precision::fp8) == 2e15);
}

TEST_CASE("io: every built-in model and profile loads", "[io]") {
  CHECK(io::builtin_models().size() == 19);  // models/*.json, deepseek-v3.2, deepseek-v4-*, kimi-k2, gpt-oss-120b and qwen3-next-80b-a3b included
  CHECK(io::builtin_profiles().size() == 13);  // hw_profiles/*.json, b300 included
  for (const auto& n : io::builtin_models()) CHECK_NOTHROW(io::load_model(n));
  for (const auto& n : io::builtin_profiles()) CHECK_NOTHROW(io::load_profile(n));
}

TEST_CASE("io: malformed model files name file and field", "[io][errors]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"model-missing-layers.json", "layers"},
      {"model-hidden-string.json", "hidden"},
      {"model-hidden-nan-string.json", "hidden"},
      {"model-infinite.json", "hidden"},
      {"model-negative-vocab.json", "vocab"},
      {"model-zero-heads.json", "attention.heads"},
      {"model-fractional-layers.json", "layers"},
      {"model-topk-exceeds-experts.json", "moe.top_k"},
      {"model-bad-activation.json", "ffn.activation"},
      {"model-missing-attention.json", "attention"},
      {"model-kv-heads-exceed.json", "attention.kv_heads"},
      // Not JSON at all: there is no field, the message names the file and says so.
      {"model-nan-literal.json", "invalid JSON"},
      {"model-unparsable.json", "invalid JSON"},
  };
  for (const auto& c : cases) {
    const auto& file = c.first;  // not a structured binding: clang 14 cannot capture those
    const auto& field = c.second;
    CAPTURE(file);
    check_names(input_error([&] { io::load_model(data(file)); }), file, field);
  }
}

TEST_CASE("io: malformed HF configs name file and field", "[io][errors]") {
  io::json j = io::read_json_file(data("hf/deepseek-v3-config.json"));
  const std::string file = "hf-broken/config.json";
  {
    io::json k = j;
    k["num_experts_per_tok"] = 300;  // top_k > experts
    const std::string msg = input_error([&] { io::parse_hf_config(k, file); });
    check_names(msg, file, "num_experts_per_tok");
  }
  {
    io::json k = j;
    k["hidden_size"] = -7168;
    check_names(input_error([&] { io::parse_hf_config(k, file); }), file, "hidden_size");
  }
  {
    io::json k = j;
    k["num_attention_heads"] = "128";
    check_names(input_error([&] { io::parse_hf_config(k, file); }), file, "num_attention_heads");
  }
  {
    io::json k = io::read_json_file(data("hf/llama3-8b-config.json"));
    k.erase("intermediate_size");
    check_names(input_error([&] { io::parse_hf_config(k, file); }), file, "intermediate_size");
  }
  {
    io::json k = io::read_json_file(data("hf/mixtral-8x7b-config.json"));
    k["num_local_experts"] = 0;
    check_names(input_error([&] { io::parse_hf_config(k, file); }), file, "num_local_experts");
  }
  for (const auto& [key, value, expected] : std::vector<std::tuple<std::string, int, std::string>>{
           {"n_group", 7, "divisor of the expert count (256)"},
           {"topk_group", 9, "at most n_group (8)"},
           {"topk_group", 0, "whole number >= 1"}}) {
    io::json k = j;
    k[key] = value;
    const std::string msg = input_error([&] { io::parse_hf_config(k, file); });
    check_names(msg, file, key);
    CHECK_THAT(msg, Catch::Contains(expected));
  }
  {
    // 128 groups of 2 experts with 1 chosen cannot hold top_k 8.
    io::json k = j;
    k["n_group"] = 128;
    k["topk_group"] = 1;
    const std::string msg = input_error([&] { io::parse_hf_config(k, file); });
    check_names(msg, file, "topk_group");
    CHECK_THAT(msg, Catch::Contains("top_k = 8"));
  }
}

TEST_CASE("io: a model file's group-limited routing is checked against its experts", "[io][errors]") {
  io::json j = io::read_json_file(std::string(MOESIM_SOURCE_DIR) + "/models/deepseek-v3-671b.json");
  CHECK(io::parse_model(j, "deepseek.json").moe->router_group_top_k == 4);
  j["moe"]["router_group_top_k"] = 9;
  const std::string msg = input_error([&] { io::parse_model(j, "deepseek.json"); });
  check_names(msg, "deepseek.json", "moe.router_group_top_k");
  CHECK_THAT(msg, Catch::Contains("at most router_groups (8)"));
  j["moe"].erase("router_group_top_k");
  CHECK(io::parse_model(j, "deepseek.json").moe->router_group_top_k == 8);  // every group: no limit
}

TEST_CASE("io: malformed layout files name file and field", "[io][errors]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"layout-tp-string.json", "tp"},
      {"layout-missing-global-batch.json", "global_batch"},
      {"layout-negative-micro-batch.json", "micro_batch"},
      {"layout-bad-recompute.json", "recompute"},
      {"layout-bad-schedule.json", "schedule"},
      {"layout-overlap-not-bool.json", "overlap.ep_all_to_all"},
      {"layout-pipeline-layers-bad.json", "pipeline_layers"},
      {"layout-fp8-dispatch-bf16.json", "fp8_dispatch"},
      {"layout-delay-wgrad-without-ep-overlap.json", "overlap.delay_wgrad"},
      {"layout-einsum-without-capacity.json", "moe_capacity_factor"},
      {"layout-pad-without-capacity.json", "moe_pad_to_capacity"},
      {"layout-negative-capacity.json", "moe_capacity_factor"},
      {"layout-flex-hierarchical.json", "ep_all_to_all"},
      {"layout-dispatch-sms-without-flex.json", "ep_dispatch_sms"},
      {"layout-dispatch-sms-zero.json", "ep_dispatch_sms"},
      {"layout-softmax-with-flash.json", "softmax_in_fp32"},
  };
  for (const auto& c : cases) {
    const auto& file = c.first;  // not a structured binding: clang 14 cannot capture those
    const auto& field = c.second;
    CAPTURE(file);
    check_names(input_error([&] { io::load_layout(data(file)); }), file, field);
  }
}

TEST_CASE("io: malformed profiles name file and field", "[io][errors]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"profile-missing-hbm-bytes.json", "device.hbm_bytes"},
      {"profile-peak-fraction-above-one.json", "device.matrix_efficiency.peak_fraction"},
      {"profile-all-to-all-efficiency-above-one.json", "tiers[1].all_to_all_efficiency"},
      {"profile-tier-size-not-nested.json", "tiers[1].size"},
      {"profile-zero-bandwidth.json", "tiers[0].bandwidth"},
      {"profile-no-tiers.json", "tiers"},
      {"profile-bf16-string.json", "device.matrix_flops.bf16"},
  };
  for (const auto& c : cases) {
    const auto& file = c.first;  // not a structured binding: clang 14 cannot capture those
    const auto& field = c.second;
    CAPTURE(file);
    check_names(input_error([&] { io::load_profile(data(file)); }), file, field);
  }
}

TEST_CASE("io: unknown names and missing files", "[io][errors]") {
  check_names(input_error([] { io::load_model("no-such-model"); }), "no-such-model", "deepseek-v3-671b");
  check_names(input_error([] { io::load_profile("no-such-gpu"); }), "no-such-gpu", "ascend-910b2");
  check_names(input_error([] { io::load_model(data("does-not-exist.json")); }), "does-not-exist.json", "cannot open");
  check_names(input_error([] { io::load_layout(data("does-not-exist.json")); }), "does-not-exist.json", "cannot open");
  // A JSON array where an object belongs.
  check_names(input_error([] { io::parse_layout(io::json::array(), "array.json"); }), "array.json", "top level");
  check_names(input_error([] { io::parse_model(io::json::array({1, 2}), "array.json"); }), "array.json", "top level");
}

TEST_CASE("io: layout rules name the product that fails", "[io][layout]") {
  const ModelSpec m = io::load_model(data("model-valid.json"));  // 16 heads, 8 experts, 4 layers
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"layout-heads-not-divisible-by-tp.json", {"heads", "tp"}},
      {"layout-experts-not-divisible-by-ep.json", {"experts", "ep"}},
      {"layout-devices-not-product.json", {"devices", "tp*cp*pp"}},
      {"layout-global-batch-not-multiple.json", {"global_batch", "dp*micro_batch"}},
      {"layout-too-many-stages.json", {"pp*vpp", "layers"}},
  };
  for (const auto& c : cases) {
    const auto& file = c.first;  // not a structured binding: clang 14 cannot capture those
    const auto& words = c.second;
    CAPTURE(file);
    LayoutSpec l = io::load_layout(data(file));
    const auto err = complete_and_check_layout(m, l);
    REQUIRE(err);
    INFO("error: " << *err);
    for (const auto& w : words) CHECK(err->find(w) != std::string::npos);
  }
  // An explicit dp that disagrees with the devices.
  LayoutSpec l = io::load_layout(data("layout-valid.json"));
  l.dp = 3;
  const auto err = complete_and_check_layout(m, l);
  REQUIRE(err);
  CHECK(err->find("tp*cp*dp*pp") != std::string::npos);
  // Expert folding: etp*ep*pp must divide devices.
  LayoutSpec e = io::load_layout(data("layout-valid.json"));
  e.ep = 8;
  e.etp = 2;
  e.pp = 2;  // 8*2*2 = 32 > 16 devices
  const auto err2 = complete_and_check_layout(m, e);
  REQUIRE(err2);
  CHECK(err2->find("etp*ep*pp") != std::string::npos);
  // pipeline_layers must sum to the layers.
  LayoutSpec p = io::load_layout(data("layout-valid.json"));
  p.pipeline_layers = {1, 2};
  const auto err3 = complete_and_check_layout(m, p);
  REQUIRE(err3);
  CHECK(err3->find("pipeline_layers") != std::string::npos);
  // More virtual stages than layers only with an explicit split whose empty stages are the first and last
  // (Megatron's account_for_embedding/loss_in_pipeline_split: Llama 3.1 405B over PP16 x VP8 = 128 stages).
  {
    const ModelSpec llama = io::load_model("llama3-405b");
    LayoutSpec l = test::make_layout(256, 4, 16, 1, 1536, 8192);
    l.vpp = 8;
    l.schedule = ScheduleKind::interleaved;
    CHECK(complete_and_check_layout(llama, l));  // even split: 128 stages > 126 layers
    l.pipeline_layers.assign(128, 1);
    l.pipeline_layers.front() = l.pipeline_layers.back() = 0;
    CHECK_FALSE(complete_and_check_layout(llama, l));
    std::swap(l.pipeline_layers[0], l.pipeline_layers[5]);
    const auto interior = complete_and_check_layout(llama, l);
    REQUIRE(interior);
    CHECK(interior->find("pipeline_layers[5] is 0") != std::string::npos);
  }
}
