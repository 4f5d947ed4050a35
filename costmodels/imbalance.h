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

// Under MoGE (MoeSpec::expert_groups) a token takes the same number of experts from every group, so
// each group receives 1 / groups of the routed tokens whatever the per-expert preferences: the shares
// are renormalised within each group (contiguous groups of experts / groups).
std::vector<double> grouped_shares(std::vector<double> shares, int groups);

// The expert shares of the layout's expert-load spec, grouped where the model routes by MoGE.
std::vector<double> model_shares(const ModelSpec& model, const LayoutSpec& layout);

// The layout's expert load: rank_imbalance of its expert shares (model_shares), capped by the expert
// capacity (moe_capacity_factor) where tokens are dropped, equal to it where experts are padded to capacity.
double layout_imbalance(const ModelSpec& model, const LayoutSpec& layout);

// Pangu Pro MoE §2.2's Imbalance Score over the EP ranks (contiguous placement, no redundant experts):
// IS = (max_i T_i - min_i T_i) / |X|, T_i the token-expert assignments rank i receives out of the |X|
// tokens of the batch, i.e. top_k x (max - min) of the ranks' shares. 0 under MoGE when every rank holds
// whole groups.
double imbalance_score(const ModelSpec& model, const LayoutSpec& layout);

}  // namespace moesim::imbalance
