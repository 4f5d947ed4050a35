#include "sim/engine/simulate.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "costmodels/comm.h"
#include "costmodels/compute.h"
#include "costmodels/imbalance.h"

namespace moesim::sim {

namespace {

using graph::GroupKind;
using graph::Op;
using graph::OpKind;

// Rank order (Megatron-Core): TP innermost, then CP, DP, PP outermost for attention; the expert view
// folds ETP, EP, expert-DP over the same ranks (Liu et al. 2025 §3). A group's stride is the product
// of the dimensions inside it.
comm::GroupPlacement placement(GroupKind g, const LayoutSpec& l) {
  switch (g) {
    case GroupKind::tp: return {l.tp, 1};
    case GroupKind::cp: return {l.cp, l.tp};
    case GroupKind::dp: return {l.dp * l.cp, l.tp};  // gradients reduce over DP x CP
    case GroupKind::pp: return {l.pp, l.tp * l.cp * l.dp};
    case GroupKind::etp: return {l.etp, 1};
    case GroupKind::ep: return {l.ep, l.etp};
    case GroupKind::expert_dp: return {l.expert_dp(), l.etp * l.ep};
  }
  return {1, 1};
}

struct OpTiming {
  seconds forward = 0, backward_input = 0, backward_weight = 0;
  compute::Bound bound = compute::Bound::compute;
  double efficiency = 0;
  std::string algorithm;
  int tier = -1;
};

// FlashAttention-2 (Dao 2023 §3.1.2): the backward pass recomputes the scores and runs four matmuls,
// about 2.5x the forward's work.
constexpr double attention_backward_factor = 2.5;
// Element-wise backward reads the upstream gradient and the saved input and writes one gradient.
constexpr double vector_backward_factor = 1.5;

// An op whose backward repeats the forward's work `factor` times (one kernel launch each way).
OpTiming scaled_backward(const compute::OpTime& forward, double factor, const DeviceSpec& d) {
  OpTiming t;
  t.forward = forward.time;
  t.backward_input = factor * (forward.time - d.launch_overhead) + d.launch_overhead;
  t.bound = forward.bound;
  t.efficiency = forward.efficiency;
  return t;
}

OpTiming time_op(const Op& op, const LayoutSpec& l, const HardwareProfile& hw, double imbalance) {
  const DeviceSpec& d = hw.device;
  const flops_per_second peak = hw.matrix_peak(l.precision);
  const double load = op.scales_with_imbalance ? imbalance : 1.0;
  OpTiming t;
  switch (op.kind) {
    case OpKind::gemm:
    case OpKind::grouped_gemm: {
      compute::GemmShape s = op.shape;
      s.m *= load;
      const bytes hbm = op.hbm_bytes * load;
      // Without --moe-grouped-gemm the experts' GEMMs run one after another (Megatron's SequentialMLP):
      // each is a plain GEMM of one expert's tokens, with its own launch and fill/drain cost.
      const bool sequential = op.kind == OpKind::grouped_gemm && !l.moe_grouped_gemm;
      const bool grouped = op.kind == OpKind::grouped_gemm && !sequential;
      const double kernels = sequential ? s.count : 1.0;
      auto gemm = [&](double m, double n, double k) {
        compute::OpTime t = compute::gemm_time({m, n, k, s.count / kernels}, hbm / kernels, peak, d, grouped);
        t.time *= kernels;
        return t;
      };
      const compute::OpTime f = gemm(s.m, s.n, s.k);
      // Backward: data gradient (M x N times N x K) and weight gradient (K x M times M x N).
      const compute::OpTime dgrad = gemm(s.m, s.k, s.n);
      const compute::OpTime wgrad = gemm(s.k, s.n, s.m);
      // FP8 training quantises both GEMM operands first (read bf16, write fp8 + scales: ~3 bytes per
      // element; Transformer Engine's cast kernels; Micikevicius et al. 2022 "FP8 formats" §4).
      const seconds quantise = l.precision == Precision::fp8 && peak > d.matrix_bf16
                                   ? compute::vector_time(0, 3 * (s.m * s.k + s.k * s.n) * s.count, d).time
                                   : 0.0;
      t.forward = f.time + quantise;
      t.backward_input = dgrad.time + quantise;
      t.backward_weight = wgrad.time;
      if (!l.gradient_accumulation_fusion) {
        // Unfused accumulation (Megatron-LM's main-grad hook, main_grad.add_(grad)): the GEMM writes a
        // 16-bit weight gradient, then a memory-bound add reads it (2 B) and reads and writes main_grad.
        const double weights = s.n * s.k * s.count;
        t.backward_weight += compute::vector_time(0, weights * (2.0 + 2.0 * l.main_grad_bytes), d).time;
      }
      t.bound = f.bound;
      t.efficiency = f.efficiency;
      break;
    }
    case OpKind::attention: {
      // FP8 recipes keep attention in bf16 (DeepSeek-V3 §3.3; Transformer Engine's default recipe).
      return scaled_backward(compute::attention_time(op.flop_count, op.hbm_bytes, d.matrix_bf16, d),
                             attention_backward_factor, d);
    }
    case OpKind::vector: {
      return scaled_backward(compute::vector_time(op.flop_count * load, op.hbm_bytes * load, d), vector_backward_factor, d);
    }
    case OpKind::collective: {
      const auto& c = op.collective;
      const comm::GroupPlacement g = placement(c.group, l);
      comm::CollectiveCost cost;
      if (c.expert_dispatch) {
        cost = comm::expert_dispatch_time(c.tokens, c.token_bytes, c.routing, imbalance, g, hw.tiers,
                                          l.hierarchical_ep_all_to_all ? comm::AllToAllAlgorithm::hierarchical
                                                                       : comm::AllToAllAlgorithm::pairwise);
      } else {
        cost = comm::collective_time(c.kind, c.buffer * load, g, hw.tiers);
      }
      // Backward mirrors the forward collective with the same volume (all-gather <-> reduce-scatter,
      // dispatch <-> combine, all-reduce <-> identity in Megatron's f/g operators).
      t.forward = cost.time;
      t.backward_input = cost.time;
      t.tier = cost.tier;
      t.algorithm = cost.algorithm;
      break;
    }
  }
  return t;
}

GroupKind comm_class(const Op& op) {
  switch (op.collective.group) {
    case GroupKind::ep:
    case GroupKind::etp: return GroupKind::ep;
    case GroupKind::cp: return GroupKind::cp;
    default: return GroupKind::tp;
  }
}

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
    hidden += r.ep - p.exposed_ep;
  } else {
    p.exposed_ep = r.ep;
  }
  p.compute += d.comm_compute_slowdown * hidden;
  return p;
}

// An op's time depends only on the op, the layout, the hardware and the imbalance, all fixed within
// one simulation, yet every layer graph is summed once per chunk: each graph's op times are computed
// on first use and reused by the other chunks.
class OpTimings {
 public:
  OpTimings(const LayoutSpec& l, const HardwareProfile& hw, double imbalance) : l_(l), hw_(hw), imbalance_(imbalance) {}
  const std::vector<OpTiming>& of(const graph::LayerGraph& g) {
    for (const auto& [graph, timings] : cache_)
      if (graph == &g) return timings;
    std::vector<OpTiming> timings;
    timings.reserve(g.forward.size());
    for (const Op& op : g.forward) timings.push_back(time_op(op, l_, hw_, imbalance_));
    return cache_.emplace_back(&g, std::move(timings)).second;
  }

 private:
  const LayoutSpec& l_;
  const HardwareProfile& hw_;
  double imbalance_;
  std::vector<std::pair<const graph::LayerGraph*, std::vector<OpTiming>>> cache_;
};

void accumulate_layer(const graph::LayerGraph& g, int count, OpTimings& timings, Recompute policy, CudaGraphs graphs,
                      seconds host_op, RawPass& fwd, RawPass& bwd, RawPass& wgt, seconds& recompute) {
  if (count <= 0) return;
  const std::vector<OpTiming>& times = timings.of(g);
  // Partial CUDA graphs capture the static-shape part of a layer; from the expert dispatch on, shapes
  // depend on routing and the ops run eagerly (Megatron-Core's TE graph scopes attn, moe_router,
  // moe_preprocess).
  bool dynamic_shapes = false;
  // One layer's host issue time and device compute, forward and backward.
  seconds host_fwd = 0, host_bwd = 0, compute_fwd = 0, compute_bwd = 0;
  for (std::size_t i = 0; i < g.forward.size(); ++i) {
    const Op& op = g.forward[i];
    const OpTiming& t = times[i];
    const double rerun = g.rerun_fraction(op, policy);
    if (op.kind == OpKind::collective && op.collective.group == GroupKind::ep) dynamic_shapes = true;
    const bool eager = graphs == CudaGraphs::none || (graphs == CudaGraphs::partial && dynamic_shapes);
    if (eager) {
      // One host issue forward, two backward (data and weight gradients), plus the recomputed share.
      host_fwd += host_op;
      host_bwd += host_op * (2 + rerun);
    }
    if (op.kind == OpKind::collective) {
      const bool scale_up = t.tier <= 0;
      fwd.add_comm(comm_class(op), count * t.forward, scale_up);
      bwd.add_comm(comm_class(op), count * (t.backward_input + rerun * t.forward), scale_up);
      continue;
    }
    compute_fwd += t.forward;
    compute_bwd += t.backward_input + rerun * t.forward;
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
  if (g.host_syncs()) {
    fwd.synced_compute += count * compute_fwd;
    bwd.synced_compute += count * compute_bwd;
    fwd.host_stall += count * std::max(0.0, host_fwd - compute_fwd);
    bwd.host_stall += count * std::max(0.0, host_bwd - compute_bwd);
  } else {
    fwd.host += count * host_fwd;
    bwd.host += count * host_bwd;
  }
}

ChunkCost cost_chunk(const ModelSpec& m, const LayoutSpec& l, const HardwareProfile& hw,
                     const graph::ModelGraphs& g, const ChunkContent& c, double imbalance, OpTimings& timings) {
  RawPass fwd, bwd, wgt;
  ChunkCost cost;
  const CudaGraphs graphs = l.cuda_graphs;
  const seconds host_op = hw.device.host_op_overhead;
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
    accumulate_layer(layer, run, timings, policy, graphs, host_op, fwd, bwd, wgt, cost.recompute);
    i += run;
  }
  accumulate_layer(g.mtp, c.mtp_layers, timings, l.recompute, graphs, host_op, fwd, bwd, wgt, cost.recompute);
  accumulate_layer(g.embedding, c.embedding ? 1 : 0, timings, Recompute::none, graphs, host_op, fwd, bwd, wgt, cost.recompute);
  accumulate_layer(g.lm_head, c.lm_head ? 1 : 0, timings, Recompute::none, graphs, host_op, fwd, bwd, wgt, cost.recompute);
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

// Optimizer step (Adam) is memory-bound: per parameter of the local shard it reads the fp32 master, m, v
// and the gradient and writes master, m, v and the bf16 weight (30 B with fp32 moments and gradients).
double optimizer_bytes_per_param_step(const LayoutSpec& l) {
  return memory::optimizer_bytes_per_param(l) * 2 + memory::grad_bytes_per_param(l) + memory::weight_bytes_per_param;
}


// ZeRO-3 (Rajbhandari et al. 2020 §5.3, §7.2.2; DeepSpeed stage 3): parameters live sharded, so every
// micro-step all-gathers the 16-bit weights for the forward, again for the backward, and once more for
// the re-run forward of activation recomputation (checkpointed blocks re-fetch their released
// parameters), and reduce-scatters the 16-bit gradients: 2 x (2 or 3) + 2 bytes per parameter per
// micro-step, not per iteration (ZeRO §7.2.2 counts 3 x Psi per step, 1.5x data parallelism).
// The collectives run over the flat DP process group, one per fetched submodule, each a ring whose
// every rank forwards the whole buffer through its own link to the outer tier: the per-device bandwidth
// of the outermost tier the group spans (one NIC per GPU), not the node-aggregated hierarchy Megatron's
// bucketed DP collectives reach. Evidence: DeepSpeed ZeRO-3's iteration time in Narayanan et al. 2021
// Table 2 stays flat (66.7 s for 175B at 768 and 1536 GPUs) while compute halves: ~8 B/param per
// micro-step at ~21 GB/s per GPU, one HDR NIC.
// Overlap: the prefetcher (stage3_prefetch_bucket_size) fetches ahead of the compute, so the forward
// gather hides behind the forward and the backward gathers behind the backward; the gradient
// reduce-scatter joins the backward's overlap only with overlap_comm (layout overlap.dp_grad_reduce;
// DeepSpeed's documented default is off, https://www.deepspeed.ai/docs/config-json/), else it is exposed.
// Hybrid sharding (zero_shard_dp): the collectives above run inside the shard group (the inner DP
// ranks); the replicas then all-reduce their gradient shards once per iteration (PaLM §4: pods exchange
// gradients over the data-centre network), overlapped with the last backward like DP gradients.
seconds zero3_exposed_time(const memory::DeviceParams& p, comm::GroupPlacement dp_group, comm::GroupPlacement edp_group,
                           const LayoutSpec& l, const HardwareProfile& hw, seconds forward_window, seconds backward_window) {
  const int shard = l.zero_shard_group();
  const comm::GroupPlacement replicas{dp_group.size / shard, dp_group.stride * shard};
  dp_group.size = shard;
  auto flat = [&](comm::CollectiveKind kind, bytes buffer, comm::GroupPlacement g) {
    if (g.size <= 1 || buffer <= 0) return 0.0;
    const Tier& outer = hw.tiers[static_cast<std::size_t>(comm::innermost_tier_holding(g, hw.tiers))];
    return comm::flat_collective_time(kind, buffer, g.size, outer).time;
  };
  auto both = [&](comm::CollectiveKind kind, double bytes_per_param) {
    return flat(kind, bytes_per_param * p.dense, dp_group) + flat(kind, bytes_per_param * p.expert, edp_group);
  };
  // FSDP2 without resharding after forward (layout zero_reshard_after_forward false, torchtitan with PP):
  // backward reuses the forward's unsharded parameters. With pp > 1 torch.distributed.pipelining keeps
  // them across microbatches and defers the gradient sync to the last backward (stage.py
  // backward_maybe_with_nosync): one all-gather and one reduce-scatter of the fp32-accumulated gradients
  // (FSDP2 reduce dtype, torchtitan mixed_precision_reduce float32) per iteration. The gather is
  // prefetched layer by layer in the first forward; the reduce-scatter is exposed: the stage runs FSDP's
  // post-backward by hand after its last backward has finished ("Manually call post backward for FSDP").
  const bool keep_unsharded = !l.zero_reshard_after_forward;
  const bool once_per_iteration = keep_unsharded && l.pp > 1;
  // zero_no_sync: the fp32 gradients are reduce-scattered in the last microbatch's backward only.
  const bool deferred_grads = once_per_iteration || l.zero_no_sync;
  const seconds gather = both(comm::CollectiveKind::all_gather, 2);
  const seconds grads = both(comm::CollectiveKind::reduce_scatter, deferred_grads ? 4 : 2);
  const double backward_gathers = keep_unsharded ? 0.0 : l.recompute == Recompute::none ? 1.0 : 2.0;
  const seconds forward_exposed = std::max(0.0, gather - forward_window);
  const auto exposed_backward = [&](seconds reduce) {
    return l.overlap.dp_grad_reduce && !once_per_iteration
               ? std::max(0.0, backward_gathers * gather + reduce - backward_window)
               : std::max(0.0, backward_gathers * gather - backward_window) + reduce;
  };
  const seconds backward_exposed = exposed_backward(grads);
  const seconds replica_grads =
      comm::collective_time(comm::CollectiveKind::all_reduce, 2 * p.dense / shard, replicas, hw.tiers).time;
  const seconds replica_exposed = l.overlap.dp_grad_reduce ? std::max(0.0, replica_grads - backward_window) : replica_grads;
  if (l.zero_no_sync && !once_per_iteration)
    return l.microbatches() * (forward_exposed + exposed_backward(0)) + backward_exposed - exposed_backward(0) +
           replica_exposed;
  return (once_per_iteration ? 1 : l.microbatches()) * (forward_exposed + backward_exposed) + replica_exposed;
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

SimulationResult simulate(const ModelSpec& m, const LayoutSpec& l, const HardwareProfile& hw) {
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
  const graph::ModelGraphs graphs = graph::build_model_graphs(m, graph::make_context(m, l));

  // Pass costs per (stage, chunk).
  const int stages = l.pp, chunks = r.plan.chunks, microbatches = l.microbatches();
  PipelineSpec spec;
  spec.schedule = l.schedule;
  spec.stages = stages;
  spec.microbatches = microbatches;
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
        saving = std::max(saving, hide * (1.0 - hw.device.comm_compute_slowdown));
      }
    }
    spec.fused_pair_saving[s] = saving;
  }
  // Activations of one microbatch between adjacent stages (bf16, SP-sharded over TP).
  const comm::GroupPlacement pp_group = placement(GroupKind::pp, l);
  const seconds p2p = stages > 1 ? comm::collective_time(comm::CollectiveKind::send_recv, graphs.dense.layer_input_bytes,
                                                         {2, pp_group.stride}, hw.tiers).time
                                 : 0.0;
  if (l.overlap.pp_p2p) {
    spec.p2p_send = p2p;
  } else {
    for (auto& d : spec.durations) {
      d.forward += p2p;
      d.backward += p2p;
    }
  }
  r.pipeline = simulate_pipeline(spec);

  // Per stage: end of the pipeline work, data-parallel gradient sync and the optimizer step.
  std::vector<seconds> stage_end(stages, 0.0), last_backward_window(stages, 0.0), first_forward_window(stages, 0.0);
  for (size_t i = 0; i < r.pipeline.passes.size(); ++i) {
    const PassRecord& p = r.pipeline.passes[i];
    stage_end[p.stage] = std::max(stage_end[p.stage], r.pipeline.pass_finish[i]);
  }
  for (int s = 0; s < stages; ++s) {
    for (int c = 0; c < chunks; ++c) {
      const ChunkCost& cc = r.chunk_costs[s * chunks + c];
      last_backward_window[s] += cc.backward.total() + cc.backward_weight.total();
      first_forward_window[s] += cc.forward.total();
    }
  }
  seconds iteration = 0;
  std::vector<seconds> exposed_dp(stages), optimizer(stages);
  for (int s = 0; s < stages; ++s) {
    const memory::DeviceParams p = memory::stage_params(m, l, r.plan, s);
    const auto dp_group = placement(GroupKind::dp, l), edp_group = placement(GroupKind::expert_dp, l);
    if (l.zero_stage >= 3) {
      exposed_dp[s] = zero3_exposed_time(p, dp_group, edp_group, l, hw, first_forward_window[s], last_backward_window[s]);
    } else {
      // Gradients (main_grads: fp32, or bf16 with --grad-reduce-in-bf16) reduce-scattered with a
      // distributed optimizer, all-reduced without; updated bf16 parameters all-gathered (Megatron-LM
      // distributed optimizer).
      const double grad_bytes = memory::grad_bytes_per_param(l);
      auto sync = [&](count params, comm::GroupPlacement g) {
        if (g.size <= 1 || params <= 0) return std::pair<seconds, seconds>{0, 0};
        seconds grads, gather = 0;
        if (l.distributed_optimizer || l.zero_stage > 0) {
          grads = comm::collective_time(comm::CollectiveKind::reduce_scatter, grad_bytes * params, g, hw.tiers).time;
          gather = comm::collective_time(comm::CollectiveKind::all_gather, 2 * params, g, hw.tiers).time;
        } else {
          grads = comm::collective_time(comm::CollectiveKind::all_reduce, grad_bytes * params, g, hw.tiers).time;
        }
        return std::pair{grads, gather};
      };
      const auto [dense_grads, dense_gather] = sync(p.dense, dp_group);
      const auto [expert_grads, expert_gather] = sync(p.expert, edp_group);
      const seconds grads = dense_grads + expert_grads, gather = dense_gather + expert_gather;
      // Overlapped gradient reduction hides behind the last microbatch's backward of the stage; the
      // parameter all-gather behind the first forward of the next iteration.
      const seconds exposed_grads = l.overlap.dp_grad_reduce ? std::max(0.0, grads - last_backward_window[s]) : grads;
      const seconds exposed_gather = l.overlap.dp_param_gather ? std::max(0.0, gather - first_forward_window[s]) : gather;
      exposed_dp[s] = exposed_grads + exposed_gather;
    }
    const double shard = l.distributed_optimizer ? 1.0 : 0.0;
    const count local = p.dense / (shard > 0 ? l.dp * l.cp : 1) + p.expert / (shard > 0 ? l.expert_dp() : 1);
    optimizer[s] = local * optimizer_bytes_per_param_step(l) / (hw.device.hbm_bandwidth * hw.device.hbm_efficiency) +
                   hw.device.launch_overhead;
    // Swapped optimizer states cross the host link both ways in the step, the two directions on their
    // own streams at once (MindSpeed "Swap Optimizer"): the states' bytes once at the link's rate.
    if (l.optimizer_swap) optimizer[s] += local * memory::optimizer_bytes_per_param(l) / hw.device.host_link_bandwidth;
    const seconds end = stage_end[s] + exposed_dp[s] + optimizer[s];
    if (end > iteration) {
      iteration = end;
      r.critical_stage = s;
    }
  }
  r.iteration_time = iteration;

  // Breakdown of the critical stage: its passes' compute and exposed communication, times microbatches.
  {
    const int s = r.critical_stage;
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
    b.exposed_dp = exposed_dp[s];
    b.optimizer = optimizer[s];
    const seconds busy = r.pipeline.busy[s];
    b.bubble = std::max(0.0, stage_end[s] - busy);
    // DualPipe's fused pairs finish sooner than the sum of their parts: show the saving as hidden EP.
    const seconds accounted = b.compute + b.exposed_tp + b.exposed_ep + b.exposed_cp + b.exposed_pp + b.exposed_swap;
    if (accounted > busy) b.exposed_ep = std::max(0.0, b.exposed_ep - (accounted - busy));
  }
  for (int s = 0; s < stages; ++s) r.stage_busy_fraction.push_back(iteration > 0 ? r.pipeline.busy[s] / iteration : 0);
  r.bubble_fraction = r.pipeline.bubble_fraction;

  // Throughput and utilisation. MFU = model FLOPs / (time x devices x dense BF16 peak) (PaLM App. B).
  r.tokens_per_iteration = static_cast<double>(l.global_batch) * l.seq_len;
  r.tokens_per_s = r.tokens_per_iteration / iteration;
  const double device_seconds = iteration * l.devices;
  r.mfu = r.flops_per_token.training * r.tokens_per_iteration / (device_seconds * hw.device.matrix_bf16);
  r.hfu = r.hardware_flops_per_token * r.tokens_per_iteration / (device_seconds * hw.device.matrix_bf16);
  r.tflops_per_device = r.flops_per_token.training * r.tokens_per_iteration / device_seconds / 1e12;
  r.mfu_ceiling = hw.matrix_peak(l.precision) / hw.device.matrix_bf16;

  // Memory: activations of the in-flight microbatches the schedule actually kept.
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
  return r;
}

}  // namespace moesim::sim
