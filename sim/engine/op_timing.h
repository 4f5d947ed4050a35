#pragma once
// Time of one operator of the layer graph on the layout and hardware: the one source of per-op times
// that both the pass-level model (simulate.cpp) and the operator-level simulation (op_sim.cpp) sum.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "costmodels/comm.h"
#include "costmodels/compute.h"
#include "costmodels/graph.h"
#include "costmodels/memory.h"
#include "costmodels/specs.h"

namespace moesim::sim {

// Where a parallel group's ranks sit: size and stride in the rank order.
comm::GroupPlacement placement(graph::GroupKind g, const LayoutSpec& l);

struct OpTiming {
  seconds forward = 0, backward_input = 0, backward_weight = 0;
  compute::Bound bound = compute::Bound::compute;
  double efficiency = 0;
  std::string algorithm;
  int tier = -1;  // collectives: innermost tier holding the group (-1: local, 0: the scale-up domain)
};

OpTiming time_op(const graph::Op& op, const LayoutSpec& l, const HardwareProfile& hw, double imbalance);

// Host time to issue one eager op's forward: host_op_overhead, plus host_expert_call_overhead for each
// further per-expert call of a grouped op (its experts' GEMMs; a cast's per-expert quantize calls). The
// backward issues two such passes (data and weight gradients), as the callers count.
seconds host_issue_time(const graph::Op& op, const DeviceSpec& d);

// Host issue time (eager ops) and device compute of one layer, forward and backward, summed per op in
// forward order: the one count both the pass level (simulate.cpp accumulate_layer) and the operator level
// (op_layers.cpp LayerTables) take. An op issues once forward and twice backward (data and weight
// gradients) plus its recomputed share; partial CUDA graphs leave the ops from the EP dispatch on eager
// (Megatron-Core's TE graph scopes attn, moe_router, moe_preprocess).
class LayerIssue {
 public:
  // Adds the layer's next op; `rerun`: the share of its forward recompute runs again in the backward.
  void add(const graph::Op& op, const OpTiming& t, double rerun, CudaGraphs graphs, const DeviceSpec& d);
  seconds host_forward() const { return host_forward_; }
  seconds host_backward() const { return host_backward_; }
  seconds compute_forward() const { return compute_forward_; }
  seconds compute_backward() const { return compute_backward_; }
  // A dropless MoE layer's forward stops the host at its token counts (Megatron-Core: TEGroupedMLP.forward
  // reads tokens_per_expert.tolist() for the grouped GEMM's m_splits; the HybridEP dispatcher without a
  // static budget sizes its output from tokens_per_expert.sum(), token_dispatcher.py _HybridEPManager):
  // the ops before the first grouped GEMM and the ops from it on each last at least their own host issue
  // time, so the device waits max(0, host - compute) of each part.
  seconds forward_host_wait() const {
    return std::max(0.0, (host_forward_ - host_forward_synced_) - (compute_forward_ - compute_forward_synced_)) +
           std::max(0.0, host_forward_synced_ - compute_forward_synced_);
  }
  // The backward reuses the forward's counts (GroupedLinear keeps ctx.m_splits) and does not sync again:
  // the device waits only where the whole backward's issue outlasts its compute.
  seconds backward_host_wait() const { return std::max(0.0, host_backward_ - compute_backward_); }

 private:
  bool dynamic_shapes_ = false, synced_ = false;  // past the first EP collective; the first grouped GEMM
  seconds host_forward_ = 0, host_backward_ = 0, compute_forward_ = 0, compute_backward_ = 0;
  // The forward's share from the first grouped GEMM on (host issue and compute).
  seconds host_forward_synced_ = 0, compute_forward_synced_ = 0;
};

// The communication class a collective's time is reported under: tp (TP, DP, PP groups), ep (EP,
// ETP) or cp.
graph::GroupKind comm_class(const graph::Op& op);

// Slowdown of compute beside the flex dispatcher's EP kernels (LayoutSpec::ep_dispatch_sms): a compute-bound
// kernel left with U - S of the device's U SMs takes U / (U - S) of its time, a slowdown of S / (U - S)
// (24 of B200's 148 SMs: 0.19). 0 without the flex dispatcher or where compute_units is not given; throws
// std::invalid_argument when the dispatch would hold every SM.
double flex_dispatch_slowdown(const LayoutSpec& l, const DeviceSpec& d);

// An op's time depends only on the op, the layout, the hardware and the imbalance, all fixed within
// one simulation, yet every layer graph is summed once per chunk: each graph's op times are computed
// on first use and reused by the other chunks.
class OpTimings {
 public:
  OpTimings(const LayoutSpec& l, const HardwareProfile& hw, double imbalance) : l_(l), hw_(hw), imbalance_(imbalance) {}
  const std::vector<OpTiming>& of(const graph::LayerGraph& g);

 private:
  const LayoutSpec& l_;
  const HardwareProfile& hw_;
  double imbalance_;
  std::vector<std::pair<const graph::LayerGraph*, std::vector<OpTiming>>> cache_;
};

// Activations of one microbatch between adjacent stages (bf16, SP-sharded over TP); 0 with one stage.
seconds p2p_time(const LayoutSpec& l, const HardwareProfile& hw, const graph::ModelGraphs& graphs);

// Data-parallel sync of one stage's parameters (ZeRO stages below 3): the gradient reduction and,
// with a distributed optimizer, the parameter all-gather, dense and expert parameters apart.
struct DpSync {
  seconds dense_grads = 0, dense_gather = 0, expert_grads = 0, expert_gather = 0;
  seconds grads() const { return dense_grads + expert_grads; }
  seconds gather() const { return dense_gather + expert_gather; }
};
DpSync dp_sync_times(const memory::DeviceParams& p, const LayoutSpec& l, const HardwareProfile& hw);

// ZeRO-3 / FSDP parameter gathers and gradient reduce-scatters of one stage left exposed per iteration,
// given the forward and backward compute they may hide behind (see op_timing.cpp for the sources).
seconds zero3_exposed_time(const memory::DeviceParams& p, comm::GroupPlacement dp_group, comm::GroupPlacement edp_group,
                           const LayoutSpec& l, const HardwareProfile& hw, seconds forward_window, seconds backward_window);

// Optimizer step of one stage (and the host copies of swapped optimizer states).
seconds optimizer_step_time(const memory::DeviceParams& p, const LayoutSpec& l, const HardwareProfile& hw);

}  // namespace moesim::sim
