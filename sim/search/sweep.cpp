// One point of a sweep: its model checked against the constraints, its layouts pre-screened and the
// survivors simulated, best first (evaluate_point), and its results line (result_json, point_line).
#include "sim/search/sweep.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "sim/engine/simulate.h"
#include "sim/io/specs_io.h"
#include "sim/report/report.h"
#include "sim/search/op_finalists.h"

namespace moesim::sweep {

const char* to_string(Objective o) {
  switch (o) {
    case Objective::mfu: return "mfu";
    case Objective::tokens_per_s: return "tokens_per_s";
    case Objective::time_to_train: return "time_to_train";
    case Objective::active_params_per_s: return "active_params_per_s";
  }
  return "?";
}

bool better(Objective o, double a, double b) { return o == Objective::time_to_train ? a < b : a > b; }

namespace {

// The point's best layout so far and what its simulation says.
void record_best(PointResult& r, const LayoutSpec& l, const sim::SimulationResult& s) {
  r.layout = l;
  r.iteration_time = s.iteration_time;
  r.mfu = s.mfu;
  r.tokens_per_s = s.tokens_per_s;
  r.peak_memory = s.peak_memory;
  r.fits = s.fits;
  const sim::TimeBreakdown& b = s.breakdown;
  r.compute = b.compute;
  r.exposed_comm = b.exposed_tp + b.exposed_ep + b.exposed_cp + b.exposed_pp + b.exposed_dp;
  r.bubble = b.bubble;
  r.breakdown = b;
  r.peak_stage_memory = *std::max_element(s.memory.begin(), s.memory.end(), [](const auto& x, const auto& y) {
    return x.total() < y.total();
  });
  r.capacity = s.capacity;
}

}  // namespace

PointResult evaluate_point(const SweepSpec& spec, std::uint64_t index, const EvalOptions& options) {
  PointResult r;
  r.index = index;
  r.values = point_values(spec, index);
  ModelOrError mo = point_model(spec, r.values);
  if (!mo.model) {
    r.reason = mo.error;
    return r;
  }
  r.model = std::move(mo.model);
  const ModelSpec& m = *r.model;
  r.params = count_params(m);

  auto outside = [&](const char* what, double v, const ParamRange& range) -> std::string {
    if (range.min && v < *range.min) return fmt::format("{} params {:.4g}B below min {:.4g}B", what, v / 1e9, *range.min / 1e9);
    if (range.max && v > *range.max) return fmt::format("{} params {:.4g}B above max {:.4g}B", what, v / 1e9, *range.max / 1e9);
    return "";
  };
  r.reason = outside("total", r.params.total(), spec.total_params);
  if (r.reason.empty()) r.reason = outside("active", r.params.active(), spec.active_params);
  if (!r.reason.empty()) return r;

  const Candidates candidates = candidate_layouts(spec, m);
  r.layouts_invalid = candidates.invalid;
  if (candidates.valid.empty()) {
    r.reason = fmt::format("no valid layout on {} devices (first rejected: {})", spec.devices, candidates.first_error);
    return r;
  }

  const bytes budget = spec.hw.device.hbm_bytes * (1 - spec.memory_margin);
  struct Candidate {
    const LayoutSpec* layout;
    seconds bound;
  };
  std::vector<Candidate> queue;
  bytes smallest_static = std::numeric_limits<double>::infinity();
  PreScreen prescreen(m, spec.hw);
  for (const LayoutSpec& l : candidates.valid) {
    if (options.prune) {
      const bytes static_bytes = prescreen.static_memory_lower_bound(l);
      smallest_static = std::min(smallest_static, static_bytes);
      if (static_bytes > budget) {
        ++r.layouts_pruned;
        continue;
      }
    }
    queue.push_back({&l, prescreen.time_lower_bound(l)});
  }
  if (queue.empty()) {
    r.status = "no_fit";
    r.reason = fmt::format("no layout fits: weights, gradients and optimizer states alone need {:.1f} GB, budget {:.1f} GB",
                           smallest_static / 1e9, budget / 1e9);
    return r;
  }
  // Most promising first, so that the time bound can stop the search early. The stable sort keeps
  // enumeration order among equal bounds, so the winner among equally fast layouts is the same
  // with and without pruning.
  std::stable_sort(queue.begin(), queue.end(), [](const Candidate& a, const Candidate& b) { return a.bound < b.bound; });

  bool found = false;
  Finalists finalists(options.op_level_finalists, m, spec.hw);
  std::string simulation_error;
  bytes smallest_peak = std::numeric_limits<double>::infinity();
  // Simulates one queued layout at pass level; the fitting ones go to the finalists.
  const auto evaluate = [&](const LayoutSpec& l) {
    sim::SimulationResult s;
    try {
      s = sim::simulate(m, l, spec.hw);
    } catch (const std::exception& e) {
      // A layout the checks let through but the schedule cannot run counts as invalid.
      ++r.layouts_invalid;
      if (simulation_error.empty()) simulation_error = e.what();
      return;
    }
    ++r.layouts_evaluated;
    smallest_peak = std::min(smallest_peak, s.peak_memory);
    if (s.peak_memory > budget) return;
    finalists.add(&l, s);
    if (found && s.iteration_time >= r.iteration_time) return;
    found = true;
    record_best(r, l, s);
  };
  size_t k = 0;
  for (; k < queue.size(); ++k) {
    const seconds cutoff = options.op_level_finalists > 0 ? finalists.cutoff() : r.iteration_time;
    if (options.prune && found && queue[k].bound >= cutoff) break;
    evaluate(*queue[k].layout);
  }
  if (found && options.op_level_finalists > 0) {
    r.pass_level_iteration_time = r.iteration_time;
    finalists.select();
    // The pass-level cutoff kept only the n fastest; a layout it skipped can still win at operator
    // level while its pre-screen bound (a lower bound there too, tests/test_op_bound.cpp) does not
    // exceed the best operator-level time.
    for (; k < queue.size() && queue[k].bound <= finalists.best_time(); ++k) evaluate(*queue[k].layout);
  }
  r.layouts_pruned += static_cast<int>(queue.size() - k);
  if (!found) {
    r.status = r.layouts_evaluated == 0 ? "infeasible" : "no_fit";
    r.reason = r.layouts_evaluated == 0
                   ? "no layout could be simulated: " + simulation_error
                   : fmt::format("no layout fits: the smallest peak is {:.1f} GB, budget {:.1f} GB", smallest_peak / 1e9, budget / 1e9);
    return r;
  }
  if (options.op_level_finalists > 0) {
    const Finalists::Best& best = finalists.best();
    record_best(r, *best.layout, best.result);
    r.op_level_finalists = finalists.simulated();
  }
  r.status = "ok";
  switch (spec.objective) {
    case Objective::mfu: r.objective = r.mfu; break;
    case Objective::tokens_per_s: r.objective = r.tokens_per_s; break;
    case Objective::time_to_train: r.objective = spec.train_tokens / r.tokens_per_s; break;
    case Objective::active_params_per_s: r.objective = r.params.active() * r.tokens_per_s; break;
  }
  return r;
}

json result_json(const SweepSpec& spec, const PointResult& r) {
  json model = json::object();
  if (r.model) {
    const ModelSpec& m = *r.model;
    model = {{"layers", m.layers},
             {"hidden", static_cast<long>(m.hidden)},
             {"heads", m.attention.heads},
             {"experts", m.moe ? m.moe->experts : 0},
             {"top_k", m.moe ? m.moe->top_k : 0},
             {"expert_intermediate", m.moe ? static_cast<long>(m.moe->expert_intermediate) : 0L},
             {"shared_experts", m.moe ? m.moe->shared_experts : 0},
             {"first_dense_layers", m.moe ? m.moe->first_dense_layers : 0}};
    for (size_t i = 0; i < r.values.size(); ++i)
      if (!model.contains(spec.model_axes[i].name)) model[spec.model_axes[i].name] = r.values[i];
  } else {
    for (size_t i = 0; i < r.values.size(); ++i) model[spec.model_axes[i].name] = r.values[i];
  }
  json j = {{"index", r.index}, {"model", model}, {"status", r.status}};
  if (r.model) j["params"] = {{"total", r.params.total()}, {"active", r.params.active()}};
  if (!r.reason.empty()) j["reason"] = r.reason;
  j["layouts_evaluated"] = r.layouts_evaluated;
  j["layouts_pruned"] = r.layouts_pruned;
  j["layouts_invalid"] = r.layouts_invalid;
  if (r.status == "ok") {
    j["layout"] = report::layout_json(*r.layout);
    j["mfu"] = r.mfu;
    j["tokens_per_s"] = r.tokens_per_s;
    j["iteration_time_s"] = r.iteration_time;
    j["peak_memory_bytes"] = r.peak_memory;
    j["fits"] = r.fits;
    j["objective"] = r.objective;
    if (r.op_level_finalists > 0)
      j["op_level"] = {{"finalists", r.op_level_finalists}, {"pass_level_iteration_time_s", r.pass_level_iteration_time}};
    const sim::TimeBreakdown& b = r.breakdown;
    j["breakdown"] = {{"compute_s", r.compute},      {"exposed_comm_s", r.exposed_comm}, {"bubble_s", r.bubble},
                      {"exposed_tp_s", b.exposed_tp}, {"exposed_ep_s", b.exposed_ep},     {"exposed_cp_s", b.exposed_cp},
                      {"exposed_pp_s", b.exposed_pp}, {"exposed_dp_s", b.exposed_dp},     {"exposed_swap_s", b.exposed_swap},
                      {"optimizer_s", b.optimizer}};
    const memory::StageMemory& m = r.peak_stage_memory;
    j["memory"] = {{"stage", m.stage},          {"weights", m.weights}, {"gradients", m.gradients},
                   {"optimizer", m.optimizer},  {"activations", m.activations}, {"buffers", m.buffers},
                   {"allocator_cache", m.allocator_cache}, {"reserve", m.reserve},      {"capacity", r.capacity}};
  }
  return j;
}

json point_line(const SweepSpec& spec, std::uint64_t index, const EvalOptions& options) {
  try {
    const PointResult r = evaluate_point(spec, index, options);
    json line = result_json(spec, r);
    if (options.emit_args && r.status == "ok") line["launch_args"] = io::launch_arguments(*r.model, *r.layout, *options.emit_args);
    return line;
  } catch (const std::exception& e) {
    PointResult failed;
    failed.index = index;
    failed.values = point_values(spec, index);
    failed.reason = std::string("evaluation failed: ") + e.what();
    return result_json(spec, failed);
  }
}

}  // namespace moesim::sweep
