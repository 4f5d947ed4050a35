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

double matrix_efficiency(const GemmShape& shape, const MatrixEfficiency& eff, bool grouped) {
  const double quantisation = tile_quantisation(shape.m, eff.tile_m) * tile_quantisation(shape.n, eff.tile_n) *
                              tile_quantisation(shape.k, eff.tile_k);
  const flops f = shape.flop_count();
  const double saturation = f / (f + eff.half_saturation_flops);
  return eff.peak_fraction * quantisation * saturation * (grouped ? eff.grouped_gemm_factor : 1.0);
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

OpTime gemm_time(const GemmShape& shape, bytes hbm, flops_per_second peak, const DeviceSpec& device, bool grouped) {
  return roofline(shape.flop_count(), hbm, peak, matrix_efficiency(shape, device.matrix, grouped), device);
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
