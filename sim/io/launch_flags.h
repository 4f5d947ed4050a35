#pragma once
// Inside the launch-script reader (sim/io/launch_script.h): the table of Megatron-LM / Megatron-Core /
// MindSpeed-LLM training flags moesim knows, and the translation of an argument list into a model and a
// layout. The shell-script reader and the moe_recipes YAML reader both produce an ArgumentList; the
// argument writer reads the same table backwards.
#include <optional>
#include <string>
#include <vector>

#include "sim/io/launch_script.h"

namespace moesim::io::launch {

// What a flag does to a simulation: sets a model or layout field, changes nothing moesim predicts
// (learning rate, paths, logging, fused kernels whose speed the profile's efficiencies already hold),
// or would change performance in a way moesim does not model.
enum class FlagUse { model, layout, irrelevant, not_modelled };
// How many values follow the flag: none (a switch), one, or a list up to the next flag.
enum class Arity { none, one, list };

struct FlagInfo {
  const char* name;  // without the leading "--", words joined by '-'
  FlagUse use;
  Arity arity;
};

// The entry of a flag ("--foo-bar" or "foo_bar" spelling both accepted), or none when unknown.
const FlagInfo* find_flag(const std::string& flag);
// "foo_bar" / "--foo-bar" -> "foo-bar".
std::string canonical_flag(const std::string& flag);

// One word of a command line and the line of the file it was written on.
struct Word {
  std::string text;
  int line = 0;
};

struct LaunchArgument {
  std::string flag;  // canonical name
  std::vector<std::string> values;
  int line = 0;
};

struct ArgumentList {
  std::string file;
  std::string format;
  std::vector<LaunchArgument> args;
  std::optional<int> devices;  // from the launcher or the script's node variables
  std::string devices_from;    // where that came from, for the notes
};

// Groups the training words (after the .py) into flags and their values by the table's arities.
// An unknown flag or a flag without its value is an InputError naming file, line and flag.
std::vector<LaunchArgument> group_arguments(const std::vector<Word>& words, const std::string& file);

// The model and layout an argument list sets, with each flag sorted into used / ignored / not modelled.
LaunchConfig translate_arguments(const ArgumentList& list, const LaunchOptions& options);

// Readers of the two YAML kinds (sim/io/launch_yaml.cpp); `text` is the whole file.
bool is_yaml_file(const std::string& path, const std::string& text);
LaunchConfig read_yaml_config(const std::string& path, const std::string& text, const LaunchOptions& options);

}  // namespace moesim::io::launch
