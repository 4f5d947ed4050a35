#include "sim/engine/op_sim.h"

#include <algorithm>
#include <ostream>
#include <stdexcept>

#include <fmt/format.h>

#include "sim/engine/op_layers.h"
#include "sim/engine/op_measure.h"
#include "sim/engine/trace.h"

namespace moesim::sim {
namespace {

constexpr int compute_category = static_cast<int>(TaskCategory::compute);
constexpr int dp_category = static_cast<int>(TaskCategory::dp_comm);

struct StageStreams {
  StreamId compute = -1, tp = -1, ep = -1, cp = -1, pp = -1, dp = -1, copy = -1;
};

// One pass's chain of data dependencies: the next op waits for `last` and, where set, `also` (a
// second producer: a parameter gather, a collective piece).
struct Chain {
  TaskId first = no_task, last = no_task, also = no_task;
};

// Where a pass's tasks landed, for the dependencies between passes added once every stage is built.
struct PassTasks {
  TaskId first = no_task, last = no_task, out = no_task;  // out: the send to the next stage, else last
};

// The layers of one (stage, chunk) in forward order, with what each layer adds beside its ops.
struct ChunkLayers {
  std::vector<const LayerTable*> layers;
  DpSync bucket;               // one layer's share of the chunk's data-parallel sync
  seconds swap_copy = 0;       // host-link time of the activations one microbatch offloads
  seconds host_forward = 0, host_backward = 0;  // host issue time the device waits for, per pass
};

// One pass being expanded, walked in pass order (a backward walks layers and ops in reverse).
struct Cursor {
  const ChunkLayers* chunk = nullptr;
  PipelineTask pass;
  bool with_weight = false;  // a backward that also computes the weight gradients (no W pass)
  bool grads_ready = false;  // the stage's last gradient pass of this chunk: DP buckets follow its layers
  bool gathers = false;      // the stage's first forward of this chunk: layers wait for their parameters
  bool delay_wgrad = false;  // with_weight, and the weight gradients wait for the next EP collective or layer end
  int layer = 0, step = 0;
  Chain chain;
  std::vector<const OpStep*> delayed;  // weight gradients not yet issued (delay_wgrad)
  bool done() const { return layer >= static_cast<int>(chunk->layers.size()); }
};

class OpSimBuilder {
 public:
  OpSimBuilder(const ModelSpec& m, const LayoutSpec& l, const HardwareProfile& hw, const SimulationResult& base,
               const graph::ModelGraphs& graphs, OpLevelResult& out)
      : m_(m), l_(l), hw_(hw), base_(base), graphs_(graphs), out_(out), e_(out.engine), tables_(l, hw, base.imbalance),
        topology_(l.schedule, l.pp, base.plan.chunks), chunks_per_stage_(base.plan.chunks),
        index_(l.pp, base.plan.chunks, l.microbatches()), p2p_(p2p_time(l, hw, graphs)) {}

  // Every stage's tasks and the dependencies between passes; returns each stage's last task.
  std::vector<TaskId> build();

 private:
  TaskId add(StreamId stream, seconds duration, int category, const char* name, const PipelineTask& pass);
  TaskId add_after(Chain& chain, StreamId stream, seconds duration, int category, const char* name,
                   const PipelineTask& pass);
  void build_chunks();
  TaskId build_stage(int s);
  void gather_parameters(int s);
  void run_passes(int s, const StageSchedule& list);
  void emit_segment(Cursor& c);
  void emit_step(Cursor& c, const LayerTable& t, int i);
  void emit_pair(Cursor& c, const OpStep& comm, const OpStep& compute, bool comm_first);
  void layer_boundary(Cursor& c, const LayerTable& t, bool at_start, int layer);
  TaskId issue_delayed_wgrads(Cursor& c);
  void finish_pass(Cursor& c);
  void link_passes();
  StreamId lane_stream(OpLane lane) const;
  const StageStreams& st() const { return streams_[stage_]; }

  const ModelSpec& m_;
  const LayoutSpec& l_;
  const HardwareProfile& hw_;
  const SimulationResult& base_;
  const graph::ModelGraphs& graphs_;
  OpLevelResult& out_;
  Engine& e_;
  LayerTables tables_;
  PipelineTopology topology_;
  int chunks_per_stage_;
  PassIndex index_;  // slot of each scheduled pass in passes_
  std::vector<StageStreams> streams_;
  std::vector<ChunkLayers> chunks_;  // index stage * chunks + chunk
  std::vector<PassTasks> passes_;
  seconds p2p_ = 0;
  // Current stage.
  int stage_ = 0;
  bool per_stage_ = false;          // tasks added now belong to the stage, not to one pass
  TaskId last_dp_ = no_task;        // last task of its DP stream
  std::vector<TaskId> gathers_;      // parameter gather per (chunk, layer), flattened
  std::vector<int> gather_offset_;   // per chunk: its first entry in gathers_
  std::vector<TaskId> pair_pieces_;  // emit_pair's exchange steps or compute blocks (reused, not reallocated)
};

TaskId OpSimBuilder::add(StreamId stream, seconds duration, int category, const char* name, const PipelineTask& pass) {
  const int label = static_cast<int>(out_.labels.size());
  out_.labels.push_back(OpTaskLabel{name, pass, per_stage_});
  const TaskId t = e_.add_task(stream, duration, category, label);
  if (stream == st().dp) last_dp_ = t;
  return t;
}

TaskId OpSimBuilder::add_after(Chain& chain, StreamId stream, seconds duration, int category, const char* name,
                               const PipelineTask& pass) {
  const TaskId t = add(stream, duration, category, name, pass);
  for (const TaskId before : {chain.last, chain.also})
    if (before != no_task && e_.task(before).stream != stream) e_.add_dependency(before, t);
  if (chain.first == no_task) chain.first = t;
  chain.last = t;
  chain.also = no_task;
  return t;
}

StreamId OpSimBuilder::lane_stream(OpLane lane) const {
  switch (lane) {
    case OpLane::compute: return st().compute;
    case OpLane::tp: return st().tp;
    case OpLane::ep: return st().ep;
    case OpLane::cp: return st().cp;
  }
  return st().compute;
}

void OpSimBuilder::build_chunks() {
  for (int s = 0; s < l_.pp; ++s) {
    for (int c = 0; c < chunks_per_stage_; ++c) {
      const ChunkContent& cc = base_.plan.at(s, c);
      ChunkLayers ch;
      if (cc.embedding) ch.layers.push_back(&tables_.of(graphs_.embedding, Recompute::none));
      for (int i = 0; i < cc.layers; ++i)
        ch.layers.push_back(&tables_.of(graphs_.decoder(m_, cc.first_layer + i), l_.recompute_of_layer(i)));
      for (int i = 0; i < cc.mtp_layers; ++i) ch.layers.push_back(&tables_.of(graphs_.mtp, l_.recompute));
      if (cc.lm_head) ch.layers.push_back(&tables_.of(graphs_.lm_head, Recompute::none));
      // Megatron-LM's DDP reduces gradients in buckets as backward fills them (bucket_size in
      // DistributedDataParallelConfig); here one bucket per layer, an even share of the chunk's
      // parameters.
      const memory::DeviceParams p = memory::chunk_params(m_, l_, cc);
      const double n = static_cast<double>(std::max<std::size_t>(ch.layers.size(), 1));
      if (l_.zero_stage < 3) ch.bucket = dp_sync_times({p.dense / n, p.expert / n}, l_, hw_);
      // MindSpeed's activation swap offloads during the forward and prefetches during the backward
      // over the host link, on its own copy stream.
      if (l_.activation_swap > 0)
        ch.swap_copy = l_.activation_swap * memory::chunk_activation_bytes(m_, l_, graphs_, cc, base_.imbalance) /
                       hw_.device.host_link_bandwidth;
      // Eager host issue: the device waits where the host's issue time of the layers that do not sync
      // outlasts their compute (as simulate.cpp apply_overlap; host-synced layers wait per layer).
      seconds host_f = 0, host_b = 0, comp_f = 0, comp_b = 0;
      for (const LayerTable* t : ch.layers) {
        if (t->host_syncs) continue;
        host_f += t->issue.host_forward();
        host_b += t->issue.host_backward();
        comp_f += t->issue.compute_forward();
        comp_b += t->issue.compute_backward();
      }
      ch.host_forward = std::max(0.0, host_f - comp_f);
      ch.host_backward = std::max(0.0, host_b - comp_b);
      chunks_.push_back(std::move(ch));
    }
  }
}

std::vector<TaskId> OpSimBuilder::build() {
  build_chunks();
  const int mbs = l_.microbatches();
  const std::vector<StageSchedule> schedule = build_schedule(l_.schedule, l_.pp, mbs, chunks_per_stage_, l_.pipeline_runtime);
  std::size_t passes = 0;
  for (int s = 0; s < l_.pp; ++s)
    for (const PipelineTask& t : schedule[s]) index_.at(s, t) = static_cast<int>(passes++);
  passes_.assign(passes, PassTasks{});
  std::size_t ops = 0;
  for (const ChunkLayers& ch : chunks_)
    for (const LayerTable* t : ch.layers) ops += t->steps.size();
  // Forward and backward of every op per microbatch, chunked pairs in several pieces.
  e_.reserve(8 * ops * mbs, 8 * ops * mbs);
  out_.labels.reserve(8 * ops * mbs);
  std::vector<TaskId> stage_end;
  for (int s = 0; s < l_.pp; ++s) {
    stage_ = s;
    last_dp_ = no_task;
    const char* kinds[] = {"compute", "tp comm", "ep comm", "cp comm", "p2p send", "dp comm", "host copy"};
    StreamId ids[7];
    for (int k = 0; k < 7; ++k) ids[k] = e_.add_stream(fmt::format("stage {} {}", s, kinds[k]), s);
    streams_.push_back({ids[0], ids[1], ids[2], ids[3], ids[4], ids[5], ids[6]});
    gather_parameters(s);
    run_passes(s, schedule[s]);
    stage_end.push_back(build_stage(s));
  }
  link_passes();
  return stage_end;
}

// Megatron-LM's distributed optimizer with overlap_param_gather gathers the next iteration's
// parameters bucket by bucket ahead of the forward that uses them (the forward pre-hook waits for the
// bucket's all-gather, distributed/param_and_grad_buffer.py); in a steady state that is this
// iteration's gathers, issued at its start, each layer's first forward waiting for its own.
void OpSimBuilder::gather_parameters(int s) {
  gathers_.clear();
  gather_offset_.assign(chunks_per_stage_, 0);
  if (!l_.overlap.dp_param_gather || l_.zero_stage >= 3) return;
  per_stage_ = true;
  for (int c = 0; c < chunks_per_stage_; ++c) {
    const ChunkLayers& ch = chunks_[s * chunks_per_stage_ + c];
    gather_offset_[c] = static_cast<int>(gathers_.size());
    for (std::size_t i = 0; i < ch.layers.size(); ++i)
      gathers_.push_back(ch.bucket.gather() > 0
                             ? add(st().dp, ch.bucket.gather(), dp_category, "dp param all-gather", {0, c, Pass::forward})
                             : no_task);
  }
  per_stage_ = false;
}

// After the stage's last pass: gradient sync where backward did not overlap it, the optimizer step,
// and the parameter gather where the next forward does not overlap it.
TaskId OpSimBuilder::build_stage(int s) {
  const PipelineTask none{};
  per_stage_ = true;
  Chain tail;
  tail.last = last_dp_;
  seconds grads = 0, gather = 0;
  for (int c = 0; c < chunks_per_stage_; ++c) {
    const ChunkLayers& ch = chunks_[s * chunks_per_stage_ + c];
    grads += ch.bucket.grads() * static_cast<double>(ch.layers.size());
    gather += ch.bucket.gather() * static_cast<double>(ch.layers.size());
  }
  // Without overlap_grad_reduce Megatron-LM reduces every gradient after the last backward
  // (finish_grad_sync), so the reduction waits for the stage's compute stream: a zero-length marker
  // on it carries that dependency.
  const TaskId compute_end = add(st().compute, 0, compute_category, "end of backward", none);
  tail.also = compute_end;
  if (!l_.overlap.dp_grad_reduce && l_.zero_stage < 3 && grads > 0)
    add_after(tail, st().dp, grads, dp_category, "dp grad reduction", none);
  if (l_.zero_stage >= 3) {
    // ZeRO-3 keeps its pass-level treatment (op_timing.cpp zero3_exposed_time): not yet per operator.
    seconds fwd = 0, bwd = 0;
    for (int c = 0; c < chunks_per_stage_; ++c) {
      const ChunkCost& cc = base_.chunk_costs[s * chunks_per_stage_ + c];
      fwd += cc.forward.total();
      bwd += cc.backward.total() + cc.backward_weight.total();
    }
    const memory::DeviceParams p = memory::stage_params(m_, l_, base_.plan, s);
    add_after(tail, st().dp,
              zero3_exposed_time(p, placement(graph::GroupKind::dp, l_), placement(graph::GroupKind::expert_dp, l_), l_,
                                 hw_, fwd, bwd),
              dp_category, "zero-3 sync", none);
  }
  TaskId end = add_after(tail, st().compute, optimizer_step_time(memory::stage_params(m_, l_, base_.plan, s), l_, hw_),
                         op_category_optimizer, "optimizer step", none);
  if (!l_.overlap.dp_param_gather && l_.zero_stage < 3 && gather > 0)
    end = add_after(tail, st().dp, gather, dp_category, "dp param all-gather", none);
  per_stage_ = false;
  return end;
}

void OpSimBuilder::run_passes(int s, const StageSchedule& list) {
  const int n = static_cast<int>(list.size());
  // Per chunk: the first forward (waits for gathered parameters) and the last gradient pass, whose
  // layers hand their buckets to the DP stream as they finish (Megatron-LM reduces gradients in the
  // last microbatch's backward only: no_sync for the others).
  std::vector<int> first_forward(chunks_per_stage_, -1), last_grads(chunks_per_stage_, -1);
  const auto has_w = [&](const PipelineTask& t) {
    return index_.find(s, t.chunk, t.microbatch, Pass::backward_weight) != -1;
  };
  for (int i = 0; i < n; ++i) {
    const PipelineTask& t = list[i];
    if (t.pass == Pass::forward && first_forward[t.chunk] == -1) first_forward[t.chunk] = i;
    if (t.pass == Pass::backward_weight || (t.pass == Pass::backward && !has_w(t))) last_grads[t.chunk] = i;
  }
  const auto cursor = [&](int i) {
    const PipelineTask& t = list[i];
    Cursor c;
    c.chunk = &chunks_[s * chunks_per_stage_ + t.chunk];
    c.pass = t;
    c.with_weight = t.pass == Pass::backward && !has_w(t);
    c.delay_wgrad = c.with_weight && l_.overlap.delay_wgrad;
    c.grads_ready = l_.overlap.dp_grad_reduce && l_.zero_stage < 3 && last_grads[t.chunk] == i;
    c.gathers = !gathers_.empty() && first_forward[t.chunk] == i;
    return c;
  };
  for (int i = 0; i < n; ++i) {
    // EP all-to-all overlap runs two passes of different microbatches together, each one's
    // communication under the other's compute on its own stream, their ops alternating on the compute
    // stream at their EP collectives. DualPipe overlaps the forward&backward chunks its schedule marks
    // (DeepSeek-V3 report §3.2.1). Megatron-Core's combined 1F1B (--overlap-moe-expert-parallel-comm)
    // merges each steady-state backward with the next forward ("the forward of one microbatch runs in
    // parallel with the backward of another", core.pipeline_parallel.combined_1f1b), without pipelining
    // or with virtual stages only ("If PP is used, VPP must be set"): with one chunk per stage, a pair
    // releases its forward's output at its end, and the next stage's pair that sends this pair's
    // gradient waits for that output, so the steady state would take two pair times per microbatch.
    const bool dualpipe_pair = i + 1 < n && list[i].fused_with_next;
    const bool combined_pair = i + 1 < n && combines_passes(l_, chunks_per_stage_) && list[i].pass == Pass::backward &&
                               list[i + 1].pass == Pass::forward && list[i].microbatch != list[i + 1].microbatch;
    const bool paired = dualpipe_pair || combined_pair;
    Cursor a = cursor(i);
    if (!paired) {
      while (!a.done()) emit_segment(a);
      finish_pass(a);
      continue;
    }
    Cursor b = cursor(++i);
    // The backward leads: its first segment issues the combine's backward, under which the forward's
    // attention runs, and from there each pass's compute runs under the other's all-to-all (DeepSeek-V3
    // report Figure 4: combine-backward beside attention, MLP-backward beside dispatch, dispatch-backward
    // beside MLP, attention-backward beside combine). A DualPipe pair lists its forward first.
    if (a.pass.pass == Pass::forward) std::swap(a, b);
    while (!a.done() || !b.done()) {
      if (!a.done()) emit_segment(a);
      if (!b.done()) emit_segment(b);
    }
    finish_pass(a);
    finish_pass(b);
  }
}

// Emits ops of the pass until one of its EP collectives has been issued (where a paired pass takes
// over the compute stream), a layer without EP collectives (dense, or embedding / head) has ended, or the
// pass ends. A paired pass's dense layers so run one by one under the other pass's all-to-all, as
// DualPipe's overlapped chunk runs its partner's attention and MLP beside each dispatch and combine
// (DeepSeek-V3 report §3.2.1, Figure 4), instead of all before the partner's first collective.
void OpSimBuilder::emit_segment(Cursor& c) {
  const auto& layers = c.chunk->layers;
  const bool reverse = c.pass.pass != Pass::forward;
  const int count = static_cast<int>(layers.size());
  while (!c.done()) {
    const int li = reverse ? count - 1 - c.layer : c.layer;
    const LayerTable& t = *layers[li];
    const int n = static_cast<int>(t.steps.size());
    if (c.step == 0) layer_boundary(c, t, true, li);
    bool ep = false;
    if (c.step < n) {
      const int i = reverse ? n - 1 - c.step : c.step;
      emit_step(c, t, i);
      ep = t.steps[i].lane == OpLane::ep && c.pass.pass != Pass::backward_weight;
      ++c.step;
    }
    if (c.step >= n) {
      layer_boundary(c, t, false, li);
      ++c.layer;
      c.step = 0;
      if (!t.ep_collectives) return;
    }
    if (ep) return;
  }
}

void OpSimBuilder::layer_boundary(Cursor& c, const LayerTable& t, bool at_start, int layer) {
  const Pass p = c.pass.pass;
  if (at_start) {
    if (c.layer == 0 && p != Pass::backward_weight) {
      const seconds host = p == Pass::forward ? c.chunk->host_forward : c.chunk->host_backward;
      if (host > 0) add_after(c.chain, st().compute, host, op_category_host, "host issue", c.pass);
    }
    if (c.gathers && p == Pass::forward) c.chain.also = gathers_[gather_offset_[c.pass.chunk] + layer];
    return;
  }
  // A dropless MoE layer's host waits for the device's token counts, then issues the rest: where its
  // issue time outlasts the layer's compute, the device waits (simulate.cpp apply_overlap).
  if (t.host_syncs && p != Pass::backward_weight) {
    const seconds wait = p == Pass::forward ? t.issue.forward_host_wait() : t.issue.backward_host_wait();
    if (wait > 0) add_after(c.chain, st().compute, wait, op_category_host, "host sync wait", c.pass);
  }
  const TaskId last_wgrad = issue_delayed_wgrads(c);
  if (c.grads_ready && (p == Pass::backward_weight || c.with_weight) && c.chunk->bucket.grads() > 0) {
    const TaskId bucket = add(st().dp, c.chunk->bucket.grads(), dp_category, "dp grad bucket", c.pass);
    for (const TaskId before : {c.chain.last, c.chain.also, last_wgrad})
      if (before != no_task) e_.add_dependency(before, bucket);
  }
}

// Megatron-Core's delay_wgrad_compute (combined 1F1B, core/models/common/model_chunk_schedule_plan.py
// TransformerLayerSchedulePlan.run): a layer's backward computes the MLP's data gradients, then issues
// the MLP's weight gradients (mlp.backward_dw) on the compute stream and the dispatch backward
// all-to-all on the communication stream, which waits only for the data gradients; the attention's
// weight gradients follow its data gradients the same way (attn.backward_dw). So the delayed weight
// gradients go on the compute stream off the data-dependency chain, where the next EP collective or
// the layer's end is reached. Returns the last of them (no_task when none).
TaskId OpSimBuilder::issue_delayed_wgrads(Cursor& c) {
  TaskId last = no_task;
  for (const OpStep* g : c.delayed) {
    Chain beside = c.chain;  // after the data gradients so far, without the chain waiting for it
    last = add_after(beside, st().compute, g->weight, compute_category, g->name, c.pass);
    out_.labels.back().weight_gradient = true;
  }
  c.delayed.clear();
  return last;
}

void OpSimBuilder::emit_step(Cursor& c, const LayerTable& t, int i) {
  const OpStep& s = t.steps[i];
  const Pass p = c.pass.pass;
  const auto weight_gradient = [&](const OpStep& g) {
    if (!g.gemm || g.weight <= 0) return;
    if (c.delay_wgrad) {
      c.delayed.push_back(&g);
      return;
    }
    add_after(c.chain, st().compute, g.weight, compute_category, g.name, c.pass);
    out_.labels.back().weight_gradient = true;
  };
  if (p == Pass::backward_weight) {
    weight_gradient(s);
    return;
  }
  const bool forward = p == Pass::forward;
  if (s.partner != -1) {
    // The pair is emitted at whichever of its two ops the pass reaches first.
    if (forward != (i < s.partner)) return;
    const bool is_comm = s.lane != OpLane::compute;
    const OpStep& comm = is_comm ? s : t.steps[s.partner];
    const OpStep& compute = is_comm ? t.steps[s.partner] : s;
    emit_pair(c, comm, compute, forward ? comm.comm_first_forward : comm.comm_first_backward);
    if (c.with_weight) weight_gradient(compute);
    return;
  }
  const seconds d = forward ? s.forward : s.backward;
  if (s.lane == OpLane::ep && !forward) issue_delayed_wgrads(c);
  switch (s.lane) {
    case OpLane::compute: add_after(c.chain, st().compute, d, compute_category, s.name, c.pass); break;
    // A TP collective that is not chunked blocks the compute stream (Megatron-LM runs it on the
    // default stream between the GEMMs; HCCL without MC2 likewise).
    case OpLane::tp: add_after(c.chain, st().compute, d, static_cast<int>(TaskCategory::tp_comm), s.name, c.pass); break;
    case OpLane::ep: add_after(c.chain, st().ep, d, static_cast<int>(TaskCategory::ep_comm), s.name, c.pass); break;
    case OpLane::cp: add_after(c.chain, st().cp, d, op_category_cp, s.name, c.pass); break;
  }
  if (c.with_weight) weight_gradient(s);
}

// A collective chunked against its partner in k pieces (op_layers.cpp): ring collectives and ring
// attention take k - 1 exchange steps while the partner runs in k blocks, the local block needing no
// exchange. Comm first (all-gather + GEMM, ring attention): block j + 1 waits for exchange j. Compute
// first (GEMM + reduce-scatter): exchange j sends block j's partial result while block j + 1 runs; the
// last block is the rank's own share, to which the last exchange's received partial sum is added, so
// what follows waits for both (Transformer Engine's ring-exchange reduce-scatter overlap computes the
// chunk for the farthest rank first and its own last: the exchanges never wait for the local block).
void OpSimBuilder::emit_pair(Cursor& c, const OpStep& comm, const OpStep& compute, bool comm_first) {
  const bool forward = c.pass.pass == Pass::forward;
  const int k = std::max(comm.chunks, 2);
  const seconds piece = (forward ? comm.forward : comm.backward) / (k - 1);
  const seconds block = (forward ? compute.forward : compute.backward) / k;
  const StreamId stream = lane_stream(comm.lane);
  const int category = comm.lane == OpLane::cp ? op_category_cp : static_cast<int>(TaskCategory::tp_comm);
  const auto mark = [&](int part) { out_.labels.back().chunk_part = part; };
  Chain start = c.chain;
  std::vector<TaskId>& pieces = pair_pieces_;
  pieces.clear();
  if (comm_first) {
    Chain exchanges = start;
    for (int j = 0; j + 1 < k; ++j) {
      pieces.push_back(add_after(exchanges, stream, piece, category, comm.name, c.pass));
      mark(j);
    }
    for (int j = 0; j < k; ++j) {
      if (j > 0) c.chain.also = pieces[j - 1];
      add_after(c.chain, st().compute, block, compute_category, compute.name, c.pass);
      mark(j);
    }
    return;
  }
  for (int j = 0; j < k; ++j) {
    pieces.push_back(add_after(c.chain, st().compute, block, compute_category, compute.name, c.pass));
    mark(j);
  }
  Chain exchanges;
  for (int j = 0; j + 1 < k; ++j) {
    exchanges.also = pieces[j];
    add_after(exchanges, stream, piece, category, comm.name, c.pass);
    mark(j);
  }
  c.chain.last = exchanges.last;
  c.chain.also = pieces.back();
}

void OpSimBuilder::finish_pass(Cursor& c) {
  const Pass p = c.pass.pass;
  if (c.chunk->swap_copy > 0 && p != Pass::backward_weight && c.chain.first != no_task) {
    // The copy starts with the pass and the pass cannot end before it (its buffers are in use).
    Chain copy{no_task, c.chain.first, no_task};
    c.chain.also = add_after(copy, st().copy, c.chunk->swap_copy, op_category_copy,
                             p == Pass::forward ? "activation offload" : "activation prefetch", c.pass);
    add_after(c.chain, st().compute, 0, op_category_copy, "wait for swap", c.pass);
  }
  PassTasks& rec = passes_[index_.at(stage_, c.pass)];
  rec.first = c.chain.first;
  rec.last = rec.out = c.chain.last;
  if (topology_.consumer_stage(stage_, c.pass) == -1 || rec.last == no_task) return;
  // Megatron-LM's p2p communication: with overlap_p2p_comm the send runs asynchronously beside the next
  // pass; without it the stage waits for it (batched isend/irecv then wait).
  if (l_.overlap.pp_p2p) rec.out = add_after(c.chain, st().pp, p2p_, static_cast<int>(TaskCategory::pp_comm), "p2p send", c.pass);
  else rec.out = add_after(c.chain, st().compute, p2p_, static_cast<int>(TaskCategory::pp_comm), "p2p send", c.pass);
}

// A forward waits for the forward of the previous position (its input activations), a backward for
// its own forward and the backward of the next position (the output gradient), a W pass for its B
// (as sim/engine/pipeline.cpp links passes).
void OpSimBuilder::link_passes() {
  const int mbs = l_.microbatches();
  for (int s = 0; s < l_.pp; ++s)
    for (int c = 0; c < chunks_per_stage_; ++c)
      for (int mb = 0; mb < mbs; ++mb)
        for (const Pass pass : {Pass::forward, Pass::backward, Pass::backward_weight}) {
          const int slot = index_.find(s, c, mb, pass);
          if (slot == -1) continue;
          const PassTasks& to = passes_[slot];
          const int q = topology_.position(s, c), dir = topology_.direction(c);
          const auto link = [&](int from_stage, int from_chunk, Pass from_pass) {
            const int from = index_.find(from_stage, from_chunk, mb, from_pass);
            if (from == -1) throw std::logic_error("op-level: schedule is missing a pass another pass depends on");
            const PassTasks& f = passes_[from];
            const TaskId before = from_stage == s ? f.last : f.out;
            if (before != no_task && to.first != no_task && before != to.first) e_.add_dependency(before, to.first);
          };
          if (pass == Pass::forward && q > 0) {
            const auto [ps, pc] = topology_.at(dir, q - 1);
            link(ps, pc, Pass::forward);
          } else if (pass == Pass::backward) {
            link(s, c, Pass::forward);
            if (q + 1 < topology_.positions()) {
              const auto [ns, nc] = topology_.at(dir, q + 1);
              link(ns, nc, Pass::backward);
            }
          } else if (pass == Pass::backward_weight) {
            link(s, c, Pass::backward);
          }
        }
}

}  // namespace

bool combines_passes(const LayoutSpec& l, int chunks_per_stage) {
  return l.overlap.ep_all_to_all && l.schedule != ScheduleKind::dualpipe && (l.pp == 1 || chunks_per_stage > 1);
}

OpLevelResult simulate_op_level(const ModelSpec& m, const LayoutSpec& l, const HardwareProfile& hw) {
  OpLevelResult out;
  out.pass_level = simulate(m, l, hw);
  out.result = out.pass_level;
  SimulationResult& r = out.result;
  const graph::ModelGraphs graphs = graph::build_model_graphs(m, graph::make_context(m, l, hw.device));
  const std::vector<TaskId> stage_end = OpSimBuilder(m, l, hw, r, graphs, out).build();
  Engine& e = out.engine;
  e.run();
  const CommSlowdown slowdown{hw.device.comm_compute_slowdown,
                              flex_dispatch_slowdown(l, hw.device)};
  if (slow_compute_beside_comm(e, slowdown)) e.run();

  r.iteration_time = 0;
  for (int s = 0; s < l.pp; ++s) {
    if (e.finish(stage_end[s]) > r.iteration_time) {
      r.iteration_time = e.finish(stage_end[s]);
      r.critical_stage = s;
    }
  }
  r.breakdown = stage_breakdown(e, r.critical_stage, r.iteration_time);
  r.bubble_fraction = r.iteration_time > 0 ? r.breakdown.bubble / r.iteration_time : 0;
  // Busy share of each stage's compute stream (the first stream of its group).
  r.stage_busy_fraction.assign(l.pp, 0.0);
  for (StreamId st = e.stream_count() - 1; st >= 0; --st)
    if (r.iteration_time > 0) r.stage_busy_fraction[e.stream_group(st)] = e.busy(st) / r.iteration_time;
  set_throughput(r, l, hw);
  return out;
}

TraceNames op_trace_names(const OpLevelResult& result) {
  static constexpr char letter[] = {'F', 'B', 'W'};
  TraceNames names;
  names.task = [&](TaskId t) {
    const OpTaskLabel& label = result.labels[result.engine.task(t).label];
    if (label.per_stage) return std::string(label.op);
    std::string name = fmt::format("{}{}.c{} {}", letter[static_cast<int>(label.pass.pass)], label.pass.microbatch,
                                   label.pass.chunk, label.op);
    if (label.weight_gradient) name += " wgrad";
    if (label.chunk_part >= 0) name += fmt::format(" [{}]", label.chunk_part);
    return name;
  };
  names.category = [](int c) { return op_category_name(c); };
  return names;
}

void write_op_trace(std::ostream& out, const OpLevelResult& result) { write_chrome_trace(out, result.engine, op_trace_names(result)); }

}  // namespace moesim::sim
