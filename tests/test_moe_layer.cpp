// costmodels/moe_layer: the MoE block's parts are ops of their own, in Megatron-Core's order, with their
// traffic growing as the routing does.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "costmodels/graph.h"
#include "costmodels/imbalance.h"
#include "sim/io/specs_io.h"

using namespace moesim;

namespace {

const graph::Op* find(const graph::LayerGraph& g, const std::string& name) {
  for (const auto& op : g.forward)
    if (name == op.name) return &op;
  return nullptr;
}

// One microbatch of 4,096 tokens on a device of an EP group of `ep` with the given dispatcher.
graph::GraphContext context(int ep, MoeDispatcher dispatcher) {
  graph::GraphContext c;
  c.tokens = 4096;
  c.seq_len = 4096;
  c.ep = ep;
  c.moe_dispatcher = dispatcher;
  return c;
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

// MindSpeed-LLM's legacy MoE (AscendSpeed's copy of DeepSpeed's sharded_moe.py): the einsum dispatcher
// builds S x E x C masks, dispatches and combines by matmuls over them, and has no permutation.
TEST_CASE("moe layer: the GShard einsum dispatcher's masks and matmuls grow with capacity", "[graph][moe]") {
  ModelSpec m = io::load_model("mixtral-8x7b");
  graph::GraphContext c = context(2, MoeDispatcher::einsum);
  c.moe_capacity_factor = 1.1;
  const graph::LayerGraph g = graph::build_layer(m, c, graph::LayerKind::moe);
  CHECK_FALSE(find(g, "permute"));
  CHECK_FALSE(find(g, "unpermute"));
  // C = ceil(2 x 1.1 x 4096 / 8) = 1127 slots per expert, 9016 in all.
  const double slots = 8 * 1127.0;
  const auto* masks = find(g, "gshard_masks");
  REQUIRE(masks);
  CHECK(masks->hbm_bytes == Approx(34 * 4096.0 * slots));
  const auto* dispatch = find(g, "gshard_dispatch");
  REQUIRE(dispatch);
  CHECK(dispatch->flop_count == Approx(2 * 4096.0 * slots * 4096));  // 'sec,sm->ecm' over S = 4096
  CHECK(dispatch->model_flop_count == 0);
  CHECK_FALSE(dispatch->kn_needs_gradient);  // the mask
  const auto* combine = find(g, "gshard_combine");
  REQUIRE(combine);
  CHECK(combine->kn_needs_gradient);  // the combine weights carry the gates' gradient
  CHECK_FALSE(combine->kn_is_weight);
  // The all-to-all carries the padded E x C x h buffer.
  CHECK(find(g, "ep_dispatch")->collective.buffer == Approx(slots * 4096 * 2));
  CHECK_FALSE(find(g, "ep_dispatch")->collective.expert_dispatch);
  // Twice the capacity: twice the slots, so twice the dispatch FLOPs and mask traffic.
  c.moe_capacity_factor = 2.2;
  const graph::LayerGraph wide = graph::build_layer(m, c, graph::LayerKind::moe);
  CHECK(find(wide, "gshard_dispatch")->flop_count == Approx(2 * dispatch->flop_count).epsilon(0.001));
  CHECK(find(wide, "gshard_masks")->hbm_bytes == Approx(2 * masks->hbm_bytes).epsilon(0.001));
}

// Capacity (GShard §2.2): padding makes every expert do capacity x its share; dropping caps the busiest.
TEST_CASE("moe layer: a capacity factor caps or fixes the expert load", "[moe][imbalance]") {
  const ModelSpec m = io::load_model("qwen3-30b-a3b");
  LayoutSpec l;
  l.ep = 8;
  l.expert_load.skew = 1.0;  // lognormal sigma 1: some rank well above the mean
  const double routed = imbalance::layout_imbalance(m, l);
  REQUIRE(routed > 1.2);
  l.moe_capacity_factor = 1.2;
  CHECK(imbalance::layout_imbalance(m, l) == Approx(1.2));  // dropped down to capacity
  l.moe_capacity_factor = 4.0;
  CHECK(imbalance::layout_imbalance(m, l) == Approx(routed));  // capacity above the busiest: nothing dropped
  l.moe_pad_to_capacity = true;
  CHECK(imbalance::layout_imbalance(m, l) == Approx(4.0));  // padded: every expert computes its capacity
  l.expert_load.skew = 0;
  l.moe_capacity_factor = 1.1;
  l.ep = 1;
  CHECK(imbalance::layout_imbalance(m, l) == Approx(1.1));  // also without EP
}

// MindSpeed's allgather permutation (--moe-permutation-async-comm, token_dispatcher.py at Ascend/MindSpeed
// 4ea42a23): an argsort and a second row gather after the gather, and a combine through an fp32 buffer of
// all ep x T gathered tokens that is zeroed, accumulated into and cast back before the reduce-scatter.
TEST_CASE("moe layer: MindSpeed's allgather permutation adds its sort, row gather and fp32 combine", "[graph][moe]") {
  ModelSpec m = io::load_model("qwen3-30b-a3b");
  graph::GraphContext c = context(4, MoeDispatcher::allgather);
  const graph::LayerGraph megatron = graph::build_layer(m, c, graph::LayerKind::moe);
  c.moe_permutation_async_comm = true;
  const graph::LayerGraph mindspeed = graph::build_layer(m, c, graph::LayerKind::moe);
  for (const char* name : {"permute_argsort", "permute_rows", "combine_fp32_zero", "combine_fp32_accumulate",
                           "combine_fp32_cast"}) {
    CHECK(find(megatron, name) == nullptr);
    CHECK(find(mindspeed, name) != nullptr);
  }
  const double h = m.hidden, gathered = 4.0 * 4096, rows = 4096.0 * m.moe->top_k;
  CHECK(find(mindspeed, "combine_fp32_zero")->hbm_bytes == Approx(gathered * h * 4));
  CHECK(find(mindspeed, "combine_fp32_cast")->hbm_bytes == Approx(gathered * h * 6));
  CHECK(find(mindspeed, "combine_fp32_accumulate")->hbm_bytes == Approx(rows * h * 18));
  CHECK(find(mindspeed, "permute_rows")->hbm_bytes == Approx(rows * h * 4));
  // The reduce-scatter itself stays bf16: NewIndePut returns the buffer cast back.
  CHECK(find(mindspeed, "ep_reduce_scatter")->collective.buffer == Approx(find(megatron, "ep_reduce_scatter")->collective.buffer));
  // Another dispatcher is unchanged by the flag.
  c.moe_dispatcher = MoeDispatcher::alltoall;
  CHECK(find(graph::build_layer(m, c, graph::LayerKind::moe), "combine_fp32_zero") == nullptr);
}

// MindSpeed's SequentialMLP under the alltoall dispatcher with TP-split experts (experts.py
// sequential_mlp_forward at Ascend/MindSpeed 4ea42a23): the last-dim gather's concatenation, the zeroed output
// buffer and the per-expert copies into it, each over all T x k x etp rows; not with grouped GEMMs.
TEST_CASE("moe layer: MindSpeed's SequentialMLP copies its rows where the experts are TP-split", "[graph][moe]") {
  ModelSpec m = io::load_model("mixtral-8x7b");
  graph::GraphContext c = context(1, MoeDispatcher::alltoall);
  c.tp = c.etp = 8;
  c.moe_grouped_gemm = false;
  c.moe_permutation_async_comm = true;
  const graph::LayerGraph g = graph::build_layer(m, c, graph::LayerKind::moe);
  const double rows = 4096.0 / 8 * m.moe->top_k * 8;
  CHECK(find(g, "expert_gather_concat")->hbm_bytes == Approx(rows * m.hidden * 4));
  CHECK(find(g, "expert_output_zero")->hbm_bytes == Approx(rows * m.hidden * 2));
  CHECK(find(g, "expert_output_copy")->hbm_bytes == Approx(rows * m.hidden * 4));
  c.moe_grouped_gemm = true;
  CHECK(find(graph::build_layer(m, c, graph::LayerKind::moe), "expert_output_copy") == nullptr);
  c.moe_grouped_gemm = false;
  c.moe_permutation_async_comm = false;
  CHECK(find(graph::build_layer(m, c, graph::LayerKind::moe), "expert_gather_concat") == nullptr);
}
