// costmodels/compressed_attention: DeepSeek-V4's hybrid attention (sliding-window, compressed-sparse and
// heavily compressed layers) costs per token what Megatron-LM's FLOP counter counts for each layer
// kind (training.py _dsv4_hybrid_self_attention_flops, dev commit 9c5258f109, written out below), and
// the whole model what its num_floating_point_operations counts under the megatron_core_2026_causal
// convention; the compressed-entry counts are exact; the built-ins reproduce DeepSeek's published
// parameter counts; mHC widens the residual (memory, PP sends, recompute); TP and CP split and gather
// what they should; the HF config reads as the built-in and a bad compress_ratios names the field.
//
// tests/data/hf/deepseek-v4-flash-config.json: the config.json field names of Megatron-LM dev
// experimental/lite/megatron/lite/model/deepseek_v4/config.py (DeepseekV4Config.from_hf) with the values
// models/deepseek-v4-flash.json cites (the Megatron-LM recipe's), abridged to the keys that matter.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "costmodels/compressed_attention.h"
#include "costmodels/compute.h"
#include "costmodels/graph.h"
#include "costmodels/memory.h"
#include "costmodels/params.h"
#include "sim/io/specs_io.h"
#include "tests/support.h"

using namespace moesim;

namespace {

constexpr AttentionSpan W = AttentionSpan::sliding, CSA = AttentionSpan::compressed_sparse, HCA = AttentionSpan::compressed;

// Megatron-LM training.py _dsv4_hybrid_self_attention_flops for one layer of each ratio, per token, with
// its FMA factor 2 and without the forward-backward factor 3 (token_linear + core x seq_len).
struct MegatronDsv4 {
  double h, heads, d, q_lora, o_groups, o_lora, w, s, HI, dI, topk;
  double projections() const {
    return 2 * (q_lora * (h + heads * d + 1) + h * d + d + heads * d * o_lora + o_groups * o_lora * h);
  }
  double window() const { return projections() + 2 * heads * w * d * 2; }
  double heavily_compressed() const {
    return projections() + 2 * heads * w * d * 2 + 2 * heads * d / 128 * s + 2 * h * d * 2;
  }
  double compressed_sparse() const {
    const double eff = std::min(topk, std::floor(s / 4)), avg = eff * (1 - eff * 4 / (2 * s));
    return projections() + 2 * heads * (w + avg) * d * 2 + 2 * h * (2 * d) * 2 +
           2 * (h * (2 * dI) * 2 + q_lora * HI * dI + h * HI) + 2 * HI * dI / 4 * s;
  }
};

MegatronDsv4 megatron_of(const ModelSpec& m, double s) {
  const AttentionSpec& a = m.attention;
  return {m.hidden, double(a.heads), double(a.head_dim), double(a.q_lora_rank), double(a.compressed.o_groups),
          double(a.compressed.o_lora_rank), double(a.sliding_window), s, double(a.sparse.index_heads),
          double(a.sparse.index_head_dim), double(a.sparse.topk)};
}

bool is_attention_op(const graph::Op& op) {
  const std::string_view n = op.name;
  return !n.starts_with("mlp_") && !n.starts_with("mhc_");
}

// Forward FLOPs per token of a layer's attention ops as the causal convention counts them: model FLOPs
// less what the causal mask removes (validate.cpp convention_flops).
double causal_attention_flops(const graph::LayerGraph& g, double tokens) {
  double f = 0;
  for (const graph::Op& op : g.forward) {
    // The indexer loss's target is training work the convention adds (model FLOPs 0) and Megatron's
    // counter leaves out: compared apart below.
    if (!is_attention_op(op) || std::string_view(op.name) == "indexer_target") continue;
    f += op.kind == graph::OpKind::attention ? op.flop_count : op.model_flop_count;
  }
  return f / tokens;
}

double brute_force_pairs(int s, int ratio, int cap) {
  double n = 0;
  for (int i = 0; i < s; ++i) n += std::min((i + 1) / ratio, cap);
  return n;
}

std::string hf(const std::string& name) { return std::string(MOESIM_SOURCE_DIR) + "/tests/data/hf/" + name; }

}  // namespace

TEST_CASE("DeepSeek-V4: compressed entries per query are counted exactly", "[dsv4]") {
  for (const auto& [s, r, cap] : {std::tuple{4096, 4, 512}, {4096, 4, 1024}, {4096, 128, 32}, {1000, 128, 7},
                                  {4099, 4, 2000}, {131072, 4, 1024}, {127, 128, 0}})
    CHECK(graph::causal_compressed_pairs(s, r, cap) == brute_force_pairs(s, r, cap));
}

TEST_CASE("DeepSeek-V4: model FLOPs per token of each layer kind's core and indexer follow their definitions",
          "[dsv4]") {
  const ModelSpec m = io::load_model("deepseek-v4-flash");
  const double s = 4096, heads = 64, d = 512;
  // MQA over one 512-wide entry per key: QK^T and PV, 2 x 2 x d per head and entry.
  CHECK(graph::compressed_core_flops_per_pair(m.attention, heads) == 4 * heads * d);
  const auto core = [&](AttentionSpan span) {
    return test::op_named(test::layer_graph(m, graph::LayerKind::moe, span, s), "attention_core").model_flop_count / s;
  };
  // Window 128 keys; + top-512 of s / 4 = 1024 compressed entries; + all s / 128 = 32 of them.
  CHECK(core(W) == Approx(128 * 4 * heads * d).epsilon(1e-12));
  CHECK(core(CSA) == Approx((128 + 512) * 4 * heads * d).epsilon(1e-12));
  CHECK(core(HCA) == Approx((128 + 32) * 4 * heads * d).epsilon(1e-12));
  // The indexer scores all s / 4 compressed keys: 2 H_I (d_I + 1) per key (DSA's index score); its
  // loss's target reruns Q K^T on the selected entries the queries see (executed, not model, FLOPs).
  const graph::LayerGraph csa = test::layer_graph(m, graph::LayerKind::moe, CSA, s);
  CHECK(test::op_named(csa, "indexer_scores").model_flop_count / s == Approx(1024 * 2 * 64 * 129).epsilon(1e-12));
  const graph::Op& target = test::op_named(csa, "indexer_target");
  CHECK(target.model_flop_count == 0);
  CHECK(target.flop_count == Approx(graph::causal_compressed_pairs(s, 4, 512) * 2 * heads * d));
  // Sliding and heavily compressed layers have no indexer; only compressed layers have compressors.
  const graph::LayerGraph w = test::layer_graph(m, graph::LayerKind::moe, W, s);
  for (const graph::Op& op : w.forward) CHECK(std::string_view(op.name).find("compressor") == std::string_view::npos);
  // The grouped output projection: heads x d in 8 groups, each to o_lora_rank 1024, then 8 x 1024 -> h.
  const graph::Op& og = test::op_named(w, "o_group_proj");
  CHECK(og.model_flop_count / s == 2 * heads * d * 1024);
  CHECK(og.shape.count == 8);
  CHECK(test::op_named(w, "attn_out_proj").model_flop_count / s == 2 * 8 * 1024 * 4096.0);
}

TEST_CASE("DeepSeek-V4: the sparse kernels run the whole padded index tensor, timed but not credited", "[dsv4]") {
  const double s = 4096, heads = 64, d = 512;
  const ModelSpec flash = io::load_model("deepseek-v4-flash"), pro = io::load_model("deepseek-v4-pro");
  // Window 128 + top-512 (Flash) or top-1024 (Pro); window + 4096 / 128 = 32 entries padded to 64 slots.
  CHECK(graph::sparse_kernel_slots(flash.attention, CSA, s) == 640);
  CHECK(graph::sparse_kernel_slots(pro.attention, CSA, s) == 1152);
  CHECK(graph::sparse_kernel_slots(flash.attention, HCA, s) == 192);
  CHECK(graph::sparse_kernel_slots(flash.attention, W, s) == 128);
  for (const AttentionSpan span : {W, CSA, HCA}) {
    CAPTURE(static_cast<int>(span));
    const graph::LayerGraph g = test::layer_graph(flash, graph::LayerKind::moe, span, s);  // kept: op_named refers into it
    const graph::Op& core = test::op_named(g, "attention_core");
    // Executed plus masked is every slot of every query; the causal count (flop_count) is untouched.
    CHECK(core.flop_count + core.masked_flop_count ==
          Approx(s * graph::sparse_kernel_slots(flash.attention, span, s) * 4 * heads * d + 3 * s * heads));
    CHECK(core.masked_flop_count > 0);
    CHECK(core.flop_count + core.masked_flop_count > core.model_flop_count);  // the padding and the masked window
  }
  // The timing takes the masked slots: the core's forward is longer than its causal count alone would give.
  const graph::LayerGraph csa = test::layer_graph(flash, graph::LayerKind::moe, CSA, s);
  const graph::Op& core = test::op_named(csa, "attention_core");
  const HardwareProfile hw = io::load_profile("gb200-nvl72");
  const seconds timed = compute::attention_time(core.flop_count + core.masked_flop_count, core.hbm_bytes, hw.device.matrix_bf16,
                                                hw.device).time;
  const seconds causal = compute::attention_time(core.flop_count, core.hbm_bytes, hw.device.matrix_bf16, hw.device).time;
  CHECK(timed > 1.2 * causal);
  // The indexer loss's target runs all top-k columns.
  const graph::Op& target = test::op_named(csa, "indexer_target");
  CHECK(target.flop_count + target.masked_flop_count == Approx(s * 512 * 2 * heads * d));
}

TEST_CASE("DeepSeek-V4: each layer kind's attention costs what Megatron-LM's FLOP counter counts", "[dsv4]") {
  for (const char* name : {"deepseek-v4-flash", "deepseek-v4-pro"}) {
    CAPTURE(name);
    const ModelSpec m = io::load_model(name);
    for (double s : {4096.0, 65536.0}) {
      CAPTURE(s);
      const MegatronDsv4 ref = megatron_of(m, s);
      const auto ours = [&](AttentionSpan span) {
        return causal_attention_flops(test::layer_graph(m, graph::LayerKind::dense, span, s), s);
      };
      // Differences: the window's first 127 queries see fewer keys (Megatron counts 128 for all), the
      // entries' exact causal count (Megatron's continuous average), the indexer's weighted sum and
      // ReLU, and the norms Megatron counts as 1 FLOP per weight: each under 0.5% of the layer. The
      // convention halves every causal s-term; Megatron's counter halves the compressed entries but not
      // the indexer's scores ("scoring each query against ~L/4 compressed positions"), so that half of
      // them is taken out of its count here (0.6% of the model at 4K, validation/README.md).
      CHECK(ours(W) == Approx(ref.window()).epsilon(0.005));
      CHECK(ours(CSA) == Approx(ref.compressed_sparse() - ref.HI * ref.dI / 4 * s).epsilon(0.005));
      CHECK(ours(HCA) == Approx(ref.heavily_compressed()).epsilon(0.005));
    }
  }
}

TEST_CASE("DeepSeek-V4: the causal convention's FLOPs per token match Megatron-LM's whole-model count", "[dsv4]") {
  for (const char* name : {"deepseek-v4-flash", "deepseek-v4-pro"}) {
    CAPTURE(name);
    const ModelSpec m = io::load_model(name);
    const double s = 4096, h = m.hidden, V = m.vocab;
    const graph::FlopsPerToken f = graph::model_flops_per_token(m, static_cast<int>(s));
    // The convention counts what the kernels execute, the indexer loss's target included (Q K^T on the
    // selected entries, 2 heads head_dim each); Megatron's counter leaves it out.
    double target = 0;
    for (int i = 0; i < m.layers; ++i)
      if (m.attention.span_of_layer(i) == CSA)
        target += test::op_named(test::layer_graph(m, graph::LayerKind::dense, CSA, s), "indexer_target").flop_count / s;
    const double ours = f.training - 3 * f.attention_core_masked - 3 * target;
    // num_floating_point_operations (transformer_flops, dsv4_hybrid branch) per token: every layer and
    // the MTP layer MoE (routed top-6 + shared, SwiGLU), the DSv4 attention of every ratio in
    // csa_compress_ratios (MTP's included), MTP's norms and eh projection, logits for the model and MTP.
    const MegatronDsv4 ref = megatron_of(m, s);
    double attention = 0;
    for (int i = 0; i <= m.layers; ++i) {
      const AttentionSpan span = i < m.layers ? m.attention.span_of_layer(i) : m.attention.mtp_span;
      attention += span == W ? ref.window() : span == CSA ? ref.compressed_sparse() : ref.heavily_compressed();
    }
    const double layers = m.layers + m.mtp_layers, moe = m.moe->expert_intermediate;
    const double megatron = 3 * (2 * h * (moe * 6 * 3 + moe * 3) * layers + attention +
                                 2 * m.mtp_layers * (3 * h + 2 * h * h) + 2 * h * V * (m.mtp_layers + 1));
    // moesim also counts the router's GEMM (h x experts) and mHC's mapping GEMMs (2 x 4h x 24 per
    // layer), which Megatron leaves out; Megatron counts all of the indexer's scores (not the causal
    // half), 128 keys for the window's first queries and the norms as matmul FLOPs: within 0.8%.
    CHECK(ours / megatron == Approx(1.0).margin(0.008));
  }
}

TEST_CASE("DeepSeek-V4: the built-ins have DeepSeek's published parameter counts", "[dsv4][params]") {
  // DeepSeek-V4-Flash 284B total, 13B activated; V4-Pro 1.6T total, 49B activated (DeepSeek's release,
  // as quoted at https://openrouter.ai/deepseek/deepseek-v4-flash and https://apxml.com/models/
  // deepseek-v4-pro; models/README.md). Published totals leave out the MTP module.
  const ParamBreakdown flash = count_params(io::load_model("deepseek-v4-flash"));
  const ParamBreakdown pro = count_params(io::load_model("deepseek-v4-pro"));
  // Activated: every parameter a token's matmuls touch, the input embedding excluded (as Kimi K2's
  // report counts). The cards round: 284.3B / 13.27B and 1573B / 48.85B computed.
  CHECK(flash.total() == Approx(284e9).epsilon(0.01));
  CHECK(flash.active() == Approx(13e9).epsilon(0.03));
  CHECK(pro.total() == Approx(1.6e12).epsilon(0.02));
  CHECK(pro.active() == Approx(49e9).epsilon(0.01));
}

TEST_CASE("DeepSeek-V4: mHC carries four streams between layers and stages, and its recompute frees them",
          "[dsv4][memory]") {
  const ModelSpec m = io::load_model("deepseek-v4-flash");
  ModelSpec plain = m;
  plain.residual_streams = 1;
  LayoutSpec l = test::make_layout(64, 1, 1, 16, 256, 4096);
  l.recompute = Recompute::selective;
  REQUIRE(!complete_and_check_layout(m, l));
  const graph::ModelGraphs g = test::graphs_of(m, l), p = test::graphs_of(plain, l);
  // The layer input (full recompute's checkpoint, the PP send) is n = 4 streams of hidden.
  CHECK(g.moe_compressed_sparse.layer_input_bytes == 4 * p.moe_compressed_sparse.layer_input_bytes);
  // mHC keeps the streams of each sublayer (4h each) and its sublayer outputs: more saved per layer;
  // recompute_modules mhc keeps only the layer's input streams.
  const bytes with = g.moe_compressed.saved_bytes(Recompute::selective), without = p.moe_compressed.saved_bytes(Recompute::selective);
  const double T = 4096, h = m.hidden;
  CHECK(with - without == Approx(2 * (4 * T * h * 2 + T * h * 2 + T * 24 * 4)));
  LayoutSpec lm = l;
  lm.recompute_modules |= static_cast<unsigned>(RecomputeModule::mhc);
  const graph::ModelGraphs gm = test::graphs_of(m, lm);
  CHECK(gm.moe_compressed.saved_bytes(Recompute::selective) == Approx(with - 4 * T * h * 2 - 2 * T * 24 * 4));
  CHECK(gm.moe_compressed.recompute_flops(Recompute::selective) > g.moe_compressed.recompute_flops(Recompute::selective));
  // mHC's parameters: per sublayer a 4h -> 24 fp32 projection, its bias and three gates.
  CHECK(layer_norm_params(m) - layer_norm_params(plain) == 2 * ((4 * h + 1) * 24 + 3));
}

TEST_CASE("DeepSeek-V4: TP splits heads and output groups, CP exchanges the window and gathers compressed entries",
          "[dsv4]") {
  const ModelSpec m = io::load_model("deepseek-v4-pro");
  const double s = 4096;
  const graph::LayerGraph one = test::layer_graph(m, graph::LayerKind::moe, CSA, s);
  const graph::LayerGraph tp2 = test::layer_graph(m, graph::LayerKind::moe, CSA, s, 2);
  CHECK(test::op_named(tp2, "attention_core").flop_count == Approx(test::op_named(one, "attention_core").flop_count / 2));
  CHECK(test::op_named(tp2, "o_group_proj").shape.count == 8);
  // The key-value entry, compressors and indexer are replicated over TP.
  CHECK(test::op_named(tp2, "kv_proj").flop_count == test::op_named(one, "kv_proj").flop_count);
  CHECK(test::op_named(tp2, "indexer_scores").flop_count == test::op_named(one, "indexer_scores").flop_count);
  const graph::LayerGraph cp4 = test::layer_graph(m, graph::LayerKind::moe, CSA, s, 1, 4);
  const double d = 512, dI = 128, T = s / 4;
  CHECK(test::op_named(cp4, "cp_window_exchange").collective.buffer == 128 * m.hidden * 2);
  CHECK(test::op_named(cp4, "cp_compressed_all_gather").collective.buffer == 4 * (T / 4) * d * 2);
  CHECK(test::op_named(cp4, "cp_index_key_all_gather").collective.buffer == 4 * (T / 4) * dI * 2);
  // A CP rank's queries still see the whole sequence's entries: its share of the work is a quarter.
  CHECK(test::op_named(cp4, "attention_core").flop_count == Approx(test::op_named(one, "attention_core").flop_count / 4));
}

TEST_CASE("DeepSeek-V4: the HF config reads as the built-in; bad compress ratios name the field", "[dsv4][io][hf]") {
  const ModelSpec built_in = io::load_model("deepseek-v4-flash");
  const ModelSpec from_hf = io::load_model(hf("deepseek-v4-flash-config.json"));
  CHECK(from_hf.attention.type == AttentionType::hybrid_compressed);
  CHECK(from_hf.attention.layer_pattern == built_in.attention.layer_pattern);
  CHECK(from_hf.attention.mtp_span == W);
  CHECK(from_hf.mtp_layers == 1);
  CHECK(from_hf.residual_streams == 4);
  CHECK(from_hf.moe->hash_layers == 3);
  CHECK(count_params(from_hf).total() == count_params(built_in).total());
  CHECK(graph::model_flops_per_token(from_hf, 4096).training == Approx(graph::model_flops_per_token(built_in, 4096).training));
  const io::json base = io::read_json_file(hf("deepseek-v4-flash-config.json"));
  const std::string file = "v4/config.json";
  for (const io::json& ratios : {io::json::array({0, 4, 64}), io::json::array({0, 4, 128})}) {
    io::json j = base;
    j["compress_ratios"] = ratios;
    test::check_names(test::input_error([&] { io::parse_hf_config(j, file); }), file, "compress_ratios");
  }
  io::json j = base;
  j["o_groups"] = 7;
  test::check_names(test::input_error([&] { io::parse_hf_config(j, file); }), file, "o_groups");
}

TEST_CASE("DeepSeek-V4: simulates on its recipe's layout, and sliding layers cost less than compressed ones",
          "[dsv4]") {
  const ModelSpec m = io::load_model("deepseek-v4-flash");
  // The recipe's settings that decide whether it fits (deepseek_v4_flash/gb200 YAML): MXFP8, bf16 Adam
  // moments, the MLA up-projection recompute, Transformer Engine's fused cross entropy.
  LayoutSpec l = test::make_layout(128, 1, 1, 64, 2048, 4096);
  l.recompute = Recompute::selective;
  l.recompute_modules = static_cast<unsigned>(RecomputeModule::mla_up_proj);
  l.precision = Precision::fp8;
  l.adam_moment_bytes = 2;
  l.cross_entropy = CrossEntropy::fused;
  const sim::SimulationResult r = test::simulate({m, l, io::load_profile("gb200-nvl72")});
  CHECK(r.iteration_time > 0);
  CHECK(r.fits);
  const graph::FlopsPerToken f = graph::model_flops_per_token(m, 4096);
  CHECK(f.attention_core > 0);
  const double s = 131072;
  const auto core = [&](AttentionSpan span) {
    return test::op_named(test::layer_graph(m, graph::LayerKind::moe, span, s), "attention_core").model_flop_count;
  };
  // At 128K: window 128 < compressed sparse 128 + top-512 < heavily compressed 128 + 131072 / 128.
  CHECK(core(W) < core(CSA));
  CHECK(core(CSA) < core(HCA));
}
