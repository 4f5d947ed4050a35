// seeds: sweeps/*.json tests/data/sweep-*.json
// A sweep spec: parse and check, count the points, build the first and last model points and the
// first point's candidate layouts; evaluate the first point when it has only a few layouts.
#include "fuzz/fuzz.h"
#include "sim/search/sweep.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace moesim;
  return fuzz::run(data, size, [](const std::string& text) {
    const sweep::SweepSpec spec = sweep::parse_spec(io::parse_json_text(text, "spec.json"), "spec.json");
    const std::uint64_t points = sweep::point_count(spec);
    for (const std::uint64_t index : {std::uint64_t{0}, points - 1}) {
      const sweep::ModelOrError m = sweep::point_model(spec, sweep::point_values(spec, index));
      if (!m.model || index != 0) continue;
      const sweep::Candidates c = sweep::candidate_layouts(spec, *m.model);
      if (c.valid.size() <= 4) {
        const sweep::PointResult r = sweep::evaluate_point(spec, 0);
        if (r.status == "ok" && (!(r.mfu > 0 && r.mfu <= 1) || !(r.iteration_time > 0)))
          fuzz::finding("sweep point with mfu " + std::to_string(r.mfu) + ", time " + std::to_string(r.iteration_time));
      }
    }
  });
}
