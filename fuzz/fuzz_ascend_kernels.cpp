// seeds: ../shared/traces/ascend-msprof-analyze/llm_bf16_flashattn/kernel_details.csv
// An Ascend profiler kernel_details.csv: the CSV reader, kernel classification and replay on 910B2.
#include "fuzz/fuzz.h"
#include "sim/calibration/calibrate.h"
#include "sim/io/specs_io.h"
#include "sim/io/trace_io.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace moesim;
  static const HardwareProfile hw = io::load_profile("ascend-910b2");
  return fuzz::run(data, size, [](const std::string& text) {
    const io::Trace trace = io::read_trace(fuzz::as_file(text, "kernel_details.csv"));
    const calibrate::ReplayReport report = calibrate::replay(calibrate::classify(trace, hw), hw);
    calibrate::to_json(report).dump();
  });
}
