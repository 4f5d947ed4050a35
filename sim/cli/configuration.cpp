#include "sim/cli/configuration.h"

#include <map>
#include <string>
#include <utility>

#include "costmodels/layout.h"
#include "sim/io/input_error.h"
#include "sim/io/specs_io.h"

namespace moesim {

namespace po = boost::program_options;

namespace {

void add_layout_flags(po::options_description& d) {
  d.add_options()
      ("layout", po::value<std::string>(), "layout JSON file (flags below override its fields)")
      ("devices", po::value<int>(), "number of devices")
      ("tp", po::value<int>(), "tensor parallel size")
      ("pp", po::value<int>(), "pipeline parallel size")
      ("vpp", po::value<int>(), "virtual pipeline stages (model chunks) per device")
      ("ep", po::value<int>(), "expert parallel size")
      ("etp", po::value<int>(), "expert tensor parallel size (default: tp)")
      ("cp", po::value<int>(), "context parallel size")
      ("micro-batch", po::value<int>(), "micro batch size (sequences)")
      ("global-batch", po::value<int>(), "global batch size (sequences)")
      ("seq-len", po::value<int>(), "sequence length")
      ("recompute", po::value<std::string>(), "none|selective|selective_op|full")
      ("schedule", po::value<std::string>(), "gpipe|1f1b|interleaved|zero-bubble|dualpipe")
      ("precision", po::value<std::string>(), "bf16|fp8")
      ("ep-overlap", po::value<bool>(), "overlap EP all-to-all with compute (true|false)")
      ("tp-overlap", po::value<bool>(), "overlap TP communication with GEMMs (true|false)")
      ("hierarchical-ep", po::value<bool>(), "hierarchical EP all-to-all (true|false)")
      ("expert-skew", po::value<double>(), "lognormal sigma of per-expert load (0 = balanced)")
      ("redundant-experts", po::value<int>(), "EPLB redundant expert replicas per EP group")
      ("activation-swap", po::value<double>(), "fraction of saved activations swapped to host memory (0..1)");
}

// The first layout flag given that sets a value (any of add_layout_flags but --layout), in their order;
// read from the options themselves so that a flag added there is seen here too. The names live in a
// description kept for the program's lifetime.
const char* value_flag(const po::variables_map& vm) {
  static const po::options_description layout_options = [] {
    po::options_description d;
    add_layout_flags(d);
    return d;
  }();
  for (const auto& option : layout_options.options())
    if (option->long_name() != "layout" && vm.count(option->long_name())) return option->long_name().c_str();
  return nullptr;
}

// Layout from --layout (or a launch script's layout, `base` read from `base_file`) with flags applied on
// top, as JSON, then parsed and checked in one place.
LayoutSpec layout_from_flags(const po::variables_map& vm, const ModelSpec& model, const io::json& base = io::json::object(),
                             const std::string& base_file = "") {
  io::json j = base;
  std::string file = base_file.empty() ? "command line" : base_file;
  if (vm.count("layout")) {
    file = vm["layout"].as<std::string>();
    j = io::read_json_file(file);
    if (!j.is_object()) throw InputError(file + ": top level: expected a JSON object");
  }
  const bool any_flag = value_flag(vm) != nullptr;
  const std::map<std::string, std::string> int_flags = {
      {"devices", "devices"}, {"tp", "tp"}, {"pp", "pp"}, {"vpp", "vpp"}, {"ep", "ep"}, {"etp", "etp"},
      {"cp", "cp"}, {"micro-batch", "micro_batch"}, {"global-batch", "global_batch"}, {"seq-len", "seq_len"}};
  if ((vm.count("layout") || !base_file.empty()) && any_flag) file += " (with command-line flags)";
  for (const auto& [flag, key] : int_flags)
    if (vm.count(flag)) j[key] = vm[flag].as<int>();
  for (const auto& [flag, key] : std::map<std::string, std::string>{{"recompute", "recompute"}, {"schedule", "schedule"},
                                                                     {"precision", "precision"}})
    if (vm.count(flag)) j[key] = vm[flag].as<std::string>();
  // --recompute replaces the file's policy, and with it the modules a selective policy names.
  if (vm.count("recompute") && vm["recompute"].as<std::string>() != "selective") j.erase("recompute_modules");
  if (vm.count("ep-overlap")) j["overlap"]["ep_all_to_all"] = vm["ep-overlap"].as<bool>();
  if (vm.count("tp-overlap")) j["overlap"]["tp_comm"] = vm["tp-overlap"].as<bool>();
  if (vm.count("hierarchical-ep")) j["ep_all_to_all"] = vm["hierarchical-ep"].as<bool>() ? "hierarchical" : "pairwise";
  if (vm.count("expert-skew")) j["expert_load"]["skew"] = vm["expert-skew"].as<double>();
  if (vm.count("redundant-experts")) j["expert_load"]["redundant_experts"] = vm["redundant-experts"].as<int>();
  if (vm.count("activation-swap")) j["activation_swap"] = vm["activation-swap"].as<double>();
  if (!j.contains("seq_len") && model.seq_len > 0) j["seq_len"] = model.seq_len;
  LayoutSpec layout = io::parse_layout(j, file);
  if (auto err = complete_and_check_layout(model, layout)) throw InputError(file + ": invalid layout: " + *err);
  return layout;
}


// The model and layout of --from-script: the script's layout with the command-line layout flags on top,
// checked by the same parsers as files.
Configuration configuration_from_script(const po::variables_map& vm) {
  LaunchedModel script = read_launch_script(vm);
  HardwareProfile hw = io::load_profile(vm["hw"].as<std::string>());
  LayoutSpec layout = layout_from_flags(vm, script.model, script.launch.layout, vm["from-script"].as<std::string>());
  return {std::move(script.model), std::move(hw), std::move(layout)};
}

}  // namespace

// --model, --hw and the layout flags, shared by every command that takes one configuration.
void add_configuration_flags(po::options_description& d) {
  d.add_options()("help,h", "this help")("model", po::value<std::string>(), "built-in name, model file or HF config.json")(
      "hw", po::value<std::string>()->required(), "built-in profile name or profile file")(
      "from-script", po::value<std::string>(),
      "model and layout from a Megatron-LM / MindSpeed-LLM launch script, a moe_recipes YAML or a MindFormers YAML "
      "(layout flags override it)")("vocab", po::value<int>(), "with --from-script: vocabulary size where the script's tokenizer holds it");
  add_layout_flags(d);
}

Configuration load_configuration(const po::variables_map& vm) {
  if (vm.count("from-script")) {
    if (vm.count("model") || vm.count("layout"))
      throw InputError("--from-script: expected no --model or --layout with it (the script gives both; layout flags override it)");
    return configuration_from_script(vm);
  }
  if (!vm.count("model")) throw InputError("--model: required (a model name or file, or --from-script SCRIPT)");
  if (vm.count("vocab")) throw InputError("--vocab: expected only with --from-script");
  ModelSpec model = io::load_model(vm["model"].as<std::string>());
  HardwareProfile hw = io::load_profile(vm["hw"].as<std::string>());
  LayoutSpec layout = layout_from_flags(vm, model);
  return {std::move(model), std::move(hw), std::move(layout)};
}

const char* first_layout_flag(const po::variables_map& vm) {
  if (vm.count("layout")) return "layout";
  return value_flag(vm);
}

}  // namespace moesim
