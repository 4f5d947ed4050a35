// Activation memory from the op graph against Korthikanti et al. 2022 ("Reducing Activation
// Recomputation in Large Transformer Models", arXiv 2205.05198, §4 and Table 2), and per-stage memory
// of whole layouts.
#include <catch2/catch.hpp>

#include "tests/support.h"

#include "costmodels/graph.h"
#include "costmodels/layout.h"
#include "costmodels/memory.h"
#include "sim/io/specs_io.h"
#include "sim/engine/simulate.h"

using namespace moesim;

namespace {

// A GPT-3-style layer: LayerNorm, MHA, GeLU FFN of 4h, dropout, as Korthikanti et al. assume.
ModelSpec korthikanti_gpt(double h, int a) {
  ModelSpec m;
  m.name = "korthikanti-gpt";
  m.layers = 1;
  m.hidden = h;
  m.vocab = 51200;
  m.seq_len = 2048;
  m.attention.type = AttentionType::mha;
  m.attention.heads = a;
  m.attention.kv_heads = a;
  m.attention.head_dim = static_cast<int>(h / a);
  m.ffn.intermediate = 4 * h;
  m.ffn.activation = Activation::gelu;
  m.dropout = true;
  return m;
}

graph::LayerGraph gpt_layer(const ModelSpec& m, double s, double b, int t, bool sp) {
  graph::GraphContext ctx;
  ctx.tokens = s * b;
  ctx.seq_len = s;
  ctx.tp = t;
  ctx.sequence_parallel = sp;
  ctx.flash_attention = false;
  ctx.dropout = true;
  return graph::build_layer(m, ctx, graph::LayerKind::dense);
}

using test::Run;
using test::simulate;
using test::make_layout;

Run pangu_6k() {
  Run r{io::load_model("pangu-ultra-moe-718b"),
        io::load_layout(std::string(MOESIM_SOURCE_DIR) + "/validation/layouts/pangu-ultra-moe-6k.json"),
        io::load_profile("ascend-910b2")};
  return r;
}


// Several layouts over dense and MoE models, schedules and hardware.
std::vector<std::pair<std::string, Run>> layouts() {
  std::vector<std::pair<std::string, Run>> out;
  out.push_back({"pangu-ultra-moe 6k", pangu_6k()});
  out.push_back({"deepseek-v3 1024 x h800",
                 {io::load_model("deepseek-v3-671b"), make_layout(1024, 2, 8, 64, 1024, 4096), io::load_profile("h800")}});
  {
    Run r{io::load_model("mixtral-8x7b"), make_layout(64, 2, 4, 8, 256, 4096), io::load_profile("h100-sxm")};
    r.layout.vpp = 2;
    r.layout.schedule = ScheduleKind::interleaved;
    out.push_back({"mixtral-8x7b interleaved", r});
  }
  {
    Run r{io::load_model("gpt3-175b"), make_layout(64, 8, 8, 1, 64, 2048), io::load_profile("a100-sxm-80g")};
    r.layout.etp = 8;
    r.layout.flash_attention = false;
    out.push_back({"gpt3 unfused attention", r});
  }
  out.push_back({"llama3-8b no pp", {io::load_model("llama3-8b"), make_layout(8, 1, 1, 1, 64, 8192), io::load_profile("h100-sxm")}});
  return out;
}

}  // namespace

TEST_CASE("memory: Korthikanti et al. 2022 activation memory per layer, exactly", "[memory][korthikanti]") {
  // GPT-3 175B shapes: h = 12288, a = 96, s = 2048; b = 1 and 4; 2-byte activations, 1-byte masks.
  const double h = 12288, s = 2048;
  const int a = 96;
  const ModelSpec m = korthikanti_gpt(h, a);
  for (double b : {1.0, 4.0}) {
    CAPTURE(b);
    const double sbh = s * b * h;
    {  // no parallelism: sbh(34 + 5as/h)
      const auto g = gpt_layer(m, s, b, 1, false);
      CHECK(g.saved_bytes(Recompute::none) == Approx(sbh * (34 + 5 * a * s / h)).epsilon(1e-14));
      // Selective recompute drops exactly the 5as^2b score tensors.
      CHECK(g.saved_bytes(Recompute::selective) == Approx(34 * sbh).epsilon(1e-14));
      // Full recompute keeps the layer input, 2sbh.
      CHECK(g.saved_bytes(Recompute::full) == 2 * sbh);
    }
    for (int t : {2, 4, 8}) {
      CAPTURE(t);
      {  // tensor parallel without SP: sbh(10 + 24/t + 5as/(ht))
        const auto g = gpt_layer(m, s, b, t, false);
        CHECK(g.saved_bytes(Recompute::none) == Approx(sbh * (10 + 24.0 / t + 5 * a * s / (h * t))).epsilon(1e-14));
        CHECK(g.saved_bytes(Recompute::selective) == Approx(sbh * (10 + 24.0 / t)).epsilon(1e-14));
        CHECK(g.saved_bytes(Recompute::full) == 2 * sbh);
      }
      {  // tensor + sequence parallel: sbh/t (34 + 5as/h)
        const auto g = gpt_layer(m, s, b, t, true);
        CHECK(g.saved_bytes(Recompute::none) == Approx(sbh / t * (34 + 5 * a * s / h)).epsilon(1e-14));
        // Selective + SP: 34 sbh / t (Korthikanti Table 2, the paper's recommended setting).
        CHECK(g.saved_bytes(Recompute::selective) == Approx(34 * sbh / t).epsilon(1e-14));
        // Full recompute: the graph documents the layer input as its SP shard, 2sbh/t.
        CHECK(g.layer_input_bytes == Approx(2 * sbh / t).epsilon(1e-14));
        CHECK(g.saved_bytes(Recompute::full) == Approx(2 * sbh / t).epsilon(1e-14));
      }
    }
  }
}

TEST_CASE("memory: Korthikanti recompute FLOPs: selective reruns only the attention core", "[memory][korthikanti]") {
  const ModelSpec m = korthikanti_gpt(12288, 96);
  const auto g = gpt_layer(m, 2048, 1, 8, true);
  flops core = 0;
  for (const auto& op : g.forward)
    if (op.kind == graph::OpKind::attention) core += op.flop_count;
  CHECK(core > 0);
  CHECK(g.recompute_flops(Recompute::none) == 0);
  CHECK(g.recompute_flops(Recompute::selective) == Approx(core).epsilon(1e-14));
  CHECK(g.recompute_flops(Recompute::full) == Approx(g.forward_flops()).epsilon(1e-14));
  // Korthikanti §5: selective recompute costs a few percent of the layer's forward FLOPs at this size.
  CHECK(g.recompute_flops(Recompute::selective) / g.forward_flops() < 0.05);
}

TEST_CASE("memory: Pangu Ultra MoE 6K layout is reported per stage", "[memory][pangu]") {
  const Run run = pangu_6k();
  const auto r = simulate(run);
  REQUIRE(r.memory.size() == 16);
  CHECK(r.capacity == run.hw.device.hbm_bytes);
  CHECK(r.capacity == 64.0 * gib);  // 64 GB devices (Atlas 800T A2)
  bytes peak = 0;
  for (size_t i = 0; i < r.memory.size(); ++i) {
    const auto& s = r.memory[i];
    CAPTURE(i);
    CHECK(s.stage == static_cast<int>(i));
    CHECK(s.total() == s.weights + s.gradients + s.optimizer + s.activations + s.buffers + s.reserve);
    for (bytes part : {s.weights, s.gradients, s.optimizer, s.activations, s.buffers, s.reserve}) CHECK(part >= 0);
    CHECK(s.activations > 0);
    peak = std::max(peak, s.total());
  }
  CHECK(r.peak_memory == peak);
  CHECK(r.fits == (peak <= r.capacity));

  // Static memory of a middle stage by hand. TP 8, PP 16, VPP 2, EP 32, ETP 1 on 6144 devices: dp = 48,
  // expert-dp = 6144 / (32 x 16) = 12. 61 layers over 32 chunks: 29 chunks of 2 and three of 1 (first
  // and last two), so a middle stage holds 2 + 2 = 4 MoE layers. Per MoE layer per device:
  //   MLA up-projections and W_O (1536x128x192 + 512x128x256 + 128x128x7680 = 180.4M) / 8 = 22.5M
  //   MLA down-projections + norms, replicated: 7680x1536 + 7680x576 + 2048 = 16.2M
  //   router 7680 x 256 = 2.0M; shared expert 3 x 7680 x 2048 / 8 = 5.9M           -> dense 46.6M
  //   routed experts 256/32 = 8 experts x 3 x 7680 x 2048 = 377.5M                  -> expert 377.5M
  // 4 layers: 186.5M dense + 1510M expert = 1.70B params. Bytes: weights 2 x 1.70B = 3.39 GB,
  // fp32 grads 4 x 1.70B = 6.79 GB, Adam 12 B sharded (distributed optimizer): 12 x 186.5M / 48 +
  // 12 x 1510M / 12 = 0.05 + 1.51 GB = 1.56 GB. Static ~ 11.7 GB (pangu.md §4.5 estimates ~11 GB).
  const auto& mid = r.memory[8];
  const bytes static_bytes = mid.weights + mid.gradients + mid.optimizer;
  INFO("middle stage static " << static_bytes / 1e9 << " GB (weights " << mid.weights / 1e9 << ", grads "
                              << mid.gradients / 1e9 << ", optimizer " << mid.optimizer / 1e9 << ")");
  CHECK(static_bytes > 11.0e9);
  CHECK(static_bytes < 12.5e9);
  CHECK(mid.params == Approx(4 * (46.6e6 + 377.5e6)).epsilon(0.005));
  CHECK(mid.weights == Approx(3.39e9).epsilon(0.01));
  CHECK(mid.optimizer == Approx(1.56e9).epsilon(0.01));
}

TEST_CASE("memory: more recompute never needs more memory", "[memory][monotone]") {
  for (auto [name, base] : layouts()) {
    CAPTURE(name);
    std::vector<std::vector<memory::StageMemory>> by_policy;
    for (Recompute p : {Recompute::none, Recompute::selective, Recompute::full}) {
      Run run = base;
      run.layout.recompute = p;
      by_policy.push_back(simulate(run).memory);
    }
    for (size_t s = 0; s < by_policy[0].size(); ++s) {
      CAPTURE(s);
      const double none = by_policy[0][s].total(), selective = by_policy[1][s].total(), full = by_policy[2][s].total();
      INFO("none " << none / 1e9 << " GB, selective " << selective / 1e9 << " GB, full " << full / 1e9 << " GB");
      CHECK(none >= selective);
      CHECK(selective >= full);
      CHECK(by_policy[0][s].activations >= by_policy[1][s].activations);
      CHECK(by_policy[1][s].activations >= by_policy[2][s].activations);
      // Full recompute strictly helps wherever a stage holds decoder layers.
      CHECK(full < none);
    }
  }
}

TEST_CASE("memory: full recompute holds the kept layer inputs plus one recomputed layer", "[memory]") {
  // Chen et al. 2016 §3: the peak of checkpointed training is the checkpoints plus the largest
  // recomputed segment. One stage of 32 dense layers, one microbatch in flight.
  Run run{io::load_model("llama3-8b"), make_layout(8, 1, 1, 1, 8, 4096), io::load_profile("h100-sxm")};
  run.layout.recompute = Recompute::full;
  REQUIRE_FALSE(complete_and_check_layout(run.model, run.layout));
  const sim::SimulationResult r = sim::simulate(run.model, run.layout, run.hw);
  REQUIRE(r.memory.size() == 1);
  const graph::ModelGraphs g = graph::build_model_graphs(run.model, graph::make_context(run.model, run.layout));
  const graph::LayerGraph& layer = g.decoder(run.model, 0);
  const ChunkContent& chunk = r.plan.at(0, 0);
  const bytes kept = memory::chunk_activation_bytes(run.model, run.layout, g, chunk, r.imbalance);
  const bytes recomputed = layer.saved_bytes(Recompute::none) - layer.saved_bytes(Recompute::full);
  CHECK(recomputed > 0);
  CHECK(r.memory[0].activations == Approx(kept).epsilon(1e-12));
  // The recomputed layer is live during a decoder op's backward, not during the loss's: at least the
  // recomputed layer sits in the transient buffers.
  CHECK(r.memory[0].buffers >= recomputed);
  run.layout.recompute = Recompute::selective;
  const sim::SimulationResult sel = sim::simulate(run.model, run.layout, run.hw);
  CHECK(r.memory[0].buffers >= sel.memory[0].buffers);
}

TEST_CASE("memory: distributed optimizer never needs more memory", "[memory][monotone]") {
  for (auto [name, base] : layouts()) {
    CAPTURE(name);
    Run with = base, without = base;
    with.layout.distributed_optimizer = true;
    without.layout.distributed_optimizer = false;
    const auto a = simulate(with).memory, b = simulate(without).memory;
    REQUIRE(a.size() == b.size());
    for (size_t s = 0; s < a.size(); ++s) {
      CAPTURE(s);
      CHECK(a[s].total() <= b[s].total());
      CHECK(a[s].optimizer <= b[s].optimizer);
      CHECK(a[s].weights == b[s].weights);
    }
  }
}

TEST_CASE("memory: ZeRO-3 shards weights and gradients too", "[memory][monotone]") {
  Run base{io::load_model("llama3-70b"), make_layout(64, 8, 1, 1, 64, 8192), io::load_profile("h100-sxm")};
  base.layout.etp = 8;
  Run zero3 = base;
  zero3.layout.zero_stage = 3;
  const auto a = simulate(base).memory, b = simulate(zero3).memory;
  REQUIRE(a.size() == 1);
  // dp = 8: weights and gradients shrink 8x, optimizer states are already sharded. FSDP2 keeps its root
  // unit gathered (embedding, final norm, output head, each split over TP 8): 7/8 of it on top.
  const ModelSpec& m = base.model;
  const double root = (2 * m.vocab * m.hidden) / 8 + m.hidden;
  CHECK(b[0].weights == Approx(a[0].weights / 8 + 2 * root * 7 / 8).epsilon(1e-12));
  CHECK(b[0].gradients == Approx(a[0].gradients / 8).epsilon(1e-12));
  CHECK(b[0].optimizer == Approx(a[0].optimizer).epsilon(1e-12));
}

TEST_CASE("unfused softmax: the torch path's passes over the scores, fp32 keeps its output", "[memory][attention]") {
  // Megatron's FusedScaleMaskSoftmax (megatron/core/fusions/fused_softmax.py): the fused kernel moves 4 bytes
  // per score; the torch path with --no-masked-softmax-fusion 4e + 1 (e = 2), or 4e + 1 + 12 with
  // --attention-softmax-in-fp32 (e = 4): 5 and 25 bytes more. The fp32 softmax output (4 bytes) is kept.
  Run run{io::load_model("llama3-8b"), make_layout(8, 1, 1, 1, 8, 2048), io::load_profile("ascend-910b2")};
  run.layout.flash_attention = false;
  REQUIRE_FALSE(complete_and_check_layout(run.model, run.layout));
  const auto scores = [&](bool fusion, bool fp32) {
    LayoutSpec l = run.layout;
    l.softmax_fusion = fusion;
    l.softmax_in_fp32 = fp32;
    const graph::ModelGraphs g = test::graphs_of(run.model, l);
    return graph::Op(test::op_named(g.decoder(run.model, 0), "attention_scores"));
  };
  const graph::Op fused = scores(true, false), bf16 = scores(false, false), fp32 = scores(false, true);
  const double per_byte = fused.saved_bytes / 2;  // no dropout in llama3-8b: 2 bytes per score kept
  CHECK(bf16.hbm_bytes == Approx(fused.hbm_bytes + 5 * per_byte));
  CHECK(fp32.hbm_bytes == Approx(fused.hbm_bytes + 25 * per_byte));
  CHECK(fp32.saved_bytes == Approx(fused.saved_bytes + 4 * per_byte));
  CHECK(bf16.saved_bytes == Approx(fused.saved_bytes));
  // More HBM traffic, more time.
  LayoutSpec slow = run.layout;
  slow.softmax_fusion = false;
  slow.softmax_in_fp32 = true;
  CHECK(sim::simulate(run.model, slow, run.hw).iteration_time > sim::simulate(run.model, run.layout, run.hw).iteration_time);
}

TEST_CASE("memory: the caching allocator's cache is a share of what the step allocates and frees", "[memory][allocator]") {
  Run base{io::load_model("llama3-70b"), make_layout(64, 8, 1, 1, 64, 8192), io::load_profile("h100-sxm")};
  base.layout.etp = 8;
  Run none = base;
  none.hw.device.allocator_cache_share = 0;
  Run cached = base;
  cached.hw.device.allocator_cache_share = 0.1;
  const auto a = simulate(none).memory, b = simulate(cached).memory;
  REQUIRE(a.size() == b.size());
  for (size_t s = 0; s < a.size(); ++s) {
    CAPTURE(s);
    // Without ZeRO-3 every state is allocated once: only activations and buffers churn.
    CHECK(b[s].per_step == Approx(b[s].activations + b[s].buffers).epsilon(1e-12));
    CHECK(a[s].allocator_cache == 0);
    CHECK(b[s].allocator_cache == Approx(0.1 * b[s].per_step).epsilon(1e-12));
    // The cache is reserved, never allocated, and the allocator frees it before an allocation fails:
    // neither the live tensors nor what the device must give move.
    CHECK(b[s].allocated() == Approx(a[s].allocated()).epsilon(1e-12));
    CHECK(b[s].reserved() == Approx(a[s].reserved() + b[s].allocator_cache).epsilon(1e-12));
    CHECK(b[s].total() == Approx(a[s].total()).epsilon(1e-12));
    CHECK(b[s].total() == Approx(b[s].allocated() + b[s].reserve).epsilon(1e-12));
  }
}

TEST_CASE("memory: ZeRO-3's unsharded copies are allocated and freed within the step", "[memory][allocator]") {
  // FSDP2 under PP without resharding after forward (torchtitan): the gathered BF16 weights and the
  // unsharded fp32 gradients live from a step's first forward / backward to its end.
  Run run{io::load_model("llama3-70b"), make_layout(64, 8, 2, 1, 64, 8192), io::load_profile("h100-sxm")};
  run.layout.etp = 8;
  run.layout.zero_stage = 3;
  run.layout.zero_reshard_after_forward = false;
  REQUIRE_FALSE(complete_and_check_layout(run.model, run.layout).has_value());  // derives dp for the shard group
  const auto mem = simulate(run).memory;
  REQUIRE(mem.size() == 2);
  for (const auto& sm : mem) {
    CAPTURE(sm.stage);
    const double shard = run.layout.zero_shard_group();
    const double unsharded = sm.weights + sm.gradients;
    CHECK(sm.per_step == Approx(sm.activations + sm.buffers + unsharded * (1 - 1 / shard)).epsilon(1e-9));
    CHECK(sm.allocator_cache == Approx(run.hw.device.allocator_cache_share * sm.per_step).epsilon(1e-12));
  }
}
