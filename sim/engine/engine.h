#pragma once
// Deterministic discrete-event engine. A stream (a device's compute queue, a link, a CUDA stream)
// runs its tasks one at a time in the order they were added to it; a schedule fixes that order, so
// the engine makes no scheduling choices of its own. A task starts once the previous task of its
// stream has finished and every dependency `before` has finished (plus the dependency's delay).
// Because no choices are made, every start time is a longest path in the task graph: shortening any
// duration or delay can never delay any task (the monotonicity the tests rely on).
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "costmodels/units.h"

namespace moesim::sim {

using TaskId = std::int32_t;
using StreamId = std::int32_t;
constexpr TaskId no_task = -1;

// Vocabulary shared by the simulators and the trace writer. The engine itself treats a category as
// an opaque small integer, so callers may define further values after `other`.
enum class TaskCategory : int { compute, tp_comm, ep_comm, pp_comm, dp_comm, other };
std::string_view category_name(int category);

struct TaskInfo {
  seconds duration = 0;
  StreamId stream = 0;
  int category = 0;
  int label = 0;  // caller-defined id (e.g. an index into the caller's own pass records)
};

class Engine {
 public:
  // Preallocates so that building a large graph does not reallocate repeatedly.
  void reserve(std::size_t tasks, std::size_t dependencies);

  // `group` is the process a stream belongs to (a pipeline stage); the trace uses it as pid.
  StreamId add_stream(std::string name, int group = 0);
  // Appends a task to the end of `stream`'s order.
  TaskId add_task(StreamId stream, seconds duration, int category = 0, int label = 0);
  TaskId add_task(StreamId stream, seconds duration, TaskCategory category, int label = 0) {
    return add_task(stream, duration, static_cast<int>(category), label);
  }
  // Changes a task's duration (e.g. compute slowed by a collective found beside it on a first run);
  // run() again for the new times.
  void set_duration(TaskId task, seconds duration);
  // `after` may start only at finish(before) + delay.
  void add_dependency(TaskId before, TaskId after, seconds delay = 0);

  // Computes every start and finish time. O(tasks + dependencies); after the first run the run
  // state is reused, so repeated runs do not allocate. Throws std::runtime_error naming the first stuck task on deadlock (a dependency
  // cycle, or a dependency that contradicts a stream's order). May be called again after more
  // tasks were added.
  void run();
  bool has_run() const { return ran_; }

  // The accessors are inline: the operator-level measures read every task's times after each run.
  seconds start(TaskId task) const {
    check_times(task);
    return start_[task];
  }
  seconds finish(TaskId task) const {
    check_times(task);
    return finish_[task];
  }
  seconds makespan() const { return makespan_; }
  // Sum of task durations on the stream (time it is occupied).
  seconds busy(StreamId stream) const;

  int task_count() const { return static_cast<int>(tasks_.size()); }
  int stream_count() const { return static_cast<int>(streams_.size()); }
  const TaskInfo& task(TaskId task) const {
    check_task(task);
    return tasks_[task];
  }
  std::span<const TaskInfo> tasks() const { return tasks_; }  // index = TaskId
  const std::string& stream_name(StreamId stream) const { return streams_.at(stream).name; }
  int stream_group(StreamId stream) const { return streams_.at(stream).group; }
  std::size_t dependency_count() const { return deps_.size(); }

 private:
  struct Stream {
    std::string name;
    int group = 0;
    TaskId last = no_task;  // tail of the stream order while building
    seconds busy = 0;
  };
  struct Dependency {
    TaskId before, after;
    seconds delay;
  };

  void check_task(TaskId task) const {
    if (task < 0 || task >= task_count()) [[unlikely]] unknown_task(task);
  }
  void check_times(TaskId task) const {  // a known task of a run engine
    check_task(task);
    if (!ran_) [[unlikely]] not_run();
  }
  [[noreturn]] void unknown_task(TaskId task) const;
  [[noreturn]] static void not_run();
  [[noreturn]] void report_deadlock(std::size_t completed) const;

  std::vector<Stream> streams_;
  std::vector<TaskInfo> tasks_;
  std::vector<TaskId> next_in_stream_;
  std::vector<TaskId> prev_in_stream_;
  std::vector<Dependency> deps_;

  // Run state, sized by run() before the event loop.
  struct Successor {
    TaskId after;
    seconds delay;
  };
  std::vector<std::int32_t> succ_offset_;  // CSR successors of each task
  std::vector<Successor> succ_;
  std::vector<std::int32_t> succ_fill_;  // scratch for building succ_
  std::vector<std::int32_t> predecessors_;  // dependencies + stream predecessor of each task
  std::vector<std::int32_t> pending_;  // unfinished predecessors during a run
  bool structure_ready_ = false;       // succ_offset_, succ_ and predecessors_ match the graph
  std::vector<seconds> start_, finish_;
  std::vector<TaskId> ready_;  // tasks whose predecessors have all finished, not yet settled
  std::vector<TaskId> order_;  // tasks in the order the last counting run settled them (topological)
  bool order_ready_ = false;   // order_ is a topological order of the present graph
  seconds makespan_ = 0;
  bool ran_ = false;
};

}  // namespace moesim::sim
