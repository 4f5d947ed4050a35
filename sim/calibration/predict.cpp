// Cost-model time of one classified kernel (predict) and the replay report of a whole trace.
#include "sim/calibration/predict.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace moesim::calibrate {

flops_per_second matrix_peak(MatrixPrecision p, const DeviceSpec& d) {
  switch (p) {
    case MatrixPrecision::bf16: return d.matrix_bf16;
    case MatrixPrecision::fp16: return d.matrix_fp16;
    case MatrixPrecision::fp8: return d.matrix_fp8 > 0 ? d.matrix_fp8 : d.matrix_bf16;
    case MatrixPrecision::fp32:
      // Assumption until calibrated: FP32 GEMMs (PyTorch >= 1.12 disables TF32 for matmul by default)
      // run at the FP32 rate of the non-tensor units, half the non-tensor BF16 rate the profiles list
      // (Hopper: 67 vs 133.8 TFLOPS, NVIDIA H100 datasheet).
      return d.matrix_fp32 > 0 ? d.matrix_fp32 : d.vector_flops / 2;
  }
  return d.matrix_bf16;
}

// Rate of a GEMM kernel on its path. TF32 until calibrated: half the BF16 tensor rate (A100: 156 vs
// 312 TFLOPS, H100 SXM: 495 vs 989, NVIDIA A100 / H100 datasheets, dense).
flops_per_second tf32_rate(const DeviceSpec& d) { return d.matrix_tf32 > 0 ? d.matrix_tf32 : d.matrix_bf16 / 2; }

// A TF32 kernel on unaligned operands: CUTLASS names its operand alignment in elements per global
// load (`_align4`: 128-bit vector loads of 4 floats; `_align1`: scalar 32-bit loads, chosen when a
// leading dimension is not a multiple of 4 floats). Scalar loads issue 4x the load instructions and
// cannot use 16-byte asynchronous copies (cp.async.cg), so the main loop is fed more slowly (CUTLASS
// docs/efficient_gemm.md, "Vectorized memory access"; NVIDIA "Matrix Multiplication Background" guide,
// Tensor Core requirements: dimensions in multiples of 16 bytes). Until calibrated: the TF32 rate.
bool unaligned_tf32(const Sample& s) { return s.path == GemmPath::tf32 && s.alignment > 0 && s.alignment * 4 < 16; }
flops_per_second tf32_unaligned_rate(const DeviceSpec& d) {
  return d.matrix_tf32_unaligned > 0 ? d.matrix_tf32_unaligned : tf32_rate(d);
}

namespace {

// A CUDA-core FP32 kernel's rate by the operand layout its name gives: cuBLAS's SIMT sgemm kernels
// stage each operand tile through shared memory, and an operand stored along K ('t' for A, 'n' for B in
// column-major terms) is read with strided global loads and a transposing shared-memory store, so the
// main loop's load pipeline differs per layout (CUTLASS docs/efficient_gemm.md, "Shared memory
// transposition"; cuBLAS names its kernels per layout for that reason). Until calibrated: matrix_fp32.
flops_per_second simt_rate(const Sample& s, const DeviceSpec& d) {
  if (s.layout >= 0 && d.matrix_fp32_by_layout[static_cast<std::size_t>(s.layout)] > 0)
    return d.matrix_fp32_by_layout[static_cast<std::size_t>(s.layout)];
  return matrix_peak(s.precision, d);
}

flops_per_second gemm_rate(const Sample& s, const DeviceSpec& d) {
  if (unaligned_tf32(s)) return tf32_unaligned_rate(d);
  if (s.path == GemmPath::simt) return simt_rate(s, d);
  return s.path == GemmPath::tf32 ? tf32_rate(d) : matrix_peak(s.precision, d);
}

}  // namespace

// The device with peak_fraction 1: for kernels whose fitted rate is already the achieved one.
DeviceSpec at_own_rate(DeviceSpec d) {
  d.matrix.peak_fraction = 1;
  return d;
}

// A matrix-vector product (GemmPath::gemv): no threadblock tile, so none of a tiled GEMM's fixed cost of
// filling and draining its software pipeline (the prologue loading the first K stages and the epilogue
// writing the tile, CUTLASS docs/efficient_gemm.md "Software pipelining"; F_half of the saturation curve);
// it streams its operands once (NVIDIA "Matrix Multiplication Background" user's guide: matrix-vector
// products are memory-bound) and then reduces partial sums, a fixed cost of its own (gemv_fixed_cost).
seconds gemv_time(const Sample& s, const DeviceSpec& d) {
  return compute::roofline(s.gemm.flop_count(), s.hbm, gemm_rate(s, d), 1.0, d).time + d.gemv_fixed_cost;
}

// Time of a compute sample had it run alone on the device.
seconds predict_alone(const Sample& s, const HardwareProfile& hw) {
  const DeviceSpec& d = hw.device;
  const seconds extra_launches = (s.launches - 1) * d.launch_overhead;  // the cost models charge one per op
  switch (s.kind) {
    case OpKind::matmul:
      // Replayed kernels off the simulator's tensor-core path: their own tile and rate (TF32, CUDA-core
      // FP32); a matrix-vector product on no tile (gemv_time). Their rate is what
      // their main loop achieves (fitted per path, at most the datasheet peak), so the tensor-core GEMM
      // efficiency peak_fraction (fitted to BF16 training runs) does not scale it again.
      if (s.path == GemmPath::gemv) return gemv_time(s, d) + extra_launches;
      if (s.path != GemmPath::tensor_core)
        return compute::kernel_gemm_time(s.gemm, s.tile, s.hbm, gemm_rate(s, d), at_own_rate(d)).time + extra_launches;
      [[fallthrough]];
    case OpKind::grouped_matmul:
      return compute::gemm_time(s.gemm, s.hbm, matrix_peak(s.precision, d), d, s.kind == OpKind::grouped_matmul).time +
             extra_launches;
    case OpKind::attention:
      return compute::attention_time(s.op_flops, s.hbm, matrix_peak(s.precision, d), d).time + extra_launches;
    case OpKind::vector: return compute::vector_time(s.op_flops, s.hbm, d).time + extra_launches;
    case OpKind::collective:
    case OpKind::other: break;
  }
  return 0;
}

double fraction_beside_collective(const Sample& s) { return s.measured > 0 ? std::min(1.0, s.beside_collective / s.measured) : 0; }

seconds predict(const Sample& s, const HardwareProfile& hw) {
  if (s.kind == OpKind::collective)
    return comm::collective_time(s.collective, s.buffer, {s.group_size, s.group_stride}, hw.tiers).time;
  // A collective kernel beside a compute kernel holds SMs (NCCL runs its reductions and copies on SMs)
  // and HBM bandwidth: the compute kernel is slowed for the time they share the device, as the simulator
  // charges comm_compute_slowdown per second of communication hidden behind compute.
  return predict_alone(s, hw) * (1.0 + hw.device.comm_compute_slowdown * fraction_beside_collective(s));
}

namespace {

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

}  // namespace

double abs_error_pct(seconds predicted, seconds measured) { return std::abs(predicted - measured) / measured * 100.0; }

bool scored(const Sample& s) { return s.predictable && s.measured > 0; }

ReplayReport replay(const std::vector<Sample>& samples, const HardwareProfile& hw) {
  ReplayReport r;
  std::map<OpKind, std::vector<double>> errors;
  for (const Sample& s : samples) {
    r.kernels += 1;
    r.all_kernels_measured += s.measured * s.occurrences;
    KindError& k = r.kinds[s.kind];
    k.recognised += 1;
    if (!scored(s)) continue;
    const seconds p = predict(s, hw);
    k.count += 1;
    k.measured += s.measured;
    k.predicted += p;
    errors[s.kind].push_back(abs_error_pct(p, s.measured));
    r.predicted_kernels += 1;
    r.measured_total += s.measured;
    r.predicted_total += p;
  }
  for (auto& [kind, e] : errors) {
    r.kinds[kind].median_abs_error_pct = percentile(e, 0.5);
    r.kinds[kind].p90_abs_error_pct = percentile(e, 0.9);
  }
  return r;
}

nlohmann::json to_json(const ReplayReport& r) {
  nlohmann::json kinds = nlohmann::json::object();
  for (OpKind k : reported_kinds) {
    const auto it = r.kinds.find(k);
    const int n = it == r.kinds.end() ? 0 : it->second.count;
    nlohmann::json e = {{"count", n}};
    e["median_abs_error_pct"] = n > 0 ? nlohmann::json(it->second.median_abs_error_pct) : nlohmann::json(nullptr);
    e["p90_abs_error_pct"] = n > 0 ? nlohmann::json(it->second.p90_abs_error_pct) : nlohmann::json(nullptr);
    kinds[to_string(k)] = e;
  }
  return {{"kinds", kinds}, {"total", {{"measured_s", r.measured_total}, {"predicted_s", r.predicted_total}}}};
}

}  // namespace moesim::calibrate
