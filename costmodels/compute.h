#pragma once
// Time of one operator on one device: a roofline on the unit that runs it (matrix unit: Ascend Cube,
// GPU tensor cores; vector unit: Ascend Vector, CUDA cores) with a shape-dependent matrix efficiency,
// an HBM efficiency for memory-bound ops, and a per-kernel launch overhead (Williams, Waterman &
// Patterson 2009, "Roofline"; the DESIGN.md op-time rule).
#include "costmodels/specs.h"

namespace moesim::compute {

// M x K times K x N, `count` independent GEMMs of that shape (grouped expert GEMMs have count > 1).
struct GemmShape {
  double m = 0, n = 0, k = 0;
  double count = 1;
  flops flop_count() const { return 2.0 * m * n * k * count; }
};

enum class Bound { compute, memory, latency };
const char* to_string(Bound b);

struct OpTime {
  seconds time = 0;
  Bound bound = Bound::compute;
  double efficiency = 1.0;  // achieved fraction of the unit's peak on the compute term
};

// Fraction of a dimension that fills whole tiles: d / (ceil(d / tile) * tile). A 130-row GEMM on
// 128-row tiles computes 256 rows (NVIDIA "Matrix Multiplication Background" guide, tile quantization).
double tile_quantisation(double dim, int tile);

// Matrix-unit efficiency of a GEMM: peak_fraction x tile quantisation of M, N, K x a saturation curve
// F / (F + F_half) in the GEMM's FLOPs (small GEMMs cannot fill all cores and pipelines; calculon's
// flops-dependent efficiency table has the same shape), x grouped_gemm_factor for grouped GEMMs.
double matrix_efficiency(const GemmShape& shape, const MatrixEfficiency& eff, bool grouped);

// Roofline: max(F / (peak x efficiency), bytes / (HBM bandwidth x hbm_efficiency)) + launch overhead.
OpTime roofline(flops f, bytes hbm, flops_per_second peak, double efficiency, const DeviceSpec& device);

OpTime gemm_time(const GemmShape& shape, bytes hbm, flops_per_second peak, const DeviceSpec& device, bool grouped);
OpTime attention_time(flops f, bytes hbm, flops_per_second peak, const DeviceSpec& device);
OpTime vector_time(flops f, bytes hbm, const DeviceSpec& device);

}  // namespace moesim::compute
