// moesim calibrate TRACE... --hw BASE --out calibrated.json
// moesim replay TRACE --hw PROFILE [--json FILE] [--model M ... [--timeline FILE]]
#include <fmt/format.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <iostream>
#include <optional>

#include "sim/calibration/calibrate.h"
#include "sim/calibration/timeline.h"
#include "sim/cli/commands.h"
#include "sim/cli/configuration.h"
#include "sim/engine/op_sim.h"
#include "sim/io/input_error.h"
#include "sim/io/specs_io.h"
#include "sim/io/trace_io.h"

namespace moesim {

namespace po = boost::program_options;

namespace {

// The samples of the traces; they view the traces' names, so the traces are kept with them.
struct LoadedTraces {
  std::vector<io::Trace> traces;
  std::vector<calibrate::Sample> samples;
};

LoadedTraces load_samples(const std::vector<std::string>& paths, const HardwareProfile& hw) {
  LoadedTraces loaded;
  std::vector<io::Trace>& traces = loaded.traces;
  for (const std::string& path : paths) {
    traces.push_back(io::read_trace(path));
    const io::Trace& t = traces.back();
    // A profile of CPU ops alone (no CUDA activity, or a CPU run) would otherwise give an empty table.
    if (t.kernels.empty())
      throw InputError(path + ": no GPU or NPU kernels in the trace (a CPU-only profile, or profiled without CUDA/NPU "
                              "activity): nothing to replay or calibrate");
    fmt::print("{}: {} ({}{}{} kernels)\n", path, io::to_string(t.format), t.device_name.empty() ? "" : t.device_name + ", ",
               t.world_size > 0 ? fmt::format("world size {}, ", t.world_size) : "", t.kernels.size());
  }
  if (const int aligned = calibrate::align_collectives(traces))
    fmt::print("{} collectives aligned across {} ranks (each takes the shortest rank's span)\n", aligned, traces.size());
  else if (std::any_of(traces.begin(), traces.end(), [](const io::Trace& t) { return t.format == io::TraceFormat::chrome_json; }))
    fmt::print("collective kernels keep their spans, waits for other ranks included (tier bandwidths are fitted only from "
               "the traces of all ranks of a run)\n");
  for (const io::Trace& t : traces) {
    auto s = calibrate::classify(t, hw);
    loaded.samples.insert(loaded.samples.end(), s.begin(), s.end());
  }
  return loaded;
}

void print_replay(const calibrate::ReplayReport& r, const std::string& profile) {
  fmt::print("\nreplay against {}\n{:<16} {:>8} {:>9} {:>10} {:>10} {:>12} {:>12}\n", profile, "kind", "kernels", "predicted",
             "median|e|%", "p90|e|%", "measured ms", "predicted ms");
  for (calibrate::OpKind k : {calibrate::OpKind::matmul, calibrate::OpKind::grouped_matmul, calibrate::OpKind::attention,
                              calibrate::OpKind::vector, calibrate::OpKind::collective, calibrate::OpKind::other}) {
    const auto it = r.kinds.find(k);
    if (it == r.kinds.end()) continue;
    const calibrate::KindError& e = it->second;
    if (e.count > 0) {
      fmt::print("{:<16} {:>8} {:>9} {:>10.1f} {:>10.1f} {:>12.3f} {:>12.3f}\n", calibrate::to_string(k), e.recognised, e.count,
                 e.median_abs_error_pct, e.p90_abs_error_pct, e.measured * 1e3, e.predicted * 1e3);
    } else {
      fmt::print("{:<16} {:>8} {:>9} {:>10} {:>10} {:>12} {:>12}\n", calibrate::to_string(k), e.recognised, 0, "-", "-", "-", "-");
    }
  }
  fmt::print("total of predicted kernels: measured {:.3f} ms, predicted {:.3f} ms ({:+.1f}%); they cover {:.1f}% of the "
             "trace's kernel time ({} of {} kernels)\n",
             r.measured_total * 1e3, r.predicted_total * 1e3,
             r.measured_total > 0 ? (r.predicted_total / r.measured_total - 1) * 100 : 0.0,
             r.all_kernels_measured > 0 ? r.measured_total / r.all_kernels_measured * 100 : 0.0, r.predicted_kernels, r.kernels);
}

// The configuration simulated at operator level and one of its stages read beside the measured traces
// (sim/calibration/timeline.h); returns what it printed, as JSON.
nlohmann::json replay_beside_simulation(const po::variables_map& vm, const Configuration& c, int stage,
                                        const std::vector<io::Trace>& traces) {
  const sim::OpLevelResult run = sim::simulate_op_level(c.model, c.layout, c.hw);
  std::vector<calibrate::TimelineUse> measured;
  for (const io::Trace& t : traces) measured.push_back(calibrate::measured_use(t));
  const calibrate::TimelineUse simulated = calibrate::simulated_use(run, stage);
  fmt::print("\nsimulated at operator level: {} on {} x {}, iteration {:.3f} s\n", c.model.name, c.layout.devices, c.hw.name,
             run.result.iteration_time);
  calibrate::print_side_by_side(std::cout, measured, simulated);
  if (vm.count("timeline")) {
    auto out = open_output(vm["timeline"].as<std::string>());
    calibrate::write_side_by_side(out, traces, run);
  }
  nlohmann::json j = {{"simulated", calibrate::to_json(simulated)}, {"measured", nlohmann::json::array()}};
  for (const calibrate::TimelineUse& m : measured) j["measured"].push_back(calibrate::to_json(m));
  return j;
}

}  // namespace

int cmd_replay(const std::vector<std::string>& args) {
  po::options_description d(
      "moesim replay TRACE... --hw PROFILE [--json FILE] [--kernels FILE] [(--model M (--layout L.json | layout flags) | "
      "--from-script SCRIPT) [--stage S] [--timeline FILE]]");
  add_configuration_flags(d);
  d.add_options()(
      "trace", po::value<std::vector<std::string>>()->required(),
      "Kineto .json/.json.gz, Ascend kernel_details.csv or ASCEND_PROFILER_OUTPUT folder; several: the ranks of one run")(
      "json", po::value<std::string>(), "write per-kind errors and totals as JSON")(
      "kernels", po::value<std::string>(), "write every kernel (kind, measured, predicted, shapes or why not predicted) as CSV")(
      "stage", po::value<int>(), "with a configuration: the pipeline stage the traces' ranks ran (default 0)")(
      "timeline", po::value<std::string>(),
      "with a configuration: write the measured kernels beside the simulated operators as one Chrome trace (Perfetto)");
  po::positional_options_description pos;
  pos.add("trace", -1);
  const auto parsed = parse_command(args, d, &pos);
  if (!parsed) return 0;
  const po::variables_map& vm = *parsed;
  // With a configuration, it is read (and checked) before the traces, and its profile serves the replay.
  std::optional<Configuration> configuration;
  int stage = 0;
  if (vm.count("model") || vm.count("from-script")) {
    configuration = load_configuration(vm);
    stage = vm.count("stage") ? vm["stage"].as<int>() : 0;
    if (stage < 0 || stage >= configuration->layout.pp)
      throw InputError(fmt::format("--stage: expected a pipeline stage from 0 to {} (the layout's pp - 1), got {}",
                                   configuration->layout.pp - 1, stage));
  } else {
    for (const char* flag : {"stage", "timeline", "vocab", first_layout_flag(vm)})
      if (flag && vm.count(flag)) throw InputError(std::string("--") + flag + ": expected only with --model or --from-script");
  }
  const HardwareProfile hw = configuration ? configuration->hw : io::load_profile(vm["hw"].as<std::string>());
  const LoadedTraces loaded = load_samples(vm["trace"].as<std::vector<std::string>>(), hw);
  const auto& samples = loaded.samples;
  const calibrate::ReplayReport r = calibrate::replay(samples, hw);
  print_replay(r, hw.name);
  nlohmann::json report = calibrate::to_json(r);
  if (configuration) report["side_by_side"] = replay_beside_simulation(vm, *configuration, stage, loaded.traces);
  if (vm.count("json")) open_output(vm["json"].as<std::string>()) << report.dump(2) << "\n";
  if (vm.count("kernels")) {
    auto out = open_output(vm["kernels"].as<std::string>());
    out << "kind,measured_us,predicted_us,abs_error_pct,m,n,k,count,flops,hbm_bytes,collective_bytes,group_size,"
           "beside_collective_pct,not_predicted,name\n";
    for (const calibrate::Sample& s : samples) {
      const double p = s.predictable ? calibrate::predict(s, hw) : 0;
      std::string name(s.name.substr(0, 120));
      std::replace(name.begin(), name.end(), '"', '\'');
      out << fmt::format("{},{:.3f},{},{},{},{},{},{},{:.6g},{:.6g},{:.6g},{},{:.0f},{},\"{}\"\n", calibrate::to_string(s.kind),
                         s.measured * 1e6, s.predictable ? fmt::format("{:.3f}", p * 1e6) : "",
                         s.predictable && s.measured > 0 ? fmt::format("{:.1f}", std::abs(p - s.measured) / s.measured * 100) : "",
                         s.gemm.m, s.gemm.n, s.gemm.k, s.gemm.count, s.op_flops, s.hbm, s.buffer, s.group_size,
                         100 * calibrate::fraction_beside_collective(s), s.why, name);
    }
  }
  return 0;
}

int cmd_calibrate(const std::vector<std::string>& args) {
  po::options_description d("moesim calibrate TRACE... --hw BASE --out calibrated.json");
  d.add_options()("help,h", "this help")("traces", po::value<std::vector<std::string>>()->required(), "profiler traces")(
      "hw", po::value<std::string>()->required(), "base hardware profile (built-in name or file)")(
      "out", po::value<std::string>()->required(), "calibrated profile to write")(
      "name", po::value<std::string>(), "name of the calibrated profile (default: BASE-calibrated)");
  po::positional_options_description pos;
  pos.add("traces", -1);
  const auto parsed = parse_command(args, d, &pos);
  if (!parsed) return 0;
  const po::variables_map& vm = *parsed;
  const std::string base_file = io::profile_path(vm["hw"].as<std::string>());
  const io::json base_json = io::read_json_file(base_file);
  const HardwareProfile base = io::parse_profile(base_json, base_file);
  const auto traces = vm["traces"].as<std::vector<std::string>>();
  const LoadedTraces loaded = load_samples(traces, base);
  const auto& samples = loaded.samples;
  const calibrate::FitResult fit = calibrate::fit(samples, base);
  if (fit.values.empty())
    throw InputError(traces.front() + ": no kernel with recorded shapes or message sizes to fit (nothing calibrated)");

  std::string trace_list;
  for (const auto& t : traces) trace_list += (trace_list.empty() ? "" : ", ") + t;
  HardwareProfile calibrated = fit.profile;
  calibrated.name = vm.count("name") ? vm["name"].as<std::string>() : base.name + "-calibrated";
  io::json out = io::profile_json(calibrated, base_json);
  out["calibrated_from"] = traces;
  fmt::print("\n{:<52} {:>12} {:>12} {:>8} {:>16}\n", "fitted parameter", "base", "calibrated", "samples", "rms |e|% before>after");
  for (const calibrate::FittedValue& v : fit.values) {
    fmt::print("{:<52} {:>12.4g} {:>12.4g} {:>8} {:>8.1f} > {:<6.1f}\n", v.parameter, v.before, v.after, v.samples,
               v.rms_residual_before_pct, v.rms_residual_after_pct);
    // The source of a fitted number says where it now comes from and what it replaced.
    const std::string citation = fmt::format(
        "calibrated by moesim calibrate from {} ({}): {} = {:.6g} ({} samples, rms relative residual {:.1f}% -> {:.1f}%; base "
        "value {:.6g})",
        trace_list, v.note, v.parameter, v.after, v.samples, v.rms_residual_before_pct, v.rms_residual_after_pct, v.before);
    if (v.parameter.starts_with("tiers[")) {
      const std::size_t i = std::stoul(v.parameter.substr(6));
      io::json& src = out["tiers"][i]["source"];
      src = src.get<std::string>() + "; " + citation;
    } else {
      const std::string field = v.parameter.substr(std::string("device.").size());
      const std::string key = field.substr(0, field.find('.'));
      io::json& src = out["device"]["source"];
      src[key] = (src.contains(key) && src[key].is_string() ? src[key].get<std::string>() + "; " : std::string()) + citation;
    }
  }
  for (const std::string& r : fit.rejected) fmt::print("not calibrated (kept the base value): {}\n", r);
  open_output(vm["out"].as<std::string>()) << out.dump(2) << "\n";
  print_replay(calibrate::replay(samples, base), base.name);
  print_replay(calibrate::replay(samples, calibrated), calibrated.name);
  fmt::print("\nwrote {}\n", vm["out"].as<std::string>());
  return 0;
}

}  // namespace moesim
