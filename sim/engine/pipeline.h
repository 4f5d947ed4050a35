#pragma once
// One training iteration's pipeline: a schedule's per-stage pass lists turned into engine tasks
// (one compute stream and one p2p send stream per stage) and run.
#include <iosfwd>
#include <utility>
#include <vector>

#include "costmodels/specs.h"
#include "costmodels/units.h"
#include "sim/engine/engine.h"
#include "sim/engine/schedule.h"

namespace moesim::sim {

struct PassDurations {
  seconds forward = 0;
  seconds backward = 0;         // input-gradient part of the backward
  seconds backward_weight = 0;  // weight-gradient part; added to `backward` when not split off
};

struct PipelineSpec {
  ScheduleKind schedule = ScheduleKind::one_f_one_b;
  int stages = 1;
  int microbatches = 1;
  int chunks = 1;  // see schedule_chunks()
  PipelineRuntime runtime = PipelineRuntime::megatron;  // whose interleaved warm-up (build_schedule)
  std::vector<PassDurations> durations;  // index stage * chunks + chunk
  // Per stage: time saved when a fused forward&backward pair runs overlapped; the pair takes
  // max(F + B - saving, max(F, B)). Empty means no saving.
  std::vector<seconds> fused_pair_saving;
  // Point-to-point activation / gradient transfer between adjacent stages. Sends are asynchronous:
  // they run on the sender's p2p stream, overlap its compute, and the receiver's pass waits for them.
  seconds p2p_send = 0;

  // All stages and chunks alike.
  static PipelineSpec uniform(ScheduleKind schedule, int stages, int microbatches, int chunks, PassDurations d);
};

// Where each (stage, chunk) sits in its direction's layer order (pipeline_position) and which stage
// a pass hands its output to; shared by the pass-level pipeline and the operator-level simulation.
class PipelineTopology {
 public:
  PipelineTopology(ScheduleKind kind, int stages, int chunks);
  int direction(int chunk) const { return directions_ == 2 ? chunk : 0; }
  int positions() const { return positions_; }  // per direction
  int position(int stage, int chunk) const { return position_of_[static_cast<std::size_t>(stage) * chunks_ + chunk]; }
  // (stage, chunk) at a position of a direction.
  std::pair<int, int> at(int direction, int position) const {
    return where_[static_cast<std::size_t>(direction) * positions_ + position];
  }
  // Stage that receives the pass's output: the next position for a forward, the previous one for a
  // backward; -1 when the output stays on the stage (ends of the pipeline, W passes).
  int consumer_stage(int stage, const PipelineTask& t) const;

 private:
  int chunks_, directions_, positions_;
  std::vector<std::pair<int, int>> where_;
  std::vector<int> position_of_;
};

// Index of every (stage, chunk, microbatch, pass), -1 where the schedule has none.
class PassIndex {
 public:
  PassIndex(int stages, int chunks, int microbatches)
      : chunks_(chunks), microbatches_(microbatches),
        slots_(static_cast<std::size_t>(stages) * chunks * microbatches * 3, -1) {}
  int& at(int stage, const PipelineTask& t) {
    return slots_[((static_cast<std::size_t>(stage) * chunks_ + t.chunk) * microbatches_ + t.microbatch) * 3 +
                  static_cast<int>(t.pass)];
  }
  int find(int stage, int chunk, int microbatch, Pass pass) const {
    return slots_[((static_cast<std::size_t>(stage) * chunks_ + chunk) * microbatches_ + microbatch) * 3 +
                  static_cast<int>(pass)];
  }

 private:
  int chunks_, microbatches_;
  std::vector<int> slots_;
};

// Where one pass landed in the engine. A fused pair is one engine task shared by both passes.
struct PassRecord {
  int stage = 0;
  PipelineTask task;
  TaskId compute = no_task;
  TaskId send = no_task;  // transfer of its output to the neighbouring stage, if any
};

// Adds the pipeline's streams and tasks to `engine` (which may already hold other work) without
// running it. Streams per stage s, both with group s: compute, then "p2p send". Compute tasks carry
// TaskCategory::compute, sends TaskCategory::pp_comm; every task's label is its index into the
// returned records (for a fused pair, the forward's record).
std::vector<PassRecord> build_pipeline(Engine& engine, const PipelineSpec& spec);

struct PipelineResult {
  seconds makespan = 0;
  std::vector<seconds> busy;                  // per stage: time its compute stream is occupied
  std::vector<double> stage_bubble_fraction;  // per stage: 1 - busy / makespan
  // Mean over stages of stage_bubble_fraction, i.e. 1 - sum(busy) / (stages * makespan): the share
  // of device time the pipeline leaves idle. With balanced stages every stage has the same value.
  double bubble_fraction = 0;
  // Per stage: maximum over time of forwards started whose last backward piece (W when split,
  // else B) has not finished; each counts one chunk's activations of one microbatch.
  std::vector<int> peak_in_flight;
  std::vector<PassRecord> passes;
  std::vector<seconds> pass_start, pass_finish;  // parallel to `passes`
  Engine engine;                                 // the run, for traces
};

PipelineResult simulate_pipeline(const PipelineSpec& spec);

// Chrome/Perfetto trace of the run, passes named like "F3.c1" (forward, microbatch 3, chunk 1).
void write_pipeline_trace(std::ostream& out, const PipelineResult& result);

}  // namespace moesim::sim
