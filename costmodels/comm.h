#pragma once
// Collective communication over a tiered interconnect (alpha-beta model per tier).
//
// A process group is placed in the global rank order: `size` members, consecutive members `stride`
// ranks apart (TP groups have stride 1, a DP group over TP8 x PP has stride 8, ...). Tier t groups
// ranks [k*tier.size, (k+1)*tier.size). The innermost tier whose domain holds the whole group carries
// it; a group that spans domains uses a hierarchical algorithm (inner tier, then outer tier).
//
// Cost model (alpha-beta, Hockney 1994 / Chan et al. 2007): one step costs the tier's `latency`
// (alpha); every byte costs 1/effective_bandwidth (beta). Bandwidths are per device, per direction.
// Placement is assumed aligned: a group's members fill whole domains of every tier it spans.
#include <string>
#include <vector>

#include "costmodels/specs.h"

namespace moesim::comm {

enum class CollectiveKind { all_reduce, all_gather, reduce_scatter, all_to_all, send_recv };
enum class AllReduceAlgorithm { ring, tree };
enum class AllToAllAlgorithm {
  pairwise,      // every member sends directly to every other member (flat)
  hierarchical,  // Pangu Ultra MoE: inter-domain all-gather of tokens, then intra-domain all-to-all
  deduplicated,  // DeepEP / HybridEP: once per rank and per remote domain, domain and in-domain legs pipelined
};

struct GroupPlacement {
  int size = 1;
  int stride = 1;
};

struct CollectiveOptions {
  AllReduceAlgorithm all_reduce = AllReduceAlgorithm::ring;
  AllToAllAlgorithm all_to_all = AllToAllAlgorithm::pairwise;
};

struct CollectiveCost {
  seconds time = 0;
  int tier = -1;          // outermost tier the group touches (-1 for a group of one)
  std::string algorithm;  // "ring(nvlink)", "tree(ib)", "mesh(hccs)", "pairwise(hccs>roce)",
                          // "p2p(roce)", "hierarchical(hccs>roce)"; "none" for a group of one
};

// One level of a group's hierarchy: inside one domain of tier `tier`, `members` sub-groups (one per
// domain of the next inner level; single devices at the innermost level) take part in that level's step.
// The product of `members` over all levels is the group size; `cumulative` is the number of group
// members inside one domain of `tier`.
struct GroupLevel {
  int tier = 0;
  int members = 1;
  int cumulative = 1;
};

// Number of group members that share one domain of tier `t`:
// size if size*stride <= tier.size, else max(1, tier.size/stride) (aligned placement).
int members_per_domain(const GroupPlacement& group, const Tier& tier);

// Index of the innermost tier whose domain holds the whole group (the last tier if none does).
int innermost_tier_holding(const GroupPlacement& group, const std::vector<Tier>& tiers);

// The tiers a group uses, innermost first: only tiers where the number of members per domain grows
// (e.g. TP8 x DP4 on [nvlink 8, ib]: a DP group (size 4, stride 8) has one level {ib, 4, 4}; an EP32
// group of stride 1 has {nvlink, 8, 8}, {ib, 4, 32}). Empty for a group of one.
std::vector<GroupLevel> group_levels(const GroupPlacement& group, const std::vector<Tier>& tiers);

// Effective per-device bandwidth of `tier` for a group with `peers_in_domain` members inside one of its
// domains: a switched tier gives every device its full bandwidth; a full-mesh tier (Ascend HCCS:
// 7 point-to-point links per NPU) gives bandwidth/(size-1) per peer link, so a group reaches only the
// links to its own members. Both are scaled by tier.efficiency (tier.all_to_all_efficiency, where set,
// for kind all_to_all). 0 for a full mesh with no peer.
bytes_per_second effective_bandwidth(const Tier& tier, int peers_in_domain,
                                     CollectiveKind kind = CollectiveKind::all_reduce);

// One collective among `n` members on a single tier (no hierarchy), with the tier's effective bandwidth
// for n members. Building block of collective_time; exposed for tests and calibration.
CollectiveCost flat_collective_time(CollectiveKind kind, bytes buffer, int n, const Tier& tier,
                                    const CollectiveOptions& options = {});

// Time of one collective. `buffer` is, per device: the full buffer for all-reduce and reduce-scatter
// (input) and all-gather (output); the total a device sends (its own share included) for all-to-all;
// the message for send/recv (a send/recv group is the pair, stride = their rank distance).
// A non-positive buffer or a group of one costs 0.
CollectiveCost collective_time(CollectiveKind kind, bytes buffer, const GroupPlacement& group,
                               const std::vector<Tier>& tiers, const CollectiveOptions& options = {});

// How a token picks its experts. Without groups: top_k of all experts. DeepSeek's group-limited
// routing (DeepSeek-V2 arXiv 2405.04434 §2.2.2 device-limited, DeepSeek-V3 arXiv 2412.19437 §2.1.2
// node-limited; HF config n_group / topk_group): the experts form `groups` equal contiguous groups and a
// token takes its top_k experts from its `group_top_k` best groups, which bounds the nodes it reaches.
struct ExpertRouting {
  int top_k = 1;
  int experts = 0;  // needed only with groups > 1 or balanced_groups > 1
  int groups = 1;
  int group_top_k = 1;
  // MoGE (Pangu Pro MoE, arXiv 2505.21411 §2): top_k / balanced_groups experts from every one of
  // balanced_groups equal groups. 1: none.
  int balanced_groups = 1;
};

// Expected number of distinct domains, out of `domains` that split the experts into equal contiguous
// ranges (EP ranks hold contiguous experts), holding at least one of a token's top_k experts. Routing
// is uniform: the chosen groups are a uniform group_top_k-subset of the groups, and each of the top_k
// experts is uniform over the chosen groups' experts, drawn independently (with replacement: exact for
// top_k = 1, slightly high in misses otherwise). Without groups: D * (1 - (1 - 1/D)^top_k).
double expected_domains_hit(int domains, const ExpertRouting& routing);

// MoE token dispatch (and, symmetrically, combine) over an EP group: each device holds `tokens`
// tokens of `token_bytes`, each routed to `routing.top_k` experts spread evenly over the group. `imbalance` is
// the max/mean load of the busiest member (>= 1), which sets the pace of the whole group: all bytes
// are scaled by it.
// Flat: each token copy crosses the network once per destination expert.
// Hierarchical: a token crosses the outer tier once per remote domain that needs it (all-gather
// across domains), then fans out inside the domain (all-to-all on the inner tier). Group-limited
// routing lowers the number of domains a token needs, so it shortens only the hierarchical dispatch.
// Deduplicated: a token goes once to each member holding any of its experts, and across domains once to
// each remote domain, the two legs running at once (DeepEP's normal kernels; see comm.cpp).
CollectiveCost expert_dispatch_time(double tokens, bytes token_bytes, const ExpertRouting& routing, double imbalance,
                                    const GroupPlacement& group, const std::vector<Tier>& tiers,
                                    AllToAllAlgorithm algorithm);

const char* to_string(CollectiveKind kind);

}  // namespace moesim::comm
