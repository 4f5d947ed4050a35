#pragma once
// Reads a sweep results file (one sweep::result_json line per model point) for `moesim report`,
// checking every field the report uses; errors name the file, the line and the field.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace moesim::io {

std::vector<nlohmann::json> read_sweep_results(const std::string& path);

}  // namespace moesim::io
