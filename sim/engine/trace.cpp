#include "sim/engine/trace.h"

#include <ostream>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace moesim::sim {

void write_chrome_trace(std::ostream& out, const Engine& engine, const TraceNames& names) {
  if (!engine.has_run()) throw std::logic_error("write_chrome_trace: the engine has not run");
  constexpr double us_per_second = 1e6;  // trace-event format: ts and dur in microseconds
  bool first = true;
  const auto emit = [&](const nlohmann::json& event) {
    out << (first ? "\n" : ",\n") << event.dump();
    first = false;
  };
  out << "{\"traceEvents\": [";
  std::set<int> groups;
  for (StreamId s = 0; s < engine.stream_count(); ++s) {
    const int group = engine.stream_group(s);
    if (groups.insert(group).second) {
      emit({{"ph", "M"}, {"name", "process_name"}, {"pid", group}, {"tid", 0},
            {"args", {{"name", names.process ? names.process(group) : "stage " + std::to_string(group)}}}});
      emit({{"ph", "M"}, {"name", "process_sort_index"}, {"pid", group}, {"tid", 0}, {"args", {{"sort_index", group}}}});
    }
    emit({{"ph", "M"}, {"name", "thread_name"}, {"pid", group}, {"tid", s}, {"args", {{"name", engine.stream_name(s)}}}});
    emit({{"ph", "M"}, {"name", "thread_sort_index"}, {"pid", group}, {"tid", s}, {"args", {{"sort_index", s}}}});
  }
  for (TaskId t = 0; t < engine.task_count(); ++t) {
    const TaskInfo& info = engine.task(t);
    emit({{"ph", "X"},
          {"name", names.task ? names.task(t) : "task " + std::to_string(t)},
          {"cat", names.category ? names.category(info.category) : std::string(category_name(info.category))},
          {"pid", engine.stream_group(info.stream)},
          {"tid", info.stream},
          {"ts", engine.start(t) * us_per_second},
          {"dur", info.duration * us_per_second},
          {"args", {{"task", t}, {"label", info.label}}}});
  }
  out << "\n], \"displayTimeUnit\": \"ms\"}\n";
}

}  // namespace moesim::sim
