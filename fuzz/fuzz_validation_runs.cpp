// seeds: validation/*.json
// Measured-run records (validation/*.json): parse and check every record, evaluate the first few.
#include "fuzz/fuzz.h"
#include "sim/validation/validate.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace moesim;
  return fuzz::run(data, size, [](const std::string& text) {
    const auto runs = validate::parse_runs(io::parse_json_text(text, "runs.json"), "runs.json");
    for (size_t i = 0; i < runs.size() && i < 4; ++i) {
      if (!runs[i].skip_reason.empty()) continue;
      const sim::SimulationResult r = sim::simulate(runs[i].model, runs[i].layout, runs[i].hw);
      for (const std::string& v : sim::invariant_violations(r)) fuzz::finding("simulation invariant: " + v);
      validate::evaluate(runs[i]);
    }
  });
}
