// moesim validate FILE... [--json out.json] [--html report.html] [--max-mape X] [--pass-level]
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <boost/program_options.hpp>
#include <fstream>
#include <iostream>

#include "sim/cli/commands.h"
#include "sim/report/html_report.h"
#include "sim/io/input_error.h"
#include "sim/validation/validate.h"

namespace moesim {

namespace po = boost::program_options;

namespace {

// The pass-level rows beside operator-level ones: each throughput row with its pass-level prediction.
std::vector<validate::RunResult> pass_level_rows(std::vector<validate::RunResult> rows) {
  for (validate::RunResult& r : rows) {
    if (!r.pass_level_error_pct) continue;
    r.predicted = *r.pass_level_predicted;
    r.error_pct = *r.pass_level_error_pct;
  }
  return rows;
}

// How far the operator level moves the throughput predictions from the pass level.
void print_level_difference(const std::vector<validate::RunResult>& results) {
  const validate::Summary p = validate::summarise(pass_level_rows(results));
  fmt::print("operator level above; pass level: MAPE {:.1f}%, max |error| {:.1f}%\n", p.mape_pct, p.max_abs_error_pct);
  std::vector<double> moved_pct;  // |op - pass| / pass per scored throughput figure
  for (const validate::RunResult& r : results)
    if (r.pass_level_predicted) moved_pct.push_back(100 * std::abs(r.predicted - *r.pass_level_predicted) / *r.pass_level_predicted);
  if (moved_pct.empty()) return;
  std::sort(moved_pct.begin(), moved_pct.end());
  double sum = 0;
  for (const double m : moved_pct) sum += m;
  const auto over = [&](double pct) { return moved_pct.end() - std::upper_bound(moved_pct.begin(), moved_pct.end(), pct); };
  fmt::print("operator level against pass level: mean |difference| {:.1f}%, median {:.1f}%, max {:.1f}%; {} of {} "
             "figures differ by more than 2%, {} by more than 5%\n",
             sum / moved_pct.size(), moved_pct[moved_pct.size() / 2], moved_pct.back(), over(2), moved_pct.size(), over(5));
}

}  // namespace

int cmd_validate(const std::vector<std::string>& args) {
  po::options_description d("moesim validate FILE... [--json out.json] [--html report.html] [--max-mape X] [--pass-level]");
  d.add_options()("help,h", "this help")("files", po::value<std::vector<std::string>>()->required(), "measured-run files")(
      "json", po::value<std::string>(), "write runs and summary as JSON")(
      "html", po::value<std::string>(), "write an interactive HTML report: predicted against measured")(
      "max-mape", po::value<double>(), "exit non-zero when the mean absolute % error exceeds this")(
      "verbose,v", "also list skipped records");
  add_level_flags(d);
  po::positional_options_description pos;
  pos.add("files", -1);
  const auto parsed = parse_command(args, d, &pos);
  if (!parsed) return 0;
  const po::variables_map& vm = *parsed;
  const sim::Level level = level_from_flags(vm);
  const bool op_level = level == sim::Level::op;
  std::vector<validate::RunResult> results;
  // At operator level each row also shows the pass-level prediction's error and how far the operator
  // level moves the prediction from it: where the pass-level hiding formulas and the event order disagree.
  fmt::print("{:<70} {:<14} {:<18} {:>12} {:>12} {:>8}{}\n", "id", "hardware", "metric", "measured", "predicted", "error%",
             op_level ? fmt::format(" {:>8} {:>8}", "pass%", "op/pass%") : "");
  for (const auto& file : vm["files"].as<std::vector<std::string>>()) {
    for (const auto& run : validate::load_runs(file)) {
      for (const validate::RunResult& r : validate::evaluate(run, level)) {
        if (r.skip_reason.empty()) {
          // TFLOP/s and GB (1e9 bytes) keep the columns readable; the JSON keeps SI units.
          const double scale = r.metric == "tflops_per_device" ? 1e-12 : r.metric == "memory" ? 1e-9 : 1.0;
          const std::string beside =
              r.pass_level_error_pct
                  ? fmt::format(" {:>+8.1f} {:>+8.1f}", *r.pass_level_error_pct, 100 * (r.predicted / *r.pass_level_predicted - 1))
                  : "";
          fmt::print("{:<70} {:<14} {:<18} {:>12.4g} {:>12.4g} {:>+8.1f}{}{}\n", r.id, r.hardware, r.metric,
                     r.measured * scale, r.predicted * scale, r.error_pct, beside, r.fits ? "" : "  (does not fit)");
        } else if (vm.count("verbose")) {
          fmt::print("{:<70} skipped: {}\n", r.id, r.skip_reason);
        }
        results.push_back(r);
      }
    }
  }
  const validate::Summary s = validate::summarise(results);
  const auto skipped = std::count_if(results.begin(), results.end(), [](const auto& r) { return !r.skip_reason.empty(); });
  fmt::print("\n{} runs scored ({} skipped): MAPE {:.1f}%, max |error| {:.1f}%\n", s.count, skipped, s.mape_pct,
             s.max_abs_error_pct);
  if (op_level) print_level_difference(results);
  for (const auto& [name, v] : s.by_hardware)
    fmt::print("  {:<16} {:>4} runs  MAPE {:5.1f}%  max {:5.1f}%\n", name, v.count, v.mape_pct, v.max_abs_error_pct);
  if (s.memory.count > 0)
    fmt::print("memory: {} runs scored: MAPE {:.1f}%, max |error| {:.1f}%\n", s.memory.count, s.memory.mape_pct,
               s.memory.max_abs_error_pct);
  if (s.predicted_not_to_fit > 0)
    fmt::print("predicted not to fit in device memory, though they ran: {} runs\n", s.predicted_not_to_fit);
  if (vm.count("json")) {
    auto out = open_output(vm["json"].as<std::string>());
    out << validate::to_json(results, s).dump(2) << "\n";
  }
  if (vm.count("html")) {
    auto out = open_output(vm["html"].as<std::string>());
    html::write_report(out, "moesim validation", html::validation_report_data(results, s));
  }
  if (vm.count("max-mape") && s.mape_pct > vm["max-mape"].as<double>()) {
    std::cerr << fmt::format("moesim validate: MAPE {:.1f}% exceeds --max-mape {:.1f}%\n", s.mape_pct, vm["max-mape"].as<double>());
    return 1;
  }
  return 0;
}

}  // namespace moesim
