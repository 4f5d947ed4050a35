#pragma once
// One training iteration: model + layout + hardware -> operator graph -> op costs -> pipeline events ->
// time, MFU and memory. One representative device per pipeline stage is simulated (the ranks of a
// stage are alike up to expert imbalance, which the busiest EP rank carries), so a 6K-device run costs
// no more than a 16-stage one.
#include <string>
#include <vector>

#include "costmodels/graph.h"
#include "costmodels/layout.h"
#include "costmodels/memory.h"
#include "costmodels/params.h"
#include "costmodels/specs.h"
#include "sim/engine/pipeline.h"

namespace moesim::sim {

// Where one pass's time goes (per microbatch, per chunk).
struct PassCost {
  seconds compute = 0;     // matrix + vector + attention kernels, slowed by overlapped collectives;
                           // at least the host issue time of the pass's eager ops
  seconds tp = 0, ep = 0, cp = 0;  // communication time before overlap
  seconds exposed_tp = 0, exposed_ep = 0, exposed_cp = 0;
  seconds exposed_swap = 0;  // activation offload/fetch over the host link not hidden by compute
  // What the operator-level run puts on the compute stream at the least: compute without the slowdown
  // of overlapped collectives (and with the host issue floor), plus the TP collectives that block it
  // (all without TP overlap, those outside the scale-up domain with it). See op_level_lower_bound.
  seconds compute_stream = 0;
  // EP all-to-all that an unpaired pass's chain of ops runs between its compute: all but the EP of its
  // first and last layer (where it may lead or trail the pass's compute), bounded by twice the most any
  // one layer has.
  seconds ep_between_compute = 0;
  seconds total() const { return compute + exposed_tp + exposed_ep + exposed_cp + exposed_swap; }
};

struct ChunkCost {
  PassCost forward, backward, backward_weight;  // backward_weight: the W part that ZB schedules split off
  seconds recompute = 0;                        // forward rerun inside backward (part of backward.compute)
};

struct TimeBreakdown {
  seconds compute = 0;
  seconds exposed_tp = 0, exposed_ep = 0, exposed_cp = 0, exposed_pp = 0, exposed_dp = 0;
  seconds exposed_swap = 0;
  seconds bubble = 0;
  seconds optimizer = 0;
};

struct SimulationResult {
  ParamBreakdown params;
  graph::FlopsPerToken flops_per_token;  // model FLOPs (PaLM convention, no causal halving)
  flops hardware_flops_per_token = 0;    // + recomputation (HFU)
  seconds iteration_time = 0;
  double tokens_per_iteration = 0;
  double tokens_per_s = 0;  // whole job
  double mfu = 0, hfu = 0;
  double tflops_per_device = 0;  // model TFLOP/s per device
  // MFU divides by the BF16 peak, as the published runs do, so FP8 training can pass 1: its ceiling is
  // the layout precision's matrix peak over the BF16 peak (1 in BF16, 2 for FP8 on Hopper).
  double mfu_ceiling = 1;
  TimeBreakdown breakdown;       // of the critical (slowest) stage
  int critical_stage = 0;
  std::vector<double> stage_busy_fraction;
  double bubble_fraction = 0;
  double imbalance = 1.0;        // max/mean expert load of the busiest EP rank
  std::vector<memory::StageMemory> memory;
  bytes peak_memory = 0, capacity = 0;
  bool fits = true;
  std::vector<std::string> warnings;
  PipelinePlan plan;
  std::vector<ChunkCost> chunk_costs;  // index stage * chunks + chunk
  PipelineResult pipeline;             // the event timeline, for traces
};

// Cost of every op of a layer on the layout (forward and backward), for `moesim ops`.
struct OpCostRow {
  const graph::Op* op = nullptr;
  seconds forward = 0, backward = 0;
  std::string bound;  // compute | memory | latency | tier name for collectives
  double efficiency = 0;
  std::string algorithm;
};
std::vector<OpCostRow> cost_layer_ops(const graph::LayerGraph& layer, const LayoutSpec& layout,
                                      const HardwareProfile& hw, double imbalance);

// Tokens per second, MFU, HFU and TFLOP/s per device from r.iteration_time (and the FLOP counts).
void set_throughput(SimulationResult& r, const LayoutSpec& layout, const HardwareProfile& hw);

// `layout` must have passed complete_and_check_layout.
SimulationResult simulate(const ModelSpec& model, const LayoutSpec& layout, const HardwareProfile& hw);

}  // namespace moesim::sim
