#include <sstream>
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "sim/engine/engine.h"
#include "sim/engine/trace.h"

using namespace moesim::sim;

namespace {

// Two streams with cross dependencies and a delay; small enough to check by hand.
Engine small_graph() {
  Engine e;
  e.reserve(8, 8);
  const auto a = e.add_stream("compute", 0), b = e.add_stream("comm", 1);
  const auto t0 = e.add_task(a, 1.0, TaskCategory::compute, 10);  // [0, 1]
  const auto t1 = e.add_task(a, 2.0, TaskCategory::compute, 11);  // waits for t2: [2.5, 4.5]
  const auto t2 = e.add_task(b, 1.5, TaskCategory::ep_comm, 12);  // after t0: [1, 2.5]
  const auto t3 = e.add_task(b, 0.5, TaskCategory::ep_comm, 13);  // stream order, t1 + 0.25: [4.75, 5.25]
  e.add_dependency(t0, t2);
  e.add_dependency(t2, t1);
  e.add_dependency(t1, t3, 0.25);
  return e;
}

}  // namespace

TEST_CASE("engine: streams run in order, dependencies and delays respected", "[engine]") {
  Engine e = small_graph();
  e.run();
  CHECK(e.start(0) == 0.0);
  CHECK(e.finish(0) == 1.0);
  CHECK(e.start(2) == 1.0);
  CHECK(e.start(1) == 2.5);
  CHECK(e.finish(1) == 4.5);
  CHECK(e.start(3) == 4.75);
  CHECK(e.makespan() == 5.25);
  CHECK(e.busy(0) == 3.0);
  CHECK(e.busy(1) == 2.0);
  CHECK(e.task(3).label == 13);
  CHECK(e.tasks().size() == 4);
}

TEST_CASE("engine: a rerun sees changed durations and tasks or dependencies added since", "[engine]") {
  // The second run reuses the successor lists of the first while only durations change; a task or a
  // dependency added after that must rebuild them.
  Engine e = small_graph();
  e.run();
  e.set_duration(2, 2.5);  // t2 [1, 3.5], so t1 [3.5, 5.5], t3 [5.75, 6.25]
  e.run();
  CHECK(e.start(1) == 3.5);
  CHECK(e.start(3) == 5.75);
  const auto t4 = e.add_task(0, 1.0, TaskCategory::compute, 14);  // after t1 on its stream: [5.5, 6.5]
  e.add_dependency(t4, 3);                                         // t3 now waits for t4: [6.5, 7.0]
  e.run();
  CHECK(e.start(t4) == 5.5);
  CHECK(e.start(3) == 6.5);
  CHECK(e.makespan() == 7.0);
}

TEST_CASE("engine: identical inputs give bit-identical timelines", "[engine]") {
  Engine a = small_graph(), b = small_graph();
  a.run();
  b.run();
  a.run();  // rerunning is idempotent too
  for (TaskId t = 0; t < a.task_count(); ++t) {
    CHECK(a.start(t) == b.start(t));
    CHECK(a.finish(t) == b.finish(t));
  }
}

TEST_CASE("engine: a dependency cycle is reported as deadlock", "[engine]") {
  Engine e;
  const auto s0 = e.add_stream("s0"), s1 = e.add_stream("s1");
  const auto x = e.add_task(s0, 1.0), y = e.add_task(s1, 1.0);
  e.add_dependency(x, y);
  e.add_dependency(y, x);
  CHECK_THROWS_WITH(e.run(), Catch::Contains("deadlock") && Catch::Contains("task 0"));
}

TEST_CASE("engine: a dependency against stream order is reported as deadlock", "[engine]") {
  Engine e;
  const auto s = e.add_stream("only");
  const auto first = e.add_task(s, 1.0), second = e.add_task(s, 1.0);
  e.add_dependency(second, first);  // first must wait for second, which waits behind first
  CHECK_THROWS_WITH(e.run(), Catch::Contains("task 0 (stream 'only'") && Catch::Contains("waits for task 1"));
}

TEST_CASE("engine: rejects bad input", "[engine]") {
  Engine e;
  const auto s = e.add_stream("s");
  CHECK_THROWS_AS(e.add_task(s, -1.0), std::invalid_argument);
  CHECK_THROWS_AS(e.add_task(5, 1.0), std::invalid_argument);
  const auto t = e.add_task(s, 1.0);
  CHECK_THROWS_AS(e.add_dependency(t, 7), std::out_of_range);
  CHECK_THROWS_AS(e.start(t), std::logic_error);  // not run yet
}

TEST_CASE("trace: Chrome trace JSON with complete and metadata events", "[engine][trace]") {
  Engine e = small_graph();
  e.run();
  std::ostringstream out;
  TraceNames names;
  names.task = [](TaskId t) { return "op\"" + std::to_string(t); };  // quotes must be escaped
  write_chrome_trace(out, e, names);
  const auto json = nlohmann::json::parse(out.str());
  int complete = 0, process_names = 0, thread_names = 0;
  for (const auto& ev : json.at("traceEvents")) {
    if (ev["ph"] == "X") {
      ++complete;
      if (ev["name"] == "op\"1") {
        CHECK(ev["ts"].get<double>() == Approx(2.5e6));
        CHECK(ev["dur"].get<double>() == Approx(2e6));
        CHECK(ev["pid"] == 0);
        CHECK(ev["cat"] == "compute");
      }
    } else if (ev["name"] == "process_name") {
      ++process_names;
    } else if (ev["name"] == "thread_name") {
      ++thread_names;
      if (ev["tid"] == 1) CHECK(ev["args"]["name"] == "comm");
    }
  }
  CHECK(complete == 4);
  CHECK(process_names == 2);
  CHECK(thread_names == 2);
}

TEST_CASE("engine: a rerun after changed durations equals a fresh run of the changed graph", "[engine]") {
  // The rerun settles tasks in the order the first run found, without counting predecessors; a larger
  // pseudo-random graph (4 streams, dependencies forward in task order, some delayed) with every third
  // duration changed must give the times a new engine computes from scratch, exactly.
  const auto build = [](bool changed) {
    Engine e;
    for (int s = 0; s < 4; ++s) e.add_stream("s" + std::to_string(s), s);
    unsigned x = 7;
    const auto next = [&] { return (x = x * 1103515245u + 12345u) >> 16; };
    for (int t = 0; t < 400; ++t) {
      const double d = 1 + next() % 5;
      e.add_task(static_cast<StreamId>(next() % 4), changed && t % 3 == 0 ? 2 * d + 0.5 : d);
      if (t > 0) e.add_dependency(static_cast<TaskId>(next() % t), t, next() % 2 ? 0.0 : 0.25);
    }
    return e;
  };
  Engine rerun = build(false), fresh = build(true);
  rerun.run();
  const Engine first = rerun;
  for (TaskId t = 0; t < rerun.task_count(); t += 3) rerun.set_duration(t, fresh.task(t).duration);
  rerun.run();
  fresh.run();
  bool moved = false;
  for (TaskId t = 0; t < fresh.task_count(); ++t) {
    REQUIRE(rerun.start(t) == fresh.start(t));
    REQUIRE(rerun.finish(t) == fresh.finish(t));
    moved = moved || first.start(t) != fresh.start(t);
  }
  CHECK(moved);
  CHECK(rerun.makespan() == fresh.makespan());
}
