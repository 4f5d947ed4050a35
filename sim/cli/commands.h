#pragma once
// Subcommands of the moesim CLI and the pieces they share.
#include <boost/program_options.hpp>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sim/engine/op_sim.h"
#include "sim/io/launch_script.h"

namespace moesim {

int cmd_validate(const std::vector<std::string>& args);
int cmd_sweep(const std::vector<std::string>& args);
int cmd_prune(const std::vector<std::string>& args);
int cmd_deploy(const std::vector<std::string>& args);

// "K/M" (experts activated per token / routed experts kept per layer, PreMoe notation) as {K, M}.
std::pair<int, int> parse_prune_level(const std::string& text);
int cmd_report(const std::vector<std::string>& args);
int cmd_merge(const std::vector<std::string>& args);
int cmd_calibrate(const std::vector<std::string>& args);
int cmd_replay(const std::vector<std::string>& args);

// Parses a subcommand's arguments. With --help/-h it prints the options and returns nothing (the
// command then exits 0) before required options are checked.
std::optional<boost::program_options::variables_map> parse_command(
    const std::vector<std::string>& args, const boost::program_options::options_description& options,
    const boost::program_options::positional_options_description* positional = nullptr);

// --from-script SCRIPT (with --devices and --vocab where given): the script's arguments translated and its
// model parsed; prints what the script set, ignored and left unmodelled, before the results.
struct LaunchedModel {
  io::LaunchConfig launch;
  ModelSpec model;
};
LaunchedModel read_launch_script(const boost::program_options::variables_map& vm);

// --pass-level (the pass-level model instead of the operator-level simulation) and --op-level (the
// default, still accepted so that older command lines keep working) of simulate and validate.
void add_level_flags(boost::program_options::options_description& options);
sim::Level level_from_flags(const boost::program_options::variables_map& vm);

// Opens a file the user asked for; one that cannot be written is an InputError naming it.
std::ofstream open_output(const std::string& path);

}  // namespace moesim
