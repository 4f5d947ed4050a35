#include <algorithm>
#include <map>
#include <stdexcept>
#include <tuple>

#include <catch2/catch.hpp>

#include "sim/engine/schedule.h"

using namespace moesim;
using namespace moesim::sim;

namespace {

struct Shape {
  ScheduleKind kind;
  int p, m, v;
};

// Shapes each schedule supports, including m < p for the non-interleaved ones.
const Shape shapes[] = {
    {ScheduleKind::gpipe, 4, 8, 1},        {ScheduleKind::gpipe, 3, 2, 1},
    {ScheduleKind::one_f_one_b, 4, 8, 1},  {ScheduleKind::one_f_one_b, 5, 3, 1},
    {ScheduleKind::one_f_one_b, 1, 4, 1},  {ScheduleKind::interleaved, 4, 8, 2},
    {ScheduleKind::interleaved, 8, 16, 6}, {ScheduleKind::interleaved, 4, 4, 3},
    {ScheduleKind::zero_bubble, 4, 8, 1},  {ScheduleKind::zero_bubble, 4, 3, 1},
    {ScheduleKind::zero_bubble, 8, 16, 1}, {ScheduleKind::dualpipe, 2, 4, 2},
    {ScheduleKind::dualpipe, 4, 8, 2},     {ScheduleKind::dualpipe, 8, 20, 2},
};

}  // namespace

TEST_CASE("schedule: each stage runs every (microbatch, chunk, pass) exactly once", "[schedule]") {
  for (const auto& sh : shapes) {
    CAPTURE(static_cast<int>(sh.kind), sh.p, sh.m, sh.v);
    const auto schedule = build_schedule(sh.kind, sh.p, sh.m, sh.v);
    REQUIRE(schedule.size() == static_cast<std::size_t>(sh.p));
    const bool split = sh.kind == ScheduleKind::zero_bubble || sh.kind == ScheduleKind::dualpipe;
    for (const auto& stage : schedule) {
      std::map<std::tuple<int, int, Pass>, int> seen;
      for (const auto& t : stage) ++seen[{t.microbatch, t.chunk, t.pass}];
      for (int mb = 0; mb < sh.m; ++mb) {
        for (int c = 0; c < sh.v; ++c) {
          // DualPipe sends microbatch mb through one direction only: chunk 0 for the first half.
          const bool runs = sh.kind != ScheduleKind::dualpipe || c == (mb < sh.m / 2 ? 0 : 1);
          CHECK(seen[{mb, c, Pass::forward}] == (runs ? 1 : 0));
          CHECK(seen[{mb, c, Pass::backward}] == (runs ? 1 : 0));
          // W is a separate pass in ZB-H1 always and in DualPipe for the zero-bubble backwards.
          const int w = seen[{mb, c, Pass::backward_weight}];
          if (sh.kind == ScheduleKind::zero_bubble) CHECK(w == 1);
          else if (split) CHECK(w <= (runs ? 1 : 0));
          else CHECK(w == 0);
        }
      }
      // A forward precedes its own backward, a backward its own W.
      std::map<std::pair<int, int>, int> progress;
      for (const auto& t : stage) CHECK(progress[{t.microbatch, t.chunk}]++ == static_cast<int>(t.pass));
    }
  }
}

TEST_CASE("schedule: 1F1B warms up with p-s-1 forwards", "[schedule]") {
  const auto s = build_schedule(ScheduleKind::one_f_one_b, 4, 8, 1);
  for (int stage = 0; stage < 4; ++stage) {
    int leading_forwards = 0;
    while (s[stage][leading_forwards].pass == Pass::forward) ++leading_forwards;
    // p-s-1 warmup forwards, then the first steady-state forward before the first backward.
    CHECK(leading_forwards == 4 - stage);
  }
}

TEST_CASE("schedule: interleaved warm-up when microbatches == stages, Megatron-LM against torch.distributed.pipelining",
          "[schedule]") {
  // p = 8, m = 8, v = 2 (torchtitan's 405B Interleaved1F1B row). Megatron-LM runs every forward first
  // (all_warmup_microbatches); torch's ScheduleInterleaved1F1B warms up (v-1)*p + 2*(p-1-rank) forwards,
  // capped at m*v = 16, then alternates F and B, so rank 7 starts its first backward after 9 forwards.
  const auto leading_forwards = [](const StageSchedule& stage) {
    int n = 0;
    while (n < static_cast<int>(stage.size()) && stage[n].pass == Pass::forward) ++n;
    return n;
  };
  const auto megatron = build_schedule(ScheduleKind::interleaved, 8, 8, 2);
  const auto torch = build_schedule(ScheduleKind::interleaved, 8, 8, 2, PipelineRuntime::torch);
  for (int s = 0; s < 8; ++s) {
    CAPTURE(s);
    CHECK(leading_forwards(megatron[s]) == 16);
    const int warmup = std::min(8 + 2 * (7 - s), 16);
    CHECK(leading_forwards(torch[s]) == (warmup < 16 ? warmup + 1 : 16));
  }
  // With more microbatches than stages the two runtimes run the same order.
  CHECK(build_schedule(ScheduleKind::interleaved, 4, 8, 2) ==
        build_schedule(ScheduleKind::interleaved, 4, 8, 2, PipelineRuntime::torch));
}

TEST_CASE("schedule: DualPipe pairs a forward with a backward of the other direction", "[schedule]") {
  const auto s = build_schedule(ScheduleKind::dualpipe, 8, 20, 2);
  int pairs = 0;
  for (const auto& stage : s) {
    for (std::size_t i = 0; i < stage.size(); ++i) {
      if (!stage[i].fused_with_next) continue;
      ++pairs;
      REQUIRE(i + 1 < stage.size());
      CHECK(stage[i].pass == Pass::forward);
      CHECK(stage[i + 1].pass == Pass::backward);
      CHECK(stage[i].chunk != stage[i + 1].chunk);
    }
  }
  CHECK(pairs > 0);
}

TEST_CASE("schedule: invalid shapes are rejected with the numbers in the message", "[schedule]") {
  CHECK_THROWS_WITH(build_schedule(ScheduleKind::interleaved, 8, 12, 2),
                    Catch::Contains("12") && Catch::Contains("8"));
  CHECK_THROWS_AS(build_schedule(ScheduleKind::dualpipe, 3, 8, 2), std::invalid_argument);
  CHECK_THROWS_AS(build_schedule(ScheduleKind::dualpipe, 4, 6, 2), std::invalid_argument);
  CHECK_THROWS_AS(build_schedule(ScheduleKind::dualpipe, 4, 8, 1), std::invalid_argument);
  CHECK_THROWS_AS(build_schedule(ScheduleKind::one_f_one_b, 4, 8, 2), std::invalid_argument);
  CHECK_THROWS_AS(build_schedule(ScheduleKind::gpipe, 0, 8, 1), std::invalid_argument);
}

TEST_CASE("schedule: positions in layer order", "[schedule]") {
  CHECK(pipeline_position(ScheduleKind::interleaved, 3, 2, 8, 6) == 19);
  CHECK(pipeline_position(ScheduleKind::one_f_one_b, 3, 0, 8, 1) == 3);
  CHECK(pipeline_position(ScheduleKind::dualpipe, 1, 0, 8, 2) == 1);
  CHECK(pipeline_position(ScheduleKind::dualpipe, 1, 1, 8, 2) == 6);
  CHECK(schedule_chunks(ScheduleKind::dualpipe, 1) == 2);
  CHECK(schedule_chunks(ScheduleKind::interleaved, 6) == 6);
  CHECK(schedule_chunks(ScheduleKind::zero_bubble, 6) == 1);
}

TEST_CASE("schedule: closed forms", "[schedule]") {
  // Pangu Ultra 135B dense: p = 8, m = 16 -> 7/23; with v = 6 virtual stages -> 7/103.
  CHECK(closed_form_bubble_fraction(ScheduleKind::one_f_one_b, 8, 16, 1) == Approx(7.0 / 23));
  CHECK(closed_form_bubble_fraction(ScheduleKind::interleaved, 8, 16, 6) == Approx(7.0 / 103));
  CHECK(closed_form_bubble_fraction(ScheduleKind::gpipe, 4, 8, 1) == Approx(3.0 / 11));
  CHECK_THROWS_AS(closed_form_bubble_fraction(ScheduleKind::dualpipe, 8, 16, 2), std::invalid_argument);
  CHECK(closed_form_bubble_seconds(ScheduleKind::zero_bubble, 4, 1, 2, 1, 0) == 3.0);
  CHECK(closed_form_bubble_seconds(ScheduleKind::dualpipe, 8, 1, 2, 1, 3) == 6.0);
}
