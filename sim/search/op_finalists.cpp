#include "sim/search/op_finalists.h"

#include <algorithm>
#include <limits>

#include "sim/engine/op_sim.h"

namespace moesim::sweep {

void Finalists::add(const LayoutSpec* layout, seconds iteration_time) {
  if (n_ <= 0) return;
  const auto at = std::upper_bound(kept_.begin(), kept_.end(), iteration_time,
                                   [](seconds t, const auto& k) { return t < k.first; });
  if (at - kept_.begin() >= n_) return;
  kept_.insert(at, {iteration_time, layout});
  if (size() > n_) kept_.pop_back();
}

seconds Finalists::cutoff() const {
  return size() < n_ ? std::numeric_limits<seconds>::infinity() : kept_.back().first;
}

Finalists::Best Finalists::best_at_op_level(const ModelSpec& model, const HardwareProfile& hw) const {
  Best best;
  for (const auto& [pass_level, layout] : kept_) {
    sim::SimulationResult r = sim::simulate_op_level(model, *layout, hw).result;
    if (best.layout == nullptr || r.iteration_time < best.result.iteration_time) {
      best.layout = layout;
      best.result = std::move(r);
    }
  }
  return best;
}

}  // namespace moesim::sweep
