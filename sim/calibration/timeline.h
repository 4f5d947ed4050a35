#pragma once
// A measured device timeline beside the operator-level simulation of the same configuration (issue 21:
// `moesim replay --model ...`): both read the same way, as the union of their compute kernels, of their
// collectives, and of the collective time no compute kernel ran beside (exposed communication), per
// stream and over the whole window. A profiler trace is usually a window of an iteration (a few layers,
// one chunk pair) while the simulation is a whole iteration, so the shares of the window are what
// compare, not the lengths.
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "costmodels/units.h"
#include "sim/engine/op_sim.h"
#include "sim/io/trace_io.h"

namespace moesim::calibrate {

struct StreamUse {
  std::string name;
  int events = 0;
  seconds busy = 0;           // union of its events
  seconds communication = 0;  // of which collectives
};

struct TimelineUse {
  std::string name;
  seconds window = 0;                 // first start to last end
  seconds compute = 0;                // union of the compute kernels (operators)
  seconds communication = 0;          // union of the collectives
  seconds exposed_communication = 0;  // collective time with no compute running
  seconds idle = 0;                   // no kernel running
  std::vector<StreamUse> streams;     // in order of first appearance
};

// A measured trace: collectives are calibrate::is_collective's, every other kernel is compute.
TimelineUse measured_use(const io::Trace& trace);

// One pipeline stage of an operator-level run: compute and optimizer operators are compute; TP, EP, CP, PP
// and DP collectives are communication; waits for the host and host-device copies are neither (no kernel
// of a profiler's kernel list).
TimelineUse simulated_use(const sim::OpLevelResult& run, int stage);

nlohmann::json to_json(const TimelineUse& use);

// Prints the two timelines' shares of their windows side by side, then each one's streams.
void print_side_by_side(std::ostream& out, const std::vector<TimelineUse>& measured, const TimelineUse& simulated);

// One Chrome trace (Perfetto) with every measured trace's kernels as a process each (a thread per stream,
// times from the trace's first kernel) above the simulated operators (a process per stage).
void write_side_by_side(std::ostream& out, const std::vector<io::Trace>& measured, const sim::OpLevelResult& simulated);

}  // namespace moesim::calibrate
