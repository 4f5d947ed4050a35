#include "costmodels/compute.h"

#include <algorithm>
#include <cmath>

namespace moesim::compute {

const char* to_string(Bound b) {
  switch (b) {
    case Bound::compute: return "compute";
    case Bound::memory: return "memory";
    case Bound::latency: return "latency";
  }
  return "?";
}

double tile_quantisation(double dim, int tile) {
  if (dim <= 0 || tile <= 1) return 1.0;
  return dim / (std::ceil(dim / tile) * tile);
}

double expected_group_tiles(double rows, int tile) {
  if (rows <= 0 || tile <= 1) return std::max(rows, 0.0);
  return std::max(1.0, rows / tile + 0.5);
}

double matrix_efficiency(const GemmShape& shape, const MatrixEfficiency& eff, bool grouped) {
  const double quantisation = tile_quantisation(shape.m, eff.tile_m) * tile_quantisation(shape.n, eff.tile_n) *
                              tile_quantisation(shape.k, eff.tile_k);
  const flops f = shape.flop_count();
  const double saturation = f / (f + eff.half_saturation_flops);
  return eff.peak_fraction * quantisation * saturation * (grouped ? eff.grouped_gemm_factor : 1.0);
}

flops_per_second fp8_gemm_peak(const DeviceSpec& device, Fp8Recipe recipe) {
  const MatrixEfficiency& e = device.matrix;
  const bool block_scaled = recipe == Fp8Recipe::blockwise && e.fp8_blockwise_fraction > 0;
  return device.matrix_fp8 * (block_scaled ? e.fp8_blockwise_fraction : e.fp8_fraction);
}

OpTime roofline(flops f, bytes hbm, flops_per_second peak, double efficiency, const DeviceSpec& device) {
  OpTime t;
  t.efficiency = efficiency;
  const seconds compute = f > 0 ? f / (peak * efficiency) : 0.0;
  const seconds memory = hbm > 0 ? hbm / (device.hbm_bandwidth * device.hbm_efficiency) : 0.0;
  t.time = std::max(compute, memory) + device.launch_overhead;
  if (device.launch_overhead > std::max(compute, memory)) {
    t.bound = Bound::latency;
  } else {
    t.bound = compute >= memory ? Bound::compute : Bound::memory;
  }
  return t;
}

double tile_fixed_k(const MatrixEfficiency& eff, flops_per_second peak) {
  if (eff.tile_fixed_cost <= 0 || eff.compute_units <= 0) return 0.0;
  const double unit_rate = peak * eff.peak_fraction / eff.compute_units;
  return eff.tile_fixed_cost * unit_rate / (2.0 * eff.tile_m * eff.tile_n);
}

double tile_fixed_factor(const GemmShape& shape, const MatrixEfficiency& eff, flops_per_second peak) {
  const double k0 = tile_fixed_k(eff, peak);
  if (k0 <= 0 || shape.k <= 0) return 1.0;
  const double k = eff.tile_k > 1 ? std::ceil(shape.k / eff.tile_k) * eff.tile_k : shape.k;
  return k / (k + k0);
}

double unit_occupancy(const GemmShape& shape, const MatrixEfficiency& eff) {
  if (eff.compute_units <= 0 || shape.count <= 0) return 1.0;
  const double tiles = shape.count * expected_group_tiles(shape.m, eff.tile_m) *
                       (eff.tile_n > 1 ? std::ceil(shape.n / eff.tile_n) : shape.n);
  return std::min(1.0, tiles / eff.compute_units);
}

double routed_m_quantisation(double rows, int tile) {
  if (rows <= 0 || tile <= 1) return 1.0;
  return rows / (expected_group_tiles(rows, tile) * tile);
}

OpTime gemm_time(const GemmShape& shape, bytes hbm, flops_per_second peak, const DeviceSpec& device, bool grouped,
                 bool routed) {
  const MatrixEfficiency& e = device.matrix;
  double efficiency = matrix_efficiency(shape, e, grouped) * tile_fixed_factor(shape, e, peak);
  if (routed && shape.m > 0) efficiency *= routed_m_quantisation(shape.m, e.tile_m) / tile_quantisation(shape.m, e.tile_m);
  if (grouped) efficiency *= unit_occupancy(shape, e);
  return roofline(shape.flop_count(), hbm, peak, efficiency, device);
}

double kernel_gemm_work(const GemmShape& shape, KernelTile tile, const MatrixEfficiency& eff) {
  const double quantisation =
      tile_quantisation(shape.m, tile.m) * tile_quantisation(shape.n, tile.n) * tile_quantisation(shape.k, tile.k);
  return (shape.flop_count() / quantisation + eff.half_saturation_flops) / eff.peak_fraction;
}

OpTime kernel_gemm_time(const GemmShape& shape, KernelTile tile, bytes hbm, flops_per_second rate, const DeviceSpec& device) {
  const double work = kernel_gemm_work(shape, tile, device.matrix);
  return roofline(shape.flop_count(), hbm, rate, shape.flop_count() / work, device);
}

OpTime attention_time(flops f, bytes hbm, flops_per_second peak, const DeviceSpec& device) {
  // Fused attention (FlashAttention, Ascend FusionAttention) runs its two matmuls with softmax in
  // between, below plain-GEMM efficiency; attention_fraction captures that (FlashAttention-2 §4.1
  // reports 50-73% of peak on A100 against ~85% for GEMMs).
  const double efficiency = device.matrix.peak_fraction * device.matrix.attention_fraction;
  return roofline(f, hbm, peak, efficiency, device);
}

OpTime vector_time(flops f, bytes hbm, const DeviceSpec& device) {
  return roofline(f, hbm, device.vector_flops, device.vector_efficiency, device);
}

}  // namespace moesim::compute
