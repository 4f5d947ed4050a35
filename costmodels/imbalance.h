#pragma once
// Expert load imbalance: per-expert token shares and the max/mean load of the busiest EP rank, which
// sets the pace of the EP group's all-to-all and grouped GEMMs.
#include <vector>

#include "costmodels/specs.h"

namespace moesim::imbalance {

// Per-expert shares of routed tokens (sum 1) drawn from a seeded lognormal with sigma = skew
// (skew 0: uniform). A portable generator (mt19937 + Box-Muller) keeps results identical everywhere.
std::vector<double> expert_shares(int experts, double skew, unsigned seed);

// Max/mean token load over `ranks` EP ranks when experts sit contiguously (E/ranks each, Megatron's
// placement). With `redundant` extra slots, the hottest experts are replicated and their load split
// (DeepSeek EPLB), then experts are placed greedily heaviest-first on the least-loaded rank.
double rank_imbalance(const std::vector<double>& shares, int ranks, int redundant);

// The layout's expert load: rank_imbalance of its expert-load spec, capped by the expert capacity
// (moe_capacity_factor) where tokens are dropped, equal to it where experts are padded to capacity.
double layout_imbalance(const ModelSpec& model, const LayoutSpec& layout);

}  // namespace moesim::imbalance
