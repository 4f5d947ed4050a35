#pragma once
// What every simulation result must satisfy whatever the (valid) input: no NaN or infinity, no
// negative time or memory, MFU within (0, 1] (HFU finite and positive). Checked by the tests over many random valid
// configurations and by every fuzz target (fuzz/); a violation is a bug in the model, never in the input.
#include <string>
#include <vector>

#include "sim/engine/simulate.h"

namespace moesim::sim {

// One line per violated invariant (empty: the result is sane).
std::vector<std::string> invariant_violations(const SimulationResult& r);

}  // namespace moesim::sim
