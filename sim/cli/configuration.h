#pragma once
// One training configuration from the command line: --model with --layout and layout flags, or
// --from-script SCRIPT (with layout flags on top), and --hw. Shared by the commands that take one
// configuration (simulate, ops, replay).
#include <boost/program_options.hpp>

#include "costmodels/specs.h"
#include "sim/cli/commands.h"

namespace moesim {

struct Configuration {
  ModelSpec model;
  HardwareProfile hw;
  LayoutSpec layout;
};

// --help, --model, --hw (required), --from-script, --vocab and the layout flags.
void add_configuration_flags(boost::program_options::options_description& d);

// The first of --layout and the layout flags given, or nullptr: for commands where a configuration is optional.
const char* first_layout_flag(const boost::program_options::variables_map& vm);

// The configuration the parsed flags name; bad input is an InputError naming the file or flag.
Configuration load_configuration(const boost::program_options::variables_map& vm);

}  // namespace moesim
