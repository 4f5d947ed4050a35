// costmodels/fp8_cast: Transformer Engine's FP8 quantisation of each linear layer's input, output
// gradient and weight as an op of its own before the GEMM, its bytes by recipe, and what it does to the
// FP8 speed-up of a fine-grained MoE run (Qwen3-30B-A3B on 32 H100, the moe_recipes FP8 blockwise row).
#include <catch2/catch.hpp>

#include "tests/support.h"

#include <nlohmann/json.hpp>

#include "costmodels/fp8_cast.h"
#include "sim/engine/op_timing.h"
#include "sim/io/specs_io.h"

using namespace moesim;
using graph::Fp8Operand;

namespace {

// The layout of validation/published_runs.json's mcore-moe-recipe-qwen3_30b-h100-fp8_32gpu_tp1pp1ep8
// (TP1 PP1 EP8, MBS 1, GBS 256, sequence 4096, FP8 blockwise), in the precision asked for.
LayoutSpec qwen3_30b_layout(bool fp8) {
  nlohmann::json l = {{"devices", 32},       {"tp", 1},          {"pp", 1},
                      {"ep", 8},             {"etp", 1},         {"micro_batch", 1},
                      {"global_batch", 256}, {"seq_len", 4096},  {"recompute", "none"},
                      {"cuda_graphs", "partial"}, {"cross_entropy", "fused"}, {"adam_moments", "bf16"},
                      {"overlap",
                       {{"ep_all_to_all", false}, {"tp_comm", false}, {"dp_grad_reduce", true}, {"dp_param_gather", true}}},
                      {"precision", fp8 ? "fp8" : "bf16"}};
  if (fp8) l["fp8_recipe"] = "blockwise";
  return io::parse_layout(l, "qwen3_30b.json");
}

}  // namespace

TEST_CASE("fp8 cast bytes per element follow each recipe's copies, scales and amax pass", "[fp8][graph]") {
  // Read 2 B of bf16, write 1 B per FP8 copy (two on TN-only Hopper, one for tensor scaling on Blackwell).
  CHECK(graph::fp8_cast_bytes(Fp8Recipe::delayed, Fp8Operand::input, false) == 4.0);
  CHECK(graph::fp8_cast_bytes(Fp8Recipe::delayed, Fp8Operand::input, true) == 3.0);
  // Current scaling: one more bf16 read for the amax, unless the norm computed it.
  CHECK(graph::fp8_cast_bytes(Fp8Recipe::tensorwise, Fp8Operand::gradient, false) == 6.0);
  CHECK(graph::fp8_cast_bytes(Fp8Recipe::tensorwise, Fp8Operand::input, true) == 5.0);
  CHECK(graph::fp8_cast_bytes(Fp8Recipe::tensorwise, Fp8Operand::input, false, true) == 4.0);
  // Delayed scaling's LayerNormLinear: the norm writes FP8 (1 B saved), the transpose reads and writes 1 B.
  CHECK(graph::fp8_cast_bytes(Fp8Recipe::delayed, Fp8Operand::input, false, true) == 1.0);
  CHECK(graph::fp8_cast_bytes(Fp8Recipe::delayed, Fp8Operand::input, true, true) == 0.0);
  // Block scaling: both copies always, with a 4-byte scale per 128 (weights per 128 x 128), or E8M0 per 32.
  CHECK(graph::fp8_cast_bytes(Fp8Recipe::blockwise, Fp8Operand::input, false) == Approx(2 + 2 * (1 + 4.0 / 128)));
  CHECK(graph::fp8_cast_bytes(Fp8Recipe::blockwise, Fp8Operand::weight, false) == Approx(2 + 2 * (1 + 4.0 / 16384)));
  CHECK(graph::fp8_cast_bytes(Fp8Recipe::mxfp8, Fp8Operand::gradient, true) == Approx(2 + 2 * (1 + 1.0 / 32)));
}

TEST_CASE("fp8 casts: each TE linear's cast op precedes its GEMM with the input, weight and gradient bytes", "[fp8][graph]") {
  const ModelSpec m = io::load_model("qwen3-30b-a3b");
  const HardwareProfile hw = io::load_profile("h100-sxm");
  LayoutSpec l = qwen3_30b_layout(true);
  REQUIRE_FALSE(complete_and_check_layout(m, l));
  const graph::ModelGraphs g = graph::build_model_graphs(m, graph::make_context(m, l, hw.device));
  const double T = 4096, h = m.hidden, k = m.moe->top_k, w = m.moe->expert_intermediate;
  const double local_experts = m.moe->experts / 8.0, microbatches = 256 / 32;
  const double act = 2 + 2 * (1 + 4.0 / 128), weight = 2 + 2 * (1 + 4.0 / (128 * 128));
  // expert_fc1: T k routed rows of h in, 2w out (SwiGLU gate and up), local_experts weights of h x 2w.
  const graph::Op& fc1 = test::op_named(g.moe, "expert_fc1_fp8_cast");
  CHECK(fc1.hbm_bytes == Approx(T * k * h * act + local_experts * h * 2 * w * weight / microbatches));
  REQUIRE(fc1.backward_hbm_bytes);
  CHECK(*fc1.backward_hbm_bytes == Approx(T * k * 2 * w * act));
  CHECK(fc1.scales_with_imbalance);
  const graph::Op& fc2 = test::op_named(g.moe, "expert_fc2_fp8_cast");
  CHECK(fc2.hbm_bytes == Approx(T * k * w * act + local_experts * w * h * weight / microbatches));
  CHECK(*fc2.backward_hbm_bytes == Approx(T * k * h * act));
  // Each cast comes right before its GEMM; the router and the output head stay in BF16 (no cast).
  for (std::size_t i = 0; i + 1 < g.moe.forward.size(); ++i)
    if (g.moe.forward[i + 1].fp8_cast != graph::Fp8Cast::none)
      CHECK(std::string(g.moe.forward[i].name) == std::string(g.moe.forward[i + 1].name) + "_fp8_cast");
  const LayoutSpec bf16 = qwen3_30b_layout(false);
  CHECK(g.moe.forward.size() == graph::build_model_graphs(m, graph::make_context(m, bf16, hw.device)).moe.forward.size() + 4);
  for (const graph::Op& op : g.lm_head.forward) CHECK(op.fp8_cast == graph::Fp8Cast::none);
  // The backward cast is timed on its own bytes at the HBM roofline. TE's split_quantize casts each local
  // expert's rows with a kernel of its own, so the experts' casts pay a launch each, forward and backward;
  // under full-iteration CUDA graphs the graph-safe path casts all experts in one kernel.
  CHECK(fc1.per_expert_kernels == local_experts);
  CHECK(test::op_named(g.moe, "qkv_proj_fp8_cast").per_expert_kernels == 1);
  // Delayed scaling with both copies (Hopper) casts all experts in one fused multi-tensor kernel.
  LayoutSpec delayed = l;
  delayed.fp8_recipe = Fp8Recipe::delayed;
  const graph::ModelGraphs gd = graph::build_model_graphs(m, graph::make_context(m, delayed, hw.device));
  CHECK(test::op_named(gd.moe, "expert_fc1_fp8_cast").per_expert_kernels == 1);
  const sim::OpTiming t = sim::time_op(fc1, l, hw, 1.0);
  const seconds launches = (local_experts - 1) * hw.device.launch_overhead;
  CHECK(t.backward_input == Approx(compute::vector_time(0, *fc1.backward_hbm_bytes, hw.device).time + launches));
  LayoutSpec graphed = l;
  graphed.cuda_graphs = CudaGraphs::full;
  const sim::OpTiming g_t = sim::time_op(fc1, graphed, hw, 1.0);
  CHECK(g_t.backward_input == Approx(compute::vector_time(0, *fc1.backward_hbm_bytes, hw.device).time));
  CHECK(t.forward - g_t.forward == Approx(launches));
  // Hardware without an FP8 rate above BF16 runs the GEMMs in BF16: no casts.
  HardwareProfile no_fp8 = hw;
  no_fp8.device.matrix_fp8 = 0;
  for (const graph::Op& op : graph::build_model_graphs(m, graph::make_context(m, l, no_fp8.device)).moe.forward)
    CHECK(std::string(op.name).find("fp8_cast") == std::string::npos);
}

TEST_CASE("fp8_recipe parses only with fp8 and names its field when wrong", "[fp8][io]") {
  nlohmann::json l = {{"devices", 8}, {"global_batch", 8}, {"precision", "fp8"}};
  CHECK(io::parse_layout(l, "l.json").fp8_recipe == Fp8Recipe::delayed);  // Megatron-Core's default
  l["fp8_recipe"] = "mxfp8";
  CHECK(io::parse_layout(l, "l.json").fp8_recipe == Fp8Recipe::mxfp8);
  l["fp8_recipe"] = "nvfp4";
  test::check_names(test::input_error([&] { io::parse_layout(l, "l.json"); }), "l.json", "fp8_recipe");
  l["fp8_recipe"] = "blockwise";
  l["precision"] = "bf16";
  test::check_names(test::input_error([&] { io::parse_layout(l, "l.json"); }), "l.json", "fp8_recipe");
}

TEST_CASE("fp8 blockwise on H100: qwen3_30b gains over BF16 only what its GEMMs gain less the casts", "[fp8][simulate]") {
  // The moe_recipes row measures FP8 blockwise at 232.4 and BF16 at 234.1 TFLOP/s/GPU on this layout.
  const ModelSpec m = io::load_model("qwen3-30b-a3b");
  const HardwareProfile hw = io::load_profile("h100-sxm");
  test::Run fp8{m, qwen3_30b_layout(true), hw}, bf16{m, qwen3_30b_layout(false), hw};
  const sim::SimulationResult r8 = test::simulate(fp8), r16 = test::simulate(bf16);
  // The mechanism per layer and microbatch: the FP8 GEMMs' time saved against the casts' time.
  const auto layer_time = [&](const test::Run& run, bool moe, bool casts) {
    LayoutSpec l = run.layout;
    REQUIRE_FALSE(complete_and_check_layout(m, l));
    const graph::ModelGraphs graphs = graph::build_model_graphs(m, graph::make_context(m, l, hw.device));
    seconds total = 0;
    for (const graph::Op& op : (moe ? graphs.moe : graphs.lm_head).forward) {
      const bool cast = std::string(op.name).find("_fp8_cast") != std::string::npos;
      if (op.kind == graph::OpKind::collective || cast != casts) continue;
      const sim::OpTiming t = sim::time_op(op, l, hw, 1.0);
      total += t.forward + t.backward_input + t.backward_weight;
    }
    return total;
  };
  const seconds gemm_gain = layer_time(bf16, true, false) - layer_time(fp8, true, false);
  const seconds casts = layer_time(fp8, true, true);
  CHECK(casts > 0.4 * gemm_gain);  // the casts take back over 40% of what the MoE layer's FP8 GEMMs save
  // The output head, which the simulator times at the FP8 rate too (op_timing.cpp), has no cast.
  const seconds head_gain = layer_time(bf16, false, false) - layer_time(fp8, false, false);
  const double layers = m.layers, microbatches = 256 / 32;
  const seconds mechanism = microbatches * (layers * (gemm_gain - casts) + head_gain);
  // The iteration gains at most what the mechanism gives (the casts' host issue in the eager part of the
  // layer takes some of it), and the FP8 run is predicted less than 4% faster than the BF16 one on the same
  // layout (measured: 0.7% slower). Without the casts it would be 13%; with them at tensor-scaled FP8's GEMM
  // rate and one cast kernel for all experts, 7.9% (before issue 25's block-scaled rate and per-expert casts).
  const seconds gained = r16.iteration_time - r8.iteration_time;
  CHECK(gained <= mechanism);
  CHECK(gained >= 0.85 * mechanism);
  CHECK(r16.iteration_time / r8.iteration_time < 1.04);
}
