// MoGE (Mixture of Grouped Experts, Pangu Pro MoE arXiv 2505.21411 §2): every token takes top_k /
// groups experts from each expert group, so EP ranks holding whole groups receive equal loads whatever
// the router prefers (imbalance score 0), and a token reaches every domain that holds a group.
#include <catch2/catch.hpp>

#include "costmodels/comm.h"
#include "costmodels/imbalance.h"
#include "sim/io/specs_io.h"
#include "sim/engine/op_sim.h"
#include "sim/engine/op_timing.h"
#include "sim/search/sweep.h"
#include "tests/support.h"

using namespace moesim;

namespace {

ModelSpec without_moge(ModelSpec m) {
  m.moe->expert_groups = 1;
  return m;
}

}  // namespace

TEST_CASE("MoGE: Pangu Pro MoE's imbalance score is 0 and its EP ranks evenly loaded under skew", "[moge]") {
  const ModelSpec m = io::load_model("pangu-pro-moe-72b");
  REQUIRE(m.moe->expert_groups == 8);
  LayoutSpec l = test::make_layout(64, 1, 1, 8, 64, 4096);
  l.expert_load.skew = 0.6;  // the router prefers some experts strongly
  for (int ep : {2, 4, 8}) {  // every rank holds whole groups
    CAPTURE(ep);
    l.ep = ep;
    CHECK(imbalance::imbalance_score(m, l) == Approx(0).margin(1e-12));
    CHECK(imbalance::layout_imbalance(m, l) == Approx(1).epsilon(1e-12));
    // Plain top-8 over the same preferences: some ranks get more (§2.2: IS > 0 for conventional top-K).
    CHECK(imbalance::imbalance_score(without_moge(m), l) > 0.1);
    CHECK(imbalance::layout_imbalance(without_moge(m), l) > 1.01);
  }
  // EP 16 splits each group over two ranks: the preferences inside a group show again, less than without MoGE.
  l.ep = 16;
  CHECK(imbalance::imbalance_score(m, l) > 0);
  CHECK(imbalance::imbalance_score(m, l) < imbalance::imbalance_score(without_moge(m), l));
  // The shares stay a distribution, 1/8 per group.
  const std::vector<double> shares = imbalance::model_shares(m, l);
  double group0 = 0, total = 0;
  for (std::size_t e = 0; e < shares.size(); ++e) {
    total += shares[e];
    if (e < 8) group0 += shares[e];
  }
  CHECK(total == Approx(1));
  CHECK(group0 == Approx(1.0 / 8));
}

TEST_CASE("MoGE: a token reaches every domain that holds a group", "[moge][comm]") {
  // 64 experts in 8 groups, top-1 per group, over 8 domains of one group each: all 8 are hit, where
  // unconstrained top-8 hits 8 (1 - (7/8)^8) = 5.25 on average.
  const comm::ExpertRouting moge{.top_k = 8, .experts = 64, .groups = 1, .group_top_k = 1, .balanced_groups = 8};
  const comm::ExpertRouting plain{.top_k = 8, .experts = 64};
  CHECK(comm::expected_domains_hit(8, moge) == Approx(8));
  CHECK(comm::expected_domains_hit(8, plain) == Approx(8 * (1 - std::pow(7.0 / 8, 8))));
  // Two domains of four groups each: both hit. 16 domains (half a group each): each pick of a group
  // lands in one of its two halves, so a domain is hit with probability 1/2: 8 of 16.
  CHECK(comm::expected_domains_hit(2, moge) == Approx(2));
  CHECK(comm::expected_domains_hit(16, moge) == Approx(8));
}

TEST_CASE("MoGE: model file errors name the field", "[moge][io]") {
  io::json j = io::read_json_file(std::string(MOESIM_SOURCE_DIR) + "/models/pangu-pro-moe-72b.json");
  j["moe"]["expert_groups"] = 3;  // divides neither 64 nor 8
  test::check_names(test::input_error([&] { io::parse_model(j, "p.json"); }), "p.json", "moe.expert_groups");
  j["moe"]["expert_groups"] = 8;
  j["moe"]["router_groups"] = 8;
  test::check_names(test::input_error([&] { io::parse_model(j, "p.json"); }), "p.json", "moe.expert_groups");
}

TEST_CASE("MoGE: expert_groups is a sweep axis", "[moge][sweep]") {
  io::json j = io::read_json_file(std::string(MOESIM_SOURCE_DIR) + "/tests/data/sweep-small.json");
  j.erase("constraints");
  j["base_model"] = "pangu-pro-moe-72b";
  j["model_axes"] = {{"expert_groups", {1, 3, 8}}};
  const sweep::SweepSpec spec = sweep::parse_spec(j, "moge.json");
  CHECK(sweep::point_model(spec, {1}).model->moe->expert_groups == 1);
  CHECK(sweep::point_model(spec, {8}).model->moe->expert_groups == 8);
  const auto bad = sweep::point_model(spec, {3});  // 64 experts and top-8 do not split into 3 groups
  CHECK_FALSE(bad.model);
  CHECK_THAT(bad.error, Catch::Contains("MoGE"));
  j["base_model"] = "llama3-8b";
  test::check_names(test::input_error([&] { sweep::parse_spec(j, "moge.json"); }), "moge.json", "model_axes.expert_groups");
}

TEST_CASE("Pangu Pro MoE: the optimised layout's MFU gain over the baseline is the paper's +35% within 10 points",
          "[moge][pangu]") {
  // arXiv 2505.21411v2 §4.1 / Table 2: TP1 EP8 CP8 PP6 VPP4 -> TP8 EP2 PP5 VPP5 on 4K NPUs, +35% relative MFU
  // (validation/layouts/pangu-pro-moe-*.json say what is stated and what is assumed). Operator level, the
  // default prediction: x1.39 (the pass level gives x1.48; README, "Pangu Pro MoE's layout comparison").
  const std::string dir = std::string(MOESIM_SOURCE_DIR) + "/validation/layouts/";
  test::Run base{io::load_model("pangu-pro-moe-72b"), io::load_layout(dir + "pangu-pro-moe-baseline.json"),
                 io::load_profile("ascend-910b2")};
  test::Run opt{base.model, io::load_layout(dir + "pangu-pro-moe-optimised.json"), base.hw};
  REQUIRE_FALSE(complete_and_check_layout(base.model, base.layout));
  REQUIRE_FALSE(complete_and_check_layout(opt.model, opt.layout));
  const sim::SimulationResult b = sim::simulate_op_level(base.model, base.layout, base.hw).result;
  const sim::SimulationResult o = sim::simulate_op_level(opt.model, opt.layout, opt.hw).result;
  CHECK(b.fits);
  CHECK(o.fits);
  CHECK(b.tokens_per_iteration == o.tokens_per_iteration);
  const double gain = o.mfu / b.mfu;
  CAPTURE(b.mfu, o.mfu, gain);
  CHECK(gain > 1.25);
  CHECK(gain < 1.45);
  // What the baseline pays and the optimised layout does not: the ring's exposed K, V exchange (8 blocks of
  // 512 tokens, backward with dK, dV) and a deeper pipeline; MoGE keeps its EP8 ranks (one group each) even.
  CHECK(b.breakdown.exposed_cp > 0.15 * b.iteration_time);
  CHECK(o.breakdown.exposed_cp == 0);
  CHECK(b.bubble_fraction > o.bubble_fraction);
  CHECK(b.imbalance == Approx(1));
  // Without --use-cp-send-recv-overlap (MindSpeed's default, the file's assumption) each ring step's send
  // and receive run in turn: with the flag the exchange halves and the gain falls below the band (x1.21).
  test::Run overlapped = base;
  overlapped.layout.cp_send_recv_overlap = true;
  const sim::SimulationResult v = sim::simulate_op_level(overlapped.model, overlapped.layout, overlapped.hw).result;
  CHECK(v.breakdown.exposed_cp < 0.5 * b.breakdown.exposed_cp);
  CHECK(o.mfu / v.mfu < 1.25);
  // The ring's per-block output merge (the profile's ring_update_bytes, MindSpeed's forward_update) is part
  // of the gain too: without it the baseline is faster.
  test::Run unmerged = base;
  unmerged.hw.device.ring_update_bytes = 0;
  CHECK(sim::simulate_op_level(unmerged.model, unmerged.layout, unmerged.hw).result.iteration_time < b.iteration_time);
}

TEST_CASE("Ring attention: the backward exchange carries dK, dV too, and each later block's output is merged",
          "[moge][pangu][cp]") {
  const ModelSpec m = io::load_model("pangu-pro-moe-72b");
  const LayoutSpec l = io::load_layout(std::string(MOESIM_SOURCE_DIR) + "/validation/layouts/pangu-pro-moe-baseline.json");
  const HardwareProfile hw = io::load_profile("ascend-910b2");
  const graph::ModelGraphs g = graph::build_model_graphs(m, graph::make_context(m, l, hw.device));
  sim::OpTimings timings(l, hw, 1.0);
  const std::vector<sim::OpTiming>& t = timings.of(g.moe);
  std::size_t exchange = g.moe.forward.size(), merge = exchange;
  for (std::size_t i = 0; i < g.moe.forward.size(); ++i) {
    if (std::string(g.moe.forward[i].name) == "cp_kv_exchange") exchange = i;
    if (std::string(g.moe.forward[i].name) == "cp_output_update") merge = i;
  }
  REQUIRE(exchange < g.moe.forward.size());
  REQUIRE(merge < g.moe.forward.size());
  // K and V of 512 local tokens, 8 KV heads of 128, bf16, passed on 7 times: 14.7 MB; backward twice that.
  CHECK(g.moe.forward[exchange].collective.buffer == Approx(7.0 * 512 * 8 * 256 * 2));
  CHECK(t[exchange].backward_input > 1.9 * t[exchange].forward);
  // The file's layout leaves --use-cp-send-recv-overlap off: each step's send and receive run in turn,
  // twice the time of the two at once, forward and backward.
  CHECK(g.moe.forward[exchange].collective.serial_phases == 2);
  LayoutSpec overlapped = l;
  overlapped.cp_send_recv_overlap = true;
  const graph::ModelGraphs go = graph::build_model_graphs(m, graph::make_context(m, overlapped, hw.device));
  sim::OpTimings timings_o(overlapped, hw, 1.0);
  const sim::OpTiming& to = timings_o.of(go.moe)[exchange];
  CHECK(t[exchange].forward == Approx(2 * to.forward));
  CHECK(t[exchange].backward_input == Approx(2 * to.backward_input));
  // 7 merges of the 512 x 40 x 128 output at the profile's 69 bytes per element.
  CHECK(g.moe.forward[merge].hbm_bytes == Approx(7.0 * 69 * 512 * 40 * 128));
  // A profile without the merge (the GPU profiles) and CP 1 build no merge op.
  HardwareProfile no_merge = hw;
  no_merge.device.ring_update_bytes = 0;
  LayoutSpec no_cp = l;
  no_cp.cp = 1;
  for (const graph::LayerGraph& layer : {graph::build_model_graphs(m, graph::make_context(m, l, no_merge.device)).moe,
                                         graph::build_model_graphs(m, graph::make_context(m, no_cp, hw.device)).moe})
    for (const graph::Op& op : layer.forward) CHECK(std::string(op.name) != "cp_output_update");
}

TEST_CASE("cp_send_recv_overlap parses; set without a ring exchange it names the field", "[moge][cp][io]") {
  io::json j = io::read_json_file(std::string(MOESIM_SOURCE_DIR) + "/validation/layouts/pangu-pro-moe-baseline.json");
  CHECK_FALSE(io::parse_layout(j, "l.json").cp_send_recv_overlap);
  j.erase("cp_send_recv_overlap");
  CHECK(io::parse_layout(j, "l.json").cp_send_recv_overlap);  // Megatron/TE's batched exchange by default
  j["cp_send_recv_overlap"] = "no";
  test::check_names(test::input_error([&] { io::parse_layout(j, "l.json"); }), "l.json", "cp_send_recv_overlap");
  j["cp_send_recv_overlap"] = false;
  j["cp"] = 1;
  test::check_names(test::input_error([&] { io::parse_layout(j, "l.json"); }), "l.json", "cp_send_recv_overlap");
}
