// seeds: tests/data/router-logits-small.json
// Router logits or aggregated scores as JSON: the reader, the TCESS score and top-M pruning.
#include <algorithm>

#include "fuzz/fuzz.h"
#include "sim/io/premoe_io.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace moesim;
  return fuzz::run(data, size, [](const std::string& text) {
    const premoe::TaskPattern pattern = io::pattern_from_router_json(fuzz::as_file(text, "router.json"), {});
    if (pattern.experts >= 1) premoe::prune(pattern, std::max(1, pattern.experts / 2), 1);
  });
}
