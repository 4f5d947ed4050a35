// torchtitan's memory mechanisms: op-level selective activation checkpointing (recompute
// "selective_op", torchtitan parallelisms/parallelize_llama.py `_save_list` and the every-second-mm rule)
// and FSDP2 without resharding after forward under pipeline parallelism (layout
// zero_reshard_after_forward false), counted by hand from the Llama 3 8B / 405B shapes.
#include <catch2/catch.hpp>

#include "tests/support.h"

#include "costmodels/graph.h"
#include "costmodels/memory.h"
#include "sim/io/specs_io.h"

using namespace moesim;

namespace {

graph::LayerGraph llama_layer(const ModelSpec& m, double tokens, int tp) {
  graph::GraphContext ctx;
  ctx.tokens = tokens;
  ctx.seq_len = tokens;
  ctx.tp = tp;
  ctx.sequence_parallel = tp > 1;
  return graph::build_layer(m, ctx, graph::LayerKind::dense);
}

flops op_flops(const graph::LayerGraph& g, const char* name) {
  for (const graph::Op& op : g.forward)
    if (std::string(op.name) == name) return op.flop_count;
  FAIL("no op " << name);
  return 0;
}

}  // namespace

TEST_CASE("selective_op keeps the block input and the outputs of wq, wv, SDPA, w1 and w2", "[memory][op_sac]") {
  const ModelSpec m = io::load_model("llama3-8b");
  REQUIRE(m.attention.heads == 32);
  REQUIRE(m.attention.kv_heads == 8);
  const double h = m.hidden, d = m.attention.head_dim, ffn = m.ffn.intermediate, a = 2;
  const double T = 2 * 8192;  // torchtitan Table 1: local batch 2 x 8192
  const auto g = llama_layer(m, T, 1);
  // Block order of aten.mm: wq(1) wk(2) wv(3) wo(4) w1(5) w3(6) w2(7); odd ones saved, even ones recomputed.
  const double kept = T * a * (h              // checkpointed block input
                               + 32 * d       // wq
                               + 8 * d        // wv
                               + 32 * d       // SDPA output O
                               + ffn          // w1
                               + h)           // w2
                      + T * 32 * 4;           // SDPA log-sum-exp, fp32 per query and head
  CHECK(g.saved_bytes(Recompute::selective_op) == Approx(kept).epsilon(1e-12));
  // About 45% of what the layer keeps without recompute, well above full recompute's block input.
  CHECK(g.saved_bytes(Recompute::selective_op) < 0.5 * g.saved_bytes(Recompute::none));
  CHECK(g.saved_bytes(Recompute::selective_op) > 4 * g.saved_bytes(Recompute::full));

  // Backward reruns wk, wo and w3 and every elementwise op; the attention core is kept.
  const flops wk = 2 * T * h * 8 * d, wo = 2 * T * 32 * d * h, w3 = 2 * T * h * ffn;
  flops vector = 0, attention = 0;
  for (const graph::Op& op : g.forward) {
    if (op.kind == graph::OpKind::vector) vector += op.flop_count;
    if (op.kind == graph::OpKind::attention) attention += op.flop_count;
  }
  CHECK(attention > 0);
  CHECK(wo == Approx(op_flops(g, "attn_out_proj")).epsilon(1e-12));
  CHECK(g.recompute_flops(Recompute::selective_op) == Approx(wk + wo + w3 + vector).epsilon(1e-12));
  CHECK(g.recompute_flops(Recompute::selective_op) < g.recompute_flops(Recompute::full) - attention);
}

TEST_CASE("selective_op with TP and SP keeps local mm shards and reduce-scatter outputs", "[memory][op_sac]") {
  const ModelSpec m = io::load_model("llama3-8b");
  const double h = m.hidden, d = m.attention.head_dim, ffn = m.ffn.intermediate, a = 2;
  const double T = 8192;
  const int t = 4;
  const auto g = llama_layer(m, T, t);
  const double kept = T * a * (h / t             // block input, sequence-sharded
                               + 32 * d / t      // wq shard
                               + 8 * d / t       // wv shard
                               + 32 * d / t      // SDPA output of the local heads
                               + h / t           // reduce-scatter after wo
                               + ffn / t         // w1 shard
                               + h               // w2 partial sums before the reduce-scatter
                               + h / t)          // reduce-scatter after w2
                      + T * 32 / t * 4;
  CHECK(g.saved_bytes(Recompute::selective_op) == Approx(kept).epsilon(1e-12));
}

TEST_CASE("selective_op sits between none and full in memory and in time", "[memory][op_sac]") {
  test::Run run{io::load_model("llama3-8b"), test::make_layout(8, 1, 1, 1, 16, 8192), io::load_profile("h100-sxm")};
  run.layout.micro_batch = 2;
  run.layout.zero_stage = 3;
  std::vector<sim::SimulationResult> r;
  for (Recompute p : {Recompute::none, Recompute::selective_op, Recompute::full}) {
    run.layout.recompute = p;
    r.push_back(test::simulate(run));
  }
  CHECK(r[0].memory[0].activations > r[1].memory[0].activations);
  CHECK(r[1].memory[0].activations > r[2].memory[0].activations);
  CHECK(r[0].iteration_time < r[1].iteration_time);
  CHECK(r[1].iteration_time < r[2].iteration_time);
  CHECK(r[0].hardware_flops_per_token < r[1].hardware_flops_per_token);
  CHECK(r[1].hardware_flops_per_token < r[2].hardware_flops_per_token);
}

TEST_CASE("layout recompute selective_op parses; a wrong value names it", "[io][op_sac]") {
  const auto layout = [](const char* recompute) {
    return nlohmann::json{{"devices", 8}, {"global_batch", 8}, {"recompute", recompute}};
  };
  CHECK(io::parse_layout(layout("selective_op"), "l.json").recompute == Recompute::selective_op);
  const std::string msg = test::input_error([&] { io::parse_layout(layout("op"), "l.json"); });
  test::check_names(msg, "l.json", "recompute");
  CHECK(msg.find("selective_op") != std::string::npos);
}

TEST_CASE("zero_reshard_after_forward false keeps a pipeline stage's parameters and fp32 gradients unsharded",
          "[memory][fsdp]") {
  // torchtitan Table 5 shape: Llama 3.1 405B, FSDP 8 x TP 8 x PP 8, microbatch 4 x 8192.
  test::Run run{io::load_model("llama3-405b"), test::make_layout(512, 8, 8, 1, 256, 8192), io::load_profile("h100-sxm")};
  run.layout.micro_batch = 4;
  run.layout.zero_stage = 3;
  run.layout.recompute = Recompute::full;
  const auto sharded = test::simulate(run);
  run.layout.zero_reshard_after_forward = false;
  const auto kept = test::simulate(run);
  REQUIRE(kept.memory.size() == 8);
  for (std::size_t s = 0; s < kept.memory.size(); ++s) {
    CAPTURE(s);
    const double params = kept.memory[s].params;
    // Per-device stage parameters (split over TP 8) are ~6.3 B for 405B over 8 stages.
    CHECK(params > 5e9);
    CHECK(params < 9e9);
    CHECK(kept.memory[s].weights == Approx(2 * params).epsilon(1e-12));
    CHECK(kept.memory[s].gradients == Approx(4 * params).epsilon(1e-12));
    // Resharding after forward, FSDP2 still keeps each stage's root unit gathered: the embedding on the
    // first stage, the final norm and output head on the last (each split over TP 8).
    const double vocab_shard = run.model.vocab * run.model.hidden / 8;
    const double root = s == 0 ? vocab_shard : s + 1 == kept.memory.size() ? vocab_shard + run.model.hidden : 0.0;
    CHECK(sharded.memory[s].weights == Approx(2 * params / 8 + 2 * root * 7 / 8).epsilon(1e-12));
    // Optimizer states and activations do not depend on resharding.
    CHECK(kept.memory[s].optimizer == sharded.memory[s].optimizer);
    CHECK(kept.memory[s].activations == sharded.memory[s].activations);
  }
  // One gather and one reduce-scatter per iteration, not per microbatch: twice the microbatches leave the
  // exposed FSDP time as it is (per-microbatch resharding, with overlap off, doubles it).
  CHECK(kept.breakdown.exposed_dp > 0);
  run.layout.global_batch = 512;
  const auto kept_twice = test::simulate(run);
  CHECK(kept_twice.breakdown.exposed_dp == Approx(kept.breakdown.exposed_dp).epsilon(1e-12));
  run.layout.zero_reshard_after_forward = true;
  run.layout.overlap.dp_grad_reduce = run.layout.overlap.dp_param_gather = false;
  const auto resharded_twice = test::simulate(run);
  run.layout.global_batch = 256;
  const auto resharded = test::simulate(run);
  CHECK(resharded.breakdown.exposed_dp > 0);
  CHECK(resharded_twice.breakdown.exposed_dp == Approx(2 * resharded.breakdown.exposed_dp).epsilon(1e-9));

  // Without pipeline parallelism FSDP2 still reduce-scatters gradients per layer: only weights stay whole.
  test::Run flat{io::load_model("llama3-8b"), test::make_layout(8, 1, 1, 1, 16, 8192), io::load_profile("h100-sxm")};
  flat.layout.zero_stage = 3;
  flat.layout.zero_reshard_after_forward = false;
  const auto f = test::simulate(flat);
  CHECK(f.memory[0].weights == Approx(2 * f.memory[0].params).epsilon(1e-12));
  CHECK(f.memory[0].gradients == Approx(4 * f.memory[0].params / 8).epsilon(1e-12));

  // Only meaningful for ZeRO-3 / FSDP.
  flat.layout.zero_stage = 1;
  const auto err = complete_and_check_layout(flat.model, flat.layout);
  REQUIRE(err);
  CHECK(err->find("zero_reshard_after_forward") != std::string::npos);
}
