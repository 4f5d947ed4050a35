#include "sim/engine/op_layers.h"

namespace moesim::sim {

using graph::GroupKind;
using graph::Op;
using graph::OpKind;

namespace {

OpLane lane_of(const Op& op) {
  if (op.kind != OpKind::collective) return OpLane::compute;
  switch (comm_class(op)) {
    case GroupKind::ep: return OpLane::ep;
    case GroupKind::cp: return OpLane::cp;
    default: return OpLane::tp;
  }
}

bool is_gemm(const Op& op) { return op.kind == OpKind::gemm || op.kind == OpKind::grouped_gemm; }

// TP overlap: Megatron-LM's userbuffers (Transformer Engine ub_overlap_ag / ub_overlap_rs) and Ascend
// MC2 (all_gather_matmul, matmul_reduce_scatter) split the sequence-parallel all-gather into the
// column-parallel GEMM it feeds, and the row-parallel GEMM into the reduce-scatter of its output, in
// one piece per TP rank (TE's ring exchange sends one rank's chunk per step; MC2 tiles per rank).
// Both run over the scale-up fabric only: userbuffers map NVLink peer memory, MC2 takes a
// communicator of 2, 4 or 8 ranks of one HCCS node (mindspore.ops.all_gather_matmul: "world_size ...
// supporting 2, 4, and 8"). A TP group that leaves the innermost tier keeps its blocking collective.
void pair_tp_collectives(const graph::LayerGraph& g, const std::vector<OpTiming>& t, const LayoutSpec& l,
                         std::vector<OpStep>& steps) {
  if (!l.overlap.tp_comm) return;
  const int n = static_cast<int>(steps.size());
  for (int i = 0; i < n; ++i) {
    const Op& op = g.forward[i];
    if (op.kind != OpKind::collective || op.collective.group != GroupKind::tp || t[i].tier > 0) continue;
    const bool gather = op.collective.kind == comm::CollectiveKind::all_gather;
    const int j = gather ? i + 1 : i - 1;  // all-gather feeds the next GEMM; reduce-scatter takes the previous one's output
    if (j < 0 || j >= n || !is_gemm(g.forward[j]) || steps[j].partner != -1) continue;
    steps[i].partner = j;
    steps[j].partner = i;
    steps[i].chunks = steps[j].chunks = l.tp;
    steps[i].comm_first_forward = gather;
    steps[i].comm_first_backward = !gather;
  }
}

// Ring attention (Liu et al. 2023; Megatron-Core context parallelism): cp - 1 steps, each sending the
// next K, V block while the attention of the current block runs, forward and backward alike. Each CP
// collective pairs with the next attention op not yet paired (DSA: the index keys with the indexer's
// scores, the latent entries with the core).
void pair_cp_exchange(const graph::LayerGraph& g, std::vector<OpStep>& steps, int cp) {
  const int n = static_cast<int>(steps.size());
  for (int i = 0; i < n; ++i) {
    if (steps[i].lane != OpLane::cp) continue;
    for (int j = i + 1; j < n; ++j) {
      if (g.forward[j].kind != OpKind::attention || steps[j].partner != -1) continue;
      steps[i].partner = j;
      steps[j].partner = i;
      steps[i].chunks = steps[j].chunks = cp;
      steps[i].comm_first_forward = steps[i].comm_first_backward = true;
      break;
    }
  }
}

}  // namespace

const LayerTable& LayerTables::of(const graph::LayerGraph& g, Recompute policy) {
  for (const LayerTable& t : tables_)
    if (t.graph == &g && t.policy == policy) return t;
  LayerTable table;
  table.graph = &g;
  table.policy = policy;
  table.host_syncs = g.host_syncs();
  const std::vector<OpTiming>& times = timings_.of(g);
  // The recomputed share of the forward runs again at the start of the backward (LayerIssue: host issue).
  for (std::size_t i = 0; i < g.forward.size(); ++i) {
    const Op& op = g.forward[i];
    const OpTiming& t = times[i];
    const double rerun = g.rerun_fraction(op, policy);
    OpStep s;
    s.name = op.name;
    s.lane = lane_of(op);
    s.gemm = is_gemm(op);
    s.forward = t.forward;
    s.backward = t.backward_input + rerun * t.forward;
    s.weight = t.backward_weight;
    table.issue.add(op, t, rerun, l_.cuda_graphs, hw_.device);
    table.ep_collectives = table.ep_collectives || s.lane == OpLane::ep;
    table.steps.push_back(s);
  }
  pair_tp_collectives(g, times, l_, table.steps);
  if (l_.cp > 1) pair_cp_exchange(g, table.steps, l_.cp);
  return tables_.emplace_back(std::move(table));
}

}  // namespace moesim::sim
