#include "sim/cli/commands.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>

#include "sim/io/input_error.h"
#include "sim/io/specs_io.h"

namespace moesim {

namespace po = boost::program_options;

std::optional<po::variables_map> parse_command(const std::vector<std::string>& args, const po::options_description& options,
                                               const po::positional_options_description* positional) {
  po::variables_map vm;
  auto parser = po::command_line_parser(args).options(options);
  if (positional) parser.positional(*positional);
  po::store(parser.run(), vm);
  if (vm.count("help")) {
    std::cout << options;
    return std::nullopt;
  }
  po::notify(vm);
  return vm;
}

namespace {

// What a launch script set, what it left to moesim's defaults and what moesim cannot model, on stdout
// before the results, so that a reader sees what the prediction rests on.
void print_launch_summary(const io::LaunchConfig& c) {
  fmt::print("{} ({}): {} arguments used, {} ignored (no effect on performance), {} not modelled\n", c.file, c.format,
             c.used.size(), c.ignored.size(), c.not_modelled.size());
  const auto list = [](const char* title, const std::vector<std::string>& items) {
    if (!items.empty()) fmt::print("  {}: {}\n", title, fmt::join(items, ", "));
  };
  list("used", c.used);
  list("ignored", c.ignored);
  list("not modelled", c.not_modelled);
  list("notes", c.notes);
  fmt::print("\n");
}

}  // namespace

LaunchedModel read_launch_script(const po::variables_map& vm) {
  io::LaunchOptions options;
  if (vm.count("devices")) options.devices = vm["devices"].as<int>();
  if (vm.count("vocab")) options.vocab = vm["vocab"].as<int>();
  const std::string path = vm["from-script"].as<std::string>();
  io::LaunchConfig launch = io::read_launch_file(path, options);
  print_launch_summary(launch);
  ModelSpec model = io::parse_model(launch.model, path + " (model from its arguments)");
  return {std::move(launch), std::move(model)};
}

void add_level_flags(po::options_description& options) {
  options.add_options()("pass-level", "predict with the pass-level model (whole-pass overlap formulas; the sweep's pre-screen) "
                                      "instead of the operator-level simulation")(
      "op-level", "the operator-level simulation: the default (accepted for older command lines)");
}

sim::Level level_from_flags(const po::variables_map& vm) {
  if (vm.count("pass-level") && vm.count("op-level"))
    throw InputError("--op-level and --pass-level: expected at most one (the operator level is the default)");
  return vm.count("pass-level") ? sim::Level::pass : sim::Level::op;
}

std::ofstream open_output(const std::string& path) {
  std::ofstream out(path);
  if (!out) throw InputError(path + ": cannot write file");
  return out;
}

}  // namespace moesim
