// The GEMM model against published kernel tables: DeepGEMM's FP8 GEMMs on H800 (github.com/deepseek-ai/
// DeepGEMM README at its first release, commit a6d97a1, 2025-02-25: "Normal GEMMs for dense models",
// "Grouped GEMMs for MoE models (contiguous layout)" and "(masked layout)", TFLOPS as stated). The dense
// M = 4096 rows are the ones the profile's tile_fixed_cost was fitted on (in sample); the grouped rows are
// not fitted on (held out). Errors are model / table - 1, in the comments as the model gives them.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <utility>
#include <vector>

#include "costmodels/compute.h"
#include "sim/io/json_reader.h"
#include "sim/io/specs_io.h"
#include "tests/support.h"

using namespace moesim;
using test::mean_abs;

namespace {

struct TableRow {
  double groups, m, n, k, tflops;
};
enum class Kernel { dense, grouped };

// Predicted TFLOPS of one row: gemm_time, the expert GEMM path of sim/engine (grouped: unit occupancy and
// grouped_gemm_factor), at the H800 FP8 rate. The tables give each group exactly M rows (not routed).
double model_tflops(const TableRow& r, const HardwareProfile& hw, Kernel kernel) {
  const compute::GemmShape shape{r.m, r.n, r.k, r.groups};
  const bytes hbm = (r.m * r.k + r.n * r.k) * r.groups + 2 * r.m * r.n * r.groups;  // fp8 inputs, bf16 output
  const compute::OpTime t =
      compute::gemm_time(shape, hbm, hw.device.matrix_fp8, hw.device, kernel == Kernel::grouped, false);
  return shape.flop_count() / t.time / 1e12;
}

std::vector<double> errors(const std::vector<TableRow>& rows, const HardwareProfile& hw, Kernel kernel,
                           const char* label) {
  std::vector<double> out;
  for (const auto& r : rows) {
    const double e = model_tflops(r, hw, kernel) / r.tflops - 1;
    std::printf("%s %gx M %g N %g K %g: table %g TFLOPS, model %+.1f%%\n", label, r.groups, r.m, r.n, r.k, r.tflops,
                100 * e);
    out.push_back(e);
  }
  return out;
}


}  // namespace

TEST_CASE("kernel tables: DeepGEMM dense FP8 GEMMs at M = 4096 on H800 (the tile_fixed_cost fit)", "[compute][tables]") {
  const HardwareProfile hw = io::load_profile("h800");
  const std::vector<TableRow> dense{{1, 4096, 2112, 7168, 1058}, {1, 4096, 24576, 1536, 990},
                                    {1, 4096, 32768, 512, 590},  {1, 4096, 7168, 16384, 1358},
                                    {1, 4096, 4096, 7168, 1304}, {1, 4096, 7168, 2048, 1025}};
  const auto e = errors(dense, hw, Kernel::dense, "dense");
  CHECK(mean_abs(e) < 0.05);
  // The K law: K = 512 is 2.3x slower per FLOP than K = 16384 in the table; the model keeps that shape.
  CHECK(std::abs(e[2]) < 0.08);
  CHECK(std::abs(e[3]) < 0.08);
}

TEST_CASE("kernel tables: DeepGEMM grouped FP8 GEMMs on H800, held out", "[compute][tables][moe]") {
  const HardwareProfile hw = io::load_profile("h800");
  // Contiguous layout (training and prefill: the experts' tokens concatenated, each padded to the M block).
  const std::vector<TableRow> contiguous{{4, 8192, 4096, 7168, 1297}, {4, 8192, 7168, 2048, 1099},
                                         {8, 4096, 4096, 7168, 1288}, {8, 4096, 7168, 2048, 1093}};
  // Masked layout (decoding: few tokens per expert): 256 .. 1024 rows per group.
  const std::vector<TableRow> masked{{1, 1024, 4096, 7168, 1233}, {1, 1024, 7168, 2048, 925},
                                     {2, 512, 4096, 7168, 1040},  {2, 512, 7168, 2048, 916},
                                     {4, 256, 4096, 7168, 932},   {4, 256, 7168, 2048, 815}};
  const auto c = errors(contiguous, hw, Kernel::grouped, "contiguous");
  const auto m = errors(masked, hw, Kernel::grouped, "masked");
  // Contiguous: -0.5, -4.7, +0.2, -4.1% (mean 2.4%).
  CHECK(mean_abs(c) < 0.05);
  // Masked: -3.5, -0.5, +14.4, +0.5, +27.6, +12.9% (mean 9.9%). The model is optimistic at 256 and 512 rows
  // per group, most with K = 7168: those kernels stream every expert's weights once for few rows and run
  // near the HBM ridge (the table states 1.3-2.1 TB/s of 3.35), where the roofline's max(compute, memory)
  // assumes loads and MMAs overlap fully; their partial overlap is not modelled (issue 25, left open).
  CHECK(mean_abs(m) < 0.12);
  // Dense-table errors of this model (in sample): +7.9, -3.5, -1.8, -0.1, -2.9, -0.9% (mean 2.9%).
}

// Block-scaled FP8 on Hopper against cuBLAS 12.9's published speed-ups (NVIDIA technical blog "Boosting
// Matrix Multiplication Speed and Flexibility with NVIDIA cuBLAS 12.9", 2025, section "Channel- and
// block-scaled FP8 matmuls on NVIDIA Hopper": 1.75x the BF16 baseline for large matmuls, at least 1.25x for
// most other shapes). The 1.75x is what fp8_blockwise_fraction is set from (in sample); the floor of 1.25x
// at training shapes is held out. Tolerance 5% on the large-matmul ratio.
TEST_CASE("kernel tables: block-scaled FP8 over BF16 on H100 (cuBLAS 12.9 blog)", "[compute][tables][fp8]") {
  const HardwareProfile hw = io::load_profile("h100-sxm");
  const DeviceSpec& d = hw.device;
  auto speedup = [&](const compute::GemmShape& s, bool grouped) {
    const double operands = (s.m * s.k + s.n * s.k) * s.count, output = 2 * s.m * s.n * s.count;
    const seconds bf16 = compute::gemm_time(s, 2 * operands + output, d.matrix_bf16, d, grouped).time;
    const seconds fp8 = compute::gemm_time(s, operands + output, compute::fp8_gemm_peak(d, Fp8Recipe::blockwise), d, grouped).time;
    return bf16 / fp8;
  };
  const double large = speedup({16384, 16384, 16384}, false);
  std::printf("block-scaled FP8 / BF16, 16384^3: %.3fx (blog 1.75x)\n", large);
  CHECK(std::abs(large / 1.75 - 1) < 0.05);
  // Tensor-scaled FP8 keeps its MAMF share: the block scales cost Hopper 0.875 / 0.966 of it.
  CHECK(compute::fp8_gemm_peak(d, Fp8Recipe::blockwise) < compute::fp8_gemm_peak(d, Fp8Recipe::tensorwise));
  // Qwen3-30B-A3B on 8 H100 (EP8, 4096 tokens): the expert GEMMs (16 local experts x 2048 rows) and the
  // attention projections all gain at least the blog's 1.25x and less than its large-matmul 1.75x.
  const std::vector<std::pair<compute::GemmShape, bool>> shapes{{{2048, 1536, 2048, 16}, true},
                                                                {{2048, 2048, 768, 16}, true},
                                                                {{4096, 5120, 2048, 1}, false},
                                                                {{4096, 2048, 4096, 1}, false}};
  for (const auto& [s, grouped] : shapes) {
    const double x = speedup(s, grouped);
    std::printf("block-scaled FP8 / BF16, %gx%gx%g x%g: %.3fx\n", s.m, s.n, s.k, s.count, x);
    CHECK(x >= 1.25);
    CHECK(x < 1.75);
  }
}

TEST_CASE("fp8_blockwise_fraction: read from the profile, written back, at most 1", "[fp8][io]") {
  const std::string file = io::profile_path("h100-sxm");
  io::json j = io::read_json_file(file);
  const HardwareProfile hw = io::parse_profile(j, file);
  CHECK(hw.device.matrix.fp8_blockwise_fraction == 0.875);
  CHECK(io::parse_profile(io::profile_json(hw, j), "written.json").device.matrix.fp8_blockwise_fraction == 0.875);
  // Absent (Blackwell: MXFP8 block scales are native to its tensor cores): blockwise runs at fp8_fraction.
  const HardwareProfile b200 = io::load_profile("b200");
  CHECK(b200.device.matrix.fp8_blockwise_fraction == 0);
  CHECK(compute::fp8_gemm_peak(b200.device, Fp8Recipe::blockwise) ==
        b200.device.matrix_fp8 * b200.device.matrix.fp8_fraction);
  j["device"]["matrix_efficiency"]["fp8_blockwise_fraction"] = 1.5;
  test::check_names(test::input_error([&] { io::parse_profile(j, "h100.json"); }), "h100.json", "fp8_blockwise_fraction");
}
