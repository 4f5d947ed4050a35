#include "costmodels/imbalance.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <queue>
#include <random>

namespace moesim::imbalance {

std::vector<double> expert_shares(int experts, double skew, unsigned seed) {
  std::vector<double> shares(experts, 1.0);
  if (skew > 0) {
    std::mt19937 gen(seed);
    constexpr double two_pi = 6.283185307179586;
    auto uniform = [&] { return (static_cast<double>(gen()) + 1.0) / 4294967297.0; };  // (0, 1)
    for (int e = 0; e < experts; ++e) {
      const double normal = std::sqrt(-2.0 * std::log(uniform())) * std::cos(two_pi * uniform());
      shares[e] = std::exp(skew * normal);
    }
  }
  const double total = std::accumulate(shares.begin(), shares.end(), 0.0);
  for (double& s : shares) s /= total;
  return shares;
}

namespace {

// Each rank's share of the routed tokens when the experts sit on the ranks in contiguous blocks
// (Megatron's expert placement: rank r holds experts r x E/ranks ... (r + 1) x E/ranks - 1).
std::vector<double> contiguous_rank_loads(const std::vector<double>& shares, int ranks) {
  std::vector<double> load(static_cast<std::size_t>(ranks), 0.0);
  const std::size_t per_rank = std::max<std::size_t>(shares.size() / static_cast<std::size_t>(ranks), 1);
  for (std::size_t e = 0; e < shares.size(); ++e) load[std::min(e / per_rank, load.size() - 1)] += shares[e];
  return load;
}

}  // namespace

double rank_imbalance(const std::vector<double>& shares, int ranks, int redundant) {
  if (ranks <= 1 || shares.empty()) return 1.0;
  const double mean = 1.0 / ranks;
  if (redundant <= 0) {
    const std::vector<double> load = contiguous_rank_loads(shares, ranks);
    return *std::max_element(load.begin(), load.end()) / mean;
  }
  // EPLB (DeepSeek-V3 §3.4, github.com/deepseek-ai/EPLB): give each extra replica to the expert with
  // the highest load per replica, then place replicas heaviest first on the least-loaded rank.
  std::vector<int> replicas(shares.size(), 1);
  using Entry = std::pair<double, size_t>;
  std::priority_queue<Entry> hottest;
  for (size_t e = 0; e < shares.size(); ++e) hottest.push({shares[e], e});
  for (int r = 0; r < redundant; ++r) {
    auto [per_replica, e] = hottest.top();
    hottest.pop();
    ++replicas[e];
    hottest.push({shares[e] / replicas[e], e});
  }
  std::vector<double> pieces;
  for (size_t e = 0; e < shares.size(); ++e)
    for (int r = 0; r < replicas[e]; ++r) pieces.push_back(shares[e] / replicas[e]);
  std::sort(pieces.begin(), pieces.end(), std::greater<>());
  std::priority_queue<std::pair<double, int>, std::vector<std::pair<double, int>>, std::greater<>> least;
  for (int r = 0; r < ranks; ++r) least.push({0.0, r});
  double worst = 0;
  for (double p : pieces) {
    auto [l, r] = least.top();
    least.pop();
    worst = std::max(worst, l + p);
    least.push({l + p, r});
  }
  return worst / mean;
}

std::vector<double> grouped_shares(std::vector<double> shares, int groups) {
  if (groups <= 1 || shares.empty()) return shares;
  const std::size_t per_group = shares.size() / static_cast<std::size_t>(groups);
  for (std::size_t g = 0; g < static_cast<std::size_t>(groups); ++g) {
    const auto first = shares.begin() + static_cast<std::ptrdiff_t>(g * per_group);
    const auto last = first + static_cast<std::ptrdiff_t>(per_group);
    const double total = std::accumulate(first, last, 0.0);
    for (auto it = first; it != last; ++it) *it /= total * groups;
  }
  return shares;
}

std::vector<double> model_shares(const ModelSpec& model, const LayoutSpec& layout) {
  return grouped_shares(expert_shares(model.moe->experts, layout.expert_load.skew, layout.expert_load.seed),
                        model.moe->expert_groups);
}

double layout_imbalance(const ModelSpec& model, const LayoutSpec& layout) {
  if (!model.moe) return 1.0;
  const double routed =
      layout.ep > 1 ? rank_imbalance(model_shares(model, layout), layout.ep, layout.expert_load.redundant_experts) : 1.0;
  const double capacity = layout.moe_capacity_factor;
  if (capacity <= 0) return routed;
  // Padded to capacity every expert computes capacity x its balanced share whatever the routing; with
  // dropping alone no expert, so no rank, takes more than that (GShard §2.2, Megatron-Core's
  // moe_utils.get_capacity: ceil(tokens x top_k / experts x factor)).
  return (layout.moe_pad_to_capacity || layout.moe_dispatcher == MoeDispatcher::einsum) ? capacity
                                                                                       : std::min(routed, capacity);
}

double imbalance_score(const ModelSpec& model, const LayoutSpec& layout) {
  if (!model.moe || layout.ep <= 1) return 0.0;
  const std::vector<double> load = contiguous_rank_loads(model_shares(model, layout), layout.ep);
  const auto [lo, hi] = std::minmax_element(load.begin(), load.end());
  return model.moe->top_k * (*hi - *lo);
}

}  // namespace moesim::imbalance
