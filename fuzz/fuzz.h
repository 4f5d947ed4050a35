#pragma once
// Shared harness of the libFuzzer targets (fuzz/README.md). A target feeds the input bytes through a
// real parser, the spec checks and, where cheap, the simulation. An InputError is the right answer to
// bad input; anything else (another exception, a broken result invariant, a sanitizer report, a hang)
// is a finding: the harness aborts so libFuzzer saves the input.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>

#include "costmodels/layout.h"
#include "sim/engine/invariants.h"
#include "sim/io/input_error.h"
#include "sim/io/json_reader.h"
#include "sim/engine/simulate.h"
#include "tests/files.h"

namespace moesim::fuzz {

[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "moesim fuzz finding: %s\n", what.c_str());
  std::abort();
}

// Runs `body(text)` on the input; returns libFuzzer's "keep going" code.
template <class Body>
int run(const std::uint8_t* data, std::size_t size, Body&& body) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    body(text);
  } catch (const InputError&) {
    // Bad input, reported as such: the expected outcome.
  } catch (const std::exception& e) {
    finding(std::string("exception other than InputError: ") + e.what());
  }
  return 0;
}

// Readers that take a path (traces, .npy) get the input as a file named `name` in a folder of this
// process, removed at exit; the name carries what format detection looks at (extension, file name).
inline std::string as_file(const std::string& bytes, const std::string& name) {
  static const test::ScratchDir dir("moesim-fuzz");
  const std::string path = dir.file(name);
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

// Checks the layout against the model and, when it is valid, simulates and checks the result.
inline void simulate_checked(const ModelSpec& model, LayoutSpec layout, const HardwareProfile& hw) {
  if (complete_and_check_layout(model, layout)) return;  // an invalid layout is reported, not simulated
  const sim::SimulationResult r = sim::simulate(model, layout, hw);
  for (const std::string& v : sim::invariant_violations(r)) finding("simulation invariant: " + v);
}

}  // namespace moesim::fuzz
