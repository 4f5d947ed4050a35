#pragma once
// The operators of one layer graph as the operator-level simulation runs them: per op its forward,
// backward (input gradient plus the recomputed forward share) and weight-gradient times from
// op_timing (one table per layer graph and recompute policy, shared by every layer that has them),
// the stream class it runs on, and which collectives are chunked against the op they feed.
#include <deque>
#include <vector>

#include "costmodels/graph.h"
#include "costmodels/specs.h"
#include "sim/engine/op_timing.h"

namespace moesim::sim {

enum class OpLane { compute, tp, ep, cp };

struct OpStep {
  const char* name = "";
  OpLane lane = OpLane::compute;
  bool gemm = false;  // a matrix op (its backward splits into data and weight gradients)
  seconds forward = 0, backward = 0, weight = 0;
  // A collective chunked against the op at `partner` (the GEMM it feeds or is fed by, or the ring
  // attention core), in `chunks` pieces; -1 when it runs whole. The GEMM or attention op points back.
  int partner = -1;
  int chunks = 1;
  // With a partner: the collective's chunk i comes before the partner's chunk i in the forward order
  // (all-gather before the GEMM it feeds) ...
  bool comm_first_forward = false;
  // ... and in the backward order (the mirrored collective: reduce-scatter of the data gradient after
  // the GEMM; ring attention exchanges K, V and their gradients before each block in both passes).
  bool comm_first_backward = false;
};

struct LayerTable {
  const graph::LayerGraph* graph = nullptr;
  Recompute policy = Recompute::none;
  std::vector<OpStep> steps;  // forward order
  // Host issue (eager ops) and device compute of one layer, forward and backward: a pass lasts at least
  // the host time of its layers (see simulate.cpp apply_overlap), and a layer that syncs with the host
  // (dropless MoE token counts) at least its own.
  bool host_syncs = false;
  bool ep_collectives = false;  // any step on the EP lane (dispatch, combine)
  LayerIssue issue;
};

// One table per (layer graph, recompute policy), built on first use.
class LayerTables {
 public:
  LayerTables(const LayoutSpec& l, const HardwareProfile& hw, double imbalance) : l_(l), hw_(hw), timings_(l, hw, imbalance) {}
  const LayerTable& of(const graph::LayerGraph& g, Recompute policy);

 private:
  const LayoutSpec& l_;
  const HardwareProfile& hw_;
  OpTimings timings_;
  std::deque<LayerTable> tables_;  // references stay valid as tables are added
};

}  // namespace moesim::sim
