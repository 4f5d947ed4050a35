#pragma once
// Router data in, PreMoe patterns and pruned models out (costmodels/premoe.h holds the math).
//
// Router data a task's pattern is computed from (one of):
//   - logits: NumPy .npy float arrays of router logits, one file per MoE layer of shape [tokens, experts],
//     or one file of shape [layers, tokens, experts];
//   - routed top-k: two .npy arrays [layers, tokens, k] of expert ids and their gate probabilities (the
//     ESFT format, ../shared/routing/esft-deepseek-v2-lite-tasks; probabilities stored as integers are
//     multiplied by `weight_scale`);
//   - JSON: {"task"?, "layers": [{"layer": L, "logits": [[...], ...]}]} or, already aggregated,
//     {"layers": [{"layer": L, "scores": [...]}], "tokens"?};
//   - a PreMoe shipped pattern (example_pattern.json: first-layer importance + per-layer rank permutations).
// Layers are numbered by decoder-layer index: `first_layer` is the index of the first file's layer.
//
// Pruned model JSON (written by `moesim prune`, read by `moesim deploy --pruned`):
//   {"format": "moesim-pruned-experts", "task", "experts", "top_k", "layers": [{"layer", "experts": [...]}]}
// Task pattern store (`moesim prune --store`): {"format": "moesim-task-patterns", "tasks": [{"task",
//   "experts", "tokens", "score": {"rule", "top_k", "threshold"}, "layers": [{"layer", "scores"?, "order"}]}]}
#include <string>
#include <vector>

#include "costmodels/premoe.h"
#include "sim/io/json_reader.h"

namespace moesim::io {

premoe::TaskPattern pattern_from_logits(const std::vector<std::string>& npy_files, int first_layer,
                                        const premoe::ScoreOptions& options);
// top_k of `options` is taken from the files' last dimension.
premoe::TaskPattern pattern_from_top_k(const std::string& ids_npy, const std::string& probabilities_npy,
                                       double weight_scale, int experts, int first_layer, premoe::ScoreOptions options);
premoe::TaskPattern pattern_from_router_json(const std::string& path, const premoe::ScoreOptions& options);
premoe::TaskPattern pattern_from_premoe_file(const std::string& path);

json pruned_to_json(const premoe::PrunedModel& m);
premoe::PrunedModel read_pruned(const std::string& path);

std::vector<premoe::TaskPattern> read_pattern_store(const std::string& path);
json pattern_store_json(const std::vector<premoe::TaskPattern>& tasks);

}  // namespace moesim::io
