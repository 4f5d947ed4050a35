#include "sim/io/premoe_io.h"

#include <algorithm>
#include <cmath>
#include <span>

#include "sim/io/npy.h"

namespace moesim::io {

using premoe::LayerPattern;
using premoe::ScoreAccumulator;
using premoe::ScoreOptions;
using premoe::TaskPattern;

namespace {

LayerPattern finish_layer(int layer, const ScoreAccumulator& acc) {
  LayerPattern l{layer, acc.scores(), {}};
  l.order = premoe::rank_experts(l.scores);
  return l;
}

void check_options(const ScoreOptions& o, int experts, const std::string& where) {
  if (o.top_k < 1 || o.top_k > experts)
    throw InputError(where + ": score top-k " + std::to_string(o.top_k) + ": expected 1.." + std::to_string(experts) +
                     " (the router data has " + std::to_string(experts) + " experts)");
}

std::string shape_text(const NpyArray& a) {
  std::string s = "(";
  for (std::size_t i = 0; i < a.shape.size(); ++i) s += (i ? ", " : "") + std::to_string(a.shape[i]);
  return s + ")";
}

// Values of a JSON array of numbers, each finite.
std::vector<double> numbers(const json& v, const std::string& file, const std::string& where, std::size_t size = 0) {
  if (!v.is_array() || v.empty()) throw InputError(file + ": field '" + where + "': expected a non-empty array of numbers");
  std::vector<double> out;
  for (const json& e : v) {
    if (!e.is_number() || !std::isfinite(e.get<double>()))
      throw InputError(file + ": field '" + where + "': expected finite numbers, got " + e.dump());
    out.push_back(e.get<double>());
  }
  if (size > 0 && out.size() != size)
    throw InputError(file + ": field '" + where + "': expected " + std::to_string(size) + " values, got " +
                     std::to_string(out.size()));
  return out;
}

// Expert ids: whole numbers in [0, experts), no repeats; `permutation` also requires all of them.
std::vector<int> expert_ids(const json& v, int experts, bool permutation, const std::string& file,
                            const std::string& where) {
  const std::vector<double> raw = numbers(v, file, where, permutation ? static_cast<std::size_t>(experts) : 0);
  std::vector<int> ids;
  std::vector<bool> seen(static_cast<std::size_t>(experts), false);
  for (double x : raw) {
    if (x != std::floor(x) || x < 0 || x >= experts)
      throw InputError(file + ": field '" + where + "': expected expert ids in 0.." + std::to_string(experts - 1) +
                       ", got " + json(x).dump());
    const int id = static_cast<int>(x);
    if (seen[id]) throw InputError(file + ": field '" + where + "': expert " + std::to_string(id) + " appears twice");
    seen[id] = true;
    ids.push_back(id);
  }
  return ids;
}

json score_json(const ScoreOptions& o) {
  return {{"rule", premoe::to_string(o.rule)}, {"top_k", o.top_k}, {"threshold", o.threshold}};
}

}  // namespace

TaskPattern pattern_from_logits(const std::vector<std::string>& files, int first_layer, const ScoreOptions& options) {
  TaskPattern t;
  t.options = options;
  int layer = first_layer;
  for (const std::string& file : files) {
    const NpyArray a = read_npy(file);
    if (!(a.dims() == 2 || (a.dims() == 3 && files.size() == 1)))
      throw InputError(file + ": router logits: expected shape [tokens, experts]" +
                       std::string(files.size() == 1 ? " or [layers, tokens, experts]" : " (one file per layer)") +
                       ", got " + shape_text(a));
    const std::size_t layers = a.dims() == 3 ? a.shape[0] : 1;
    const std::size_t tokens = a.shape[a.dims() - 2], experts = a.shape[a.dims() - 1];
    if (tokens == 0 || experts == 0) throw InputError(file + ": router logits: shape " + shape_text(a) + " is empty");
    if (t.experts == 0) t.experts = static_cast<int>(experts);
    if (static_cast<int>(experts) != t.experts)
      throw InputError(file + ": router logits: " + std::to_string(experts) + " experts, the first file has " +
                       std::to_string(t.experts));
    check_options(options, t.experts, file);
    for (std::size_t l = 0; l < layers; ++l) {
      ScoreAccumulator acc(t.experts, options);
      for (std::size_t tok = 0; tok < tokens; ++tok)
        acc.add_logits(std::span<const double>(a.values).subspan((l * tokens + tok) * experts, experts));
      t.layers.push_back(finish_layer(layer++, acc));
    }
    t.tokens = static_cast<double>(tokens);
  }
  return t;
}

TaskPattern pattern_from_top_k(const std::string& ids_file, const std::string& prob_file, double weight_scale,
                               int experts, int first_layer, ScoreOptions options) {
  if (options.rule != premoe::ScoreRule::expected_probability)
    throw InputError(ids_file + ": routed top-k data carry probabilities, not logits: use the expected-probability score");
  const NpyArray ids = read_npy(ids_file);
  const NpyArray prob = read_npy(prob_file);
  if (ids.dims() != 3) throw InputError(ids_file + ": routed expert ids: expected shape [layers, tokens, k], got " + shape_text(ids));
  if (prob.shape != ids.shape)
    throw InputError(prob_file + ": routed probabilities: shape " + shape_text(prob) + ", expected the ids' " +
                     shape_text(ids));
  const std::size_t layers = ids.shape[0], tokens = ids.shape[1], k = ids.shape[2];
  if (layers == 0 || tokens == 0 || k == 0) throw InputError(ids_file + ": routed expert ids: shape " + shape_text(ids) + " is empty");
  options.top_k = static_cast<int>(k);
  check_options(options, experts, ids_file);
  TaskPattern t;
  t.experts = experts;
  t.tokens = static_cast<double>(tokens);
  t.options = options;
  std::vector<int> token_ids(k);
  std::vector<double> token_p(k);
  for (std::size_t l = 0; l < layers; ++l) {
    ScoreAccumulator acc(experts, options);
    for (std::size_t tok = 0; tok < tokens; ++tok) {
      const std::size_t base = (l * tokens + tok) * k;
      for (std::size_t j = 0; j < k; ++j) {
        const double id = ids.values[base + j];
        if (id != std::floor(id) || id < 0 || id >= experts)
          throw InputError(ids_file + ": routed expert ids: layer " + std::to_string(l) + " token " + std::to_string(tok) +
                           ": expected expert ids in 0.." + std::to_string(experts - 1) + ", got " + json(id).dump());
        token_ids[j] = static_cast<int>(id);
        for (std::size_t i = 0; i < j; ++i)
          if (token_ids[i] == token_ids[j])
            throw InputError(ids_file + ": routed expert ids: layer " + std::to_string(l) + " token " +
                             std::to_string(tok) + ": expert " + std::to_string(token_ids[j]) + " routed twice");
        token_p[j] = prob.values[base + j] * weight_scale;
        if (token_p[j] < 0 || token_p[j] > 1 + 1e-6)
          throw InputError(prob_file + ": routed probabilities: layer " + std::to_string(l) + " token " +
                           std::to_string(tok) + ": expected a probability in [0, 1] after scaling by " +
                           json(weight_scale).dump() + ", got " + json(token_p[j]).dump());
      }
      acc.add_top_k(token_ids, token_p);
    }
    t.layers.push_back(finish_layer(first_layer + static_cast<int>(l), acc));
  }
  return t;
}

TaskPattern pattern_from_router_json(const std::string& path, const ScoreOptions& options) {
  const json j = read_json_file(path);
  const Field top(j, path, "");
  TaskPattern t;
  t.task = top.string_or("task", "");
  t.options = options;
  t.tokens = top.non_negative_or("tokens", 0);
  if (!top.has("layers") || !j.at("layers").is_array() || j.at("layers").empty()) top.fail("layers", "a non-empty array");
  int previous = -1;
  for (std::size_t i = 0; i < j.at("layers").size(); ++i) {
    const Field layer(j.at("layers")[i], path, "layers[" + std::to_string(i) + "]");
    const int index = layer.non_negative_int_or("layer", -1);
    if (index < 0) layer.fail("layer", "a whole number >= 0");
    if (index <= previous) layer.fail("layer", "layer indices in ascending order");
    previous = index;
    if (layer.has("scores")) {
      LayerPattern l{index, numbers(layer.raw().at("scores"), path, layer.where("scores")), {}};
      if (t.experts == 0) t.experts = static_cast<int>(l.scores.size());
      if (static_cast<int>(l.scores.size()) != t.experts)
        layer.fail("scores", std::to_string(t.experts) + " values (as the first layer)");
      l.order = premoe::rank_experts(l.scores);
      t.layers.push_back(std::move(l));
    } else if (layer.has("logits")) {
      const json& rows = layer.raw().at("logits");
      if (!rows.is_array() || rows.empty()) layer.fail("logits", "a non-empty array of token rows [tokens][experts]");
      if (t.experts == 0 && rows[0].is_array()) t.experts = static_cast<int>(rows[0].size());
      if (t.experts < 1) layer.fail("logits", "token rows of at least one expert");
      check_options(options, t.experts, path + ": field '" + layer.where("logits") + "'");
      ScoreAccumulator acc(t.experts, options);
      for (std::size_t r = 0; r < rows.size(); ++r)
        acc.add_logits(numbers(rows[r], path, layer.where("logits") + "[" + std::to_string(r) + "]",
                               static_cast<std::size_t>(t.experts)));
      t.tokens = static_cast<double>(rows.size());
      t.layers.push_back(finish_layer(index, acc));
    } else {
      layer.fail("logits", "either 'logits' [tokens][experts] or aggregated 'scores' [experts]");
    }
  }
  return t;
}

TaskPattern pattern_from_premoe_file(const std::string& path) {
  // example_pattern.json (../shared/routing/premoe-deepseek-r1, SOURCES.md §1): the first MoE layer's
  // importance vector and perm[l - first - 1][target] = current, where target is the expert at rank r of
  // the first layer and current the expert at rank r of layer l (partial_process.py load_permute_prune_experts).
  const json j = read_json_file(path);
  const Field top(j, path, "");
  TaskPattern t;
  t.task = top.string_or("task", "");
  t.experts = top.positive_int("n_experts");
  // The code's default score: top-1 raw logit credit, threshold off (premoe.md §1.3).
  t.options = {premoe::ScoreRule::top_logit, 1, -1};
  const int first = top.non_negative_int_or("first_moe_layer", -1);
  if (first < 0) top.fail("first_moe_layer", "a whole number >= 0");
  if (!top.has("layer3_importance")) top.fail("layer3_importance", "the first MoE layer's importance vector");
  LayerPattern l0{first, numbers(j.at("layer3_importance"), path, "layer3_importance", static_cast<std::size_t>(t.experts)), {}};
  l0.order = premoe::rank_experts(l0.scores);
  t.layers.push_back(l0);
  const std::vector<int> perm_layers = top.int_list_or_empty("perm_layers");
  if (!top.has("perm") || !j.at("perm").is_array() || j.at("perm").size() != perm_layers.size())
    top.fail("perm", "one permutation row per entry of perm_layers (" + std::to_string(perm_layers.size()) + ")");
  for (std::size_t i = 0; i < perm_layers.size(); ++i) {
    if (perm_layers[i] <= t.layers.back().layer) top.fail("perm_layers", "ascending layer indices after first_moe_layer");
    const std::vector<int> perm = expert_ids(j.at("perm")[i], t.experts, true, path, "perm[" + std::to_string(i) + "]");
    LayerPattern l{perm_layers[i], {}, {}};
    for (int e : l0.order) l.order.push_back(perm[e]);
    t.layers.push_back(std::move(l));
  }
  return t;
}

json pruned_to_json(const premoe::PrunedModel& m) {
  json layers = json::array();
  for (const auto& l : m.layers) layers.push_back({{"layer", l.layer}, {"experts", l.experts}});
  return {{"format", "moesim-pruned-experts"}, {"task", m.task}, {"experts", m.experts}, {"top_k", m.top_k},
          {"layers", layers}};
}

premoe::PrunedModel read_pruned(const std::string& path) {
  const json j = read_json_file(path);
  const Field top(j, path, "");
  if (top.string_or("format", "") != "moesim-pruned-experts") top.fail("format", "\"moesim-pruned-experts\"");
  premoe::PrunedModel m;
  m.task = top.string_or("task", "");
  m.experts = top.positive_int("experts");
  m.top_k = top.positive_int("top_k");
  if (!top.has("layers") || !j.at("layers").is_array() || j.at("layers").empty()) top.fail("layers", "a non-empty array");
  int previous = -1;
  for (std::size_t i = 0; i < j.at("layers").size(); ++i) {
    const Field layer(j.at("layers")[i], path, "layers[" + std::to_string(i) + "]");
    const int index = layer.non_negative_int_or("layer", -1);
    if (index <= previous) layer.fail("layer", "a whole number >= 0, above the previous layer's");
    previous = index;
    if (!layer.has("experts")) layer.fail("experts", "the kept expert ids");
    premoe::PrunedLayer l{index, expert_ids(layer.raw().at("experts"), m.experts, false, path, layer.where("experts"))};
    if (static_cast<int>(l.experts.size()) < m.top_k)
      layer.fail("experts", "at least top_k = " + std::to_string(m.top_k) + " kept experts");
    m.layers.push_back(std::move(l));
  }
  return m;
}

json pattern_store_json(const std::vector<TaskPattern>& tasks) {
  json out = json::array();
  for (const TaskPattern& t : tasks) {
    json layers = json::array();
    for (const LayerPattern& l : t.layers) {
      json lj = {{"layer", l.layer}, {"order", l.order}};
      if (!l.scores.empty()) lj["scores"] = l.scores;
      layers.push_back(lj);
    }
    out.push_back({{"task", t.task}, {"experts", t.experts}, {"tokens", t.tokens}, {"score", score_json(t.options)},
                   {"layers", layers}});
  }
  return {{"format", "moesim-task-patterns"}, {"tasks", out}};
}

std::vector<TaskPattern> read_pattern_store(const std::string& path) {
  const json j = read_json_file(path);
  const Field top(j, path, "");
  if (top.string_or("format", "") != "moesim-task-patterns") top.fail("format", "\"moesim-task-patterns\"");
  if (!top.has("tasks") || !j.at("tasks").is_array()) top.fail("tasks", "an array");
  std::vector<TaskPattern> tasks;
  for (std::size_t i = 0; i < j.at("tasks").size(); ++i) {
    const Field task(j.at("tasks")[i], path, "tasks[" + std::to_string(i) + "]");
    TaskPattern t;
    t.task = task.string("task");
    t.experts = task.positive_int("experts");
    t.tokens = task.non_negative_or("tokens", 0);
    const Field score = task.child("score");
    t.options.rule = score.choice("rule", {"expected-probability", "top-logit"}) == "top-logit"
                         ? premoe::ScoreRule::top_logit
                         : premoe::ScoreRule::expected_probability;
    t.options.top_k = score.positive_int("top_k");
    t.options.threshold = score.number("threshold");
    if (!task.has("layers") || !task.raw().at("layers").is_array() || task.raw().at("layers").empty())
      task.fail("layers", "a non-empty array");
    const json& layers = task.raw().at("layers");
    for (std::size_t k = 0; k < layers.size(); ++k) {
      const Field layer(layers[k], path, task.where("layers[" + std::to_string(k) + "]"));
      LayerPattern l;
      l.layer = layer.non_negative_int_or("layer", -1);
      if (l.layer < 0 || (!t.layers.empty() && l.layer <= t.layers.back().layer))
        layer.fail("layer", "a whole number >= 0, above the previous layer's");
      if (!layer.has("order")) layer.fail("order", "all expert ids, most important first");
      l.order = expert_ids(layer.raw().at("order"), t.experts, true, path, layer.where("order"));
      if (layer.has("scores"))
        l.scores = numbers(layer.raw().at("scores"), path, layer.where("scores"), static_cast<std::size_t>(t.experts));
      t.layers.push_back(std::move(l));
    }
    if (t.layers.front().scores.empty())
      task.fail("layers", "scores on the first layer (the retrieval key, premoe.md §1.5)");
    tasks.push_back(std::move(t));
  }
  return tasks;
}

}  // namespace moesim::io
