// seeds: hw_profiles/*.json tests/data/profile-*.json
// A hardware profile: parse, check, simulate a fixed MoE model and layout on it.
#include "fuzz/fuzz.h"
#include "sim/io/specs_io.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace moesim;
  static const ModelSpec model = io::load_model("mixtral-8x7b");
  return fuzz::run(data, size, [](const std::string& text) {
    const HardwareProfile hw = io::parse_profile(io::parse_json_text(text, "profile.json"), "profile.json");
    LayoutSpec layout;
    layout.devices = 16;
    layout.tp = 2;
    layout.pp = 2;
    layout.ep = 4;
    layout.etp = 1;
    layout.sequence_parallel = true;
    layout.global_batch = 16;
    fuzz::simulate_checked(model, layout, hw);
  });
}
