#pragma once
// Pipeline schedules: for each stage (device), the order in which it runs its passes. The order is
// all a schedule decides; timing comes from running the lists through the engine (sim/pipeline).
#include <vector>

#include "costmodels/specs.h"
#include "costmodels/units.h"

namespace moesim::sim {

enum class Pass { forward, backward, backward_weight };

// One pass of one microbatch through one chunk (virtual stage) of a device. `backward` is the
// input-gradient pass; when a schedule emits no `backward_weight` for the same (microbatch, chunk)
// on that stage, the backward also computes the weight gradient.
struct PipelineTask {
  int microbatch = 0;
  int chunk = 0;
  Pass pass = Pass::forward;
  bool fused_with_next = false;  // this forward runs overlapped with the backward that follows it
  bool operator==(const PipelineTask&) const = default;
};

using StageSchedule = std::vector<PipelineTask>;

// Per-stage ordered task lists. Throws std::invalid_argument for unsupported shapes:
//  - gpipe, one_f_one_b, zero_bubble: chunks must be 1.
//  - interleaved: microbatches % stages == 0 (Megatron-LM's requirement for its interleaved order).
//    `runtime` picks whose warm-up: Megatron-LM runs every forward first when microbatches == stages,
//    torch.distributed.pipelining's ScheduleInterleaved1F1B never does (see schedule.cpp).
//  - dualpipe: chunks == 2, stages even, microbatches even and >= 2 * stages (DeepSeek's DualPipe
//    reference asserts the same); microbatches [0, m/2) enter at stage 0 through chunk 0 and
//    [m/2, m) enter at stage p-1 through chunk 1.
std::vector<StageSchedule> build_schedule(ScheduleKind kind, int stages, int microbatches, int chunks,
                                          PipelineRuntime runtime = PipelineRuntime::megatron);

// Chunks per device a schedule uses given the layout's virtual pipeline size: vpp for interleaved,
// 2 for dualpipe (two pipeline directions), else 1.
int schedule_chunks(ScheduleKind kind, int vpp);

// Number of independent pipeline directions: 2 for dualpipe, else 1. Chunk c of a dualpipe stage
// belongs to direction c.
int pipeline_directions(ScheduleKind kind);

// Where (stage, chunk) sits in the layer order of its direction, 0 = first layers.
//  - gpipe/1F1B/ZB: stage.
//  - interleaved: chunk * stages + stage (Megatron: device s holds layers of virtual stages s,
//    s+p, s+2p, ...).
//  - dualpipe: chunk 0 -> stage (forward direction); chunk 1 -> stages - 1 - stage (the reverse
//    direction enters at the last device).
// Dependencies follow positions within one direction and microbatch: the forward at position q
// waits for the forward at q-1, the backward at q waits for the backward at q+1 and for its own
// forward; the neighbouring position generally lives on another stage (a p2p transfer).
int pipeline_position(ScheduleKind kind, int stage, int chunk, int stages, int chunks);

// Bubble fraction (idle / makespan, the same on every stage) of the classical schedules with
// uniform stages and free communication, Narayanan et al. 2021 §2.2: GPipe and 1F1B
// (p-1)/(m+p-1); interleaved (p-1)/(v*m+p-1). Throws std::invalid_argument for zero_bubble and
// dualpipe, whose bubbles depend on the pass times (see closed_form_bubble_seconds).
double closed_form_bubble_fraction(ScheduleKind kind, int stages, int microbatches, int chunks);

// Idle time per device from DeepSeek-V3 report Table 2, with per-chunk times F = forward,
// B = full backward (input + weight gradient), W = weight-gradient backward and FB = an overlapped
// forward&backward pair: 1F1B/GPipe (p-1)(F+B); interleaved (p-1)(F+B) as well, which with per-chunk
// times is Narayanan et al.'s (p-1)(tf+tb)/v; ZB-H1 (p-1)(F+B-2W) (Qi et al. 2023);
// DualPipe (p/2-1)(FB+B-3W). Holds for uniform stages with free communication; the tests check
// that the simulator reproduces it.
seconds closed_form_bubble_seconds(ScheduleKind kind, int stages, seconds forward, seconds full_backward,
                                   seconds weight_backward, seconds fused_pair);

}  // namespace moesim::sim
