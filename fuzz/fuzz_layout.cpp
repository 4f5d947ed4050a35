// seeds: validation/layouts/*.json tests/data/layout-*.json
// A layout file: parse, check against a fixed MoE model, simulate on a fixed profile.
#include "fuzz/fuzz.h"
#include "sim/io/specs_io.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace moesim;
  static const ModelSpec model = io::load_model("mixtral-8x7b");
  static const HardwareProfile hw = io::load_profile("h100-sxm");
  return fuzz::run(data, size, [](const std::string& text) {
    fuzz::simulate_checked(model, io::parse_layout(io::parse_json_text(text, "layout.json"), "layout.json"), hw);
  });
}
