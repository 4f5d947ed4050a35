// Hostile inputs: every one ends in a one-line InputError naming the file (and the field where there
// is one) or in a correct result; none crashes, hangs or needs unbounded memory. Also the numeric
// invariants of simulation results over many seeded random valid configurations.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "costmodels/layout.h"
#include "costmodels/params.h"
#include "sim/engine/invariants.h"
#include "sim/io/json_reader.h"
#include "sim/io/npy.h"
#include "sim/io/specs_io.h"
#include "sim/io/trace_io.h"
#include "sim/search/sweep.h"
#include "tests/files.h"
#include "tests/support.h"

using namespace moesim;
using test::check_names;
using test::input_error;

namespace {

std::string data(const std::string& name) { return std::string(MOESIM_SOURCE_DIR) + "/tests/data/" + name; }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Writes `bytes` to a temporary file and returns its path.
std::string temp_file(const std::string& name, const std::string& bytes) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("moesim-test-hostile-" + std::to_string(::getpid()) + "-" + name)).string();
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  return path;
}

// model-valid.json with `key` (a top-level field) set to the JSON text `value`.
std::string model_with(const std::string& key, const std::string& value) {
  io::json j = io::read_json_file(data("model-valid.json"));
  j.erase(key);
  std::string text = j.dump();
  text.insert(1, "\"" + key + "\": " + value + ", ");
  return text;
}

}  // namespace

TEST_CASE("hostile: deeply nested JSON is refused while parsing, not by a stack overflow", "[hostile]") {
  for (const std::size_t depth : {std::size_t{65}, std::size_t{100000}, std::size_t{1000000}}) {
    CAPTURE(depth);
    const std::string arrays = std::string(depth, '[') + std::string(depth, ']');
    check_names(input_error([&] { io::parse_json_text(arrays, "deep.json"); }), "deep.json", "nested deeper than 64");
    // As the value of a field that an error message would print.
    const std::string path = temp_file("deep-layout.json", "{\"devices\": " + arrays + "}");
    check_names(input_error([&] { io::load_layout(path); }), path, "nested deeper");
    std::filesystem::remove(path);
  }
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  objects += "1" + std::string(100000, '}');
  check_names(input_error([&] { io::parse_json_text(objects, "deep.json"); }), "deep.json", "nested deeper");
  // 63 levels are fine.
  CHECK(io::parse_json_text(std::string(63, '[') + std::string(63, ']'), "ok.json").is_array());
}

TEST_CASE("hostile: NaN, infinity and out-of-range numbers", "[hostile]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"NaN", "invalid JSON"},      {"nan", "invalid JSON"},         {"Infinity", "invalid JSON"},
      {"-Infinity", "invalid JSON"}, {"1e999", "hidden"},            {"-1e999", "hidden"},
      {"\"NaN\"", "hidden"},        {"\"inf\"", "hidden"},           {"1e15", "hidden"},
      {"2147483648", "hidden"},     {"0", "hidden"},                 {"-1", "hidden"},
      {"1.5", "hidden"},            {"4.9e-324", "hidden"},          {"18446744073709551616", "hidden"},
      {"-9223372036854775809", "hidden"}, {"null", "hidden"},        {"[]", "hidden"},
      {"true", "hidden"}};
  for (const auto& c : cases) {
    const auto& value = c.first;  // not a structured binding: clang 14 cannot capture those
    const auto& field = c.second;
    CAPTURE(value);
    const std::string path = temp_file("model-number.json", model_with("hidden", value));
    check_names(input_error([&] { io::load_model(path); }), path, field);
    std::filesystem::remove(path);
  }
}

TEST_CASE("hostile: huge and zero sizes are refused or give correct finite results", "[hostile]") {
  // 10^15 parameters cannot be a whole int field: refused with the field named.
  for (const char* key : {"layers", "vocab"}) {
    const std::string path = temp_file("model-huge.json", model_with(key, "1e15"));
    check_names(input_error([&] { io::load_model(path); }), path, key);
    std::filesystem::remove(path);
  }
  // The largest sizes the fields allow: parameter counts are doubles, exact products, no wrap-around.
  ModelSpec m = io::load_model(data("model-valid.json"));
  m.hidden = 2000000000;
  m.vocab = 2000000000;
  m.ffn.intermediate = 2000000000;
  m.moe->expert_intermediate = 2000000000;
  m.moe->shared_expert_intermediate = 2000000000;
  m.moe->experts = 2000000000;
  m.moe->top_k = 2000000000;
  m.attention.heads = 16;
  m.attention.kv_heads = 4;
  m.attention.head_dim = 125000000;
  const ParamBreakdown p = count_params(m);
  CHECK(std::isfinite(p.total()));
  CHECK(p.total() > 0);
  // Three expert matrices of 2e9 x 2e9 per expert, 2e9 experts, 3 MoE layers: 7.2e28 (plus the rest).
  CHECK(p.total() >= 3.0 * 3 * 2e9 * 2e9 * 2e9);
  CHECK(p.total() < 1e30);

  // Zero and negative sizes in every file kind.
  for (const char* key : {"layers", "hidden", "vocab"}) {
    for (const char* value : {"0", "-4"}) {
      const std::string path = temp_file("model-zero.json", model_with(key, value));
      check_names(input_error([&] { io::load_model(path); }), path, key);
      std::filesystem::remove(path);
    }
  }
  io::json layout = io::read_json_file(data("layout-valid.json"));
  for (const char* key : {"devices", "tp", "pp", "ep", "micro_batch", "global_batch"}) {
    for (const int value : {0, -8}) {
      io::json l = layout;
      l[key] = value;
      check_names(input_error([&] { io::parse_layout(l, "layout.json"); }), "layout.json", key);
    }
  }
}

TEST_CASE("hostile: a million devices, and layouts whose products overflow 64 bits", "[hostile]") {
  const ModelSpec model = io::load_model("deepseek-v3-671b");
  const HardwareProfile hw = io::load_profile("h800");
  LayoutSpec l = test::make_layout(1 << 20, 1, 16, 64, 1 << 16);
  l.seq_len = 4096;
  REQUIRE_FALSE(complete_and_check_layout(model, l));
  const sim::SimulationResult r = sim::simulate(model, l, hw);
  CHECK(sim::invariant_violations(r).empty());
  CHECK(l.dp == 65536);

  // tp*cp*pp = 8e27 does not fit in 64 bits: the check says it does not divide the devices.
  LayoutSpec big = test::make_layout(2000000000, 2000000000, 2000000000, 1, 2000000000);
  big.cp = 2000000000;
  big.etp = 2000000000;
  big.vpp = 2000000000;
  const auto err = complete_and_check_layout(model, big);
  REQUIRE(err);
  CHECK(err->find("tp*cp*pp") != std::string::npos);

  // One device, 2e9 sequences: 2e9 microbatches would need tens of GB of pipeline records.
  LayoutSpec one = test::make_layout(1, 1, 1, 1, 2000000000);
  one.seq_len = 4096;
  const auto too_many = complete_and_check_layout(io::load_model("mixtral-8x7b"), one);
  REQUIRE(too_many);
  CHECK(too_many->find("pipeline passes") != std::string::npos);
}

TEST_CASE("hostile: truncated files never parse into a spec silently", "[hostile]") {
  // Every proper prefix of a valid model, layout and profile is an InputError naming the file.
  for (const std::string name : {"model-valid.json", "layout-valid.json", "profile-valid.json"}) {
    const std::string text = slurp(data(name));
    REQUIRE(text.size() > 100);
    for (std::size_t n = 0; n + 1 < text.size(); n += 7) {
      CAPTURE(name, n);
      std::string prefix = text.substr(0, n);
      while (!prefix.empty() && std::isspace(static_cast<unsigned char>(prefix.back()))) prefix.pop_back();
      if (!prefix.empty() && prefix.back() == '}') continue;  // a complete inner object is not a cut file
      const std::string msg = input_error([&] {
        const io::json j = io::parse_json_text(prefix, name);
        if (name.starts_with("model")) io::parse_model(j, name);
        else if (name.starts_with("layout")) io::parse_layout(j, name);
        else io::parse_profile(j, name);
      });
      CHECK(msg.find(name) != std::string::npos);
      CHECK(msg.find('\n') == std::string::npos);
    }
  }
}

TEST_CASE("hostile: wrong encodings and binary garbage", "[hostile]") {
  const std::string valid = slurp(data("model-valid.json"));
  // UTF-8 with a byte-order mark is still UTF-8 JSON: parsed as usual.
  {
    const std::string path = temp_file("bom.json", "\xEF\xBB\xBF" + valid);
    CHECK(io::load_model(path).layers == 4);
    std::filesystem::remove(path);
  }
  // UTF-16 (either byte order, with BOM), UTF-32, invalid UTF-8, NUL bytes, random bytes, empty file.
  auto utf16 = [&](bool little_endian) {
    std::string out = little_endian ? "\xFF\xFE" : "\xFE\xFF";
    for (char c : valid) {
      out += little_endian ? std::string{c, '\0'} : std::string{'\0', c};
    }
    return out;
  };
  std::string utf32 = "\xFF\xFE";
  utf32 += std::string("\0\0", 2);
  for (char c : valid) utf32 += std::string{c, '\0', '\0', '\0'};
  std::string invalid_utf8 = valid;
  invalid_utf8.replace(invalid_utf8.find("tiny-moe"), 8, "tiny\xC3\x28\xFF\xFE");
  std::mt19937 rng(20261129);
  std::string garbage(4096, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  std::string nul_inside = valid;
  nul_inside[nul_inside.find("layers")] = '\0';
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"utf16le.json", utf16(true)}, {"utf16be.json", utf16(false)}, {"utf32.json", utf32},
      {"invalid-utf8.json", invalid_utf8}, {"garbage.json", garbage}, {"nul.json", nul_inside},
      {"empty.json", ""}, {"spaces.json", "   \n\t  "}, {"two-documents.json", valid + valid},
      {"lone-surrogate.json", model_with("name", "\"\\ud800\"")}};
  for (const auto& c : cases) {
    const auto& name = c.first;  // not a structured binding: clang 14 cannot capture those
    const auto& bytes = c.second;
    CAPTURE(name);
    const std::string path = temp_file(name, bytes);
    check_names(input_error([&] { io::load_model(path); }), path, "invalid JSON");
    std::filesystem::remove(path);
  }
  // A flag value with invalid UTF-8 still gives a one-line message (the strict dump would throw).
  io::json layout = io::read_json_file(data("layout-valid.json"));
  layout["precision"] = "fp\xFF";
  check_names(input_error([&] { io::parse_layout(layout, "command line"); }), "command line", "precision");
}

TEST_CASE("hostile: endless and oversized input files are refused with bounded memory", "[hostile]") {
  // read_json_file stops at max_json_file_bytes instead of reading forever.
  check_names(input_error([] { io::load_model("/dev/zero"); }), "/dev/zero", "larger than 256 MiB");
  check_names(input_error([] { io::load_profile("/dev/null"); }), "/dev/null", "invalid JSON");
  check_names(input_error([] { io::load_layout(std::string(MOESIM_SOURCE_DIR) + "/tests"); }), "tests", "");
  // Readers of traces and router data stream their files; endless bytes under their file names are
  // refused early: not a CSV line of 16 MiB, not a Chrome trace, not a .npy magic.
  const test::ScratchDir dir("moesim-hostile-endless");
  for (const char* name : {"kernel_details.csv", "trace.json", "router.npy"})
    std::filesystem::create_symlink("/dev/zero", dir.file(name));
  check_names(input_error([&] { io::read_trace(dir.file("kernel_details.csv")); }), "kernel_details.csv", "longer than 16 MiB");
  check_names(input_error([&] { io::read_trace(dir.file("trace.json")); }), "trace.json", "malformed JSON");
  check_names(input_error([&] { io::read_npy(dir.file("router.npy")); }), "router.npy", "not a NumPy");
}

TEST_CASE("hostile: a sweep space of 10^12 points is counted and addressed without materialising it", "[hostile][sweep]") {
  io::json spec = io::read_json_file(data("sweep-small.json"));
  // 10^4 x 10^4 x 10^4 points (layers x hidden x experts).
  spec["model_axes"] = {{"layers", {{"from", 1}, {"to", 10000}}},
                        {"hidden", {{"from", 64}, {"to", 640000}, {"step", 64}}},
                        {"experts", {{"from", 1}, {"to", 10000}}}};
  const sweep::SweepSpec s = sweep::parse_spec(spec, data("sweep-huge.json"));
  CHECK(sweep::point_count(s) == 1000000000000ull);
  CHECK(sweep::point_values(s, 999999999999ull) == std::vector<int>{10000, 640000, 10000});
  CHECK(sweep::point_values(s, 123456789012ull) == std::vector<int>{1235, 64 * 5679, 9013});
  // The last point is evaluated like any other (here: over the 40B parameter constraint).
  const sweep::PointResult last = sweep::evaluate_point(s, 999999999999ull);
  CHECK(last.status == "infeasible");
  CHECK(last.reason.find("above max") != std::string::npos);

  // Layout axes whose product would enumerate 10^10 candidates per point are refused up front.
  spec["layout_axes"]["tp"] = {{"from", 1}, {"to", 100000}};
  spec["layout_axes"]["pp"] = {{"from", 1}, {"to", 100000}};
  check_names(input_error([&] { sweep::parse_spec(spec, "huge-layouts.json"); }), "huge-layouts.json", "layout_axes");
}

TEST_CASE("hostile: a resumed results file with damaged or foreign lines is refused", "[hostile][sweep]") {
  const sweep::SweepSpec spec = sweep::load_spec(data("sweep-small.json"));
  const std::string ok_line = slurp(data("sweep-results-small.jsonl")).substr(0, slurp(data("sweep-results-small.jsonl")).find('\n'));
  REQUIRE(io::parse_json_text(ok_line, "line").at("status") == "ok");
  io::json line = io::parse_json_text(ok_line, "line");
  std::vector<std::string> bad;
  for (const char* key : {"mfu", "params", "layout", "model", "objective", "status", "index"}) {
    io::json l = line;
    l.erase(key);
    bad.push_back(l.dump());
  }
  {
    io::json l = line;
    l["layout"]["tp"] = "8";
    bad.push_back(l.dump());
    l = line;
    l["model"]["hidden"] = 1e300;
    bad.push_back(l.dump());
    l = line;
    l["status"] = "great";
    bad.push_back(l.dump());
  }
  bad.push_back("{\"index\": 0, \"status\": \"infeasible\", \"model\": " + std::string(100000, '[') + std::string(100000, ']') + "}");
  for (const std::string& text : bad) {
    CAPTURE(text.substr(0, 200));
    const std::string path = temp_file("results.jsonl", text + "\n");
    sweep::RunOptions o;
    o.out_path = path;
    o.resume = true;
    const std::string msg = input_error([&] { sweep::run_sweep(spec, o); });
    CHECK(msg.find("cannot resume") != std::string::npos);
    CHECK(slurp(path) == text + "\n");  // refused, not overwritten
    std::filesystem::remove(path);
  }
}

TEST_CASE("numerics: random valid configurations never report MFU > 1, negative or NaN numbers", "[hostile][numerics]") {
  std::mt19937 rng(10);
  const std::vector<std::string> models = io::builtin_models(), profiles = io::builtin_profiles();
  auto pick = [&](auto const& v) { return v[std::uniform_int_distribution<std::size_t>(0, v.size() - 1)(rng)]; };
  const std::vector<int> sizes = {1, 2, 4, 8, 16, 32, 64};
  int simulated = 0;
  for (int attempt = 0; attempt < 3000 && simulated < 150; ++attempt) {
    const ModelSpec model = io::load_model(pick(models));
    const HardwareProfile hw = io::load_profile(pick(profiles));
    LayoutSpec l;
    l.tp = pick(std::vector<int>{1, 2, 4, 8});
    l.pp = pick(std::vector<int>{1, 2, 4, 8, 16});
    l.cp = pick(std::vector<int>{1, 1, 2});
    l.ep = model.moe ? pick(sizes) : 1;
    l.etp = pick(std::vector<int>{1, l.tp});
    const int dp = pick(sizes);
    l.devices = l.tp * l.cp * l.pp * dp;
    l.micro_batch = pick(std::vector<int>{1, 2});
    l.global_batch = dp * l.micro_batch * pick(std::vector<int>{1, 4, 16, 64});
    l.vpp = pick(std::vector<int>{1, 1, 2});
    l.schedule = l.vpp > 1 ? ScheduleKind::interleaved
                           : pick(std::vector<ScheduleKind>{ScheduleKind::one_f_one_b, ScheduleKind::gpipe,
                                                            ScheduleKind::zero_bubble, ScheduleKind::dualpipe});
    l.recompute = pick(std::vector<Recompute>{Recompute::none, Recompute::selective, Recompute::selective_op, Recompute::full});
    l.sequence_parallel = l.tp > 1;
    l.precision = pick(std::vector<Precision>{Precision::bf16, Precision::fp8});
    l.seq_len = pick(std::vector<int>{0, 512, 4096, 32768});
    l.overlap.ep_all_to_all = rng() % 2;
    l.overlap.tp_comm = rng() % 2;
    l.hierarchical_ep_all_to_all = rng() % 2;
    l.expert_load.skew = pick(std::vector<double>{0.0, 0.3, 1.0});
    l.activation_swap = pick(std::vector<double>{0.0, 0.0, 0.5});
    if (complete_and_check_layout(model, l)) continue;
    ++simulated;
    const sim::SimulationResult r = sim::simulate(model, l, hw);
    INFO(model.name << " on " << hw.name << ": devices " << l.devices << " tp " << l.tp << " pp " << l.pp << " vpp " << l.vpp
                    << " ep " << l.ep << " cp " << l.cp << " mb " << l.micro_batch << " gb " << l.global_batch << " schedule "
                    << io::to_string(l.schedule) << " seq " << l.seq_len << " recompute " << io::to_string(l.recompute)
                    << " precision " << io::to_string(l.precision) << " swap " << l.activation_swap << " skew "
                    << l.expert_load.skew << " ep overlap " << l.overlap.ep_all_to_all << " tp overlap " << l.overlap.tp_comm);
    for (const std::string& v : sim::invariant_violations(r)) FAIL_CHECK(v);
  }
  CHECK(simulated >= 150);
}
