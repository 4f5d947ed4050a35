// Launch configurations written as YAML: Megatron-Core moe_recipes (examples/moe_recipes/*/*.yaml: the
// training arguments are the ARGS map, flag names with '_' for '-') and MindFormers run configs
// (model.model_config, moe_config, parallel_config, recompute_config, runner_config).
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <filesystem>
#include <regex>

#include "sim/io/launch_flags.h"

namespace moesim::io::launch {

namespace {

int line_of(const YAML::Node& n) { return n.Mark().line + 1; }

YAML::Node parse_yaml(const std::string& path, const std::string& text) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    std::string message;  // the parser may quote the offending byte: keep the line printable
    for (char c : e.msg) message += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
    throw InputError(fmt::format("{}:{}: not valid YAML: {}", path, e.mark.line + 1, message));
  }
}

// moe_recipes: ARGS as an argument list; true is a switch given, false a switch left out.
LaunchConfig read_recipe(const std::string& path, const YAML::Node& root, const LaunchOptions& options) {
  ArgumentList list{path, "moe_recipes YAML", {}, std::nullopt, ""};
  const YAML::Node args = root["ARGS"];
  if (!args.IsMap()) throw InputError(fmt::format("{}:{}: ARGS: expected a map of Megatron-LM arguments", path, line_of(args)));
  for (const auto& kv : args) {
    const std::string key = kv.first.as<std::string>("");
    const int line = line_of(kv.first);
    const FlagInfo* info = find_flag(key);
    if (!info) throw InputError(fmt::format("{}:{}: {}: unknown flag (not a Megatron-LM argument moesim knows)", path, line, key));
    LaunchArgument a{info->name, {}, line};
    const YAML::Node& v = kv.second;
    if (info->arity == Arity::none) {
      const std::string b = v.IsScalar() ? v.Scalar() : "";
      if (b != "true" && b != "false") throw InputError(fmt::format("{}:{}: {}: expected true or false", path, line, key));
      if (b == "false") continue;
    } else if (v.IsSequence()) {
      for (const auto& e : v) a.values.push_back(e.IsScalar() ? e.Scalar() : "");
    } else if (v.IsScalar() && !v.Scalar().empty()) {
      a.values.push_back(v.Scalar());
    } else {
      throw InputError(fmt::format("{}:{}: {}: expected a value", path, line, key));
    }
    if (info->arity == Arity::one && a.values.size() != 1) throw InputError(fmt::format("{}:{}: {}: expected one value", path, line, key));
    list.args.push_back(std::move(a));
  }
  // The recipes name their GPU count in the file name (qwen3_30b/h100/bf16_32GPU_TP1PP1EP8.yaml).
  static const std::regex gpus(R"((\d+)GPU)", std::regex::icase);
  std::smatch m;
  const std::string name = std::filesystem::path(path).filename().string();
  if (std::regex_search(name, m, gpus) && m[1].length() < 8) {
    list.devices = std::stoi(m[1].str());
    list.devices_from = "the recipe's file name";
  }
  return translate_arguments(list, options);
}

// A MindFormers key: its value and line, and whether it is used, ignored or not modelled.
class MindFormersConfig {
 public:
  MindFormersConfig(std::string path, const YAML::Node& root, LaunchConfig& out) : path_(std::move(path)), root_(root), out_(out) {}

  std::optional<YAML::Node> find(const std::string& dotted) const {
    // reset, not assignment: assigning a yaml-cpp Node writes into the node it refers to.
    YAML::Node n;
    n.reset(root_);
    std::size_t start = 0;
    while (start <= dotted.size()) {
      const std::size_t end = dotted.find('.', start);
      const std::string key = dotted.substr(start, end == std::string::npos ? std::string::npos : end - start);
      const YAML::Node& current = n;  // const lookups do not insert missing keys
      if (!current.IsMap() || !current[key]) return std::nullopt;
      n.reset(current[key]);
      if (end == std::string::npos) break;
      start = end + 1;
    }
    return n;
  }
  int integer(const std::string& key, std::optional<int> fallback, int min = 1) {
    const auto n = find(key);
    if (!n) {
      if (!fallback) throw InputError(fmt::format("{}: {}: expected a whole number (no default)", path_, key));
      return *fallback;
    }
    const int line = line_of(*n);
    int v = 0;
    try {
      v = n->as<int>();
    } catch (const YAML::Exception&) {
      throw InputError(fmt::format("{}:{}: {}: expected a whole number >= {}", path_, line, key, min));
    }
    if (v < min) throw InputError(fmt::format("{}:{}: {}: expected a whole number >= {}, got {}", path_, line, key, min, v));
    out_.used.push_back(fmt::format("{}: {}", key, v));
    return v;
  }
  std::string text(const std::string& key, const std::string& fallback) {
    const auto n = find(key);
    if (!n || !n->IsScalar()) return fallback;
    out_.used.push_back(fmt::format("{}: {}", key, n->Scalar()));
    return n->Scalar();
  }
  void note(const std::string& key, std::vector<std::string>& into) {
    if (const auto n = find(key); n && n->IsScalar()) into.push_back(fmt::format("{}: {}", key, n->Scalar()));
  }

 private:
  std::string path_;
  YAML::Node root_;
  LaunchConfig& out_;
};

LaunchConfig read_mindformers(const std::string& path, const YAML::Node& root, const LaunchOptions& options) {
  LaunchConfig c;
  c.file = path;
  c.format = "MindFormers YAML";
  MindFormersConfig y(path, root, c);
  const std::string mc = "model.model_config.";
  const int layers = y.integer(mc + "num_layers", std::nullopt), hidden = y.integer(mc + "hidden_size", std::nullopt);
  const int heads = y.integer(mc + "num_heads", std::nullopt);
  const int seq = y.integer(mc + "seq_length", std::nullopt);
  c.model = {{"name", std::filesystem::path(path).stem().string()},
             {"source", c.format + ": " + path},
             {"layers", layers},
             {"hidden", hidden},
             {"vocab", options.vocab ? *options.vocab : y.integer(mc + "vocab_size", std::nullopt)},
             {"seq_len", seq},
             {"ffn", {{"intermediate", y.integer(mc + "intermediate_size", 4 * hidden)}, {"activation", "swiglu"}}},
             {"tie_embeddings", false}};
  if (y.find(mc + "kv_lora_rank")) {
    c.model["attention"] = {{"type", "mla"},
                            {"heads", heads},
                            {"q_lora_rank", y.integer(mc + "q_lora_rank", 0, 0)},
                            {"kv_lora_rank", y.integer(mc + "kv_lora_rank", std::nullopt)},
                            {"qk_nope_head_dim", y.integer(mc + "qk_nope_head_dim", std::nullopt)},
                            {"qk_rope_head_dim", y.integer(mc + "qk_rope_head_dim", std::nullopt)},
                            {"v_head_dim", y.integer(mc + "v_head_dim", std::nullopt)}};
  } else {
    const int kv = y.integer(mc + "n_kv_heads", heads);
    c.model["attention"] = {{"type", kv < heads ? "gqa" : "mha"}, {"heads", heads}, {"kv_heads", kv}};
  }
  if (y.find("moe_config.expert_num")) {
    const int experts = y.integer("moe_config.expert_num", std::nullopt);
    json moe = {{"experts", experts},
                {"top_k", y.integer("moe_config.num_experts_chosen", 1)},
                {"expert_intermediate", y.integer("moe_config.moe_intermediate_size", c.model["ffn"]["intermediate"].get<int>())},
                {"shared_experts", y.integer("moe_config.shared_expert_num", 0, 0)},
                {"first_dense_layers", y.integer("moe_config.first_k_dense_replace", 0, 0)}};
    if (y.find("moe_config.n_group")) {
      moe["router_groups"] = y.integer("moe_config.n_group", 1);
      moe["router_group_top_k"] = y.integer("moe_config.topk_group", 1);
    }
    c.model["moe"] = moe;
  }
  // Devices = data x model x pipeline parallel; experts are carved out of data parallelism.
  const int dp = y.integer("parallel_config.data_parallel", 1), tp = y.integer("parallel_config.model_parallel", 1);
  const int pp = y.integer("parallel_config.pipeline_stage", 1);
  const int micro_batches = y.integer("parallel_config.micro_batch_num", 1);
  const int batch = y.integer("runner_config.batch_size", 1);
  const int vpp = y.integer(mc + "pp_interleave_num", 1);
  const std::string recompute = y.text("recompute_config.recompute", "False");
  // moe_config.ep_extend_tp (as MindSpeed-LLM's --moe-tp-extend-ep): experts are spread over expert_parallel x
  // model_parallel ranks instead of having their weights split by model_parallel.
  const bool ep_extend_tp = y.text("moe_config.ep_extend_tp", "False") == "True";
  const int expert_parallel = y.integer("parallel_config.expert_parallel", 1);
  const bool select = y.text("recompute_config.select_recompute", "False") == "True";
  c.layout = {{"devices", options.devices ? *options.devices : dp * tp * pp},
              {"tp", tp},
              {"pp", pp},
              {"vpp", vpp},
              {"ep", ep_extend_tp ? expert_parallel * tp : expert_parallel},
              {"sequence_parallel", y.text("parallel_config.use_seq_parallel", "False") == "True"},
              {"micro_batch", batch},
              {"global_batch", batch * dp * micro_batches},
              {"seq_len", seq},
              // A per-stage list ([3, 0]) recomputes some layers: counted as full, as the record does.
              {"recompute", recompute == "True" || y.find("recompute_config.recompute").value_or(YAML::Node()).IsSequence() ? "full"
                            : select ? "selective" : "none"},
              {"distributed_optimizer", y.text("parallel.enable_parallel_optimizer", "False") == "True"},
              {"precision", "bf16"},
              {"flash_attention", y.text(mc + "use_flash_attention", "False") == "True"},
              // MindSpore's graph mode overlaps the DP gradient reduction and the parallel optimizer's weight
              // gathers with compute; TP communication only with fine_grain_interleave (slices of a layer
              // interleaved so that one's communication runs beside another's compute).
              {"overlap", {{"dp_grad_reduce", true}, {"dp_param_gather", true},
                           {"tp_comm", y.integer(mc + "fine_grain_interleave", 1) > 1}}},
              {"source", c.format + ": " + path}};
  if (ep_extend_tp) c.layout["etp"] = 1;
  if (!options.devices) c.notes.push_back(fmt::format("devices {} = data_parallel x model_parallel x pipeline_stage", dp * tp * pp));
  for (const char* k : {"moe_config.capacity_factor", "recompute_config.mp_comm_recompute", "recompute_config.recompute_slice_activation",
                        "parallel_config.vocab_emb_dp", "micro_batch_interleave_num"})
    y.note(k, c.not_modelled);
  for (const char* k : {"optimizer.type", "lr_schedule.type", "runner_config.epochs", "train_dataset.data_loader.dataset_dir"})
    y.note(k, c.ignored);
  return c;
}

}  // namespace

bool is_yaml_file(const std::string& path, const std::string& text) {
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".yaml" || ext == ".yml") return true;
  // A shell script has a command with a .py word; a YAML config has top-level "key:" lines and none.
  return ext != ".sh" && text.find("\nARGS:") != std::string::npos;
}

LaunchConfig read_yaml_config(const std::string& path, const std::string& text, const LaunchOptions& options) {
  const YAML::Node root = parse_yaml(path, text);
  if (!root.IsMap()) throw InputError(path + ":1: expected a YAML map (a moe_recipes recipe with ARGS, or a MindFormers config)");
  try {
    if (root["ARGS"]) return read_recipe(path, root, options);
    if (root["model"] && root["model"]["model_config"]) return read_mindformers(path, root, options);
  } catch (const YAML::Exception& e) {
    throw InputError(fmt::format("{}:{}: {}", path, e.mark.line + 1, e.msg));
  }
  throw InputError(path + ":1: expected ARGS (a Megatron-LM moe_recipes recipe) or model.model_config (a MindFormers config)");
}

}  // namespace moesim::io::launch
