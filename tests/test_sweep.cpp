#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "costmodels/graph.h"
#include "costmodels/layout.h"
#include "costmodels/params.h"
#include "sim/io/input_error.h"
#include "sim/io/json_reader.h"
#include "sim/engine/simulate.h"
#include "sim/io/sweep_results.h"
#include "sim/search/sweep.h"
#include "tests/files.h"
#include "tests/support.h"

using namespace moesim;
using nlohmann::json;

namespace {

const std::string small_spec = std::string(MOESIM_SOURCE_DIR) + "/tests/data/sweep-small.json";

json small_json() { return io::read_json_file(small_spec); }

std::string temp_path(const std::string& name) { return test::temp_path("moesim-test-sweep", name); }

using test::slurp;

std::string run(const sweep::SweepSpec& spec, int jobs, const std::string& name, bool resume = false) {
  sweep::RunOptions o;
  o.jobs = jobs;
  o.out_path = temp_path(name);
  o.resume = resume;
  sweep::run_sweep(spec, o);
  return o.out_path;
}

}  // namespace

TEST_CASE("sweep points are indexed in mixed radix, last axis fastest", "[sweep]") {
  const sweep::SweepSpec spec = sweep::load_spec(small_spec);
  REQUIRE(sweep::point_count(spec) == 8);
  CHECK(sweep::point_values(spec, 0) == std::vector<int>{8, 2048, 8});
  CHECK(sweep::point_values(spec, 1) == std::vector<int>{8, 2048, 16});
  CHECK(sweep::point_values(spec, 6) == std::vector<int>{16, 4096, 8});
}

TEST_CASE("changing hidden keeps head_dim (GQA groups too); MLA keeps its heads", "[sweep]") {
  const sweep::SweepSpec spec = sweep::load_spec(small_spec);
  const auto m = sweep::point_model(spec, {8, 2048, 8});
  REQUIRE(m.model);
  CHECK(m.model->attention.heads == 16);
  CHECK(m.model->attention.kv_heads == 4);
  CHECK(m.model->attention.head_dim == 128);

  json j = small_json();
  j["base_model"] = "pangu-ultra-moe-718b";
  j["model_axes"] = {{"hidden", {8192}}};
  const sweep::SweepSpec mla = sweep::parse_spec(j, small_spec);
  const auto p = sweep::point_model(mla, sweep::point_values(mla, 0));
  REQUIRE(p.model);
  CHECK(p.model->hidden == 8192);
  CHECK(p.model->attention.heads == 128);

  j["base_model"] = "mixtral-8x7b";
  j["model_axes"] = {{"hidden", {2000}}};
  const sweep::SweepSpec odd = sweep::parse_spec(j, small_spec);
  CHECK(sweep::evaluate_point(odd, 0).reason == "hidden 2000 is not a multiple of head_dim 128");

  // DeepSeek-V3's 8 router groups (4 chosen) stay: 100 experts do not split into them, and with 8
  // experts the 4 chosen groups of 1 cannot hold top_k 8.
  j["base_model"] = "deepseek-v3-671b";
  j["model_axes"] = {{"experts", {64, 100, 8}}};
  const sweep::SweepSpec grouped = sweep::parse_spec(j, small_spec);
  REQUIRE(sweep::point_model(grouped, sweep::point_values(grouped, 0)).model);
  CHECK(sweep::evaluate_point(grouped, 1).reason == "100 experts do not split into the base model's 8 router groups");
  CHECK(sweep::evaluate_point(grouped, 2).reason == "top_k 8 exceeds the 4 experts of 4 of 8 router groups");
}

TEST_CASE("sweep results are byte-identical whatever the number of jobs", "[sweep]") {
  const sweep::SweepSpec spec = sweep::load_spec(small_spec);
  const std::string one = run(spec, 1, "jobs1.jsonl"), two = run(spec, 2, "jobs2.jsonl"), four = run(spec, 4, "jobs4.jsonl");
  const std::string a = slurp(one);
  CHECK(std::count(a.begin(), a.end(), '\n') == 8);
  CHECK(a == slurp(two));
  CHECK(a == slurp(four));
  CHECK(a.find("time\"") == std::string::npos);  // no wall-clock fields
  for (const auto& p : {one, two, four}) std::filesystem::remove(p);
}

TEST_CASE("resume after a truncated results file rewrites the cut line and appends the rest", "[sweep]") {
  const sweep::SweepSpec spec = sweep::load_spec(small_spec);
  const std::string full_path = run(spec, 2, "full.jsonl");
  const std::string full = slurp(full_path);
  for (size_t cut : {size_t{0}, full.size() / 2, full.find('\n') + 1, full.size() - 1}) {
    const std::string path = temp_path("cut.jsonl");
    std::ofstream(path, std::ios::binary) << full.substr(0, cut);
    sweep::RunOptions o;
    o.jobs = 2;
    o.out_path = path;
    o.resume = true;
    sweep::RunStats stats;
    const sweep::Summary s = sweep::run_sweep(spec, o, &stats);
    CHECK(slurp(path) == full);
    CHECK(stats.resumed + stats.evaluated == 8);
    CHECK(s.ok + s.infeasible + s.no_fit == 8);
    std::filesystem::remove(path);
  }
  // A damaged line in the middle is not silently replaced.
  const std::string bad = temp_path("bad.jsonl");
  std::ofstream(bad, std::ios::binary) << "{\"index\": 0, \"status\": \"ok\"\nnot json\n";
  sweep::RunOptions o;
  o.out_path = bad;
  o.resume = true;
  CHECK_THAT(test::input_error([&] { sweep::run_sweep(spec, o); }), Catch::Contains("line 1") && Catch::Contains("cannot resume"));
  // An ok line without its time breakdown is refused by resume and by report alike, naming the field.
  std::istringstream lines(full);
  std::string first_ok;
  for (std::string l; std::getline(lines, l);)
    if (json::parse(l).at("status") == "ok") {
      first_ok = l;
      break;
    }
  REQUIRE_FALSE(first_ok.empty());
  json damaged = json::parse(first_ok);
  damaged.erase("breakdown");
  std::ofstream(bad, std::ios::binary) << damaged.dump() << "\n";
  CHECK_THAT(test::input_error([&] { sweep::run_sweep(spec, o); }),
             Catch::Contains("line 1: field 'breakdown'") && Catch::Contains("cannot resume"));
  CHECK_THAT(test::input_error([&] { io::read_sweep_results(bad); }), Catch::Contains("line 1: field 'breakdown'"));
  std::filesystem::remove(bad);
  std::filesystem::remove(full_path);
}

TEST_CASE("parameter constraints mark points outside the ranges infeasible", "[sweep]") {
  json j = small_json();
  j["constraints"] = {{"total_params", {{"min", 10e9}, {"max", 23e9}}}, {"active_params", {{"max", 4e9}}}};
  const sweep::SweepSpec spec = sweep::parse_spec(j, small_spec);
  int ok = 0;
  for (std::uint64_t i = 0; i < sweep::point_count(spec); ++i) {
    const sweep::PointResult r = sweep::evaluate_point(spec, i);
    REQUIRE(r.model);
    const double total = r.params.total(), active = r.params.active();
    const bool inside = total >= 10e9 && total <= 23e9 && active <= 4e9;
    CHECK((r.status != "infeasible") == inside);
    if (!inside) CHECK_THAT(r.reason, Catch::Contains("params") && (Catch::Contains("below min") || Catch::Contains("above max")));
    ok += r.status == "ok";
  }
  CHECK(ok == 4);  // points 1, 2, 4 and 5: 11.5-22.8B total, at most 3.3B active
}

TEST_CASE("pruning never changes the best layout", "[sweep]") {
  // A tight memory budget makes the static-memory bound prune; the best must match a full search.
  for (double margin : {0.1, 0.6}) {
    json j = small_json();
    j["constraints"]["memory_margin"] = margin;
    const sweep::SweepSpec spec = sweep::parse_spec(j, small_spec);
    int pruned = 0;
    for (std::uint64_t i = 0; i < sweep::point_count(spec); ++i) {
      const sweep::PointResult fast = sweep::evaluate_point(spec, i, {.prune = true, .emit_args = std::nullopt});
      const sweep::PointResult full = sweep::evaluate_point(spec, i, {.prune = false, .emit_args = std::nullopt});
      CHECK(fast.status == full.status);
      if (fast.status == "ok" && full.status == "ok") {
        CHECK(sweep::result_json(spec, fast)["layout"] == sweep::result_json(spec, full)["layout"]);
        CHECK(fast.iteration_time == full.iteration_time);
      }
      CHECK(full.layouts_pruned == 0);
      CHECK(fast.layouts_evaluated + fast.layouts_pruned <= full.layouts_evaluated + full.layouts_invalid);
      pruned += fast.layouts_pruned;
    }
    if (margin > 0.5) CHECK(pruned > 0);
  }
}

TEST_CASE("the pruning bounds never exceed the simulation", "[sweep]") {
  for (const std::string& base : {std::string("mixtral-8x7b"), std::string("pangu-ultra-moe-718b")}) {
    json j = small_json();
    j["base_model"] = base;
    j["model_axes"] = {{"layers", {8}}};
    const sweep::SweepSpec spec = sweep::parse_spec(j, small_spec);
    const auto m = sweep::point_model(spec, sweep::point_values(spec, 0));
    REQUIRE(m.model);
    const sweep::Candidates c = sweep::candidate_layouts(spec, *m.model);
    REQUIRE(!c.valid.empty());
    for (const LayoutSpec& l : c.valid) {
      const sim::SimulationResult r = sim::simulate(*m.model, l, spec.hw);
      CHECK(sweep::static_memory_lower_bound(*m.model, l, spec.hw) <= r.peak_memory);
      CHECK(sweep::time_lower_bound(*m.model, l, spec.hw) <= r.iteration_time);
    }
  }
}

TEST_CASE("a PreScreen reusing graphs across layouts gives each layout's own bounds", "[sweep]") {
  // The Pangu sweep's candidates share graph contexts (pp and vpp do not change them) and differ in
  // them (micro-batch, EP): every cached answer must equal a fresh computation, in any order.
  const sweep::SweepSpec spec = sweep::load_spec(std::string(MOESIM_SOURCE_DIR) + "/sweeps/pangu-ultra-moe.json");
  const sweep::Candidates c = sweep::candidate_layouts(spec, spec.base_model);
  REQUIRE(c.valid.size() > 4);
  sweep::PreScreen forward(spec.base_model, spec.hw), backward(spec.base_model, spec.hw);
  for (std::size_t i = 0; i < c.valid.size(); ++i) {
    const LayoutSpec& l = c.valid[i];
    const LayoutSpec& r = c.valid[c.valid.size() - 1 - i];
    CHECK(forward.static_memory_lower_bound(l) == sweep::static_memory_lower_bound(spec.base_model, l, spec.hw));
    CHECK(forward.time_lower_bound(l) == sweep::time_lower_bound(spec.base_model, l, spec.hw));
    CHECK(backward.static_memory_lower_bound(r) == sweep::static_memory_lower_bound(spec.base_model, r, spec.hw));
    CHECK(backward.time_lower_bound(r) == sweep::time_lower_bound(spec.base_model, r, spec.hw));
  }
}

TEST_CASE("sweep spec errors name the file and the field", "[sweep]") {
  auto error_for = [](json j) { return test::input_error([&] { sweep::parse_spec(j, "spec.json"); }); };
  json j = small_json();
  j["model_axis"] = json::object();
  CHECK_THAT(error_for(j), Catch::StartsWith("spec.json: field 'model_axis'"));
  j = small_json();
  j["model_axes"]["layers"] = {{"from", 8}, {"to", 4}};
  CHECK_THAT(error_for(j), Catch::StartsWith("spec.json: field 'model_axes.layers.to'"));
  j = small_json();
  j["model_axes"]["top_k"] = {0};
  CHECK_THAT(error_for(j), Catch::StartsWith("spec.json: field 'model_axes.top_k'"));
  j = small_json();
  j["global_batch_tokens"] = 1000;
  CHECK_THAT(error_for(j), Catch::StartsWith("spec.json: field 'global_batch_tokens'"));
  j = small_json();
  j["layout_fixed"] = {{"devices", 8}};
  CHECK_THAT(error_for(j), Catch::StartsWith("spec.json: field 'layout_fixed.devices'"));
  j = small_json();
  j["layout_fixed"] = {{"tp", 2}};
  CHECK_THAT(error_for(j), Catch::StartsWith("spec.json: field 'layout_axes.tp'"));
  j = small_json();
  j["layout_axes"]["recompute"] = {"most"};
  CHECK_THAT(error_for(j), Catch::Contains("layout_axes.recompute"));
  j = small_json();
  j["objective"] = "time_to_train";
  CHECK_THAT(error_for(j), Catch::StartsWith("spec.json: field 'train_tokens'"));
  j = small_json();
  j["base_model"] = "llama3-8b";
  CHECK_THAT(error_for(j), Catch::StartsWith("spec.json: field 'model_axes.experts'"));
  j = small_json();
  j["constraints"]["memory_margin"] = 1.5;
  CHECK_THAT(error_for(j), Catch::StartsWith("spec.json: field 'constraints.memory_margin'"));
}

TEST_CASE("the summary ranks by objective and keeps the Pareto fronts, in any order of arrival", "[sweep]") {
  auto line = [](int index, double mfu, double active, double tokens, double memory) {
    return json{{"index", index}, {"status", "ok"},         {"objective", mfu},
                {"mfu", mfu},     {"tokens_per_s", tokens}, {"peak_memory_bytes", memory},
                {"params", {{"active", active}, {"total", 10 * active}}}};
  };
  const std::vector<json> lines = {line(0, 0.3, 10, 100, 50), line(1, 0.4, 5, 90, 40), line(2, 0.2, 4, 80, 60),
                                   line(3, 0.4, 5, 120, 70), json{{"index", 4}, {"status", "no_fit"}}};
  sweep::Summary forward(sweep::Objective::mfu, 2), backward(sweep::Objective::mfu, 2);
  for (const auto& l : lines) forward.add(l);
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) backward.add(*it);
  for (const auto* s : {&forward, &backward}) {
    REQUIRE(s->ranked().size() == 2);
    CHECK(s->ranked()[0]["index"] == 1);  // tie on MFU: lower index first
    CHECK(s->ranked()[1]["index"] == 3);
    CHECK(s->ok == 4);
    CHECK(s->no_fit == 1);
    std::vector<int> front;
    for (const auto& l : s->pareto_mfu_active()) front.push_back(l["index"]);
    CHECK(front == std::vector<int>{0, 1, 3});
    front.clear();
    for (const auto& l : s->pareto_tokens_memory()) front.push_back(l["index"]);
    CHECK(front == std::vector<int>{0, 1, 3});
  }
}

TEST_CASE("attention axes: full_attention_interval and sliding_window set the layer pattern", "[sweep][linear][sliding]") {
  json j = small_json();
  j.erase("constraints");
  j["base_model"] = "qwen3-next-80b-a3b";
  j["model_axes"] = {{"full_attention_interval", {1, 2, 4}}};
  const sweep::SweepSpec spec = sweep::parse_spec(j, "qn.json");
  REQUIRE(sweep::point_count(spec) == 3);
  constexpr AttentionSpan L = AttentionSpan::linear, F = AttentionSpan::full;
  const auto all_full = sweep::point_model(spec, {1});
  REQUIRE(all_full.model);
  for (int i = 0; i < all_full.model->layers; ++i) CHECK(all_full.model->attention.span_of_layer(i) == F);
  CHECK(sweep::point_model(spec, {2}).model->attention.layer_pattern == std::vector<AttentionSpan>{L, F});
  CHECK(sweep::point_model(spec, {4}).model->attention.layer_pattern == std::vector<AttentionSpan>{L, L, L, F});
  // Fewer full layers, fewer parameters' worth of attention and fewer FLOPs at long context.
  CHECK(graph::model_flops_per_token(*sweep::point_model(spec, {4}).model, 131072).forward <
        0.5 * graph::model_flops_per_token(*all_full.model, 131072).forward);
  // The result line records the axis.
  sweep::PointResult r;
  r.index = 2;
  r.values = {4};
  r.model = sweep::point_model(spec, {4}).model;
  CHECK(sweep::result_json(spec, r).at("model").at("full_attention_interval") == 4);

  // GPT-OSS: window size and local:global ratio.
  j["base_model"] = "gpt-oss-120b";
  j["model_axes"] = {{"sliding_window", {128, 1024}}, {"full_attention_interval", {2, 6}}};
  const sweep::SweepSpec gpt = sweep::parse_spec(j, "gpt.json");
  const auto p = sweep::point_model(gpt, {1024, 6});
  REQUIRE(p.model);
  CHECK(p.model->attention.sliding_window == 1024);
  CHECK(p.model->attention.layer_pattern == std::vector<AttentionSpan>(
                                                {AttentionSpan::sliding, AttentionSpan::sliding, AttentionSpan::sliding,
                                                 AttentionSpan::sliding, AttentionSpan::sliding, F}));
  // A base model with only full attention has no such axes.
  j["base_model"] = "llama3-8b";
  j["model_axes"] = {{"sliding_window", {128}}};
  test::check_names(test::input_error([&] { sweep::parse_spec(j, "l.json"); }), "l.json", "model_axes.sliding_window");
  j["model_axes"] = {{"full_attention_interval", {4}}};
  test::check_names(test::input_error([&] { sweep::parse_spec(j, "l.json"); }), "l.json",
                    "model_axes.full_attention_interval");
  j["model_axes"] = {{"index_topk", {0, 2048}}};
  test::check_names(test::input_error([&] { sweep::parse_spec(j, "l.json"); }), "l.json", "model_axes.index_topk");
}

TEST_CASE("attention axes: index_topk chooses dense MLA (0) or DeepSeek sparse attention's top-k", "[sweep][dsa]") {
  json j = small_json();
  j.erase("constraints");
  j["base_model"] = "deepseek-v3.2";
  j["model_axes"] = {{"index_topk", {0, 512, 2048}}};
  const sweep::SweepSpec spec = sweep::parse_spec(j, "ds.json");
  REQUIRE(sweep::point_count(spec) == 3);
  const auto dense = sweep::point_model(spec, {0}), k512 = sweep::point_model(spec, {512});
  REQUIRE(dense.model);
  REQUIRE(k512.model);
  CHECK_FALSE(dense.model->attention.sparse.active());
  CHECK(dense.model->attention.sparse.index_heads == 0);  // no indexer parameters either
  CHECK(k512.model->attention.sparse.topk == 512);
  CHECK(k512.model->attention.sparse.index_heads == 64);
  // At 128K the dense model's attention costs several times the sparse one's; a smaller k costs less.
  const double s = 131072;
  const double f_dense = graph::model_flops_per_token(*dense.model, static_cast<int>(s)).attention_core;
  const double f_512 = graph::model_flops_per_token(*k512.model, static_cast<int>(s)).attention_core;
  const double f_2048 = graph::model_flops_per_token(*sweep::point_model(spec, {2048}).model, static_cast<int>(s)).attention_core;
  CHECK(f_512 < f_2048);
  CHECK(f_dense > 3 * f_2048);
  CHECK(count_params(*dense.model).total() < count_params(*k512.model).total());
  sweep::PointResult r;
  r.index = 1;
  r.values = {512};
  r.model = k512.model;
  CHECK(sweep::result_json(spec, r).at("model").at("index_topk") == 512);
}
