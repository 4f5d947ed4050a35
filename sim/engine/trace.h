#pragma once
// Chrome trace-event JSON ({"traceEvents": [...]}, the format chrome://tracing and Perfetto open)
// of an engine run: one "X" complete event per task, pid = stream group (pipeline stage),
// tid = stream, ts/dur in microseconds, plus "M" metadata events naming processes and threads.
#include <functional>
#include <iosfwd>
#include <string>

#include "sim/engine/engine.h"

namespace moesim::sim {

struct TraceNames {
  std::function<std::string(TaskId)> task;        // event name; default "task <id>"
  std::function<std::string(int)> category;       // "cat" field; default category_name()
  std::function<std::string(int)> process;       // per group; default "stage <group>"
};

// The engine must have run. Events are streamed one by one, so large traces need no JSON tree.
void write_chrome_trace(std::ostream& out, const Engine& engine, const TraceNames& names = {});

}  // namespace moesim::sim
