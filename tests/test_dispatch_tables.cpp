// The EP dispatch model against DeepEP's published normal-kernel table (github.com/deepseek-ai/DeepEP,
// docs/legacy.md "Normal kernels with NVLink and RDMA forwarding": H800, ~160 GB/s NVLink, one CX7 400 Gb/s
// NIC per GPU; 4096 tokens per rank, hidden 7168, top-8 of 256 experts, top-4 node groups, FP8 dispatch,
// BF16 combine; 24 SMs, tests/legacy/test_intranode.py and test_internode.py).
//
// The table's "bottleneck bandwidth" is bytes / time with DeepEP's own byte count, which includes the
// tokens a rank keeps or a node keeps: intranode, recv_x (every token once per rank holding one of its
// experts); internode, num_rdma_token_sent (every token once per node holding one, the sending node
// included). FP8 tokens are hidden x (1 + 4/128) bytes (per-128 fp32 scales), BF16 tokens hidden x 2.
// So the measured time of a row is tokens x E[ranks or nodes hit] x bytes per token / bandwidth, with
// E[...] from the routing (expected_domains_hit: draws with replacement, within 1% of the test's top-k
// without replacement here). The h800 profile's NVLink efficiency (0.80) came from this table's intranode
// row read as a link rate (in sample); the internode rows are held out.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "costmodels/comm.h"
#include "sim/io/specs_io.h"
#include "tests/support.h"

using namespace moesim;
using test::mean_abs;

namespace {

constexpr double tokens = 4096, hidden = 7168;
constexpr double fp8_token_bytes = hidden * (1 + 4.0 / 128), bf16_token_bytes = hidden * 2;

struct DeepEpRow {
  int ep;
  double dispatch_gbps, combine_gbps;
};

comm::ExpertRouting routing_of(int ep) {
  const int nodes = std::max(1, ep / 8);
  // test_internode.py: one group per node, top min(nodes, 4) groups; test_intranode.py: no groups.
  return nodes > 1 ? comm::ExpertRouting{8, 256, nodes, std::min(nodes, 4)} : comm::ExpertRouting{8, 256};
}

// DeepEP's byte count of one row, as its test prints it.
double counted_bytes(int ep, double token_bytes) {
  const int nodes = std::max(1, ep / 8);
  const int domains = nodes > 1 ? nodes : ep;
  return tokens * comm::expected_domains_hit(domains, routing_of(ep)) * token_bytes;
}

double model_error(const HardwareProfile& hw, int ep, double token_bytes, double gbps, comm::AllToAllAlgorithm a,
                   const char* label) {
  const double measured = counted_bytes(ep, token_bytes) / (gbps * 1e9);
  const double model = comm::expert_dispatch_time(tokens, token_bytes, routing_of(ep), 1.0, {ep, 1}, hw.tiers, a).time;
  const double e = model / measured - 1;
  std::printf("%s EP%d: DeepEP %.3f ms, model %.3f ms (%+.1f%%)\n", label, ep, 1e3 * measured, 1e3 * model, 100 * e);
  return e;
}

const std::vector<DeepEpRow> table{{8, 153, 158}, {16, 43, 43}, {32, 58, 57}, {64, 51, 50}};

std::vector<double> errors(const HardwareProfile& hw, comm::AllToAllAlgorithm a, const char* name) {
  std::vector<double> out;
  for (const DeepEpRow& r : table) {
    out.push_back(model_error(hw, r.ep, fp8_token_bytes, r.dispatch_gbps, a, name));
    out.push_back(model_error(hw, r.ep, bf16_token_bytes, r.combine_gbps, a, name));
  }
  return out;
}


}  // namespace

TEST_CASE("dispatch tables: DeepEP normal kernels on H800 against the deduplicated dispatch", "[comm][tables]") {
  const HardwareProfile hw = io::load_profile("h800");
  const std::vector<double> dedup = errors(hw, comm::AllToAllAlgorithm::deduplicated, "deduplicated");
  const double dedup_mean = mean_abs(dedup);
  std::printf("deduplicated: mean |error| %.1f%%\n", 100 * dedup_mean);
  CHECK(dedup_mean < 0.15);
  for (double e : dedup) CHECK(std::abs(e) < 0.35);
  // A copy per expert (Megatron's alltoall dispatcher) or the sequential two-stage hierarchical one is not
  // what these kernels do: each is further from the table than the deduplicated model.
  const double pairwise = mean_abs(errors(hw, comm::AllToAllAlgorithm::pairwise, "pairwise"));
  const double hierarchical = mean_abs(errors(hw, comm::AllToAllAlgorithm::hierarchical, "hierarchical"));
  std::printf("pairwise %.1f%%, hierarchical %.1f%%\n", 100 * pairwise, 100 * hierarchical);
  CHECK(pairwise > dedup_mean + 0.1);
  CHECK(hierarchical > dedup_mean + 0.1);
}
