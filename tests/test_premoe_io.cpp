// Router-data readers (.npy, JSON, PreMoe pattern), pruned-model files and the pattern store
// (sim/io/npy.h, sim/io/premoe_io.h); then PreMoe scoring on real router data from ../shared/routing.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <unistd.h>

#include "sim/io/input_error.h"
#include "sim/io/npy.h"
#include "sim/io/premoe_io.h"
#include "tests/files.h"

using namespace moesim;
namespace fs = std::filesystem;

namespace {

// One scratch folder per test process, removed when the process exits.
fs::path temp_dir() {
  static const test::ScratchDir scratch("moesim-premoe-io");
  return scratch.path;
}

// A .npy v1.0 file: magic, version, header length, the dict padded with spaces to a multiple of 64, data.
std::string write_npy(const std::string& name, const std::string& dict, const std::string& data) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header + data;
  const fs::path p = temp_dir() / name;
  std::ofstream(p, std::ios::binary) << bytes;
  return p.string();
}

std::string floats(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

std::string write_text(const std::string& name, const std::string& text) {
  const fs::path p = temp_dir() / name;
  std::ofstream(p) << text;
  return p.string();
}

void check_error(const std::function<void()>& f, const std::string& word) {
  try {
    f();
    FAIL("no InputError (expected one naming '" << word << "')");
  } catch (const InputError& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find(word) != std::string::npos);
  }
}

const std::string shared = MOESIM_SHARED_DIR;

}  // namespace

TEST_CASE("npy: reads float32 C-order arrays and rejects malformed files", "[premoe_io]") {
  const std::string ok = write_npy("ok.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }",
                                   floats({2, 1, 0, -1, 0, 3, 0, 1}));
  const io::NpyArray a = io::read_npy(ok);
  CHECK(a.dtype == "<f4");
  CHECK(a.shape == std::vector<std::size_t>{2, 4});
  CHECK(a.values == std::vector<double>{2, 1, 0, -1, 0, 3, 0, 1});

  const std::string d = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }";
  check_error([&] { io::read_npy(write_npy("short.npy", d, floats({1, 2, 3}))); }, "truncated");
  check_error([&] { io::read_npy(write_npy("long.npy", d, floats({1, 2, 3, 4, 5, 6, 7, 8, 9}))); }, "trailing");
  check_error([&] { io::read_npy(write_npy("big.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 4), }",
                                           floats({1, 2, 3, 4, 5, 6, 7, 8}))); }, "descr");
  check_error([&] { io::read_npy(write_npy("f.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 4), }",
                                           floats({1, 2, 3, 4, 5, 6, 7, 8}))); }, "fortran_order");
  check_error([&] { io::read_npy(write_npy("noshape.npy", "{'descr': '<f4', 'fortran_order': False, }", "")); }, "shape");
  check_error([&] { io::read_npy(write_npy("nan.npy", d, floats({1, 2, 3, 4, 5, 6, 7, NAN}))); }, "not finite");
  check_error([&] { io::read_npy(write_text("text.npy", "hello world, not numpy")); }, "magic");
  check_error([&] { io::read_npy((temp_dir() / "missing.npy").string()); }, "cannot open");
  // A header that claims more bytes than the file has.
  const std::string cut = write_npy("cut.npy", d, floats({1, 2, 3, 4, 5, 6, 7, 8}));
  fs::resize_file(cut, 20);
  check_error([&] { io::read_npy(cut); }, "truncated");
  // Every shorter prefix of a valid file is an InputError, never a crash or a partial array.
  const std::string full = write_npy("full.npy", d, floats({1, 2, 3, 4, 5, 6, 7, 8}));
  const auto size = fs::file_size(full);
  for (std::uintmax_t n = 0; n < size; ++n) {
    const fs::path prefix = temp_dir() / "prefix.npy";
    fs::copy_file(full, prefix, fs::copy_options::overwrite_existing);
    fs::resize_file(prefix, n);
    INFO("prefix of " << n << " bytes");
    CHECK_THROWS_AS(io::read_npy(prefix.string()), InputError);
  }
}

TEST_CASE("router data: .npy logits and JSON give the hand-computed scores", "[premoe_io]") {
  // The two tokens of test_premoe.cpp's hand-computed example as one layer.
  const std::string layer = write_npy("layer3.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }",
                                      floats({2, 1, 0, -1, 0, 3, 0, 1}));
  const premoe::ScoreOptions o{premoe::ScoreRule::expected_probability, 2, 0.3};
  const premoe::TaskPattern t = io::pattern_from_logits({layer, layer}, 3, o);
  REQUIRE(t.layers.size() == 2);
  CHECK(t.layers[1].layer == 4);
  CHECK(t.layers[0].scores[1] == Approx(0.404888).margin(1e-6));
  CHECK(t.layers[0].order.front() == 1);
  const std::string js = write_text("router.json", R"({"task": "t", "layers": [
      {"layer": 3, "logits": [[2, 1, 0, -1], [0, 3, 0, 1]]}, {"layer": 4, "scores": [0.1, 0.0, 0.3, 0.2]}]})");
  const premoe::TaskPattern tj = io::pattern_from_router_json(js, o);
  CHECK(tj.layers[0].scores == t.layers[0].scores);
  CHECK(tj.layers[1].order == std::vector<int>{2, 3, 0, 1});
  check_error([&] { io::pattern_from_router_json(write_text("bad.json", R"({"layers": [{"layer": 3, "logits": [[1, 2], [1]]}]})"), o); },
              "layers[0].logits[1]");
  check_error([&] { io::pattern_from_router_json(write_text("bad2.json", R"({"layers": [{"layer": 3}]})"), o); }, "logits");
  check_error([&] { io::pattern_from_logits({write_npy("1d.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }",
                                                       floats({1, 2, 3, 4}))}, 0, o); }, "[tokens, experts]");
}

TEST_CASE("pruned model and pattern store files round-trip and are checked", "[premoe_io]") {
  const premoe::PrunedModel m{"law", 8, 2, {{3, {5, 1, 7}}, {4, {0, 2, 6}}}};
  const std::string f = write_text("pruned.json", io::pruned_to_json(m).dump());
  const premoe::PrunedModel back = io::read_pruned(f);
  CHECK(back.layers[1].experts == std::vector<int>{0, 2, 6});
  CHECK(back.top_k == 2);
  check_error([&] { io::read_pruned(write_text("p1.json", R"({"format": "moesim-pruned-experts", "experts": 8, "top_k": 2,
      "layers": [{"layer": 3, "experts": [1, 9]}]})")); }, "layers[0].experts");
  check_error([&] { io::read_pruned(write_text("p2.json", R"({"format": "moesim-pruned-experts", "experts": 8, "top_k": 2,
      "layers": [{"layer": 3, "experts": [1, 1]}]})")); }, "twice");
  check_error([&] { io::read_pruned(write_text("p3.json", R"({"format": "moesim-pruned-experts", "experts": 8, "top_k": 3,
      "layers": [{"layer": 3, "experts": [1, 2]}]})")); }, "top_k");

  premoe::TaskPattern t{"law", 4, 2, {premoe::ScoreRule::expected_probability, 2, -1}, {{3, {0.1, 0.4, 0, 0.2}, {1, 3, 0, 2}}}};
  const std::string s = write_text("store.json", io::pattern_store_json({t}).dump());
  const auto store = io::read_pattern_store(s);
  REQUIRE(store.size() == 1);
  CHECK(store[0].layers[0].scores == t.layers[0].scores);
  CHECK(store[0].layers[0].order == t.layers[0].order);
  check_error([&] { io::read_pattern_store(write_text("s1.json", R"({"format": "moesim-task-patterns", "tasks": [{"task": "x",
      "experts": 4, "score": {"rule": "top-logit", "top_k": 1, "threshold": -1}, "layers": [{"layer": 3, "order": [0, 1, 2]}]}]})")); },
              "order");
}

// ---------------------------------------------------------------------------------------------
// Real router data (../shared/routing, see its SOURCES.md).

TEST_CASE("real data: PreMoe's shipped DeepSeek-R1 pattern gives the kept experts its code loads", "[premoe_io][real]") {
  const std::string file = shared + "/routing/premoe-deepseek-r1/example_pattern.json";
  if (!fs::exists(file)) FAIL("needs ../shared/routing/premoe-deepseek-r1 (not found at " << file << ")");
  const premoe::TaskPattern t = io::pattern_from_premoe_file(file);
  REQUIRE(t.layers.size() == 58);  // MoE layers 3..60
  CHECK(t.layers.front().layer == 3);
  CHECK(t.layers.back().layer == 60);
  const premoe::PrunedModel p = premoe::prune(t, 32, 8);
  // SOURCES.md §1 check values (from partial_process.py load_permute_prune_experts on this data).
  const std::set<int> layer3(p.layers[0].experts.begin(), p.layers[0].experts.end());
  CHECK(layer3 == std::set<int>{4, 12, 14, 15, 22, 27, 32, 69, 72, 74, 78, 83, 88, 93, 94, 112, 128, 130, 135, 138, 140,
                                144, 145, 146, 161, 173, 176, 192, 207, 224, 226, 254});
  CHECK(p.layers[0].experts.front() == 207);
  CHECK(std::vector<int>(p.layers[1].experts.begin(), p.layers[1].experts.begin() + 8) ==
        std::vector<int>{55, 41, 234, 191, 62, 33, 169, 233});
  CHECK(std::vector<int>(p.layers.back().experts.begin(), p.layers.back().experts.begin() + 8) ==
        std::vector<int>{72, 241, 2, 120, 126, 198, 86, 165});
}

namespace {

struct EsftTask {
  std::string name;
  io::NpyArray ids, weights, offsets;
};

EsftTask load_esft(const std::string& name) {
  const std::string dir = shared + "/routing/esft-deepseek-v2-lite-tasks/" + name;
  if (!fs::exists(dir + "/expert_ids.npy")) FAIL("needs ../shared/routing/esft-deepseek-v2-lite-tasks (not found at " << dir << ")");
  return {name, io::read_npy(dir + "/expert_ids.npy"), io::read_npy(dir + "/gate_weights_x1e4.npy"),
          io::read_npy(dir + "/seq_offsets.npy")};
}

// Expected-probability TCESS of layer `layer` (0-based MoE layer) over the tokens of sequences [s0, s1).
std::vector<double> esft_scores(const EsftTask& t, std::size_t layer, std::size_t s0, std::size_t s1) {
  const std::size_t tokens = t.ids.shape[1], k = t.ids.shape[2];
  premoe::ScoreAccumulator acc(64, {premoe::ScoreRule::expected_probability, static_cast<int>(k), -1});
  std::vector<int> ids(k);
  std::vector<double> p(k);
  for (auto tok = static_cast<std::size_t>(t.offsets.values[s0]); tok < static_cast<std::size_t>(t.offsets.values[s1]); ++tok) {
    for (std::size_t j = 0; j < k; ++j) {
      ids[j] = static_cast<int>(t.ids.values[(layer * tokens + tok) * k + j]);
      p[j] = t.weights.values[(layer * tokens + tok) * k + j] * 1e-4;
    }
    acc.add_top_k(ids, p);
  }
  return acc.scores();
}

}  // namespace

TEST_CASE("real data: ESFT DeepSeek-V2-Lite tasks: TCESS equals DeepSeek's gate_scores; 6/16 keeps most routed mass",
          "[premoe_io][real]") {
  const std::vector<std::string> tasks = {"intent", "law", "summary", "translation"};
  for (const std::string& name : tasks) {
    const std::string dir = shared + "/routing/esft-deepseek-v2-lite-tasks/" + name;
    if (!fs::exists(dir)) FAIL("needs ../shared/routing/esft-deepseek-v2-lite-tasks (not found at " << dir << ")");
    const premoe::TaskPattern t =
        io::pattern_from_top_k(dir + "/expert_ids.npy", dir + "/gate_weights_x1e4.npy", 1e-4, 64, 1,
                               {premoe::ScoreRule::expected_probability, 6, -1});
    REQUIRE(t.layers.size() == 26);
    // ESFT's summary.json gate_scores[L][e] = round(mean over tokens of the top-6-masked probability, 4).
    const io::json ref = io::read_json_file(dir + "/summary.json");
    double worst = 0, share_sum = 0, share_min = 1;
    for (const premoe::LayerPattern& l : t.layers)
      for (int e = 0; e < 64; ++e)
        worst = std::max(worst, std::abs(l.scores[e] - ref["gate_scores"][std::to_string(l.layer)][std::to_string(e)].get<double>()));
    INFO(name << ": largest |TCESS - gate_scores| " << worst);
    CHECK(worst <= 0.5e-4 + 1e-9);
    // Pruning to 6/16 (a quarter of the experts): share of the task's routed probability mass kept.
    const premoe::PrunedModel p = premoe::prune(t, 16, 6);
    for (std::size_t i = 0; i < t.layers.size(); ++i) {
      const double share = premoe::kept_share(t.layers[i].scores, p.layers[i].experts);
      share_sum += share;
      share_min = std::min(share_min, share);
    }
    INFO(name << ": kept share of routed mass at 6/16: mean " << share_sum / 26 << ", min " << share_min);
    // Measured: mean 0.517 (law) to 0.603 (intent); a uniform pruning would keep 16/64 = 0.25.
    CHECK(share_sum / 26 >= 0.5);
    CHECK(share_min >= 0.35);
    // ESFT's own selection (by selection frequency, top-p 0.2; a different statistic) lies almost entirely
    // inside the 16 kept by TCESS (measured 96-99% per task).
    const io::json config = io::read_json_file(dir + "/expert_config.json");
    int inside = 0, total = 0;
    for (const auto& l : p.layers)
      for (const auto& e : config["experts"][std::to_string(l.layer)]) {
        total += 1;
        inside += std::find(l.experts.begin(), l.experts.end(), e.get<int>()) != l.experts.end();
      }
    INFO(name << ": ESFT-selected experts inside the kept 16: " << inside << "/" << total);
    CHECK(inside >= 0.95 * total);
  }
}

TEST_CASE("real data: ESFT tasks: retrieval from the first MoE layer finds the task of held-out sequences",
          "[premoe_io][real]") {
  std::vector<EsftTask> tasks;
  for (const char* n : {"intent", "law", "summary", "translation"}) tasks.push_back(load_esft(n));
  // Store: first half of each task's sequences; queries: each held-out sequence alone, and the held-out half.
  std::vector<std::vector<double>> keys;
  for (const EsftTask& t : tasks) keys.push_back(esft_scores(t, 0, 0, (t.offsets.values.size() - 1) / 2));
  int correct = 0, queries = 0;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const std::size_t sequences = tasks[i].offsets.values.size() - 1;
    CHECK(premoe::nearest_key(keys, esft_scores(tasks[i], 0, sequences / 2, sequences)).index == static_cast<int>(i));
    for (std::size_t s = sequences / 2; s < sequences; ++s) {
      correct += premoe::nearest_key(keys, esft_scores(tasks[i], 0, s, s + 1)).index == static_cast<int>(i);
      queries += 1;
    }
  }
  INFO("single held-out sequences retrieved to their own task: " << correct << "/" << queries);
  CHECK(correct >= 0.95 * queries);  // measured 108/108
}
