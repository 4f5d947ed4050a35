// Speed of moesim's core (Google Benchmark): model arithmetic and memory, one layer's op graph, one
// simulated iteration of the two reference runs, the Pangu sweep end to end, and how one simulation
// scales with microbatches, pipeline stages and layers. scripts/bench builds Release and runs it.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <stdexcept>
#include <string>

#include "costmodels/graph.h"
#include "costmodels/layout.h"
#include "costmodels/memory.h"
#include "costmodels/params.h"
#include "sim/search/allocator.h"
#include "sim/io/json_reader.h"
#include "sim/io/specs_io.h"
#include "sim/engine/op_sim.h"
#include "sim/engine/pipeline.h"
#include "sim/engine/simulate.h"
#include "sim/search/sweep.h"

namespace moesim {
namespace {

struct Configuration {
  ModelSpec model;
  LayoutSpec layout;
  HardwareProfile hw;
};

LayoutSpec checked(const ModelSpec& model, const io::json& fields, const std::string& what) {
  LayoutSpec layout = io::parse_layout(fields, what);
  if (auto err = complete_and_check_layout(model, layout)) throw std::runtime_error(what + ": " + *err);
  return layout;
}

// Pangu Ultra MoE on 6144 Ascend NPUs as published (TP8 PP16 VPP2 EP32, micro-batch 2, DP 48), with
// the global batch set so that each pipeline runs `microbatches` microbatches (16 as published).
Configuration pangu(int microbatches = 16) {
  Configuration c{io::load_model("pangu-ultra-moe-718b"), {}, io::load_profile("ascend-910b2")};
  io::json j = io::read_json_file(MOESIM_SOURCE_DIR "/validation/layouts/pangu-ultra-moe-6k.json");
  j["global_batch"] = 48 * 2 * microbatches;
  c.layout = checked(c.model, j, "pangu layout");
  return c;
}

// DeepSeek-V3 on 2048 H800s with DualPipe, the README's example (PP16 EP64, 120 microbatches).
Configuration deepseek() {
  Configuration c{io::load_model("deepseek-v3-671b"), {}, io::load_profile("h800")};
  const io::json j = {{"devices", 2048}, {"pp", 16},           {"ep", 64},           {"tp", 1},
                      {"global_batch", 15360}, {"seq_len", 4096}, {"schedule", "dualpipe"}, {"precision", "fp8"}};
  c.layout = checked(c.model, j, "deepseek layout");
  return c;
}

Configuration configuration(int which) { return which == 0 ? pangu() : deepseek(); }
const char* configuration_name(int which) { return which == 0 ? "pangu_6k" : "deepseek_v3_2k"; }

// Parameter counts, model FLOPs, the layer split and per-stage memory (as in a pre-screen, no timing).
void BM_ModelArithmeticAndMemory(benchmark::State& state) {
  const Configuration c = configuration(static_cast<int>(state.range(0)));
  state.SetLabel(configuration_name(static_cast<int>(state.range(0))));
  for (auto _ : state) {
    benchmark::DoNotOptimize(count_params(c.model));
    benchmark::DoNotOptimize(graph::model_flops_per_token(c.model, c.layout.seq_len, c.layout.recompute));
    const PipelinePlan plan = partition_layers(c.model, c.layout);
    const graph::ModelGraphs graphs = graph::build_model_graphs(c.model, graph::make_context(c.model, c.layout));
    const std::vector<double> one_in_flight(plan.stages, 1.0);
    benchmark::DoNotOptimize(memory::stage_memory(c.model, c.layout, plan, graphs, c.hw, one_in_flight, 1.0));
  }
}
BENCHMARK(BM_ModelArithmeticAndMemory)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// One MoE layer: build its op graph and cost every op forward and backward.
void BM_LayerOpGraph(benchmark::State& state) {
  const Configuration c = configuration(static_cast<int>(state.range(0)));
  state.SetLabel(configuration_name(static_cast<int>(state.range(0))));
  for (auto _ : state) {
    const graph::LayerGraph layer = graph::build_layer(c.model, graph::make_context(c.model, c.layout), graph::LayerKind::moe);
    benchmark::DoNotOptimize(sim::cost_layer_ops(layer, c.layout, c.hw, 1.0));
  }
}
BENCHMARK(BM_LayerOpGraph)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

void simulate_loop(benchmark::State& state, const Configuration& c) {
  int tasks = 0;
  for (auto _ : state) {
    const sim::SimulationResult r = sim::simulate(c.model, c.layout, c.hw);
    tasks = r.pipeline.engine.task_count();
    benchmark::DoNotOptimize(r.iteration_time);
  }
  state.counters["tasks"] = tasks;
  state.counters["ns/task"] = benchmark::Counter(static_cast<double>(tasks) * state.iterations(),
                                                 benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// A full pass-level iteration (the model the sweep pre-screens with and `--pass-level` reports, and that
// the operator level starts from): op graphs, op costs, the discrete-event pipeline of passes, memory
// and the report numbers.
void BM_SimulatePangu6k(benchmark::State& state) { simulate_loop(state, pangu(static_cast<int>(state.range(0)))); }
BENCHMARK(BM_SimulatePangu6k)->ArgName("microbatches")->Arg(16)->Arg(64)->Unit(benchmark::kMillisecond);

void BM_SimulateDeepSeekV3DualPipe(benchmark::State& state) { simulate_loop(state, deepseek()); }
BENCHMARK(BM_SimulateDeepSeekV3DualPipe)->Unit(benchmark::kMillisecond);

// One operator-level iteration (sim/engine/op_sim.h), the prediction of `moesim simulate`: every op of
// every pass on its stream, 16 stages, with the pass-level simulation it starts from; the issue-21
// target is 20 ms on the Pangu 6K layout.
// Its scaling with microbatches shows the cost per task staying flat (linear in events).
void BM_OpLevelPangu6k(benchmark::State& state) {
  const Configuration c = pangu(static_cast<int>(state.range(0)));
  int tasks = 0;
  for (auto _ : state) {
    const sim::OpLevelResult r = sim::simulate_op_level(c.model, c.layout, c.hw);
    tasks = r.engine.task_count();
    benchmark::DoNotOptimize(r.result.iteration_time);
  }
  state.counters["tasks"] = tasks;
  state.counters["ns/task"] = benchmark::Counter(static_cast<double>(tasks) * state.iterations(),
                                                 benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_OpLevelPangu6k)->ArgName("microbatches")->RangeMultiplier(2)->Range(16, 128)->Unit(benchmark::kMillisecond);

// Scaling of one full simulation with microbatches (16..256, Pangu 6K layout) ...
void BM_ScalingMicrobatches(benchmark::State& state) { simulate_loop(state, pangu(static_cast<int>(state.range(0)))); }
BENCHMARK(BM_ScalingMicrobatches)->ArgName("microbatches")->RangeMultiplier(2)->Range(16, 256)->Unit(benchmark::kMillisecond);

// ... with layers (op-graph costing is per chunk, so depth should cost nothing) ...
void BM_ScalingLayers(benchmark::State& state) {
  Configuration c = pangu();
  c.model.layers = static_cast<int>(state.range(0));
  c.layout = checked(c.model, io::read_json_file(MOESIM_SOURCE_DIR "/validation/layouts/pangu-ultra-moe-6k.json"), "pangu layout");
  simulate_loop(state, c);
}
BENCHMARK(BM_ScalingLayers)->ArgName("layers")->Arg(32)->Arg(61)->Arg(122)->Arg(244)->Unit(benchmark::kMillisecond);

// ... and with pipeline stages x microbatches on the event engine alone (interleaved, 2 chunks).
void BM_ScalingStages(benchmark::State& state) {
  const int stages = static_cast<int>(state.range(0)), microbatches = static_cast<int>(state.range(1));
  const sim::PipelineSpec spec =
      sim::PipelineSpec::uniform(ScheduleKind::interleaved, stages, microbatches, 2, {1e-3, 2e-3, 0});
  int tasks = 0;
  for (auto _ : state) {
    const sim::PipelineResult r = sim::simulate_pipeline(spec);
    tasks = r.engine.task_count();
    benchmark::DoNotOptimize(r.makespan);
  }
  state.counters["tasks"] = tasks;
  state.counters["ns/task"] = benchmark::Counter(static_cast<double>(tasks) * state.iterations(),
                                                 benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_ScalingStages)->ArgNames({"stages", "microbatches"})->ArgsProduct({{4, 8, 16, 32, 64}, {64, 256}})
    ->Unit(benchmark::kMicrosecond);

// The analytic pre-screen (static memory lower bound and time lower bound) of every candidate
// layout of one model point of the Pangu sweep, as evaluate_point runs it: one PreScreen per point.
void BM_PreScreen(benchmark::State& state) {
  const sweep::SweepSpec spec = sweep::load_spec(MOESIM_SOURCE_DIR "/sweeps/pangu-ultra-moe.json");
  const Configuration c = pangu();
  const sweep::Candidates candidates = sweep::candidate_layouts(spec, c.model);
  for (auto _ : state) {
    sweep::PreScreen prescreen(c.model, spec.hw);
    for (const LayoutSpec& l : candidates.valid) {
      benchmark::DoNotOptimize(prescreen.static_memory_lower_bound(l));
      benchmark::DoNotOptimize(prescreen.time_lower_bound(l));
    }
  }
  state.counters["layouts"] = static_cast<double>(candidates.valid.size());
  state.counters["layouts/s"] = benchmark::Counter(static_cast<double>(state.iterations() * candidates.valid.size()),
                                                   benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PreScreen)->Unit(benchmark::kMicrosecond);

// sweeps/pangu-ultra-moe.json end to end (results written to a temporary file), with and without
// the pre-screen, on 1 and 2 worker threads, as `moesim sweep` runs it: each point's best layout
// simulated at operator level (one finalist, then every layout whose bound could still win).
void BM_SweepPangu(benchmark::State& state) {
  const sweep::SweepSpec spec = sweep::load_spec(MOESIM_SOURCE_DIR "/sweeps/pangu-ultra-moe.json");
  sweep::RunOptions options;
  options.jobs = static_cast<int>(state.range(0));
  options.eval.prune = state.range(1) != 0;
  options.eval.op_level_finalists = 1;
  options.out_path = (std::filesystem::temp_directory_path() / "moesim-bench-sweep.jsonl").string();
  std::uint64_t points = 0;
  for (auto _ : state) {
    sweep::RunStats stats;
    sweep::run_sweep(spec, options, &stats);
    points = stats.points;
  }
  std::filesystem::remove(options.out_path);
  state.counters["points/s"] =
      benchmark::Counter(static_cast<double>(points * state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SweepPangu)->ArgNames({"jobs", "prescreen"})->ArgsProduct({{1, 2}, {1, 0}})->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace moesim

int main(int argc, char** argv) {
  // As the moesim CLI does (see sim/search/allocator.h), so the benchmarks time what the CLI runs.
  moesim::sim::keep_freed_memory_for_reuse();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
