// The moesim command line: subcommands over the sim library. Bad input ends with one line on stderr
// and exit status 2; a configuration that does not fit in memory is still reported (exit 0).
#include <fmt/format.h>
#include <fmt/ostream.h>

#include <boost/program_options.hpp>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "costmodels/compute.h"
#include "costmodels/imbalance.h"
#include "costmodels/layout.h"
#include "sim/search/allocator.h"
#include "sim/cli/commands.h"
#include "sim/io/input_error.h"
#include "sim/io/launch_script.h"
#include "sim/io/specs_io.h"
#include "sim/report/html_report.h"
#include "sim/report/report.h"
#include "sim/engine/op_sim.h"
#include "sim/engine/simulate.h"
#include "sim/engine/trace.h"
#include "sim/report/op_level_report.h"
#include "sim/validation/validate.h"

namespace po = boost::program_options;
using namespace moesim;

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
  bool any_flag = false;
  const std::map<std::string, std::string> int_flags = {
      {"devices", "devices"}, {"tp", "tp"}, {"pp", "pp"}, {"vpp", "vpp"}, {"ep", "ep"}, {"etp", "etp"},
      {"cp", "cp"}, {"micro-batch", "micro_batch"}, {"global-batch", "global_batch"}, {"seq-len", "seq_len"}};
  for (const char* flag : {"devices", "tp", "pp", "vpp", "ep", "etp", "cp", "micro-batch", "global-batch", "seq-len",
                           "recompute", "schedule", "precision", "ep-overlap", "tp-overlap", "hierarchical-ep",
                           "expert-skew", "redundant-experts", "activation-swap"})
    any_flag = any_flag || vm.count(flag);
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

// --model, --hw and the layout flags, shared by every command that takes one configuration.
void add_configuration_flags(po::options_description& d) {
  d.add_options()("help,h", "this help")("model", po::value<std::string>(), "built-in name, model file or HF config.json")(
      "hw", po::value<std::string>()->required(), "built-in profile name or profile file")(
      "from-script", po::value<std::string>(),
      "model and layout from a Megatron-LM / MindSpeed-LLM launch script, a moe_recipes YAML or a MindFormers YAML "
      "(layout flags override it)")("vocab", po::value<int>(), "with --from-script: vocabulary size where the script's tokenizer holds it");
  add_layout_flags(d);
}

struct Configuration {
  ModelSpec model;
  HardwareProfile hw;
  LayoutSpec layout;
};

// The model and layout of --from-script: the script's layout with the command-line layout flags on top,
// checked by the same parsers as files.
Configuration configuration_from_script(const po::variables_map& vm) {
  LaunchedModel script = read_launch_script(vm);
  HardwareProfile hw = io::load_profile(vm["hw"].as<std::string>());
  LayoutSpec layout = layout_from_flags(vm, script.model, script.launch.layout, vm["from-script"].as<std::string>());
  return {std::move(script.model), std::move(hw), std::move(layout)};
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

int cmd_simulate(const std::vector<std::string>& args) {
  po::options_description d(
      "moesim simulate (--model M (--layout L.json | layout flags) | --from-script SCRIPT) --hw H [--json FILE] [--trace FILE] [--html FILE] [--op-level]");
  add_configuration_flags(d);
  d.add_options()("json", po::value<std::string>(), "write the simulation report as JSON")(
      "trace", po::value<std::string>(), "write the simulated timeline as Chrome trace JSON (Perfetto); with --op-level every operator")(
      "op-level", "also simulate the iteration operator by operator on streams and print it beside the pass-level prediction")(
      "html", po::value<std::string>(), "write an interactive HTML report (breakdowns, memory, pipeline timeline; with --op-level every operator)")(
      "convention", po::value<std::string>(),
      "also give the MFU as a source of this FLOP convention counts it (validate's conventions: mindspeed, pangu, ...)");
  const auto parsed = parse_command(args, d);
  if (!parsed) return 0;
  const po::variables_map& vm = *parsed;
  const auto [model, hw, layout] = load_configuration(vm);
  const sim::SimulationResult r = sim::simulate(model, layout, hw);
  report::print_simulation(std::cout, model, layout, hw, r);
  std::optional<sim::OpLevelResult> op;
  if (vm.count("op-level")) {
    op = sim::simulate_op_level(model, layout, hw);
    report::print_op_level(std::cout, *op);
  }
  nlohmann::json convention_mfu;
  if (vm.count("convention")) {
    // The figure a team reading its own MFU would compare with (MindSpeed-LLM's tables, the Pangu reports).
    const std::string name = vm["convention"].as<std::string>();
    const validate::Convention c = validate::parse_convention(name, "--convention");
    const double peak = validate::convention_peak_flops(c, hw);
    const double mfu = validate::convention_flops(c, model, layout, r) / (r.iteration_time * layout.devices * peak);
    fmt::print(std::cout, "MFU under the {} convention: {:.1f}% (peak {:.1f} TFLOP/s per device)\n", name, 100 * mfu, peak / 1e12);
    convention_mfu = {{"convention", name}, {"mfu", mfu}, {"peak_flops", peak}};
  }
  if (vm.count("json")) {
    auto out = open_output(vm["json"].as<std::string>());
    nlohmann::json j = report::simulation_json(model, layout, hw, r);
    if (!convention_mfu.is_null()) j["mfu_convention"] = convention_mfu;
    if (op) j["op_level"] = report::op_level_json(*op);
    out << j.dump(2) << "\n";
  }
  if (vm.count("trace")) {
    auto out = open_output(vm["trace"].as<std::string>());
    if (op) sim::write_op_trace(out, *op);
    else sim::write_pipeline_trace(out, r.pipeline);
  }
  if (vm.count("html")) {
    auto out = open_output(vm["html"].as<std::string>());
    html::write_report(out, fmt::format("moesim: {} on {} x {}", model.name, layout.devices, hw.name),
                       html::simulation_report_data(model, layout, hw, r, op ? &*op : nullptr));
  }
  return 0;
}

int cmd_list(const std::vector<std::string>& names, bool models) {
  for (const auto& n : names) {
    if (models) {
      const ModelSpec m = io::load_model(n);
      const ParamBreakdown p = count_params(m);
      fmt::print("{:<24} {:>8.1f}B total {:>7.2f}B active  {:>3} layers  hidden {:>6}  {}\n", n, p.total() / 1e9,
                 p.active() / 1e9, m.layers, m.hidden,
                 m.moe ? fmt::format("{} experts top-{}", m.moe->experts, m.moe->top_k) : std::string("dense"));
    } else {
      const HardwareProfile hw = io::load_profile(n);
      fmt::print("{:<20} {:>7.1f} TFLOP/s bf16  {:>6.1f} GB HBM  {:>6.2f} TB/s", n, hw.device.matrix_bf16 / 1e12,
                 hw.device.hbm_bytes / 1e9, hw.device.hbm_bandwidth / 1e12);
      for (const auto& t : hw.tiers) fmt::print("  {}[{}] {:.0f} GB/s", t.name, t.size, t.bandwidth / 1e9);
      fmt::print("\n");
    }
  }
  return 0;
}

int cmd_ops(const std::vector<std::string>& args) {
  po::options_description d("moesim ops (--model M (--layout L.json | layout flags) | --from-script SCRIPT) --hw H");
  add_configuration_flags(d);
  const auto parsed = parse_command(args, d);
  if (!parsed) return 0;
  // Named references, not a structured binding: the lambda below captures them (clang 14 cannot
  // capture structured bindings).
  const Configuration configuration = load_configuration(*parsed);
  const ModelSpec& model = configuration.model;
  const HardwareProfile& hw = configuration.hw;
  const LayoutSpec& layout = configuration.layout;
  const auto graphs = graph::build_model_graphs(model, graph::make_context(model, layout));
  const double imbalance = imbalance::layout_imbalance(model, layout);
  auto table = [&](const graph::LayerGraph& g, const char* title) {
    fmt::print("\n{} layer (one microbatch, one device; imbalance {:.2f})\n", title, imbalance);
    fmt::print("{:<22} {:<12} {:>28} {:>10} {:>10} {:>10} {:>10} {:>9} {:>5}\n", "op", "kind", "shape MxNxK (xcount)",
               "GFLOP", "MB hbm", "fwd us", "bwd us", "bound", "eff");
    seconds fwd = 0, bwd = 0;
    for (const auto& row : sim::cost_layer_ops(g, layout, hw, imbalance)) {
      const graph::Op& op = *row.op;
      std::string shape;
      if (op.kind == graph::OpKind::gemm || op.kind == graph::OpKind::grouped_gemm)
        shape = fmt::format("{:.0f}x{:.0f}x{:.0f}{}", op.shape.m, op.shape.n, op.shape.k,
                            op.shape.count > 1 ? fmt::format(" x{:.0f}", op.shape.count) : "");
      else if (op.kind == graph::OpKind::collective)
        shape = fmt::format("{} {} {:.1f}MB", comm::to_string(op.collective.kind), graph::to_string(op.collective.group),
                            op.collective.buffer / 1e6);
      fmt::print("{:<22} {:<12} {:>28} {:>10.2f} {:>10.1f} {:>10.1f} {:>10.1f} {:>9} {:>5.2f}\n", op.name,
                 graph::to_string(op.kind), shape, op.flop_count / 1e9, op.hbm_bytes / 1e6, row.forward * 1e6,
                 row.backward * 1e6, row.bound, row.efficiency);
      if (!row.algorithm.empty()) fmt::print("{:<22}   algorithm {}\n", "", row.algorithm);
      fwd += row.forward;
      bwd += row.backward;
    }
    fmt::print("{:<22} {:>64} {:>10.1f} {:>10.1f}  (sum, before overlap)\n", "total", "", fwd * 1e6, bwd * 1e6);
  };
  // One table per decoder graph that some layer uses (full-attention graphs keep their plain titles,
  // DeepSeek sparse attention's name its top-k).
  const std::string window = fmt::format("sliding window {}", model.attention.sliding_window);
  const std::string linear = std::string("linear ") + io::to_string(model.attention.linear.kind);
  const std::string full = model.attention.sparse.active() ? fmt::format(", DSA top-{}", model.attention.sparse.topk) : "";
  const std::vector<std::pair<const graph::LayerGraph*, std::string>> decoders{
      {&graphs.dense, "dense" + full}, {&graphs.dense_sliding, "dense, " + window}, {&graphs.dense_linear, "dense, " + linear},
      {&graphs.moe, "moe" + full}, {&graphs.moe_sliding, "moe, " + window}, {&graphs.moe_linear, "moe, " + linear}};
  for (const auto& [g, title] : decoders)
    if (graphs.decoder_layers_of(model, *g) > 0) table(*g, title.c_str());
  if (model.mtp_layers > 0) table(graphs.mtp, "mtp");
  table(graphs.embedding, "embedding");
  table(graphs.lm_head, "lm_head");
  return 0;
}

// GEMM-efficiency sanity table: square GEMMs 512..16384 and per-expert grouped GEMMs with 64..4096 tokens.
int cmd_gemm_table(const std::vector<std::string>& args) {
  po::options_description d("moesim gemm-table --hw H [--hidden 7168 --expert-intermediate 2048 --experts 8]");
  d.add_options()("help,h", "this help")("hw", po::value<std::string>()->required(), "hardware profile")(
      "hidden", po::value<double>()->default_value(7168), "hidden size for expert GEMMs")(
      "expert-intermediate", po::value<double>()->default_value(2048), "expert FFN width")(
      "experts", po::value<double>()->default_value(8), "experts per grouped GEMM");
  const auto parsed = parse_command(args, d);
  if (!parsed) return 0;
  const po::variables_map& vm = *parsed;
  const HardwareProfile hw = io::load_profile(vm["hw"].as<std::string>());
  const auto& dev = hw.device;
  fmt::print("{} bf16 peak {:.1f} TFLOP/s; curve: peak_fraction {:.2f}, half-saturation {:.2g} FLOP, tile {}x{}x{}, grouped x{:.2f}\n",
             hw.name, dev.matrix_bf16 / 1e12, dev.matrix.peak_fraction, dev.matrix.half_saturation_flops,
             dev.matrix.tile_m, dev.matrix.tile_n, dev.matrix.tile_k, dev.matrix.grouped_gemm_factor);
  fmt::print("\nsquare GEMM (bf16)\n{:>8} {:>12} {:>10} {:>12} {:>8}\n", "size", "GFLOP", "time us", "TFLOP/s", "bound");
  for (double n : {512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0}) {
    const compute::GemmShape s{n, n, n, 1};
    const auto t = compute::gemm_time(s, 3 * n * n * 2, dev.matrix_bf16, dev, false);
    fmt::print("{:>8.0f} {:>12.2f} {:>10.1f} {:>12.1f} {:>8}\n", n, s.flop_count() / 1e9, t.time * 1e6,
               s.flop_count() / t.time / 1e12, compute::to_string(t.bound));
  }
  const double h = vm["hidden"].as<double>(), inter = vm["expert-intermediate"].as<double>(),
               e = vm["experts"].as<double>();
  fmt::print("\ngrouped expert GEMM fc1 ({:.0f} experts, tokens x {:.0f} x 2*{:.0f})\n{:>8} {:>12} {:>10} {:>12} {:>8}\n", e,
             h, inter, "tokens", "GFLOP", "time us", "TFLOP/s", "bound");
  for (double tokens : {64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0}) {
    const compute::GemmShape s{tokens, 2 * inter, h, e};
    const bytes hbm = (tokens * h + h * 2 * inter + tokens * 2 * inter) * e * 2;
    const auto t = compute::gemm_time(s, hbm, dev.matrix_bf16, dev, true);
    fmt::print("{:>8.0f} {:>12.2f} {:>10.1f} {:>12.1f} {:>8}\n", tokens, s.flop_count() / 1e9, t.time * 1e6,
               s.flop_count() / t.time / 1e12, compute::to_string(t.bound));
  }
  return 0;
}

void usage() {
  std::cout << "moesim: hardware-aware simulator of MoE training\n\n"
               "commands:\n"
               "  simulate   simulate one training iteration (time, MFU, memory)\n"
               "  ops        per-layer operator table with predicted times and collectives\n"
               "  validate   compare predictions with measured runs\n"
               "  sweep      search model hyperparameters and layouts (sweeps/README.md)\n"
               "  report     interactive HTML report of a sweep's results\n"
               "  merge      join the part files of 'sweep --shard I/N' runs into one results file\n"
               "  calibrate  fit a hardware profile to profiler traces (Kineto JSON, Ascend)\n"
               "  replay     predict every kernel of a profiler trace, error per operator kind\n"
               "  models     list built-in models\n"
               "  profiles   list built-in hardware profiles\n"
               "  gemm-table GEMM-efficiency sanity table of a profile\n"
               "  prune      PreMoe expert importance, pruning and task retrieval from router data\n"
               "  deploy     inference memory, devices and decode time of a (pruned) model\n\n"
               "run 'moesim COMMAND --help' for a command's options\n";
}

}  // namespace

int main(int argc, char** argv) {
  sim::keep_freed_memory_for_reuse();
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    usage();
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "simulate") return cmd_simulate(args);
    if (command == "models") return cmd_list(io::builtin_models(), true);
    if (command == "profiles") return cmd_list(io::builtin_profiles(), false);
    if (command == "ops") return cmd_ops(args);
    if (command == "gemm-table") return cmd_gemm_table(args);
    if (command == "validate") return cmd_validate(args);
    if (command == "sweep") return cmd_sweep(args);
    if (command == "prune") return cmd_prune(args);
    if (command == "deploy") return cmd_deploy(args);
    if (command == "report") return cmd_report(args);
    if (command == "merge") return cmd_merge(args);
    if (command == "calibrate") return cmd_calibrate(args);
    if (command == "replay") return cmd_replay(args);
    std::cerr << "moesim: unknown command '" << command << "' (run 'moesim --help')\n";
    return 2;
  } catch (const InputError& e) {
    std::cerr << "moesim: " << e.what() << "\n";
    return 2;
  } catch (const po::error& e) {
    std::cerr << "moesim " << command << ": " << e.what() << "\n";
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << "moesim " << command << ": " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "moesim " << command << ": internal error: " << e.what() << "\n";
    return 3;
  }
}
