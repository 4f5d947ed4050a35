#include "sim/search/sweep.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "costmodels/graph.h"
#include "costmodels/layout.h"
#include "costmodels/memory.h"
#include "sim/io/input_error.h"
#include "sim/io/json_reader.h"
#include "sim/io/specs_io.h"
#include "sim/io/sweep_results.h"
#include "sim/report/report.h"
#include "sim/engine/simulate.h"

namespace moesim::sweep {

namespace fs = std::filesystem;
using io::Field;

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

constexpr double max_layout_candidates = 1e6;

// The canonical model-axis order: it fixes how point indices map to values.
const std::vector<std::string> model_axis_names = {"layers",         "hidden",     "experts", "top_k", "expert_intermediate",
                                                   "shared_experts", "heads",      "first_dense_layers",
                                                   "sliding_window", "full_attention_interval", "expert_groups"};
// Axes every result line carries; the attention and MoGE axes appear only in the lines of specs that sweep them.
const std::vector<std::string> model_result_names(model_axis_names.begin(), model_axis_names.end() - 3);
const std::vector<std::string> moe_axis_names = {"experts", "top_k", "expert_intermediate", "shared_experts",
                                                 "first_dense_layers", "expert_groups"};

std::string join(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : "|") + n;
  return s;
}

// Unknown keys are almost always typos; silently ignoring them would sweep something else than asked.
void reject_unknown(const Field& f, const std::vector<std::string>& allowed) {
  for (const auto& [key, value] : f.raw().items())
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) f.fail(key, "no such field (known: " + join(allowed) + ")");
}

// A non-empty list of whole numbers >= min_value, or a {"from", "to", "step"} range.
std::vector<int> int_values(const Field& f, const std::string& key, int min_value) {
  const json& v = f.raw().at(key);
  const std::string expected = fmt::format("a non-empty list of whole numbers >= {} or {{\"from\", \"to\", \"step\"}}", min_value);
  std::vector<int> out;
  auto whole = [&](const json& e) {
    if (!e.is_number_integer() || e.get<long long>() < min_value || e.get<long long>() > 2000000000) f.fail(key, expected);
    return e.get<int>();
  };
  if (v.is_array()) {
    for (const json& e : v) out.push_back(whole(e));
  } else if (v.is_object()) {
    const Field r = f.child(key);
    reject_unknown(r, {"from", "to", "step"});
    for (const char* k : {"from", "to"})
      if (!r.has(k)) r.fail(k, "a whole number");
    const int from = whole(v.at("from")), to = whole(v.at("to"));
    const int step = r.positive_int_or("step", 1);
    if (to < from) r.fail("to", fmt::format("a value >= from ({})", from));
    if ((static_cast<long long>(to) - from) / step >= 100000) r.fail("step", "a step giving at most 100000 values");
    for (long long x = from; x <= to; x += step) out.push_back(static_cast<int>(x));
  } else {
    f.fail(key, expected);
  }
  if (out.empty()) f.fail(key, expected);
  if (std::set<int>(out.begin(), out.end()).size() != out.size()) f.fail(key, "distinct values");
  return out;
}

std::vector<std::string> string_values(const Field& f, const std::string& key) {
  const json& v = f.raw().at(key);
  if (!v.is_array() || v.empty()) f.fail(key, "a non-empty list of strings");
  std::vector<std::string> out;
  for (const json& e : v) {
    if (!e.is_string()) f.fail(key, "a non-empty list of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::vector<bool> bool_values(const Field& f, const std::string& key) {
  const json& v = f.raw().at(key);
  if (!v.is_array() || v.empty()) f.fail(key, "a non-empty list of true/false");
  std::vector<bool> out;
  for (const json& e : v) {
    if (!e.is_boolean()) f.fail(key, "a non-empty list of true/false");
    out.push_back(e.get<bool>());
  }
  return out;
}

ParamRange param_range(const Field& constraints, const std::string& key) {
  ParamRange r;
  if (auto c = constraints.optional_child(key)) {
    reject_unknown(*c, {"min", "max"});
    if (c->has("min")) r.min = c->non_negative("min");
    if (c->has("max")) r.max = c->positive("max");
    if (r.min && r.max && *r.max < *r.min) c->fail("max", fmt::format("a value >= min ({:g})", *r.min));
  }
  return r;
}

// Relative model and profile paths are taken relative to the spec file, so a spec and its model
// can live side by side whatever the working directory.
std::string resolve_near(const std::string& name, const std::string& spec_file) {
  const bool looks_like_path = name.find('/') != std::string::npos || name.ends_with(".json");
  if (!looks_like_path || fs::path(name).is_absolute()) return name;
  const fs::path near = fs::path(spec_file).parent_path() / name;
  std::error_code ec;  // a name too long for the file system is simply not there
  return fs::exists(near, ec) ? near.string() : name;
}

}  // namespace

SweepSpec parse_spec(const json& j, const std::string& file, const ModelSpec* base_model) {
  const Field f(j, file, "");
  reject_unknown(f, {"name", "description", "base_model", "hardware", "devices", "seq_len", "global_batch_tokens",
                     "model_axes", "layout", "layout_axes", "layout_fixed", "constraints", "objective", "train_tokens"});
  SweepSpec s;
  s.file = file;
  if (base_model && !f.has("base_model")) {
    s.base_model_name = base_model->name;
    s.base_model = *base_model;
  } else {
    s.base_model_name = f.string("base_model");
    s.base_model = io::load_model(resolve_near(s.base_model_name, file));
  }
  s.hw = io::load_profile(resolve_near(f.string("hardware"), file));
  s.devices = f.positive_int("devices");
  s.seq_len = f.positive_int("seq_len");
  const double batch_tokens = f.positive("global_batch_tokens");
  const double sequences = batch_tokens / s.seq_len;
  if (sequences != std::floor(sequences) || sequences > 2e9)
    f.fail("global_batch_tokens", fmt::format("a whole multiple of seq_len ({})", s.seq_len));
  s.global_batch = static_cast<int>(sequences);
  s.base_model.seq_len = s.seq_len;

  if (auto axes = f.optional_child("model_axes")) {
    reject_unknown(*axes, model_axis_names);
    for (const auto& name : model_axis_names) {
      if (!axes->has(name)) continue;
      const bool moe_axis = std::find(moe_axis_names.begin(), moe_axis_names.end(), name) != moe_axis_names.end();
      if (moe_axis && !s.base_model.moe) axes->fail(name, "no MoE axis: base model '" + s.base_model_name + "' is dense");
      const AttentionSpec& at = s.base_model.attention;
      if (name == "sliding_window" && at.sliding_window == 0)
        axes->fail(name, "no window axis: base model '" + s.base_model_name + "' has no sliding layers");
      if (name == "full_attention_interval" && at.sliding_window == 0 && at.linear.heads == 0)
        axes->fail(name, "no interval axis: base model '" + s.base_model_name + "' has neither sliding nor linear layers");
      const int min_value = name == "shared_experts" || name == "first_dense_layers" ? 0 : 1;
      s.model_axes.push_back({name, int_values(*axes, name, min_value)});
    }
  }

  if (f.has("layout")) {
    f.choice("layout", {"auto"});
    s.auto_layout = true;
  }
  // layout_fixed is a layout file's fields; the spec's own devices, batch and sequence length join it.
  json fixed = json::object();
  const std::vector<std::string> owned = {"devices", "global_batch", "seq_len", "dp"};
  if (f.has("layout_fixed")) {
    const Field lf = f.child("layout_fixed");
    for (const auto& key : owned)
      if (lf.has(key)) lf.fail(key, key == "dp" ? "no dp (it follows from devices, tp, cp and pp)" : "no " + key + " (set it at the top level)");
    fixed = lf.raw();
  }
  const std::vector<std::string> layout_axis_names = {"tp", "pp", "vpp", "ep", "etp", "cp", "micro_batch", "recompute",
                                                      "schedule", "ep_overlap", "tp_overlap", "hierarchical_ep"};
  if (auto la = f.optional_child("layout_axes")) {
    reject_unknown(*la, layout_axis_names);
    LayoutAxes& a = s.layout_axes;
    const std::vector<std::pair<std::string, std::vector<int>*>> ints = {
        {"tp", &a.tp}, {"pp", &a.pp}, {"vpp", &a.vpp}, {"ep", &a.ep}, {"etp", &a.etp}, {"cp", &a.cp}, {"micro_batch", &a.micro_batch}};
    for (const auto& [name, target] : ints)
      if (la->has(name)) *target = int_values(*la, name, 1);
    if (la->has("recompute"))
      for (const auto& v : string_values(*la, "recompute")) a.recompute.push_back(io::parse_recompute(v, la->where("recompute")));
    if (la->has("schedule"))
      for (const auto& v : string_values(*la, "schedule")) a.schedule.push_back(io::parse_schedule(v, la->where("schedule")));
    if (la->has("ep_overlap")) a.ep_overlap = bool_values(*la, "ep_overlap");
    if (la->has("tp_overlap")) a.tp_overlap = bool_values(*la, "tp_overlap");
    if (la->has("hierarchical_ep")) a.hierarchical_ep = bool_values(*la, "hierarchical_ep");
    // A field both swept and fixed is ambiguous.
    const std::map<std::string, std::pair<std::string, std::string>> fixed_key = {
        {"ep_overlap", {"overlap", "ep_all_to_all"}}, {"tp_overlap", {"overlap", "tp_comm"}}, {"hierarchical_ep", {"ep_all_to_all", ""}}};
    for (const auto& name : layout_axis_names) {
      if (!la->has(name)) continue;
      const auto it = fixed_key.find(name);
      const bool clash = it == fixed_key.end() ? fixed.contains(name)
                         : it->second.second.empty()
                             ? fixed.contains(it->second.first)
                             : fixed.contains(it->second.first) && fixed[it->second.first].is_object() &&
                                   fixed[it->second.first].contains(it->second.second);
      if (clash) la->fail(name, "a field that layout_fixed does not also set");
    }
    // Every point enumerates the product of the candidate lists: keep it to what can be checked.
    double product = 1;
    for (const std::size_t n : {a.tp.size(), a.pp.size(), a.vpp.size(), a.ep.size(), a.etp.size(), a.cp.size(),
                                a.micro_batch.size(), a.recompute.size(), a.schedule.size(), a.ep_overlap.size(),
                                a.tp_overlap.size(), a.hierarchical_ep.size()})
      product *= std::max<std::size_t>(n, 1);
    if (product > max_layout_candidates)
      f.fail("layout_axes", fmt::format("at most {} candidate layouts per point (the lists multiply to {:.3g})",
                                        max_layout_candidates, product));
  }
  s.fixed_etp = fixed.contains("etp");
  s.fixed_schedule = fixed.contains("schedule");
  s.fixed_sequence_parallel = fixed.contains("sequence_parallel");
  fixed["devices"] = s.devices;
  fixed["global_batch"] = s.global_batch;
  fixed["seq_len"] = s.seq_len;
  s.layout_base = io::parse_layout(fixed, file + " (layout_fixed)");

  if (auto c = f.optional_child("constraints")) {
    reject_unknown(*c, {"total_params", "active_params", "memory_margin"});
    s.total_params = param_range(*c, "total_params");
    s.active_params = param_range(*c, "active_params");
    s.memory_margin = c->non_negative_or("memory_margin", 0);
    if (s.memory_margin >= 1) c->fail("memory_margin", "a fraction in [0, 1)");
  }
  const std::string objective =
      f.choice_or("objective", {"mfu", "tokens_per_s", "time_to_train", "active_params_per_s"}, "mfu");
  for (Objective o : {Objective::mfu, Objective::tokens_per_s, Objective::time_to_train, Objective::active_params_per_s})
    if (objective == to_string(o)) s.objective = o;
  if (s.objective == Objective::time_to_train) s.train_tokens = f.positive("train_tokens");
  else if (f.has("train_tokens")) f.fail("train_tokens", "no train_tokens unless objective is time_to_train");
  return s;
}

SweepSpec load_spec(const std::string& path) { return parse_spec(io::read_json_file(path), path); }

std::uint64_t point_count(const SweepSpec& spec) {
  std::uint64_t n = 1;
  for (const auto& a : spec.model_axes) {
    if (n > std::numeric_limits<std::uint64_t>::max() / a.values.size())
      throw InputError(spec.file + ": field 'model_axes': the product of the axes overflows 64 bits");
    n *= a.values.size();
  }
  return n;
}

std::vector<int> point_values(const SweepSpec& spec, std::uint64_t index) {
  std::vector<int> values(spec.model_axes.size());
  for (size_t i = spec.model_axes.size(); i-- > 0;) {
    const auto& axis = spec.model_axes[i].values;
    values[i] = axis[index % axis.size()];
    index /= axis.size();
  }
  return values;
}

namespace {

// full_attention_interval k: k - 1 layers of the base model's other kind (linear where it has linear
// layers, else sliding), then one full layer, repeated (Qwen3-Next's full_attention_interval, Gemma 3's
// sliding_window_pattern); k = 1: every layer full.
std::vector<AttentionSpan> interval_pattern(const AttentionSpec& base, int k) {
  const AttentionSpan other = base.linear.heads > 0 ? AttentionSpan::linear : AttentionSpan::sliding;
  std::vector<AttentionSpan> pattern(static_cast<std::size_t>(k), other);
  pattern.back() = AttentionSpan::full;
  return pattern;
}

}  // namespace

ModelOrError point_model(const SweepSpec& spec, const std::vector<int>& values) {
  ModelSpec m = spec.base_model;
  const ModelSpec& base = spec.base_model;
  std::optional<int> heads;
  for (size_t i = 0; i < values.size(); ++i) {
    const std::string& name = spec.model_axes[i].name;
    const int v = values[i];
    if (name == "layers") m.layers = v;
    else if (name == "hidden") m.hidden = v;
    else if (name == "heads") heads = v;
    else if (name == "experts") m.moe->experts = v;
    else if (name == "top_k") m.moe->top_k = v;
    else if (name == "expert_intermediate") m.moe->expert_intermediate = v;
    else if (name == "shared_experts") m.moe->shared_experts = v;
    else if (name == "first_dense_layers") m.moe->first_dense_layers = v;
    else if (name == "sliding_window") m.attention.sliding_window = v;
    else if (name == "full_attention_interval") m.attention.layer_pattern = interval_pattern(base.attention, v);
    else if (name == "expert_groups") m.moe->expert_groups = v;
  }
  // A shared expert that had the routed experts' width keeps it when that width is swept.
  if (m.moe && base.moe->shared_expert_intermediate == base.moe->expert_intermediate)
    m.moe->shared_expert_intermediate = m.moe->expert_intermediate;

  AttentionSpec& at = m.attention;
  if (at.type == AttentionType::mla) {
    // MLA's head width is set by its own dimensions, not by hidden: keep the heads unless swept.
    if (heads) at.heads = at.kv_heads = *heads;
  } else if (heads || m.hidden != base.hidden) {
    // Keep head_dim (and the GQA group size); the head count follows hidden unless swept.
    if (!heads) {
      if (static_cast<long>(m.hidden) % at.head_dim != 0)
        return {std::nullopt, fmt::format("hidden {} is not a multiple of head_dim {}", m.hidden, at.head_dim)};
      heads = static_cast<int>(m.hidden / at.head_dim);
    }
    const int group = base.attention.heads / base.attention.kv_heads;
    if (base.attention.heads % base.attention.kv_heads != 0 || *heads % group != 0)
      return {std::nullopt, fmt::format("{} heads do not split into GQA groups of {}", *heads, group)};
    at.heads = *heads;
    at.kv_heads = *heads / group;
  }
  if (m.moe) {
    if (m.moe->top_k > m.moe->experts)
      return {std::nullopt, fmt::format("top_k {} exceeds experts {}", m.moe->top_k, m.moe->experts)};
    if (m.moe->first_dense_layers >= m.layers)
      return {std::nullopt, fmt::format("first_dense_layers {} not below layers {}", m.moe->first_dense_layers, m.layers)};
    // The base model's group-limited routing keeps its group count (the rules of a model file).
    const MoeSpec& moe = *m.moe;
    if (moe.experts % moe.router_groups != 0)
      return {std::nullopt, fmt::format("{} experts do not split into the base model's {} router groups", moe.experts,
                                        moe.router_groups)};
    if (moe.expert_groups > 1 && (moe.experts % moe.expert_groups != 0 || moe.top_k % moe.expert_groups != 0))
      return {std::nullopt, fmt::format("{} experts, top_k {} do not split into {} MoGE groups", moe.experts,
                                        moe.top_k, moe.expert_groups)};
    if (moe.expert_groups > 1 && moe.router_groups > 1)
      return {std::nullopt, "MoGE expert groups with the base model's group-limited routing"};
    if (moe.top_k > moe.experts_in_chosen_groups())
      return {std::nullopt, fmt::format("top_k {} exceeds the {} experts of {} of {} router groups", moe.top_k,
                                        moe.experts_in_chosen_groups(), moe.router_group_top_k, moe.router_groups)};
  }
  return {m, ""};
}

// ------------------------------------------------------------------------------------------------
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
  const graph::GraphContext context = graph::make_context(model_, layout);
  auto known = std::find_if(graphs_.begin(), graphs_.end(), [&](const auto& entry) { return entry.first == context; });
  const graph::ModelGraphs& graphs =
      known != graphs_.end() ? known->second : graphs_.emplace_back(context, graph::build_model_graphs(model_, context)).second;
  const PipelinePlan plan = partition_layers(model_, layout);
  const std::vector<double> none_in_flight(plan.stages, 0.0);
  bytes peak = 0;
  for (const auto& sm : memory::stage_memory(model_, layout, plan, graphs, hw_, none_in_flight, 1.0))
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

// ------------------------------------------------------------------------------------------------
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
  std::string simulation_error;
  bytes smallest_peak = std::numeric_limits<double>::infinity();
  for (size_t k = 0; k < queue.size(); ++k) {
    if (options.prune && found && queue[k].bound >= r.iteration_time) {
      r.layouts_pruned += static_cast<int>(queue.size() - k);
      break;
    }
    const LayoutSpec& l = *queue[k].layout;
    sim::SimulationResult s;
    try {
      s = sim::simulate(m, l, spec.hw);
    } catch (const std::exception& e) {
      // A layout the checks let through but the schedule cannot run counts as invalid.
      ++r.layouts_invalid;
      if (simulation_error.empty()) simulation_error = e.what();
      continue;
    }
    ++r.layouts_evaluated;
    smallest_peak = std::min(smallest_peak, s.peak_memory);
    if (s.peak_memory > budget || (found && s.iteration_time >= r.iteration_time)) continue;
    found = true;
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
  if (!found) {
    r.status = r.layouts_evaluated == 0 ? "infeasible" : "no_fit";
    r.reason = r.layouts_evaluated == 0
                   ? "no layout could be simulated: " + simulation_error
                   : fmt::format("no layout fits: the smallest peak is {:.1f} GB, budget {:.1f} GB", smallest_peak / 1e9, budget / 1e9);
    return r;
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
    const sim::TimeBreakdown& b = r.breakdown;
    j["breakdown"] = {{"compute_s", r.compute},      {"exposed_comm_s", r.exposed_comm}, {"bubble_s", r.bubble},
                      {"exposed_tp_s", b.exposed_tp}, {"exposed_ep_s", b.exposed_ep},     {"exposed_cp_s", b.exposed_cp},
                      {"exposed_pp_s", b.exposed_pp}, {"exposed_dp_s", b.exposed_dp},     {"exposed_swap_s", b.exposed_swap},
                      {"optimizer_s", b.optimizer}};
    const memory::StageMemory& m = r.peak_stage_memory;
    j["memory"] = {{"stage", m.stage},          {"weights", m.weights}, {"gradients", m.gradients},
                   {"optimizer", m.optimizer},  {"activations", m.activations}, {"buffers", m.buffers},
                   {"reserve", m.reserve},      {"capacity", r.capacity}};
  }
  return j;
}

// ------------------------------------------------------------------------------------------------
Summary::Summary(Objective objective, int top_k) : objective_(objective), top_k_(std::max(0, top_k)) {}

namespace {

std::uint64_t index_of(const json& line) { return line.at("index").get<std::uint64_t>(); }

// Keeps the points no other point beats on both keys (higher is better for both; callers negate a
// key to minimise it). Exact ties on both keys all stay, so the front is the same in any order.
void add_to_front(std::vector<json>& front, const json& line, double (*x)(const json&), double (*y)(const json&)) {
  auto dominates = [&](const json& a, const json& b) {
    return x(a) >= x(b) && y(a) >= y(b) && (x(a) > x(b) || y(a) > y(b));
  };
  for (const json& f : front)
    if (dominates(f, line)) return;
  std::erase_if(front, [&](const json& f) { return dominates(line, f); });
  front.push_back(line);
}

double mfu_of(const json& l) { return l.at("mfu").get<double>(); }
double active_of(const json& l) { return l.at("params").at("active").get<double>(); }
double tokens_of(const json& l) { return l.at("tokens_per_s").get<double>(); }
double neg_memory_of(const json& l) { return -l.at("peak_memory_bytes").get<double>(); }

std::vector<json> by_index(std::vector<json> v) {
  std::sort(v.begin(), v.end(), [](const json& a, const json& b) { return index_of(a) < index_of(b); });
  return v;
}

}  // namespace

void Summary::add(const json& line) {
  const std::string status = line.at("status").get<std::string>();
  if (status != "ok") {
    ++(status == "no_fit" ? no_fit : infeasible);
    return;
  }
  ++ok;
  auto ahead = [&](const json& a, const json& b) {
    const double oa = a.at("objective").get<double>(), ob = b.at("objective").get<double>();
    if (oa != ob) return better(objective_, oa, ob);
    return index_of(a) < index_of(b);
  };
  top_.insert(std::upper_bound(top_.begin(), top_.end(), line, ahead), line);
  if (static_cast<int>(top_.size()) > top_k_) top_.pop_back();
  add_to_front(front_mfu_, line, mfu_of, active_of);
  add_to_front(front_memory_, line, tokens_of, neg_memory_of);
}

std::vector<json> Summary::ranked() const { return top_; }
std::vector<json> Summary::pareto_mfu_active() const { return by_index(front_mfu_); }
std::vector<json> Summary::pareto_tokens_memory() const { return by_index(front_memory_); }

// ------------------------------------------------------------------------------------------------
namespace {

// An earlier run's file may have been edited or damaged anywhere: resume takes only lines that
// sweep writes (the report's check), and an ok point must carry every model axis the summary shows.
void check_resumable_line(const json& line, const std::string& where) {
  io::check_sweep_result_line(line, where);
  if (line.at("status") != "ok") return;
  for (const auto& name : model_result_names)
    if (!line.at("model").contains(name)) throw InputError(where + ": field 'model." + name + "': expected a whole number, got missing");
}

// Reads the complete lines of an earlier run into `summary` and `done`; returns the byte length of
// those lines. A last line without its newline was cut off mid-write and is dropped (rewritten). A
// part file's first line must be its shard's header.
std::uint64_t read_existing(const RunOptions& options, std::uint64_t points, Summary& summary, std::set<std::uint64_t>& done) {
  const std::string& path = options.out_path;
  std::ifstream in(path, std::ios::binary);
  if (!in) return 0;
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  std::uint64_t good = 0;
  int line_no = 0;
  for (size_t start = 0; start < text.size();) {
    const size_t end = text.find('\n', start);
    if (end == std::string::npos) break;
    ++line_no;
    if (line_no == 1 && !options.header.empty()) {
      if (text.compare(0, end, options.header) != 0)
        throw InputError(fmt::format("{}: line 1: not the part header of this spec and shard ({}); cannot resume", path, options.header));
      start = good = end + 1;
      continue;
    }
    json line;
    try {
      line = io::parse_json_text(text.substr(start, end - start), path);
    } catch (const InputError&) {
      throw InputError(fmt::format("{}: line {}: not a JSON result line; cannot resume", path, line_no));
    }
    try {
      check_resumable_line(line, fmt::format("{}: line {}", path, line_no));
    } catch (const InputError& e) {
      throw InputError(std::string(e.what()) + "; cannot resume");
    }
    const std::uint64_t index = index_of(line);
    if (index >= points || index % options.shard_count != options.shard_index || !done.insert(index).second)
      throw InputError(fmt::format("{}: line {}: point {} is not a new point of this spec ({} points{}); cannot resume", path,
                                   line_no, index, points,
                                   options.shard_count > 1 ? fmt::format(", shard {}/{}", options.shard_index, options.shard_count) : ""));
    summary.add(line);
    start = end + 1;
    good = start;
  }
  return good;
}

std::string clock(double s) {
  const long t = static_cast<long>(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60) : fmt::format("{}:{:02}", t / 60, t % 60);
}

}  // namespace

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

std::ofstream open_results(const RunOptions& options, std::uint64_t points, Summary& summary, std::set<std::uint64_t>& done) {
  if (options.shard_count < 1 || options.shard_index >= options.shard_count)
    throw InputError(fmt::format("shard {}/{}: expected I/N with 0 <= I < N", options.shard_index, options.shard_count));
  std::ofstream out;
  std::uint64_t keep = 0;
  if (options.resume && fs::exists(options.out_path)) keep = read_existing(options, points, summary, done);
  if (keep > 0) {
    fs::resize_file(options.out_path, keep);
    out.open(options.out_path, std::ios::binary | std::ios::app);
  } else {
    out.open(options.out_path, std::ios::binary | std::ios::trunc);
    if (!options.header.empty()) out << options.header << '\n' << std::flush;
  }
  if (!out) throw InputError(options.out_path + ": cannot write file");
  return out;
}

Summary run_sweep(const SweepSpec& spec, const RunOptions& options, RunStats* stats) {
  const std::uint64_t points = point_count(spec);
  Summary summary(spec.objective, options.top_k);
  std::set<std::uint64_t> done;
  std::ofstream out = open_results(options, points, summary, done);
  auto skipped = [&](std::uint64_t i) { return done.count(i) || i % options.shard_count != options.shard_index; };

  // Workers take indices in order and hand back finished lines; this thread writes them in index
  // order. A worker waits while it is `window` points ahead of the writer, so one slow point cannot
  // make the reorder buffer hold the rest of the space.
  const int jobs = std::max(1, options.jobs);
  const std::uint64_t window = 64ull * jobs;
  std::mutex mu;
  std::condition_variable line_ready, space;
  std::map<std::uint64_t, std::pair<std::string, json>> buffer;
  std::uint64_t writer_at = 0;  // every index below is written or was already in the file
  std::atomic<std::uint64_t> next{0};

  auto worker = [&] {
    for (;;) {
      const std::uint64_t i = next.fetch_add(1);
      if (i >= points) return;
      if (skipped(i)) continue;
      {
        std::unique_lock lock(mu);
        space.wait(lock, [&] { return i < writer_at + window; });
      }
      json line = point_line(spec, i, options.eval);
      std::string text = line.dump();
      {
        std::lock_guard lock(mu);
        buffer.emplace(i, std::pair{std::move(text), std::move(line)});
      }
      line_ready.notify_all();
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < jobs; ++t) threads.emplace_back(worker);

  const auto started = std::chrono::steady_clock::now();
  auto last_draw = started - std::chrono::seconds(1);
  std::uint64_t evaluated = 0;
  const std::uint64_t selected = points / options.shard_count + (options.shard_index < points % options.shard_count);
  const std::uint64_t to_do = selected - done.size();
  for (std::uint64_t i = 0; i < points; ++i) {
    if (skipped(i)) {
      {
        std::lock_guard lock(mu);
        writer_at = i + 1;
      }
      space.notify_all();
      continue;
    }
    std::pair<std::string, json> entry;
    {
      std::unique_lock lock(mu);
      line_ready.wait(lock, [&] { return buffer.count(i) > 0; });
      entry = std::move(buffer.at(i));
      buffer.erase(i);
      writer_at = i + 1;
    }
    space.notify_all();
    out << entry.first << '\n';
    out.flush();  // a killed sweep loses at most the line being written
    summary.add(entry.second);
    ++evaluated;
    const auto now = std::chrono::steady_clock::now();
    if (options.progress && (now - last_draw > std::chrono::milliseconds(100) || evaluated == to_do)) {
      last_draw = now;
      const double elapsed = std::chrono::duration<double>(now - started).count();
      const double rate = elapsed > 0 ? evaluated / elapsed : 0;
      const int width = 30;
      const int filled = static_cast<int>(width * evaluated / std::max<std::uint64_t>(1, to_do));
      *options.progress << fmt::format("\r[{}{}] {}/{} points  {:.1f}/s  ETA {}  ", std::string(filled, '#'),
                                       std::string(width - filled, '.'), evaluated, to_do, rate,
                                       rate > 0 ? clock((to_do - evaluated) / rate) : std::string("?"))
                        << std::flush;
    }
  }
  for (auto& t : threads) t.join();
  if (options.progress && to_do > 0) *options.progress << "\n";
  if (!out) throw InputError(options.out_path + ": write failed");
  if (stats) *stats = {selected, evaluated, done.size()};
  return summary;
}

}  // namespace moesim::sweep
