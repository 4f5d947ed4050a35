// Parallel attention + FFN blocks (GPT-J; PaLM §2 "Parallel Layers", arXiv 2204.02311; MegaScale §3.1,
// arXiv 2402.15627): one norm and one TP all-gather feed both branches, one TP reduce sums them, the
// FLOPs are those of the sequential block, and GPT-NeoX / Phi configs read as parallel.
#include <catch2/catch.hpp>

#include "costmodels/graph.h"
#include "costmodels/params.h"
#include "sim/io/specs_io.h"
#include "tests/support.h"

using namespace moesim;

namespace {

int count_ops(const graph::LayerGraph& g, graph::OpKind kind) {
  int n = 0;
  for (const graph::Op& op : g.forward) n += op.kind == kind ? 1 : 0;
  return n;
}

graph::LayerGraph dense_layer(const ModelSpec& m, int tp) {
  graph::GraphContext ctx;
  ctx.seq_len = 4096;
  ctx.tokens = 4096;
  ctx.tp = tp;
  ctx.sequence_parallel = true;
  return graph::build_layer(m, ctx, graph::LayerKind::dense);
}

}  // namespace

TEST_CASE("parallel block: one TP all-gather and one reduce per layer, same FLOPs, less saved", "[parallel]") {
  const ModelSpec sequential = io::load_model("llama3-70b");
  ModelSpec parallel = sequential;
  parallel.parallel_block = true;
  const graph::LayerGraph s = dense_layer(sequential, 8), p = dense_layer(parallel, 8);
  CHECK(count_ops(s, graph::OpKind::collective) == 4);  // all-gather + reduce-scatter per branch (SP)
  CHECK(count_ops(p, graph::OpKind::collective) == 2);  // MegaScale §3.1: one of each per layer
  CHECK(p.forward_flops() == Approx(s.forward_flops() - 4096.0 / 8 * 8192 * (5 + 1)).epsilon(1e-12));  // one norm, one residual fewer
  CHECK(p.model_forward_flops() == Approx(s.model_forward_flops()).epsilon(1e-12));
  // Saved: one normed input (2sbh / t under SP) and the FFN's copy of its input fewer.
  const double sbh_t = 4096.0 * 8192 / 8;
  CHECK(s.saved_bytes(Recompute::none) - p.saved_bytes(Recompute::none) == Approx(2 * sbh_t * 2).epsilon(1e-12));
  // One norm per layer: RMSNorm's h parameters fewer per layer.
  CHECK(count_params(sequential).total() - count_params(parallel).total() == Approx(80 * 8192.0));
}

TEST_CASE("parallel block: GPT-NeoX configs read use_parallel_residual; MoE models refuse it", "[parallel][hf]") {
  const io::json llama = io::read_json_file(std::string(MOESIM_SOURCE_DIR) + "/tests/data/hf/llama3-8b-config.json");
  CHECK_FALSE(io::parse_hf_config(llama, "llama/config.json").parallel_block);
  io::json neox = llama;
  neox["model_type"] = "gpt_neox";  // GPTNeoXConfig: use_parallel_residual defaults to true
  CHECK(io::parse_hf_config(neox, "neox/config.json").parallel_block);
  neox["use_parallel_residual"] = false;
  CHECK_FALSE(io::parse_hf_config(neox, "neox/config.json").parallel_block);
  io::json j = io::read_json_file(std::string(MOESIM_SOURCE_DIR) + "/models/mixtral-8x7b.json");
  j["parallel_block"] = true;
  test::check_names(test::input_error([&] { io::parse_model(j, "m.json"); }), "m.json", "parallel_block");
}
