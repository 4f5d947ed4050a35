// seeds: tests/data/router-logits-small.npy
// A NumPy .npy file of router logits [tokens, experts]: the .npy reader, the TCESS scores of both
// rules and top-M pruning.
#include <algorithm>

#include "fuzz/fuzz.h"
#include "sim/io/premoe_io.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace moesim;
  return fuzz::run(data, size, [](const std::string& text) {
    const std::string path = fuzz::as_file(text, "router.npy");
    for (const premoe::ScoreRule rule : {premoe::ScoreRule::expected_probability, premoe::ScoreRule::top_logit}) {
      const premoe::TaskPattern pattern = io::pattern_from_logits({path}, 0, {rule, 2, 0.1});
      const int keep = std::max(2, pattern.experts / 2);
      if (keep <= pattern.experts) premoe::prune(pattern, keep, 2);
    }
  });
}
