// seeds: tests/data/trace-kineto-small.json
// A PyTorch profiler (Kineto) Chrome trace: the streaming reader, kernel classification and the replay
// prediction of every recognised kernel on a fixed profile.
#include "fuzz/fuzz.h"
#include "sim/calibration/calibrate.h"
#include "sim/io/specs_io.h"
#include "sim/io/trace_io.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace moesim;
  static const HardwareProfile hw = io::load_profile("a100-sxm-80g");
  return fuzz::run(data, size, [](const std::string& text) {
    const io::Trace trace = io::read_trace(fuzz::as_file(text, "trace.json"));
    const calibrate::ReplayReport report = calibrate::replay(calibrate::classify(trace, hw), hw);
    calibrate::to_json(report).dump();
  });
}
