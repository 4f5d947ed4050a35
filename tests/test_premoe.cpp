// PreMoe expert importance (TCESS), pruning and retrieval (costmodels/premoe.h): a hand-computed example
// and seeded synthetic tasks with distinct expert preferences.
#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <random>

#include "costmodels/premoe.h"

using namespace moesim;
using namespace moesim::premoe;

namespace {

// Two tokens, four experts. Hand-computed:
//   token A logits [2, 1, 0, -1]: softmax p = [0.643914, 0.236883, 0.087144, 0.032059]
//     (e^0, e^-1, e^-2, e^-3 = 1, 0.367879, 0.135335, 0.049787; sum 1.553001);
//     top-2 {0, 1}, confidence among them q = softmax([2, 1]) = [0.731059, 0.268941].
//   token B logits [0, 3, 0, 1]: p = [0.040316, 0.809776, 0.040316, 0.109591]
//     (e^-3, 1, e^-3, e^-2 over sum 1.234909); top-2 {1, 3}, q = softmax([3, 1]) = [0.880797, 0.119203].
const std::vector<double> token_a = {2, 1, 0, -1};
const std::vector<double> token_b = {0, 3, 0, 1};

std::vector<double> score(ScoreOptions o) {
  ScoreAccumulator acc(4, o);
  acc.add_logits(token_a);
  acc.add_logits(token_b);
  return acc.scores();
}

void check_vector(const std::vector<double>& got, const std::vector<double>& want, double margin = 1e-6) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("index " << i << ": got " << got[i] << ", want " << want[i]);
    CHECK(got[i] == Approx(want[i]).margin(margin));
  }
}

}  // namespace

TEST_CASE("premoe: softmax and top-k by hand", "[premoe]") {
  check_vector(softmax(token_a), {0.643914, 0.236883, 0.087144, 0.032059});
  check_vector(softmax(std::vector<double>{1000, 1000}), {0.5, 0.5});  // stable for large logits
  CHECK(top_k_indices(token_b, 2) == std::vector<int>{1, 3});
  CHECK(top_k_indices(std::vector<double>{1, 1, 0, 1}, 2) == std::vector<int>{0, 1});  // ties: lower index
  CHECK(top_k_indices(token_a, 9).size() == 4);
}

TEST_CASE("premoe: TCESS expected probability by hand (top-2, threshold off and r = 0.3)", "[premoe]") {
  // r off: ([0.643914, 0.236883, 0, 0] + [0, 0.809776, 0, 0.109591]) / 2.
  check_vector(score({ScoreRule::expected_probability, 2, -1}), {0.321957, 0.523330, 0.0, 0.054796});
  // r = 0.3 drops A's expert 1 (q 0.269) and B's expert 3 (q 0.119).
  check_vector(score({ScoreRule::expected_probability, 2, 0.3}), {0.321957, 0.404888, 0.0, 0.0});
  // r = 0.8 keeps only B's expert 1 (q 0.881); A has no expert that confident.
  check_vector(score({ScoreRule::expected_probability, 2, 0.8}), {0.0, 0.404888, 0.0, 0.0});
}

TEST_CASE("premoe: TCESS released-code variant (raw top logit credit) by hand", "[premoe]") {
  // k = 1 (the code's default): A credits expert 0 with 2, B expert 1 with 3; mean over 2 tokens.
  check_vector(score({ScoreRule::top_logit, 1, -1}), {1.0, 1.5, 0.0, 0.0});
  // k = 2: A credits 0 (2) and 1 (1); B credits 1 (3) and 3 (1).
  check_vector(score({ScoreRule::top_logit, 2, -1}), {1.0, 2.0, 0.0, 0.5});
}

TEST_CASE("premoe: routed top-k records give the same score as logits", "[premoe]") {
  ScoreAccumulator from_records(4, {ScoreRule::expected_probability, 2, 0.3});
  from_records.add_top_k(std::vector<int>{0, 1}, std::vector<double>{0.643914, 0.236883});
  from_records.add_top_k(std::vector<int>{3, 1}, std::vector<double>{0.109591, 0.809776});  // order does not matter
  check_vector(from_records.scores(), score({ScoreRule::expected_probability, 2, 0.3}));
  ScoreAccumulator code_rule(4, {ScoreRule::top_logit, 2, -1});
  CHECK_THROWS(code_rule.add_top_k(std::vector<int>{0, 1}, std::vector<double>{0.6, 0.2}));
}

TEST_CASE("premoe: keep-top-M, kept share and L2 retrieval", "[premoe]") {
  const std::vector<double> s = {0.1, 0.4, 0.0, 0.3, 0.2};
  CHECK(keep_top(s, 2) == std::vector<int>{1, 3});
  CHECK(rank_experts(s) == std::vector<int>{1, 3, 4, 0, 2});
  CHECK(kept_share(s, keep_top(s, 2)) == Approx(0.7));
  const Match m = nearest_key({{0, 0}, {1, 1}, {3, 0}}, std::vector<double>{2.4, 0.2});
  CHECK(m.index == 2);
  CHECK(m.squared_distance == Approx(0.36 + 0.04));
  TaskPattern t{"t", 5, 10, {}, {{7, s, rank_experts(s)}}};
  const PrunedModel p = prune(t, 3, 2);
  CHECK(p.layers.front().experts == std::vector<int>{1, 3, 4});
  CHECK_THROWS(prune(t, 6, 2));
  CHECK_THROWS(prune(t, 2, 3));
}

TEST_CASE("premoe: synthetic tasks with distinct expert preferences", "[premoe]") {
  // 6 tasks x 3 MoE layers x 64 experts, top-4 routing. Each task prefers 6 experts per layer (its
  // logits get +2.5 there on top of N(0, 1) noise). Patterns from 2,000 tokens; queries of 16 tokens.
  constexpr int experts = 64, layers = 3, tasks = 6, preferred = 6, top_k = 4, keep = 8;
  std::mt19937 rng(2024);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::vector<std::vector<std::vector<int>>> prefs(tasks, std::vector<std::vector<int>>(layers));
  for (auto& task : prefs)
    for (auto& layer : task) {
      std::vector<int> all(experts);
      std::iota(all.begin(), all.end(), 0);
      std::shuffle(all.begin(), all.end(), rng);
      layer.assign(all.begin(), all.begin() + preferred);
    }
  auto token = [&](int task, int layer) {
    std::vector<double> logits(experts);
    for (double& v : logits) v = noise(rng);
    for (int e : prefs[task][layer]) logits[e] += 2.5;
    return logits;
  };
  const ScoreOptions options{ScoreRule::expected_probability, top_k, -1};
  std::vector<TaskPattern> store;
  for (int t = 0; t < tasks; ++t) {
    TaskPattern p{"task" + std::to_string(t), experts, 2000, options, {}};
    for (int l = 0; l < layers; ++l) {
      ScoreAccumulator acc(experts, options);
      for (int i = 0; i < 2000; ++i) acc.add_logits(token(t, l));
      p.layers.push_back({3 + l, acc.scores(), rank_experts(acc.scores())});
    }
    store.push_back(p);
  }
  // Pruning to 4/8 keeps every preferred expert of every task and layer.
  for (int t = 0; t < tasks; ++t) {
    const PrunedModel pruned = prune(store[t], keep, top_k);
    for (int l = 0; l < layers; ++l) {
      const auto& kept = pruned.layers[l].experts;
      for (int e : prefs[t][l]) {
        INFO("task " << t << " layer " << l << " preferred expert " << e);
        CHECK(std::find(kept.begin(), kept.end(), e) != kept.end());
      }
      CHECK(kept_share(store[t].layers[l].scores, kept) > 0.6);
    }
  }
  // Retrieval from the first MoE layer of 16-token noisy queries.
  std::vector<std::vector<double>> keys;
  for (const auto& p : store) keys.push_back(p.layers.front().scores);
  int correct = 0;
  constexpr int queries = 300;
  std::uniform_int_distribution<int> pick(0, tasks - 1);
  for (int q = 0; q < queries; ++q) {
    const int t = pick(rng);
    ScoreAccumulator acc(experts, options);
    for (int i = 0; i < 16; ++i) acc.add_logits(token(t, 0));
    correct += nearest_key(keys, acc.scores()).index == t;
  }
  INFO("retrieval accuracy " << correct << "/" << queries);
  CHECK(correct >= 0.95 * queries);
}
