#pragma once
// Operator-level simulation of one training iteration (issue 21). One representative device per
// pipeline stage (the busiest EP rank, as in the pass-level model) runs its schedule's passes in the
// schedule's order, each pass expanded into its layers' operators as engine tasks on the streams a
// framework uses: compute; TP collectives; EP dispatch/combine; CP exchange; PP send; DP gradient
// buckets and parameter gathers; host-device copies of swapped activations. Overlap is not a formula
// here: it is whatever the streams and the framework's dependencies let run at the same time.
// Per-op times come from sim/engine/op_timing (the same numbers the pass-level model sums).
#include <iosfwd>
#include <vector>

#include "sim/engine/engine.h"
#include "sim/engine/schedule.h"
#include "sim/engine/simulate.h"
#include "sim/engine/trace.h"

namespace moesim::sim {

// Which model predicts: the operator-level simulation (the default of simulate, validate and the
// sweep's finalists) or the pass-level model it starts from (--pass-level; the sweep's pre-screen).
enum class Level { op, pass };

// What one engine task of the operator-level run is, for the trace.
struct OpTaskLabel {
  const char* op = "";  // the graph op's name (static storage), or a fixed name ("dp grads", "optimizer", ...)
  PipelineTask pass;    // microbatch, chunk and pass it belongs to (unused for per-stage tasks)
  bool per_stage = false;  // DP sync and optimizer: not part of one pass
  int chunk_part = -1;     // which chunk of a chunked collective/GEMM pair, -1 when not chunked
  bool weight_gradient = false;  // the weight-gradient GEMM of `op`
};

struct OpLevelResult {
  // Iteration time, throughput and breakdown (of the critical stage) from the operator-level run;
  // parameters, FLOPs, memory and warnings as the pass-level model computes them.
  SimulationResult result;
  SimulationResult pass_level;  // the pass-level model's result it starts from (moesim --pass-level)
  Engine engine;  // every operator on its stream, after the run
  std::vector<OpTaskLabel> labels;  // index = the task's label
};

// Whether the operator-level run merges two passes of different microbatches on one compute stream
// (Megatron-Core's combined 1F1B: EP all-to-all overlap, without pipelining or with virtual stages).
bool combines_passes(const LayoutSpec& layout, int chunks_per_stage);

// A lower bound on simulate_op_level's iteration time from the pass-level result (the sweep's
// pre-screen for operator-level finalists, sim/search/op_finalists.h). See op_bound.cpp.
seconds op_level_lower_bound(const ModelSpec& model, const LayoutSpec& layout, const HardwareProfile& hw,
                             const SimulationResult& pass_level);

// `layout` must have passed complete_and_check_layout.
OpLevelResult simulate_op_level(const ModelSpec& model, const LayoutSpec& layout, const HardwareProfile& hw);

// Chrome/Perfetto trace: every operator on its stream, one process per stage, events named like
// "F3.c1 qkv_proj" (forward of microbatch 3, chunk 1).
void write_op_trace(std::ostream& out, const OpLevelResult& result);
// Those event names and categories, for a trace that holds the run beside other events.
TraceNames op_trace_names(const OpLevelResult& result);

}  // namespace moesim::sim
