#include "sim/engine/engine.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace moesim::sim {

std::string_view category_name(int category) {
  switch (static_cast<TaskCategory>(category)) {
    case TaskCategory::compute: return "compute";
    case TaskCategory::tp_comm: return "tp_comm";
    case TaskCategory::ep_comm: return "ep_comm";
    case TaskCategory::pp_comm: return "pp_comm";
    case TaskCategory::dp_comm: return "dp_comm";
    case TaskCategory::other: return "other";
  }
  return "category";
}

void Engine::reserve(std::size_t tasks, std::size_t dependencies) {
  tasks_.reserve(tasks);
  next_in_stream_.reserve(tasks);
  prev_in_stream_.reserve(tasks);
  deps_.reserve(dependencies);
}

StreamId Engine::add_stream(std::string name, int group) {
  streams_.push_back(Stream{std::move(name), group});
  return static_cast<StreamId>(streams_.size() - 1);
}

TaskId Engine::add_task(StreamId stream, seconds duration, int category, int label) {
  if (stream < 0 || stream >= stream_count())
    throw std::invalid_argument(fmt::format("engine: add_task on unknown stream {}", stream));
  if (!std::isfinite(duration) || duration < 0)
    throw std::invalid_argument(fmt::format("engine: task duration {} on stream '{}' must be finite and >= 0",
                                            duration, streams_[stream].name));
  const auto id = static_cast<TaskId>(tasks_.size());
  tasks_.push_back(TaskInfo{duration, stream, category, label});
  next_in_stream_.push_back(no_task);
  prev_in_stream_.push_back(streams_[stream].last);
  if (streams_[stream].last != no_task) next_in_stream_[streams_[stream].last] = id;
  streams_[stream].last = id;
  streams_[stream].busy += duration;
  ran_ = structure_ready_ = order_ready_ = false;
  return id;
}

void Engine::set_duration(TaskId task, seconds duration) {
  check_task(task);
  if (!std::isfinite(duration) || duration < 0)
    throw std::invalid_argument(fmt::format("engine: task duration {} must be finite and >= 0", duration));
  TaskInfo& t = tasks_[task];
  streams_[t.stream].busy += duration - t.duration;
  t.duration = duration;
  ran_ = false;
}

void Engine::add_dependency(TaskId before, TaskId after, seconds delay) {
  check_task(before);
  check_task(after);
  if (!std::isfinite(delay) || delay < 0)
    throw std::invalid_argument(fmt::format("engine: dependency delay {} must be finite and >= 0", delay));
  deps_.push_back(Dependency{before, after, delay});
  ran_ = structure_ready_ = order_ready_ = false;
}

void Engine::unknown_task(TaskId task) const {
  throw std::out_of_range(fmt::format("engine: unknown task {} (have {})", task, task_count()));
}

void Engine::not_run() { throw std::logic_error("engine: start() or finish() before run()"); }

void Engine::run() {
  const std::size_t n = tasks_.size();
  if (!structure_ready_) {
    // Successors in compressed-row form: one counting pass, one prefix sum, one fill. Kept for the
    // next run while no task or dependency is added (set_duration changes times, not the graph).
    succ_offset_.assign(n + 1, 0);
    for (const auto& d : deps_) ++succ_offset_[d.before + 1];
    for (std::size_t i = 0; i < n; ++i) succ_offset_[i + 1] += succ_offset_[i];
    // Each task's successors side by side with their delays: the run reads them in order, where an
    // index into deps_ sent it to a scattered place per successor (costly past the caches at 1M tasks).
    succ_.resize(deps_.size());
    succ_fill_.assign(succ_offset_.begin(), succ_offset_.end() - 1);
    for (const auto& d : deps_) succ_[succ_fill_[d.before]++] = Successor{d.after, d.delay};
    predecessors_.assign(n, 0);
    for (const auto& d : deps_) ++predecessors_[d.after];
    for (std::size_t i = 0; i < n; ++i)
      if (prev_in_stream_[i] != no_task) ++predecessors_[i];
    structure_ready_ = true;
    order_ready_ = false;
  }
  start_.assign(n, 0.0);  // until a task is settled: the latest finish (plus delay) released to it so far
  makespan_ = 0;
  const auto settle = [&](TaskId t, auto&& release) {
    const seconds done = finish_[t] = start_[t] + tasks_[t].duration;
    makespan_ = std::max(makespan_, done);
    for (auto k = succ_offset_[t]; k < succ_offset_[t + 1]; ++k) release(succ_[k].after, done + succ_[k].delay);
    if (next_in_stream_[t] != no_task) release(next_in_stream_[t], done);
  };
  if (order_ready_) {
    // The graph is the one the last run ordered (set_duration changes times only), and a topological
    // order does not depend on durations: settle in that order, with no counting.
    for (const TaskId t : order_)
      settle(t, [&](TaskId after, seconds at) { start_[after] = std::max(start_[after], at); });
    ran_ = true;
    return;
  }
  finish_.assign(n, -1.0);  // -1: not settled (report_deadlock); a rerun in a known order settles every task
  pending_ = predecessors_;

  // Since no choices are made, a task's start is the latest finish (plus delay) among its stream
  // predecessor and dependencies, whatever order tasks are settled in. So tasks are settled in
  // topological order (Kahn's algorithm over the tasks whose predecessors have all finished) instead
  // of time order: no priority queue, O(tasks + dependencies), and the same times a time-ordered
  // event loop computes, because max and + see the same operands either way. The ready tasks form a
  // stack, not a queue: the task just released (its stream successor, the next op of its chain) is
  // settled next, so the run walks each stage's tasks in the order they were added, near in memory,
  // where a queue's breadth-first wavefront jumped between all stages' streams at once.
  order_.clear();
  order_.reserve(n);
  ready_.clear();
  for (std::size_t i = n; i-- > 0;)
    if (pending_[i] == 0) ready_.push_back(static_cast<TaskId>(i));
  const auto release = [&](TaskId t, seconds at) {
    start_[t] = std::max(start_[t], at);
    if (--pending_[t] == 0) ready_.push_back(t);
  };
  while (!ready_.empty()) {
    const TaskId t = ready_.back();
    ready_.pop_back();
    order_.push_back(t);
    settle(t, release);
  }
  if (order_.size() != n) report_deadlock(order_.size());
  order_ready_ = true;
  ran_ = true;
}

void Engine::report_deadlock(std::size_t completed) const {
  // The first stuck task is the lowest-id task whose stream predecessor has finished but which never
  // started: it heads its stream and must be waiting on a dependency that never finishes.
  for (std::size_t i = 0; i < tasks_.size(); ++i) {
    const auto t = static_cast<TaskId>(i);
    if (finish_[t] >= 0 || (prev_in_stream_[t] != no_task && finish_[prev_in_stream_[t]] < 0)) continue;
    TaskId waits_for = no_task;
    for (const auto& d : deps_)
      if (d.after == t && finish_[d.before] < 0) { waits_for = d.before; break; }
    const auto describe = [&](TaskId x) {
      return fmt::format("task {} (stream '{}', label {})", x, streams_[tasks_[x].stream].name, tasks_[x].label);
    };
    throw std::runtime_error(fmt::format(
        "engine deadlock after {} of {} tasks: {} waits for {}, which can never finish "
        "(a dependency cycle or a dependency that contradicts a stream's order)",
        completed, tasks_.size(), describe(t), waits_for == no_task ? std::string("nothing") : describe(waits_for)));
  }
  throw std::runtime_error(fmt::format("engine deadlock after {} of {} tasks", completed, tasks_.size()));
}

seconds Engine::busy(StreamId stream) const { return streams_.at(stream).busy; }

}  // namespace moesim::sim
