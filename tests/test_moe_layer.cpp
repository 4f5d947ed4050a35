// costmodels/moe_layer: the MoE block's parts are ops of their own, in Megatron-Core's order, with their
// traffic growing as the routing does.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "costmodels/graph.h"
#include "sim/io/specs_io.h"

using namespace moesim;

namespace {

const graph::Op* find(const graph::LayerGraph& g, const std::string& name) {
  for (const auto& op : g.forward)
    if (name == op.name) return &op;
  return nullptr;
}

graph::LayerGraph moe_layer(int experts, int top_k, int ep) {
  ModelSpec m = io::load_model("qwen3-30b-a3b");
  m.moe->experts = experts;
  m.moe->top_k = top_k;
  graph::GraphContext c;
  c.tokens = 4096;
  c.seq_len = 4096;
  c.ep = ep;
  return graph::build_layer(m, c, graph::LayerKind::moe);
}

}  // namespace

TEST_CASE("moe layer: router, permutation, dispatch, grouped GEMMs and combine are ops in order", "[graph][moe]") {
  const graph::LayerGraph g = moe_layer(128, 8, 8);
  const std::vector<std::string> order{"router", "router_score", "router_topk", "router_aux_loss", "router_histogram",
                                       "permute_index", "permute", "ep_dispatch", "expert_fc1", "expert_act",
                                       "expert_fc2", "ep_combine", "unpermute_probs", "unpermute"};
  std::size_t at = 0;
  for (const auto& op : g.forward)
    if (at < order.size() && order[at] == op.name) ++at;
  CHECK(at == order.size());
  CHECK(g.host_syncs());  // the token-count histogram goes to the host
  // The router GEMM is T x h x E; the scores are fp32: read and written once by the score function.
  const auto* router = find(g, "router");
  REQUIRE(router);
  CHECK(router->shape.n == 128);
  CHECK(find(g, "router_score")->hbm_bytes == Approx(2 * 4096.0 * 128 * 4));
  // Grouped GEMMs: 16 local experts of 4096 x 8 / 16 = 2048 tokens each.
  const auto* fc2 = find(g, "expert_fc2");
  CHECK(fc2->shape.count == 16);
  CHECK(fc2->shape.m == 2048);
  CHECK(fc2->shape.k == 768);
}

TEST_CASE("moe layer: router and permutation traffic grow with experts and top-k", "[graph][moe]") {
  const graph::LayerGraph coarse = moe_layer(8, 1, 8), fine = moe_layer(512, 8, 8);
  for (const char* name : {"router_score", "router_topk", "router_aux_loss", "router_histogram", "permute_index"})
    CHECK(find(fine, name)->hbm_bytes > 8 * find(coarse, name)->hbm_bytes);
  // Gathers and scatters move T x k rows: 8x with top-8 against top-1.
  CHECK(find(fine, "permute")->hbm_bytes == Approx(8 * find(coarse, "permute")->hbm_bytes));
  CHECK(find(fine, "unpermute_probs")->hbm_bytes == Approx(8 * find(coarse, "unpermute_probs")->hbm_bytes));
  // The scatter-add reads T x k rows and writes T rows.
  CHECK(find(fine, "unpermute")->hbm_bytes == Approx((8 + 1) * 4096.0 * 2048 * 2));
}
