// Trace readers on the real traces in ../shared/traces and on cut and malformed copies of them, and the
// alignment of collectives across the ranks of one run.
#include <catch2/catch.hpp>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "sim/calibration/calibrate.h"
#include "sim/io/input_error.h"
#include "sim/io/specs_io.h"
#include "sim/io/trace_io.h"
#include "tests/files.h"
#include "tests/shared_traces.h"

using namespace moesim;
namespace fs = std::filesystem;
using test::have_traces;
using test::trace;
using test::traces_dir;

namespace {

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
  const test::ScratchDir tmp("moesim-trace-test");  // cut copies, removed at the end of the test
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
  const test::ScratchDir tmp("moesim-trace-test");  // cut copies, removed at the end of the test
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
