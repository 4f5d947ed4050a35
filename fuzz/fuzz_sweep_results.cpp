// seeds: tests/data/sweep-results-*.jsonl
// A sweep results file given to --resume: the complete lines are kept and summarised, a cut-off last
// line is rewritten, anything else is refused. The spec has 6 points that are all infeasible without
// simulation, so each input costs one small file write.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "fuzz/fuzz.h"
#include "sim/search/sweep.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace moesim;
  static const sweep::SweepSpec spec = sweep::parse_spec(
      sweep::json::parse(R"({"base_model": "mixtral-8x7b", "hardware": "h100-sxm", "devices": 8, "seq_len": 1024,
                             "global_batch_tokens": 8192, "model_axes": {"experts": [1, 2, 3], "top_k": [5, 6]}})"),
      "spec.json");
  static const std::string path =
      (std::filesystem::temp_directory_path() / ("moesim-fuzz-results-" + std::to_string(getpid()) + ".jsonl")).string();
  return fuzz::run(data, size, [](const std::string& text) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    sweep::RunOptions options;
    options.out_path = path;
    options.resume = true;
    sweep::RunStats stats;
    const sweep::Summary summary = sweep::run_sweep(spec, options, &stats);
    if (stats.resumed + stats.evaluated != stats.points) fuzz::finding("resumed + evaluated != points");
    // Every line the report prints must carry what `moesim sweep` reads from it (sim/cli/sweep_cmd.cpp).
    for (const auto& lines : {summary.ranked(), summary.pareto_mfu_active(), summary.pareto_tokens_memory()})
      for (const sweep::json& l : lines) {
        try {
          for (const char* k : {"layers", "hidden", "heads", "experts", "top_k", "expert_intermediate", "shared_experts",
                                "first_dense_layers"})
            (void)l.at("model").at(k).get<long>();
          for (const char* k : {"total", "active"}) (void)l.at("params").at(k).get<double>();
          for (const char* k : {"objective", "mfu", "tokens_per_s", "iteration_time_s", "peak_memory_bytes"})
            (void)l.at(k).get<double>();
          const sweep::json& y = l.at("layout");
          for (const char* k : {"tp", "pp", "vpp", "ep", "etp", "cp", "dp", "micro_batch"}) (void)y.at(k).get<int>();
          for (const char* k : {"recompute", "schedule"}) (void)y.at(k).get<std::string>();
          for (const char* k : {"ep_all_to_all", "tp_comm"}) (void)y.at("overlap").at(k).get<bool>();
        } catch (const std::exception& e) {
          fuzz::finding(std::string("resumed line the report cannot print: ") + e.what() + ": " + l.dump());
        }
      }
  });
}
