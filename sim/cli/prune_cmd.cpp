// moesim prune: PreMoe expert importance from router data, keep-top-M pruning, task pattern store and
// nearest-task retrieval (costmodels/premoe.h; ../shared/reference/premoe.md).
#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <filesystem>

#include "costmodels/premoe.h"
#include "sim/cli/commands.h"
#include "sim/io/input_error.h"
#include "sim/io/premoe_io.h"

namespace moesim {

namespace po = boost::program_options;

std::pair<int, int> parse_prune_level(const std::string& text) {
  const auto slash = text.find('/');
  try {
    std::size_t used_k = 0, used_m = 0;
    if (slash == std::string::npos) throw std::invalid_argument(text);
    const int k = std::stoi(text.substr(0, slash), &used_k);
    const int m = std::stoi(text.substr(slash + 1), &used_m);
    if (used_k != slash || used_m != text.size() - slash - 1 || k < 1 || m < k) throw std::invalid_argument(text);
    return {k, m};
  } catch (const std::logic_error&) {
    throw InputError("--prune: expected K/M with 1 <= K <= M (experts activated / experts kept per layer, e.g. 8/128), got '" +
                     text + "'");
  }
}

namespace {

premoe::TaskPattern read_router_data(const po::variables_map& vm, const premoe::ScoreOptions& options) {
  const int first_layer = vm["first-layer"].as<int>();
  const int sources = static_cast<int>(vm.count("logits")) + static_cast<int>(vm.count("topk-ids")) +
                      static_cast<int>(vm.count("router-json")) + static_cast<int>(vm.count("premoe-pattern"));
  if (sources != 1)
    throw InputError("prune: give exactly one router-data source: --logits, --topk-ids/--topk-probs, --router-json or --premoe-pattern");
  if (vm.count("logits")) return io::pattern_from_logits(vm["logits"].as<std::vector<std::string>>(), first_layer, options);
  if (vm.count("router-json")) return io::pattern_from_router_json(vm["router-json"].as<std::string>(), options);
  if (vm.count("premoe-pattern")) return io::pattern_from_premoe_file(vm["premoe-pattern"].as<std::string>());
  if (!vm.count("topk-probs") || !vm.count("experts"))
    throw InputError("prune: --topk-ids needs --topk-probs (gate probabilities) and --experts (routed experts per layer)");
  return io::pattern_from_top_k(vm["topk-ids"].as<std::string>(), vm["topk-probs"].as<std::string>(),
                                vm["prob-scale"].as<double>(), vm["experts"].as<int>(), first_layer, options);
}

void print_pruned(const premoe::TaskPattern& pattern, const premoe::PrunedModel& pruned) {
  fmt::print("task '{}': {} layers, {} experts, {} tokens; score {} (top-{}, threshold {}); keep {}/{}\n", pattern.task,
             pattern.layers.size(), pattern.experts, pattern.tokens, premoe::to_string(pattern.options.rule),
             pattern.options.top_k, pattern.options.threshold, pruned.top_k, pruned.layers.front().experts.size());
  fmt::print("{:>6} {:>12}  {}\n", "layer", "kept share", "kept experts (rank order, first 16)");
  for (std::size_t i = 0; i < pruned.layers.size(); ++i) {
    const auto& kept = pruned.layers[i].experts;
    const auto& scores = pattern.layers[i].scores;
    // Signed top-logit scores have no mass to share out; probabilities do.
    const bool has_mass = !scores.empty() && pattern.options.rule == premoe::ScoreRule::expected_probability;
    const std::string share = has_mass ? fmt::format("{:.3f}", premoe::kept_share(scores, kept)) : "-";
    const std::vector<int> head(kept.begin(), kept.begin() + std::min<std::ptrdiff_t>(16, std::ssize(kept)));
    fmt::print("{:>6} {:>12}  {}{}\n", pruned.layers[i].layer, share, fmt::join(head, " "), kept.size() > 16 ? " ..." : "");
  }
}

}  // namespace

int cmd_prune(const std::vector<std::string>& args) {
  po::options_description d(
      "moesim prune (--logits F.npy... | --topk-ids I.npy --topk-probs P.npy --experts E | --router-json F.json |\n"
      "              --premoe-pattern F.json) --prune K/M [--task NAME] [--out pruned.json] [--store patterns.json]\n"
      "moesim prune --retrieve --store patterns.json (query router data, first MoE layer) --prune K/M [--out pruned.json]");
  d.add_options()("help,h", "this help")(
      "logits", po::value<std::vector<std::string>>()->multitoken(), ".npy router logits: one [tokens, experts] file per MoE layer, or one [layers, tokens, experts]")(
      "topk-ids", po::value<std::string>(), ".npy [layers, tokens, k] routed expert ids (ESFT format)")(
      "topk-probs", po::value<std::string>(), ".npy [layers, tokens, k] gate probabilities of those experts")(
      "prob-scale", po::value<double>()->default_value(1.0), "multiply --topk-probs values by this (ESFT stores x1e4: 1e-4)")(
      "experts", po::value<int>(), "routed experts per layer (for --topk-ids)")(
      "router-json", po::value<std::string>(), "JSON router data: per layer 'logits' [tokens][experts] or aggregated 'scores'")(
      "premoe-pattern", po::value<std::string>(), "PreMoe shipped pattern (example_pattern.json)")(
      "first-layer", po::value<int>()->default_value(0), "decoder-layer index of the first layer in .npy data")(
      "score", po::value<std::string>()->default_value("expected-probability"),
      "expected-probability (paper TCESS) | top-logit (released code)")(
      "score-top-k", po::value<int>(), "k of the score's top-k (default: K of --prune; top-logit: 1, the code's default)")(
      "threshold", po::value<double>()->default_value(-1.0), "high-confidence threshold r on the top-k softmax (< 0: off)")(
      "prune", po::value<std::string>()->required(), "K/M: experts activated per token / kept per layer (e.g. 8/128)")(
      "task", po::value<std::string>(), "task name stored with the pattern")(
      "out", po::value<std::string>(), "write the pruned model JSON (moesim deploy --pruned reads it)")(
      "store", po::value<std::string>(), "task pattern store: add this task (or, with --retrieve, search it)")(
      "retrieve", "find the stored task nearest (L2, first MoE layer scores) to the given router data");
  const auto parsed = parse_command(args, d);
  if (!parsed) return 0;
  const po::variables_map& vm = *parsed;
  const auto [top_k, keep] = parse_prune_level(vm["prune"].as<std::string>());

  premoe::ScoreOptions options;
  const std::string rule = vm["score"].as<std::string>();
  if (rule != "expected-probability" && rule != "top-logit")
    throw InputError("--score: expected expected-probability|top-logit, got '" + rule + "'");
  options.rule = rule == "top-logit" ? premoe::ScoreRule::top_logit : premoe::ScoreRule::expected_probability;
  options.top_k = vm.count("score-top-k") ? vm["score-top-k"].as<int>() : (rule == "top-logit" ? 1 : top_k);
  options.threshold = vm["threshold"].as<double>();
  if (options.threshold > 1) throw InputError("--threshold: expected r <= 1 (or < 0 for off), got " + fmt::format("{}", options.threshold));

  if (vm.count("retrieve")) {
    if (!vm.count("store")) throw InputError("prune --retrieve: needs --store FILE");
    const std::string store_file = vm["store"].as<std::string>();
    const std::vector<premoe::TaskPattern> store = io::read_pattern_store(store_file);
    if (store.empty()) throw InputError(store_file + ": field 'tasks': expected at least one stored task");
    // The query is scored exactly as the stored keys were.
    const premoe::TaskPattern query = read_router_data(vm, store.front().options);
    std::vector<std::vector<double>> keys;
    for (const auto& t : store) {
      if (t.layers.front().layer != query.layers.front().layer || t.experts != query.experts)
        throw InputError(store_file + ": task '" + t.task + "': key is layer " + std::to_string(t.layers.front().layer) +
                         " with " + std::to_string(t.experts) + " experts; the query's first layer is " +
                         std::to_string(query.layers.front().layer) + " with " + std::to_string(query.experts));
      keys.push_back(t.layers.front().scores);
    }
    const premoe::Match match = premoe::nearest_key(keys, query.layers.front().scores);
    fmt::print("{:<24} {:>14}\n", "stored task", "L2 distance^2");
    for (std::size_t i = 0; i < store.size(); ++i) {
      const premoe::Match one = premoe::nearest_key({keys[i]}, query.layers.front().scores);
      fmt::print("{:<24} {:>14.6g}{}\n", store[i].task, one.squared_distance, static_cast<int>(i) == match.index ? "  <- nearest" : "");
    }
    const premoe::PrunedModel pruned = premoe::prune(store[match.index], keep, top_k);
    fmt::print("retrieved task '{}' -> pruned {}/{}\n", store[match.index].task, top_k, keep);
    if (vm.count("out")) open_output(vm["out"].as<std::string>()) << io::pruned_to_json(pruned).dump(2) << "\n";
    return 0;
  }

  premoe::TaskPattern pattern = read_router_data(vm, options);
  if (vm.count("task")) pattern.task = vm["task"].as<std::string>();
  if (keep > pattern.experts)
    throw InputError("--prune " + vm["prune"].as<std::string>() + ": M exceeds the router data's " +
                     std::to_string(pattern.experts) + " experts");
  const premoe::PrunedModel pruned = premoe::prune(pattern, keep, top_k);
  print_pruned(pattern, pruned);
  if (vm.count("out")) open_output(vm["out"].as<std::string>()) << io::pruned_to_json(pruned).dump(2) << "\n";
  if (vm.count("store")) {
    const std::string store_file = vm["store"].as<std::string>();
    if (pattern.task.empty()) throw InputError("prune --store: name the task with --task");
    std::vector<premoe::TaskPattern> store;
    if (std::filesystem::exists(store_file)) store = io::read_pattern_store(store_file);
    std::erase_if(store, [&](const premoe::TaskPattern& t) { return t.task == pattern.task; });
    store.push_back(pattern);
    open_output(store_file) << io::pattern_store_json(store).dump() << "\n";
    fmt::print("stored task '{}' in {} ({} tasks)\n", pattern.task, store_file, store.size());
  }
  return 0;
}

}  // namespace moesim
