#pragma once
// Shared by the simulation tests: one model/layout/hardware triple, simulated after the layout check.
#include <catch2/catch.hpp>

#include "costmodels/layout.h"
#include "sim/simulate.h"

namespace moesim::test {

struct Run {
  ModelSpec model;
  LayoutSpec layout;
  HardwareProfile hw;
};

inline sim::SimulationResult simulate(Run r) {
  if (auto err = complete_and_check_layout(r.model, r.layout)) FAIL("layout rejected: " << *err);
  return sim::simulate(r.model, r.layout, r.hw);
}

}  // namespace moesim::test
