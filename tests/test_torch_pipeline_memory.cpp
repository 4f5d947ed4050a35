// Buffers of torch.distributed.pipelining (layout pipeline_runtime "torch") and of torch's
// context_parallel all-gather ring attention (layout cp_kv_all_gather), counted by hand from the
// Llama 3.1 405B shapes of torchtitan's Tables 5 and 6.
#include <catch2/catch.hpp>

#include "tests/support.h"

#include "costmodels/graph.h"
#include "sim/io/specs_io.h"

using namespace moesim;

namespace {

test::Run torchtitan_405b(int global_batch, int micro_batch, int seq_len, int cp) {
  test::Run run{io::load_model("llama3-405b"), test::make_layout(512, 8, 8, 1, global_batch, seq_len),
                io::load_profile("h100-sxm")};
  run.layout.cp = cp;
  run.layout.micro_batch = micro_batch;
  run.layout.zero_stage = 3;
  run.layout.zero_reshard_after_forward = false;
  run.layout.recompute = Recompute::full;
  run.layout.cross_entropy = CrossEntropy::pytorch;
  return run;
}

}  // namespace

TEST_CASE("torch pipelining holds per-microbatch receive buffers, input gradients, stage outputs and logits",
          "[memory][pipeline]") {
  // Table 5 1F1B: FSDP 8 x TP 8 x PP 8, 8 microbatches of 4 x 8192 tokens.
  test::Run run = torchtitan_405b(256, 4, 8192, 1);
  const auto megatron = test::simulate(run);
  run.layout.pipeline_runtime = PipelineRuntime::torch;
  const auto torch = test::simulate(run);
  REQUIRE(torch.memory.size() == 8);
  const double n = 8;
  const double hidden = 4 * 8192 / 8 * run.model.hidden * 2.0;  // bf16, sequence-split over TP 8
  const double logits = 4 * 8192 * (run.model.vocab / 8.0) * 2;  // bf16, vocabulary-split (loss_parallel)
  const double megatron_p2p = 2 * hidden;
  for (int s = 0; s < 8; ++s) {
    CAPTURE(s);
    const double in_flight = 8 - s;  // 1F1B
    double expected = 0;
    if (s > 0) expected += 2 * (n - in_flight) * hidden;  // receive buffers beyond those in flight, input grads
    if (s < 7) expected += (n + in_flight) * hidden;      // gradient-receive buffers, outputs in fwd_cache
    if (s == 7) expected += (n - 1) * logits;             // output_chunks
    CHECK(torch.memory[s].buffers - megatron.memory[s].buffers == Approx(expected - megatron_p2p).epsilon(1e-9));
    CHECK(torch.memory[s].activations == megatron.memory[s].activations);
  }
  // The last stage keeps 7 earlier microbatches' logits, 7.4 GB.
  CHECK((n - 1) * logits == Approx(7.36e9).epsilon(0.01));
  // Memory only: the same iteration time.
  CHECK(torch.iteration_time == megatron.iteration_time);
}

TEST_CASE("torch context_parallel's all-gather ring attention grows with the CP group", "[memory][cp]") {
  // Table 6 shape: 32768 tokens per device per microbatch, CP 2 and CP 8.
  const auto attention_working = [](int cp, bool all_gather) {
    test::Run run = torchtitan_405b(8, 1, 32768 * cp, cp);
    run.layout.cp_kv_all_gather = all_gather;
    graph::GraphContext ctx = graph::make_context(run.model, run.layout);
    const graph::LayerGraph g = graph::build_layer(run.model, ctx, graph::LayerKind::dense);
    return test::op_named(g, "attention_core").working_bytes;
  };
  const double T = 32768, heads = 128 / 8, d = 128;
  const double kv = T * heads * 2 * d;  // K and V with the KV heads repeated to the query heads
  for (int cp : {2, 8}) {
    CAPTURE(cp);
    const double extra = cp * kv * 2 + (T * heads * d + kv) * 4 + 2 * kv * 4;
    CHECK(attention_working(cp, true) - attention_working(cp, false) == Approx(extra).epsilon(1e-12));
  }
  CHECK(attention_working(8, true) - attention_working(2, true) == Approx(6 * kv * 2).epsilon(1e-12));
}

TEST_CASE("pipeline_runtime and cp_kv_all_gather parse; misuse names the field", "[io][pipeline]") {
  const auto layout = [](nlohmann::json extra) {
    nlohmann::json l{{"devices", 16}, {"global_batch", 16}, {"pp", 2}, {"cp", 2}};
    l.update(extra);
    return l;
  };
  CHECK(io::parse_layout(layout({{"pipeline_runtime", "torch"}}), "l.json").pipeline_runtime == PipelineRuntime::torch);
  CHECK(io::parse_layout(layout(nlohmann::json::object()), "l.json").pipeline_runtime == PipelineRuntime::megatron);
  CHECK(io::parse_layout(layout({{"cp_kv_all_gather", true}}), "l.json").cp_kv_all_gather);
  std::string msg = test::input_error([&] { io::parse_layout(layout({{"pipeline_runtime", "deepspeed"}}), "l.json"); });
  test::check_names(msg, "l.json", "pipeline_runtime");
  msg = test::input_error([&] { io::parse_layout(layout({{"pp", 1}, {"pipeline_runtime", "torch"}}), "l.json"); });
  test::check_names(msg, "l.json", "pipeline_runtime");
  msg = test::input_error([&] { io::parse_layout(layout({{"cp", 1}, {"cp_kv_all_gather", true}}), "l.json"); });
  test::check_names(msg, "l.json", "cp_kv_all_gather");
}
