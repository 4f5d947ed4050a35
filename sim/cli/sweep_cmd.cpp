// moesim sweep (SPEC | --from-script SCRIPT --hw H) [--emit-args megatron|mindspeed] [--jobs N] [--out results.jsonl] [--csv FILE] [--json FILE] [--top K] [--resume] [--shard I/N | --mpi] [--op-level-finalists N | --pass-level]
#include <fmt/format.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include "sim/cli/commands.h"
#include "sim/cli/sweep_mpi.h"
#include "sim/io/input_error.h"
#include "sim/io/launch_script.h"
#include "sim/io/specs_io.h"
#include "sim/search/shard.h"
#include "sim/search/sweep.h"

namespace moesim {

namespace po = boost::program_options;

namespace {

std::string layout_text(const sweep::json& l) {
  return fmt::format("tp{} pp{} vpp{} ep{} etp{} cp{} dp{} mb{} {} {}{}{}", l.at("tp").get<int>(), l.at("pp").get<int>(),
                     l.at("vpp").get<int>(), l.at("ep").get<int>(), l.at("etp").get<int>(), l.at("cp").get<int>(),
                     l.at("dp").get<int>(), l.at("micro_batch").get<int>(), l.at("recompute").get<std::string>(),
                     l.at("schedule").get<std::string>(), l.at("overlap").at("ep_all_to_all").get<bool>() ? " ep-overlap" : "",
                     l.at("overlap").at("tp_comm").get<bool>() ? " tp-overlap" : "");
}

std::string model_text(const sweep::SweepSpec& spec, const sweep::json& line) {
  std::string s;
  for (const auto& axis : spec.model_axes)
    s += fmt::format("{}{}={}", s.empty() ? "" : " ", axis.name, line.at("model").at(axis.name).get<long>());
  return s.empty() ? "base" : s;
}

void print_table(const sweep::SweepSpec& spec, const std::string& title, const std::vector<sweep::json>& lines, bool ranked) {
  size_t width = 5;
  for (const auto& l : lines) width = std::max(width, model_text(spec, l).size());
  fmt::print("\n{}\n{:>4} {:>7}  {:<{}} {:>8} {:>8} {:>7} {:>11} {:>8} {:>14}  {}\n", title, ranked ? "rank" : "", "index",
             "model", width, "total B", "active B", "MFU %", "tokens/s", "mem GB",
             ranked ? std::string(to_string(spec.objective)) : std::string("objective"), "layout");
  int rank = 0;
  for (const auto& l : lines) {
    ++rank;
    fmt::print("{:>4} {:>7}  {:<{}} {:>8.1f} {:>8.2f} {:>7.2f} {:>11.4g} {:>8.1f} {:>14.6g}  {}\n",
               ranked ? std::to_string(rank) : "", l.at("index").get<std::uint64_t>(), model_text(spec, l), width,
               l.at("params").at("total").get<double>() / 1e9, l.at("params").at("active").get<double>() / 1e9,
               100 * l.at("mfu").get<double>(), l.at("tokens_per_s").get<double>(),
               l.at("peak_memory_bytes").get<double>() / 1e9, l.at("objective").get<double>(), layout_text(l.at("layout")));
  }
  if (lines.empty()) fmt::print("  (no point fits)\n");
}

void write_csv(const std::string& path, const sweep::SweepSpec& spec, const std::vector<sweep::json>& ranked) {
  auto out = open_output(path);
  out << "rank,index,layers,hidden,heads,experts,top_k,expert_intermediate,shared_experts,first_dense_layers,"
         "total_params,active_params,objective,objective_value,mfu,tokens_per_s,iteration_time_s,peak_memory_bytes,tp,pp,vpp,ep,etp,cp,dp,micro_batch,recompute,schedule,"
         "ep_overlap,tp_overlap\n";
  int rank = 0;
  for (const auto& l : ranked) {
    const auto& m = l.at("model");
    const auto& y = l.at("layout");
    out << fmt::format("{},{},{},{},{},{},{},{},{},{},{:.17g},{:.17g},{},{:.17g},{:.17g},{:.17g},{:.17g},{:.17g},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                       ++rank, l.at("index").get<std::uint64_t>(), m.at("layers").get<long>(), m.at("hidden").get<long>(),
                       m.at("heads").get<long>(), m.at("experts").get<long>(), m.at("top_k").get<long>(),
                       m.at("expert_intermediate").get<long>(), m.at("shared_experts").get<long>(),
                       m.at("first_dense_layers").get<long>(), l.at("params").at("total").get<double>(),
                       l.at("params").at("active").get<double>(), to_string(spec.objective), l.at("objective").get<double>(),
                       l.at("mfu").get<double>(), l.at("tokens_per_s").get<double>(), l.at("iteration_time_s").get<double>(),
                       l.at("peak_memory_bytes").get<double>(), y.at("tp").get<int>(), y.at("pp").get<int>(),
                       y.at("vpp").get<int>(), y.at("ep").get<int>(), y.at("etp").get<int>(), y.at("cp").get<int>(),
                       y.at("dp").get<int>(), y.at("micro_batch").get<int>(), y.at("recompute").get<std::string>(),
                       y.at("schedule").get<std::string>(), y.at("overlap").at("ep_all_to_all").get<bool>(),
                       y.at("overlap").at("tp_comm").get<bool>());
  }
}

// The summary line, the ranked table and the Pareto fronts, and the --csv/--json files.
void report_sweep(const po::variables_map& vm, const sweep::SweepSpec& spec, const sweep::Summary& summary,
                  const sweep::RunStats& stats, const sweep::RunOptions& options) {
  const std::string shard =
      options.shard_count > 1 ? fmt::format("shard {}/{}: ", options.shard_index, options.shard_count) : std::string();
  fmt::print("{}{} model points ({} evaluated now, {} from an earlier run): {} ok, {} infeasible, {} do not fit -> {}\n", shard,
             stats.points, stats.evaluated, stats.resumed, summary.ok, summary.infeasible, summary.no_fit, options.out_path);
  const auto ranked = summary.ranked();
  print_table(spec, fmt::format("top {} by {}", ranked.size(), to_string(spec.objective)), ranked, true);
  const auto front_mfu = summary.pareto_mfu_active(), front_memory = summary.pareto_tokens_memory();
  print_table(spec, "Pareto front: MFU vs active params (both higher is better)", front_mfu, false);
  print_table(spec, "Pareto front: tokens/s (higher) vs peak memory (lower)", front_memory, false);

  if (vm.count("csv")) write_csv(vm["csv"].as<std::string>(), spec, ranked);
  if (vm.count("json")) {
    auto out = open_output(vm["json"].as<std::string>());
    const sweep::json j = {{"spec", spec.file},
                           {"objective", to_string(spec.objective)},
                           {"points", stats.points},
                           {"ok", summary.ok},
                           {"infeasible", summary.infeasible},
                           {"no_fit", summary.no_fit},
                           {"ranked", ranked},
                           {"pareto", {{"mfu_vs_active_params", front_mfu}, {"tokens_per_s_vs_peak_memory", front_memory}}}};
    out << j.dump(2) << "\n";
  }
}

// The spec of `sweep --from-script`: the script's model as the base model and its devices, sequence
// length and global batch, its precision and framework settings fixed, the layout searched ("auto");
// a SPEC given beside it keeps every field it sets.
sweep::SweepSpec spec_from_script(const po::variables_map& vm) {
  const auto [launch, model] = read_launch_script(vm);
  sweep::json j = vm.count("spec") ? io::read_json_file(vm["spec"].as<std::string>()) : sweep::json{{"layout", "auto"}};
  if (!j.is_object()) throw InputError(vm["spec"].as<std::string>() + ": top level: expected a JSON object");
  if (vm.count("hw")) j["hardware"] = vm["hw"].as<std::string>();
  if (!j.contains("hardware")) throw InputError("--hw: expected a hardware profile (the script does not name one)");
  const sweep::json& l = launch.layout;
  if (!j.contains("devices")) j["devices"] = l.at("devices");
  if (!j.contains("seq_len")) j["seq_len"] = l.at("seq_len");
  if (!j.contains("global_batch_tokens"))
    j["global_batch_tokens"] = static_cast<double>(l.at("global_batch").get<int>()) * l.at("seq_len").get<int>();
  if (!j.contains("layout_fixed")) {
    j["layout_fixed"] = sweep::json::object();
    for (const char* key : {"precision", "distributed_optimizer", "flash_attention", "cross_entropy", "adam_moments", "main_grads", "fp8_dispatch",
                            "fp8_recipe"})
      if (l.contains(key)) j["layout_fixed"][key] = l.at(key);
  }
  return sweep::parse_spec(j, vm.count("spec") ? vm["spec"].as<std::string>() : vm["from-script"].as<std::string>(), &model);
}

}  // namespace

int cmd_sweep(const std::vector<std::string>& args) {
  po::options_description d(
      "moesim sweep SPEC [--jobs N] [--out results.jsonl] [--csv FILE] [--json FILE] [--top K] [--resume] [--shard I/N | --mpi] [--op-level-finalists N | --pass-level]");
  d.add_options()("help,h", "this help")("spec", po::value<std::string>(), "sweep spec (sweeps/README.md)")(
      "from-script", po::value<std::string>(),
      "base model, devices, sequence length, global batch and precision from a launch script or YAML (SPEC optional)")(
      "hw", po::value<std::string>(), "with --from-script: hardware profile (overrides the spec's)")(
      "devices", po::value<int>(), "with --from-script: device count (scripts often carry placeholder node counts)")(
      "vocab", po::value<int>(), "with --from-script: vocabulary size where the script's tokenizer holds it")(
      "emit-args", po::value<std::string>(), "megatron|mindspeed: the argument list of each fitting point's best layout (launch_args)")(
      "jobs,j", po::value<int>()->default_value(static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))),
      "model points evaluated in parallel (per rank with --mpi, where the default is 1)")(
      "out,o", po::value<std::string>()->default_value("results.jsonl"), "one JSON line per model point, in point order")(
      "csv", po::value<std::string>(), "write the ranked table as CSV")("json", po::value<std::string>(),
                                                                      "write the ranked table and Pareto fronts as JSON")(
      "top", po::value<int>()->default_value(10), "rows of the ranked table")(
      "resume", "keep the points already in --out and evaluate the rest")(
      "no-prune", "simulate every valid layout (slow; checks that pruning loses nothing)")(
      "op-level-finalists", po::value<int>()->default_value(1),
      "each point's N fastest fitting layouts by the pass-level pre-screen are simulated operator by operator, then every "
      "layout whose operator-level lower bound could still win; the fastest there is the point's best (the same best for any N)")(
      "pass-level", "rank each point's layouts by the pass-level model alone (no operator-level finalists)")(
      "shard", po::value<std::string>(),
      "evaluate only the points with index % N == I into a part file for 'moesim merge' (default --out "
      "results.shard-I-of-N.jsonl)")("mpi", "share the points out over the ranks of mpirun (a build with -DMOESIM_WITH_MPI=ON)");
  po::positional_options_description pos;
  pos.add("spec", 1);
  const auto parsed = parse_command(args, d, &pos);
  if (!parsed) return 0;
  const po::variables_map& vm = *parsed;
  const int jobs = vm["jobs"].as<int>(), top = vm["top"].as<int>();
  if (jobs < 1) throw InputError("--jobs: expected a whole number >= 1, got " + std::to_string(jobs));
  if (top < 0) throw InputError("--top: expected a whole number >= 0, got " + std::to_string(top));
  if (vm.count("mpi") && vm.count("shard")) throw InputError("--mpi and --shard: expected one of them (MPI ranks share the points out themselves)");

  sweep::RunOptions options;
  options.jobs = jobs;
  options.out_path = vm["out"].as<std::string>();
  options.resume = vm.count("resume") > 0;
  options.top_k = top;
  options.eval.prune = vm.count("no-prune") == 0;
  options.eval.op_level_finalists = vm["op-level-finalists"].as<int>();
  if (options.eval.op_level_finalists < 1)
    throw InputError("--op-level-finalists: expected a whole number >= 1, got " + std::to_string(options.eval.op_level_finalists) +
                     " (--pass-level ranks by the pass-level model alone)");
  if (vm.count("pass-level")) {
    if (!vm["op-level-finalists"].defaulted())
      throw InputError("--pass-level and --op-level-finalists: expected at most one (--pass-level simulates no finalists)");
    options.eval.op_level_finalists = 0;
  }
  if (vm.count("emit-args")) options.eval.emit_args = io::parse_launch_dialect(vm["emit-args"].as<std::string>(), "--emit-args");
  const bool from_script = vm.count("from-script") > 0;
  if (!from_script && !vm.count("spec")) throw InputError("moesim sweep: expected a SPEC file (or --from-script SCRIPT)");
  if (!from_script && (vm.count("hw") || vm.count("devices") || vm.count("vocab")))
    throw InputError("--hw, --devices, --vocab: expected only with --from-script (a spec file sets them)");
  if (from_script && (vm.count("mpi") || vm.count("shard")))
    throw InputError("--from-script: expected no --shard or --mpi (their part files name a spec file; write the spec out)");
  const std::string spec_path = from_script ? vm["from-script"].as<std::string>() : vm["spec"].as<std::string>();
  if (vm.count("mpi")) {
#ifdef MOESIM_WITH_MPI
    // One rank per core is the usual MPI layout; threads per rank only when asked for.
    if (vm["jobs"].defaulted()) options.jobs = 1;
    const auto run = run_sweep_mpi(spec_path, options);
    if (run) report_sweep(vm, run->spec, run->summary, run->stats, options);
    return 0;
#else
    throw InputError("--mpi: this moesim was built without MPI (configure with -DMOESIM_WITH_MPI=ON; Debian: libopenmpi-dev)");
#endif
  }

  const sweep::SweepSpec spec = from_script ? spec_from_script(vm) : sweep::load_spec(spec_path);
  if (vm.count("shard")) {
    const shard::Shard s = shard::parse_shard(vm["shard"].as<std::string>(), "--shard");
    options.shard_index = s.index;
    options.shard_count = s.count;
    options.header = shard::part_header(spec, s);
    if (vm["out"].defaulted()) options.out_path = fmt::format("results.shard-{}-of-{}.jsonl", s.index, s.count);
  }
  // The bar redraws one terminal line; in a log file it would only be noise.
  if (isatty(STDERR_FILENO)) options.progress = &std::cerr;
  // Said before the first point, so that a huge space shows its size while it streams.
  fmt::print("{}: {} model points -> {}\n", spec.file, sweep::point_count(spec), options.out_path);
  std::fflush(stdout);
  sweep::RunStats stats;
  const sweep::Summary summary = sweep::run_sweep(spec, options, &stats);
  report_sweep(vm, spec, summary, stats, options);
  return 0;
}

}  // namespace moesim
