// Operator-level simulation (sim/engine/op_sim.h): physically known orderings asserted on its output,
// its agreement with the pass-level model where nothing overlaps, determinism, and the trace.
#include <catch2/catch.hpp>

#include <algorithm>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/calibration/timeline.h"
#include "sim/engine/op_sim.h"
#include "sim/engine/op_timing.h"
#include "sim/io/specs_io.h"
#include "sim/search/op_finalists.h"
#include "tests/support.h"

using namespace moesim;

namespace {

using test::make_layout;
using test::Run;

sim::OpLevelResult op_level(Run r) {
  if (auto err = complete_and_check_layout(r.model, r.layout)) FAIL("layout rejected: " << *err);
  return sim::simulate_op_level(r.model, r.layout, r.hw);
}

// GPT-3 175B on 64 H100s (NVLink nodes of 8): TP 8, PP 4, DP 2, 1F1B, every overlap off.
Run dense_run() {
  Run r{io::load_model("gpt3-175b"), make_layout(64, 8, 4, 1, 32, 2048), io::load_profile("h100-sxm")};
  r.layout.overlap = {};
  r.layout.overlap.tp_comm = false;
  r.layout.overlap.ep_all_to_all = false;
  r.layout.overlap.dp_grad_reduce = false;
  r.layout.overlap.dp_param_gather = false;
  r.layout.overlap.pp_p2p = false;
  return r;
}

// The same hardware with scale-up nodes of 4 GPUs: a TP group of 8 spans two nodes.
Run with_node_size(Run r, int size) {
  r.hw.tiers[0].size = size;
  return r;
}

double exposed_comm(const sim::TimeBreakdown& b) {
  return b.exposed_tp + b.exposed_ep + b.exposed_cp + b.exposed_pp + b.exposed_dp + b.exposed_swap;
}

}  // namespace

TEST_CASE("op-level: TP across nodes is slower than TP inside a node at equal parallelism", "[op_sim]") {
  for (const bool overlap : {false, true}) {
    CAPTURE(overlap);
    Run inside = dense_run();
    inside.layout.overlap.tp_comm = overlap;
    const Run across = with_node_size(inside, 4);
    const sim::OpLevelResult a = op_level(inside), b = op_level(across);
    CHECK(b.result.iteration_time > a.result.iteration_time);
    CHECK(b.result.breakdown.exposed_tp > a.result.breakdown.exposed_tp);
  }
}

TEST_CASE("op-level: TP overlap outside the scale-up domain hides nothing", "[op_sim]") {
  Run off = with_node_size(dense_run(), 4);
  Run on = off;
  on.layout.overlap.tp_comm = true;
  const sim::OpLevelResult a = op_level(off), b = op_level(on);
  CHECK(b.result.breakdown.exposed_tp == a.result.breakdown.exposed_tp);
  CHECK(b.result.iteration_time == a.result.iteration_time);
}

TEST_CASE("op-level: TP overlap inside the node exposes less TP communication", "[op_sim]") {
  Run off = dense_run();
  Run on = off;
  on.layout.overlap.tp_comm = true;
  const sim::OpLevelResult a = op_level(off), b = op_level(on);
  CHECK(a.result.breakdown.exposed_tp > 0);
  CHECK(b.result.breakdown.exposed_tp < a.result.breakdown.exposed_tp);
  CHECK(b.result.iteration_time < a.result.iteration_time);
  // Chunked: one exchange step per TP rank beside the GEMM it feeds, on the TP stream.
  CHECK(b.engine.task_count() > a.engine.task_count());
}

TEST_CASE("op-level: more microbatches never lengthen the bubble share", "[op_sim]") {
  for (const ScheduleKind schedule : {ScheduleKind::one_f_one_b, ScheduleKind::interleaved}) {
    CAPTURE(static_cast<int>(schedule));
    double previous = 1.0;
    for (const int microbatches : {4, 8, 16, 32}) {
      CAPTURE(microbatches);
      Run r = dense_run();
      r.layout.schedule = schedule;
      r.layout.vpp = schedule == ScheduleKind::interleaved ? 2 : 1;
      r.layout.global_batch = 2 * microbatches;  // DP 2, micro-batch 1
      const sim::OpLevelResult o = op_level(r);
      CHECK(o.result.bubble_fraction > 0);
      CHECK(o.result.bubble_fraction <= previous + 1e-12);
      previous = o.result.bubble_fraction;
    }
  }
}

TEST_CASE("op-level: EP all-to-all overlap is never slower than without", "[op_sim]") {
  std::vector<std::pair<std::string, Run>> runs;
  {
    Run r{io::load_model("mixtral-8x7b"), make_layout(64, 2, 4, 8, 256), io::load_profile("h100-sxm")};
    r.layout.vpp = 2;
    r.layout.schedule = ScheduleKind::interleaved;
    runs.push_back({"mixtral-8x7b h100 interleaved", r});
  }
  runs.push_back({"mixtral-8x7b h100 no pipeline", {io::load_model("mixtral-8x7b"), make_layout(64, 2, 1, 8, 256), io::load_profile("h100-sxm")}});
  {
    Run r{io::load_model("deepseek-v3-671b"), make_layout(1024, 2, 8, 64, 1024), io::load_profile("h800")};
    r.layout.schedule = ScheduleKind::dualpipe;
    runs.push_back({"deepseek-v3 h800 dualpipe", r});
  }
  runs.push_back({"pangu 6k", {io::load_model("pangu-ultra-moe-718b"),
                               io::load_layout(std::string(MOESIM_SOURCE_DIR) + "/validation/layouts/pangu-ultra-moe-6k.json"),
                               io::load_profile("ascend-910b2")}});
  for (const auto& entry : runs) {
    const std::string& name = entry.first;
    CAPTURE(name);
    Run off = entry.second, on = entry.second;
    off.layout.overlap.ep_all_to_all = false;
    on.layout.overlap.ep_all_to_all = true;
    const sim::OpLevelResult a = op_level(off), b = op_level(on);
    CHECK(a.result.breakdown.exposed_ep > 0);
    CHECK(b.result.iteration_time <= a.result.iteration_time);
    // Combined 1F1B pairs steady-state passes: none without pipelining's warmup, and with virtual stages
    // where the schedule has a steady state. DualPipe pairs by its schedule with the switch or without;
    // Pangu's interleaved order with as many microbatches as stages (16) is all warmup and cooldown.
    if (name.find("mixtral") != std::string::npos) CHECK(b.result.breakdown.exposed_ep < a.result.breakdown.exposed_ep);
  }
}

TEST_CASE("op-level: compute beside the flex dispatcher's kernels runs on the SMs they leave", "[op_sim][flex]") {
  // The slowdown of a compute-bound kernel left U - S of U SMs: S / (U - S); nothing without flex or SM count.
  LayoutSpec l;
  DeviceSpec d;
  d.matrix.compute_units = 148;
  l.moe_dispatcher = MoeDispatcher::flex;
  l.ep_dispatch_sms = 24;
  CHECK(sim::flex_dispatch_slowdown(l, d) == Approx(24.0 / 124));
  l.moe_dispatcher = MoeDispatcher::alltoall;
  CHECK(sim::flex_dispatch_slowdown(l, d) == 0);
  l.moe_dispatcher = MoeDispatcher::flex;
  d.matrix.compute_units = 0;
  CHECK(sim::flex_dispatch_slowdown(l, d) == 0);
  // Mixtral on 64 H100s, PP 4 x VPP 2, EP 8, EP overlap (combined 1F1B): the more SMs the dispatch holds, the
  // longer the iteration; the compute stream's busy time grows, the EP collectives' own time does not.
  Run r{io::load_model("mixtral-8x7b"), make_layout(64, 2, 4, 8, 256), io::load_profile("h100-sxm")};
  r.layout.vpp = 2;
  r.layout.schedule = ScheduleKind::interleaved;
  r.layout.overlap.ep_all_to_all = true;
  r.layout.moe_dispatcher = MoeDispatcher::flex;
  std::vector<sim::OpLevelResult> runs;
  for (const int sms : {0, 20, 40}) {
    Run x = r;
    x.layout.ep_dispatch_sms = sms;
    runs.push_back(op_level(x));
  }
  for (std::size_t i = 1; i < runs.size(); ++i) {
    CAPTURE(i);
    CHECK(runs[i].result.iteration_time > runs[i - 1].result.iteration_time);
    CHECK(runs[i].result.stage_busy_fraction[0] * runs[i].result.iteration_time >
          runs[i - 1].result.stage_busy_fraction[0] * runs[i - 1].result.iteration_time);
  }
  // No EP overlap: the all-to-alls wait for the compute they feed, so little compute runs beside them and
  // the SMs they hold cost less than with the overlap.
  Run serial = r;
  serial.layout.overlap.ep_all_to_all = false;
  serial.layout.ep_dispatch_sms = 0;
  const double serial_base = op_level(serial).result.iteration_time;
  serial.layout.ep_dispatch_sms = 40;
  const double serial_cost = op_level(serial).result.iteration_time - serial_base;
  CHECK(serial_cost < runs[2].result.iteration_time - runs[0].result.iteration_time);
}

// The first task of `op` (a name of the op table, "" for any) of forward (or backward) microbatch `mb`,
// chunk 0, piece `part` (-1: not chunked), weight gradient or not; the one with the earliest start.
sim::TaskId find_task(const sim::OpLevelResult& o, const std::string& op, sim::Pass pass, int mb, int part, bool wgrad) {
  sim::TaskId found = sim::no_task;
  for (sim::TaskId t = 0; t < o.engine.task_count(); ++t) {
    const sim::OpTaskLabel& l = o.labels[o.engine.task(t).label];
    if (l.per_stage || l.op != op || l.pass.pass != pass || l.pass.microbatch != mb || l.pass.chunk != 0 ||
        l.chunk_part != part || l.weight_gradient != wgrad)
      continue;
    if (found == sim::no_task || o.engine.start(t) < o.engine.start(found)) found = t;
  }
  return found;
}

TEST_CASE("op-level: delayed weight gradients run beside the dispatch backward, never lengthening the iteration", "[op_sim]") {
  // Mixtral on 64 H100s, PP 4 x VPP 2, EP 8, combined 1F1B (Megatron-Core pairs passes with virtual stages).
  Run off{io::load_model("mixtral-8x7b"), make_layout(64, 2, 4, 8, 256), io::load_profile("h100-sxm")};
  off.layout.vpp = 2;
  off.layout.schedule = ScheduleKind::interleaved;
  off.layout.overlap.ep_all_to_all = true;
  Run on = off;
  on.layout.overlap.delay_wgrad = true;
  const sim::OpLevelResult a = op_level(off), b = op_level(on);
  CHECK(b.result.iteration_time < a.result.iteration_time);
  CHECK(b.result.breakdown.exposed_ep < a.result.breakdown.exposed_ep);
  // Without the delay the dispatch backward waits for the experts' weight gradients; with it, it starts
  // before the last of them ends (Megatron-Core issues mlp.backward_dw, then moe_dispatch.backward).
  for (const sim::OpLevelResult* o : {&a, &b}) {
    const sim::TaskId dispatch = find_task(*o, "ep_dispatch", sim::Pass::backward, 5, -1, false);
    const sim::TaskId wgrad = find_task(*o, "expert_fc1", sim::Pass::backward, 5, -1, true);
    REQUIRE(dispatch != sim::no_task);
    REQUIRE(wgrad != sim::no_task);
    if (o == &a) CHECK(o->engine.start(dispatch) >= o->engine.finish(wgrad));
    else CHECK(o->engine.start(dispatch) < o->engine.finish(wgrad));
  }
}

TEST_CASE("op-level: a GEMM's reduce-scatter exchanges start before its last block ends", "[op_sim]") {
  // Transformer Engine's ring-exchange reduce-scatter sends each chunk's partial sum while the next chunk
  // computes; only what follows waits for the local (last) block.
  Run r = dense_run();
  r.layout.overlap.tp_comm = true;
  const sim::OpLevelResult o = op_level(r);
  const sim::TaskId exchange = find_task(o, "mlp_tp_reduce", sim::Pass::forward, 0, 0, false);
  const sim::TaskId last_block = find_task(o, "mlp_fc2", sim::Pass::forward, 0, r.layout.tp - 1, false);
  const sim::TaskId first_block = find_task(o, "mlp_fc2", sim::Pass::forward, 0, 0, false);
  REQUIRE(exchange != sim::no_task);
  REQUIRE(last_block != sim::no_task);
  CHECK(o.engine.start(exchange) >= o.engine.finish(first_block));
  CHECK(o.engine.start(exchange) < o.engine.finish(last_block));
  const sim::TaskId residual = find_task(o, "mlp_residual", sim::Pass::forward, 0, -1, false);
  CHECK(o.engine.start(residual) >= o.engine.finish(last_block));
}

TEST_CASE("op-level: without overlap it sums the pass-level model's op times", "[op_sim]") {
  // No overlap switch on: both models add the same op times; they differ only in where p2p transfers
  // and DP buckets are charged (op level: only where a neighbour stage consumes; one bucket per layer).
  for (const int pp : {1, 4}) {
    CAPTURE(pp);
    Run r = dense_run();
    r.layout.pp = pp;
    r.layout.global_batch = 64 / pp;
    const sim::OpLevelResult o = op_level(r);
    CHECK(o.result.iteration_time == Approx(o.pass_level.iteration_time).epsilon(0.03));
    CHECK(o.result.breakdown.compute == Approx(o.pass_level.breakdown.compute).epsilon(0.01));
  }
}

TEST_CASE("op-level: deterministic", "[op_sim]") {
  const Run r{io::load_model("mixtral-8x7b"), make_layout(64, 2, 4, 8, 256), io::load_profile("h100-sxm")};
  const sim::OpLevelResult a = op_level(r), b = op_level(r);
  REQUIRE(a.engine.task_count() == b.engine.task_count());
  CHECK(a.result.iteration_time == b.result.iteration_time);
  for (sim::TaskId t = 0; t < a.engine.task_count(); ++t) REQUIRE(a.engine.start(t) == b.engine.start(t));
}

TEST_CASE("op-level: the trace holds every operator on its stream", "[op_sim]") {
  Run r{io::load_model("mixtral-8x7b"), make_layout(64, 2, 4, 8, 64), io::load_profile("h100-sxm")};
  r.layout.overlap.ep_all_to_all = true;
  const sim::OpLevelResult o = op_level(r);
  std::ostringstream out;
  sim::write_op_trace(out, o);
  const nlohmann::json j = nlohmann::json::parse(out.str());
  int complete = 0, dispatch = 0, optimizer = 0;
  for (const auto& e : j["traceEvents"]) {
    if (e["ph"] != "X") continue;
    ++complete;
    const std::string name = e["name"];
    if (name.find("ep_dispatch") != std::string::npos) ++dispatch;
    if (name == "optimizer step") ++optimizer;
  }
  CHECK(complete == o.engine.task_count());
  CHECK(dispatch > 0);
  CHECK(optimizer == r.layout.pp);
  CHECK(exposed_comm(o.result.breakdown) >= 0);
}

TEST_CASE("op-level finalists: the n fastest by the pass level, re-ranked at operator level", "[op_sim][sweep]") {
  Run tp_in = dense_run();
  tp_in.layout.overlap.tp_comm = true;
  REQUIRE(!complete_and_check_layout(tp_in.model, tp_in.layout));
  // One vector, so that address order is enumeration order (as the sweep's candidates).
  std::vector<LayoutSpec> l(3, tp_in.layout);
  l[1].overlap.tp_comm = false;  // slower at both levels
  l[2].overlap.dp_grad_reduce = false;
  std::vector<sim::SimulationResult> pass(3);
  for (int i = 0; i < 3; ++i) pass[i] = sim::simulate(tp_in.model, l[i], tp_in.hw);
  sweep::Finalists f(2, tp_in.model, tp_in.hw);
  CHECK(f.cutoff() == std::numeric_limits<double>::infinity());
  f.add(&l[1], pass[1]);
  f.add(&l[0], pass[0]);
  CHECK(f.cutoff() == std::max(pass[0].iteration_time, pass[1].iteration_time));
  f.add(&l[2], pass[2]);
  CHECK(f.cutoff() == std::max(pass[0].iteration_time, pass[2].iteration_time));
  f.select();
  // The two fastest at pass level, and l[1] only if its bound says it could still win.
  const seconds op1 = sim::simulate_op_level(tp_in.model, l[1], tp_in.hw).result.iteration_time;
  CHECK(f.simulated() == (sim::op_level_lower_bound(tp_in.model, l[1], tp_in.hw, pass[1]) <= f.best_time() ? 3 : 2));
  REQUIRE(f.best().layout != nullptr);
  CHECK(f.best().layout == &l[0]);  // overlapped DP and TP: fastest operator by operator too
  CHECK(f.best_time() == sim::simulate_op_level(tp_in.model, l[0], tp_in.hw).result.iteration_time);
  CHECK(op1 > f.best_time());
  // After the selection a layout is run only where its bound does not exceed the best.
  const int before = f.simulated();
  f.add(&l[1], pass[1]);
  CHECK(f.simulated() == before + (sim::op_level_lower_bound(tp_in.model, l[1], tp_in.hw, pass[1]) <= f.best_time() ? 1 : 0));
  CHECK(f.best().layout == &l[0]);
}

TEST_CASE("op-level: in a DualPipe pair each pass's all-to-all runs beside the other's compute", "[op_sim]") {
  // DeepSeek-V3 on 1024 H800s, DualPipe over 8 stages, 64 microbatches (a steady state of pairs). A middle stage holds MoE layers only; in its
  // overlapped forward&backward pairs the backward leads (DeepSeek-V3 report Figure 4: combine-backward
  // beside attention, ..., attention-backward beside combine), so most of its EP time is hidden. Stage 0's
  // forward chunk holds the embedding and the dense first layers: they run layer by layer under the
  // backward's all-to-all rather than all before it.
  Run r{io::load_model("deepseek-v3-671b"), make_layout(1024, 2, 8, 64, 4096), io::load_profile("h800")};
  r.layout.schedule = ScheduleKind::dualpipe;
  r.layout.overlap.ep_all_to_all = true;
  const sim::OpLevelResult o = op_level(r);
  // Exposed share of the EP time with the forward leading and the dense layers in one block: stage 0
  // 57.6%, stage 4 35.7%; now 49.8% and 32.2%.
  for (const auto& [stage, most_exposed] : {std::pair{0, 0.52}, std::pair{4, 0.34}}) {
    CAPTURE(stage);
    const calibrate::TimelineUse u = calibrate::simulated_use(o, stage);
    CHECK(u.communication > 0);
    CHECK(u.exposed_communication < most_exposed * u.communication);
  }
}
