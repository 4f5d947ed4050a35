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

// Expected M tiles of one group (expert) of `rows` routed tokens: its count's remainder modulo the tile is
// as likely any value, so the last tile is on average half full: max(1, rows / tile + 1/2). Grouped
// kernels tile each group apart (DeepGEMM README: "each expert segment must be aligned to the GEMM M
// block size"; CUTLASS grouped GEMM schedules per-problem tiles).
double expected_group_tiles(double rows, int tile);
// M tile quantisation of a routed expert's GEMM: rows / (expected_group_tiles x tile).
double routed_m_quantisation(double rows, int tile);

// Per-tile fixed cost in K elements of main loop: K0 = tile_fixed_cost x (peak x peak_fraction /
// compute_units) / (2 tile_m tile_n). A tile's time is its main loop over K plus a fixed part (pipeline
// fill, epilogue writing the tile; CUTLASS docs/efficient_gemm.md), so a GEMM runs at K / (K + K0) of
// its large-K efficiency: narrow experts (the K of fc2 is the expert width) pay most. K0 grows with the
// rate (FP8 doubles it): the fixed part is time, not work. Fitted on DeepGEMM's dense-GEMM table (hw
// profile sources).
double tile_fixed_k(const MatrixEfficiency& eff, flops_per_second peak);
double tile_fixed_factor(const GemmShape& shape, const MatrixEfficiency& eff, flops_per_second peak);
// Share of the matrix units a grouped GEMM's tiles keep busy: min(1, tiles / compute_units), tiles =
// groups x expected_group_tiles(M) x ceil(N / tile_n). A grouped kernel runs one tile shape for all
// groups (TE/cuBLASLt grouped GEMM, CUTLASS grouped, DeepGEMM m-grouped), so few small experts leave
// units idle; plain GEMMs are left out: cuBLAS picks smaller tiles or split-K for small shapes.
double unit_occupancy(const GemmShape& shape, const MatrixEfficiency& eff);

// The FP8 rate GEMMs of an FP8 recipe run at: the FP8 peak x the share of the BF16 efficiency they reach
// (fp8_blockwise_fraction for block-scaled FP8 where the profile gives it, else fp8_fraction).
flops_per_second fp8_gemm_peak(const DeviceSpec& device, Fp8Recipe recipe);

// Roofline: max(F / (peak x efficiency), bytes / (HBM bandwidth x hbm_efficiency)) + launch overhead.
OpTime roofline(flops f, bytes hbm, flops_per_second peak, double efficiency, const DeviceSpec& device);

// Roofline at matrix_efficiency x tile_fixed_factor (x unit_occupancy for grouped GEMMs). `routed`: M is
// one expert's routed token count, quantised as routed_m_quantisation instead of ceil(M / tile).
OpTime gemm_time(const GemmShape& shape, bytes hbm, flops_per_second peak, const DeviceSpec& device, bool grouped,
                 bool routed = false);

// A profiled GEMM kernel whose threadblock tile is known (0: that dimension is not quantised): the
// padded work F / q on that tile plus the fixed fill/drain cost F_half of the saturation curve, which
// does not grow with padding: t = (F / q + F_half) / (rate x peak_fraction). matrix_efficiency divides
// F_half by q too, harmless for the large, tile-filling GEMMs of training but a factor q^-1 (up to
// 10^4 for a 2 x 1 x 2048 GEMM on 128 x 128 tiles) too slow for the tiny GEMMs cuBLAS runs on small
// tiles (NVIDIA "Matrix Multiplication Background" guide: quantisation wastes the padded part of the
// last tile, not a fixed cost).
struct KernelTile {
  int m = 0, n = 0, k = 0;
};
OpTime kernel_gemm_time(const GemmShape& shape, KernelTile tile, bytes hbm, flops_per_second rate, const DeviceSpec& device);
// Unit-rate compute time of kernel_gemm_time: (F / q + F_half) / peak_fraction (FLOPs; divide by a rate).
double kernel_gemm_work(const GemmShape& shape, KernelTile tile, const MatrixEfficiency& eff);
OpTime attention_time(flops f, bytes hbm, flops_per_second peak, const DeviceSpec& device);
OpTime vector_time(flops f, bytes hbm, const DeviceSpec& device);

}  // namespace moesim::compute
