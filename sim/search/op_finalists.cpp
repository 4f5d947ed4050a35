#include "sim/search/op_finalists.h"

#include <algorithm>
#include <functional>
#include <limits>

#include "sim/engine/op_sim.h"

namespace moesim::sweep {

void Finalists::add(const LayoutSpec* layout, const sim::SimulationResult& pass_level) {
  if (n_ <= 0) return;
  const seconds bound = sim::op_level_lower_bound(model_, *layout, hw_, pass_level);
  if (selected_) {
    if (bound <= best_time()) run(layout);
    return;
  }
  kept_.push_back({layout, pass_level.iteration_time, bound});
  fastest_.insert(std::upper_bound(fastest_.begin(), fastest_.end(), pass_level.iteration_time), pass_level.iteration_time);
  if (static_cast<int>(fastest_.size()) > n_) fastest_.pop_back();
}

seconds Finalists::cutoff() const {
  return static_cast<int>(fastest_.size()) < n_ ? std::numeric_limits<seconds>::infinity() : fastest_.back();
}

void Finalists::run(const LayoutSpec* layout) {
  sim::SimulationResult r = sim::simulate_op_level(model_, *layout, hw_).result;
  ++simulated_;
  const bool earlier = std::less<const LayoutSpec*>()(layout, best_.layout);
  if (best_.layout == nullptr || r.iteration_time < best_.result.iteration_time ||
      (r.iteration_time == best_.result.iteration_time && earlier)) {
    best_.layout = layout;
    best_.result = std::move(r);
  }
}

void Finalists::select() {
  if (n_ <= 0 || kept_.empty()) return;
  // The n fastest by the pass-level model first (the earlier among equals), so that the best
  // operator-level time found early is short and the bound prunes the rest.
  std::stable_sort(kept_.begin(), kept_.end(), [](const Kept& a, const Kept& b) { return a.pass_level < b.pass_level; });
  const auto finalists = kept_.begin() + std::min<std::ptrdiff_t>(n_, static_cast<std::ptrdiff_t>(kept_.size()));
  for (auto k = kept_.begin(); k != finalists; ++k) run(k->layout);
  std::stable_sort(finalists, kept_.end(), [](const Kept& a, const Kept& b) { return a.op_bound < b.op_bound; });
  for (auto k = finalists; k != kept_.end() && k->op_bound <= best_time(); ++k) run(k->layout);
  kept_.clear();
  selected_ = true;
}

}  // namespace moesim::sweep
