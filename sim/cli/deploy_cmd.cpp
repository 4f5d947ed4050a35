// moesim deploy: inference memory, devices and decode-step time of a model, pruned or not
// (costmodels/deploy.h).
#include <fmt/format.h>

#include <boost/program_options.hpp>

#include "costmodels/deploy.h"
#include "sim/cli/commands.h"
#include "sim/io/input_error.h"
#include "sim/io/premoe_io.h"
#include "sim/io/specs_io.h"

namespace moesim {

namespace po = boost::program_options;

namespace {

// The kept experts of a pruned-model file, checked against the model they are deployed on.
deploy::ExpertSelection selection_from_file(const std::string& file, const ModelSpec& m) {
  const premoe::PrunedModel p = io::read_pruned(file);
  if (!m.moe) throw InputError(file + ": pruned experts given, but model " + m.name + " has no routed experts");
  if (p.experts != m.moe->experts)
    throw InputError(file + ": field 'experts': expected " + std::to_string(m.moe->experts) + " (the routed experts of " +
                     m.name + "), got " + std::to_string(p.experts));
  if (static_cast<int>(p.layers.size()) != m.moe_layers())
    throw InputError(file + ": field 'layers': expected " + std::to_string(m.moe_layers()) + " MoE layers (" + m.name +
                     "), got " + std::to_string(p.layers.size()));
  deploy::ExpertSelection s{{}, p.top_k};
  for (const auto& l : p.layers) {
    if (l.layer < m.moe->first_dense_layers || l.layer >= m.layers)
      throw InputError(file + ": field 'layers': layer " + std::to_string(l.layer) + " is not an MoE layer of " + m.name +
                       " (" + std::to_string(m.moe->first_dense_layers) + ".." + std::to_string(m.layers - 1) + ")");
    s.kept_per_moe_layer.push_back(static_cast<int>(l.experts.size()));
  }
  return s;
}

}  // namespace

int cmd_deploy(const std::vector<std::string>& args) {
  po::options_description d(
      "moesim deploy --model M [--prune K/M | --pruned FILE] --precision bf16|int8|int4 --hw H [--batch B --context S] [--json FILE]");
  d.add_options()("help,h", "this help")("model", po::value<std::string>()->required(), "built-in name, model file or HF config.json")(
      "hw", po::value<std::string>()->required(), "built-in profile name or profile file")(
      "prune", po::value<std::string>(), "K/M: keep M routed experts per MoE layer, activate K per token")(
      "pruned", po::value<std::string>(), "pruned-model JSON written by moesim prune")(
      "precision", po::value<std::string>()->default_value("bf16"), "weight precision: bf16|int8|int4 (weight-only, group-wise scales)")(
      "group-size", po::value<int>()->default_value(128), "quantisation group size (int8/int4)")(
      "batch", po::value<int>()->default_value(1), "concurrent sequences")(
      "context", po::value<int>()->default_value(4096), "tokens per sequence in the KV cache")(
      "prefill-chunk", po::value<int>()->default_value(8192), "prompt tokens per forward pass (chunked prefill)")(
      "json", po::value<std::string>(), "write the deployment report as JSON");
  const auto parsed = parse_command(args, d);
  if (!parsed) return 0;
  const po::variables_map& vm = *parsed;
  const ModelSpec model = io::load_model(vm["model"].as<std::string>());
  const HardwareProfile hw = io::load_profile(vm["hw"].as<std::string>());

  const std::string precision = vm["precision"].as<std::string>();
  deploy::WeightPrecision p = deploy::WeightPrecision::bf16;
  if (precision == "int8") p = deploy::WeightPrecision::int8;
  else if (precision == "int4") p = deploy::WeightPrecision::int4;
  else if (precision != "bf16") throw InputError("--precision: expected bf16|int8|int4, got '" + precision + "'");
  const int group = vm["group-size"].as<int>();
  if (group < 1) throw InputError("--group-size: expected a whole number >= 1, got " + std::to_string(group));
  for (const char* flag : {"batch", "context", "prefill-chunk"})
    if (vm[flag].as<int>() < 1) throw InputError(std::string("--") + flag + ": expected a whole number >= 1, got " +
                                                 std::to_string(vm[flag].as<int>()));
  if (vm.count("prune") && vm.count("pruned")) throw InputError("deploy: give --prune K/M or --pruned FILE, not both");

  deploy::ExpertSelection selection = deploy::all_experts(model);
  std::string pruning = "none";
  if (vm.count("prune")) {
    const auto [k, m] = parse_prune_level(vm["prune"].as<std::string>());
    if (!model.moe) throw InputError("--prune: model " + model.name + " has no routed experts");
    if (m > model.moe->experts)
      throw InputError("--prune " + vm["prune"].as<std::string>() + ": M exceeds the " + std::to_string(model.moe->experts) +
                       " routed experts of " + model.name);
    selection = deploy::keep_uniform(model, k, m);
    pruning = vm["prune"].as<std::string>();
  } else if (vm.count("pruned")) {
    selection = selection_from_file(vm["pruned"].as<std::string>(), model);
    pruning = vm["pruned"].as<std::string>();
  }
  deploy::Workload w;
  w.batch = vm["batch"].as<int>();
  w.context = vm["context"].as<int>();
  w.prefill_chunk = vm["prefill-chunk"].as<int>();
  const deploy::QuantFormat format = deploy::quant_format(p, group);
  const deploy::Deployment r = deploy::plan_deployment(model, selection, format, w, hw);

  fmt::print("{} on {} ({:.1f} GB HBM), weights {} ({:.5f} B/weight), pruning {}, batch {} x context {}\n", model.name,
             hw.name, hw.device.hbm_bytes / 1e9, precision, format.bytes_per_weight(), pruning, w.batch, w.context);
  fmt::print("  parameters      {:>10.2f} B ({:.2f} B active per token)\n", r.params.total() / 1e9, r.params.active() / 1e9);
  fmt::print("  weights         {:>10.2f} GB\n", r.weights / 1e9);
  fmt::print("  KV cache        {:>10.2f} GB\n", r.kv_cache / 1e9);
  fmt::print("  activations     {:>10.2f} GB per device\n", r.activations / 1e9);
  fmt::print("  reserve         {:>10.2f} GB per device\n", r.reserve / 1e9);
  fmt::print("  total           {:>10.2f} GB\n", r.total / 1e9);
  if (r.devices_needed > 0)
    fmt::print("  devices needed  {:>10d}\n", r.devices_needed);
  else
    fmt::print("  devices needed  none: activations and reserve alone exceed one device's HBM\n");
  fmt::print("  decode step     {:>10.3f} ms (HBM {:.3f} ms: {:.1f} GB weights + {:.1f} GB KV read; comm {:.3f} ms); {:.0f} tokens/s\n",
             r.decode.total() * 1e3, r.decode.memory_s * 1e3, r.decode.weights_read / 1e9, r.decode.kv_read / 1e9,
             r.decode.comm_s * 1e3, w.batch / r.decode.total());
  if (vm.count("json")) {
    io::json j = {{"model", model.name},
                  {"hw", hw.name},
                  {"precision", precision},
                  {"group_size", p == deploy::WeightPrecision::bf16 ? 0 : group},
                  {"bytes_per_weight", format.bytes_per_weight()},
                  {"pruning", pruning},
                  {"top_k", selection.top_k},
                  {"experts_kept_per_layer", selection.kept_per_moe_layer},
                  {"batch", w.batch},
                  {"context", w.context},
                  {"params", {{"total", r.params.total()}, {"active", r.params.active()}}},
                  {"weights_bytes", r.weights},
                  {"kv_cache_bytes", r.kv_cache},
                  {"activation_bytes", r.activations},
                  {"reserve_bytes", r.reserve},
                  {"total_bytes", r.total},
                  {"devices_needed", r.devices_needed},
                  {"decode_step_s", r.decode.total()},
                  {"decode", {{"weights_read_bytes", r.decode.weights_read}, {"kv_read_bytes", r.decode.kv_read},
                              {"memory_s", r.decode.memory_s}, {"comm_s", r.decode.comm_s},
                              {"tokens_per_s", w.batch / r.decode.total()}}}};
    open_output(vm["json"].as<std::string>()) << j.dump(2) << "\n";
  }
  return 0;
}

}  // namespace moesim
