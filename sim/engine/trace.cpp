#include "sim/engine/trace.h"

#include <ostream>
#include <set>
#include <stdexcept>

namespace moesim::sim {

TraceEventWriter::TraceEventWriter(std::ostream& out) : out_(out) { out_ << "{\"traceEvents\": ["; }

void TraceEventWriter::emit(const nlohmann::json& event) {
  out_ << (first_ ? "\n" : ",\n") << event.dump();
  first_ = false;
}

void TraceEventWriter::name_process(int pid, const std::string& name, int sort_index) {
  emit({{"ph", "M"}, {"name", "process_name"}, {"pid", pid}, {"tid", 0}, {"args", {{"name", name}}}});
  emit({{"ph", "M"}, {"name", "process_sort_index"}, {"pid", pid}, {"tid", 0}, {"args", {{"sort_index", sort_index}}}});
}

void TraceEventWriter::name_thread(int pid, long long tid, const std::string& name, long long sort_index) {
  emit({{"ph", "M"}, {"name", "thread_name"}, {"pid", pid}, {"tid", tid}, {"args", {{"name", name}}}});
  emit({{"ph", "M"}, {"name", "thread_sort_index"}, {"pid", pid}, {"tid", tid}, {"args", {{"sort_index", sort_index}}}});
}

void TraceEventWriter::finish() { out_ << "\n], \"displayTimeUnit\": \"ms\"}\n"; }

void write_engine_events(TraceEventWriter& writer, const Engine& engine, const TraceNames& names, int pid_offset) {
  if (!engine.has_run()) throw std::logic_error("write_engine_events: the engine has not run");
  constexpr double us_per_second = 1e6;  // trace-event format: ts and dur in microseconds
  std::set<int> groups;
  for (StreamId s = 0; s < engine.stream_count(); ++s) {
    const int group = engine.stream_group(s);
    if (groups.insert(group).second)
      writer.name_process(group + pid_offset, names.process ? names.process(group) : "stage " + std::to_string(group),
                          group + pid_offset);
    writer.name_thread(group + pid_offset, s, engine.stream_name(s), s);
  }
  for (TaskId t = 0; t < engine.task_count(); ++t) {
    const TaskInfo& info = engine.task(t);
    writer.emit({{"ph", "X"},
                 {"name", names.task ? names.task(t) : "task " + std::to_string(t)},
                 {"cat", names.category ? names.category(info.category) : std::string(category_name(info.category))},
                 {"pid", engine.stream_group(info.stream) + pid_offset},
                 {"tid", info.stream},
                 {"ts", engine.start(t) * us_per_second},
                 {"dur", info.duration * us_per_second},
                 {"args", {{"task", t}, {"label", info.label}}}});
  }
}

void write_chrome_trace(std::ostream& out, const Engine& engine, const TraceNames& names) {
  if (!engine.has_run()) throw std::logic_error("write_chrome_trace: the engine has not run");
  TraceEventWriter writer(out);
  write_engine_events(writer, engine, names);
  writer.finish();
}

}  // namespace moesim::sim
