#pragma once
// Architecture and layout sweeps: a JSON spec names a base model, hardware, a device count and axes
// over model hyperparameters and parallel layouts. Every model point (one element of the Cartesian
// product of the model axes, addressed by index) gets its best layout by the objective; points are
// evaluated in parallel and streamed as JSON lines in index order. The spec format is documented in
// sweeps/README.md.
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "costmodels/memory.h"
#include "costmodels/graph.h"
#include "costmodels/params.h"
#include "costmodels/specs.h"
#include "sim/io/launch_script.h"
#include "sim/engine/simulate.h"

namespace moesim::sweep {

using nlohmann::json;

enum class Objective { mfu, tokens_per_s, time_to_train, active_params_per_s };
const char* to_string(Objective o);
// time_to_train is minimised; the others are maximised.
bool better(Objective o, double a, double b);

// The model axes a spec may sweep, in canonical order: it fixes how point indices map to values.
extern const std::vector<std::string> model_axis_names;
// The model axes every ok results line carries (the attention axes only where a spec sweeps them).
extern const std::vector<std::string> model_result_names;

// One model hyperparameter and the values it takes, in sweep order.
struct ModelAxis {
  // layers | hidden | experts | top_k | expert_intermediate | shared_experts | heads | first_dense_layers |
  // sliding_window | full_attention_interval | expert_groups | index_topk
  std::string name;
  std::vector<int> values;
};

// Candidate values of each layout field. An empty list means "the default": the auto candidate set
// when the spec says "layout": "auto", else the single value of layout_fixed (or the layout default).
struct LayoutAxes {
  std::vector<int> tp, pp, vpp, ep, etp, cp, micro_batch;  // etp 0 stands for "= tp"
  std::vector<Recompute> recompute;
  std::vector<ScheduleKind> schedule;
  std::vector<bool> ep_overlap, tp_overlap, hierarchical_ep;
};

struct ParamRange {
  std::optional<double> min, max;
};

struct SweepSpec {
  std::string file;
  std::string base_model_name;
  ModelSpec base_model;
  HardwareProfile hw;
  int devices = 0;
  int seq_len = 0;
  int global_batch = 0;  // sequences: global_batch_tokens / seq_len
  std::vector<ModelAxis> model_axes;  // in the canonical axis order; the last varies fastest
  bool auto_layout = false;
  LayoutAxes layout_axes;
  LayoutSpec layout_base;  // layout_fixed + devices, global batch and sequence length
  // Whether layout_fixed set fields whose default otherwise follows other fields (etp = tp,
  // schedule from vpp, sequence parallelism when tp > 1).
  bool fixed_etp = false, fixed_schedule = false, fixed_sequence_parallel = false;
  ParamRange total_params, active_params;
  double memory_margin = 0;  // fraction of device memory that must stay free
  Objective objective = Objective::mfu;
  double train_tokens = 0;  // time_to_train only
};

// Checks the whole spec; errors are InputError naming the file and the field.
// With `base_model` (a launch script's model, sweep --from-script) the spec's base_model key may be absent.
SweepSpec parse_spec(const json& j, const std::string& file, const ModelSpec* base_model = nullptr);
SweepSpec load_spec(const std::string& path);

// Number of model points (product of the model axes' sizes; 1 when there are none).
std::uint64_t point_count(const SweepSpec& spec);
// The axis values of point `index` (mixed radix, last axis fastest).
std::vector<int> point_values(const SweepSpec& spec, std::uint64_t index);
// The base model with the point's values applied, or why that model cannot exist.
struct ModelOrError {
  std::optional<ModelSpec> model;
  std::string error;
};
ModelOrError point_model(const SweepSpec& spec, const std::vector<int>& values);

// Every layout of the candidate sets that passes complete_and_check_layout, in enumeration order.
struct Candidates {
  std::vector<LayoutSpec> valid;
  int invalid = 0;
  std::string first_error;  // why the first invalid candidate was rejected
};
Candidates candidate_layouts(const SweepSpec& spec, const ModelSpec& model);

// Lower bounds used to prune layouts before simulating them; each never exceeds what sim::simulate
// reports for the same layout.
// Weights, gradients and optimizer states of the fullest stage plus the framework reserve.
bytes static_memory_lower_bound(const ModelSpec& model, const LayoutSpec& layout, const HardwareProfile& hw);
// Executed FLOPs per device at the best matrix efficiency the profile allows.
seconds time_lower_bound(const ModelSpec& model, const LayoutSpec& layout, const HardwareProfile& hw);

// The same bounds for many layouts of one model. The op graphs depend on a layout only through its
// graph context, the layer split only through (pp, vpp, DualPipe, explicit split) and the model FLOPs
// only through (seq_len, recompute, flash attention), so each distinct value is built once and reused
// by the other layouts. `model` and `hw` must outlive it.
class PreScreen {
 public:
  PreScreen(const ModelSpec& model, const HardwareProfile& hw) : model_(model), hw_(hw) {}
  bytes static_memory_lower_bound(const LayoutSpec& layout);
  seconds time_lower_bound(const LayoutSpec& layout);

 private:
  struct FlopsKey {
    int seq_len;
    Recompute recompute;
    bool flash_attention;
    bool operator==(const FlopsKey&) const = default;
  };
  struct PlanKey {  // what partition_layers reads of a layout
    int pp, vpp;
    bool dualpipe;
    std::vector<int> pipeline_layers;
    bool operator==(const PlanKey&) const = default;
  };
  const ModelSpec& model_;
  const HardwareProfile& hw_;
  struct Graphs {  // one graph context's layer graphs and what stage_memory reads of them
    graph::GraphContext context;
    graph::ModelGraphs graphs;
    memory::OpWorkingSets working_sets;
  };
  std::vector<Graphs> graphs_;
  std::vector<std::pair<PlanKey, PipelinePlan>> plans_;
  std::vector<double> none_in_flight_;
  std::vector<std::pair<FlopsKey, graph::FlopsPerToken>> flops_;
};

struct EvalOptions {
  bool prune = true;  // false simulates every valid layout (to check that pruning loses nothing)
  // Adds to each fitting point's line "launch_args": the argument list that runs its best layout.
  std::optional<io::LaunchDialect> emit_args;
  // > 0: the N fastest fitting layouts by the pass-level model are re-simulated at operator level
  // (sim/search/op_finalists.h) and the fastest of them there is the point's best layout. `moesim
  // sweep` runs 1 by default (--pass-level: 0); the library's default stays 0 so that the tests of the
  // search's pruning and ordering run at the pass level, whose cost they measure.
  int op_level_finalists = 0;
};

struct PointResult {
  std::uint64_t index = 0;
  std::vector<int> values;
  std::optional<ModelSpec> model;
  ParamBreakdown params;
  std::string status = "infeasible";  // ok | infeasible | no_fit
  std::string reason;
  std::optional<LayoutSpec> layout;  // the best layout (status ok)
  double mfu = 0, tokens_per_s = 0, objective = 0;
  seconds iteration_time = 0;
  bytes peak_memory = 0;
  bool fits = false;
  seconds compute = 0, exposed_comm = 0, bubble = 0;
  sim::TimeBreakdown breakdown;           // of the best layout's critical stage, by kind (HTML report)
  memory::StageMemory peak_stage_memory;  // the best layout's fullest stage
  bytes capacity = 0;
  int layouts_evaluated = 0, layouts_pruned = 0, layouts_invalid = 0;
  int op_level_finalists = 0;             // layouts re-simulated at operator level (0: none)
  seconds pass_level_iteration_time = 0;  // with finalists: the pass-level time of the pass-level best
};

PointResult evaluate_point(const SweepSpec& spec, std::uint64_t index, const EvalOptions& options = {});
// The result line of point `index`; an evaluation that throws becomes an infeasible line naming the error.
json point_line(const SweepSpec& spec, std::uint64_t index, const EvalOptions& options = {});
// One result line (no wall-clock fields, so reruns produce identical bytes).
json result_json(const SweepSpec& spec, const PointResult& r);

// Keeps, in bounded memory, what the end-of-sweep report needs from the result lines: the top K by
// objective and the two Pareto fronts. The outcome does not depend on the order lines arrive in.
class Summary {
 public:
  Summary(Objective objective, int top_k);
  void add(const json& line);

  std::vector<json> ranked() const;              // best first, ties by index
  std::vector<json> pareto_mfu_active() const;   // maximise MFU and active params; by index
  std::vector<json> pareto_tokens_memory() const;  // maximise tokens/s, minimise peak memory; by index
  std::uint64_t ok = 0, infeasible = 0, no_fit = 0;

 private:
  Objective objective_;
  int top_k_;
  std::vector<json> top_;
  std::vector<json> front_mfu_, front_memory_;
};

struct RunOptions {
  int jobs = 1;
  std::string out_path;
  bool resume = false;
  int top_k = 10;
  EvalOptions eval;
  std::ostream* progress = nullptr;  // progress bar target (a terminal), or none
  // A shard (sweep --shard, sim/search/shard.h) evaluates only the points with index % shard_count ==
  // shard_index, and its part file starts with the line `header`, which resume requires unchanged.
  std::uint64_t shard_index = 0, shard_count = 1;
  std::string header;
};

struct RunStats {
  std::uint64_t points = 0, evaluated = 0, resumed = 0;
};

// Evaluates every point not already in the results file and appends its line in index order
// (with resume: keeps the complete lines already there, drops a truncated last line). Returns the
// summary over all lines of the file.
Summary run_sweep(const SweepSpec& spec, const RunOptions& options, RunStats* stats = nullptr);

// Opens options.out_path for run_sweep (and the MPI driver): truncated (then the header, if any), or
// with resume after its complete lines, whose indices go into `done` and whose results into `summary`.
std::ofstream open_results(const RunOptions& options, std::uint64_t points, Summary& summary, std::set<std::uint64_t>& done);

}  // namespace moesim::sweep
