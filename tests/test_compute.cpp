// costmodels/compute: the roofline's ridge point, tile quantisation and monotonicity of op times.
#include <catch2/catch.hpp>

#include "costmodels/compute.h"

using namespace moesim;
using namespace moesim::compute;

namespace {

// Round numbers so that the ridge point is exact in binary floating point:
// matrix peak 1e15 x 0.5 = 5e14 FLOP/s; HBM 2e12 x 0.5 = 1e12 B/s; ridge at 500 FLOP per byte.
DeviceSpec device() {
  DeviceSpec d;
  d.matrix_bf16 = 1e15;
  d.vector_flops = 1e14;
  d.hbm_bytes = 8e10;
  d.hbm_bandwidth = 2e12;
  d.hbm_efficiency = 0.5;
  d.vector_efficiency = 0.5;
  d.launch_overhead = 5e-6;
  d.matrix.peak_fraction = 0.8;
  d.matrix.half_saturation_flops = 1e9;
  d.matrix.tile_m = 128;
  d.matrix.tile_n = 128;
  d.matrix.tile_k = 64;
  d.matrix.grouped_gemm_factor = 0.9;
  return d;
}

}  // namespace

TEST_CASE("compute: roofline ridge point", "[compute]") {
  const DeviceSpec d = device();
  const double efficiency = 0.5;
  const double ridge = d.matrix_bf16 * efficiency / (d.hbm_bandwidth * d.hbm_efficiency);  // FLOP per byte
  REQUIRE(ridge == 500);
  const flops f = 1e12;
  const bytes at_ridge = f / ridge;  // 2e9 bytes
  const OpTime t = roofline(f, at_ridge, d.matrix_bf16, efficiency, d);
  // Compute time equals memory time: 1e12 / 5e14 = 2e9 / 1e12 = 2 ms.
  CHECK(t.time == Approx(2e-3 + d.launch_overhead).epsilon(1e-15));
  CHECK(t.bound == Bound::compute);  // ties go to compute
  // Just above the ridge intensity: compute-bound with the same time; just below: memory-bound.
  const OpTime more_bytes = roofline(f, at_ridge * 1.01, d.matrix_bf16, efficiency, d);
  CHECK(more_bytes.bound == Bound::memory);
  CHECK(more_bytes.time == Approx(at_ridge * 1.01 / 1e12 + d.launch_overhead).epsilon(1e-14));
  const OpTime fewer_bytes = roofline(f, at_ridge * 0.99, d.matrix_bf16, efficiency, d);
  CHECK(fewer_bytes.bound == Bound::compute);
  CHECK(fewer_bytes.time == t.time);
  // Below the ridge, time scales with bytes; above, with FLOPs.
  CHECK(roofline(f, 4 * at_ridge, d.matrix_bf16, efficiency, d).time - d.launch_overhead ==
        Approx(4 * (t.time - d.launch_overhead)).epsilon(1e-14));
  CHECK(roofline(4 * f, at_ridge, d.matrix_bf16, efficiency, d).time - d.launch_overhead ==
        Approx(4 * (t.time - d.launch_overhead)).epsilon(1e-14));
  // A tiny op is latency-bound: launch overhead dominates.
  const OpTime tiny = roofline(1e3, 1e3, d.matrix_bf16, efficiency, d);
  CHECK(tiny.bound == Bound::latency);
  CHECK(tiny.time == Approx(d.launch_overhead).epsilon(1e-3));
  // Vector ops: ridge at vector_flops x vector_efficiency / (HBM x efficiency) = 5e13 / 1e12 = 50.
  const OpTime v = vector_time(50 * 1e9, 1e9, d);
  CHECK(v.time == Approx(1e-3 + d.launch_overhead).epsilon(1e-14));
}

TEST_CASE("compute: tile quantisation", "[compute]") {
  CHECK(tile_quantisation(128, 128) == 1.0);
  CHECK(tile_quantisation(4096, 128) == 1.0);
  CHECK(tile_quantisation(130, 128) == 130.0 / 256.0);  // 130 rows compute 256
  CHECK(tile_quantisation(1, 128) == 1.0 / 128.0);
  CHECK(tile_quantisation(200, 64) == 200.0 / 256.0);
  CHECK(tile_quantisation(100, 1) == 1.0);  // no tiling
  for (double dim = 1; dim <= 1024; dim += 1) {
    const double q = tile_quantisation(dim, 128);
    CHECK(q > 0);
    CHECK(q <= 1.0);
  }
  // matrix_efficiency applies it to each dimension: a 4097-row GEMM runs 4224 rows' worth of tiles.
  const DeviceSpec d = device();
  const GemmShape aligned{4096, 4096, 4096, 1}, ragged{4097, 4096, 4096, 1};
  const double sat_aligned = aligned.flop_count() / (aligned.flop_count() + d.matrix.half_saturation_flops);
  const double sat_ragged = ragged.flop_count() / (ragged.flop_count() + d.matrix.half_saturation_flops);
  CHECK(matrix_efficiency(aligned, d.matrix, false) == Approx(0.8 * sat_aligned).epsilon(1e-14));
  CHECK(matrix_efficiency(ragged, d.matrix, false) == Approx(0.8 * sat_ragged * 4097.0 / 4224.0).epsilon(1e-14));
  // ... and the ragged GEMM takes longer although it is barely bigger.
  CHECK(gemm_time(ragged, 0, d.matrix_bf16, d, false).time > gemm_time(aligned, 0, d.matrix_bf16, d, false).time);
  // K quantises on tile_k = 64: K = 65 wastes almost half.
  const GemmShape k65{1024, 1024, 65, 1};
  const double sat = k65.flop_count() / (k65.flop_count() + d.matrix.half_saturation_flops);
  CHECK(matrix_efficiency(k65, d.matrix, false) == Approx(0.8 * sat * 65.0 / 128.0).epsilon(1e-14));
  // Grouped GEMMs pay grouped_gemm_factor.
  CHECK(matrix_efficiency(aligned, d.matrix, true) == Approx(0.9 * matrix_efficiency(aligned, d.matrix, false)).epsilon(1e-14));
}

TEST_CASE("compute: bigger GEMMs never lose efficiency in the saturation term", "[compute][monotone]") {
  const DeviceSpec d = device();
  auto saturation = [&](const GemmShape& s) {
    const double q = tile_quantisation(s.m, d.matrix.tile_m) * tile_quantisation(s.n, d.matrix.tile_n) *
                     tile_quantisation(s.k, d.matrix.tile_k);
    return matrix_efficiency(s, d.matrix, false) / (d.matrix.peak_fraction * q);
  };
  double previous = 0;
  for (double m = 1; m <= 65536; m *= 1.37) {
    const GemmShape s{std::floor(m), 2048, 7168, 1};
    const double sat = saturation(s);
    CAPTURE(s.m, sat);
    CHECK(sat >= previous);
    CHECK(sat < 1.0);
    CHECK(sat == Approx(s.flop_count() / (s.flop_count() + d.matrix.half_saturation_flops)).epsilon(1e-12));
    previous = sat;
  }
  // Tile-aligned shapes: the whole efficiency grows with size and approaches peak_fraction.
  previous = 0;
  for (double n = 128; n <= 32768; n *= 2) {
    const double e = matrix_efficiency({n, n, n, 1}, d.matrix, false);
    CAPTURE(n, e);
    CHECK(e > previous);
    CHECK(e <= d.matrix.peak_fraction);
    previous = e;
  }
  CHECK(previous == Approx(d.matrix.peak_fraction).epsilon(1e-4));
  // More experts in a grouped GEMM (more FLOPs, same per-expert shape) never lowers efficiency.
  previous = 0;
  for (double count = 1; count <= 64; count *= 2) {
    const double e = matrix_efficiency({256, 4096, 7168, count}, d.matrix, true);
    CHECK(e >= previous);
    previous = e;
  }
}

TEST_CASE("compute: more peak, more bandwidth, never slower", "[compute][monotone]") {
  const std::vector<GemmShape> shapes = {{1, 1, 1, 1},        {128, 128, 64, 1},   {300, 7168, 2048, 1},
                                         {8192, 8192, 8192, 1}, {512, 4096, 7168, 8}, {4, 16384, 16384, 1}};
  for (const GemmShape& s : shapes) {
    CAPTURE(s.m, s.n, s.k, s.count);
    const bytes hbm = (s.m * s.k + s.k * s.n + s.m * s.n) * s.count * 2;
    DeviceSpec d = device();
    seconds previous = 1e300;
    for (double peak = 1e13; peak <= 1e16; peak *= 1.5) {
      const seconds t = gemm_time(s, hbm, peak, d, false).time;
      CHECK(t <= previous);
      CHECK(t > 0);
      previous = t;
    }
    previous = 1e300;
    for (double bw = 1e11; bw <= 1e14; bw *= 1.5) {
      d.hbm_bandwidth = bw;
      const seconds t = gemm_time(s, hbm, 1e15, d, true).time;
      CHECK(t <= previous);
      previous = t;
    }
  }
  DeviceSpec d = device();
  seconds previous = 1e300;
  for (double vf = 1e12; vf <= 1e15; vf *= 2) {
    d.vector_flops = vf;
    const seconds t = vector_time(1e11, 1e8, d).time;
    CHECK(t <= previous);
    previous = t;
  }
  // Attention: fused kernels run at peak_fraction x attention_fraction.
  d = device();
  d.matrix.attention_fraction = 0.5;
  const OpTime a = attention_time(1e13, 1e6, d.matrix_bf16, d);
  CHECK(a.efficiency == Approx(0.4).epsilon(1e-15));
  CHECK(a.time == Approx(1e13 / (1e15 * 0.4) + d.launch_overhead).epsilon(1e-14));
}

// Issue 25: the per-tile fixed cost, the expected partial M tile of a routed expert and the unit occupancy
// of a grouped GEMM, each against its closed form and its direction.
TEST_CASE("compute: per-tile fixed cost K / (K + K0), larger at a faster rate", "[compute][moe]") {
  DeviceSpec d = device();
  d.matrix.compute_units = 100;
  d.matrix.tile_fixed_cost = 2e-6;
  // K0 = t x peak x peak_fraction / units / (2 tm tn) = 2e-6 x 1e15 x 0.8 / 100 / (2 x 128 x 128) = 488.28125.
  const double k0 = 2e-6 * 1e15 * 0.8 / 100 / (2.0 * 128 * 128);
  CHECK(tile_fixed_k(d.matrix, 1e15) == Approx(k0).epsilon(1e-12));
  CHECK(tile_fixed_k(d.matrix, 2e15) == Approx(2 * k0).epsilon(1e-12));  // FP8: the same time is twice the K
  const GemmShape narrow{4096, 4096, 768, 1}, wide{4096, 4096, 7168, 1};
  CHECK(tile_fixed_factor(narrow, d.matrix, 1e15) == Approx(768 / (768 + k0)).epsilon(1e-12));
  CHECK(tile_fixed_factor(narrow, d.matrix, 1e15) < tile_fixed_factor(wide, d.matrix, 1e15));
  CHECK(tile_fixed_factor(narrow, d.matrix, 2e15) < tile_fixed_factor(narrow, d.matrix, 1e15));
  // The GEMM's compute time grows by exactly 1 + K0 / K over the profile without the fixed cost.
  DeviceSpec none = device();
  const double big_bytes = 1;  // compute-bound
  const double with = gemm_time(narrow, big_bytes, 1e15, d, false).time - d.launch_overhead;
  const double without = gemm_time(narrow, big_bytes, 1e15, none, false).time - d.launch_overhead;
  CHECK(with / without == Approx(1 + k0 / 768).epsilon(1e-9));
  // Off without compute units or cost.
  CHECK(tile_fixed_factor(narrow, none.matrix, 1e15) == 1.0);
}

TEST_CASE("compute: a routed expert's last M tile is half full on average", "[compute][moe]") {
  CHECK(expected_group_tiles(2048, 128) == Approx(16.5));
  CHECK(expected_group_tiles(10, 128) == 1.0);  // one tile at least
  DeviceSpec d = device();
  // Routed: 2048 rows at 128-row tiles keep 2048 / (16.5 x 128) of the M work; a fixed M of 2048 keeps all.
  const GemmShape g{2048, 1024, 1024, 8};
  CHECK(routed_m_quantisation(2048, 128) == Approx(1 / (1 + 0.5 / 16)).epsilon(1e-12));
  const double fixed = gemm_time(g, 1, 1e15, d, true, false).efficiency;
  CHECK(gemm_time(g, 1, 1e15, d, true, true).efficiency == Approx(fixed / (1 + 0.5 / 16)).epsilon(1e-12));
  // Fewer tokens per expert lose relatively more to the half tile.
  CHECK(routed_m_quantisation(256, 128) < routed_m_quantisation(2048, 128));
}

TEST_CASE("compute: a grouped GEMM with fewer tiles than units leaves units idle", "[compute][moe]") {
  DeviceSpec d = device();
  d.matrix.compute_units = 132;
  // 4 experts x max(1, 32/128 + 0.5) tiles of M x 1024/128 = 8 tiles of N: 32 tiles on 132 units.
  const GemmShape few{32, 1024, 1024, 4};
  CHECK(unit_occupancy(few, d.matrix) == Approx(32.0 / 132).epsilon(1e-12));
  const GemmShape many{2048, 1024, 1024, 16};
  CHECK(unit_occupancy(many, d.matrix) == 1.0);
  // Only grouped GEMMs pay it.
  const double grouped = gemm_time(few, 1, 1e15, d, true).efficiency;
  const double plain = gemm_time(few, 1, 1e15, d, false).efficiency;
  CHECK(grouped < plain * d.matrix.grouped_gemm_factor);
}
