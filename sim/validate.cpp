#include "sim/validate.h"

#include <cmath>
#include <filesystem>
#include <map>

#include "costmodels/layout.h"
#include "sim/io/input_error.h"
#include "sim/io/specs_io.h"

namespace moesim::validate {

using nlohmann::json;

namespace {

Convention parse_convention(const std::string& s, const std::string& where) {
  static const std::map<std::string, Convention> names = {
      {"palm", Convention::palm},
      {"megatron2021", Convention::megatron2021},
      {"korthikanti2022", Convention::korthikanti2022},
      {"megatron_core_2024", Convention::megatron_core_2024},
      {"megatron_core_2025", Convention::megatron_core_2025},
      {"megatron_core_2026_causal", Convention::megatron_core_2026_causal},
      {"none", Convention::none}};
  const auto it = names.find(s);
  if (it == names.end())
    throw InputError(where + ": expected a convention (palm|megatron2021|korthikanti2022|megatron_core_2024|"
                             "megatron_core_2025|megatron_core_2026_causal|none), got \"" + s + "\"");
  return it->second;
}

}  // namespace

std::vector<MeasuredRun> load_runs(const std::string& path) { return parse_runs(io::read_json_file(path), path); }

std::vector<MeasuredRun> parse_runs(const json& j, const std::string& path) {
  if (!j.is_array()) throw InputError(path + ": top level: expected an array of measured-run records");
  std::vector<MeasuredRun> runs;
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string where = "[" + std::to_string(i) + "]";
    const io::Field f(j[i], path, where);
    MeasuredRun run;
    run.id = f.string("id");
    if (auto src = f.optional_child("source")) run.source_url = src->string_or("url", "");
    run.skip_reason = f.string_or("skip_reason", "");
    if (!run.skip_reason.empty()) {
      runs.push_back(run);
      continue;
    }
    if (f.has("model") && j[i]["model"].is_string()) {
      run.model = io::load_model(j[i]["model"].get<std::string>());
    } else {
      run.model = io::parse_model(f.child("model").raw(), path + " " + where + ".model");
    }
    const io::Field hw = f.child("hardware");
    run.hw = io::load_profile(hw.string("profile"));
    io::json layout = f.child("layout").raw();
    layout["devices"] = hw.positive_int("devices");
    run.layout = io::parse_layout(layout, path + " " + where + ".layout");
    if (auto err = complete_and_check_layout(run.model, run.layout))
      throw InputError(path + ": record '" + run.id + "': invalid layout: " + *err);
    run.convention = parse_convention(f.string("convention"), path + ": field '" + f.where("convention") + "'");
    const io::Field measured = f.child("measured");
    for (const char* metric : {"mfu", "tflops_per_device", "tokens_per_s", "iteration_time_s"}) {
      if (measured.has(metric)) {
        run.metric = metric;
        run.measured = measured.positive(metric);
        break;
      }
    }
    if (measured.has("memory_bytes")) run.measured_memory_bytes = measured.positive("memory_bytes");
    if (run.metric.empty()) measured.fail("mfu", "one of mfu, tflops_per_device, tokens_per_s, iteration_time_s");
    runs.push_back(std::move(run));
  }
  return runs;
}

namespace {

// FLOPs per iteration as the run's source counted them.
flops convention_flops(const MeasuredRun& run, const sim::SimulationResult& r) {
  const ModelSpec& m = run.model;
  const LayoutSpec& l = run.layout;
  const double B = l.global_batch, s = l.seq_len, L = m.layers, h = m.hidden, V = m.vocab;
  switch (run.convention) {
    case Convention::megatron2021:  // Narayanan et al. 2021 eq. 3 (includes the recompute forward)
      return 96 * B * s * L * h * h * (1 + s / (6 * h) + V / (16 * L * h));
    case Convention::korthikanti2022:  // Korthikanti et al. 2022 eq. 7 (model FLOPs)
      return 72 * B * L * s * h * h * (1 + s / (6 * h) + V / (12 * h * L));
    case Convention::megatron_core_2026_causal:
      return (r.flops_per_token.training - 3 * r.flops_per_token.attention_core / 2) * r.tokens_per_iteration;
    case Convention::palm:
    case Convention::megatron_core_2024:
    case Convention::megatron_core_2025:
    case Convention::none:
      return r.flops_per_token.training * r.tokens_per_iteration;
  }
  return 0;
}

}  // namespace

double predicted_metric(const MeasuredRun& run, const sim::SimulationResult& r) {
  const double device_seconds = r.iteration_time * run.layout.devices;
  if (run.metric == "mfu") return convention_flops(run, r) / (device_seconds * run.hw.device.matrix_bf16);
  if (run.metric == "tflops_per_device") return convention_flops(run, r) / device_seconds;
  if (run.metric == "tokens_per_s") return r.tokens_per_s;
  return r.iteration_time;
}

RunResult evaluate(const MeasuredRun& run) {
  RunResult out;
  out.id = run.id;
  out.skip_reason = run.skip_reason;
  if (!run.skip_reason.empty()) return out;
  out.hardware = run.hw.name;
  out.metric = run.metric;
  out.measured = run.measured;
  const sim::SimulationResult r = sim::simulate(run.model, run.layout, run.hw);
  out.predicted = predicted_metric(run, r);
  out.error_pct = 100.0 * (out.predicted - out.measured) / out.measured;
  out.fits = r.fits;
  return out;
}

Summary summarise(const std::vector<RunResult>& results) {
  Summary s;
  std::map<std::string, std::pair<int, double>> by_hw;
  double sum = 0;
  for (const RunResult& r : results) {
    if (!r.skip_reason.empty()) continue;
    const double e = std::abs(r.error_pct);
    ++s.count;
    sum += e;
    s.max_abs_error_pct = std::max(s.max_abs_error_pct, e);
    auto& [n, total] = by_hw[r.hardware];
    ++n;
    total += e;
  }
  s.mape_pct = s.count ? sum / s.count : 0;
  for (const auto& [name, v] : by_hw) s.by_hardware.push_back({name, {v.first, v.second / v.first}});
  return s;
}

json to_json(const std::vector<RunResult>& results, const Summary& s) {
  json runs = json::array();
  for (const RunResult& r : results) {
    if (!r.skip_reason.empty()) {
      runs.push_back({{"id", r.id}, {"skipped", r.skip_reason}});
      continue;
    }
    runs.push_back({{"id", r.id},
                    {"hardware", r.hardware},
                    {"metric", r.metric},
                    {"measured", r.measured},
                    {"predicted", r.predicted},
                    {"error_pct", r.error_pct},
                    {"fits", r.fits}});
  }
  json by_hw = json::object();
  for (const auto& [name, v] : s.by_hardware) by_hw[name] = {{"count", v.first}, {"mape_pct", v.second}};
  return json{{"runs", runs},
              {"summary", {{"count", s.count}, {"mape_pct", s.mape_pct}, {"max_abs_error_pct", s.max_abs_error_pct},
                           {"by_hardware", by_hw}}}};
}

}  // namespace moesim::validate
