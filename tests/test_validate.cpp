// The validation harness scores per-device peak memory apart from throughput: like with like per
// memory kind, its own summary, bad memory fields as one-line errors naming the field.
#include <catch2/catch.hpp>
#include <string>

#include "sim/io/input_error.h"
#include "sim/validation/validate.h"

namespace moesim {

namespace {

// A small dense run (Llama 3 8B, FSDP over 8 H100s) with a stated throughput and a stated memory figure.
nlohmann::json record(const nlohmann::json& measured) {
  return nlohmann::json::array({{{"id", "llama-fsdp8"},
                                 {"model", "llama3-8b"},
                                 {"hardware", {{"profile", "h100-sxm"}, {"devices", 8}}},
                                 {"layout",
                                  {{"tp", 1}, {"pp", 1}, {"micro_batch", 1}, {"global_batch", 8}, {"seq_len", 4096},
                                   {"recompute", "full"}, {"distributed_optimizer", true}, {"zero_stage", 3}}},
                                 {"convention", "palm"},
                                 {"measured", measured}}});
}

std::string error_of(const nlohmann::json& measured) {
  try {
    validate::parse_runs(record(measured), "runs.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a record with memory_bytes is scored as a memory row beside its throughput", "[validate]") {
  const auto runs = validate::parse_runs(
      record({{"mfu", 0.4}, {"memory_bytes", 30e9}, {"memory_kind", "reserved"}}), "runs.json");
  REQUIRE(runs.size() == 1);
  const auto results = validate::evaluate(runs[0]);
  REQUIRE(results.size() == 2);
  CHECK(results[0].metric == "mfu");
  CHECK(results[1].metric == "memory");
  CHECK(results[1].measured == 30e9);
  const sim::SimulationResult r = sim::simulate(runs[0].model, runs[0].layout, runs[0].hw);
  // Allocator counters exclude the profile's framework reserve; max_memory_reserved adds the caching
  // allocator's cache (one stage, far below the 80 GB); device readings include both.
  REQUIRE(r.memory.size() == 1);
  const memory::StageMemory& sm = r.memory[0];
  CHECK(sm.allocator_cache > 0);
  CHECK(results[1].predicted == Approx(r.peak_memory - sm.reserve + sm.allocator_cache));
  CHECK(validate::predicted_memory_bytes(validate::MemoryKind::allocated, r) == Approx(r.peak_memory - sm.reserve));
  CHECK(validate::predicted_memory_bytes(validate::MemoryKind::device, r) == Approx(r.peak_memory + sm.allocator_cache));
  // On a device with no room for the cache the allocator frees it before an allocation fails.
  sim::SimulationResult full = r;
  full.capacity = r.peak_memory + sm.allocator_cache / 2;
  CHECK(validate::predicted_memory_bytes(validate::MemoryKind::device, full) == Approx(full.capacity));
  CHECK(validate::predicted_memory_bytes(validate::MemoryKind::reserved, full) == Approx(full.capacity - sm.reserve));
  CHECK(results[1].error_pct == Approx(100 * (results[1].predicted - 30e9) / 30e9));

  const validate::Summary s = validate::summarise(results);
  CHECK(s.count == 1);  // throughput only
  CHECK(s.memory.count == 1);
  CHECK(s.memory.mape_pct == Approx(std::abs(results[1].error_pct)));
  CHECK(s.mape_pct == Approx(std::abs(results[0].error_pct)));
  const nlohmann::json j = validate::to_json(results, s);
  REQUIRE(j["runs"].size() == 2);
  CHECK(j["runs"][1]["metric"] == "memory");
  CHECK(j["runs"][1]["predicted"].get<double>() == Approx(results[1].predicted));
  CHECK(j["summary"]["count"] == 1);
  CHECK(j["summary"]["memory"]["count"] == 1);
  CHECK(j["summary"]["by_hardware"]["h100-sxm"]["count"] == 1);
  // Per family the worst run too: with one run it is that run's |error|, as the MAPE is.
  CHECK(j["summary"]["by_hardware"]["h100-sxm"]["max_abs_error_pct"].get<double>() ==
        Approx(std::abs(results[0].error_pct)));
}

TEST_CASE("a memory-only record gives one memory row and leaves the throughput summary empty", "[validate]") {
  const auto runs =
      validate::parse_runs(record({{"memory_bytes", 40e9}, {"memory_kind", "device"}}), "runs.json");
  const auto results = validate::evaluate(runs[0]);
  REQUIRE(results.size() == 1);
  CHECK(results[0].metric == "memory");
  const validate::Summary s = validate::summarise(results);
  CHECK(s.count == 0);
  CHECK(s.by_hardware.empty());
  CHECK(s.memory.count == 1);
}

TEST_CASE("bad memory fields are one-line errors naming the field", "[validate]") {
  const std::string negative = error_of({{"memory_bytes", -1}, {"memory_kind", "reserved"}});
  CHECK(negative.find("runs.json") != std::string::npos);
  CHECK(negative.find("memory_bytes") != std::string::npos);
  const std::string text = error_of({{"memory_bytes", "80 GB"}, {"memory_kind", "reserved"}});
  CHECK(text.find("memory_bytes") != std::string::npos);
  const std::string no_kind = error_of({{"memory_bytes", 80e9}});
  CHECK(no_kind.find("memory_kind") != std::string::npos);
  const std::string bad_kind = error_of({{"memory_bytes", 80e9}, {"memory_kind", "peak"}});
  CHECK(bad_kind.find("memory_kind") != std::string::npos);
  CHECK(bad_kind.find("allocated|reserved|device") != std::string::npos);
  const std::string nothing = error_of(nlohmann::json::object());
  CHECK(nothing.find("memory_bytes") != std::string::npos);
  for (const std::string& e : {negative, text, no_kind, bad_kind, nothing}) CHECK(e.find('\n') == std::string::npos);
}

TEST_CASE("hardware.memory_bytes sets the capacity a run must fit in, and the summary counts runs that do not",
          "[validate]") {
  // Llama 3 8B on one H100 with 64 K tokens per step does not fit in 80 GB but fits in 1 TB. The live
  // tensors (allocated) do not depend on the capacity; the allocator's cache does (reserved, below).
  auto j = record({{"memory_bytes", 80e9}, {"memory_kind", "allocated"}});
  j[0]["hardware"]["devices"] = 1;
  j[0]["layout"]["global_batch"] = 16;
  j[0]["layout"]["seq_len"] = 4096;
  j[0]["layout"]["recompute"] = "none";
  const auto small = validate::evaluate(validate::parse_runs(j, "runs.json")[0]);
  REQUIRE(small.size() == 1);
  CHECK_FALSE(small[0].fits);
  CHECK(validate::summarise(small).predicted_not_to_fit == 1);
  CHECK(validate::to_json(small, validate::summarise(small))["summary"]["predicted_not_to_fit"] == 1);
  j[0]["hardware"]["memory_bytes"] = 1e12;
  const auto large = validate::evaluate(validate::parse_runs(j, "runs.json")[0]);
  CHECK(large[0].fits);
  CHECK(large[0].predicted == small[0].predicted);  // capacity moves the flag, not the live tensors
  CHECK(validate::summarise(large).predicted_not_to_fit == 0);
  // max_memory_reserved: with no room on the 80 GB device the allocator holds no cache beyond them.
  j[0]["measured"]["memory_kind"] = "reserved";
  const auto large_reserved = validate::evaluate(validate::parse_runs(j, "runs.json")[0]);
  CHECK(large_reserved[0].predicted > large[0].predicted);
  j[0]["hardware"].erase("memory_bytes");
  const auto small_reserved = validate::evaluate(validate::parse_runs(j, "runs.json")[0]);
  CHECK(small_reserved[0].predicted == Approx(small[0].predicted));
  j[0]["hardware"]["memory_bytes"] = "96 GB";
  try {
    validate::parse_runs(j, "runs.json");
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("memory_bytes") != std::string::npos);
    CHECK(std::string(e.what()).find("runs.json") != std::string::npos);
  }
}

TEST_CASE("validate predicts at operator level, with the pass-level prediction beside each throughput row", "[validate]") {
  const auto runs = validate::parse_runs(record({{"mfu", 0.4}, {"memory_bytes", 30e9}, {"memory_kind", "reserved"}}), "runs.json");
  const auto op = validate::evaluate(runs[0]);
  const auto pass = validate::evaluate(runs[0], sim::Level::pass);
  REQUIRE(op.size() == 2);
  REQUIRE(pass.size() == 2);
  const sim::OpLevelResult o = sim::simulate_op_level(runs[0].model, runs[0].layout, runs[0].hw);
  const double flops = validate::convention_flops(validate::Convention::palm, runs[0].model, runs[0].layout, o.result);
  const double peak = validate::convention_peak_flops(validate::Convention::palm, runs[0].hw);
  // The throughput row is the operator level's; its pass-level figures are what --pass-level scores.
  CHECK(op[0].predicted == Approx(flops / (o.result.iteration_time * runs[0].layout.devices * peak)));
  REQUIRE(op[0].pass_level_predicted);
  CHECK(*op[0].pass_level_predicted == Approx(pass[0].predicted));
  CHECK(*op[0].pass_level_error_pct == Approx(pass[0].error_pct));
  CHECK_FALSE(pass[0].pass_level_predicted);
  // Memory is the same at both levels and carries no pass-level figure.
  CHECK(op[1].predicted == pass[1].predicted);
  CHECK_FALSE(op[1].pass_level_predicted);
  const nlohmann::json j = validate::to_json(op, validate::summarise(op));
  CHECK(j["runs"][0]["pass_level_error_pct"].get<double>() == Approx(pass[0].error_pct));
  CHECK_FALSE(j["runs"][1].contains("pass_level_error_pct"));
}

}  // namespace moesim
