#include "sim/engine/pipeline.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "sim/engine/trace.h"

namespace moesim::sim {
namespace {

std::string pass_label(const PipelineTask& t) {
  static constexpr char letter[] = {'F', 'B', 'W'};
  return fmt::format("{}{}.c{}", letter[static_cast<int>(t.pass)], t.microbatch, t.chunk);
}

void validate(const PipelineSpec& spec) {
  const auto cells = static_cast<std::size_t>(spec.stages) * spec.chunks;
  if (spec.durations.size() != cells)
    throw std::invalid_argument(fmt::format("pipeline: {} pass durations given for {} stages x {} chunks",
                                            spec.durations.size(), spec.stages, spec.chunks));
  if (!spec.fused_pair_saving.empty() && spec.fused_pair_saving.size() != static_cast<std::size_t>(spec.stages))
    throw std::invalid_argument(fmt::format("pipeline: {} fused-pair savings given for {} stages",
                                            spec.fused_pair_saving.size(), spec.stages));
  if (!std::isfinite(spec.p2p_send) || spec.p2p_send < 0)
    throw std::invalid_argument(fmt::format("pipeline: p2p send time {} must be finite and >= 0", spec.p2p_send));
}

}  // namespace

PipelineTopology::PipelineTopology(ScheduleKind kind, int stages, int chunks)
    : chunks_(chunks), directions_(pipeline_directions(kind)), positions_(stages * chunks / directions_),
      where_(static_cast<std::size_t>(stages) * chunks), position_of_(static_cast<std::size_t>(stages) * chunks) {
  for (int s = 0; s < stages; ++s)
    for (int c = 0; c < chunks; ++c) {
      position_of_[static_cast<std::size_t>(s) * chunks + c] = pipeline_position(kind, s, c, stages, chunks);
      where_[static_cast<std::size_t>(direction(c)) * positions_ + position(s, c)] = {s, c};
    }
}

int PipelineTopology::consumer_stage(int stage, const PipelineTask& t) const {
  const int q = position(stage, t.chunk) + (t.pass == Pass::forward ? 1 : -1);
  if (t.pass == Pass::backward_weight || q < 0 || q >= positions_) return -1;
  const int s = at(direction(t.chunk), q).first;
  return s == stage ? -1 : s;
}

PipelineSpec PipelineSpec::uniform(ScheduleKind schedule, int stages, int microbatches, int chunks, PassDurations d) {
  PipelineSpec spec;
  spec.schedule = schedule;
  spec.stages = stages;
  spec.microbatches = microbatches;
  spec.chunks = chunks;
  spec.durations.assign(static_cast<std::size_t>(std::max(stages, 0)) * std::max(chunks, 0), d);
  return spec;
}

std::vector<PassRecord> build_pipeline(Engine& engine, const PipelineSpec& spec) {
  validate(spec);
  const int p = spec.stages, v = spec.chunks, m = spec.microbatches;
  const auto schedule = build_schedule(spec.schedule, p, m, v, spec.runtime);

  // Records in schedule order; the index makes every lookup below O(1).
  std::vector<PassRecord> records;
  std::size_t passes = 0;
  for (const auto& list : schedule) passes += list.size();
  records.reserve(passes);
  PassIndex index(p, v, m);
  for (int s = 0; s < p; ++s) {
    for (const PipelineTask& t : schedule[s]) {
      int& slot = index.at(s, t);
      if (slot != -1) throw std::logic_error(fmt::format("pipeline: stage {} schedules {} twice", s, pass_label(t)));
      slot = static_cast<int>(records.size());
      records.push_back(PassRecord{s, t});
    }
  }

  const PipelineTopology topology(spec.schedule, p, v);
  const auto consumer_stage = [&](const PassRecord& r) { return topology.consumer_stage(r.stage, r.task); };

  engine.reserve(engine.task_count() + 2 * records.size(), engine.dependency_count() + 4 * records.size());
  std::vector<StreamId> compute(p), send(p);
  for (int s = 0; s < p; ++s) {
    compute[s] = engine.add_stream(fmt::format("stage {} compute", s), s);
    send[s] = engine.add_stream(fmt::format("stage {} p2p send", s), s);
  }

  // Compute tasks in schedule order (that order is the stream order), each followed by the sends of
  // its outputs so that a stage's send stream runs in the order outputs are produced.
  for (int s = 0; s < p; ++s) {
    const seconds saving = spec.fused_pair_saving.empty() ? 0 : spec.fused_pair_saving[s];
    const auto duration = [&](const PipelineTask& t) {
      const PassDurations& d = spec.durations[static_cast<std::size_t>(s) * v + t.chunk];
      switch (t.pass) {
        case Pass::forward: return d.forward;
        case Pass::backward:
          return index.find(s, t.chunk, t.microbatch, Pass::backward_weight) == -1 ? d.backward + d.backward_weight
                                                                                    : d.backward;
        case Pass::backward_weight: return d.backward_weight;
      }
      return 0.0;
    };
    const auto& list = schedule[s];
    for (std::size_t i = 0; i < list.size(); ++i) {
      const int first = index.at(s, list[i]);
      int last = first;
      seconds time = duration(list[i]);
      if (list[i].fused_with_next) {
        if (i + 1 >= list.size() || list[i].pass != Pass::forward || list[i + 1].pass != Pass::backward)
          throw std::logic_error(fmt::format("pipeline: stage {} fuses {} with no following backward", s, pass_label(list[i])));
        // Overlapped pair: the shared resources bound it below by the longer pass (DeepSeek-V3 §3.2.1).
        const seconds f = time, b = duration(list[i + 1]);
        time = std::max(f + b - saving, std::max(f, b));
        last = index.at(s, list[++i]);
      }
      const TaskId task = engine.add_task(compute[s], time, TaskCategory::compute, first);
      for (int r = first; r <= last; ++r) {
        records[r].compute = task;
        if (const int to = consumer_stage(records[r]); to != -1) {
          records[r].send = engine.add_task(send[s], spec.p2p_send, TaskCategory::pp_comm, r);
          engine.add_dependency(task, records[r].send);
        }
      }
    }
  }

  // Data dependencies. A producer on another stage hands over through its send; one on the same
  // stage directly. Passes sharing a fused task need no edge.
  const auto link = [&](int producer, const PassRecord& consumer) {
    if (producer == -1) throw std::logic_error("pipeline: schedule is missing a pass another pass depends on");
    const PassRecord& from = records[producer];
    const TaskId before = from.stage == consumer.stage ? from.compute : from.send;
    if (before != consumer.compute) engine.add_dependency(before, consumer.compute);
  };
  for (const PassRecord& r : records) {
    const int q = topology.position(r.stage, r.task.chunk), dir = topology.direction(r.task.chunk), mb = r.task.microbatch;
    const auto at = [&](int pos, Pass pass) {
      const auto [s, c] = topology.at(dir, pos);
      return index.find(s, c, mb, pass);
    };
    switch (r.task.pass) {
      case Pass::forward:
        if (q > 0) link(at(q - 1, Pass::forward), r);
        break;
      case Pass::backward:
        link(at(q, Pass::forward), r);
        if (q + 1 < topology.positions()) link(at(q + 1, Pass::backward), r);
        break;
      case Pass::backward_weight: link(at(q, Pass::backward), r); break;
    }
  }
  return records;
}

PipelineResult simulate_pipeline(const PipelineSpec& spec) {
  PipelineResult result;
  result.passes = build_pipeline(result.engine, spec);
  result.engine.run();
  const Engine& e = result.engine;
  const int p = spec.stages;

  result.makespan = e.makespan();
  result.busy.assign(p, 0);
  for (const PassRecord& r : result.passes) result.busy[r.stage] = e.busy(e.task(r.compute).stream);
  double busy_total = 0;
  for (int s = 0; s < p; ++s) {
    result.stage_bubble_fraction.push_back(result.makespan > 0 ? 1 - result.busy[s] / result.makespan : 0);
    busy_total += result.busy[s];
  }
  result.bubble_fraction = result.makespan > 0 ? 1 - busy_total / (p * result.makespan) : 0;

  result.pass_start.reserve(result.passes.size());
  result.pass_finish.reserve(result.passes.size());
  for (const PassRecord& r : result.passes) {
    result.pass_start.push_back(e.start(r.compute));
    result.pass_finish.push_back(e.finish(r.compute));
  }

  // Activations in flight: +1 when a forward starts, -1 when the last backward piece of the same
  // (microbatch, chunk) finishes. Releases sort before allocations at equal times, because the
  // next pass on the stream starts exactly when the previous one frees its memory.
  std::vector<std::vector<std::pair<seconds, int>>> events(p);
  std::vector<char> has_weight_pass(static_cast<std::size_t>(p) * spec.chunks * spec.microbatches, 0);
  const auto key = [&](const PassRecord& r) {
    return (static_cast<std::size_t>(r.stage) * spec.chunks + r.task.chunk) * spec.microbatches + r.task.microbatch;
  };
  for (const PassRecord& r : result.passes)
    if (r.task.pass == Pass::backward_weight) has_weight_pass[key(r)] = 1;
  for (std::size_t i = 0; i < result.passes.size(); ++i) {
    const PassRecord& r = result.passes[i];
    if (r.task.pass == Pass::forward) events[r.stage].emplace_back(result.pass_start[i], +1);
    const bool frees = r.task.pass == Pass::backward_weight || (r.task.pass == Pass::backward && !has_weight_pass[key(r)]);
    if (frees) events[r.stage].emplace_back(result.pass_finish[i], -1);
  }
  for (auto& stage_events : events) {
    // A stage's compute stream runs its passes in record order, so the events usually arrive sorted
    // already; sorting is then skipped (it was the largest cost here in callgrind).
    if (!std::is_sorted(stage_events.begin(), stage_events.end())) std::sort(stage_events.begin(), stage_events.end());
    int now = 0, peak = 0;
    for (const auto& ev : stage_events) peak = std::max(peak, now += ev.second);
    result.peak_in_flight.push_back(peak);
  }
  return result;
}

void write_pipeline_trace(std::ostream& out, const PipelineResult& result) {
  const auto& passes = result.passes;
  TraceNames names;
  names.task = [&](TaskId t) {
    const TaskInfo& info = result.engine.task(t);
    const PassRecord& r = passes[info.label];
    if (info.category == static_cast<int>(TaskCategory::pp_comm)) return "send " + pass_label(r.task);
    if (r.task.fused_with_next) return pass_label(r.task) + "+" + pass_label(passes[info.label + 1].task);
    return pass_label(r.task);
  };
  write_chrome_trace(out, result.engine, names);
}

}  // namespace moesim::sim
