// A lower bound on the operator-level iteration time, from the pass-level result, so that the sweep
// can skip the operator-level run of a layout that cannot beat the best one found (issue 21).
//
// Why it is a bound: the operator-level run (op_sim.cpp) puts on each stage's compute stream, in the
// schedule's pass order, at least every compute op at its table time (the same op timings the pass
// level sums), the host issue floor and the TP collectives that block the stream; overlapped
// collectives only lengthen compute (slow_compute_beside_comm) and every other stream only adds
// waits. Each pass's compute waits for the pass that feeds it (link_passes, the same links as
// sim/engine/pipeline.cpp). So the pass-level pipeline whose passes last only their compute-stream
// work (PassCost::compute_stream), with free p2p transfers and no DP sync, finishes each pass no later
// than the operator-level run does, and the optimizer step follows on the compute stream. A pass that
// runs alone is one chain of ops (op_sim.cpp add_after), so its EP all-to-all between its first and
// last compute op lengthens it too (PassCost::ep_between_compute; what leads or trails its compute can
// overlap the neighbouring pass). Where the
// operator-level run merges two passes on one stream (DualPipe pairs, combined 1F1B) a pass may start
// before the pass ahead of it ends, and only each stage's total compute-stream work is a bound.
// tests/test_op_bound.cpp checks the bound against simulate_op_level on varied sweep spaces.
#include "costmodels/memory.h"
#include "sim/engine/op_sim.h"
#include "sim/engine/op_timing.h"
#include "sim/engine/pipeline.h"

namespace moesim::sim {

seconds op_level_lower_bound(const ModelSpec& m, const LayoutSpec& l, const HardwareProfile& hw,
                             const SimulationResult& r) {
  PipelineSpec spec;
  spec.schedule = l.schedule;
  spec.runtime = l.pipeline_runtime;
  spec.stages = l.pp;
  spec.microbatches = l.microbatches();
  spec.chunks = r.plan.chunks;
  const bool merged = l.schedule == ScheduleKind::dualpipe || combines_passes(l, r.plan.chunks);
  // An unpaired pass runs its ops as one chain, so the EP all-to-all between its compute adds to it.
  const auto work = [&](const PassCost& p) { return p.compute_stream + (merged ? 0.0 : p.ep_between_compute); };
  for (const ChunkCost& c : r.chunk_costs)
    spec.durations.push_back({work(c.forward), work(c.backward), work(c.backward_weight)});
  // No fused-pair saving: both passes of a DualPipe pair run their compute on the one stream.
  const PipelineResult relaxed = simulate_pipeline(spec);
  std::vector<seconds> end(l.pp, 0.0);
  if (merged) {
    end = relaxed.busy;
  } else {
    for (std::size_t i = 0; i < relaxed.passes.size(); ++i)
      end[relaxed.passes[i].stage] = std::max(end[relaxed.passes[i].stage], relaxed.pass_finish[i]);
  }
  seconds bound = 0;
  for (int s = 0; s < l.pp; ++s)
    bound = std::max(bound, end[s] + optimizer_step_time(memory::stage_params(m, l, r.plan, s), l, hw));
  // The two runs sum the same op times in different orders: leave room for rounding.
  return bound * (1 - 1e-9);
}

}  // namespace moesim::sim
