// seeds: tests/data/hf/*.json
// A HuggingFace config.json: parse, check, simulate on one device of a fixed profile.
#include "fuzz/fuzz.h"
#include "sim/io/specs_io.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace moesim;
  static const HardwareProfile hw = io::load_profile("h100-sxm");
  return fuzz::run(data, size, [](const std::string& text) {
    const ModelSpec model = io::parse_hf_config(io::parse_json_text(text, "config.json"), "config.json");
    LayoutSpec layout;
    layout.devices = 1;
    layout.global_batch = 2;
    layout.seq_len = 1024;  // config.json has no training sequence length
    fuzz::simulate_checked(model, layout, hw);
  });
}
