#pragma once
// The sweep's operator-level finalists (moesim sweep --op-level-finalists N). The pass-level model
// ranks a model point's fitting layouts; the N fastest of them are re-simulated operator by operator
// (sim/engine/op_sim.h), and then every other layout whose operator-level lower bound
// (op_level_lower_bound) does not exceed the best operator-level time found, so the point's best layout
// is the best of all its fitting layouts at operator level, not only of the N.
#include <vector>

#include "costmodels/specs.h"
#include "sim/engine/simulate.h"

namespace moesim::sweep {

class Finalists {
 public:
  Finalists(int n, const ModelSpec& model, const HardwareProfile& hw) : n_(n), model_(model), hw_(hw) {}
  // A fitting layout (enumeration order = address order: they live in one vector) and its pass-level
  // result; kept until select() or, after it, simulated at operator level where it could win.
  void add(const LayoutSpec* layout, const sim::SimulationResult& pass_level);
  // Pass-level time a layout must beat to be among the n fastest: a pre-screen bound at or above it
  // cannot (infinite until n are kept).
  seconds cutoff() const;
  // Runs the n fastest at operator level, then every other kept layout that could beat the best.
  void select();
  // After select(): the operator-level time a layout's pre-screen bound must not exceed to matter.
  seconds best_time() const { return best_.result.iteration_time; }
  int simulated() const { return simulated_; }

  struct Best {
    const LayoutSpec* layout = nullptr;
    sim::SimulationResult result;  // the operator-level result
  };
  // The layout with the shortest operator-level iteration (the earliest in enumeration order among equals).
  const Best& best() const { return best_; }

 private:
  struct Kept {
    const LayoutSpec* layout;
    seconds pass_level, op_bound;
  };
  void run(const LayoutSpec* layout);

  int n_;
  const ModelSpec& model_;
  const HardwareProfile& hw_;
  std::vector<Kept> kept_;
  std::vector<seconds> fastest_;  // the n shortest pass-level times, ascending
  bool selected_ = false;
  int simulated_ = 0;
  Best best_;
};

}  // namespace moesim::sweep
