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
#include "sim/cli/configuration.h"
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

int cmd_simulate(const std::vector<std::string>& args) {
  po::options_description d(
      "moesim simulate (--model M (--layout L.json | layout flags) | --from-script SCRIPT) --hw H [--json FILE] [--trace FILE] [--html FILE] [--pass-level]");
  add_configuration_flags(d);
  d.add_options()("json", po::value<std::string>(), "write the simulation report as JSON")(
      "trace", po::value<std::string>(), "write the simulated timeline as Chrome trace JSON (Perfetto): every operator on its stream (with --pass-level every pass)")(
      "html", po::value<std::string>(), "write an interactive HTML report (breakdowns, memory, the timeline of every operator or, with --pass-level, of every pass)")(
      "convention", po::value<std::string>(),
      "also give the MFU as a source of this FLOP convention counts it (validate's conventions: mindspeed, pangu, ...)");
  add_level_flags(d);
  const auto parsed = parse_command(args, d);
  if (!parsed) return 0;
  const po::variables_map& vm = *parsed;
  const auto [model, hw, layout] = load_configuration(vm);
  // The operator-level run is the prediction; the pass-level model it starts from is printed beside it.
  std::optional<sim::OpLevelResult> op;
  if (level_from_flags(vm) == sim::Level::op) op = sim::simulate_op_level(model, layout, hw);
  const sim::SimulationResult r = op ? op->result : sim::simulate(model, layout, hw);
  report::print_simulation(std::cout, model, layout, hw, r);
  if (op) report::print_op_level(std::cout, *op);
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
  const auto graphs = graph::build_model_graphs(model, graph::make_context(model, layout, hw.device));
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
  const CompressedAttentionSpec& c = model.attention.compressed;
  const std::string csa = fmt::format("compressed sparse 1:{}, top-{}, window {}", c.csa_ratio, model.attention.sparse.topk,
                                      model.attention.sliding_window);
  const std::string hca = fmt::format("compressed 1:{}, window {}", c.hca_ratio, model.attention.sliding_window);
  const std::vector<std::pair<const graph::LayerGraph*, std::string>> decoders{
      {&graphs.dense, "dense" + full}, {&graphs.dense_sliding, "dense, " + window}, {&graphs.dense_linear, "dense, " + linear},
      {&graphs.dense_compressed_sparse, "dense, " + csa}, {&graphs.dense_compressed, "dense, " + hca},
      {&graphs.moe, "moe" + full}, {&graphs.moe_sliding, "moe, " + window}, {&graphs.moe_linear, "moe, " + linear},
      {&graphs.moe_compressed_sparse, "moe, " + csa}, {&graphs.moe_compressed, "moe, " + hca}};
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
