#include "sim/validation/validate.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "costmodels/layout.h"
#include "sim/io/input_error.h"
#include "sim/engine/op_sim.h"
#include "sim/io/specs_io.h"

namespace moesim::validate {

using nlohmann::json;

Convention parse_convention(const std::string& s, const std::string& where) {
  static const std::map<std::string, Convention> names = {
      {"palm", Convention::palm},
      {"megatron2021", Convention::megatron2021},
      {"korthikanti2022", Convention::korthikanti2022},
      {"megatron_core_2024", Convention::megatron_core_2024},
      {"megatron_core_2025", Convention::megatron_core_2025},
      {"megatron_core_2026_causal", Convention::megatron_core_2026_causal},
      {"mindspeed", Convention::mindspeed},
      {"pangu", Convention::pangu},
      {"none", Convention::none}};
  const auto it = names.find(s);
  if (it == names.end())
    throw InputError(where + ": expected a convention (palm|megatron2021|korthikanti2022|megatron_core_2024|"
                             "megatron_core_2025|megatron_core_2026_causal|mindspeed|pangu|none), got \"" + s + "\"");
  return it->second;
}

namespace {

MemoryKind parse_memory_kind(const std::string& s, const std::string& where) {
  static const std::map<std::string, MemoryKind> names = {
      {"allocated", MemoryKind::allocated}, {"reserved", MemoryKind::reserved}, {"device", MemoryKind::device}};
  const auto it = names.find(s);
  if (it == names.end()) throw InputError(where + ": expected a memory kind (allocated|reserved|device), got \"" + s + "\"");
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
    // The machine's device memory where the source states one other than the profile's (a 96 GB H100
    // beside the 80 GB profile): only the capacity that decides whether the run fits.
    if (hw.has("memory_bytes")) run.hw.device.hbm_bytes = hw.positive("memory_bytes");
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
    if (measured.has("memory_bytes")) {
      run.measured_memory_bytes = measured.positive("memory_bytes");
      run.memory_kind =
          parse_memory_kind(measured.string("memory_kind"), path + ": field '" + measured.where("memory_kind") + "'");
    }
    if (run.metric.empty() && !run.measured_memory_bytes)
      measured.fail("mfu", "one of mfu, tflops_per_device, tokens_per_s, iteration_time_s, memory_bytes");
    runs.push_back(std::move(run));
  }
  return runs;
}

// Peak of the Pangu reports' MFU: the Pangu Pro MoE report (arXiv 2505.21411, §4.1) states that the
// Ascend 800T A2 NPU of these runs "delivers 256 TeraFLOPS for FP16". Evidence that the Ultra MoE
// report divides by it (validation/README.md, "Conventions"): its two points (18.9% at 0.61M tokens/s on
// 4K NPUs, 30.0% at 1.46M on 6K) imply FLOPs per token / peak = 1.23-1.26e-3 s, and moesim's PaLM
// count of the 718B model with MTP at 4096 tokens (309 GFLOP/token) over 256 TFLOPS gives 1.21e-3:
// within 2-4% for 6000 or 6144 NPUs, where every 910B peak (313, 354, 376 TFLOPS) is 20-50% off.
constexpr double pangu_report_peak_flops = 256e12;

double convention_peak_flops(Convention c, const HardwareProfile& hw) {
  return c == Convention::pangu ? pangu_report_peak_flops : hw.device.matrix_bf16;
}

// FLOPs per iteration as the run's source counted them.
double convention_flops(Convention c, const ModelSpec& m, const LayoutSpec& l, const sim::SimulationResult& r) {
  const double B = l.global_batch, s = l.seq_len, L = m.layers, h = m.hidden, V = m.vocab;
  switch (c) {
    case Convention::megatron2021:  // Narayanan et al. 2021 eq. 3 (includes the recompute forward)
      return 96 * B * s * L * h * h * (1 + s / (6 * h) + V / (16 * L * h));
    case Convention::korthikanti2022:  // Korthikanti et al. 2022 eq. 7 (model FLOPs)
      return 72 * B * L * s * h * h * (1 + s / (6 * h) + V / (12 * h * L));
    // MindSpeed-LLM's MFU: its fine-tuning rows that print both samples/s and MFU reconcile only with
    // the causal mask halving the s^2 term (../shared/validation/ascend/README.md, "Conventions").
    case Convention::mindspeed:
    case Convention::megatron_core_2026_causal:
      return (r.flops_per_token.training - 3 * r.flops_per_token.attention_core_masked) * r.tokens_per_iteration;
    case Convention::palm:
    case Convention::pangu:
    case Convention::megatron_core_2024:
    case Convention::megatron_core_2025:
    case Convention::none:
      return r.flops_per_token.training * r.tokens_per_iteration;
  }
  return 0;
}

double predicted_metric(const MeasuredRun& run, const sim::SimulationResult& r) {
  const double device_seconds = r.iteration_time * run.layout.devices;
  const double iteration_flops = convention_flops(run.convention, run.model, run.layout, r);
  if (run.metric == "mfu") return iteration_flops / (device_seconds * convention_peak_flops(run.convention, run.hw));
  if (run.metric == "tflops_per_device") return iteration_flops / device_seconds;
  if (run.metric == "tokens_per_s") return r.tokens_per_s;
  return r.iteration_time;
}

double predicted_memory_bytes(MemoryKind kind, const sim::SimulationResult& r) {
  // What each counter sees (PyTorch docs, "CUDA semantics: memory management"): max_memory_allocated
  // the live tensors, max_memory_reserved those and the caching allocator's cached free blocks; neither
  // sees the profile's framework reserve (CUDA context, NCCL's buffers), which device-level readings
  // (nvidia-smi) include. The cache takes only what the device has spare (memory::StageMemory).
  bytes peak = 0;
  for (const memory::StageMemory& sm : r.memory) {
    const bytes cached = std::min(sm.total() + sm.allocator_cache, std::max(r.capacity, sm.total()));
    peak = std::max(peak, kind == MemoryKind::device     ? cached
                          : kind == MemoryKind::reserved ? cached - sm.reserve
                                                         : sm.allocated());
  }
  return peak;
}

std::vector<RunResult> evaluate(const MeasuredRun& run, sim::Level level) {
  RunResult base;
  base.id = run.id;
  base.skip_reason = run.skip_reason;
  if (!run.skip_reason.empty()) return {base};
  base.hardware = run.hw.name;
  std::optional<sim::OpLevelResult> op;
  if (level == sim::Level::op && !run.metric.empty()) op = sim::simulate_op_level(run.model, run.layout, run.hw);
  const sim::SimulationResult r = op ? std::move(op->result) : sim::simulate(run.model, run.layout, run.hw);
  base.fits = r.fits;
  const auto scored = [&base](std::string metric, double measured, double predicted) {
    RunResult out = base;
    out.metric = std::move(metric);
    out.measured = measured;
    out.predicted = predicted;
    out.error_pct = 100.0 * (predicted - measured) / measured;
    return out;
  };
  std::vector<RunResult> out;
  if (!run.metric.empty()) {
    out.push_back(scored(run.metric, run.measured, predicted_metric(run, r)));
    if (op) {
      out.back().pass_level_predicted = predicted_metric(run, op->pass_level);
      out.back().pass_level_error_pct = 100.0 * (*out.back().pass_level_predicted - run.measured) / run.measured;
    }
  }
  if (run.measured_memory_bytes)
    out.push_back(scored("memory", *run.measured_memory_bytes, predicted_memory_bytes(run.memory_kind, r)));
  return out;
}

namespace {

// mape_pct holds the sum of |errors| until mean_of_sum turns it into their mean.
void add_error(ErrorSummary& s, double abs_error_pct) {
  s.mape_pct += abs_error_pct;
  ++s.count;
  s.max_abs_error_pct = std::max(s.max_abs_error_pct, abs_error_pct);
}

void mean_of_sum(ErrorSummary& s) { s.mape_pct = s.count ? s.mape_pct / s.count : 0; }

}  // namespace

Summary summarise(const std::vector<RunResult>& results) {
  Summary s;
  std::map<std::string, ErrorSummary> by_hw;
  std::set<std::string> not_fitting;  // a record scored on throughput and memory counts once
  for (const RunResult& r : results) {
    if (!r.skip_reason.empty()) continue;
    if (!r.fits) not_fitting.insert(r.id);
    const double e = std::abs(r.error_pct);
    if (r.metric == "memory") {
      add_error(s.memory, e);
      continue;
    }
    add_error(s, e);
    add_error(by_hw[r.hardware], e);
  }
  s.predicted_not_to_fit = static_cast<int>(not_fitting.size());
  mean_of_sum(s);
  mean_of_sum(s.memory);
  for (auto& [name, v] : by_hw) {
    mean_of_sum(v);
    s.by_hardware.push_back({name, v});
  }
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
    if (r.pass_level_error_pct) {
      runs.back()["pass_level_predicted"] = *r.pass_level_predicted;
      runs.back()["pass_level_error_pct"] = *r.pass_level_error_pct;
    }
  }
  const auto errors = [](const ErrorSummary& e) {
    return json{{"count", e.count}, {"mape_pct", e.mape_pct}, {"max_abs_error_pct", e.max_abs_error_pct}};
  };
  json by_hw = json::object();
  for (const auto& [name, v] : s.by_hardware) by_hw[name] = errors(v);
  json summary = errors(s);
  summary["by_hardware"] = by_hw;
  summary["memory"] = errors(s.memory);
  summary["predicted_not_to_fit"] = s.predicted_not_to_fit;
  return json{{"runs", runs}, {"summary", summary}};
}

}  // namespace moesim::validate
