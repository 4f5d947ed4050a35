#pragma once
// Reads a sweep results file (one sweep::result_json line per model point) for `moesim report`,
// checking every field the report uses; errors name the file, the line and the field.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace moesim::io {

// Throws InputError naming `where` (file and line) and the field unless `line` is a line that
// moesim sweep writes: the one check behind resume, shard merge and report, so a damaged or edited
// earlier file is refused the same way by all three.
void check_sweep_result_line(const nlohmann::json& line, const std::string& where);

std::vector<nlohmann::json> read_sweep_results(const std::string& path);

}  // namespace moesim::io
