#pragma once
// Launch scripts in, launch arguments out. Reads the training arguments of a Megatron-LM /
// Megatron-Core / MindSpeed-LLM launch script (the bash subset such scripts use), a Megatron-Core
// moe_recipes YAML (its ARGS section) or a MindFormers YAML, and turns them into a model and a layout
// in the JSON formats of models/*.json and validation/layouts/*.json, so that parse_model and
// parse_layout check them as they check files. The reverse, launch_arguments, writes the argument list
// that runs a model and layout, from the same flag table (sim/io/launch_flags.h), so that reading what
// it writes gives the same model and layout back.
#include <optional>
#include <string>
#include <vector>

#include "costmodels/specs.h"
#include "sim/io/json_reader.h"

namespace moesim::io {

// Which framework's argument names an argument list uses.
enum class LaunchDialect { megatron, mindspeed };
LaunchDialect parse_launch_dialect(const std::string& text, const std::string& where);
const char* to_string(LaunchDialect d);

struct LaunchOptions {
  std::optional<int> devices;  // overrides the script's node count x devices per node (placeholders)
  std::optional<int> vocab;    // where the vocabulary lives only in a tokenizer the script names
};

struct LaunchConfig {
  std::string file;
  std::string format;  // "shell script", "moe_recipes YAML", "MindFormers YAML"
  json model;          // models/*.json format
  json layout;         // layout file format
  // The flags (or YAML keys) as the script writes them, with their values: those that set the model or
  // the layout, those that do not change performance, and those that would but are not modelled.
  std::vector<std::string> used, ignored, not_modelled;
  std::vector<std::string> notes;  // where a value came from when the arguments did not say it
};

// Reads a launch script or YAML (by its contents: a YAML with an ARGS map is a moe_recipes recipe, one
// with model.model_config a MindFormers config, anything else a shell script). Bad input is an
// InputError of one line naming the file, the line and the flag.
LaunchConfig read_launch_file(const std::string& path, const LaunchOptions& options = {});

// The argument list that runs `model` on `layout` with the given framework, one flag per line, as a
// ready GPT_ARGS="..." block.
std::string launch_arguments(const ModelSpec& model, const LayoutSpec& layout, LaunchDialect dialect);

}  // namespace moesim::io
