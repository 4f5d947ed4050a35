// costmodels/sparse_attention: DeepSeek Sparse Attention (DeepSeek-V3.2-Exp report §2.1) costs per token
// what the report's indexer and MQA-mode MLA core count, at 128K a fraction of V3's dense MLA; TP
// leaves the indexer whole and splits the core's heads, CP all-gathers index keys and latents; the
// indexer's parameters and saved keys show in params and memory; DeepSeek-V3.2's and Kimi K2's HF
// configs read as their built-ins; GPT-OSS's attention sinks are costed.
//
// tests/data/hf/kimi-k2-config.json is moonshotai/Kimi-K2-Base's config.json abridged to the keys that
// matter (values as models/kimi-k2.json cites them).
#include <catch2/catch.hpp>

#include "costmodels/attention_span.h"
#include "costmodels/graph.h"
#include "costmodels/params.h"
#include "costmodels/sparse_attention.h"
#include "sim/engine/op_layers.h"
#include "sim/io/specs_io.h"
#include "tests/support.h"

using namespace moesim;

namespace {

std::string hf(const std::string& name) { return std::string(MOESIM_SOURCE_DIR) + "/tests/data/hf/" + name; }

const graph::Op* find_op(const graph::LayerGraph& g, std::string_view name) {
  for (const graph::Op& op : g.forward)
    if (name == op.name) return &op;
  return nullptr;
}

graph::LayerGraph moe_layer(const ModelSpec& m, double seq, int tp = 1, int cp = 1) {
  return test::layer_graph(m, graph::LayerKind::moe, AttentionSpan::full, seq, tp, cp);
}

ModelSpec without_dsa(ModelSpec m) {
  m.attention.sparse = {};
  return m;
}

}  // namespace

TEST_CASE("DSA: FLOPs per token at 128K are the report's indexer and MQA-core counts", "[dsa]") {
  const ModelSpec m = io::load_model("deepseek-v3.2");
  REQUIRE(m.attention.sparse.active());
  const double s = 131072, k = 2048;
  // Report §2.1: the indexer scores every preceding token with H_I = 64 heads of d_I = 128
  // (I_{t,s} = sum_j w_{t,j} ReLU(q_{t,j} . k_s): 2 H_I d_I for the dot products, 2 H_I for the
  // weighted sum), and the MLA core attends to k = 2048 latent entries in MQA mode: per head
  // QK^T over d_c + d_R = 576 and AV over d_c = 512, 128 heads.
  const double indexer = s * 2 * 64 * (128 + 1);
  const double core = k * 2 * 128 * (512 + 64 + 512);
  CHECK(graph::dsa_indexer_flops_per_pair(m.attention.sparse) == 2 * 64 * (128 + 1));
  CHECK(graph::dsa_core_flops_per_pair(m.attention, 128) == 2 * 128 * (512 + 64 + 512));
  const graph::FlopsPerToken f = graph::model_flops_per_token(m, static_cast<int>(s));
  // 61 decoder layers and the MTP module, every one a DSA layer.
  CHECK(f.attention_core == Approx(62 * (indexer + core)).epsilon(1e-9));
  // Dense MLA (V3, MHA mode: 2 s heads (d_qk + d_v) per token, not halved) costs 3.93x as much.
  const graph::FlopsPerToken dense = graph::model_flops_per_token(without_dsa(m), static_cast<int>(s));
  CHECK(dense.attention_core == Approx(62 * 2 * s * 128 * (192 + 128)).epsilon(1e-9));
  CHECK(dense.attention_core / f.attention_core == Approx(3.926).epsilon(0.001));
  // The indexer stays O(s) per token: at 4K it is 1/32 of its 128K cost; the core is k-bound.
  const graph::LayerGraph short_seq = moe_layer(m, 4096), long_seq = moe_layer(m, s);
  CHECK(find_op(long_seq, "indexer_scores")->model_flop_count / s ==
        Approx(32 * find_op(short_seq, "indexer_scores")->model_flop_count / 4096));
  CHECK(find_op(long_seq, "attention_core")->model_flop_count / s ==
        Approx(find_op(short_seq, "attention_core")->model_flop_count / 4096));
  // A causal kernel executes about half the indexer's pairs and the ragged start of the selection.
  CHECK(find_op(long_seq, "attention_core")->flop_count / find_op(long_seq, "attention_core")->model_flop_count ==
        Approx(graph::causal_window_pairs(s, k) / (s * k)));
  // MQA mode keeps keys latent: no kv_up_proj, its FLOPs move to the absorbed query and output.
  CHECK(find_op(long_seq, "kv_up_proj") == nullptr);
  const graph::LayerGraph mha = moe_layer(without_dsa(m), s);
  CHECK(find_op(long_seq, "q_absorb")->flop_count + find_op(long_seq, "o_absorb")->flop_count ==
        Approx(find_op(mha, "kv_up_proj")->flop_count));
}

TEST_CASE("DSA: TP keeps the indexer whole and splits the core; CP all-gathers keys and latents", "[dsa]") {
  const ModelSpec m = io::load_model("deepseek-v3.2");
  const double s = 32768;
  const graph::LayerGraph one = moe_layer(m, s), tp8 = moe_layer(m, s, 8);
  // DSAIndexer computes all index_n_heads on every TP rank; the core's 128 heads split 16 per rank.
  CHECK(find_op(tp8, "indexer_scores")->flop_count == Approx(find_op(one, "indexer_scores")->flop_count));
  CHECK(find_op(tp8, "attention_core")->flop_count == Approx(find_op(one, "attention_core")->flop_count / 8));
  // CP 4: each rank gathers the other ranks' index keys (d_I = 128) and latent entries (576) per token,
  // where dense MLA ring-exchanges 128 heads x (192 + 128) per token.
  const graph::LayerGraph cp4 = moe_layer(m, s, 1, 4);
  const double T = s / 4;
  REQUIRE(find_op(cp4, "cp_index_key_all_gather") != nullptr);
  CHECK(find_op(cp4, "cp_index_key_all_gather")->collective.buffer == Approx(4 * T * 128 * 2));
  CHECK(find_op(cp4, "cp_latent_all_gather")->collective.buffer == Approx(4 * T * 576 * 2));
  CHECK(find_op(cp4, "cp_kv_exchange") == nullptr);
  const graph::LayerGraph ring = moe_layer(without_dsa(m), s, 1, 4);
  CHECK(find_op(ring, "cp_kv_exchange")->collective.buffer > 50 * find_op(cp4, "cp_latent_all_gather")->collective.buffer);
  // Each rank scores its own queries against every key: CP divides the indexer's work by 4.
  CHECK(find_op(cp4, "indexer_scores")->model_flop_count == Approx(find_op(one, "indexer_scores")->model_flop_count / 4));
}

TEST_CASE("DSA: operator level, each CP all-gather overlaps the attention op that reads it", "[dsa][op_level]") {
  const ModelSpec m = io::load_model("deepseek-v3.2");
  LayoutSpec l = test::make_layout(64, 1, 1, 16, 16, 32768);
  l.cp = 4;
  REQUIRE_FALSE(complete_and_check_layout(m, l).has_value());
  const HardwareProfile hw = io::load_profile("h100-sxm");
  const graph::ModelGraphs graphs = graph::build_model_graphs(m, graph::make_context(m, l));
  sim::LayerTables tables(l, hw, 1.0);
  const std::vector<sim::OpStep>& steps = tables.of(graphs.moe, Recompute::none).steps;
  const auto index = [&](std::string_view name) {
    for (std::size_t i = 0; i < steps.size(); ++i)
      if (name == steps[i].name) return static_cast<int>(i);
    return -1;
  };
  const int keys = index("cp_index_key_all_gather"), latents = index("cp_latent_all_gather");
  REQUIRE(keys >= 0);
  REQUIRE(latents >= 0);
  CHECK(steps[keys].partner == index("indexer_scores"));
  CHECK(steps[latents].partner == index("attention_core"));
  CHECK(steps[index("indexer_scores")].partner == keys);
  CHECK(steps[index("attention_core")].partner == latents);
}

TEST_CASE("DSA: the indexer's parameters and saved keys", "[dsa][memory]") {
  const ModelSpec m = io::load_model("deepseek-v3.2");
  const ParamBreakdown p = count_params(m), v3 = count_params(without_dsa(m));
  // Per layer (inference/model.py Indexer): wq_b 1536 x 64 x 128, wk 7168 x 128, k_norm 2 x 128,
  // weights_proj 7168 x 64; replicated over TP.
  const double indexer = 1536.0 * 64 * 128 + 7168.0 * 128 + 256 + 7168.0 * 64;
  CHECK(p.attention - v3.attention == Approx(61 * indexer));
  CHECK(p.mtp - v3.mtp == Approx(indexer));
  CHECK(attention_params(m).replicated - attention_params(without_dsa(m)).replicated == Approx(indexer));
  CHECK(p.total() == Approx(671.9e9).epsilon(0.001));
  // Saved for backward: the indexer's queries, weights, keys (gathered over CP) and top-k indices;
  // the core keeps the absorbed queries (128 x 576) and the latent cache (576), not per-head K and V.
  const double s = 32768;
  const graph::LayerGraph dsa = moe_layer(m, s, 1, 2);
  const double T = s / 2;
  CHECK(find_op(dsa, "indexer_scores")->saved_bytes == Approx(T * (64 * 128 + 64) * 2 + s * 128 * 2 + T * 2048 * 4));
  CHECK(find_op(dsa, "attention_core")->saved_bytes == Approx(T * 128 * 576 * 2 + s * 576 * 2));
}

TEST_CASE("DSA: DeepSeek-V3.2's config.json reads as the built-in; a DSA without MLA is refused", "[dsa][io][hf]") {
  const ModelSpec hf_model = io::load_model(hf("deepseek-v32-config.json"));
  CHECK(hf_model.attention.sparse.index_heads == 64);
  CHECK(hf_model.attention.sparse.index_head_dim == 128);
  CHECK(hf_model.attention.sparse.topk == 2048);
  const ModelSpec builtin = io::load_model("deepseek-v3.2");
  CHECK(graph::model_flops_per_token(hf_model, 131072).training ==
        Approx(graph::model_flops_per_token(builtin, 131072).training).epsilon(1e-12));
  CHECK(count_params(hf_model).total() == Approx(count_params(builtin).total()).epsilon(1e-12));
  // The indexer reads MLA's query latent: a config without one is refused naming the field.
  io::json j = io::read_json_file(hf("deepseek-v32-config.json"));
  j.erase("q_lora_rank");
  test::check_names(test::input_error([&] { io::parse_hf_config(j, "v32/config.json"); }), "v32/config.json", "q_lora_rank");
  // The index_* keys on another model type still fail (tests/test_hf_config.cpp), and a model file's
  // attention.sparse on GQA is refused.
  io::json model = io::read_json_file(io::data_dir() + "/models/llama3-8b.json");
  model["attention"]["sparse"] = {{"index_heads", 64}, {"index_head_dim", 128}, {"topk", 2048}};
  test::check_names(test::input_error([&] { io::parse_model(model, "llama-dsa.json"); }), "llama-dsa.json", "index_heads");
}

TEST_CASE("Kimi K2: config.json reads as the built-in (MLA 64 heads, 384 experts top-8, 1 dense layer)", "[io][hf]") {
  const ModelSpec hf_model = io::load_model(hf("kimi-k2-config.json"));
  const ModelSpec builtin = io::load_model("kimi-k2");
  REQUIRE(hf_model.moe.has_value());
  CHECK(hf_model.moe->experts == 384);
  CHECK(hf_model.moe->top_k == 8);
  CHECK(hf_model.moe->shared_experts == 1);
  CHECK(hf_model.moe->first_dense_layers == 1);
  CHECK(hf_model.attention.type == AttentionType::mla);
  CHECK_FALSE(hf_model.attention.sparse.active());
  CHECK(count_params(hf_model).total() == Approx(count_params(builtin).total()).epsilon(1e-12));
  CHECK(count_params(hf_model).active() == Approx(count_params(builtin).active()).epsilon(1e-12));
}

TEST_CASE("attention sinks: GPT-OSS pays one exponential and add per query and head, and a logit per head", "[sinks]") {
  const ModelSpec m = io::load_model("gpt-oss-120b");
  REQUIRE(m.attention.sinks);
  ModelSpec plain = m;
  plain.attention.sinks = false;
  graph::GraphContext ctx;
  ctx.seq_len = ctx.tokens = 4096;
  const graph::LayerGraph with = graph::build_layer(m, ctx, graph::LayerKind::moe, AttentionSpan::sliding);
  const graph::LayerGraph without = graph::build_layer(plain, ctx, graph::LayerKind::moe, AttentionSpan::sliding);
  const graph::Op* core = find_op(with, "attention_core");
  CHECK(core->flop_count - find_op(without, "attention_core")->flop_count == Approx(3.0 * 4096 * 64));
  // Tiny beside the windowed core (2 (64 + 64) FLOPs per key, ~128 keys) and outside model FLOPs.
  CHECK((core->flop_count - find_op(without, "attention_core")->flop_count) / core->flop_count < 0.001);
  CHECK(core->model_flop_count == find_op(without, "attention_core")->model_flop_count);
  CHECK(count_params(m).attention - count_params(plain).attention == 36.0 * 64);
  // The HF config sets them (GptOssAttention always has sinks).
  CHECK(io::load_model(hf("gpt-oss-120b-config.json")).attention.sinks);
}
