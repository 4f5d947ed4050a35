#pragma once
// The sweep's operator-level finalists (moesim sweep --op-level-finalists N): the N fastest fitting
// layouts of a model point by the pass-level model, re-simulated operator by operator and re-ranked
// (sim/engine/op_sim.h).
#include <utility>
#include <vector>

#include "costmodels/specs.h"
#include "sim/engine/simulate.h"

namespace moesim::sweep {

class Finalists {
 public:
  explicit Finalists(int n) : n_(n) {}
  // A fitting layout and its pass-level iteration time; keeps the n fastest (the earlier among equals).
  void add(const LayoutSpec* layout, seconds iteration_time);
  // Pass-level time a layout must beat to enter: a pre-screen bound at or above it cannot (infinite
  // until n are kept).
  seconds cutoff() const;
  int size() const { return static_cast<int>(kept_.size()); }

  struct Best {
    const LayoutSpec* layout = nullptr;
    sim::SimulationResult result;  // the operator-level result
  };
  // The finalist with the shortest operator-level iteration (the earlier finalist among equals).
  Best best_at_op_level(const ModelSpec& model, const HardwareProfile& hw) const;

 private:
  int n_;
  std::vector<std::pair<seconds, const LayoutSpec*>> kept_;  // fastest first
};

}  // namespace moesim::sweep
