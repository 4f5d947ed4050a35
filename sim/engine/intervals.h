#pragma once
// Time intervals on one timeline: the union of a set (sorted, disjoint), its length and the length of the
// intersection of two unions. What ran beside what in a simulated run (op_measure) and in a measured
// trace (calibration's classify and timeline) is read with these.
#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include "costmodels/units.h"

namespace moesim::sim {

using Interval = std::pair<seconds, seconds>;  // [start, end)

// Sorted, disjoint union of intervals already sorted (empty ones dropped).
inline std::vector<Interval> union_of_sorted(const std::vector<Interval>& v) {
  std::vector<Interval> out;
  for (const Interval& i : v) {
    if (i.second <= i.first) continue;
    if (!out.empty() && i.first <= out.back().second) out.back().second = std::max(out.back().second, i.second);
    else out.push_back(i);
  }
  return out;
}

// Sorted, disjoint union of intervals (empty ones dropped).
inline std::vector<Interval> merged(std::vector<Interval> v) {
  std::sort(v.begin(), v.end());
  return union_of_sorted(v);
}

// The same from lists that are each sorted already: a stream runs its tasks one after another, so its
// intervals in task order are sorted (a zero-length task sorts before the task that starts as it ends).
// A k-way merge takes the least head each time, the order std::sort gives the concatenation (equal
// intervals are equal values), and unites as it goes: linear, with no copy of the lists.
inline std::vector<Interval> merged_sorted_lists(const std::vector<const std::vector<Interval>*>& lists) {
  // The unread rest of each list that has one: most of a stage's streams carry no interval of a kind.
  using Rest = std::pair<const Interval*, const Interval*>;
  std::vector<Rest> rest;
  for (const std::vector<Interval>* list : lists)
    if (!list->empty()) rest.emplace_back(list->data(), list->data() + list->size());
  std::vector<Interval> out;
  while (!rest.empty()) {
    std::size_t from = 0;
    for (std::size_t k = 1; k < rest.size(); ++k)
      if (*rest[k].first < *rest[from].first) from = k;
    const Interval i = *rest[from].first++;
    if (rest[from].first == rest[from].second) rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(from));
    if (i.second <= i.first) continue;
    if (!out.empty() && i.first <= out.back().second) out.back().second = std::max(out.back().second, i.second);
    else out.push_back(i);
  }
  return out;
}

inline seconds length(const std::vector<Interval>& u) {
  seconds s = 0;
  for (const Interval& i : u) s += i.second - i.first;
  return s;
}

// Length of the intersection of two sorted disjoint unions (two pointers).
inline seconds overlap(const std::vector<Interval>& a, const std::vector<Interval>& b) {
  seconds s = 0;
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    s += std::max(0.0, std::min(a[i].second, b[j].second) - std::max(a[i].first, b[j].first));
    if (a[i].second < b[j].second) ++i;
    else ++j;
  }
  return s;
}

// Length of `span` covered by a sorted disjoint union.
inline seconds covered(const std::vector<Interval>& u, Interval span) {
  auto it = std::upper_bound(u.begin(), u.end(), span.first, [](seconds t, const Interval& m) { return t < m.second; });
  seconds s = 0;
  for (; it != u.end() && it->first < span.second; ++it) s += std::min(it->second, span.second) - std::max(it->first, span.first);
  return s;
}

}  // namespace moesim::sim
