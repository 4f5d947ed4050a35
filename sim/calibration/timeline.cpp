#include "sim/calibration/timeline.h"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <algorithm>
#include <map>
#include <ostream>
#include <set>
#include <stdexcept>

#include "sim/calibration/calibrate.h"
#include "sim/engine/intervals.h"
#include "sim/engine/op_measure.h"
#include "sim/engine/trace.h"

namespace moesim::calibrate {
namespace {

// The events of one timeline as intervals, by stream and by kind.
struct Spans {
  std::vector<sim::Interval> compute, communication;
  std::vector<std::string> stream_names;                   // order of first appearance
  std::vector<std::vector<sim::Interval>> by_stream, comm_by_stream;
  std::vector<int> events;

  std::size_t stream(const std::string& name, std::map<std::string, std::size_t>& index) {
    const auto [it, added] = index.try_emplace(name, stream_names.size());
    if (added) {
      stream_names.push_back(name);
      by_stream.emplace_back();
      comm_by_stream.emplace_back();
      events.push_back(0);
    }
    return it->second;
  }
};

TimelineUse summarise(std::string name, Spans spans) {
  TimelineUse u;
  u.name = std::move(name);
  std::vector<sim::Interval> all = spans.compute;
  all.insert(all.end(), spans.communication.begin(), spans.communication.end());
  const std::vector<sim::Interval> busy = sim::merged(std::move(all));
  if (busy.empty()) return u;
  u.window = busy.back().second - busy.front().first;
  const std::vector<sim::Interval> compute = sim::merged(std::move(spans.compute));
  const std::vector<sim::Interval> communication = sim::merged(std::move(spans.communication));
  u.compute = sim::length(compute);
  u.communication = sim::length(communication);
  u.exposed_communication = u.communication - sim::overlap(communication, compute);
  u.idle = u.window - sim::length(busy);
  for (std::size_t s = 0; s < spans.stream_names.size(); ++s)
    u.streams.push_back({spans.stream_names[s], spans.events[s], sim::length(sim::merged(std::move(spans.by_stream[s]))),
                         sim::length(sim::merged(std::move(spans.comm_by_stream[s])))});
  return u;
}

// Times of a trace count from its earliest kernel (readers keep the file's order, not always by time).
double origin_us(const io::Trace& trace) {
  double first = trace.kernels.empty() ? 0.0 : trace.kernels.front().start_us;
  for (const io::KernelSample& k : trace.kernels) first = std::min(first, k.start_us);
  return first;
}

double share(seconds part, seconds window) { return window > 0 ? 100 * part / window : 0.0; }

std::string span_text(seconds s) { return s >= 1 ? fmt::format("{:.3f} s", s) : fmt::format("{:.3f} ms", s * 1e3); }

}  // namespace

TimelineUse measured_use(const io::Trace& trace) {
  Spans spans;
  std::map<std::string, std::size_t> index;
  const double origin = origin_us(trace);
  for (const io::KernelSample& k : trace.kernels) {
    if (k.occurrences != 1) throw std::invalid_argument(trace.file + ": aggregated statistics have no timeline");
    const sim::Interval span = kernel_span(k, origin);
    const bool collective = is_collective(k);
    const std::size_t s =
        spans.stream(k.stream >= 0 ? fmt::format("stream {}", k.stream) : std::string(collective ? "collectives" : "kernels"), index);
    (collective ? spans.communication : spans.compute).push_back(span);
    spans.by_stream[s].push_back(span);
    if (collective) spans.comm_by_stream[s].push_back(span);
    ++spans.events[s];
  }
  return summarise("measured: " + trace.file, std::move(spans));
}

TimelineUse simulated_use(const sim::OpLevelResult& run, int stage) {
  const sim::Engine& engine = run.engine;
  Spans spans;
  std::map<std::string, std::size_t> index;
  const auto tasks = engine.tasks();
  for (sim::TaskId t = 0; t < static_cast<sim::TaskId>(tasks.size()); ++t) {
    const sim::TaskInfo& info = tasks[t];
    if (engine.stream_group(info.stream) != stage) continue;
    const int c = info.category;
    const bool compute = c == static_cast<int>(sim::TaskCategory::compute) || c == sim::op_category_optimizer;
    const bool collective = c == static_cast<int>(sim::TaskCategory::tp_comm) || c == static_cast<int>(sim::TaskCategory::ep_comm) ||
                            c == sim::op_category_cp || c == static_cast<int>(sim::TaskCategory::pp_comm) ||
                            c == static_cast<int>(sim::TaskCategory::dp_comm);
    if (!compute && !collective) continue;
    const sim::Interval span{engine.start(t), engine.finish(t)};
    const std::size_t s = spans.stream(engine.stream_name(info.stream), index);
    (collective ? spans.communication : spans.compute).push_back(span);
    spans.by_stream[s].push_back(span);
    if (collective) spans.comm_by_stream[s].push_back(span);
    ++spans.events[s];
  }
  return summarise(fmt::format("simulated: stage {}", stage), std::move(spans));
}

nlohmann::json to_json(const TimelineUse& u) {
  nlohmann::json streams = nlohmann::json::array();
  for (const StreamUse& s : u.streams)
    streams.push_back({{"name", s.name}, {"events", s.events}, {"busy_s", s.busy}, {"communication_s", s.communication}});
  return {{"name", u.name},
          {"window_s", u.window},
          {"compute_s", u.compute},
          {"communication_s", u.communication},
          {"exposed_communication_s", u.exposed_communication},
          {"idle_s", u.idle},
          {"streams", streams}};
}

void print_side_by_side(std::ostream& out, const std::vector<TimelineUse>& measured, const TimelineUse& simulated) {
  std::vector<const TimelineUse*> all;
  for (const TimelineUse& m : measured) all.push_back(&m);
  all.push_back(&simulated);
  fmt::print(out, "\nside by side (share of each timeline's window)\n{:<24}", "");
  for (std::size_t i = 0; i < all.size(); ++i) fmt::print(out, " {:>16}", i + 1 < all.size() ? fmt::format("measured {}", i + 1) : "simulated");
  const auto row = [&](const char* what, auto value) {
    fmt::print(out, "\n{:<24}", what);
    for (const TimelineUse* u : all) fmt::print(out, " {:>16}", value(*u));
  };
  row("window", [](const TimelineUse& u) { return span_text(u.window); });
  row("compute busy", [](const TimelineUse& u) { return fmt::format("{:.1f}%", share(u.compute, u.window)); });
  row("communication busy", [](const TimelineUse& u) { return fmt::format("{:.1f}%", share(u.communication, u.window)); });
  row("communication exposed", [](const TimelineUse& u) { return fmt::format("{:.1f}%", share(u.exposed_communication, u.window)); });
  row("idle", [](const TimelineUse& u) { return fmt::format("{:.1f}%", share(u.idle, u.window)); });
  fmt::print(out, "\n");
  for (std::size_t i = 0; i < all.size(); ++i) {
    fmt::print(out, "{} ({}):\n", i + 1 < all.size() ? fmt::format("measured {}", i + 1) : "simulated", all[i]->name);
    for (const StreamUse& s : all[i]->streams)
      fmt::print(out, "  {:<28} {:>8} events  busy {:>5.1f}%  of which communication {:>5.1f}%\n", s.name, s.events,
                 share(s.busy, all[i]->window), share(s.communication, all[i]->window));
  }
}

void write_side_by_side(std::ostream& out, const std::vector<io::Trace>& measured, const sim::OpLevelResult& simulated) {
  sim::TraceEventWriter writer(out);
  constexpr double us_per_second = 1e6;
  // The simulated stages keep their pids (0..PP-1); the measured traces come first in the view.
  const int first_measured_pid = 1000000;
  for (std::size_t i = 0; i < measured.size(); ++i) {
    const io::Trace& trace = measured[i];
    const int pid = first_measured_pid + static_cast<int>(i);
    writer.name_process(pid, "measured: " + trace.file, -static_cast<int>(measured.size() - i));
    const double origin = origin_us(trace);
    std::set<long long> named;
    for (const io::KernelSample& k : trace.kernels) {
      const long long tid = k.stream;
      if (named.insert(tid).second)
        writer.name_thread(pid, tid, tid >= 0 ? fmt::format("stream {}", tid) : std::string("stream not recorded"), tid);
      const sim::Interval span = kernel_span(k, origin);
      writer.emit({{"ph", "X"},
                   {"name", std::string(k.name.substr(0, 160))},
                   {"cat", is_collective(k) ? "collective" : "compute"},
                   {"pid", pid},
                   {"tid", tid},
                   {"ts", span.first * us_per_second},
                   {"dur", k.duration * us_per_second}});
    }
  }
  sim::TraceNames names = sim::op_trace_names(simulated);
  names.process = [](int stage) { return fmt::format("simulated: stage {}", stage); };
  sim::write_engine_events(writer, simulated.engine, names);
  writer.finish();
}

}  // namespace moesim::calibrate
