// costmodels/linear_mixer and the linear layers of hybrid stacks: each mixer's core FLOPs per token
// equal its paper's chunked-algorithm count, Qwen3-Next (three Gated DeltaNet layers to one gated
// attention layer) reads the same from its model file and its HF config.json, TP splits heads, CP
// passes states instead of ring-exchanging K and V, and at 128K the hybrid costs a fraction of full
// attention.
#include <catch2/catch.hpp>

#include "costmodels/graph.h"
#include "costmodels/linear_mixer.h"
#include "costmodels/params.h"
#include "sim/io/specs_io.h"
#include "tests/support.h"

using namespace moesim;

namespace {

const graph::Op* find_op(const graph::LayerGraph& g, std::string_view name) {
  for (const graph::Op& op : g.forward)
    if (name == op.name) return &op;
  return nullptr;
}

constexpr AttentionSpan L = AttentionSpan::linear, F = AttentionSpan::full;

// Every layer full attention: the same model without its linear layers.
ModelSpec all_full(ModelSpec m) {
  m.attention.layer_pattern.clear();
  m.attention.linear = {};
  return m;
}

graph::LayerGraph linear_layer(const ModelSpec& m, double seq, int tp = 1, int cp = 1) {
  return test::layer_graph(m, graph::LayerKind::dense, AttentionSpan::linear, seq, tp, cp);
}

}  // namespace

TEST_CASE("linear mixer: Qwen3-Next's Gated DeltaNet core FLOPs per token follow the chunkwise WY form",
          "[linear]") {
  const ModelSpec m = io::load_model("qwen3-next-80b-a3b");
  REQUIRE(m.attention.layer_pattern == std::vector<AttentionSpan>{L, L, L, F});
  // Gated DeltaNet (arXiv 2412.06464 §3.3, chunkwise form of DeltaNet arXiv 2406.06484 §3.3), per value
  // head and token with chunk C = 64, dk = dv = 128: 6 dk dv + C (6 dk + 4 dv) + 2 C^2 / 3.
  const double C = 64, dk = 128, dv = 128;
  const double per_head = 6 * dk * dv + C * (6 * dk + 4 * dv) + 2 * C * C / 3;
  CHECK(graph::linear_core_flops_per_token(m.attention.linear, 32, 16) == Approx(32 * per_head).epsilon(1e-12));
  // Whole model at 4K: 36 linear layers plus 12 full layers whose core counts 2 x s x heads x
  // (dqk + dv) per token (QK^T and AV; PaLM App. B, not halved).
  const double s = 4096;
  const graph::FlopsPerToken f = graph::model_flops_per_token(m, static_cast<int>(s));
  CHECK(f.attention_core == Approx(36 * 32 * per_head + 12 * 2 * s * 16 * (256 + 256)).epsilon(1e-9));
  // The linear core is the same per token at any length; the full core grows with s.
  const graph::LayerGraph short_seq = linear_layer(m, 4096), long_seq = linear_layer(m, 131072);
  CHECK(find_op(long_seq, "linear_core")->flop_count / 131072 ==
        Approx(find_op(short_seq, "linear_core")->flop_count / 4096).epsilon(1e-12));
  CHECK(find_op(long_seq, "attention_core") == nullptr);
}

TEST_CASE("linear mixer: lightning attention and Mamba-2 SSD FLOPs per token", "[linear]") {
  // Lightning Attention-2 (arXiv 2401.04658 Algorithm 1), MiniMax-01 shapes (arXiv 2501.08313: 64 heads
  // of 128, block 256): per head 4 B d + 4 d^2.
  LinearAttentionSpec lightning{.kind = LinearMixer::lightning, .heads = 64, .key_heads = 64, .key_head_dim = 128,
                                .value_head_dim = 128, .conv_kernel = 0, .chunk = 256};
  CHECK(graph::linear_core_flops_per_token(lightning, 64, 64) ==
        Approx(64 * (4.0 * 256 * 128 + 4.0 * 128 * 128)).epsilon(1e-12));
  // Mamba-2 SSD (arXiv 2405.21060 §6), Nemotron-H-8B shapes (128 heads of P = 64, N = 128, 8 groups,
  // chunk 128): heads (2QP + 4NP) + groups 2QN.
  LinearAttentionSpec ssd{.kind = LinearMixer::mamba2, .heads = 128, .key_heads = 8, .key_head_dim = 128,
                          .value_head_dim = 64, .conv_kernel = 4, .chunk = 128};
  CHECK(graph::linear_core_flops_per_token(ssd, 128, 8) ==
        Approx(128 * (2.0 * 128 * 64 + 4.0 * 128 * 64) + 8 * 2.0 * 128 * 128).epsilon(1e-12));
  // As a layer of a model file: the graph's core is that count times the tokens, and TP halves it.
  io::json j = io::read_json_file(std::string(MOESIM_SOURCE_DIR) + "/models/llama3-8b.json");
  j["attention"]["layer_pattern"] = {"linear", "linear", "linear", "full"};
  j["attention"]["linear"] = {{"kind", "mamba2"}, {"heads", 128}, {"key_heads", 8}, {"key_head_dim", 128},
                              {"value_head_dim", 64}, {"conv_kernel", 4}, {"chunk", 128}};
  const ModelSpec m = io::parse_model(j, "hybrid.json");
  const graph::LayerGraph one = linear_layer(m, 8192), two = linear_layer(m, 8192, 2);
  CHECK(find_op(one, "linear_core")->flop_count == Approx(8192 * graph::linear_core_flops_per_token(ssd, 128, 8)));
  CHECK(find_op(two, "linear_core")->flop_count == Approx(find_op(one, "linear_core")->flop_count / 2).epsilon(1e-12));
  CHECK(find_op(two, "linear_in_proj")->flop_count == Approx(find_op(one, "linear_in_proj")->flop_count / 2).epsilon(1e-12));
  REQUIRE(find_op(two, "attn_tp_reduce") != nullptr);  // one TP all-reduce after out_proj, as attention
}

TEST_CASE("linear mixer: CP passes states, not keys and values", "[linear][cp]") {
  const ModelSpec m = io::load_model("qwen3-next-80b-a3b");
  const graph::LayerGraph g = linear_layer(m, 131072, 1, 8);
  CHECK(find_op(g, "cp_kv_exchange") == nullptr);
  const graph::Op* states = find_op(g, "cp_state_all_gather");
  REQUIRE(states != nullptr);
  // LASP-2: every rank's final state (32 heads of 128 x 128 fp32) gathered over the 8 CP ranks.
  CHECK(states->collective.buffer == Approx(8.0 * 32 * 128 * 128 * 4));
  // A full layer's ring exchange moves (cp - 1) x local K and V: far more bytes at 128K.
  graph::GraphContext ctx;
  ctx.seq_len = 131072;
  ctx.tokens = 131072 / 8;
  ctx.cp = 8;
  const graph::LayerGraph full = graph::build_layer(m, ctx, graph::LayerKind::dense, F);
  // (7 x 16384 tokens x 2 KV heads x (256 + 256) x 2 bytes = 235 MB against 16.8 MB.)
  CHECK(find_op(full, "cp_kv_exchange")->collective.buffer > 10 * states->collective.buffer);
  // The incoming state costs each rank the correction Q S_in and W S_in (2 x 2 dk dv per head and token).
  const graph::Op& core = *find_op(g, "linear_core");
  CHECK(core.flop_count - core.model_flop_count == Approx(16384.0 * 32 * 4 * 128 * 128));
}

TEST_CASE("linear mixer: Qwen3-Next from config.json equals the built-in model, 80B parameters", "[linear][hf]") {
  const ModelSpec hf = io::load_model(std::string(MOESIM_SOURCE_DIR) + "/tests/data/hf/qwen3-next-80b-a3b-config.json");
  const ModelSpec builtin = io::load_model("qwen3-next-80b-a3b");
  CHECK(hf.attention.layer_pattern == builtin.attention.layer_pattern);  // full_attention_interval 4
  CHECK(hf.attention.output_gate);
  CHECK(hf.attention.linear.heads == 32);
  CHECK(hf.attention.linear.key_heads == 16);
  CHECK(hf.attention.linear.conv_kernel == 4);
  CHECK(count_params(hf).total() == Approx(count_params(builtin).total()).epsilon(1e-12));
  CHECK(count_params(hf).total() == Approx(80e9).epsilon(0.01));  // model card: 80B total
  // layer_types, when the config lists them, win over the interval.
  io::json j = io::read_json_file(std::string(MOESIM_SOURCE_DIR) + "/tests/data/hf/qwen3-next-80b-a3b-config.json");
  std::vector<std::string> types(48, "linear_attention");
  types[0] = "full_attention";
  j["layer_types"] = types;
  const ModelSpec listed = io::parse_hf_config(j, "qn/config.json");
  CHECK(listed.attention.span_of_layer(0) == F);
  CHECK(listed.attention.span_of_layer(3) == L);
  CHECK(listed.attention.span_of_layer(47) == L);
  // An unknown linear_* field of a qwen3_next config is still refused.
  j["linear_chunk_size"] = 128;
  test::check_names(test::input_error([&] { io::parse_hf_config(j, "qn/config.json"); }), "qn/config.json",
                    "linear_chunk_size");
}

TEST_CASE("linear mixer: model file errors name the field", "[linear][io]") {
  io::json j = io::read_json_file(std::string(MOESIM_SOURCE_DIR) + "/models/qwen3-next-80b-a3b.json");
  {
    io::json k = j;
    k["attention"].erase("linear");
    test::check_names(test::input_error([&] { io::parse_model(k, "qn.json"); }), "qn.json", "attention.linear");
  }
  {
    io::json k = j;
    k["attention"]["linear"]["kind"] = "retnet";
    test::check_names(test::input_error([&] { io::parse_model(k, "qn.json"); }), "qn.json", "attention.linear.kind");
  }
  {
    io::json k = j;
    k["attention"]["linear"]["key_heads"] = 3;  // not a divisor of 32
    test::check_names(test::input_error([&] { io::parse_model(k, "qn.json"); }), "qn.json", "attention.linear.key_heads");
  }
  {
    io::json k = j;
    k["attention"]["layer_pattern"] = {"full"};  // linear shapes given but no linear layer
    test::check_names(test::input_error([&] { io::parse_model(k, "qn.json"); }), "qn.json", "attention.layer_pattern");
  }
}

TEST_CASE("linear mixer: at 128K Qwen3-Next costs a fraction of full attention and fits", "[linear][simulate]") {
  const ModelSpec m = io::load_model("qwen3-next-80b-a3b");
  const graph::FlopsPerToken hybrid = graph::model_flops_per_token(m, 131072);
  const graph::FlopsPerToken full = graph::model_flops_per_token(all_full(m), 131072);
  // All-full at 128K: 48 layers x 2 x 131072 keys x 16 heads x (256 + 256) = 103 GFLOP of attention
  // core per token; the hybrid keeps a quarter of it plus a few MFLOP of linear cores.
  CHECK(full.attention_core == Approx(48 * 2.0 * 131072 * 16 * 512).epsilon(1e-9));
  CHECK(hybrid.attention_core < 0.26 * full.attention_core);
  CHECK(hybrid.attention_core > 0.25 * full.attention_core);
  const HardwareProfile hw = io::load_profile("h100-sxm");
  LayoutSpec l = test::make_layout(64, 1, 1, 8, 64, 131072);
  l.cp = 8;
  l.recompute = Recompute::full;
  const sim::SimulationResult a = test::simulate({m, l, hw});
  const sim::SimulationResult b = test::simulate({all_full(m), l, hw});
  CHECK(a.iteration_time < 0.6 * b.iteration_time);
}
