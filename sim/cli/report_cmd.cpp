// moesim report RESULTS.jsonl [--html report.html] [--top K]
#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <filesystem>

#include "sim/cli/commands.h"
#include "sim/report/html_report.h"
#include "sim/io/input_error.h"
#include "sim/io/sweep_results.h"

namespace moesim {

namespace po = boost::program_options;

int cmd_report(const std::vector<std::string>& args) {
  po::options_description d("moesim report RESULTS.jsonl [--html report.html] [--top K]");
  d.add_options()("help,h", "this help")("results", po::value<std::string>()->required(),
                                         "results file of moesim sweep (--out)")(
      "html", po::value<std::string>()->default_value("report.html"), "write the interactive HTML report here")(
      "top", po::value<int>()->default_value(10), "configurations in the ranked table and the breakdown charts");
  po::positional_options_description pos;
  pos.add("results", 1);
  const auto parsed = parse_command(args, d, &pos);
  if (!parsed) return 0;
  const po::variables_map& vm = *parsed;
  const int top = vm["top"].as<int>();
  if (top < 1) throw InputError("--top: expected a whole number >= 1, got " + std::to_string(top));
  const std::string results = vm["results"].as<std::string>(), html_path = vm["html"].as<std::string>();
  const auto lines = io::read_sweep_results(results);
  const auto data = html::sweep_report_data(results, lines, top);
  auto out = open_output(html_path);
  html::write_report(out, "moesim sweep: " + std::filesystem::path(results).filename().string(), data);
  fmt::print("{} points ({} ok) -> {}\n", lines.size(), data.at("counts").at("ok").get<int>(), html_path);
  return 0;
}

}  // namespace moesim
