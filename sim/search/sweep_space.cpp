// The sweep's space: the spec file's axes and constraints (parse_spec) and the enumeration of its
// points, index -> axis values -> model (point_count, point_values, point_model).
#include "sim/search/sweep.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "sim/io/input_error.h"
#include "sim/io/json_reader.h"
#include "sim/io/specs_io.h"

namespace moesim::sweep {

namespace fs = std::filesystem;
using io::Field;

const std::vector<std::string> model_axis_names = {"layers",         "hidden",     "experts", "top_k", "expert_intermediate",
                                                   "shared_experts", "heads",      "first_dense_layers",
                                                   "sliding_window", "full_attention_interval", "expert_groups",
                                                   "index_topk"};
// Axes every result line carries; the attention and MoGE axes appear only in the lines of specs that sweep them.
const std::vector<std::string> model_result_names(model_axis_names.begin(), model_axis_names.end() - 4);

namespace {

constexpr double max_layout_candidates = 1e6;

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
      if (name == "index_topk" && !at.sparse.active())
        axes->fail(name, "no top-k axis: base model '" + s.base_model_name + "' has no DeepSeek sparse attention indexer");
      const int min_value = name == "shared_experts" || name == "first_dense_layers" || name == "index_topk" ? 0 : 1;
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
    else if (name == "full_attention_interval") {
      // DeepSeek-V4's layers are sliding or compressed, never full: its compress_ratios are its pattern.
      if (base.attention.type == AttentionType::hybrid_compressed)
        return {std::nullopt, "full_attention_interval does not apply to deepseek_v4 attention (compress_ratios set its layers)"};
      m.attention.layer_pattern = interval_pattern(base.attention, v);
    }
    else if (name == "expert_groups") m.moe->expert_groups = v;
    else if (name == "index_topk") m.attention.sparse.topk = v;  // 0: dense attention, no indexer
  }
  if (!m.attention.sparse.active() && m.attention.type == AttentionType::hybrid_compressed &&
      std::ranges::count(m.attention.layer_pattern, AttentionSpan::compressed_sparse) > 0)
    return {std::nullopt, "index_topk 0 leaves deepseek_v4's compressed-sparse layers without their indexer"};
  if (!m.attention.sparse.active()) m.attention.sparse = {};
  // A shared expert that had the routed experts' width keeps it when that width is swept.
  if (m.moe && base.moe->shared_expert_intermediate == base.moe->expert_intermediate)
    m.moe->shared_expert_intermediate = m.moe->expert_intermediate;

  AttentionSpec& at = m.attention;
  if (at.type == AttentionType::mla || at.type == AttentionType::hybrid_compressed) {
    // MLA's and DeepSeek-V4's head width is set by their own dimensions, not by hidden: keep the heads
    // unless swept (DeepSeek-V4 keeps its one shared key-value entry and needs o_groups to divide them).
    if (heads) {
      at.heads = *heads;
      if (at.type == AttentionType::mla) at.kv_heads = *heads;
      else if (*heads % at.compressed.o_groups != 0)
        return {std::nullopt, fmt::format("{} heads do not split into o_groups {}", *heads, at.compressed.o_groups)};
    }
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

}  // namespace moesim::sweep
