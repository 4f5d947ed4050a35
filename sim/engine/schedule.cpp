#include "sim/engine/schedule.h"

#include <algorithm>
#include <deque>
#include <stdexcept>

#include <fmt/format.h>

namespace moesim::sim {
namespace {

PipelineTask fwd(int mb, int chunk = 0) { return {mb, chunk, Pass::forward}; }
PipelineTask bwd(int mb, int chunk = 0) { return {mb, chunk, Pass::backward}; }
PipelineTask wgt(int mb, int chunk = 0) { return {mb, chunk, Pass::backward_weight}; }

// GPipe (Huang et al. 2019): every forward, then every backward.
StageSchedule gpipe(int m) {
  StageSchedule s;
  for (int i = 0; i < m; ++i) s.push_back(fwd(i));
  for (int i = 0; i < m; ++i) s.push_back(bwd(i));
  return s;
}

// PipeDream-Flush / Megatron 1F1B (Narayanan et al. 2021 §2.2): p-s-1 warmup forwards, then
// alternate one forward and one backward, then drain the remaining backwards.
StageSchedule one_f_one_b(int p, int m, int s) {
  StageSchedule out;
  const int warmup = std::min(p - s - 1, m);
  for (int i = 0; i < warmup; ++i) out.push_back(fwd(i));
  for (int i = 0; i < m - warmup; ++i) {
    out.push_back(fwd(warmup + i));
    out.push_back(bwd(i));
  }
  for (int i = m - warmup; i < m; ++i) out.push_back(bwd(i));
  return out;
}

// Megatron-LM interleaved 1F1B (schedules.py, forward_backward_pipelining_with_interleaving).
// Virtual microbatch k (of m*v) runs forward chunk (k mod p*v) / p on microbatch
// (k / (p*v)) * p + k mod p; backwards visit the chunks in reverse. Warmup is
// (p-s-1)*2 + (v-1)*p virtual microbatches, or everything when m == p (Megatron's
// all_warmup_microbatches). torch.distributed.pipelining's ScheduleInterleaved1F1B (torchtitan) runs the
// same order (m % p == 0, so its microbatches_per_round is p) with the same warm-up count,
// (v-1) * microbatches_per_round + 2 * (p-1-rank) capped at m*v (schedules.py
// _calculate_single_rank_operations / _get_warmup_ops), but has no m == p rule: its last rank starts
// the steady 1F1B after (v-1)*p forwards instead of holding all m*v.
StageSchedule interleaved(int p, int m, int v, int s, PipelineRuntime runtime) {
  const int total = m * v;
  const auto chunk_of = [&](int k) { return (k % (p * v)) / p; };
  const auto mb_of = [&](int k) { return (k / (p * v)) * p + k % p; };
  const bool all_warmup = m == p && runtime == PipelineRuntime::megatron;
  const int warmup = all_warmup ? total : std::min((p - s - 1) * 2 + (v - 1) * p, total);
  StageSchedule out;
  for (int k = 0; k < warmup; ++k) out.push_back(fwd(mb_of(k), chunk_of(k)));
  for (int k = 0; k < total - warmup; ++k) {
    out.push_back(fwd(mb_of(k + warmup), chunk_of(k + warmup)));
    out.push_back(bwd(mb_of(k), v - 1 - chunk_of(k)));
  }
  for (int k = total - warmup; k < total; ++k) out.push_back(bwd(mb_of(k), v - 1 - chunk_of(k)));
  return out;
}

// ZB-H1 (Qi et al. 2023, "Zero Bubble Pipeline Parallelism" §3): the 1F1B order with the backward
// split into B (input gradient, on the critical path) and W (weight gradient). Stage s keeps 1F1B's
// p-s-1 warmup forwards and postpones its first s W passes; they fill the drain at the end, where
// 1F1B would idle. At most p microbatches are in flight on any stage (activations are held until
// W), so the peak over stages equals 1F1B's; with F = B = W the idle time drops from (p-1)(F+B+W)
// to (p-1)(F+B-W).
StageSchedule zero_bubble_h1(int p, int m, int s) {
  StageSchedule out;
  const int warmup = std::min(p - s - 1, m);
  int f = 0, b = 0, w = 0, deferred = 0;
  while (f < warmup) out.push_back(fwd(f++));
  while (f < m) {
    out.push_back(fwd(f++));
    out.push_back(bwd(b++));
    if (deferred < s) ++deferred;
    else out.push_back(wgt(w++));
  }
  while (b < m) {
    out.push_back(bwd(b++));
    out.push_back(wgt(w++));
  }
  while (w < m) out.push_back(wgt(w++));
  return out;
}

// DualPipe, a transcription of DualPipe.step() in github.com/deepseek-ai/DualPipe (dualpipe.py),
// DeepSeek-V3 report §3.2.1. Stage s and stage p-1-s run mirror-image programs, so the program
// is written in local "phases": phase 0 is the direction that enters at the near end (direction 0
// for the first half of the stages, direction 1 for the second half). Backwards marked zero-bubble
// push their W onto a FIFO that later weight steps drain; the other backwards include W.
StageSchedule dualpipe(int p, int m, int s) {
  const int half_ranks = p / 2, half_mbs = m / 2;
  const int h = std::min(s, p - 1 - s);  // distance from the nearer end
  const bool second_half = s >= half_ranks, last = s == p - 1;
  StageSchedule out;
  int f_count[2] = {0, 0}, b_count[2] = {0, 0};
  std::deque<PipelineTask> weights;
  const auto direction = [&](int phase) { return phase ^ (second_half ? 1 : 0); };
  const auto F = [&](int phase, bool fused = false) {
    const int d = direction(phase);
    out.push_back({d * half_mbs + f_count[phase]++, d, Pass::forward, fused});
  };
  const auto B = [&](int phase, bool zero_bubble = false) {
    const int d = direction(phase);
    const PipelineTask t = bwd(d * half_mbs + b_count[phase]++, d);
    out.push_back(t);
    if (zero_bubble) weights.push_back(wgt(t.microbatch, t.chunk));
  };
  const auto W = [&] {
    out.push_back(weights.front());
    weights.pop_front();
  };
  const auto FB = [&](int forward_phase, int backward_phase) {
    F(forward_phase, true);
    B(backward_phase);
  };

  for (int i = 0; i < (half_ranks - h - 1) * 2; ++i) F(0);  // step 1: nF0
  for (int i = 0; i < h + 1; ++i) {                          // step 2: nF0F1
    F(0);
    F(1);
  }
  for (int i = 0; i < half_ranks - h - 1; ++i) {  // step 3: nB1W1F1
    B(1, true);
    W();
    F(1);
  }
  for (int i = 0; i < half_mbs - p + h + 1; ++i) {  // step 4 (steady state): nF0B1F1B0
    if (i == 0 && last) {
      F(0);  // the reference does not overlap this first pair on the last rank
      B(1);
    } else {
      FB(0, 1);
    }
    FB(1, 0);
  }
  for (int i = 0; i < half_ranks - h - 1; ++i) {  // step 5: nB1F1B0
    B(1);
    FB(1, 0);
  }
  bool zero_bubble = false;  // step 6: nB1B0, the second half of them zero-bubble
  for (int i = 0; i < h + 1; ++i) {
    if (i == (h + 1) / 2 && h % 2 == 1) zero_bubble = true;
    B(1, zero_bubble);
    if (i == (h + 1) / 2 && h % 2 == 0) zero_bubble = true;
    B(0, zero_bubble);
  }
  for (int i = 0; i < half_ranks - h - 1; ++i) {  // step 7: nWB0
    W();
    B(0, true);
  }
  while (!weights.empty()) W();  // step 8: nW
  return out;
}

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

}  // namespace

int schedule_chunks(ScheduleKind kind, int vpp) {
  switch (kind) {
    case ScheduleKind::interleaved: return vpp;
    case ScheduleKind::dualpipe: return 2;
    default: return 1;
  }
}

int pipeline_directions(ScheduleKind kind) { return kind == ScheduleKind::dualpipe ? 2 : 1; }

std::vector<StageSchedule> build_schedule(ScheduleKind kind, int p, int m, int v, PipelineRuntime runtime) {
  require(p >= 1 && m >= 1 && v >= 1,
          fmt::format("pipeline schedule needs stages ({}), microbatches ({}) and chunks ({}) >= 1", p, m, v));
  switch (kind) {
    case ScheduleKind::interleaved:
      require(m % p == 0, fmt::format("interleaved 1F1B needs microbatches ({}) to be a multiple of stages ({})", m, p));
      break;
    case ScheduleKind::dualpipe:
      require(v == 2, fmt::format("dualpipe uses exactly 2 chunks per stage, got {}", v));
      require(p % 2 == 0, fmt::format("dualpipe needs an even number of stages, got {}", p));
      require(m % 2 == 0 && m >= 2 * p,
              fmt::format("dualpipe needs an even number of microbatches >= 2 * stages ({}), got {}", 2 * p, m));
      break;
    default:
      require(v == 1, fmt::format("this schedule runs one chunk per stage, got {} chunks", v));
  }
  std::vector<StageSchedule> out;
  out.reserve(p);
  for (int s = 0; s < p; ++s) {
    switch (kind) {
      case ScheduleKind::gpipe: out.push_back(gpipe(m)); break;
      case ScheduleKind::one_f_one_b: out.push_back(one_f_one_b(p, m, s)); break;
      case ScheduleKind::interleaved: out.push_back(interleaved(p, m, v, s, runtime)); break;
      case ScheduleKind::zero_bubble: out.push_back(zero_bubble_h1(p, m, s)); break;
      case ScheduleKind::dualpipe: out.push_back(dualpipe(p, m, s)); break;
    }
  }
  return out;
}

int pipeline_position(ScheduleKind kind, int stage, int chunk, int stages, int chunks) {
  // Called for every pass while building a pipeline: the message is formatted only on failure.
  if (stage < 0 || stage >= stages || chunk < 0 || chunk >= chunks)
    throw std::invalid_argument(
        fmt::format("no stage {} chunk {} in a pipeline of {} stages x {} chunks", stage, chunk, stages, chunks));
  switch (kind) {
    case ScheduleKind::interleaved: return chunk * stages + stage;
    case ScheduleKind::dualpipe: return chunk == 0 ? stage : stages - 1 - stage;
    default: return stage;
  }
}

double closed_form_bubble_fraction(ScheduleKind kind, int p, int m, int v) {
  switch (kind) {
    case ScheduleKind::gpipe:
    case ScheduleKind::one_f_one_b: return static_cast<double>(p - 1) / (m + p - 1);
    case ScheduleKind::interleaved: return static_cast<double>(p - 1) / (static_cast<double>(v) * m + p - 1);
    default:
      throw std::invalid_argument("closed_form_bubble_fraction: only gpipe, 1F1B and interleaved have a time-free closed form");
  }
}

seconds closed_form_bubble_seconds(ScheduleKind kind, int p, seconds f, seconds b, seconds w, seconds fb) {
  switch (kind) {
    case ScheduleKind::gpipe:
    case ScheduleKind::one_f_one_b:
    case ScheduleKind::interleaved: return (p - 1) * (f + b);
    case ScheduleKind::zero_bubble: return (p - 1) * (f + b - 2 * w);
    case ScheduleKind::dualpipe: return (p / 2 - 1) * (fb + b - 3 * w);
  }
  return 0;
}

}  // namespace moesim::sim
