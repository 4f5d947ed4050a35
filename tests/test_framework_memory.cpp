// Memory settings that differ between training frameworks and recipes: how the loss is computed
// (layout cross_entropy), Adam moments in bf16 (adam_moments), DTensor sequence parallelism's saved
// gathered inputs, a TP-replicated embedding, and whether FP8 training keeps FP8 copies of the linear
// layers' inputs for backward (fp8_cached_inputs). Counted by hand from the shapes.
#include <catch2/catch.hpp>

#include "tests/support.h"

#include <string>
#include <utility>

#include "costmodels/graph.h"
#include "costmodels/layout.h"
#include "costmodels/memory.h"
#include "sim/io/specs_io.h"
#include "sim/engine/simulate.h"

using namespace moesim;

namespace {

using test::graphs_of;
using test::op_named;

}  // namespace

TEST_CASE("cross entropy: saved and live bytes of the loss per implementation", "[memory][loss]") {
  const ModelSpec m = io::load_model("llama3-8b");
  LayoutSpec l = test::make_layout(8, 1, 1, 1, 8, 8192);
  REQUIRE_FALSE(complete_and_check_layout(m, l));
  const double logits = 8192.0 * m.vocab;  // one sequence, no TP
  struct Case {
    CrossEntropy kind;
    double saved, live;  // bytes per logit
  };
  // in_place: fp32 softmax saved, the caller's bf16 logits beside it. fused: the bf16 logits saved
  // and overwritten by the gradient. pytorch: fp32 log-probs saved; two fp32 gradients and the cached
  // bf16 block beside them.
  for (const Case c : {Case{CrossEntropy::in_place, 4, 2}, Case{CrossEntropy::fused, 2, 0}, Case{CrossEntropy::pytorch, 4, 10}}) {
    CAPTURE(static_cast<int>(c.kind));
    l.cross_entropy = c.kind;
    const graph::ModelGraphs g = graphs_of(m, l);
    const graph::Op& ce = op_named(g.lm_head, "cross_entropy");
    CHECK(ce.saved_bytes == Approx(c.saved * logits).epsilon(1e-12));
    CHECK(ce.working_bytes == Approx(c.live * logits).epsilon(1e-12));
  }
  // Under TP 8 the logits are vocab-sharded, and the pytorch loss runs through DTensor's loss_parallel,
  // whose backward holds a third fp32 tensor: 14 bytes per local logit beside the log-probs.
  LayoutSpec tp8 = test::make_layout(8, 8, 1, 1, 8, 8192);
  tp8.etp = 8;
  tp8.cross_entropy = CrossEntropy::pytorch;
  REQUIRE_FALSE(complete_and_check_layout(m, tp8));
  const graph::ModelGraphs tp8_graphs = graphs_of(m, tp8);
  const graph::Op& sharded = op_named(tp8_graphs.lm_head, "cross_entropy");
  CHECK(sharded.saved_bytes == Approx(4 * logits / 8).epsilon(1e-12));
  CHECK(sharded.working_bytes == Approx(14 * logits / 8).epsilon(1e-12));
}

TEST_CASE("cross entropy: the fused kernel makes three bf16 passes over the logits, the others three fp32 passes",
          "[memory][loss]") {
  // The same implementation setting drives the loss's memory and its time.
  const ModelSpec model = io::load_model("llama3-8b");
  LayoutSpec layout = test::make_layout(8, 1, 1, 1, 8, 8192);
  REQUIRE_FALSE(complete_and_check_layout(model, layout));
  const HardwareProfile hw = io::load_profile("h100-sxm");
  const auto loss = [&](CrossEntropy ce) {
    layout.cross_entropy = ce;
    const auto graphs = graph::build_model_graphs(model, graph::make_context(model, layout));
    for (const auto& row : sim::cost_layer_ops(graphs.lm_head, layout, hw, 1.0))
      if (std::string(row.op->name) == "cross_entropy") return std::pair{row.op->hbm_bytes, row.forward};
    FAIL("no cross_entropy op");
    return std::pair{0.0, 0.0};
  };
  const double logits = 8192.0 * 128256;
  const auto [fused_bytes, fused_time] = loss(CrossEntropy::fused);
  const auto [in_place_bytes, in_place_time] = loss(CrossEntropy::in_place);
  CHECK(fused_bytes == Approx(logits * 2 * 3));
  CHECK(in_place_bytes == Approx(logits * 12));
  CHECK(loss(CrossEntropy::pytorch).first == Approx(logits * 12));
  CHECK(fused_time < in_place_time / 1.8);  // memory-bound: half the bytes, plus the launch overhead
}

TEST_CASE("cross entropy: the loss phase sets the last stage's buffers and no other stage's", "[memory][loss]") {
  // Llama 3 8B over two stages with a 128K vocabulary: the pytorch loss of one 8192-token microbatch
  // keeps 10 B per logit beside its saved log-probs (10.5 GB), more than any decoder op.
  test::Run run{io::load_model("llama3-8b"), test::make_layout(16, 1, 2, 1, 16, 8192), io::load_profile("h100-sxm")};
  run.layout.cross_entropy = CrossEntropy::pytorch;
  const auto r = test::simulate(run).memory;
  REQUIRE(r.size() == 2);
  const double logits = 8192.0 * run.model.vocab;
  const double p2p = 2 * 8192.0 * run.model.hidden * 2;  // send and receive buffers of one microbatch
  CHECK(r[1].buffers == Approx(10 * logits + p2p).epsilon(1e-12));
  CHECK(r[0].buffers < 0.5 * r[1].buffers);
  // The in-place loss needs less on the last stage and changes nothing on the first.
  run.layout.cross_entropy = CrossEntropy::in_place;
  const auto in_place = test::simulate(run).memory;
  CHECK(in_place[1].total() < r[1].total());
  CHECK(in_place[0].total() == r[0].total());
}

TEST_CASE("adam_moments bf16: 8 optimizer bytes per parameter instead of 12", "[memory][optimizer]") {
  test::Run run{io::load_model("mixtral-8x7b"), test::make_layout(64, 2, 4, 8, 256, 4096), io::load_profile("h100-sxm")};
  const auto fp32 = test::simulate(run);
  run.layout.adam_moment_bytes = 2;
  const auto bf16 = test::simulate(run);
  REQUIRE(fp32.memory.size() == bf16.memory.size());
  for (std::size_t s = 0; s < fp32.memory.size(); ++s) {
    CAPTURE(s);
    CHECK(bf16.memory[s].optimizer == Approx(fp32.memory[s].optimizer * 8 / 12).epsilon(1e-12));
    CHECK(bf16.memory[s].weights == fp32.memory[s].weights);
    CHECK(bf16.memory[s].gradients == fp32.memory[s].gradients);
  }
  // The optimizer step moves fewer bytes too: 22 instead of 30 per local parameter.
  CHECK(bf16.breakdown.optimizer < fp32.breakdown.optimizer);
}

TEST_CASE("fp8_cached_inputs: FP8 training saves the linear layers' inputs in one byte, the output head's in two",
          "[memory][fp8]") {
  const ModelSpec m = io::load_model("mixtral-8x7b");
  LayoutSpec l = test::make_layout(64, 2, 4, 8, 256, 4096);
  REQUIRE_FALSE(complete_and_check_layout(m, l));
  const graph::ModelGraphs bf16 = graphs_of(m, l);
  l.precision = Precision::fp8;
  const graph::ModelGraphs cached = graphs_of(m, l);
  l.fp8_cached_inputs = false;
  const graph::ModelGraphs requantised = graphs_of(m, l);
  for (const char* linear : {"qkv_proj", "attn_out_proj", "expert_fc1", "expert_fc2"}) {
    CAPTURE(linear);
    CHECK(op_named(cached.moe, linear).saved_bytes == Approx(op_named(bf16.moe, linear).saved_bytes / 2).epsilon(1e-12));
    CHECK(op_named(requantised.moe, linear).saved_bytes == op_named(bf16.moe, linear).saved_bytes);
  }
  // What stays bf16: the activation function's input, the unpermute, the router and the output head.
  for (const char* kept : {"expert_act", "unpermute", "router"})
    CHECK(op_named(cached.moe, kept).saved_bytes == op_named(bf16.moe, kept).saved_bytes);
  CHECK(op_named(cached.lm_head, "lm_head").saved_bytes == op_named(bf16.lm_head, "lm_head").saved_bytes);
  CHECK(cached.moe.saved_bytes(Recompute::none) < bf16.moe.saved_bytes(Recompute::none));
}

TEST_CASE("main_grads bf16: half the gradient bytes, in memory and in the DP reduce-scatter", "[memory][optimizer]") {
  // Megatron-Core grad_reduce_in_fp32 = False (Megatron-Bridge's FP8 recipes): the main_grad buffer is bf16.
  test::Run run{io::load_model("llama3-70b"), test::make_layout(64, 4, 2, 1, 512, 8192), io::load_profile("h100-sxm")};
  const auto fp32 = test::simulate(run);
  run.layout.main_grad_bytes = 2;
  const auto bf16 = test::simulate(run);
  REQUIRE(fp32.memory.size() == bf16.memory.size());
  for (std::size_t s = 0; s < fp32.memory.size(); ++s) {
    CAPTURE(s);
    CHECK(bf16.memory[s].gradients == Approx(fp32.memory[s].gradients / 2).epsilon(1e-12));
    CHECK(bf16.memory[s].optimizer == fp32.memory[s].optimizer);
    CHECK(bf16.memory[s].weights == fp32.memory[s].weights);
  }
  CHECK(bf16.breakdown.optimizer < fp32.breakdown.optimizer);  // 28 instead of 30 bytes per local parameter
  // With the reduce-scatter not hidden, the exposed DP time is the collective itself: half the bytes.
  run.layout.overlap.dp_grad_reduce = false;
  run.layout.overlap.dp_param_gather = false;
  const double dp_bf16 = test::simulate(run).breakdown.exposed_dp;
  run.layout.main_grad_bytes = 4;
  const double dp_fp32 = test::simulate(run).breakdown.exposed_dp;
  CHECK(dp_bf16 < dp_fp32);
}

TEST_CASE("layout cross_entropy, adam_moments and fp8_cached_inputs parse; wrong values name the field", "[io][memory]") {
  const auto layout = [](const char* field, nlohmann::json value) {
    return nlohmann::json{{"devices", 8}, {"global_batch", 8}, {field, value}};
  };
  CHECK(io::parse_layout(layout("cross_entropy", "fused"), "l.json").cross_entropy == CrossEntropy::fused);
  CHECK(io::parse_layout(layout("cross_entropy", "pytorch"), "l.json").cross_entropy == CrossEntropy::pytorch);
  CHECK(io::parse_layout(layout("devices", 8), "l.json").cross_entropy == CrossEntropy::in_place);
  CHECK(io::parse_layout(layout("adam_moments", "bf16"), "l.json").adam_moment_bytes == 2);
  CHECK(io::parse_layout(layout("devices", 8), "l.json").adam_moment_bytes == 4);
  CHECK(io::parse_layout(layout("main_grads", "bf16"), "l.json").main_grad_bytes == 2);
  CHECK(io::parse_layout(layout("devices", 8), "l.json").main_grad_bytes == 4);
  CHECK_FALSE(io::parse_layout(layout("fp8_cached_inputs", false), "l.json").fp8_cached_inputs);
  for (const auto& field_and_value : {std::pair<const char*, nlohmann::json>{"cross_entropy", "te"},
                                       {"adam_moments", "fp16"},
                                       {"main_grads", "fp8"},
                                       {"fp8_cached_inputs", "yes"}}) {
    const char* field = field_and_value.first;  // named, not a structured binding: lambdas capture it
    const nlohmann::json& bad = field_and_value.second;
    CAPTURE(field);
    const std::string msg = test::input_error([&] { io::parse_layout(layout(field, bad), "l.json"); });
    test::check_names(msg, "l.json", field);
  }
}

TEST_CASE("recompute_modules: each Megatron-Core module drops what it rebuilds and reruns its ops", "[memory][recompute]") {
  // DeepSeek-V3 (MLA, MoE with 3 dense layers) under selective recompute, one module at a time.
  const ModelSpec m = io::load_model("deepseek-v3-671b");
  LayoutSpec l = test::make_layout(256, 1, 8, 32, 2048, 4096);
  l.recompute = Recompute::selective;
  REQUIRE_FALSE(complete_and_check_layout(m, l));
  const graph::ModelGraphs core_attn = graphs_of(m, l);  // the default module: nothing to drop with fused attention
  CHECK(core_attn.moe.saved_bytes(Recompute::selective) == core_attn.moe.saved_bytes(Recompute::none));
  const auto with = [&](RecomputeModule module) {
    l.recompute_modules = static_cast<unsigned>(module);
    return graphs_of(m, l);
  };
  const auto dropped = [](const graph::LayerGraph& g, std::initializer_list<const char*> names) {
    bytes total = 0;
    for (const char* name : names) total += op_named(g, name).saved_bytes;
    return total;
  };
  const auto check = [&](const graph::LayerGraph& g, std::initializer_list<const char*> freed, std::initializer_list<const char*> rerun) {
    CHECK(g.saved_bytes(Recompute::none) - g.saved_bytes(Recompute::selective) == Approx(dropped(g, freed)).epsilon(1e-12));
    flops expected = 0;
    for (const char* name : rerun) expected += op_named(g, name).flop_count;
    CHECK(g.recompute_flops(Recompute::selective) == Approx(expected).epsilon(1e-12));
  };
  {
    INFO("mla_up_proj: Q, K, V are not kept; the up-projections and RoPE run again");
    const auto g = with(RecomputeModule::mla_up_proj);
    check(g.moe, {"attention_core"}, {"q_up_proj", "kv_up_proj", "rope"});
    CHECK(op_named(g.moe, "attention_core").saved_bytes > 0);
  }
  {
    INFO("layernorm: MLA's input norm and the MoE pre-MLP norm keep no output for the next GEMM");
    const auto g = with(RecomputeModule::layernorm);
    check(g.moe, {"q_down_proj", "kv_down_proj", "router"}, {"attn_norm", "moe_norm"});
  }
  {
    INFO("moe_act: expert fc2's input is not kept; the activation runs again");
    const auto g = with(RecomputeModule::moe_act);
    check(g.moe, {"expert_fc2"}, {"expert_act"});
    CHECK(g.dense.saved_bytes(Recompute::selective) == g.dense.saved_bytes(Recompute::none));
  }
  {
    INFO("mlp: a dense layer's MLP keeps only its input; MoE layers are not affected");
    const auto g = with(RecomputeModule::mlp);
    check(g.dense, {"mlp_act", "mlp_fc2"}, {"mlp_fc1", "mlp_act", "mlp_fc2"});
    CHECK(g.moe.saved_bytes(Recompute::selective) == g.moe.saved_bytes(Recompute::none));
  }
  // Together they free the sum and the simulated stage memory falls.
  test::Run run{m, l, io::load_profile("b200")};
  run.layout.recompute_modules = static_cast<unsigned>(RecomputeModule::core_attn);
  const auto before = test::simulate(run);
  run.layout.recompute_modules = static_cast<unsigned>(RecomputeModule::mla_up_proj) | static_cast<unsigned>(RecomputeModule::mlp);
  const auto after = test::simulate(run);
  CHECK(after.memory[1].activations < 0.8 * before.memory[1].activations);
  CHECK(after.iteration_time > before.iteration_time);
}

TEST_CASE("layout recompute_modules parses with selective only; unknown or unmodelled modules name the field", "[io][recompute]") {
  const auto layout = [](const char* recompute, nlohmann::json modules) {
    return nlohmann::json{{"devices", 8}, {"global_batch", 8}, {"recompute", recompute}, {"recompute_modules", modules}};
  };
  const LayoutSpec l = io::parse_layout(layout("selective", {"moe_act", "layernorm"}), "l.json");
  CHECK(l.recompute_modules == (static_cast<unsigned>(RecomputeModule::moe_act) | static_cast<unsigned>(RecomputeModule::layernorm)));
  CHECK(io::recompute_module_names(l.recompute_modules) == std::vector<std::string>{"layernorm", "moe_act"});
  CHECK(io::parse_layout(nlohmann::json{{"devices", 8}, {"global_batch", 8}}, "l.json").recompute_modules ==
        static_cast<unsigned>(RecomputeModule::core_attn));
  for (const auto& bad : {layout("full", {"mlp"}), layout("selective", {"moe"}), layout("selective", nlohmann::json::array()),
                          layout("selective", "mlp"), layout("selective", {"mlp", 3})}) {
    CAPTURE(bad.dump());
    const std::string msg = test::input_error([&] { io::parse_layout(bad, "l.json"); });
    test::check_names(msg, "l.json", "recompute_modules");
  }
}

TEST_CASE("distribute_saved_activations: each TP rank keeps 1/tp of every full-recompute checkpoint", "[memory][recompute]") {
  // Megatron-LM's CheckpointFunction splits the checkpointed layer input over the TP group and gathers
  // it before the rerun; PaLM keeps its one "fully sharded" tensor per layer the same way. One stage of
  // 32 dense layers, one microbatch in flight, TP 8 without sequence parallelism.
  test::Run run{io::load_model("llama3-8b"), test::make_layout(8, 8, 1, 1, 1, 4096), io::load_profile("h100-sxm")};
  run.layout.sequence_parallel = false;
  run.layout.recompute = Recompute::full;
  test::Run split = run;
  split.layout.distribute_saved_activations = true;
  const sim::SimulationResult whole = test::simulate(run), sharded = test::simulate(split);
  const graph::ModelGraphs g = graph::build_model_graphs(run.model, graph::make_context(run.model, run.layout));
  const bytes checkpoint = g.decoder(run.model, 0).saved_bytes(Recompute::full);
  REQUIRE(checkpoint > 0);
  REQUIRE(whole.memory.size() == 1);
  CHECK(whole.memory[0].activations - sharded.memory[0].activations ==
        Approx(run.model.layers * checkpoint * (1 - 1.0 / 8)).epsilon(1e-12));
  // Weights, gradients, optimizer and the rerun's transient buffers are untouched.
  CHECK(sharded.memory[0].weights == whole.memory[0].weights);
  CHECK(sharded.memory[0].buffers == whole.memory[0].buffers);
  CHECK(sharded.iteration_time == whole.iteration_time);
}

TEST_CASE("layout distribute_saved_activations parses only with full recompute, TP and no sequence parallelism", "[io][recompute]") {
  const auto layout = [](const char* recompute, bool sp) {
    return nlohmann::json{{"devices", 8},          {"tp", 8},   {"global_batch", 8}, {"recompute", recompute},
                          {"sequence_parallel", sp}, {"distribute_saved_activations", true}};
  };
  CHECK(io::parse_layout(layout("full", false), "l.json").distribute_saved_activations);
  CHECK_FALSE(io::parse_layout(nlohmann::json{{"devices", 8}, {"global_batch", 8}}, "l.json").distribute_saved_activations);
  for (const auto& bad : {layout("full", true), layout("selective", false), layout("none", false)}) {
    CAPTURE(bad.dump());
    const std::string msg = test::input_error([&] { io::parse_layout(bad, "l.json"); });
    test::check_names(msg, "l.json", "distribute_saved_activations");
  }
}

TEST_CASE("master_weights false: pure bf16 training keeps 2 + 2 + 4 bytes per parameter", "[memory]") {
  // KempnerForge casts the model to bf16 before FSDP2: bf16 parameters, gradients and AdamW moments,
  // no fp32 master copy. With bf16 gradients and moments the optimizer keeps 4 B/param instead of 8.
  test::Run run{io::load_model("llama3-8b"), test::make_layout(8, 1, 1, 1, 8, 4096), io::load_profile("h200")};
  run.layout.main_grad_bytes = 2;
  run.layout.adam_moment_bytes = 2;
  test::Run pure = run;
  pure.layout.master_weights = false;
  CHECK(memory::optimizer_bytes_per_param(run.layout) == 8);
  CHECK(memory::optimizer_bytes_per_param(pure.layout) == 4);
  const auto with = test::simulate(run).memory, without = test::simulate(pure).memory;
  REQUIRE(with.size() == 1);
  CHECK(without[0].optimizer == Approx(with[0].optimizer / 2).epsilon(1e-12));
  CHECK(without[0].weights == with[0].weights);
  CHECK(without[0].gradients == with[0].gradients);
}

TEST_CASE("cross_entropy pytorch_bf16 and loss_parallel false: the loss phase on whole-vocabulary bf16 logits", "[memory]") {
  test::Run run{io::load_model("llama3-8b"), test::make_layout(8, 4, 1, 1, 2, 4096), io::load_profile("h200")};
  run.layout.cross_entropy = CrossEntropy::pytorch_bf16;
  const double tokens = 4096, vocab = 128256;
  // Vocab-parallel: each of 4 ranks saves its shard of bf16 log-probs, two bf16 gradients beside them.
  const graph::ModelGraphs sharded = graphs_of(run.model, run.layout);
  const graph::Op& sharded_loss = op_named(sharded.lm_head, "cross_entropy");
  CHECK(sharded_loss.saved_bytes == Approx(tokens * vocab / 4 * 2).epsilon(1e-12));
  CHECK(sharded_loss.working_bytes == Approx(tokens * vocab / 4 * 4).epsilon(1e-12));
  // Gathered logits: the whole vocabulary on every rank, after one all-gather of the logits over TP.
  run.layout.loss_parallel = false;
  const graph::ModelGraphs whole = graphs_of(run.model, run.layout);
  CHECK(op_named(whole.lm_head, "cross_entropy").saved_bytes == Approx(4 * sharded_loss.saved_bytes).epsilon(1e-12));
  CHECK(op_named(whole.lm_head, "head_logits_all_gather").collective.buffer == Approx(tokens * vocab * 2).epsilon(1e-12));
  const std::string msg = test::input_error(
      [] { io::parse_layout(nlohmann::json{{"devices", 8}, {"global_batch", 8}, {"cross_entropy", "bf16"}}, "l.json"); });
  test::check_names(msg, "l.json", "cross_entropy");
}

TEST_CASE("zero_no_sync: FSDP2 accumulation without sync keeps the unsharded fp32 gradients", "[memory]") {
  // 8 ranks of FSDP, 4 microbatches each: with sync every backward reduce-scatters its gradients to the
  // 1/8 shard; without sync the whole stage's gradients stay unsharded in fp32 until the last one.
  test::Run run{io::load_model("llama3-8b"), test::make_layout(8, 1, 1, 1, 32, 4096), io::load_profile("h200")};
  run.layout.zero_stage = 3;
  run.layout.main_grad_bytes = 2;
  test::Run deferred = run;
  deferred.layout.zero_no_sync = true;
  const sim::SimulationResult synced = test::simulate(run), unsynced = test::simulate(deferred);
  LayoutSpec completed = run.layout;
  REQUIRE_FALSE(complete_and_check_layout(run.model, completed));
  REQUIRE(completed.microbatches() == 4);
  CHECK(synced.memory[0].gradients == Approx(2.0 * synced.memory[0].params / 8).epsilon(1e-12));
  CHECK(unsynced.memory[0].gradients == Approx(4.0 * synced.memory[0].params).epsilon(1e-12));
  CHECK(unsynced.memory[0].optimizer == synced.memory[0].optimizer);
  const std::string msg = test::input_error(
      [] { io::parse_layout(nlohmann::json{{"devices", 8}, {"global_batch", 8}, {"zero_no_sync", true}}, "l.json"); });
  test::check_names(msg, "l.json", "zero_no_sync");
}

TEST_CASE("sp_saves_gathered_inputs: DTensor sequence parallelism keeps the all-gathered GEMM inputs", "[memory]") {
  const ModelSpec m = io::load_model("llama3-8b");
  LayoutSpec megatron = test::make_layout(8, 4, 1, 1, 8, 4096);
  megatron.sequence_parallel = true;
  REQUIRE_FALSE(complete_and_check_layout(m, megatron));
  LayoutSpec dtensor = megatron;
  dtensor.sp_saves_gathered_inputs = true;
  const graph::ModelGraphs sharded = graphs_of(m, megatron), gathered = graphs_of(m, dtensor);
  // Megatron keeps each rank's 1/4 of the T x h input; DTensor keeps the whole gathered input.
  const double tokens = static_cast<double>(megatron.micro_batch) * 4096;
  for (const char* name : {"qkv_proj", "mlp_fc1"}) {
    CAPTURE(name);
    CHECK(op_named(sharded.dense, name).saved_bytes == Approx(tokens / 4 * m.hidden * 2).epsilon(1e-12));
    CHECK(op_named(gathered.dense, name).saved_bytes == Approx(tokens * m.hidden * 2).epsilon(1e-12));
  }
  CHECK(op_named(gathered.lm_head, "lm_head").saved_bytes ==
        Approx(4 * op_named(sharded.lm_head, "lm_head").saved_bytes).epsilon(1e-12));
  // Inputs the TP group does not gather (the norms', the row-parallel GEMMs') stay as they were.
  CHECK(op_named(gathered.dense, "mlp_fc2").saved_bytes == op_named(sharded.dense, "mlp_fc2").saved_bytes);
  const std::string msg = test::input_error([] {
    io::parse_layout(nlohmann::json{{"devices", 8},
                                    {"global_batch", 8},
                                    {"tp", 2},
                                    {"sequence_parallel", false},
                                    {"sp_saves_gathered_inputs", true}},
                     "l.json");
  });
  test::check_names(msg, "l.json", "sp_saves_gathered_inputs");
}

TEST_CASE("embedding_tp_replicated: every TP rank holds the whole token embedding", "[memory]") {
  const ModelSpec m = io::load_model("llama3-8b");
  LayoutSpec split = test::make_layout(8, 4, 1, 1, 8, 4096);
  REQUIRE_FALSE(complete_and_check_layout(m, split));
  LayoutSpec replicated = split;
  replicated.embedding_tp_replicated = true;
  ChunkContent first;
  first.embedding = true;
  CHECK(memory::chunk_params(m, split, first).dense == Approx(m.vocab * m.hidden / 4).epsilon(1e-12));
  CHECK(memory::chunk_params(m, replicated, first).dense == Approx(m.vocab * m.hidden).epsilon(1e-12));
  // The output head stays vocab-split: only the embedding's placement differs.
  ChunkContent last;
  last.lm_head = true;
  CHECK(memory::chunk_params(m, replicated, last).dense == memory::chunk_params(m, split, last).dense);
}
