// costmodels/attention_span and the layer graphs it feeds: a sliding-window layer's attention core
// computes the (query, key) pairs inside its window, model FLOPs count the window's keys, memory is
// that of full attention, and a layer's index picks its graph.
#include <catch2/catch.hpp>

#include "costmodels/attention_span.h"
#include "costmodels/graph.h"
#include "costmodels/memory.h"
#include "sim/io/specs_io.h"
#include "tests/support.h"

using namespace moesim;

namespace {

// Query i of a causal window w sees keys max(0, i - w + 1) .. i: counted one by one.
double pairs_by_counting(long s, long w) {
  double pairs = 0;
  for (long i = 0; i < s; ++i)
    for (long j = 0; j <= i; ++j) pairs += i - j < w ? 1 : 0;
  return pairs;
}

ModelSpec without_windows(ModelSpec m) {
  m.attention.sliding_window = 0;
  m.attention.layer_pattern.clear();
  return m;
}

const graph::Op& core_of(const graph::LayerGraph& g) { return test::op_named(g, "attention_core"); }

}  // namespace

TEST_CASE("attention span: windowed pairs equal the closed-form sum", "[attention][sliding]") {
  for (long s : {1L, 2L, 7L, 64L, 300L})
    for (long w : {1L, 2L, 5L, 64L, 128L, 1000L}) {
      CAPTURE(s, w);
      CHECK(graph::causal_window_pairs(s, w) == pairs_by_counting(s, w));
    }
  // Long sequences: s w - w (w - 1) / 2, far below the s (s + 1) / 2 of full causal attention.
  CHECK(graph::causal_window_pairs(131072, 128) == 131072.0 * 128 - 128.0 * 127 / 2);
  CHECK(graph::causal_window_pairs(131072, 131072) == 131072.0 * 131073 / 2);
}

TEST_CASE("attention span: keys per query, executed and counted by MFU", "[attention][sliding]") {
  const graph::AttentionKeys full = graph::attention_keys(4096, AttentionSpan::full, 0, true);
  CHECK(full.model == 4096);
  CHECK(full.executed == 2048);  // the causal kernel skips the masked half
  const graph::AttentionKeys sliding = graph::attention_keys(4096, AttentionSpan::sliding, 128, true);
  CHECK(sliding.model == 128);   // MFU counts the window's keys: the work the model does
  CHECK(sliding.executed == Approx(128 - 128.0 * 127 / 2 / 4096));
  // A window as long as the sequence is full attention.
  const graph::AttentionKeys wide = graph::attention_keys(4096, AttentionSpan::sliding, 4096, true);
  CHECK(wide.model == full.model);
  CHECK(wide.executed == full.executed);
}

TEST_CASE("attention span: GPT-OSS layers alternate sliding and full graphs", "[attention][sliding]") {
  const ModelSpec m = io::load_model("gpt-oss-120b");
  REQUIRE(m.attention.sliding_window == 128);
  LayoutSpec l = test::make_layout(64, 1, 1, 8, 64, 131072);
  l.cp = 8;
  REQUIRE_FALSE(complete_and_check_layout(m, l).has_value());
  const graph::ModelGraphs g = graph::build_model_graphs(m, graph::make_context(m, l));
  CHECK(&g.decoder(m, 0) == &g.moe_sliding);  // layer_types[0] = sliding_attention
  CHECK(&g.decoder(m, 1) == &g.moe);
  CHECK(&g.decoder(m, 35) == &g.moe);
  CHECK(g.decoder_layers_of(m, g.moe_sliding) == 18);
  CHECK(g.decoder_layers_of(m, g.moe) == 18);
  CHECK(g.moe_sliding.span == AttentionSpan::sliding);

  // The sliding core on this device: its 16384 queries (131072 / cp 8) see 128 keys each, less the ragged
  // start of the sequence; 2 x 2 x queries x keys x heads x head_dim, plus GPT-OSS's attention sinks:
  // 3 FLOPs per query and head (AttentionSpec::sinks).
  const double queries = 131072.0 / 8, heads = 64, dim = 64;
  const graph::Op& sliding = core_of(g.moe_sliding);
  CHECK(sliding.model_flop_count == Approx(4 * queries * 128 * heads * dim));
  const double sinks = 3 * queries * heads;
  CHECK(sliding.flop_count ==
        Approx(4 * queries * graph::causal_window_pairs(131072, 128) / 131072 * heads * dim + sinks).epsilon(1e-9));
  const graph::Op& full = core_of(g.moe);
  CHECK(full.flop_count == Approx(4 * queries * 131072 / 2 * heads * dim + sinks));
  // Fused attention keeps no scores: the same bytes, saved and moved, for both spans.
  CHECK(sliding.saved_bytes == full.saved_bytes);
  CHECK(sliding.hbm_bytes == full.hbm_bytes);
  CHECK(g.moe_sliding.saved_bytes(Recompute::none) == g.moe.saved_bytes(Recompute::none));
  // Everything but the attention core is the same op for op.
  REQUIRE(g.moe_sliding.forward.size() == g.moe.forward.size());
  for (std::size_t i = 0; i < g.moe.forward.size(); ++i)
    if (&g.moe.forward[i] != &full) CHECK(g.moe_sliding.forward[i].flop_count == g.moe.forward[i].flop_count);
}

TEST_CASE("attention span: GPT-OSS at 128K has half the attention FLOPs of full attention", "[attention][sliding]") {
  const ModelSpec m = io::load_model("gpt-oss-120b");
  const ModelSpec full = without_windows(m);
  for (int s : {4096, 131072}) {
    CAPTURE(s);
    const graph::FlopsPerToken windowed = graph::model_flops_per_token(m, s);
    const graph::FlopsPerToken dense = graph::model_flops_per_token(full, s);
    // 18 full layers count s keys per query, 18 sliding layers 128: (s + 128) / 2s of 36 full layers.
    CHECK(windowed.attention_core / dense.attention_core == Approx((s + 128.0) / (2.0 * s)));
    // Per token: 2 x 2 x keys x heads x head_dim per layer.
    CHECK(windowed.attention_core == Approx(18 * 4.0 * (s + 128) * 64 * 64));
    // Everything else is unchanged.
    CHECK(windowed.forward - windowed.attention_core == Approx(dense.forward - dense.attention_core));
    // The causal kernel skips half of a full layer and only the ragged start of a window.
    CHECK(windowed.attention_core_masked ==
          Approx(18 * 4.0 * 64 * 64 * (s / 2.0 + 128 - graph::causal_window_pairs(s, 128) / s)));
    CHECK(dense.attention_core_masked == Approx(dense.attention_core / 2));
  }
  // At 128K attention dominates the full-attention model; the windows nearly halve its FLOPs.
  const double ratio = graph::model_flops_per_token(m, 131072).forward / graph::model_flops_per_token(full, 131072).forward;
  CHECK(ratio < 0.6);
}

TEST_CASE("attention span: GPT-OSS at 128K simulates faster with windows, same memory", "[attention][sliding][simulate]") {
  const HardwareProfile hw = io::load_profile("h100-sxm");
  LayoutSpec l = test::make_layout(64, 1, 1, 8, 64, 131072);
  l.cp = 8;
  l.recompute = Recompute::full;
  const ModelSpec m = io::load_model("gpt-oss-120b");
  const sim::SimulationResult windowed = test::simulate({m, l, hw});
  const sim::SimulationResult full = test::simulate({without_windows(m), l, hw});
  CHECK(windowed.iteration_time < 0.75 * full.iteration_time);
  CHECK(windowed.flops_per_token.training < 0.6 * full.flops_per_token.training);
  REQUIRE(windowed.memory.size() == full.memory.size());
  for (std::size_t s = 0; s < full.memory.size(); ++s) CHECK(windowed.memory[s].total() == full.memory[s].total());
}

TEST_CASE("attention span: a window no shorter than the sequence changes nothing", "[attention][sliding]") {
  ModelSpec m = io::load_model("mixtral-8x7b");
  const graph::FlopsPerToken full = graph::model_flops_per_token(m, 4096);
  m.attention.sliding_window = 4096;  // Mistral 7B's window at its 4K training length
  const graph::FlopsPerToken windowed = graph::model_flops_per_token(m, 4096);
  CHECK(windowed.forward == full.forward);
  CHECK(windowed.attention_core_masked == full.attention_core_masked);
  m.attention.sliding_window = 1024;
  CHECK(graph::model_flops_per_token(m, 4096).attention_core == Approx(full.attention_core / 4));
}
