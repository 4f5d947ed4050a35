#pragma once
// The simulation report: JSON (the DESIGN.md contract) and a readable table.
#include <nlohmann/json.hpp>
#include <ostream>

#include "sim/engine/simulate.h"

namespace moesim::report {

nlohmann::json simulation_json(const ModelSpec& model, const LayoutSpec& layout, const HardwareProfile& hw,
                               const sim::SimulationResult& r);
void print_simulation(std::ostream& out, const ModelSpec& model, const LayoutSpec& layout,
                      const HardwareProfile& hw, const sim::SimulationResult& r);
nlohmann::json layout_json(const LayoutSpec& layout);

}  // namespace moesim::report
