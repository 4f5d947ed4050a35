// A measured timeline beside the simulated one (sim/calibration/timeline.h) and the interval arithmetic
// both read with (sim/engine/intervals.h): exact values on hand-made timelines, and the side-by-side
// trace holding both.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/calibration/timeline.h"
#include "sim/engine/intervals.h"
#include "sim/io/specs_io.h"
#include "tests/support.h"

using namespace moesim;

namespace {

io::KernelSample kernel(const char* name, double start_us, double duration_us, long long stream) {
  io::KernelSample k;
  k.name = name;
  k.start_us = start_us;
  k.duration = duration_us * 1e-6;
  k.stream = stream;
  return k;
}

}  // namespace

TEST_CASE("intervals: union, length, intersection and coverage", "[timeline]") {
  const std::vector<sim::Interval> a = sim::merged({{5, 7}, {0, 2}, {1, 3}, {4, 4}, {6, 8}});
  REQUIRE(a == std::vector<sim::Interval>{{0, 3}, {5, 8}});  // overlapping ones joined, the empty one dropped
  CHECK(sim::length(a) == 6);
  const std::vector<sim::Interval> b = sim::merged({{2, 6}, {7, 10}});
  CHECK(sim::overlap(a, b) == 3);  // [2,3) + [5,6) + [7,8)
  CHECK(sim::overlap(b, a) == 3);
  CHECK(sim::covered(a, {1, 6}) == 3);  // [1,3) + [5,6)
  CHECK(sim::covered(a, {3, 5}) == 0);
}

TEST_CASE("timeline: a measured trace's compute, communication, exposure and idle time", "[timeline]") {
  // Stream 7 computes 0-40 us and 60-100 us; stream 20 runs an NCCL kernel 30-70 us and a DeepEP combine
  // 110-120 us: 10 + 10 us of the first collective ran beside compute, 20 us of it and all of the second
  // did not; nothing ran 100-110 us.
  io::Trace t;
  t.file = "hand-made";
  t.kernels = {kernel("sm90_xmma_gemm", 1000, 40, 7), kernel("ncclKernel_AllReduce_RING_LL_Sum_bfloat16", 1030, 40, 20),
               kernel("flash_fwd_kernel", 1060, 40, 7), kernel("void deep_ep::internode::combine<8>", 1110, 10, 20)};
  const calibrate::TimelineUse u = calibrate::measured_use(t);
  CHECK(u.window == Approx(120e-6));
  CHECK(u.compute == Approx(80e-6));
  CHECK(u.communication == Approx(50e-6));
  CHECK(u.exposed_communication == Approx(30e-6));
  CHECK(u.idle == Approx(10e-6));
  REQUIRE(u.streams.size() == 2);
  CHECK(u.streams[0].name == "stream 7");
  CHECK(u.streams[0].events == 2);
  CHECK(u.streams[0].communication == 0);
  CHECK(u.streams[1].name == "stream 20");
  CHECK(u.streams[1].busy == Approx(50e-6));
  CHECK(u.streams[1].communication == Approx(50e-6));
}

TEST_CASE("timeline: a simulated stage is read as its breakdown says", "[timeline]") {
  // Mixtral 8x7B on 64 H100s, PP 2 with EP all-to-all: the stage's exposed communication is its exposed
  // TP/EP/PP/DP time (no host waits on this profile), and every share fits in its window.
  test::Run r{io::load_model("mixtral-8x7b"), test::make_layout(64, 2, 2, 8, 64), io::load_profile("h100-sxm")};
  REQUIRE_FALSE(complete_and_check_layout(r.model, r.layout));
  const sim::OpLevelResult run = sim::simulate_op_level(r.model, r.layout, r.hw);
  for (int stage = 0; stage < 2; ++stage) {
    CAPTURE(stage);
    const calibrate::TimelineUse u = calibrate::simulated_use(run, stage);
    CHECK(u.window > 0);
    CHECK(u.window <= run.result.iteration_time * (1 + 1e-9));
    CHECK(u.compute + u.exposed_communication + u.idle == Approx(u.window).epsilon(1e-9));
    CHECK(u.exposed_communication <= u.communication);
    CHECK(u.communication > 0);
    if (stage == run.result.critical_stage) {
      // The breakdown counts each kind's exposed time on its own, so time when two kinds ran with no
      // compute counts twice there and once here.
      const sim::TimeBreakdown& b = run.result.breakdown;
      CHECK(u.exposed_communication <= b.exposed_tp + b.exposed_ep + b.exposed_cp + b.exposed_pp + b.exposed_dp + 1e-9);
      CHECK(u.exposed_communication + 1e-9 >= std::max({b.exposed_tp, b.exposed_ep, b.exposed_pp, b.exposed_dp}));
    }
  }
}

TEST_CASE("timeline: the side-by-side trace holds the measured kernels and the simulated operators", "[timeline]") {
  io::Trace t;
  t.file = "hand-made";
  t.kernels = {kernel("sm90_xmma_gemm", 5000, 40, 7), kernel("ncclKernel_AllReduce", 5030, 40, 20)};
  test::Run r{io::load_model("mixtral-8x7b"), test::make_layout(64, 2, 2, 8, 64), io::load_profile("h100-sxm")};
  REQUIRE_FALSE(complete_and_check_layout(r.model, r.layout));
  const sim::OpLevelResult run = sim::simulate_op_level(r.model, r.layout, r.hw);
  std::ostringstream out;
  calibrate::write_side_by_side(out, {t}, run);
  const nlohmann::json j = nlohmann::json::parse(out.str());
  int measured = 0, simulated = 0;
  std::set<std::string> processes;
  for (const nlohmann::json& e : j.at("traceEvents")) {
    if (e.at("ph") == "M" && e.at("name") == "process_name") processes.insert(e.at("args").at("name").get<std::string>());
    if (e.at("ph") != "X") continue;
    if (e.at("pid").get<int>() >= 1000000) {
      ++measured;
      CHECK(e.at("ts").get<double>() >= 0);  // from the trace's first kernel
    } else {
      ++simulated;
    }
  }
  CHECK(measured == 2);
  CHECK(simulated == static_cast<int>(run.engine.task_count()));
  CHECK(processes.count("measured: hand-made") == 1);
  CHECK(processes.count("simulated: stage 0") == 1);
  CHECK(processes.count("simulated: stage 1") == 1);
}

TEST_CASE("intervals: the k-way union of sorted lists equals sorting their concatenation", "[timeline]") {
  // Three streams' intervals (each sorted: back to back or with gaps, zero-length ones among them, equal
  // intervals across lists), as op_measure hands them over; pseudo-random but fixed.
  std::vector<std::vector<sim::Interval>> lists(3);
  unsigned x = 12345;
  const auto next = [&] { return (x = x * 1103515245u + 12345u) >> 16 & 7u; };
  for (auto& list : lists) {
    double t = 0;
    for (int i = 0; i < 200; ++i) {
      t += next() % 3;  // gaps of 0, 1 or 2
      const double d = next() % 4;  // 0: zero-length
      list.emplace_back(t, t + d);
      t += d;
    }
  }
  std::vector<sim::Interval> all;
  std::vector<const std::vector<sim::Interval>*> pointers;
  for (const auto& list : lists) {
    all.insert(all.end(), list.begin(), list.end());
    pointers.push_back(&list);
  }
  const std::vector<sim::Interval> expected = sim::merged(all);
  REQUIRE(expected.size() > 1);
  CHECK(sim::merged_sorted_lists(pointers) == expected);
  CHECK(sim::merged_sorted_lists({}).empty());
}
