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

double rank_imbalance(const std::vector<double>& shares, int ranks, int redundant) {
  if (ranks <= 1 || shares.empty()) return 1.0;
  const double mean = 1.0 / ranks;
  std::vector<double> load(ranks, 0.0);
  if (redundant <= 0) {
    const size_t per_rank = shares.size() / ranks;
    for (size_t e = 0; e < shares.size(); ++e) load[std::min<size_t>(e / std::max<size_t>(per_rank, 1), ranks - 1)] += shares[e];
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

double layout_imbalance(const ModelSpec& model, const LayoutSpec& layout) {
  if (!model.moe) return 1.0;
  double routed = 1.0;
  if (layout.ep > 1) {
    const auto shares = expert_shares(model.moe->experts, layout.expert_load.skew, layout.expert_load.seed);
    routed = rank_imbalance(shares, layout.ep, layout.expert_load.redundant_experts);
  }
  const double capacity = layout.moe_capacity_factor;
  if (capacity <= 0) return routed;
  // Padded to capacity every expert computes capacity x its balanced share whatever the routing; with
  // dropping alone no expert, so no rank, takes more than that (GShard §2.2, Megatron-Core's
  // moe_utils.get_capacity: ceil(tokens x top_k / experts x factor)).
  return (layout.moe_pad_to_capacity || layout.moe_dispatcher == MoeDispatcher::einsum) ? capacity
                                                                                       : std::min(routed, capacity);
}

}  // namespace moesim::imbalance
