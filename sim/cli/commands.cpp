#include "sim/cli/commands.h"

#include <iostream>

#include "sim/io/input_error.h"

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

std::ofstream open_output(const std::string& path) {
  std::ofstream out(path);
  if (!out) throw InputError(path + ": cannot write file");
  return out;
}

}  // namespace moesim
