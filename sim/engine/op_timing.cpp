#include "sim/engine/op_timing.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

namespace moesim::sim {

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

namespace {

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

}  // namespace

OpTiming time_op(const Op& op, const LayoutSpec& l, const HardwareProfile& hw, double imbalance) {
  const DeviceSpec& d = hw.device;
  // FP8 GEMMs (where the hardware has an FP8 rate) at their MAMF share of the BF16 efficiency, block-scaled
  // FP8 at its own share where the tensor cores lack block scales (compute::fp8_gemm_peak). Every GEMM
  // of an FP8 run takes the FP8 rate, though only the TE linears (Op::fp8_cast) run in FP8 in Megatron-Core:
  // its router GEMM and output head stay BF16 (moe/router.py router_gating_linear; gpt_model.py
  // tensor_parallel.ColumnParallelLinear); timing them in BF16 moves the Megatron-Bridge FP8 runs from
  // 8.0% to 8.4% MAPE (the 8B runs 5 points slower), so that change waits for the cause of those runs' error.
  // Ops Megatron keeps out of FP8 by construction (Op::bf16_under_fp8: DeepSeek-V4's compressors, indexer
  // weights, grouped output projection and mHC mappings) run at the BF16 rate.
  const bool fp8_gemm = l.precision == Precision::fp8 && !op.bf16_under_fp8 && d.matrix_fp8 > d.matrix_bf16;
  const flops_per_second peak = fp8_gemm ? compute::fp8_gemm_peak(d, l.fp8_recipe) : d.matrix_bf16;
  const double load = op.scales_with_imbalance ? imbalance : 1.0;
  OpTiming t;
  switch (op.kind) {
    case OpKind::gemm:
    case OpKind::grouped_gemm: {
      compute::GemmShape s = op.shape;
      s.m *= load;
      // FP8 grouped GEMMs take each expert's tokens padded to the quantisation alignment (Megatron-Core
      // get_align_size_for_quantization: 16, MXFP8 32): (align - 1) / 2 rows more per expert on average.
      if (op.kind == OpKind::grouped_gemm && fp8_gemm)
        s.m += (d.matrix.fp8_group_alignment - 1) / 2.0;
      const bytes hbm = op.hbm_bytes * load;
      // Without --moe-grouped-gemm the experts' GEMMs run one after another (Megatron's SequentialMLP):
      // each is a plain GEMM of one expert's tokens, with its own launch and fill/drain cost.
      const bool sequential = op.kind == OpKind::grouped_gemm && !l.moe_grouped_gemm;
      const bool grouped = op.kind == OpKind::grouped_gemm && !sequential;
      const double kernels = sequential ? s.count : 1.0;
      auto gemm = [&](double m, double n, double k) {
        // Expert GEMMs (grouped or one by one) have one expert's routed tokens as M, or as K for the
        // weight gradient.
        compute::OpTime t = compute::gemm_time({m, n, k, s.count / kernels}, hbm / kernels, peak, d, grouped,
                                               op.kind == OpKind::grouped_gemm && m == s.m);
        t.time *= kernels;
        return t;
      };
      const compute::OpTime f = gemm(s.m, s.n, s.k);
      // Backward: data gradient (M x N times N x K) and weight gradient (K x M times M x N).
      const compute::OpTime dgrad = gemm(s.m, s.k, s.n);
      const compute::OpTime wgrad = gemm(s.k, s.n, s.m);
      // Under FP8 the operands' quantisation is an op of its own before the GEMM (costmodels/fp8_cast.cpp).
      t.forward = f.time;
      t.backward_input = dgrad.time;
      // The K x N operand's gradient: a weight gradient (deferrable), or where that operand is an
      // activation a data gradient the backward pass waits for, or none for a 0/1 mask.
      const seconds kn_gradient = op.kn_needs_gradient ? wgrad.time : 0.0;
      (op.kn_is_weight ? t.backward_weight : t.backward_input) += kn_gradient;
      if (!l.gradient_accumulation_fusion && op.kn_is_weight) {
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
      // Masked slots a kernel still runs (Op::masked_flop_count) take time like the others.
      const flops executed = op.flop_count + op.masked_flop_count;
      return scaled_backward(compute::attention_time(executed, op.hbm_bytes, d.matrix_bf16, d), attention_backward_factor, d);
    }
    case OpKind::vector: {
      // Per-expert kernels each pay a launch, except under full-iteration CUDA graphs: those need the
      // graph-safe path that keeps the token counts on the device and quantises all experts in one kernel
      // (Transformer Engine docs, features "Mixture of Experts", Grouped GEMM: the per-expert path reads
      // the counts on the host, "so it cannot be captured in a CUDA graph"; tex.group_quantize).
      const double kernels = l.cuda_graphs == CudaGraphs::full ? 1.0 : op.per_expert_kernels;
      const seconds launches = (kernels - 1) * d.launch_overhead;
      compute::OpTime forward = compute::vector_time(op.flop_count * load, op.hbm_bytes * load, d);
      forward.time += launches;
      if (!op.backward_hbm_bytes) return scaled_backward(forward, vector_backward_factor, d);
      // A backward pass of its own (an FP8 linear's output-gradient cast): its bytes, memory-bound.
      OpTiming v;
      v.forward = forward.time;
      v.backward_input = compute::vector_time(0, *op.backward_hbm_bytes * load, d).time + launches;
      v.bound = forward.bound;
      v.efficiency = forward.efficiency;
      return v;
    }
    case OpKind::collective: {
      const auto& c = op.collective;
      const comm::GroupPlacement g = placement(c.group, l);
      comm::CollectiveCost cost;
      if (c.expert_dispatch) {
        // Megatron-Core's flex dispatcher (DeepEP / HybridEP) deduplicates; the alltoall one sends a copy per expert.
        const comm::AllToAllAlgorithm algorithm = l.moe_dispatcher == MoeDispatcher::flex ? comm::AllToAllAlgorithm::deduplicated
                                                  : l.hierarchical_ep_all_to_all       ? comm::AllToAllAlgorithm::hierarchical
                                                                                      : comm::AllToAllAlgorithm::pairwise;
        cost = comm::expert_dispatch_time(c.tokens, c.token_bytes, c.routing, imbalance, g, hw.tiers, algorithm);
      } else {
        cost = comm::collective_time(c.kind, c.buffer * load, g, hw.tiers);
      }
      // Backward mirrors the forward collective with the same volume (all-gather <-> reduce-scatter,
      // dispatch <-> combine, all-reduce <-> identity in Megatron's f/g operators).
      t.forward = c.serial_phases * cost.time;
      t.backward_input = c.serial_phases * (c.backward_volume == 1.0 || c.expert_dispatch
                                                ? cost.time
                                                : comm::collective_time(c.kind, c.buffer * c.backward_volume * load, g, hw.tiers).time);
      t.tier = cost.tier;
      t.algorithm = cost.algorithm;
      break;
    }
  }
  return t;
}

seconds host_issue_time(const Op& op, const DeviceSpec& d) {
  const double calls = op.kind == OpKind::grouped_gemm ? op.shape.count : op.per_expert_kernels;
  return d.host_op_overhead + std::max(0.0, calls - 1) * d.host_expert_call_overhead;
}

void LayerIssue::add(const Op& op, const OpTiming& t, double rerun, CudaGraphs graphs, const DeviceSpec& d) {
  if (op.kind == OpKind::collective && op.collective.group == GroupKind::ep) dynamic_shapes_ = true;
  synced_ = synced_ || op.kind == OpKind::grouped_gemm;
  if (graphs == CudaGraphs::none || (graphs == CudaGraphs::partial && dynamic_shapes_)) {
    const seconds host = host_issue_time(op, d);
    host_forward_ += host;
    if (synced_) host_forward_synced_ += host;
    host_backward_ += host * (2 + rerun);
  }
  if (op.kind == OpKind::collective) return;
  compute_forward_ += t.forward;
  if (synced_) compute_forward_synced_ += t.forward;
  compute_backward_ += t.backward_input + rerun * t.forward;
}

GroupKind comm_class(const Op& op) {
  switch (op.collective.group) {
    case GroupKind::ep:
    case GroupKind::etp: return GroupKind::ep;
    case GroupKind::cp: return GroupKind::cp;
    default: return GroupKind::tp;
  }
}

double flex_dispatch_slowdown(const LayoutSpec& l, const DeviceSpec& d) {
  const int units = d.matrix.compute_units, reserved = l.moe_dispatcher == MoeDispatcher::flex ? l.ep_dispatch_sms : 0;
  if (units <= 0 || reserved <= 0) return 0;
  if (reserved >= units)
    throw std::invalid_argument(fmt::format("layout: ep_dispatch_sms {} leaves none of the device's {} compute units", reserved, units));
  return static_cast<double>(reserved) / (units - reserved);
}

const std::vector<OpTiming>& OpTimings::of(const graph::LayerGraph& g) {
  for (const auto& [graph, timings] : cache_)
    if (graph == &g) return timings;
  std::vector<OpTiming> timings;
  timings.reserve(g.forward.size());
  for (const Op& op : g.forward) timings.push_back(time_op(op, l_, hw_, imbalance_));
  return cache_.emplace_back(&g, std::move(timings)).second;
}

seconds p2p_time(const LayoutSpec& l, const HardwareProfile& hw, const graph::ModelGraphs& graphs) {
  if (l.pp <= 1) return 0.0;
  const comm::GroupPlacement pp_group = placement(GroupKind::pp, l);
  return comm::collective_time(comm::CollectiveKind::send_recv, graphs.dense.layer_input_bytes, {2, pp_group.stride},
                               hw.tiers)
      .time;
}

DpSync dp_sync_times(const memory::DeviceParams& p, const LayoutSpec& l, const HardwareProfile& hw) {
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
  DpSync d;
  std::tie(d.dense_grads, d.dense_gather) = sync(p.dense, placement(GroupKind::dp, l));
  std::tie(d.expert_grads, d.expert_gather) = sync(p.expert, placement(GroupKind::expert_dp, l));
  return d;
}

// Optimizer step (Adam) is memory-bound: per parameter of the local shard it reads the fp32 master, m, v
// and the gradient and writes master, m, v and the bf16 weight (30 B with fp32 moments and gradients).
double optimizer_bytes_per_param_step(const LayoutSpec& l) {
  return memory::optimizer_bytes_per_param(l) * 2 + memory::grad_bytes_per_param(l) + memory::weight_bytes_per_param;
}

seconds optimizer_step_time(const memory::DeviceParams& p, const LayoutSpec& l, const HardwareProfile& hw) {
  const double shard = l.distributed_optimizer ? 1.0 : 0.0;
  const count local = p.dense / (shard > 0 ? l.dp * l.cp : 1) + p.expert / (shard > 0 ? l.expert_dp() : 1);
  seconds t = local * optimizer_bytes_per_param_step(l) / (hw.device.hbm_bandwidth * hw.device.hbm_efficiency) +
              hw.device.launch_overhead;
  // Swapped optimizer states cross the host link both ways in the step, the two directions on their
  // own streams at once (MindSpeed "Swap Optimizer"): the states' bytes once at the link's rate.
  if (l.optimizer_swap) t += local * memory::optimizer_bytes_per_param(l) / hw.device.host_link_bandwidth;
  return t;
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

}  // namespace moesim::sim
