// Which layouts a point tries (candidate_layouts) and the lower bounds that skip a layout before it is
// simulated (PreScreen): static memory and step time.
#include "sim/search/sweep.h"

#include <fmt/format.h>

#include "costmodels/graph.h"
#include "costmodels/layout.h"
#include "costmodels/memory.h"
#include "sim/io/specs_io.h"

namespace moesim::sweep {

namespace {

// Megatron's uneven split handles any layer count, so auto pipeline sizes are powers of two that
// leave every stage at least one layer.
std::vector<int> auto_pp(const ModelSpec& m) {
  std::vector<int> out;
  for (int p = 1; p <= 32 && p <= m.layers; p *= 2) out.push_back(p);
  return out;
}

std::vector<int> divisors(int n) {
  std::vector<int> out;
  for (int d = 1; d <= n; ++d)
    if (n % d == 0) out.push_back(d);
  return out;
}

template <class T>
std::vector<T> or_default(const std::vector<T>& axis, std::vector<T> fallback) {
  return axis.empty() ? fallback : axis;
}

}  // namespace

Candidates candidate_layouts(const SweepSpec& spec, const ModelSpec& model) {
  const LayoutAxes& a = spec.layout_axes;
  const LayoutSpec& base = spec.layout_base;
  const bool au = spec.auto_layout;
  const std::vector<int> tps = or_default(a.tp, au ? std::vector<int>{1, 2, 4, 8} : std::vector<int>{base.tp});
  const std::vector<int> pps = or_default(a.pp, au ? auto_pp(model) : std::vector<int>{base.pp});
  const std::vector<int> vpps = or_default(a.vpp, au ? std::vector<int>{1, 2, 4} : std::vector<int>{base.vpp});
  const std::vector<int> eps = or_default(a.ep, au && model.moe ? divisors(model.moe->experts) : std::vector<int>{base.ep});
  // etp 0 = "= tp": Megatron's default, and the auto set's second choice.
  const std::vector<int> etps = or_default(a.etp, au ? std::vector<int>{1, 0} : std::vector<int>{spec.fixed_etp ? base.etp : 0});
  const std::vector<int> cps = or_default(a.cp, {base.cp});
  const std::vector<int> mbs = or_default(a.micro_batch, au ? std::vector<int>{1, 2} : std::vector<int>{base.micro_batch});
  const std::vector<Recompute> recomputes =
      or_default(a.recompute, au ? std::vector<Recompute>{Recompute::selective, Recompute::full} : std::vector<Recompute>{base.recompute});
  // An empty schedule list means "follows vpp" (interleaved when vpp > 1), as in a layout file.
  const std::vector<std::optional<ScheduleKind>> schedules = [&] {
    std::vector<std::optional<ScheduleKind>> out;
    if (!a.schedule.empty()) out.assign(a.schedule.begin(), a.schedule.end());
    else out.push_back(spec.fixed_schedule ? std::optional<ScheduleKind>(base.schedule) : std::nullopt);
    return out;
  }();
  const std::vector<bool> ep_ov = or_default(a.ep_overlap, {base.overlap.ep_all_to_all});
  const std::vector<bool> tp_ov = or_default(a.tp_overlap, {base.overlap.tp_comm});
  const std::vector<bool> hier = or_default(a.hierarchical_ep, {base.hierarchical_ep_all_to_all});

  Candidates out;
  auto reject = [&](const std::string& why) {
    if (out.invalid++ == 0) out.first_error = why;
  };
  for (int tp : tps)
    for (int pp : pps)
      for (int vpp : vpps)
        for (int ep : eps) {
          std::vector<int> resolved_etps;  // etp 1 and "= tp" coincide at tp 1
          for (int e : etps) {
            const int v = e == 0 ? tp : e;
            if (std::find(resolved_etps.begin(), resolved_etps.end(), v) == resolved_etps.end()) resolved_etps.push_back(v);
          }
          for (int etp : resolved_etps)
            for (int cp : cps)
              for (int mb : mbs)
                for (Recompute rc : recomputes)
                  for (const auto& schedule : schedules)
                    for (bool epo : ep_ov)
                      for (bool tpo : tp_ov)
                        for (bool h : hier) {
                          LayoutSpec l = base;
                          l.tp = tp, l.pp = pp, l.vpp = vpp, l.ep = ep, l.etp = etp, l.cp = cp, l.micro_batch = mb;
                          l.dp = 0;
                          l.recompute = rc;
                          l.schedule = schedule.value_or(vpp > 1 ? ScheduleKind::interleaved : ScheduleKind::one_f_one_b);
                          l.overlap.ep_all_to_all = epo;
                          l.overlap.tp_comm = tpo;
                          l.hierarchical_ep_all_to_all = h;
                          if (!spec.fixed_sequence_parallel) l.sequence_parallel = tp > 1;
                          // Only the interleaved schedule runs vpp chunks; DualPipe always runs two.
                          if (vpp > 1 && l.schedule != ScheduleKind::interleaved) {
                            reject(fmt::format("vpp {} needs the interleaved schedule, not {}", vpp, io::to_string(l.schedule)));
                            continue;
                          }
                          if (auto err = complete_and_check_layout(model, l)) {
                            reject(*err);
                            continue;
                          }
                          out.valid.push_back(l);
                        }
        }
  return out;
}

bytes static_memory_lower_bound(const ModelSpec& model, const LayoutSpec& layout, const HardwareProfile& hw) {
  return PreScreen(model, hw).static_memory_lower_bound(layout);
}

seconds time_lower_bound(const ModelSpec& model, const LayoutSpec& layout, const HardwareProfile& hw) {
  return PreScreen(model, hw).time_lower_bound(layout);
}

bytes PreScreen::static_memory_lower_bound(const LayoutSpec& layout) {
  // stage_memory with no microbatch in flight: weights, gradients, optimizer, buffers and reserve,
  // with the same sharding rules as the simulation. Balanced routing (imbalance 1) is the least
  // buffer any routing can need.
  const graph::GraphContext context = graph::make_context(model_, layout, hw_.device);
  auto known = std::find_if(graphs_.begin(), graphs_.end(), [&](const Graphs& entry) { return entry.context == context; });
  if (known == graphs_.end()) {
    graph::ModelGraphs built = graph::build_model_graphs(model_, context);
    const memory::OpWorkingSets working_sets = memory::op_working_sets(built);
    known = graphs_.insert(graphs_.end(), Graphs{context, std::move(built), working_sets});
  }
  const PlanKey plan_key{layout.pp, layout.vpp, layout.schedule == ScheduleKind::dualpipe, layout.pipeline_layers};
  auto known_plan = std::find_if(plans_.begin(), plans_.end(), [&](const auto& entry) { return entry.first == plan_key; });
  const PipelinePlan& plan =
      known_plan != plans_.end() ? known_plan->second : plans_.emplace_back(plan_key, partition_layers(model_, layout)).second;
  none_in_flight_.assign(plan.stages, 0.0);
  bytes peak = 0;
  for (const auto& sm : memory::stage_memory(model_, layout, plan, known->graphs, hw_, none_in_flight_, 1.0, known->working_sets))
    peak = std::max(peak, sm.total());
  return peak;
}

seconds PreScreen::time_lower_bound(const LayoutSpec& layout) {
  // Model FLOPs count the attention core unmasked (s^2, or s w when sliding); a causal kernel skips
  // the masked part in the forward, the backward and the recomputation, so at most 4x the forward's
  // masked FLOPs (2x the core of full layers) are subtracted.
  const FlopsKey key{layout.seq_len, layout.recompute, layout.flash_attention};
  auto known = std::find_if(flops_.begin(), flops_.end(), [&](const auto& entry) { return entry.first == key; });
  const graph::FlopsPerToken& f =
      known != flops_.end()
          ? known->second
          : flops_.emplace_back(key, graph::model_flops_per_token(model_, key.seq_len, key.recompute, key.flash_attention)).second;
  const flops executed = f.training + f.recompute - 4 * f.attention_core_masked;
  const MatrixEfficiency& e = hw_.device.matrix;
  const double best_efficiency = e.peak_fraction * std::max({1.0, e.attention_fraction, e.grouped_gemm_factor});
  const double tokens = static_cast<double>(layout.global_batch) * layout.seq_len;
  return executed * tokens / (layout.devices * hw_.matrix_peak(layout.precision) * best_efficiency);
}

}  // namespace moesim::sweep
