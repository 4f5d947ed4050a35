#include <unistd.h>

#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "sim/io/input_error.h"
#include "sim/search/shard.h"
#include "sim/search/sweep.h"
#include "tests/files.h"
#include "tests/support.h"

using namespace moesim;

namespace {

const std::string small_spec = std::string(MOESIM_SOURCE_DIR) + "/tests/data/sweep-small.json";

std::string temp_path(const std::string& name) { return test::temp_path("moesim-test-shard", name); }

using test::slurp;

// Runs shard `s` of `spec` into a part file and returns its path.
std::string run_shard(const sweep::SweepSpec& spec, shard::Shard s, sweep::RunStats* stats = nullptr) {
  sweep::RunOptions o;
  o.jobs = 2;
  o.out_path = temp_path(fmt::format("part{}of{}.jsonl", s.index, s.count));
  o.shard_index = s.index;
  o.shard_count = s.count;
  o.header = shard::part_header(spec, s);
  sweep::run_sweep(spec, o, stats);
  return o.out_path;
}

}  // namespace

TEST_CASE("a shard is I/N with 0 <= I < N", "[shard]") {
  const shard::Shard s = shard::parse_shard("2/5", "--shard");
  CHECK(s.index == 2);
  CHECK(s.count == 5);
  for (const char* bad : {"5/5", "1/0", "-1/3", "1", "/3", "1/", "a/b", "1/3x", " 1/3", "99999999999999999999/3"})
    CHECK_THAT(test::input_error([&] { shard::parse_shard(bad, "--shard"); }), Catch::StartsWith("--shard: expected I/N"));
}

TEST_CASE("the spec fingerprint ignores spacing and key order but not values", "[shard]") {
  const std::string a = temp_path("a.json"), b = temp_path("b.json"), c = temp_path("c.json");
  std::ofstream(a) << R"({"x": 1, "y": [1, 2]})";
  std::ofstream(b) << "{\n  \"y\": [1,2],\n  \"x\": 1\n}\n";
  std::ofstream(c) << R"({"x": 2, "y": [1, 2]})";
  CHECK(shard::spec_fingerprint(a) == shard::spec_fingerprint(b));
  CHECK(shard::spec_fingerprint(a) != shard::spec_fingerprint(c));
  for (const auto& p : {a, b, c}) std::filesystem::remove(p);
}

TEST_CASE("shards merge into the bytes of a one-process run", "[shard]") {
  const sweep::SweepSpec spec = sweep::load_spec(small_spec);
  sweep::RunOptions o;
  o.jobs = 1;
  o.out_path = temp_path("whole.jsonl");
  sweep::run_sweep(spec, o);
  const std::string whole = slurp(o.out_path);

  std::vector<std::string> parts;
  std::uint64_t total = 0;
  for (std::uint64_t i = 0; i < 3; ++i) {
    sweep::RunStats stats;
    parts.push_back(run_shard(spec, {i, 3}, &stats));
    CHECK(stats.points == (i < 2 ? 3u : 2u));  // 8 points: indices 0,3,6 / 1,4,7 / 2,5
    CHECK(stats.evaluated == stats.points);
    total += stats.points;
  }
  CHECK(total == 8);
  CHECK(slurp(parts[1]).find(R"({"moesim_sweep_part":)") == 0);

  const std::string merged = temp_path("merged.jsonl");
  const shard::MergeStats m = shard::merge_parts({parts[2], parts[0], parts[1]}, merged);
  CHECK(m.parts == 3);
  CHECK(m.points == 8);
  CHECK(slurp(merged) == whole);

  // Refusals name the file and leave no output behind.
  const std::string refused = temp_path("refused.jsonl");
  CHECK_THAT(test::input_error([&] { shard::merge_parts({parts[0], parts[2]}, refused); }),
             Catch::Contains("point 1 of 8 is in none of the parts") && Catch::Contains("shard 1/3"));
  CHECK_THAT(test::input_error([&] { shard::merge_parts({parts[0], parts[1], parts[2], parts[1]}, refused); }),
             Catch::Contains(parts[1] + ": shard 1/3 again"));
  const std::string cut = temp_path("cut.jsonl");
  const std::string part1 = slurp(parts[1]);
  std::ofstream(cut, std::ios::binary) << part1.substr(0, part1.size() - 10);
  CHECK_THAT(test::input_error([&] { shard::merge_parts({parts[0], cut, parts[2]}, refused); }), Catch::Contains(cut + ": line 4: cut off"));
  CHECK_THAT(test::input_error([&] { shard::merge_parts({o.out_path}, refused); }), Catch::Contains("not a sweep part file"));
  CHECK(!std::filesystem::exists(refused));
  CHECK(!std::filesystem::exists(refused + ".merging"));

  // A shard resumed after a cut rewrites the cut line and appends the rest.
  sweep::RunOptions r;
  r.out_path = cut;
  r.resume = true;
  r.shard_index = 1;
  r.shard_count = 3;
  r.header = shard::part_header(spec, {1, 3});
  sweep::RunStats stats;
  sweep::run_sweep(spec, r, &stats);
  CHECK(slurp(cut) == part1);
  CHECK(stats.resumed == 2);
  CHECK(stats.evaluated == 1);
  // ... but not as another shard's part.
  r.shard_index = 2;
  r.header = shard::part_header(spec, {2, 3});
  CHECK_THAT(test::input_error([&] { sweep::run_sweep(spec, r); }), Catch::Contains("line 1: not the part header"));

  for (const auto& p : parts) std::filesystem::remove(p);
  for (const auto& p : {o.out_path, merged, cut}) std::filesystem::remove(p);
}

TEST_CASE("parts of different specs do not merge", "[shard]") {
  const sweep::SweepSpec spec = sweep::load_spec(small_spec);
  const std::string other_file = temp_path("other.json");
  std::string text = slurp(small_spec);
  text.replace(text.find("\"tokens_per_s\""), 14, "\"mfu\"");
  std::ofstream(other_file) << text;
  const sweep::SweepSpec other = sweep::load_spec(other_file);
  const std::string a = run_shard(spec, {0, 2});
  const std::string b = run_shard(other, {1, 2});
  CHECK_THAT(test::input_error([&] { shard::merge_parts({a, b}, temp_path("never.jsonl")); }),
             Catch::Contains(b + ": a part of spec") && Catch::Contains("cannot merge parts of different specs"));
  for (const auto& p : {a, b, other_file}) std::filesystem::remove(p);
}
