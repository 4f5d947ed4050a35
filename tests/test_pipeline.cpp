#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "sim/engine/pipeline.h"

using namespace moesim;
using namespace moesim::sim;

namespace {

// F = 1, B = 2 time units: integers, so every simulated time below is exact.
const PassDurations f1_b2{1.0, 2.0, 0.0};
const PassDurations f1_b1_w1{1.0, 1.0, 1.0};

PipelineResult run(ScheduleKind kind, int p, int m, int v, PassDurations d, moesim::seconds p2p = 0) {
  auto spec = PipelineSpec::uniform(kind, p, m, v, d);
  spec.p2p_send = p2p;
  return simulate_pipeline(spec);
}

}  // namespace

TEST_CASE("pipeline: 1F1B bubble equals (p-1)/(m+p-1)", "[pipeline]") {
  for (auto [p, m] : {std::pair{2, 4}, {4, 8}, {4, 4}, {8, 16}, {3, 7}, {8, 64}}) {
    CAPTURE(p, m);
    const auto r = run(ScheduleKind::one_f_one_b, p, m, 1, f1_b2);
    CHECK(r.makespan == 3.0 * (m + p - 1));  // ideal 3m plus (p-1)(F+B)
    CHECK(r.bubble_fraction == Approx(closed_form_bubble_fraction(ScheduleKind::one_f_one_b, p, m, 1)).epsilon(1e-12));
    for (double b : r.stage_bubble_fraction) CHECK(b == Approx(r.bubble_fraction).epsilon(1e-12));
  }
}

TEST_CASE("pipeline: interleaved bubble equals (p-1)/(v*m+p-1)", "[pipeline]") {
  // Per-chunk F = 1, B = 2; the closed form is invariant to scaling a stage's time by v.
  for (auto [p, m, v] : {std::tuple{4, 8, 2}, {4, 4, 3}, {8, 16, 2}, {8, 16, 6}, {2, 6, 4}, {1, 3, 2}}) {
    CAPTURE(p, m, v);
    const auto r = run(ScheduleKind::interleaved, p, m, v, f1_b2);
    CHECK(r.makespan == 3.0 * (v * m + p - 1));
    CHECK(r.bubble_fraction == Approx(closed_form_bubble_fraction(ScheduleKind::interleaved, p, m, v)).epsilon(1e-12));
  }
}

TEST_CASE("pipeline: Pangu Ultra 135B pipeline, p = 8, m = 16", "[pipeline]") {
  // Pangu Ultra report: 1F1B bubble 30.45% drops to 6.8% with 6 virtual stages.
  CHECK(run(ScheduleKind::one_f_one_b, 8, 16, 1, f1_b2).bubble_fraction == Approx(7.0 / 23).epsilon(1e-12));
  CHECK(run(ScheduleKind::interleaved, 8, 16, 6, f1_b2).bubble_fraction == Approx(7.0 / 103).epsilon(1e-12));
  CHECK(7.0 / 23 == Approx(0.3043).margin(1e-4));
  CHECK(7.0 / 103 == Approx(0.0680).margin(1e-4));
}

TEST_CASE("pipeline: GPipe has 1F1B's makespan but holds every microbatch", "[pipeline]") {
  const int p = 4, m = 8;
  const auto gpipe = run(ScheduleKind::gpipe, p, m, 1, f1_b2);
  const auto one_f_one_b = run(ScheduleKind::one_f_one_b, p, m, 1, f1_b2);
  CHECK(gpipe.makespan == one_f_one_b.makespan);
  for (int s = 0; s < p; ++s) {
    CHECK(gpipe.peak_in_flight[s] == m);
    CHECK(one_f_one_b.peak_in_flight[s] == p - s);  // stage 0 holds p
  }
}

TEST_CASE("pipeline: ZB-H1 beats 1F1B at 1F1B's peak memory", "[pipeline]") {
  for (auto [p, m] : {std::pair{4, 8}, {8, 16}, {4, 3}, {8, 32}}) {
    CAPTURE(p, m);
    const auto zb = run(ScheduleKind::zero_bubble, p, m, 1, f1_b1_w1);
    const auto base = run(ScheduleKind::one_f_one_b, p, m, 1, f1_b1_w1);  // B and W run as one backward
    CHECK(zb.bubble_fraction < base.bubble_fraction);
    if (m >= p) {
      // Qi et al. 2023: with F = B = W the bubble shrinks from (p-1)(F+B+W) to (p-1)(F+B-W).
      CHECK(zb.makespan == 3.0 * m + closed_form_bubble_seconds(ScheduleKind::zero_bubble, p, 1, 2, 1, 0));
      CHECK(base.makespan == 3.0 * m + closed_form_bubble_seconds(ScheduleKind::one_f_one_b, p, 1, 2, 1, 0));
    }
    int zb_peak = 0, base_peak = 0;
    for (int s = 0; s < p; ++s) {
      zb_peak = std::max(zb_peak, zb.peak_in_flight[s]);
      base_peak = std::max(base_peak, base.peak_in_flight[s]);
    }
    CHECK(zb_peak == base_peak);
  }
}

TEST_CASE("pipeline: DualPipe matches DeepSeek-V3's bubble without overlap savings", "[pipeline]") {
  for (auto [p, m] : {std::pair{2, 4}, {4, 8}, {8, 16}, {8, 20}, {4, 12}}) {
    CAPTURE(p, m);
    const auto r = run(ScheduleKind::dualpipe, p, m, 2, f1_b1_w1);
    // Per chunk F = 1, full backward B = 2, W = 1, unsaved pair F&B = 3: (p/2-1)(F&B + B - 3W).
    CHECK(r.makespan == 3.0 * m + closed_form_bubble_seconds(ScheduleKind::dualpipe, p, 1, 2, 1, 3));
  }
}

TEST_CASE("pipeline: a fused-pair saving never lengthens the iteration", "[pipeline]") {
  auto spec = PipelineSpec::uniform(ScheduleKind::dualpipe, 8, 24, 2, {1.0, 1.3, 0.9});
  spec.durations[5].forward = 1.7;  // an uneven stage so the critical path moves around
  spec.p2p_send = 0.05;
  double previous = simulate_pipeline(spec).makespan;
  for (double saving : {0.1, 0.3, 0.6, 1.0, 1.5, 3.0}) {
    spec.fused_pair_saving.assign(8, saving);
    const double now = simulate_pipeline(spec).makespan;
    CHECK(now <= previous);
    previous = now;
  }
}

TEST_CASE("pipeline: p2p cost never shortens the iteration", "[pipeline]") {
  const std::tuple<ScheduleKind, int, int, int> cases[] = {
      {ScheduleKind::gpipe, 4, 8, 1},       {ScheduleKind::one_f_one_b, 4, 8, 1}, {ScheduleKind::interleaved, 4, 8, 2},
      {ScheduleKind::zero_bubble, 4, 8, 1}, {ScheduleKind::dualpipe, 4, 8, 2},
  };
  for (auto [kind, p, m, v] : cases) {
    CAPTURE(static_cast<int>(kind));
    double previous = run(kind, p, m, v, f1_b1_w1, 0).makespan;
    for (double p2p : {0.01, 0.2, 0.5, 2.0}) {
      const double now = run(kind, p, m, v, f1_b1_w1, p2p).makespan;
      CHECK(now >= previous);
      previous = now;
    }
    CHECK(previous > run(kind, p, m, v, f1_b1_w1, 0).makespan);  // a 2-unit send must show
  }
}

TEST_CASE("pipeline: passes respect their data dependencies", "[pipeline]") {
  const double p2p = 0.25;
  const auto r = run(ScheduleKind::interleaved, 4, 8, 2, f1_b2, p2p);
  // Forward of virtual stage q starts after virtual stage q-1 of the same microbatch finished and
  // sent (interleaved positions chunk * p + stage, so q-1 is always on another stage when p > 1).
  for (std::size_t i = 0; i < r.passes.size(); ++i) {
    const auto& a = r.passes[i];
    if (a.task.pass != Pass::forward) continue;
    const int q = a.task.chunk * 4 + a.stage;
    if (q == 0) continue;
    for (std::size_t j = 0; j < r.passes.size(); ++j) {
      const auto& b = r.passes[j];
      if (b.task.pass == Pass::forward && b.task.microbatch == a.task.microbatch && b.task.chunk * 4 + b.stage == q - 1)
        CHECK(r.pass_start[i] >= r.pass_finish[j] + p2p);
    }
  }
}

TEST_CASE("pipeline: deterministic and exportable as a trace", "[pipeline][trace]") {
  auto spec = PipelineSpec::uniform(ScheduleKind::dualpipe, 4, 8, 2, {1.0, 1.2, 0.8});
  spec.fused_pair_saving.assign(4, 0.5);
  spec.p2p_send = 0.1;
  const auto a = simulate_pipeline(spec), b = simulate_pipeline(spec);
  CHECK(a.pass_start == b.pass_start);
  CHECK(a.pass_finish == b.pass_finish);
  CHECK(a.makespan == b.makespan);

  std::ostringstream out;
  write_pipeline_trace(out, a);
  const auto json = nlohmann::json::parse(out.str());
  int complete = 0, pairs = 0;
  for (const auto& ev : json["traceEvents"]) {
    if (ev["ph"] != "X") continue;
    ++complete;
    if (ev["name"].get<std::string>().find('+') != std::string::npos) ++pairs;
  }
  CHECK(complete == a.engine.task_count());
  CHECK(pairs > 0);
}

TEST_CASE("pipeline: bad specs are rejected", "[pipeline]") {
  auto spec = PipelineSpec::uniform(ScheduleKind::one_f_one_b, 4, 8, 1, f1_b2);
  spec.durations.pop_back();
  CHECK_THROWS_AS(simulate_pipeline(spec), std::invalid_argument);
  spec = PipelineSpec::uniform(ScheduleKind::interleaved, 4, 6, 2, f1_b2);
  CHECK_THROWS_WITH(simulate_pipeline(spec), Catch::Contains("6") && Catch::Contains("4"));
}
