#pragma once
// Reading an operator-level run: which compute ran beside a collective (to charge the profile's
// comm_compute_slowdown) and, per stage, how much of each communication kind no compute hid.
#include <string>

#include "sim/engine/engine.h"
#include "sim/engine/simulate.h"

namespace moesim::sim {

// Task categories of the operator-level run beyond TaskCategory (the engine treats categories as
// opaque integers).
constexpr int op_category_host = static_cast<int>(TaskCategory::other) + 1;       // device waits for the host
constexpr int op_category_cp = static_cast<int>(TaskCategory::other) + 2;         // context-parallel exchange
constexpr int op_category_copy = static_cast<int>(TaskCategory::other) + 3;       // host-device copy (swap)
constexpr int op_category_optimizer = static_cast<int>(TaskCategory::other) + 4;  // optimizer step
std::string op_category_name(int category);

// What a running collective costs the compute beside it, as a share of the time they overlap.
struct CommSlowdown {
  // Any TP, EP or CP collective: the profile's device.comm_compute_slowdown (HCCL collectives run on the
  // AI vector cores and SDMA engines beside the matmuls: hw_profiles/ascend-910b2.json's source note;
  // NCCL kernels hold a few SMs).
  double any = 0;
  // An EP dispatch or combine of the flex dispatcher, whose DeepEP / HybridEP kernels hold
  // ep_dispatch_sms of the device's compute_units SMs (op_timing.h, flex_dispatch_slowdown); the larger of the two
  // applies while both run.
  double ep = 0;
};

// Lengthens each compute task by the slowdown x the time a collective of the same stage ran beside it
// in the engine's last run. Returns whether any task changed (then run again).
bool slow_compute_beside_comm(Engine& engine, const CommSlowdown& slowdown);

// Where the time of one stage went in the engine's last run, up to `end`: compute (compute and host
// waits), each communication kind's time with no compute running, the optimizer, and idle time.
TimeBreakdown stage_breakdown(const Engine& engine, int stage, seconds end);

}  // namespace moesim::sim
