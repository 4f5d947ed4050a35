#pragma once
// Validation harness: simulate measured runs and compare like with like, under the FLOP-counting
// convention each source used.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "costmodels/specs.h"
#include "sim/engine/op_sim.h"
#include "sim/engine/simulate.h"

namespace moesim::validate {

enum class Convention {
  palm,                      // 6N + 12 L H Q T per token (PaLM App. B); MFU vs BF16 peak
  megatron2021,              // 96 B s l h^2 (1 + s/6h + V/16lh): counts full recompute (Narayanan 2021 eq. 3)
  korthikanti2022,           // 72 B L s h^2 (1 + s/6h + V/12hL): no recompute (Korthikanti 2022 eq. 7)
  megatron_core_2024,        // Megatron-Core model FLOPs, full attention (= our model FLOPs)
  megatron_core_2025,        // same for MoE: active + shared experts, logits
  megatron_core_2026_causal, // same with the causal mask halving the s^2 term
  mindspeed,                 // MindSpeed-LLM's MFU tables: model FLOPs, causal s^2 halving, 354 TFLOPS (910B)
  pangu,                     // Pangu reports: PaLM model FLOPs (MTP included) against 256 TFLOPS per 800T A2 NPU
  none,
};

// What a measured per-device peak memory figure counts (validation/README.md, "Memory"):
//   allocated: PyTorch torch.cuda.max_memory_allocated, live tensors only;
//   reserved:  PyTorch torch.cuda.max_memory_reserved, tensors plus the caching allocator's cached,
//              fragmented blocks; neither counts the CUDA context or NCCL's own buffers;
//   device:    everything the process holds on the device (nvidia-smi, npu-smi), context included.
enum class MemoryKind { allocated, reserved, device };

struct MeasuredRun {
  std::string id;
  std::string source_url;
  ModelSpec model;
  HardwareProfile hw;
  LayoutSpec layout;
  Convention convention = Convention::palm;
  std::string metric;  // mfu | tflops_per_device | tokens_per_s | iteration_time_s; empty: memory only
  double measured = 0;
  std::optional<double> measured_memory_bytes;
  MemoryKind memory_kind = MemoryKind::device;  // what measured_memory_bytes counts
  std::string skip_reason;  // non-empty: listed, not scored
};

// Reads an array of measured-run records (validation/*.json format). Records with a skip_reason are
// kept (with their reason) without parsing the rest, so unmodellable entries cannot break a run.
std::vector<MeasuredRun> load_runs(const std::string& path);
// The same from an already parsed document; `path` names it in errors.
std::vector<MeasuredRun> parse_runs(const nlohmann::json& j, const std::string& path);

// One scored figure of a record: its throughput metric, or "memory" (per-device peak bytes).
struct RunResult {
  std::string id;
  std::string hardware;
  std::string metric;
  double measured = 0;
  double predicted = 0;
  double error_pct = 0;  // signed: (predicted - measured) / measured x 100
  std::string skip_reason;
  bool fits = true;
  // At operator level, a throughput row also carries the pass-level model's prediction and error
  // (the operator-level run starts from it, so it costs nothing); absent at pass level and for memory.
  std::optional<double> pass_level_predicted, pass_level_error_pct;
};

// The peak matrix FLOP/s an MFU figure of this convention divides by.
double convention_peak_flops(Convention c, const HardwareProfile& hw);
// FLOPs of one iteration as a source of this convention counts them.
double convention_flops(Convention c, const ModelSpec& m, const LayoutSpec& l, const sim::SimulationResult& r);
Convention parse_convention(const std::string& name, const std::string& where);

// Predicted value of the run's metric under its convention.
double predicted_metric(const MeasuredRun& run, const sim::SimulationResult& r);

// Predicted per-device peak memory counted as `kind` counts it: the simulator's peak stage, less the
// profile's framework reserve for the PyTorch allocator counters.
double predicted_memory_bytes(MemoryKind kind, const sim::SimulationResult& r);

// One result per scored figure: the throughput metric (if the record states one), then memory (if it
// states memory_bytes). A skipped record gives one result carrying its skip reason. The throughput is
// predicted at `level`: by default the operator-level simulation (sim/engine/op_sim.h); memory is the
// same at both levels (the operator level takes the pass-level model's), so a memory-only record
// runs only the pass-level model.
std::vector<RunResult> evaluate(const MeasuredRun& run, sim::Level level = sim::Level::op);

struct ErrorSummary {
  int count = 0;
  double mape_pct = 0;
  double max_abs_error_pct = 0;
};

// The throughput metrics (count, MAPE, max and per hardware); memory apart, so neither mixes in the other.
struct Summary : ErrorSummary {
  std::vector<std::pair<std::string, ErrorSummary>> by_hardware;  // per hardware profile name
  ErrorSummary memory;
  // Records predicted not to fit in device memory. Every measured run did run, so each one is a wrong
  // memory prediction (too much), whatever its metric error.
  int predicted_not_to_fit = 0;
};
Summary summarise(const std::vector<RunResult>& results);

nlohmann::json to_json(const std::vector<RunResult>& results, const Summary& summary);

}  // namespace moesim::validate
