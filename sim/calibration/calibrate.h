#pragma once
// Kernel-level calibration and validation of the cost models against profiler traces.
//
// Every kernel of a trace is classified (matmul, grouped matmul, attention, vector, collective, other)
// and, where its shapes or message size are recorded, predicted by the same cost models the simulator
// uses (costmodels/compute, costmodels/comm). `replay` reports the per-kind error; `fit` adjusts the
// profile's efficiency parameters by least squares on relative residuals (|predicted - measured| /
// measured, so a 5 us kernel weighs as much as a 5 ms one).
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "costmodels/comm.h"
#include "costmodels/compute.h"
#include "costmodels/specs.h"
#include "sim/engine/intervals.h"
#include "sim/io/trace_io.h"

namespace moesim::calibrate {

enum class OpKind { matmul, grouped_matmul, attention, vector, collective, other };
const char* to_string(OpKind k);
constexpr OpKind reported_kinds[] = {OpKind::matmul, OpKind::grouped_matmul, OpKind::attention, OpKind::vector,
                                     OpKind::collective};

enum class MatrixPrecision { bf16, fp16, fp8, fp32 };

// How a GPU matmul kernel executes, from its name (cuBLAS/CUTLASS names say it): on tensor cores at
// the input precision (also every Ascend Cube matmul), FP32 inputs on tensor cores as TF32 (CUTLASS
// `s1688`/`tf32`, cuBLAS `*_tf32_*`), FP32 on the CUDA cores (`sgemm`, `gemmSN`), or a matrix-vector
// product (`gemv`, `dot`, `gemmk1`: M, N or K is 1), on no tile: bound by reading its operands, plus a
// fixed cost of its own (DeviceSpec::gemv_fixed_cost), not a tiled GEMM kernel's fill/drain cost.
enum class GemmPath { tensor_core, tf32, simt, gemv };
const char* to_string(GemmPath p);

// One kernel with what the cost models need to predict it. `predictable` is false when the trace did
// not record enough (no shapes, no message size, a collective kind moesim does not model); `why` says.
struct Sample {
  std::string_view name;  // a view into the classified trace's pool: valid while that Trace lives
  OpKind kind = OpKind::other;
  seconds measured = 0;
  double occurrences = 1;
  int launches = 1;  // kernels merged into this sample (all kernels one aten op launched)
  bool predictable = false;
  std::string_view why;  // a literal
  // matmul / grouped matmul
  compute::GemmShape gemm;
  MatrixPrecision precision = MatrixPrecision::bf16;
  GemmPath path = GemmPath::tensor_core;
  compute::KernelTile tile;  // threadblock tile from the kernel name (tf32 and simt paths; 0: not named)
  int layout = -1;  // CUDA-core kernels: operand layout named by cuBLAS, index into gemm_layout_names; -1: not named
  int alignment = 0;  // elements per global load from a CUTLASS name (`_align4`: 4 floats, 16 bytes); 0: not named
  // attention and vector ops: FLOPs and HBM bytes; matmuls: HBM bytes
  flops op_flops = 0;
  bytes hbm = 0;
  // collectives: kind, per-device buffer (comm.h convention), group and the tier it runs on
  comm::CollectiveKind collective = comm::CollectiveKind::all_reduce;
  bytes buffer = 0;
  int group_size = 0;
  int group_stride = 1;  // ranks between members (RDMA traffic: one member per innermost domain)
  int outer_tier = -1;
  bool excludes_peer_wait = false;  // collectives: measured time is the transfer (fit only these)
  // Compute kernels: time of the measured span during which a collective kernel of the same trace ran
  // (on another stream: one stream runs one kernel at a time). The kernels shared the device then.
  seconds beside_collective = 0;
};

// Whether a kernel is a collective: a recorded collective, an NCCL or HCCL kernel, or a DeepEP
// dispatch/combine kernel.
bool is_collective(const io::KernelSample& k);

// A kernel's span in seconds from `origin_us` (profilers stamp microseconds since an epoch; relative times
// keep sub-microsecond resolution in a double).
inline sim::Interval kernel_span(const io::KernelSample& k, double origin_us) {
  const seconds start = (k.start_us - origin_us) * 1e-6;
  return {start, start + k.duration};
}

// Per-rank traces of one run: a collective kernel's span includes the time its rank waits for the
// others, so the k-th collective of every rank is given the shortest span among the ranks, at the end of
// its own span (the last rank to arrive waits least; HTA's straggler analysis aligns ranks the same way).
// Applies to Kineto traces of all world_size ranks of one run whose collective sequences have the same
// names; returns the number of collectives aligned (0 when the traces are not all ranks of one run).
int align_collectives(std::vector<io::Trace>& ranks);

// Classifies every kernel of a trace against a profile's tiers (a collective's tier comes from its
// group size, or the transport the Ascend profiler recorded). The compute kernels one aten op launched
// (a GEMM and its bias or split-K kernel) become one sample: the op's shapes describe them together.
std::vector<Sample> classify(const io::Trace& trace, const HardwareProfile& hw);
// Samples view the trace's names: classifying a temporary would leave them dangling.
std::vector<Sample> classify(io::Trace&& trace, const HardwareProfile& hw) = delete;

// Fraction (0..1) of a compute sample's measured span during which a collective kernel ran beside it.
double fraction_beside_collective(const Sample& s);

// Cost-model time of one predictable sample. A compute kernel that ran beside a collective for a fraction
// f of its span is slowed by 1 + comm_compute_slowdown * f (the simulator's charge for hidden
// communication, sim/engine/simulate.cpp apply_overlap, applied to the overlap the trace recorded).
seconds predict(const Sample& s, const HardwareProfile& hw);

struct KindError {
  int recognised = 0;  // kernels of this kind in the trace
  int count = 0;       // of which predicted
  double median_abs_error_pct = 0;
  double p90_abs_error_pct = 0;
  seconds measured = 0, predicted = 0;  // sums over the predicted kernels
};

struct ReplayReport {
  std::map<OpKind, KindError> kinds;
  // Sums over all predicted kernels (device busy time the cost models account for), and the measured
  // time of all kernels for coverage.
  seconds measured_total = 0, predicted_total = 0, all_kernels_measured = 0;
  int kernels = 0, predicted_kernels = 0;
};

ReplayReport replay(const std::vector<Sample>& samples, const HardwareProfile& hw);
// {"kinds": {KIND: {count, median_abs_error_pct, p90_abs_error_pct}}, "total": {measured_s, predicted_s}}
nlohmann::json to_json(const ReplayReport& r);

struct FittedValue {
  std::string parameter;  // profile field, e.g. "device.matrix_efficiency.peak_fraction"
  double before = 0, after = 0;
  int samples = 0;
  double rms_residual_before_pct = 0, rms_residual_after_pct = 0;  // relative residuals of that fit's samples
  std::string note;
};

struct FitResult {
  HardwareProfile profile;
  std::vector<FittedValue> values;
  std::vector<std::string> rejected;  // fits undone because they did not lower their samples' residual
};

// Least-squares fit, in order: launch overhead and HBM efficiency from vector ops; the matrix curve
// (peak_fraction, half_saturation_flops) from half-precision matmuls and the FP32 GEMM rate from FP32 Cube
// ones; the TF32 and CUDA-core FP32 rates of replayed GPU kernels (GemmPath) and the GEMV fixed cost by
// least absolute relative deviations; grouped_gemm_factor; attention_fraction; per tier latency and efficiency from collectives.
// A parameter without enough samples keeps its base value and is not listed; a fit that does not lower
// the rms residual of its own samples (inconsistent shapes, a model that cannot describe them) is undone.
FitResult fit(const std::vector<Sample>& samples, const HardwareProfile& base);

}  // namespace moesim::calibrate
