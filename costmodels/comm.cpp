#include "costmodels/comm.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace moesim::comm {
namespace {

bool is_mesh(const Tier& tier) { return tier.topology == TierTopology::full_mesh; }

// Bandwidth a level may use; a zero or negative value would turn every byte into an infinite time.
bytes_per_second usable_bandwidth(const Tier& tier, int peers_in_domain, CollectiveKind kind) {
  const bytes_per_second b = effective_bandwidth(tier, peers_in_domain, kind);
  if (!(b > 0)) throw std::invalid_argument("comm: tier '" + tier.name + "' has no usable bandwidth");
  return b;
}

std::string tier_chain(const std::vector<GroupLevel>& levels, const std::vector<Tier>& tiers) {
  std::string s;
  for (const GroupLevel& l : levels) {
    if (!s.empty()) s += '>';
    s += tiers[static_cast<std::size_t>(l.tier)].name;
  }
  return s;
}

// Largest divisor of n that is <= cap and a multiple of base (base divides n). Keeps the level
// factors integral when a placement is not aligned to the domain size (e.g. 6 members on 4-wide
// domains are treated as 2 domains of 3).
int aligned_members(int n, int cap, int base) {
  for (int m = std::min(n, cap); m > base; --m)
    if (n % m == 0 && m % base == 0) return m;
  return base;
}

CollectiveCost zero_cost(int tier, const char* algorithm) { return {0.0, tier, algorithm}; }

// Hierarchical all-reduce / all-gather / reduce-scatter over levels [i, end): the standard two-level
// decomposition (Thakur, Rabenseifner & Gropp 2005 sec. 4; NCCL's intra-node/inter-node split)
// applied recursively.
//   all-reduce(S)     = reduce-scatter(S) inside + all-reduce(S/m) outside + all-gather(S) inside
//   all-gather(S)     = all-gather(S/m) outside (peers with the same local index) + all-gather(S) inside
//   reduce-scatter(S) = reduce-scatter(S) inside + reduce-scatter(S/m) outside (mirror of all-gather)
// where m is the number of members at the inner level. Outer levels thus carry 1/m of the bytes.
seconds hierarchical_time(CollectiveKind kind, bytes buffer, const std::vector<GroupLevel>& levels,
                          std::size_t i, const std::vector<Tier>& tiers,
                          const CollectiveOptions& options) {
  const GroupLevel& level = levels[i];
  const Tier& tier = tiers[static_cast<std::size_t>(level.tier)];
  if (i + 1 == levels.size()) return flat_collective_time(kind, buffer, level.members, tier, options).time;
  const bytes outer_buffer = buffer / level.members;
  const seconds outer = hierarchical_time(kind, outer_buffer, levels, i + 1, tiers, options);
  switch (kind) {
    case CollectiveKind::all_reduce:
      return flat_collective_time(CollectiveKind::reduce_scatter, buffer, level.members, tier).time + outer +
             flat_collective_time(CollectiveKind::all_gather, buffer, level.members, tier).time;
    case CollectiveKind::all_gather:
    case CollectiveKind::reduce_scatter:
      return outer + flat_collective_time(kind, buffer, level.members, tier).time;
    default:
      throw std::logic_error("comm: hierarchical_time called for a non-reduction collective");
  }
}

// Flat pairwise all-to-all of a group spanning several tiers. A device sends the fraction
// (cumulative_l - cumulative_{l-1})/n of its buffer to peers first reached at level l (for two tiers:
// (m-1)/n inside the domain, (n-m)/n over the outer tier). The levels use different links and
// proceed at once, so the bandwidth term is the max over levels; the pairwise steps are issued one
// peer at a time (Thakur et al. 2005 pairwise exchange), so the latency terms add: one step per peer
// on a switched tier, a single step for all peers of a full-mesh tier (every peer has its own link).
CollectiveCost spanning_all_to_all(bytes buffer, int n, const std::vector<GroupLevel>& levels,
                                   const std::vector<Tier>& tiers) {
  seconds bandwidth_term = 0, latency_term = 0;
  int inner = 1;
  for (const GroupLevel& l : levels) {
    const Tier& tier = tiers[static_cast<std::size_t>(l.tier)];
    const int peers = l.cumulative - inner;
    const double fraction = static_cast<double>(peers) / n;
    const bytes_per_second b = usable_bandwidth(tier, l.members, CollectiveKind::all_to_all);
    bandwidth_term = std::max(bandwidth_term, fraction * buffer / b);
    latency_term += (is_mesh(tier) ? 1.0 : peers) * tier.latency;
    inner = l.cumulative;
  }
  return {bandwidth_term + latency_term, levels.back().tier, "pairwise(" + tier_chain(levels, tiers) + ")"};
}

}  // namespace

int members_per_domain(const GroupPlacement& group, const Tier& tier) {
  const long long span = static_cast<long long>(group.size) * group.stride;
  if (span <= tier.size) return group.size;
  return std::max(1, tier.size / std::max(1, group.stride));
}

int innermost_tier_holding(const GroupPlacement& group, const std::vector<Tier>& tiers) {
  for (std::size_t t = 0; t < tiers.size(); ++t)
    if (static_cast<long long>(group.size) * group.stride <= tiers[t].size) return static_cast<int>(t);
  return static_cast<int>(tiers.size()) - 1;
}

std::vector<GroupLevel> group_levels(const GroupPlacement& group, const std::vector<Tier>& tiers) {
  std::vector<GroupLevel> levels;
  if (group.size <= 1) return levels;
  if (tiers.empty()) throw std::invalid_argument("comm: a group of several members needs at least one tier");
  if (group.stride < 1) throw std::invalid_argument("comm: group stride must be >= 1");
  const int holding = innermost_tier_holding(group, tiers);
  int previous = 1;
  for (int t = 0; t <= holding; ++t) {
    const int cap = t == holding ? group.size : members_per_domain(group, tiers[static_cast<std::size_t>(t)]);
    const int cumulative = aligned_members(group.size, cap, previous);
    if (cumulative > previous) levels.push_back({t, cumulative / previous, cumulative});
    previous = cumulative;
  }
  return levels;
}

bytes_per_second effective_bandwidth(const Tier& tier, int peers_in_domain, CollectiveKind kind) {
  // A ring or tree keeps one stream per channel to a neighbour and reaches near line rate; an
  // all-to-all holds a flow to every peer at once, and across a switched fabric those flows collide
  // (NCCL alltoall_perf over 8 H800 nodes: 24-28 GB/s per GPU at 8 MB, lower and unstable beyond,
  // NVIDIA/nccl#1531; rings reach 48-49 GB/s per 400 Gb/s NIC, NVIDIA/nccl-tests#267), so a tier may
  // state a lower all-to-all efficiency.
  const double efficiency =
      kind == CollectiveKind::all_to_all && tier.all_to_all_efficiency ? *tier.all_to_all_efficiency : tier.efficiency;
  if (tier.topology == TierTopology::switched || tier.size <= 1) return tier.bandwidth * efficiency;
  // Full mesh (Ascend HCCS, hardware.md sec. 2b: 7 links x 28 GB/s per NPU): the device bandwidth is
  // split evenly over size-1 point-to-point links and a group drives only the links to its own peers.
  const int links = std::clamp(peers_in_domain - 1, 0, tier.size - 1);
  return tier.bandwidth / (tier.size - 1) * links * efficiency;
}

CollectiveCost flat_collective_time(CollectiveKind kind, bytes buffer, int n, const Tier& tier,
                                    const CollectiveOptions& options) {
  // The caller knows the tier index; flat costs report tier -1.
  if (n <= 1 || buffer <= 0) return zero_cost(-1, "none");
  const bool mesh = is_mesh(tier);
  const double nd = n;
  const seconds a = tier.latency;
  const std::string where = "(" + tier.name + ")";
  switch (kind) {
    case CollectiveKind::all_reduce: {
      const seconds beta = 2.0 * (nd - 1.0) / nd * buffer / usable_bandwidth(tier, n, kind);
      // Full mesh: direct reduce-scatter + all-gather, each one step over all peer links at once
      // (HCCL's mesh algorithm; bandwidth term as ring, Thakur et al. 2005 lower bound).
      if (mesh) return {beta + 2.0 * a, -1, "mesh" + where};
      // Double binary tree (NCCL >= 2.4, Sanders, Speck & Traeff 2009): the pipelined trees reach the
      // ring's bandwidth term 2(n-1)/n S/B (NCCL busbw docs); reduce up + broadcast down costs
      // 2*ceil(log2 n) latency steps.
      if (options.all_reduce == AllReduceAlgorithm::tree)
        return {beta + 2.0 * std::ceil(std::log2(nd)) * a, -1, "tree" + where};
      // Ring (Patarasuk & Yuan 2009; NCCL busbw docs): reduce-scatter + all-gather,
      // 2(n-1)/n S/B + 2(n-1) alpha.
      return {beta + 2.0 * (nd - 1.0) * a, -1, "ring" + where};
    }
    case CollectiveKind::all_gather:
    case CollectiveKind::reduce_scatter: {
      // Ring (Thakur et al. 2005; NCCL busbw factor (n-1)/n): (n-1)/n S/B + (n-1) alpha;
      // full mesh: every peer link at once, one step.
      const seconds beta = (nd - 1.0) / nd * buffer / usable_bandwidth(tier, n, kind);
      if (mesh) return {beta + a, -1, "mesh" + where};
      return {beta + (nd - 1.0) * a, -1, "ring" + where};
    }
    case CollectiveKind::all_to_all: {
      // Pairwise exchange (Thakur et al. 2005): (n-1)/n of the buffer leaves the device,
      // n-1 steps; on a full mesh all peers are reached over their own links in one step.
      const seconds beta = (nd - 1.0) / nd * buffer / usable_bandwidth(tier, n, kind);
      if (mesh) return {beta + a, -1, "mesh" + where};
      return {beta + (nd - 1.0) * a, -1, "pairwise" + where};
    }
    case CollectiveKind::send_recv:
      // Point to point (Hockney): alpha + S/B; on a full mesh one link.
      return {buffer / usable_bandwidth(tier, 2, kind) + a, -1, "p2p" + where};
  }
  throw std::logic_error("comm: unknown collective kind");
}

CollectiveCost collective_time(CollectiveKind kind, bytes buffer, const GroupPlacement& group,
                               const std::vector<Tier>& tiers, const CollectiveOptions& options) {
  const std::vector<GroupLevel> levels = group_levels(group, tiers);
  if (levels.empty()) return zero_cost(-1, "none");
  const int outer_tier = levels.back().tier;
  if (buffer <= 0) return zero_cost(outer_tier, "none");

  if (kind == CollectiveKind::send_recv) {
    // The pair's path crosses the outermost tier that separates them.
    CollectiveCost c = flat_collective_time(kind, buffer, 2, tiers[static_cast<std::size_t>(outer_tier)], options);
    c.tier = outer_tier;
    return c;
  }
  if (levels.size() == 1) {
    CollectiveCost c = flat_collective_time(kind, buffer, levels[0].members,
                                            tiers[static_cast<std::size_t>(outer_tier)], options);
    c.tier = outer_tier;
    return c;
  }
  if (kind == CollectiveKind::all_to_all) {
    if (options.all_to_all == AllToAllAlgorithm::pairwise) return spanning_all_to_all(buffer, group.size, levels, tiers);
    // Hierarchical all-to-all (2D all-to-all as in Pangu Ultra MoE arXiv 2505.04519 / Tutel): the
    // device first sends, to the peer with its own local index in every other outer domain, the data
    // meant for that whole domain; the receivers then redistribute inside their domain. Applied
    // recursively, every level runs one flat all-to-all of the full buffer among its `members`:
    // sum over levels of (f-1)/f S/B_l + latency_l. Same outer-tier bytes as pairwise, far fewer
    // outer-tier messages, but the inner tiers carry the data twice and the stages are sequential.
    seconds t = 0;
    for (const GroupLevel& l : levels)
      t += flat_collective_time(kind, buffer, l.members, tiers[static_cast<std::size_t>(l.tier)], options).time;
    return {t, outer_tier, "hierarchical(" + tier_chain(levels, tiers) + ")"};
  }
  return {hierarchical_time(kind, buffer, levels, 0, tiers, options), outer_tier,
          "hierarchical(" + tier_chain(levels, tiers) + ")"};
}

namespace {

// C(n, r) as a double; 0 outside 0 <= r <= n.
double binomial(int n, int r) {
  if (r < 0 || r > n) return 0;
  double c = 1;
  for (int i = 1; i <= r; ++i) c = c * (n - r + i) / i;
  return c;
}

void check_routing(const ExpertRouting& r) {
  if (r.top_k < 1) throw std::invalid_argument("comm: top_k must be >= 1");
  if (r.groups < 1 || r.group_top_k < 1 || r.group_top_k > r.groups)
    throw std::invalid_argument("comm: routing needs 1 <= group_top_k <= groups");
  if (r.groups > 1 && (r.experts < r.groups || r.experts % r.groups != 0))
    throw std::invalid_argument("comm: group-limited routing needs experts divisible by groups");
}

}  // namespace

double expected_domains_hit(int domains, const ExpertRouting& r) {
  check_routing(r);
  if (domains <= 1) return domains > 0 ? 1.0 : 0.0;
  const double D = domains;
  if (r.balanced_groups > 1) {
    // MoGE: k' = top_k / G picks in each group g, uniform over its experts; domain d is missed when every
    // pick of every group falls outside it: prod_g (1 - f(g, d))^k', f the share of g's experts in d
    // (picks within a group drawn independently, as the ungrouped case below).
    const int G = r.balanced_groups;
    const double picks = static_cast<double>(r.top_k) / G;
    double hits = 0;
    for (int d = 0; d < domains; ++d) {
      const double lo = d / D, hi = (d + 1) / D;
      double missed = 1;
      for (int g = 0; g < G; ++g) {
        const double inside = std::max(0.0, std::min(hi, (g + 1.0) / G) - std::max(lo, static_cast<double>(g) / G)) * G;
        missed *= std::pow(std::max(0.0, 1.0 - inside), picks);
      }
      hits += 1.0 - missed;
    }
    return hits;
  }
  if (r.groups == 1 || r.group_top_k == r.groups) {
    // Each of the top_k choices lands in a given domain with probability 1/D, so a domain is missed
    // with probability (1-1/D)^k; linearity of expectation over the D domains.
    return D * (1.0 - std::pow(1.0 - 1.0 / D, r.top_k));
  }
  // Domain d holds experts [d E/D, (d+1) E/D), group g experts [g E/G, (g+1) E/G). With the chosen group
  // set S, one expert lands in d with probability sum_{g in S} f(g,d) / group_top_k, f the share of g's
  // experts inside d. The groups inside d are interchangeable: count c of them chosen (hypergeometric);
  // the at most two it holds in part are enumerated.
  const int G = r.groups, kg = r.group_top_k;
  const double group_span = 1.0 / G, domain_span = 1.0 / D;  // in units of all experts
  const double subsets = binomial(G, kg);
  double hits = 0;
  for (int d = 0; d < domains; ++d) {
    const double lo = d * domain_span, hi = lo + domain_span;
    int whole = 0;
    std::vector<double> partial;  // f(g, d) of groups d holds in part
    for (int g = 0; g < G; ++g) {
      const double overlap = std::min(hi, (g + 1) * group_span) - std::max(lo, g * group_span);
      if (overlap <= 1e-12 * group_span) continue;
      if (overlap >= group_span * (1 - 1e-12)) ++whole;
      else partial.push_back(overlap / group_span);
    }
    const int others = G - whole - static_cast<int>(partial.size());
    double missed = 0;
    for (unsigned mask = 0; mask < (1u << partial.size()); ++mask) {
      double share = 0;
      int picked = 0;
      for (std::size_t i = 0; i < partial.size(); ++i)
        if (mask & (1u << i)) share += partial[i], ++picked;
      for (int c = 0; c <= std::min(whole, kg - picked); ++c) {
        const double p = binomial(whole, c) * binomial(others, kg - c - picked) / subsets;
        if (p > 0) missed += p * std::pow(std::max(0.0, 1.0 - (c + share) / kg), r.top_k);
      }
    }
    hits += 1.0 - missed;
  }
  return hits;
}

namespace {

// The cross-domain leg of a node-deduplicated dispatch: every token (`volume` bytes in all, imbalance
// included) goes once to each *remote* domain holding at least one of its experts, to the peer with the
// same in-domain index: expected_domains_hit(D) x (D-1)/D copies over the outer tier (the domain that
// sends is hit as often as any other, by symmetry), one step on a full mesh, D-1 otherwise.
seconds remote_domain_leg(bytes volume, const ExpertRouting& routing, const GroupLevel& outer,
                          const std::vector<Tier>& tiers) {
  const Tier& tier = tiers[static_cast<std::size_t>(outer.tier)];
  const double domains = outer.members;
  const double remote_hits = expected_domains_hit(outer.members, routing) * (domains - 1.0) / domains;
  const bytes leaving = volume * remote_hits;
  if (!(leaving > 0)) return 0;
  return leaving / usable_bandwidth(tier, outer.members, CollectiveKind::all_to_all) +
         (is_mesh(tier) ? 1.0 : domains - 1.0) * tier.latency;
}

// DeepEP's normal kernels (github.com/deepseek-ai/DeepEP, csrc/kernels/intranode.cu, internode.cu) and
// HybridEP (its Hybrid-EP_Implementation.md: one dense row per rank, an RDMA buffer of (nodes - 1) x
// tokens), Megatron-Core's flex dispatcher: a token is sent once to each member that holds at least one
// of its experts (get_dispatch_layout's is_token_in_rank; the member copies it to its local experts),
// expected_domains_hit(members) copies, of which (n-1)/n leave the device. Across scale-up domains it
// crosses the outer tier once per remote domain (to the peer with the same in-domain index, DeepSeek-V3
// arXiv 2412.19437 sec. 3.2.2), and that peer forwards it inside its domain; the RDMA senders and the
// NVLink forwarders are warps of one kernel working on chunks, so the slower leg paces the dispatch.
// `volume`: every token once (tokens x bytes per token x imbalance).
CollectiveCost deduplicated_dispatch_time(bytes volume, const ExpertRouting& routing, const GroupPlacement& group,
                                          const std::vector<GroupLevel>& levels, const std::vector<Tier>& tiers) {
  const bytes member_copies = volume * expected_domains_hit(group.size, routing);
  if (levels.size() == 1) {
    CollectiveCost c = collective_time(CollectiveKind::all_to_all, member_copies, group, tiers);
    c.algorithm = "deduplicated(" + tier_chain(levels, tiers) + ")";
    return c;
  }
  const GroupLevel& outer = levels.back();
  const seconds across = remote_domain_leg(volume, routing, outer, tiers);
  // Inside the domain each member receives its member_copies, all but its own share from in-domain peers.
  const int inner_members = levels[levels.size() - 2].cumulative;
  const seconds inside = collective_time(CollectiveKind::all_to_all, member_copies, {inner_members, group.stride}, tiers).time;
  return {std::max(across, inside), outer.tier, "deduplicated(" + tier_chain(levels, tiers) + ")"};
}

}  // namespace

CollectiveCost expert_dispatch_time(double tokens, bytes token_bytes, const ExpertRouting& routing, double imbalance,
                                    const GroupPlacement& group, const std::vector<Tier>& tiers,
                                    AllToAllAlgorithm algorithm) {
  check_routing(routing);
  if (imbalance <= 0) throw std::invalid_argument("comm: imbalance must be positive");
  const std::vector<GroupLevel> levels = group_levels(group, tiers);
  if (levels.empty()) return zero_cost(-1, "none");
  // Each device sends one copy of a token per selected expert: tokens * top_k * token_bytes, of which
  // (n-1)/n leaves the device. The busiest member receives `imbalance` x the mean and paces the group
  // (DeepSeek-V3 arXiv 2412.19437 sec. 3.4 / GShard capacity reasoning), so every byte is scaled.
  const bytes copies = tokens * routing.top_k * token_bytes * imbalance, volume = tokens * token_bytes * imbalance;
  if (algorithm == AllToAllAlgorithm::deduplicated) return deduplicated_dispatch_time(volume, routing, group, levels, tiers);
  // A group inside one domain has no outer tier to save traffic on: both algorithms are the flat one.
  if (algorithm == AllToAllAlgorithm::pairwise || levels.size() == 1)
    return collective_time(CollectiveKind::all_to_all, copies, group, tiers);

  // Hierarchical EP all-to-all (Pangu Ultra MoE arXiv 2505.04519; node-level deduplication as in
  // DeepSeek-V3 arXiv 2412.19437 sec. 3.2.2 / DeepEP): D outer domains of m members.
  // Stage 1 (outer tier, all-gather-like): remote_domain_leg, (D-1)(1-(1-1/D)^k) copies per token
  // without group-limited routing.
  // Stage 2 (inner domain, pairwise all-to-all): each device now holds, by symmetry, tokens*top_k
  // token-expert copies for its domain and forwards the (m-1)/m not destined to itself (no per-device
  // deduplication). Stage 2 waits for stage 1, so the times add.
  const GroupLevel& outer = levels.back();
  const int inner_members = levels[levels.size() - 2].cumulative;
  const seconds t = remote_domain_leg(volume, routing, outer, tiers) +
                    collective_time(CollectiveKind::all_to_all, copies, {inner_members, group.stride}, tiers).time;
  return {t, outer.tier, "hierarchical(" + tier_chain(levels, tiers) + ")"};
}

const char* to_string(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::all_reduce: return "all_reduce";
    case CollectiveKind::all_gather: return "all_gather";
    case CollectiveKind::reduce_scatter: return "reduce_scatter";
    case CollectiveKind::all_to_all: return "all_to_all";
    case CollectiveKind::send_recv: return "send_recv";
  }
  return "unknown";
}

}  // namespace moesim::comm
