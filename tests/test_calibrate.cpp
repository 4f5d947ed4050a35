// Trace readers on the real traces in ../shared/traces, cut and malformed copies of them, and the
// calibration fit (on synthetic samples with known parameters and on real traces).
#include <catch2/catch.hpp>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "sim/calibration/calibrate.h"
#include "sim/io/specs_io.h"
#include "sim/io/trace_io.h"
#include "tests/files.h"

using namespace moesim;
namespace fs = std::filesystem;

namespace {

const fs::path traces_dir = fs::path(MOESIM_SHARED_DIR) / "traces";

// The real traces live outside the repository; without them these tests fail rather than pass unchecked.
bool have_traces() {
  if (fs::exists(traces_dir)) return true;
  FAIL("needs ../shared/traces (not found at " << traces_dir.string() << ")");
  return false;
}

std::string trace(const std::string& relative) { return (traces_dir / relative).string(); }

// One trace of ../shared/traces classified, fitted on itself, and replayed before and after the fit.
struct InSampleFit {
  io::Trace trace;  // the samples view its names
  std::vector<calibrate::Sample> samples;
  calibrate::FitResult fit;
  calibrate::ReplayReport before, after;
  const calibrate::KindError& before_kind(calibrate::OpKind k) const { return before.kinds.at(k); }
  const calibrate::KindError& after_kind(calibrate::OpKind k) const { return after.kinds.at(k); }
};

InSampleFit fit_in_sample(const std::string& relative, const HardwareProfile& base) {
  InSampleFit r{io::read_trace(trace(relative)), {}, {}, {}, {}};
  r.samples = calibrate::classify(r.trace, base);
  r.fit = calibrate::fit(r.samples, base);
  r.before = calibrate::replay(r.samples, base);
  r.after = calibrate::replay(r.samples, r.fit.profile);
  return r;
}

using test::slurp;

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

int count_kind(const std::vector<calibrate::Sample>& samples, calibrate::OpKind kind) {
  return static_cast<int>(std::count_if(samples.begin(), samples.end(), [&](const auto& s) { return s.kind == kind; }));
}

std::string error_of(const std::string& path) {
  try {
    io::read_trace(path);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("Kineto reader: DeepSeek-V3 H800 training trace", "[trace]") {
  if (!have_traces()) return;
  const io::Trace t = io::read_trace(trace("deepseek-profile-data/train.json"));
  CHECK(t.format == io::TraceFormat::chrome_json);
  CHECK(t.device_name == "NVIDIA H800");
  CHECK(t.world_size == 64);
  CHECK(t.kernels.size() == 963);  // SOURCES.md: 963 GPU kernels
  const auto samples = calibrate::classify(t, io::load_profile("h800"));
  CHECK(count_kind(samples, calibrate::OpKind::grouped_matmul) == 207);  // dpsk::grouped_gemm fwd/dgrad/wgrad + helpers
  CHECK(count_kind(samples, calibrate::OpKind::attention) == 12);         // FlashAttention fwd + bwd kernels
  CHECK(count_kind(samples, calibrate::OpKind::collective) == 36);        // DeepEP dispatch/combine/notify
  // record_shapes was off: nothing can be predicted, and replay says so instead of guessing.
  CHECK(calibrate::replay(samples, io::load_profile("h800")).predicted_kernels == 0);
}

TEST_CASE("Kineto reader: NCCL message sizes and group size from kernel args (gzip)", "[trace]") {
  if (!have_traces()) return;
  const io::Trace t = io::read_trace(trace("hta/nccl_parser_config/nccl_data.json.gz"));
  CHECK(t.device_name == "NVIDIA A100-PG509-200");
  CHECK(t.kernels.size() == 2700);
  int all_reduce = 0, broadcast = 0;
  for (const auto& k : t.kernels) {
    if (k.collective == "allreduce") {
      ++all_reduce;
      CHECK(k.message_elements > 0);
      CHECK(k.group_size == 2);
      CHECK(io::dtype_bytes(k.message_type) == 4);
    }
    if (k.collective == "broadcast") ++broadcast;
  }
  CHECK(all_reduce == 15);  // SOURCES.md: 15 AllReduce + 6 Broadcast
  CHECK(broadcast == 6);
}

TEST_CASE("Kineto reader: kernels linked to their aten op through the launch call", "[trace]") {
  if (!have_traces()) return;
  // In this older trace a kernel's External id is its correlation id, so the op is found by the CPU
  // span that encloses the cudaLaunchKernel call.
  const io::Trace t = io::read_trace(trace("hta/trace_diff/control/control.json.gz"));
  int gemms = 0, linked = 0, with_shapes = 0;
  for (const auto& k : t.kernels) {
    if (k.name.find("sgemm") == std::string::npos && k.name.find("s1688gemm") == std::string::npos) continue;
    ++gemms;
    if (k.op.starts_with("aten::")) ++linked;
    if (std::any_of(k.input_shapes.begin(), k.input_shapes.end(), [](const auto& d) { return d.size() >= 2; })) ++with_shapes;
  }
  REQUIRE(gemms > 1000);
  CHECK(linked == gemms);
  CHECK(with_shapes == gemms);
}

TEST_CASE("Ascend reader: kernel_details.csv with communication.json of an ASCEND_PROFILER_OUTPUT", "[trace]") {
  if (!have_traces()) return;
  const io::Trace t = io::read_trace(trace("ascend-msinsight-alexnet-910b/rank0_ascend_pt"));
  CHECK(t.format == io::TraceFormat::ascend_profiler_output);
  REQUIRE(t.kernels.size() == 191);  // 191 device tasks, SOURCES.md
  const io::KernelSample& first = t.kernels.front();
  CHECK(first.op == "TransData");
  CHECK(first.core == "AI_VECTOR_CORE");
  CHECK(first.duration == Approx(53.741e-6));
  REQUIRE(first.input_shapes.size() == 1);
  CHECK(first.input_shapes[0] == std::vector<double>{32, 3, 224, 224});
  REQUIRE(first.output_shapes.size() == 1);
  CHECK(first.output_shapes[0] == std::vector<double>{32, 1, 224, 224, 8});
  int hccl = 0;
  for (const auto& k : t.kernels)
    if (k.core == "HCCL") {
      ++hccl;
      CHECK(k.transport == "HCCS");
      CHECK(k.group_size == 8);  // links 0-0 .. 0-7 in communication_matrix.json
      CHECK(k.transit_bytes > 1e6);
      CHECK(k.transit_time > 0);
      CHECK(k.transit_time < k.duration);  // the kernel span includes waiting for the other ranks
    }
  CHECK(hccl == 4);  // 4 DDP gradient buckets
}

TEST_CASE("Ascend reader: shapes of a GPT-3 TP8 fp16 layer and GEMM dimensions", "[trace]") {
  if (!have_traces()) return;
  const io::Trace t = io::read_trace(trace("ascend-msprof-analyze/gpt3_tp8_fp16/kernel_details.csv"));
  CHECK(t.format == io::TraceFormat::ascend_kernel_details);
  CHECK(t.kernels.size() == 591);
  const auto samples = calibrate::classify(t, io::load_profile("ascend-910b2"));
  int big = 0;
  for (const auto& s : samples)
    if (s.kind == calibrate::OpKind::matmul && s.predictable && s.gemm.flop_count() > 4e11) {
      ++big;
      CHECK(s.precision == calibrate::MatrixPrecision::fp16);
      CHECK(s.gemm.m == 4096);  // 4096 tokens x 12288 hidden, SOURCES.md
    }
  CHECK(big >= 3);
}

TEST_CASE("Ascend reader: the real malformed row of a trimmed kernel_details.csv is reported by line", "[trace]") {
  if (!have_traces()) return;
  // The fixture author's trimmed file has a row with one field fewer than its header.
  const std::string e = error_of(trace("ascend-msinsight-gpt3-16rank/test_rank_0/ASCEND_PROFILER_OUTPUT/kernel_details.csv"));
  CHECK_THAT(e, Catch::Contains("kernel_details.csv:17") && Catch::Contains("expected 32 fields"));
}

TEST_CASE("Trace readers: truncated and malformed copies end with an error naming file and position", "[trace]") {
  if (!have_traces()) return;
  const test::ScratchDir tmp("moesim-calibrate-test");  // cut copies, removed at the end of the test
  SECTION("Kineto JSON cut in the middle") {
    const std::string bytes = slurp(trace("deepseek-profile-data/train.json"));
    const std::string cut = tmp.file("cut.json");
    write_bytes(cut, bytes.substr(0, bytes.size() / 2));
    CHECK_THAT(error_of(cut), Catch::Contains("cut.json") && Catch::Contains("malformed JSON at byte"));
  }
  SECTION("Kineto JSON with a broken token") {
    std::string bytes = slurp(trace("deepseek-profile-data/train.json"));
    const auto at = bytes.find("\"dur\"", bytes.size() / 3);
    bytes[at + 6] = '?';  // "dur": ?
    const std::string bad = tmp.file("bad.json");
    write_bytes(bad, bytes);
    CHECK_THAT(error_of(bad), Catch::Contains("bad.json: malformed JSON at byte " + std::to_string(at + 7)));
  }
  SECTION("gzip trace cut in the middle") {
    const std::string bytes = slurp(trace("hta/nccl_parser_config/nccl_data.json.gz"));
    const std::string cut = tmp.file("cut.json.gz");
    write_bytes(cut, bytes.substr(0, bytes.size() / 2));
    const std::string e = error_of(cut);
    CHECK_THAT(e, Catch::Contains("cut.json.gz"));
    CHECK((e.find("malformed JSON") != std::string::npos || e.find("corrupt compressed data") != std::string::npos));
  }
  SECTION("kernel_details.csv cut mid-line") {
    const std::string bytes = slurp(trace("ascend-msprof-analyze/gpt3_tp8_fp16/kernel_details.csv"));
    const std::string cut = tmp.file("kernel_details.csv");
    const auto line_start = bytes.find('\n', bytes.size() / 2) + 1;
    write_bytes(cut, bytes.substr(0, line_start + 40));
    const long line = std::count(bytes.begin(), bytes.begin() + static_cast<long>(line_start), '\n') + 1;
    CHECK_THAT(error_of(cut), Catch::Contains("kernel_details.csv:" + std::to_string(line)) &&
                                  Catch::Contains("truncated or malformed line"));
  }
  SECTION("kernel_details.csv with a non-numeric duration") {
    std::string bytes = slurp(trace("ascend-msprof-analyze/llm_bf16_flashattn/kernel_details.csv"));
    const auto at = bytes.find(",185.504,");
    REQUIRE(at != std::string::npos);
    bytes.replace(at + 1, 7, "185.5us");
    const std::string bad = tmp.file("kernel_details.csv");
    write_bytes(bad, bytes);
    CHECK_THAT(error_of(bad), Catch::Contains("kernel_details.csv:2") && Catch::Contains("'Duration(us)'") &&
                                  Catch::Contains("185.5us"));
  }
  SECTION("communication.json cut in the middle") {
    const fs::path src = traces_dir / "ascend-msinsight-alexnet-910b/rank0_ascend_pt/ASCEND_PROFILER_OUTPUT";
    const fs::path out = tmp.path / "ASCEND_PROFILER_OUTPUT";
    fs::create_directories(out);
    fs::copy_file(src / "kernel_details.csv", out / "kernel_details.csv");
    const std::string comm = slurp((src / "communication.json").string());
    write_bytes((out / "communication.json").string(), comm.substr(0, comm.size() / 2));
    CHECK_THAT(error_of(tmp.path.string()), Catch::Contains("communication.json") && Catch::Contains("invalid JSON"));
  }
  SECTION("unknown inputs") {
    write_bytes(tmp.file("notes.txt"), "hello");
    CHECK_THAT(error_of(tmp.file("notes.txt")), Catch::Contains("unknown trace kind"));
    write_bytes(tmp.file("other.csv"), "a,b\n1,2\n");
    CHECK_THAT(error_of(tmp.file("other.csv")), Catch::Contains("other.csv: header"));
    write_bytes(tmp.file("object.json"), "{\"schemaVersion\": 1}");
    CHECK_THAT(error_of(tmp.file("object.json")), Catch::Contains("'traceEvents'"));
    CHECK_THAT(error_of(tmp.file("missing.json")), Catch::Contains("missing.json: cannot open file"));
  }
}

TEST_CASE("Collectives of all ranks of one run take the shortest rank's span", "[trace]") {
  auto rank = [](std::vector<double> durations_us) {
    io::Trace t;
    t.world_size = 2;
    for (std::size_t i = 0; i < durations_us.size(); ++i) {
      io::KernelSample k;
      k.name = i % 2 ? "ncclKernel_AllReduce_RING_LL_Sum_float" : "ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t";
      k.start_us = 100.0 * static_cast<double>(i);
      k.duration = durations_us[i] * 1e-6;
      t.kernels.push_back(k);
    }
    return t;
  };
  std::vector<io::Trace> ranks{rank({50, 7, 30}), rank({9, 40, 31})};
  CHECK(calibrate::align_collectives(ranks) == 3);
  for (const io::Trace& t : ranks) {
    CHECK(t.kernels[0].duration == Approx(9e-6));
    CHECK(t.kernels[0].start_us + t.kernels[0].duration * 1e6 == Approx(&t == &ranks[0] ? 50 : 9));  // the span's end kept
    CHECK(t.kernels[1].duration == Approx(7e-6));
    CHECK(t.kernels[2].duration == Approx(30e-6));
    CHECK(t.kernels[0].excludes_peer_wait);
  }
  std::vector<io::Trace> mismatched{rank({50, 7}), rank({9, 40, 31})};
  CHECK(calibrate::align_collectives(mismatched) == 0);
  if (!have_traces()) return;
  // Two of the 128 ranks of a run: the shortest of two spans may still wait, so nothing is aligned.
  std::vector<io::Trace> partial{io::read_trace(trace("hta/trace_filter/sampled_rank-0.json.gz")),
                                 io::read_trace(trace("hta/trace_filter/sampled_rank-1.json.gz"))};
  CHECK(calibrate::align_collectives(partial) == 0);
  CHECK_FALSE(partial[0].kernels.empty());
}

TEST_CASE("Kineto reader streams a large trace event by event", "[trace]") {
  // 100k kernels (~20 MB of JSON, gzip-compressed on disk): read without building a DOM of the file.
  const test::ScratchDir tmp("moesim-calibrate-test");  // cut copies, removed at the end of the test
  const std::string path = tmp.file("large.json.gz");
  gzFile out = gzopen(path.c_str(), "wb1");
  REQUIRE(out);
  gzputs(out, "{\"schemaVersion\": 1, \"traceEvents\": [\n");
  constexpr int kernels = 100000;
  for (int i = 0; i < kernels; ++i) {
    const std::string e = "{\"ph\": \"X\", \"cat\": \"cpu_op\", \"name\": \"aten::mm\", \"pid\": 1, \"tid\": 1, \"ts\": " +
                          std::to_string(10 * i) + ", \"dur\": 5, \"args\": {\"External id\": " + std::to_string(i) +
                          ", \"Input Dims\": [[64, 128], [128, 256]], \"Input type\": [\"c10::BFloat16\", \"c10::BFloat16\"]}},\n"
                          "{\"ph\": \"X\", \"cat\": \"kernel\", \"name\": \"sm90_gemm\", \"pid\": 0, \"tid\": 7, \"ts\": " +
                          std::to_string(10 * i + 2) + ", \"dur\": 3.5, \"args\": {\"External id\": " + std::to_string(i) +
                          ", \"correlation\": " + std::to_string(i + 1000000) + "}}" + (i + 1 < kernels ? ",\n" : "\n");
    gzputs(out, e.c_str());
  }
  gzputs(out, "]}\n");
  gzclose(out);
  const io::Trace t = io::read_trace(path);
  REQUIRE(t.kernels.size() == kernels);
  CHECK(t.kernels.back().op == "aten::mm");
  const auto& shapes = t.kernels.back().input_shapes;
  CHECK(std::vector<std::vector<double>>(shapes.begin(), shapes.end()) == std::vector<std::vector<double>>{{64, 128}, {128, 256}});
  CHECK(t.kernels.back().duration == Approx(3.5e-6));
}

TEST_CASE("Calibration recovers known efficiencies from samples generated by the cost models", "[calibrate]") {
  HardwareProfile truth = io::load_profile("h800");
  truth.device.matrix.peak_fraction = 0.62;
  truth.device.matrix.half_saturation_flops = 5e9;
  truth.device.launch_overhead = 2.5e-6;
  truth.device.hbm_efficiency = 0.7;
  truth.device.matrix.attention_fraction = 0.55;
  // The calibration fits the efficiencies of matrix_efficiency; the per-tile fixed cost (tile_fixed_cost,
  // fitted on DeepGEMM's table) is not among them, so the truth here has none.
  truth.device.matrix.tile_fixed_cost = 0;
  truth.tiers[0].latency = 4e-6;
  truth.tiers[0].efficiency = 0.6;
  std::vector<calibrate::Sample> samples;
  for (double n : {256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0}) {
    calibrate::Sample s;
    s.kind = calibrate::OpKind::matmul;
    s.gemm = {n, n, n, 1};
    s.hbm = 3 * n * n * 2;
    s.predictable = true;
    samples.push_back(s);
  }
  for (double mb : {0.01, 0.1, 1.0, 10.0, 100.0}) {
    calibrate::Sample v;
    v.kind = calibrate::OpKind::vector;
    v.hbm = mb * 1e6;
    v.op_flops = mb * 1e6 / 4;
    v.predictable = true;
    samples.push_back(v);
    calibrate::Sample c;
    c.kind = calibrate::OpKind::collective;
    c.collective = comm::CollectiveKind::all_reduce;
    c.buffer = mb * 1e6;
    c.group_size = 8;
    c.outer_tier = 0;
    c.excludes_peer_wait = true;
    c.predictable = true;
    samples.push_back(c);
  }
  calibrate::Sample a;
  a.kind = calibrate::OpKind::attention;
  a.op_flops = 4.0 * 4 * 32 * 4096 * 4096 * 128;
  a.hbm = 1e8;
  a.predictable = true;
  samples.push_back(a);
  for (auto& s : samples) s.measured = calibrate::predict(s, truth);

  HardwareProfile base = io::load_profile("h800");
  base.device.matrix.tile_fixed_cost = 0;  // as the truth: the fit's closed forms hold no per-tile cost
  const calibrate::FitResult fit = calibrate::fit(samples, base);
  const DeviceSpec& d = fit.profile.device;
  CHECK(d.matrix.peak_fraction == Approx(0.62).epsilon(0.01));
  CHECK(d.matrix.half_saturation_flops == Approx(5e9).epsilon(0.02));
  CHECK(d.launch_overhead == Approx(2.5e-6).epsilon(0.01));
  CHECK(d.hbm_efficiency == Approx(0.7).epsilon(0.01));
  CHECK(d.matrix.attention_fraction == Approx(0.55).epsilon(0.01));
  CHECK(fit.profile.tiers[0].latency == Approx(4e-6).epsilon(0.02));
  CHECK(fit.profile.tiers[0].efficiency == Approx(0.6).epsilon(0.01));
  const auto after = calibrate::replay(samples, fit.profile);
  for (const auto& [kind, e] : after.kinds) CHECK(e.median_abs_error_pct < 0.5);
}

TEST_CASE("Calibration on real traces lowers the replay error", "[calibrate]") {
  if (!have_traces()) return;
  SECTION("GPT-3 TP8 fp16 layer on Ascend 910B2: matmul median under 15%") {
    const InSampleFit r = fit_in_sample("ascend-msprof-analyze/gpt3_tp8_fp16/kernel_details.csv", io::load_profile("ascend-910b2"));
    const auto& m0 = r.before_kind(calibrate::OpKind::matmul);
    const auto& m1 = r.after_kind(calibrate::OpKind::matmul);
    CHECK(m1.count == 13);
    CHECK(m1.median_abs_error_pct < 15);
    CHECK(m1.median_abs_error_pct < m0.median_abs_error_pct);
    CHECK(r.after_kind(calibrate::OpKind::vector).median_abs_error_pct < r.before_kind(calibrate::OpKind::vector).median_abs_error_pct);
  }
  SECTION("AlexNet DDP on 910B2, two ranks: HCCS all-reduce and FP32 GEMMs") {
    const HardwareProfile base = io::load_profile("ascend-910b2");
    std::vector<calibrate::Sample> samples;
    std::vector<io::Trace> ranks;  // the samples view their names
    for (const char* rank : {"ascend-msinsight-alexnet-910b/rank0_ascend_pt", "ascend-msinsight-alexnet-910b/rank1_ascend_pt"}) {
      ranks.push_back(io::read_trace(trace(rank)));
      const auto s = calibrate::classify(ranks.back(), base);
      samples.insert(samples.end(), s.begin(), s.end());
    }
    const calibrate::FitResult fit = calibrate::fit(samples, base);
    const auto before = calibrate::replay(samples, base), after = calibrate::replay(samples, fit.profile);
    for (auto kind : {calibrate::OpKind::matmul, calibrate::OpKind::collective})
      CHECK(after.kinds.at(kind).median_abs_error_pct < before.kinds.at(kind).median_abs_error_pct);
    CHECK(after.kinds.at(calibrate::OpKind::collective).median_abs_error_pct < 15);
    CHECK(fit.profile.tiers[0].efficiency < 1);
    CHECK(fit.profile.device.matrix_fp32 > 0);
  }
  SECTION("A100 recommendation model (Kineto, FP32 GEMMs on TF32 tensor cores, CUDA cores and GEMV)") {
    const HardwareProfile base = io::load_profile("a100-sxm-80g");
    const InSampleFit r = fit_in_sample("hta/trace_diff/control/control.json.gz", base);
    const auto& fit = r.fit;
    for (auto kind : {calibrate::OpKind::matmul, calibrate::OpKind::vector})
      CHECK(r.after_kind(kind).median_abs_error_pct < r.before_kind(kind).median_abs_error_pct);
    // Measured with the kernel paths: matmul median 35.8% (base; 260% with every FP32 GEMM on the
    // profile's 128 x 128 tiles at the CUDA-core rate) -> 14.2% calibrated (14.5% with GEMVs on a GEMM
    // kernel's fill/drain cost instead of their own fixed cost; 16.9% without the slowdown
    // beside collectives: 588 of its 1638 TF32 GEMMs share their span with an NCCL kernel and took 1.44x
    // their predicted time; 19.9% with one TF32 rate for aligned and unaligned kernels, 34% before the
    // paths).
    CHECK(r.before_kind(calibrate::OpKind::matmul).median_abs_error_pct < 36);
    CHECK(r.after_kind(calibrate::OpKind::matmul).median_abs_error_pct < 15);
    // Compute beside NCCL kernels is slowed by a fitted 0.46 (the base profile assumed 0.05), at most
    // a fair share of the SMs.
    CHECK(fit.profile.device.comm_compute_slowdown > 0.1);
    CHECK(fit.profile.device.comm_compute_slowdown <= 1);
    CHECK(fit.profile.device.matrix_tf32 > 0);
    CHECK(fit.profile.device.matrix_tf32 <= base.device.matrix_bf16 / 2);  // at most the datasheet TF32 peak
    for (flops_per_second rate : fit.profile.device.matrix_fp32_by_layout)
      CHECK(rate <= base.device.matrix_fp32);  // at most the A100's 19.5 TFLOPS FP32 datasheet peak
    // CUTLASS align1 kernels (scalar loads) run slower than aligned ones.
    CHECK(fit.profile.device.matrix_tf32_unaligned > 0);
    CHECK(fit.profile.device.matrix_tf32_unaligned < fit.profile.device.matrix_tf32);
  }
  SECTION("Held out: fitted on rank 0 of a sampled A100 recsys step, replayed on rank 1") {
    const HardwareProfile base = io::load_profile("a100-sxm-80g");
    const io::Trace rank0 = io::read_trace(trace("hta/trace_filter/sampled_rank-0.json.gz"));
    const io::Trace rank1 = io::read_trace(trace("hta/trace_filter/sampled_rank-1.json.gz"));
    const auto fitted_on = calibrate::classify(rank0, base);
    const auto held_out = calibrate::classify(rank1, base);
    const calibrate::FitResult fit = calibrate::fit(fitted_on, base);
    const auto before = calibrate::replay(held_out, base), after = calibrate::replay(held_out, fit.profile);
    const auto& m0 = before.kinds.at(calibrate::OpKind::matmul);
    const auto& m1 = after.kinds.at(calibrate::OpKind::matmul);
    CHECK(m1.count == 375);
    // Measured: 52.5% -> 22.4% (26.9% with GEMVs on a GEMM kernel's fill/drain cost instead of their own
    // fixed cost; 24.0% without the slowdown beside collectives: the fitted 0.40 charges the whole span
    // of this sampled step's 5-91 ms NCCL SendRecv kernels, which mostly wait for the other 127 ranks;
    // 29.3% with one TF32 rate for aligned and unaligned kernels; 161% -> 35% before the kernel paths).
    CHECK(m1.median_abs_error_pct < m0.median_abs_error_pct);
    CHECK(m1.median_abs_error_pct < 23);
  }
  SECTION("A100 recsys rank 0 (4096-wide GEMMs): unaligned TF32 kernels with their own rate") {
    const InSampleFit r = fit_in_sample("hta/negative_queue_length_values_check/rank0.json.gz", io::load_profile("a100-sxm-80g"));
    const auto& m0 = r.before_kind(calibrate::OpKind::matmul);
    const auto& m1 = r.after_kind(calibrate::OpKind::matmul);
    CHECK(m1.count == 25);
    // Measured: 38.1% -> 5.5% (27.1% with one TF32 rate: the align1 kernels ran 3x their predicted time;
    // 41.1% with the base profile before its slowdown beside collectives was charged).
    CHECK(m0.median_abs_error_pct > 38);
    CHECK(m1.median_abs_error_pct < 6);
    CHECK(r.fit.profile.device.matrix_tf32_unaligned < r.fit.profile.device.matrix_tf32);
  }
  SECTION("V100 recommendation model: CUDA-core FP32 GEMMs") {
    const HardwareProfile base = io::load_profile("a100-sxm-80g");  // no V100 profile: every rate is fitted
    const InSampleFit r = fit_in_sample("hta/trace_diff/test/test.json.gz", base);
    const auto& fit = r.fit;
    const auto& m1 = r.after_kind(calibrate::OpKind::matmul);
    CHECK(m1.count == 456);
    // Measured 8.8% (14.5% with one rate for all sgemm layouts, 17% before the kernel paths).
    CHECK(m1.median_abs_error_pct < 9);
    // All its GEMMs are cuBLAS sgemm kernels of layouts nn, nt and tn; their fitted rates differ (17.5, 13
    // and 10 TFLOPS), bounded by the FP32 peak of the A100 profile the fit starts from (19.5 TFLOPS), not
    // by the V100's own 15.7 TFLOPS: moesim has no V100 profile.
    const auto& by_layout = fit.profile.device.matrix_fp32_by_layout;
    for (std::size_t layout = 0; layout < 3; ++layout) {
      CHECK(by_layout[layout] > 0);
      CHECK(by_layout[layout] <= base.device.matrix_fp32);
    }
    CHECK(by_layout[3] == 0);  // no tt kernel: not fitted
  }
}

TEST_CASE("GPU GEMM kernels: execution path and tile from the kernel name", "[calibrate]") {
  io::Trace t;
  auto gemm = [&](const std::string& name, std::vector<std::vector<double>> shapes, const std::string& type) {
    io::KernelSample k;
    k.name = t.pool->text(name);
    k.op = "aten::mm";
    k.duration = 20e-6;
    k.launch_id = static_cast<long long>(t.kernels.size());
    k.input_shapes = t.pool->shapes(std::move(shapes));
    k.input_types = t.pool->types({type, type});
    t.kernels.push_back(k);
  };
  gemm("void cutlass::Kernel<cutlass_80_tensorop_s1688gemm_64x128_32x3_nt_align4>(Params)", {{96, 1024}, {1024, 512}}, "float");
  gemm("ampere_sgemm_128x64_nn", {{300, 30}, {30, 647}}, "float");
  gemm("void gemv2T_kernel_val<int, int, float, float, float, float, 128, 16, 2, 2, false>(Params)", {{32, 32}, {32, 1}}, "float");
  gemm("ampere_sgemm_32x32_sliced1x4_nn", {{1, 1024}, {1024, 512}}, "float");  // M = 1: cuBLAS runs it as a GEMV
  gemm("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x256x64", {{4096, 4096}, {4096, 4096}}, "c10::BFloat16");
  gemm("void gemmSN_TN_kernel<float, 128, 16, 2, 4, 8, 9, false, cublasGemvTensorStridedBatched<float const>>(Params)",
       {{16, 256}, {256, 128}}, "float");  // a small-N GEMM, though its template arguments say Gemv
  gemm("void cutlass::Kernel<cutlass_80_tensorop_s1688gemm_64x64_32x6_tn_align1>(Params)", {{4096, 2798}, {2798, 64}}, "float");
  const auto s = calibrate::classify(t, io::load_profile("a100-sxm-80g"));
  REQUIRE(s.size() == 7);
  CHECK(s[0].path == calibrate::GemmPath::tf32);
  CHECK((s[0].gemm.m == 96 && s[0].gemm.n == 512 && s[0].gemm.k == 1024));
  // cuBLAS is column-major: the kernel's 64-row tile dimension runs along aten's N.
  CHECK((s[0].tile.m == 128 && s[0].tile.n == 64 && s[0].tile.k == 32));
  CHECK(s[1].path == calibrate::GemmPath::simt);
  CHECK((s[1].tile.m == 64 && s[1].tile.n == 128 && s[1].tile.k == 0));
  CHECK(s[2].path == calibrate::GemmPath::gemv);
  CHECK(s[3].path == calibrate::GemmPath::gemv);
  CHECK(s[4].path == calibrate::GemmPath::tensor_core);
  CHECK(s[5].path == calibrate::GemmPath::simt);
  CHECK((s[5].tile.m == 0 && s[5].tile.n == 0));
  // Operand alignment from CUTLASS names only: align4 (16-byte loads) and align1 (scalar loads).
  CHECK(s[0].alignment == 4);
  CHECK(s[1].alignment == 0);
  // Operand layout from cuBLAS sgemm names only (index into gemm_layout_names).
  CHECK(s[1].layout == 0);  // ampere_sgemm_128x64_nn
  CHECK(s[0].layout == -1);
  CHECK(s[5].layout == -1);  // gemmSN: its layout is not a name suffix
  CHECK(s[6].path == calibrate::GemmPath::tf32);
  CHECK(s[6].alignment == 1);
}

TEST_CASE("Compute kernels record the time they ran beside a collective kernel", "[calibrate]") {
  io::Trace t;
  auto kernel = [&](const char* name, double start_us, double duration_us, long long launch) {
    io::KernelSample k;
    k.name = t.pool->text(name);
    k.start_us = start_us;
    k.duration = duration_us * 1e-6;
    if (launch >= 0) {  // a GEMM launched by an aten::mm: its kernels merge into one sample
      k.op = "aten::mm";
      k.launch_id = launch;
      k.input_shapes = t.pool->shapes({{512, 512}, {512, 512}});
      k.input_types = t.pool->types({"float", "float"});
    }
    t.kernels.push_back(k);
  };
  kernel("ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t", 100, 100, -1);    // 100-200 us
  kernel("ncclKernel_AllReduce_RING_LL_Sum_float", 150, 100, -1);        // 150-250 us: one span 100-250 with the first
  kernel("ampere_sgemm_128x64_nn", 0, 50, 1);                            // alone
  kernel("ampere_sgemm_128x64_nn", 80, 40, 2);                           // 20 us of 40 beside
  kernel("void splitKreduce_kernel<float>(Params)", 240, 20, 2);         // the same op's second kernel: 10 us beside
  kernel("ampere_sgemm_128x64_nn", 300, 10, 3);                          // after both
  const HardwareProfile hw = io::load_profile("a100-sxm-80g");
  const auto s = calibrate::classify(t, hw);
  REQUIRE(s.size() == 5);
  CHECK(s[2].beside_collective == 0);
  CHECK(s[3].launches == 2);
  CHECK(s[3].beside_collective == Approx(30e-6));
  CHECK(s[4].beside_collective == 0);
  CHECK(s[0].beside_collective == 0);  // collectives are not slowed by themselves
  // The replay charges the profile's slowdown for the shared fraction (30 of 60 us) of the sample.
  HardwareProfile alone = hw;
  alone.device.comm_compute_slowdown = 0;
  CHECK(calibrate::predict(s[3], hw) == Approx(calibrate::predict(s[3], alone) * (1 + hw.device.comm_compute_slowdown * 0.5)));
  CHECK(calibrate::predict(s[2], hw) == Approx(calibrate::predict(s[2], alone)));
}

TEST_CASE("Calibration recovers the slowdown of compute kernels beside collectives with their rates", "[calibrate]") {
  HardwareProfile truth = io::load_profile("a100-sxm-80g");
  truth.device.matrix_tf32 = 90e12;
  truth.device.matrix.half_saturation_flops = std::pow(10.0, 8.5);  // a point of the fit's scan
  truth.device.comm_compute_slowdown = 0.3;
  std::vector<calibrate::Sample> samples;
  int i = 0;
  for (double n : {256.0, 512.0, 1000.0, 2048.0, 4096.0}) {
    for (double shared : {0.0, 0.0, 0.5, 1.0}) {  // half of them beside a collective for part of their span
      calibrate::Sample s;
      s.kind = calibrate::OpKind::matmul;
      s.precision = calibrate::MatrixPrecision::fp32;
      s.path = calibrate::GemmPath::tf32;
      s.alignment = 4;
      s.tile = {128, 64, 32};
      s.gemm = {n, n / 2 + 64 * (i++ % 3), n, 1};
      s.hbm = 2.5 * n * n * 4;
      s.predictable = true;
      // measured = t_alone * (1 + s * f), f = beside / measured the shared fraction of the span.
      HardwareProfile alone = truth;
      alone.device.comm_compute_slowdown = 0;
      const seconds t_alone = calibrate::predict(s, alone);
      s.measured = t_alone * (1 + truth.device.comm_compute_slowdown * shared);
      s.beside_collective = shared * s.measured;
      REQUIRE(calibrate::predict(s, truth) == Approx(s.measured));
      samples.push_back(s);
    }
  }
  const calibrate::FitResult fit = calibrate::fit(samples, io::load_profile("a100-sxm-80g"));
  CHECK(fit.profile.device.comm_compute_slowdown == Approx(0.3).epsilon(0.02));
  CHECK(fit.profile.device.matrix_tf32 == Approx(90e12).epsilon(0.02));
  const auto fitted = std::find_if(fit.values.begin(), fit.values.end(),
                                   [](const auto& v) { return v.parameter == "device.comm_compute_slowdown"; });
  REQUIRE(fitted != fit.values.end());
  CHECK(fitted->samples == 10);
  CHECK(fitted->rms_residual_after_pct < fitted->rms_residual_before_pct);
  CHECK(calibrate::replay(samples, fit.profile).kinds.at(calibrate::OpKind::matmul).median_abs_error_pct < 1);
}

TEST_CASE("A kernel's tile quantisation pads its work, not the fixed fill/drain cost", "[calibrate]") {
  const DeviceSpec d = io::load_profile("a100-sxm-80g").device;
  const compute::KernelTile profile_tile{d.matrix.tile_m, d.matrix.tile_n, d.matrix.tile_k};
  const compute::GemmShape filling{4096, 4096, 4096, 1};  // whole tiles: both models agree
  CHECK(compute::kernel_gemm_time(filling, profile_tile, 0, d.matrix_bf16, d).time ==
        Approx(compute::gemm_time(filling, 0, d.matrix_bf16, d, false).time));
  const compute::GemmShape tiny{2, 1, 2048, 1};
  const seconds on_profile_tiles = compute::gemm_time(tiny, 0, d.matrix_bf16, d, false).time;
  const seconds kernel = compute::kernel_gemm_time(tiny, profile_tile, 0, d.matrix_bf16, d).time;
  CHECK(on_profile_tiles > 1e-3);  // the saturation cost divided by q = 1 / 8192
  CHECK(kernel < 20e-6);           // launch + F_half / (rate x peak_fraction) + the padded tile
  CHECK(kernel > d.launch_overhead + d.matrix.half_saturation_flops / (d.matrix_bf16 * d.matrix.peak_fraction));
}

TEST_CASE("Calibration recovers TF32 and CUDA-core FP32 rates and the saturation point from GPU kernels", "[calibrate]") {
  HardwareProfile truth = io::load_profile("a100-sxm-80g");
  truth.device.matrix_tf32 = 90e12;
  truth.device.matrix_tf32_unaligned = 30e12;
  truth.device.matrix_fp32 = 15e12;
  truth.device.matrix_fp32_by_layout[2] = 11e12;  // tn
  truth.device.matrix.half_saturation_flops = std::pow(10.0, 8.5);  // a point of the fit's scan
  truth.device.gemv_fixed_cost = 1.5e-6;
  std::vector<calibrate::Sample> samples;
  for (double n : {256.0, 512.0, 1000.0, 2048.0, 4096.0}) {
    for (int kernel = 0; kernel < 4; ++kernel) {  // TF32 aligned, TF32 unaligned, CUDA-core FP32, sgemm tn
      const auto path = kernel < 2 ? calibrate::GemmPath::tf32 : calibrate::GemmPath::simt;
      calibrate::Sample s;
      s.kind = calibrate::OpKind::matmul;
      s.precision = calibrate::MatrixPrecision::fp32;
      s.path = path;
      s.alignment = kernel == 0 ? 4 : kernel == 1 ? 1 : 0;
      s.layout = kernel == 3 ? 2 : -1;
      s.tile = {128, 64, path == calibrate::GemmPath::tf32 ? 32 : 0};
      s.gemm = {n, n / 2, n, 1};
      s.hbm = 2.5 * n * n * 4;
      s.predictable = true;
      s.measured = calibrate::predict(s, truth);
      samples.push_back(s);
    }
    calibrate::Sample gemv;  // y = A x: no tile, launch + memory roofline + the GEMV fixed cost
    gemv.kind = calibrate::OpKind::matmul;
    gemv.precision = calibrate::MatrixPrecision::fp32;
    gemv.path = calibrate::GemmPath::gemv;
    gemv.gemm = {1, n, n, 1};
    gemv.hbm = (n * n + 2 * n) * 4;
    gemv.predictable = true;
    gemv.measured = calibrate::predict(gemv, truth);
    CHECK(gemv.measured == Approx(truth.device.launch_overhead + gemv.hbm / (truth.device.hbm_bandwidth * truth.device.hbm_efficiency) +
                                  1.5e-6));
    samples.push_back(gemv);
  }
  const calibrate::FitResult fit = calibrate::fit(samples, io::load_profile("a100-sxm-80g"));
  CHECK(fit.profile.device.gemv_fixed_cost == Approx(1.5e-6).epsilon(0.01));
  CHECK(fit.profile.device.matrix_tf32 == Approx(90e12).epsilon(0.01));
  CHECK(fit.profile.device.matrix_tf32_unaligned == Approx(30e12).epsilon(0.01));
  CHECK(fit.profile.device.matrix_fp32_by_layout[2] == Approx(11e12).epsilon(0.01));
  CHECK(fit.profile.device.matrix_fp32_by_layout[0] == 0);
  CHECK(fit.profile.device.matrix_fp32 == Approx(15e12).epsilon(0.01));
  CHECK(fit.profile.device.matrix.half_saturation_flops == Approx(std::pow(10.0, 8.5)).epsilon(0.01));
  for (const auto& [kind, e] : calibrate::replay(samples, fit.profile).kinds) CHECK(e.median_abs_error_pct < 0.5);
}

TEST_CASE("A calibrated profile round-trips through the profile writer with its sources", "[calibrate]") {
  const std::string file = io::profile_path("ascend-910b2");
  const io::json base_json = io::read_json_file(file);
  HardwareProfile hw = io::parse_profile(base_json, file);
  hw.device.matrix.peak_fraction = 0.777;
  hw.device.matrix_fp32 = 4.2e13;
  hw.device.matrix_tf32 = 9.1e13;
  hw.device.matrix_tf32_unaligned = 3.3e13;
  hw.device.matrix_fp32_by_layout = {1.1e13, 1.2e13, 0, 1.4e13};
  hw.device.gemv_fixed_cost = 1.3e-6;
  hw.tiers[0].efficiency = 0.55;
  hw.tiers[1].all_to_all_efficiency = 0.45;
  const io::json written = io::profile_json(hw, base_json);
  const HardwareProfile back = io::parse_profile(written, "written.json");
  CHECK(back.device.matrix.peak_fraction == 0.777);
  CHECK(back.device.matrix_fp32 == 4.2e13);
  CHECK(back.device.matrix_tf32 == 9.1e13);
  CHECK(back.device.matrix_tf32_unaligned == 3.3e13);
  CHECK(back.device.matrix_fp32_by_layout == std::array<flops_per_second, 4>{1.1e13, 1.2e13, 0, 1.4e13});
  CHECK(back.device.gemv_fixed_cost == 1.3e-6);
  CHECK(back.tiers[0].efficiency == 0.55);
  CHECK(back.tiers[0].all_to_all_efficiency == std::nullopt);
  CHECK(back.tiers[1].all_to_all_efficiency == 0.45);
  CHECK(back.tiers[1].bandwidth == hw.tiers[1].bandwidth);
  CHECK(written["device"]["source"] == base_json["device"]["source"]);
  CHECK(written["tiers"][0]["source"] == base_json["tiers"][0]["source"]);
}
