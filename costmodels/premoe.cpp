#include "costmodels/premoe.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace moesim::premoe {

std::vector<double> softmax(std::span<const double> logits) {
  std::vector<double> p(logits.size());
  if (logits.empty()) return p;
  const double max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (std::size_t i = 0; i < logits.size(); ++i) sum += p[i] = std::exp(logits[i] - max);
  for (double& v : p) v /= sum;
  return p;
}

std::vector<int> top_k_indices(std::span<const double> values, int k) {
  std::vector<int> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  const auto n = static_cast<std::size_t>(std::clamp(k, 0, static_cast<int>(values.size())));
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n), order.end(),
                    [&](int a, int b) { return values[a] > values[b] || (values[a] == values[b] && a < b); });
  order.resize(n);
  return order;
}

ScoreAccumulator::ScoreAccumulator(int experts, ScoreOptions options)
    : options_(options), sums_(static_cast<std::size_t>(std::max(experts, 0)), 0.0) {
  if (experts < 1) throw std::invalid_argument("score accumulator: experts must be >= 1");
  if (options.top_k < 1 || options.top_k > experts)
    throw std::invalid_argument("score accumulator: top_k must be in 1.." + std::to_string(experts));
}

void ScoreAccumulator::credit(std::span<const int> chosen, std::span<const double> confidence,
                              std::span<const double> credit_values) {
  tokens_ += 1;
  for (std::size_t j = 0; j < chosen.size(); ++j)
    if (options_.threshold < 0 || confidence[j] >= options_.threshold) sums_[chosen[j]] += credit_values[j];
}

void ScoreAccumulator::add_logits(std::span<const double> logits) {
  if (logits.size() != sums_.size())
    throw std::invalid_argument("score accumulator: a token has " + std::to_string(logits.size()) + " logits, expected " +
                                std::to_string(sums_.size()));
  const std::vector<int> chosen = top_k_indices(logits, options_.top_k);
  std::vector<double> chosen_logits;
  for (int e : chosen) chosen_logits.push_back(logits[e]);
  // q_t,j: softmax over the top-k logits only (collect_utils.py: F.softmax(top_values)).
  const std::vector<double> confidence = softmax(chosen_logits);
  if (options_.rule == ScoreRule::top_logit) {
    credit(chosen, confidence, chosen_logits);
  } else {
    const std::vector<double> p = softmax(logits);
    std::vector<double> chosen_p;
    for (int e : chosen) chosen_p.push_back(p[e]);
    credit(chosen, confidence, chosen_p);
  }
}

void ScoreAccumulator::add_top_k(std::span<const int> experts, std::span<const double> probabilities) {
  if (options_.rule != ScoreRule::expected_probability)
    throw std::invalid_argument("score accumulator: the top-logit rule needs raw logits, not routed probabilities");
  if (experts.size() != probabilities.size() || static_cast<int>(experts.size()) != options_.top_k)
    throw std::invalid_argument("score accumulator: a token has " + std::to_string(experts.size()) +
                                " routed experts, expected top_k = " + std::to_string(options_.top_k));
  double sum = 0;
  for (std::size_t j = 0; j < experts.size(); ++j) {
    if (experts[j] < 0 || experts[j] >= this->experts())
      throw std::invalid_argument("score accumulator: expert id " + std::to_string(experts[j]) + " outside 0.." +
                                  std::to_string(this->experts() - 1));
    sum += probabilities[j];
  }
  // p_j / sum_{i in K} p_i equals the softmax over the top-k logits (the exp(max) factors cancel).
  std::vector<double> confidence(probabilities.begin(), probabilities.end());
  for (double& q : confidence) q = sum > 0 ? q / sum : 0.0;
  credit(experts, confidence, probabilities);
}

std::vector<double> ScoreAccumulator::scores() const {
  std::vector<double> s = sums_;
  if (tokens_ > 0)
    for (double& v : s) v /= tokens_;
  return s;
}

std::vector<int> rank_experts(std::span<const double> scores) {
  return top_k_indices(scores, static_cast<int>(scores.size()));
}

std::vector<int> keep_top(std::span<const double> scores, int keep) { return top_k_indices(scores, keep); }

double kept_share(std::span<const double> scores, std::span<const int> kept) {
  const double total = std::accumulate(scores.begin(), scores.end(), 0.0);
  double share = 0;
  for (int e : kept) share += scores[e];
  return total != 0 ? share / total : 0.0;
}

Match nearest_key(const std::vector<std::vector<double>>& keys, std::span<const double> query) {
  Match best;
  best.squared_distance = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].size() != query.size())
      throw std::invalid_argument("nearest key: stored key " + std::to_string(i) + " has " +
                                  std::to_string(keys[i].size()) + " values, the query " + std::to_string(query.size()));
    double d = 0;
    for (std::size_t j = 0; j < query.size(); ++j) d += (keys[i][j] - query[j]) * (keys[i][j] - query[j]);
    if (d < best.squared_distance) best = {static_cast<int>(i), d};
  }
  return best;
}

PrunedModel prune(const TaskPattern& pattern, int keep, int top_k) {
  if (keep < 1 || keep > pattern.experts)
    throw std::invalid_argument("experts kept must be in 1.." + std::to_string(pattern.experts) + ", got " +
                                std::to_string(keep));
  if (top_k < 1 || top_k > keep)
    throw std::invalid_argument("experts activated per token must be in 1.." + std::to_string(keep) + ", got " +
                                std::to_string(top_k));
  PrunedModel m{pattern.task, pattern.experts, top_k, {}};
  for (const LayerPattern& l : pattern.layers)
    m.layers.push_back({l.layer, std::vector<int>(l.order.begin(), l.order.begin() + keep)});
  return m;
}

const char* to_string(ScoreRule rule) {
  return rule == ScoreRule::top_logit ? "top-logit" : "expected-probability";
}

}  // namespace moesim::premoe
