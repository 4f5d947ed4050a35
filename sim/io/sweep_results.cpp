#include "sim/io/sweep_results.h"

#include <fstream>

#include "sim/io/json_reader.h"

namespace moesim::io {

namespace {

// An ok line carries the best layout, its metrics and its time and memory breakdowns.
void check_ok_line(const Field& line) {
  for (const char* key : {"mfu", "tokens_per_s", "iteration_time_s", "peak_memory_bytes", "objective"})
    line.non_negative(key);
  const Field params = line.child("params");
  params.non_negative("total");
  params.non_negative("active");
  const Field layout = line.child("layout");
  for (const char* key : {"tp", "pp", "vpp", "ep", "etp", "cp", "dp", "micro_batch"}) layout.positive_int(key);
  layout.string("recompute");
  layout.string("schedule");
  const Field overlap = layout.child("overlap");
  for (const char* key : {"ep_all_to_all", "tp_comm"})
    if (!overlap.has(key) || !overlap.raw().at(key).is_boolean()) overlap.fail(key, "true or false");
  const Field breakdown = line.child("breakdown");
  for (const char* key : {"compute_s", "exposed_tp_s", "exposed_ep_s", "exposed_cp_s", "exposed_pp_s", "exposed_dp_s",
                          "exposed_swap_s", "bubble_s", "optimizer_s"})
    breakdown.non_negative(key);
  const Field memory = line.child("memory");
  for (const char* key : {"weights", "gradients", "optimizer", "activations", "buffers", "reserve"})
    memory.non_negative(key);
  memory.positive("capacity");
}

}  // namespace

void check_sweep_result_line(const json& line, const std::string& where) {
  if (!line.is_object()) throw InputError(where + ": expected a JSON object (a moesim sweep result line)");
  const Field field(line, where, "");
  if (!line.contains("index") || !line.at("index").is_number_unsigned()) field.fail("index", "a whole number >= 0");
  const std::string status = field.choice("status", {"ok", "infeasible", "no_fit"});
  const Field model = field.child("model");
  for (const auto& [key, value] : line.at("model").items())
    if (!value.is_number_integer()) model.fail(key, "a whole number");
  if (status == "ok") check_ok_line(field);
}

std::vector<nlohmann::json> read_sweep_results(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot read file");
  std::vector<json> lines;
  std::string text;
  for (int line_no = 1; std::getline(in, text); ++line_no) {
    if (text.empty()) continue;
    const std::string where = path + ": line " + std::to_string(line_no);
    json line;
    try {
      line = json::parse(text);
    } catch (const json::parse_error&) {
      throw InputError(where + ": expected one JSON object per line (a moesim sweep results file)");
    }
    check_sweep_result_line(line, where);
    lines.push_back(std::move(line));
  }
  if (lines.empty()) throw InputError(path + ": no result lines (expected the --out file of moesim sweep)");
  return lines;
}

}  // namespace moesim::io
