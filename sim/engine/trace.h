#pragma once
// Chrome trace-event JSON ({"traceEvents": [...]}, the format chrome://tracing and Perfetto open)
// of an engine run: one "X" complete event per task, pid = stream group (pipeline stage),
// tid = stream, ts/dur in microseconds, plus "M" metadata events naming processes and threads.
#include <functional>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>

#include "sim/engine/engine.h"

namespace moesim::sim {

struct TraceNames {
  std::function<std::string(TaskId)> task;        // event name; default "task <id>"
  std::function<std::string(int)> category;       // "cat" field; default category_name()
  std::function<std::string(int)> process;       // per group; default "stage <group>"
};

// One trace-event document written event by event, so large traces need no JSON tree: the opening on
// construction, the closing in finish().
class TraceEventWriter {
 public:
  explicit TraceEventWriter(std::ostream& out);
  void emit(const nlohmann::json& event);
  // Names a process (pid) and orders it among the others.
  void name_process(int pid, const std::string& name, int sort_index);
  void name_thread(int pid, long long tid, const std::string& name, long long sort_index);
  void finish();

 private:
  std::ostream& out_;
  bool first_ = true;
};

// The engine's streams and tasks (the engine must have run); pid = stream group + pid_offset.
void write_engine_events(TraceEventWriter& writer, const Engine& engine, const TraceNames& names = {}, int pid_offset = 0);

void write_chrome_trace(std::ostream& out, const Engine& engine, const TraceNames& names = {});

}  // namespace moesim::sim
