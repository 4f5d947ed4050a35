#include "sim/engine/op_measure.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "sim/engine/intervals.h"

namespace moesim::sim {
namespace {

bool is_comm(int category) {
  return category == static_cast<int>(TaskCategory::tp_comm) || category == static_cast<int>(TaskCategory::ep_comm) ||
         category == op_category_cp;
}

}  // namespace

std::string op_category_name(int category) {
  switch (category) {
    case op_category_host: return "host";
    case op_category_cp: return "cp_comm";
    case op_category_copy: return "host_copy";
    case op_category_optimizer: return "optimizer";
    default: return std::string(category_name(category));
  }
}

namespace {

// Time each interval list of `busy` (sorted, disjoint) overlaps [start, finish); `j` is the walk's position,
// which never moves back because the compute tasks of one stream arrive sorted and disjoint.
seconds overlap_with(const std::vector<Interval>& busy, std::size_t& j, seconds start, seconds finish) {
  while (j < busy.size() && busy[j].second <= start) ++j;
  seconds beside = 0;
  for (std::size_t k = j; k < busy.size() && busy[k].first < finish; ++k)
    beside += std::min(finish, busy[k].second) - std::max(start, busy[k].first);
  return beside;
}

}  // namespace

bool slow_compute_beside_comm(Engine& engine, const CommSlowdown& slowdown) {
  // max(any, ep) while an EP collective runs, `any` beside the others: any x (time beside any collective)
  // + (ep - any) x (time beside an EP one).
  const double ep_extra = std::max(0.0, slowdown.ep - slowdown.any);
  if (slowdown.any <= 0 && ep_extra <= 0) return false;
  int groups = 0;
  std::vector<int> group_of(engine.stream_count());
  for (StreamId s = 0; s < engine.stream_count(); ++s) {
    group_of[s] = engine.stream_group(s);
    groups = std::max(groups, group_of[s] + 1);
  }
  // Per stream, so each list is sorted; EP collectives also in a list of their own.
  std::vector<std::vector<Interval>> comm(engine.stream_count()), ep(engine.stream_count());
  std::vector<std::vector<const std::vector<Interval>*>> comm_of_group(groups), ep_of_group(groups);
  for (StreamId s = 0; s < engine.stream_count(); ++s) {
    comm_of_group[group_of[s]].push_back(&comm[s]);
    ep_of_group[group_of[s]].push_back(&ep[s]);
  }
  std::vector<std::vector<TaskId>> compute(groups);
  const auto tasks = engine.tasks();
  for (TaskId t = 0; t < static_cast<TaskId>(tasks.size()); ++t) {
    const StreamId s = tasks[t].stream;
    if (is_comm(tasks[t].category)) {
      comm[s].emplace_back(engine.start(t), engine.finish(t));
      if (tasks[t].category == static_cast<int>(TaskCategory::ep_comm)) ep[s].emplace_back(engine.start(t), engine.finish(t));
    } else if (tasks[t].category == static_cast<int>(TaskCategory::compute)) {
      compute[group_of[s]].push_back(t);
    }
  }
  std::vector<std::pair<TaskId, seconds>> longer;  // applied after reading every start and finish
  std::size_t computes = 0;
  for (const std::vector<TaskId>& c : compute) computes += c.size();
  longer.reserve(computes);  // at most one entry per compute task, without regrowing
  for (int g = 0; g < groups; ++g) {
    const std::vector<Interval> busy = merged_sorted_lists(comm_of_group[g]);
    if (busy.empty()) continue;
    const std::vector<Interval> busy_ep = ep_extra > 0 ? merged_sorted_lists(ep_of_group[g]) : std::vector<Interval>{};
    std::size_t j = 0, j_ep = 0;
    for (const TaskId t : compute[g]) {
      const seconds start = engine.start(t), finish = engine.finish(t);
      const seconds extra = slowdown.any * overlap_with(busy, j, start, finish) +
                            (busy_ep.empty() ? 0.0 : ep_extra * overlap_with(busy_ep, j_ep, start, finish));
      if (extra > 0) longer.emplace_back(t, tasks[t].duration + extra);
    }
  }
  for (const auto& [t, duration] : longer) engine.set_duration(t, duration);
  return !longer.empty();
}

TimeBreakdown stage_breakdown(const Engine& engine, int stage, seconds end) {
  constexpr int kinds = op_category_optimizer + 1;
  // Intervals per stream of the stage (each list sorted: a stream runs one task at a time), so that
  // every union is a k-way merge of sorted lists instead of a sort of the whole stage's tasks.
  std::vector<int> local(engine.stream_count(), -1);  // the stream's index among the stage's streams
  int streams = 0;
  for (StreamId s = 0; s < engine.stream_count(); ++s)
    if (engine.stream_group(s) == stage) local[s] = streams++;
  using Lists = std::vector<std::vector<Interval>>;
  std::vector<Lists> by(kinds, Lists(streams));
  Lists all(streams), compute(streams);
  TimeBreakdown b;
  const auto tasks = engine.tasks();
  for (TaskId t = 0; t < static_cast<TaskId>(tasks.size()); ++t) {
    const TaskInfo& info = tasks[t];
    const int k = local[info.stream];
    if (k < 0) continue;
    const Interval i{engine.start(t), std::min(engine.finish(t), end)};
    all[k].push_back(i);
    const int c = info.category;
    if (c == static_cast<int>(TaskCategory::compute) || c == op_category_host) {
      b.compute += info.duration;
      compute[k].push_back(i);
    } else if (c == op_category_optimizer) {
      b.optimizer += info.duration;
      compute[k].push_back(i);
    } else if (c >= 0 && c < kinds) {
      by[c][k].push_back(i);
    }
  }
  const auto united = [](const Lists& lists) {
    std::vector<const std::vector<Interval>*> pointers;
    for (const std::vector<Interval>& list : lists) pointers.push_back(&list);
    return merged_sorted_lists(pointers);
  };
  const std::vector<Interval> busy_compute = united(compute);
  const auto exposed = [&](int c) {
    const std::vector<Interval> u = united(by[c]);
    return length(u) - overlap(u, busy_compute);
  };
  b.exposed_tp = exposed(static_cast<int>(TaskCategory::tp_comm));
  b.exposed_ep = exposed(static_cast<int>(TaskCategory::ep_comm));
  b.exposed_cp = exposed(op_category_cp);
  b.exposed_pp = exposed(static_cast<int>(TaskCategory::pp_comm));
  b.exposed_dp = exposed(static_cast<int>(TaskCategory::dp_comm));
  b.exposed_swap = exposed(op_category_copy);
  b.bubble = std::max(0.0, end - length(united(all)));
  return b;
}

}  // namespace moesim::sim
