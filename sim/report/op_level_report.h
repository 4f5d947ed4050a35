#pragma once
// The operator-level run beside the pass-level prediction (moesim simulate --op-level).
#include <nlohmann/json.hpp>
#include <ostream>

#include "sim/engine/op_sim.h"

namespace moesim::report {

// Iteration time, MFU and where the critical stage's time goes, operator level next to pass level.
void print_op_level(std::ostream& out, const sim::OpLevelResult& r);
// {"iteration_time_s", "mfu", "time_breakdown"{...}, "tasks", "pass_level"{the same three}}.
nlohmann::json op_level_json(const sim::OpLevelResult& r);

}  // namespace moesim::report
