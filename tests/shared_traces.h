#pragma once
// The real profiler traces of ../shared/traces, read by the trace reader and calibration tests.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

namespace moesim::test {

inline const std::filesystem::path traces_dir = std::filesystem::path(MOESIM_SHARED_DIR) / "traces";

// The real traces live outside the repository; without them these tests fail rather than pass unchecked.
inline bool have_traces() {
  if (std::filesystem::exists(traces_dir)) return true;
  FAIL("needs ../shared/traces (not found at " << traces_dir.string() << ")");
  return false;
}

inline std::string trace(const std::string& relative) { return (traces_dir / relative).string(); }

}  // namespace moesim::test
