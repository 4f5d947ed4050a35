#include "sim/engine/simulate.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "costmodels/comm.h"
#include "costmodels/compute.h"
#include "costmodels/imbalance.h"
#include "sim/engine/op_timing.h"

namespace moesim::sim {

namespace {

using graph::GroupKind;
using graph::Op;
using graph::OpKind;

// Per-layer sums of one pass, before overlap rules.
struct RawPass {
  seconds compute = 0, gemm = 0, attention = 0;
  seconds host = 0;  // CPU time to issue the pass's eager (not graph-captured) ops the host may run ahead on
  // Layers whose host issue stops at a device-to-host sync: their compute, and the host time by which
  // each such layer's issue outlasts its own compute (the device waits for it).
  seconds synced_compute = 0, host_stall = 0;
  seconds tp = 0, ep = 0, cp = 0;
  // The TP collectives inside the innermost tier (the scale-up domain: NVLink, HCCS, UB), the only ones
  // TP overlap can hide: NVIDIA's userbuffers run over NVLink peer memory, and Ascend's MC2 fused
  // operators take a communicator of 2, 4 or 8 ranks of one HCCS node (mindspore.ops.all_gather_matmul
  // and matmul_reduce_scatter, "world_size ... supporting 2, 4, and 8").
  seconds tp_scale_up = 0;
  seconds layer_ep = 0;  // the most EP communication one layer of the pass has
  void add_comm(GroupKind g, seconds s, bool in_scale_up_domain) {
    if (g == GroupKind::ep) ep += s;
    else if (g == GroupKind::cp) cp += s;
    else {
      tp += s;
      if (in_scale_up_domain) tp_scale_up += s;
    }
  }
};

// Overlap rules. Each hides communication behind compute that can run at the same time, and charges
// the hidden time's compute slowdown where collectives run on compute cores (Ascend HCCL on AI cores).
// `delayed_wgrad` is compute that may also hide this pass's EP communication: the chunk's weight-gradient
// GEMMs when they are delayed (Megatron-Core --delay-wgrad-compute: "exposes weight-gradient GEMMs as
// additional work with which to hide communication", Combined 1F1B / EP A2A overlap guide).
PassCost apply_overlap(const RawPass& r, const LayoutSpec& l, const DeviceSpec& d, bool ep_hidden_by_pairing,
                       seconds delayed_wgrad = 0) {
  PassCost p;
  // Eager PyTorch issues kernels asynchronously, so the host hides behind the device while it runs
  // ahead, and a pass lasts at least its host time (CUDA graphs remove the per-op host cost: Nguyen et
  // al., "Accelerating PyTorch with CUDA Graphs", PyTorch blog 2021). The dropless MoE layer's
  // device-to-host sync of the per-expert token counts (Megatron-Core token dispatchers and grouped GEMM
  // take them on the host; MindSpeed's --moe-permutation-async-comm exists to hide it) stops the host
  // at every MoE layer, so there each layer lasts at least its own host time.
  p.compute = std::max(r.compute, r.host + r.synced_compute) + r.host_stall;
  p.tp = r.tp;
  p.ep = r.ep;
  p.cp = r.cp;
  seconds hidden = 0;
  // Ring attention overlaps each KV exchange with the attention of the previous block (Liu et al. 2023).
  p.exposed_cp = std::max(0.0, r.cp - r.attention);
  hidden += r.cp - p.exposed_cp;
  // TP overlap (Ascend MC2, NVIDIA userbuffers) pipelines TP collectives with their adjacent GEMMs.
  if (l.overlap.tp_comm) {
    p.exposed_tp = r.tp - r.tp_scale_up + std::max(0.0, r.tp_scale_up - r.gemm);
    hidden += r.tp - p.exposed_tp;
  } else {
    p.exposed_tp = r.tp;
  }
  // EP overlap: dispatch/combine of one microbatch run during another microbatch's compute (Pangu's
  // adaptive pipe overlap, DeepSeek's DualPipe). DualPipe's pairing is modelled in the schedule; other
  // schedules pair each pass with a same-sized pass of another microbatch.
  if (l.overlap.ep_all_to_all && !ep_hidden_by_pairing) {
    p.exposed_ep = std::max(0.0, r.ep - r.compute - delayed_wgrad);
    // Compute beside the flex dispatcher's kernels runs on the SMs they leave (flex_dispatch_slowdown).
    const seconds hidden_ep = r.ep - p.exposed_ep;
    hidden += hidden_ep;
    p.compute += std::max(0.0, flex_dispatch_slowdown(l, d) - d.comm_compute_slowdown) * hidden_ep;
  } else {
    p.exposed_ep = r.ep;
  }
  p.compute_stream = p.compute + (l.overlap.tp_comm ? r.tp - r.tp_scale_up : r.tp);
  p.ep_between_compute = std::max(0.0, r.ep - 2 * r.layer_ep);
  p.compute += d.comm_compute_slowdown * hidden;
  return p;
}

void accumulate_layer(const graph::LayerGraph& g, int count, OpTimings& timings, Recompute policy, CudaGraphs graphs,
                      const DeviceSpec& device, RawPass& fwd, RawPass& bwd, RawPass& wgt, seconds& recompute) {
  if (count <= 0) return;
  const std::vector<OpTiming>& times = timings.of(g);
  LayerIssue issue;  // one layer's host issue time and device compute, forward and backward
  seconds ep_fwd = 0, ep_bwd = 0;
  for (std::size_t i = 0; i < g.forward.size(); ++i) {
    const Op& op = g.forward[i];
    const OpTiming& t = times[i];
    const double rerun = g.rerun_fraction(op, policy);
    issue.add(op, t, rerun, graphs, device);
    if (op.kind == OpKind::collective) {
      const bool scale_up = t.tier <= 0;
      fwd.add_comm(comm_class(op), count * t.forward, scale_up);
      bwd.add_comm(comm_class(op), count * (t.backward_input + rerun * t.forward), scale_up);
      if (comm_class(op) == GroupKind::ep) {
        ep_fwd += t.forward;
        ep_bwd += t.backward_input + rerun * t.forward;
      }
      continue;
    }
    fwd.compute += count * t.forward;
    bwd.compute += count * (t.backward_input + rerun * t.forward);
    wgt.compute += count * t.backward_weight;
    recompute += count * rerun * t.forward;
    if (op.kind == OpKind::attention) {
      fwd.attention += count * t.forward;
      bwd.attention += count * t.backward_input;
    } else if (op.kind != OpKind::vector) {
      fwd.gemm += count * t.forward;
      bwd.gemm += count * t.backward_input;
      wgt.gemm += count * t.backward_weight;
    }
  }
  fwd.layer_ep = std::max(fwd.layer_ep, ep_fwd);
  bwd.layer_ep = std::max(bwd.layer_ep, ep_bwd);
  if (g.host_syncs()) {
    fwd.synced_compute += count * issue.compute_forward();
    bwd.synced_compute += count * issue.compute_backward();
    fwd.host_stall += count * issue.forward_host_wait();
    bwd.host_stall += count * issue.backward_host_wait();
  } else {
    fwd.host += count * issue.host_forward();
    bwd.host += count * issue.host_backward();
  }
}

ChunkCost cost_chunk(const ModelSpec& m, const LayoutSpec& l, const HardwareProfile& hw,
                     const graph::ModelGraphs& g, const ChunkContent& c, double imbalance, OpTimings& timings) {
  RawPass fwd, bwd, wgt;
  ChunkCost cost;
  const CudaGraphs graphs = l.cuda_graphs;
  // The chunk's decoder layers in order, in runs of one layer graph (ModelGraphs::decoder: FFN kind and
  // attention span) and one recompute policy (under partial block recompute only the chunk's first
  // recompute_num_layers follow it).
  for (int i = 0; i < c.layers;) {
    const graph::LayerGraph& layer = g.decoder(m, c.first_layer + i);
    const Recompute policy = l.recompute_of_layer(i);
    int run = 1;
    while (i + run < c.layers && &g.decoder(m, c.first_layer + i + run) == &layer &&
           l.recompute_of_layer(i + run) == policy)
      ++run;
    accumulate_layer(layer, run, timings, policy, graphs, hw.device, fwd, bwd, wgt, cost.recompute);
    i += run;
  }
  accumulate_layer(g.mtp, c.mtp_layers, timings, l.recompute, graphs, hw.device, fwd, bwd, wgt, cost.recompute);
  accumulate_layer(g.embedding, c.embedding ? 1 : 0, timings, Recompute::none, graphs, hw.device, fwd, bwd, wgt, cost.recompute);
  accumulate_layer(g.lm_head, c.lm_head ? 1 : 0, timings, Recompute::none, graphs, hw.device, fwd, bwd, wgt, cost.recompute);
  const bool paired = l.schedule == ScheduleKind::dualpipe;
  cost.forward = apply_overlap(fwd, l, hw.device, paired);
  // Delayed weight gradients run inside the backward they belong to, except where a zero-bubble
  // schedule moves them into the pipeline's idle slots as passes of their own.
  const bool wgrad_beside_backward = l.overlap.delay_wgrad && l.schedule != ScheduleKind::zero_bubble;
  cost.backward = apply_overlap(bwd, l, hw.device, paired, wgrad_beside_backward ? wgt.compute : 0.0);
  cost.backward_weight = apply_overlap(wgt, l, hw.device, paired);
  if (l.activation_swap > 0) {
    // Offload runs on the copy engine during the forward; the fetch back during the backward
    // (overlapped with compute, exposed only where the host link is the slower of the two).
    const bytes swapped = l.activation_swap * memory::chunk_activation_bytes(m, l, g, c, imbalance);
    const seconds transfer = swapped / hw.device.host_link_bandwidth;
    cost.forward.exposed_swap = std::max(0.0, transfer - cost.forward.compute);
    cost.backward.exposed_swap = std::max(0.0, transfer - cost.backward.compute);
  }
  return cost;
}

}  // namespace

std::vector<OpCostRow> cost_layer_ops(const graph::LayerGraph& layer, const LayoutSpec& layout,
                                      const HardwareProfile& hw, double imbalance) {
  std::vector<OpCostRow> rows;
  for (const Op& op : layer.forward) {
    const OpTiming t = time_op(op, layout, hw, imbalance);
    OpCostRow r;
    r.op = &op;
    r.forward = t.forward;
    r.backward = t.backward_input + t.backward_weight;
    r.efficiency = t.efficiency;
    if (op.kind == OpKind::collective) {
      r.bound = t.tier >= 0 ? hw.tiers[t.tier].name : "local";
      r.algorithm = t.algorithm;
    } else {
      r.bound = compute::to_string(t.bound);
    }
    rows.push_back(r);
  }
  return rows;
}


namespace {

// Step 1: what the model and layout give before any time: parameters, FLOPs per token, the expert
// imbalance and the layers of each (stage, chunk).
SimulationResult start_result(const ModelSpec& m, const LayoutSpec& l, const HardwareProfile& hw) {
  if ((l.activation_swap > 0 || l.optimizer_swap) && hw.device.host_link_bandwidth <= 0)
    throw std::invalid_argument("activation_swap and optimizer_swap need the profile's device.host_link_bandwidth (" + hw.name +
                                " has none)");
  SimulationResult r;
  r.params = count_params(m);
  r.flops_per_token = graph::model_flops_per_token(m, l.seq_len, l.recompute, l.flash_attention);
  // Under partial block recompute the share of decoder layers that rerun (N of each chunk's layers).
  const double rerun_share =
      l.recompute_num_layers > 0 ? std::min(1.0, static_cast<double>(l.recompute_num_layers) * l.pp * l.vpp / m.layers) : 1.0;
  r.hardware_flops_per_token = r.flops_per_token.training + rerun_share * r.flops_per_token.recompute;
  r.imbalance = imbalance::layout_imbalance(m, l);
  r.plan = partition_layers(m, l);
  return r;
}

// Step 2: pass costs per (stage, chunk) (r.chunk_costs) and the pipeline they make, with the DualPipe
// fused-pair savings and the p2p transfers.
PipelineSpec pass_level_pipeline(const ModelSpec& m, const LayoutSpec& l, const HardwareProfile& hw,
                                 const graph::ModelGraphs& graphs, seconds p2p, SimulationResult& r) {
  const int stages = l.pp, chunks = r.plan.chunks;
  PipelineSpec spec;
  spec.schedule = l.schedule;
  spec.runtime = l.pipeline_runtime;
  spec.stages = stages;
  spec.microbatches = l.microbatches();
  spec.chunks = chunks;
  spec.fused_pair_saving.assign(stages, 0.0);
  OpTimings timings(l, hw, r.imbalance);
  for (int s = 0; s < stages; ++s) {
    seconds saving = 0;
    for (int c = 0; c < chunks; ++c) {
      const ChunkCost cc = cost_chunk(m, l, hw, graphs, r.plan.at(s, c), r.imbalance, timings);
      r.chunk_costs.push_back(cc);
      spec.durations.push_back({cc.forward.total(), cc.backward.total(), cc.backward_weight.total()});
      // DualPipe hides one pass's EP all-to-all behind the other pass's compute (DeepSeek-V3 §3.2.1).
      if (l.overlap.ep_all_to_all || l.schedule == ScheduleKind::dualpipe) {
        const seconds hide = std::min(cc.forward.ep, cc.backward.compute) + std::min(cc.backward.ep, cc.forward.compute);
        saving = std::max(saving, hide * (1.0 - std::max(hw.device.comm_compute_slowdown, flex_dispatch_slowdown(l, hw.device))));
      }
    }
    spec.fused_pair_saving[s] = saving;
  }
  if (l.overlap.pp_p2p) {
    spec.p2p_send = p2p;
  } else {
    for (auto& d : spec.durations) {
      d.forward += p2p;
      d.backward += p2p;
    }
  }
  return spec;
}

// Per stage: end of its pipeline work, exposed data-parallel sync and optimizer step.
struct StageEnds {
  std::vector<seconds> pipeline_end, exposed_dp, optimizer;
};

// Step 3: each stage's data-parallel sync and optimizer step after its last pass; the slowest stage
// ends the iteration (r.iteration_time, r.critical_stage).
StageEnds finish_stages(const ModelSpec& m, const LayoutSpec& l, const HardwareProfile& hw, SimulationResult& r) {
  const int stages = l.pp, chunks = r.plan.chunks;
  StageEnds e{std::vector<seconds>(stages, 0.0), std::vector<seconds>(stages, 0.0), std::vector<seconds>(stages, 0.0)};
  for (size_t i = 0; i < r.pipeline.passes.size(); ++i) {
    const PassRecord& p = r.pipeline.passes[i];
    e.pipeline_end[p.stage] = std::max(e.pipeline_end[p.stage], r.pipeline.pass_finish[i]);
  }
  r.iteration_time = 0;
  for (int s = 0; s < stages; ++s) {
    seconds last_backward_window = 0, first_forward_window = 0;
    for (int c = 0; c < chunks; ++c) {
      const ChunkCost& cc = r.chunk_costs[s * chunks + c];
      last_backward_window += cc.backward.total() + cc.backward_weight.total();
      first_forward_window += cc.forward.total();
    }
    const memory::DeviceParams p = memory::stage_params(m, l, r.plan, s);
    if (l.zero_stage >= 3) {
      e.exposed_dp[s] = zero3_exposed_time(p, placement(GroupKind::dp, l), placement(GroupKind::expert_dp, l), l, hw,
                                           first_forward_window, last_backward_window);
    } else {
      const DpSync sync = dp_sync_times(p, l, hw);
      // Overlapped gradient reduction hides behind the last microbatch's backward of the stage; the
      // parameter all-gather behind the first forward of the next iteration.
      const seconds exposed_grads = l.overlap.dp_grad_reduce ? std::max(0.0, sync.grads() - last_backward_window) : sync.grads();
      const seconds exposed_gather =
          l.overlap.dp_param_gather ? std::max(0.0, sync.gather() - first_forward_window) : sync.gather();
      e.exposed_dp[s] = exposed_grads + exposed_gather;
    }
    e.optimizer[s] = optimizer_step_time(p, l, hw);
    const seconds end = e.pipeline_end[s] + e.exposed_dp[s] + e.optimizer[s];
    if (end > r.iteration_time) {
      r.iteration_time = end;
      r.critical_stage = s;
    }
  }
  return e;
}

// Step 4: breakdown of the critical stage: its passes' compute and exposed communication, times
// microbatches.
void fill_breakdown(const LayoutSpec& l, seconds p2p, const StageEnds& e, SimulationResult& r) {
  const int s = r.critical_stage, chunks = r.plan.chunks, microbatches = l.microbatches();
  TimeBreakdown& b = r.breakdown;
  for (int c = 0; c < chunks; ++c) {
    const ChunkCost& cc = r.chunk_costs[s * chunks + c];
    const double n = chunks > 1 && r.plan.bidirectional ? microbatches / 2.0 : microbatches;
    for (const PassCost* pc : {&cc.forward, &cc.backward, &cc.backward_weight}) {
      b.compute += n * pc->compute;
      b.exposed_tp += n * pc->exposed_tp;
      b.exposed_ep += n * pc->exposed_ep;
      b.exposed_cp += n * pc->exposed_cp;
      b.exposed_swap += n * pc->exposed_swap;
    }
  }
  if (!l.overlap.pp_p2p) b.exposed_pp = 2.0 * microbatches * chunks * p2p;
  b.exposed_dp = e.exposed_dp[s];
  b.optimizer = e.optimizer[s];
  const seconds busy = r.pipeline.busy[s];
  b.bubble = std::max(0.0, e.pipeline_end[s] - busy);
  // DualPipe's fused pairs finish sooner than the sum of their parts: show the saving as hidden EP.
  const seconds accounted = b.compute + b.exposed_tp + b.exposed_ep + b.exposed_cp + b.exposed_pp + b.exposed_swap;
  if (accounted > busy) b.exposed_ep = std::max(0.0, b.exposed_ep - (accounted - busy));
  for (int st = 0; st < l.pp; ++st)
    r.stage_busy_fraction.push_back(r.iteration_time > 0 ? r.pipeline.busy[st] / r.iteration_time : 0);
  r.bubble_fraction = r.pipeline.bubble_fraction;
}

// Step 6: memory of the in-flight microbatches the schedule actually kept, and the warnings.
void fill_memory(const ModelSpec& m, const LayoutSpec& l, const HardwareProfile& hw, const graph::ModelGraphs& graphs,
                 SimulationResult& r) {
  std::vector<double> inflight(r.pipeline.peak_in_flight.begin(), r.pipeline.peak_in_flight.end());
  r.memory = memory::stage_memory(m, l, r.plan, graphs, hw, inflight, r.imbalance);
  r.capacity = hw.device.hbm_bytes;
  for (const auto& sm : r.memory) r.peak_memory = std::max(r.peak_memory, sm.total());
  r.fits = r.peak_memory <= r.capacity;
  if (!r.fits) {
    r.warnings.push_back("does not fit: peak stage needs " + std::to_string(r.peak_memory / 1e9).substr(0, 6) +
                         " GB of " + std::to_string(r.capacity / 1e9).substr(0, 6) + " GB");
  }
  if (r.imbalance > 1.0) {
    r.warnings.push_back("expert load imbalance " + std::to_string(r.imbalance).substr(0, 5) +
                         " (max/mean tokens on the busiest EP rank)");
  }
}

}  // namespace

void set_throughput(SimulationResult& r, const LayoutSpec& l, const HardwareProfile& hw) {
  // MFU = model FLOPs / (time x devices x dense BF16 peak) (PaLM App. B).
  r.tokens_per_iteration = static_cast<double>(l.global_batch) * l.seq_len;
  r.tokens_per_s = r.tokens_per_iteration / r.iteration_time;
  const double device_seconds = r.iteration_time * l.devices;
  r.mfu = r.flops_per_token.training * r.tokens_per_iteration / (device_seconds * hw.device.matrix_bf16);
  r.hfu = r.hardware_flops_per_token * r.tokens_per_iteration / (device_seconds * hw.device.matrix_bf16);
  r.tflops_per_device = r.flops_per_token.training * r.tokens_per_iteration / device_seconds / 1e12;
  r.mfu_ceiling = hw.matrix_peak(l.precision) / hw.device.matrix_bf16;
}

SimulationResult simulate(const ModelSpec& m, const LayoutSpec& l, const HardwareProfile& hw) {
  SimulationResult r = start_result(m, l, hw);
  const graph::ModelGraphs graphs = graph::build_model_graphs(m, graph::make_context(m, l, hw.device));
  const seconds p2p = p2p_time(l, hw, graphs);
  r.pipeline = simulate_pipeline(pass_level_pipeline(m, l, hw, graphs, p2p, r));
  const StageEnds ends = finish_stages(m, l, hw, r);
  fill_breakdown(l, p2p, ends, r);
  set_throughput(r, l, hw);  // step 5
  fill_memory(m, l, hw, graphs, r);
  return r;
}

}  // namespace moesim::sim
