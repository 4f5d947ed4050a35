#pragma once
// Readers of real profiler output into one neutral list of device kernels (../shared/reference/traces.md
// documents the formats):
//  - Chrome trace JSON as PyTorch's profiler (Kineto) writes it, plain or gzip-compressed: GPU kernels
//    with the CPU op that launched them (linked by External id) and its Input Dims / Input type, NCCL
//    kernels with message sizes and group size where recorded. The same scanner reads the array form
//    torch_npu writes (trace_view.json: device tasks of the "Ascend Hardware" process, no shapes).
//    (kineto_trace.cpp)
//  - Ascend profiler text export: kernel_details.csv (+ communication.json / communication_matrix.json
//    next to it for collective sizes, transit times and group sizes), op_statistic.csv (aggregated), or
//    an ASCEND_PROFILER_OUTPUT folder (or the *_ascend_pt folder above it). (ascend_trace.cpp)
// Traces reach gigabytes: JSON is scanned event by event (SAX) and CSV line by line, so memory grows
// with the number of kernels kept, not with the file; a kernel's texts and shape lists are held once per
// distinct value (a trace of repeated steps repeats them) and each kernel refers to them. Truncated or
// malformed input raises InputError naming the file and the byte offset or line.
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "costmodels/units.h"

namespace moesim::io {

enum class TraceFormat { chrome_json, ascend_kernel_details, ascend_op_statistic, ascend_profiler_output };
const char* to_string(TraceFormat f);

using Shapes = std::vector<std::vector<double>>;  // one dims list per tensor

// The distinct texts, shape lists and type lists of a trace's kernels. Views into it stay valid while the
// pool lives (its containers never move an element), so kernels hold views, not copies.
class TracePool {
 public:
  std::string_view text(std::string_view s);
  std::span<const std::vector<double>> shapes(Shapes s);
  std::span<const std::string> types(std::vector<std::string> s);

 private:
  std::unordered_set<std::string> texts_;
  std::set<Shapes> shapes_;
  std::set<std::vector<std::string>> types_;
};

// One kernel. Its texts and lists are views into the pool of the Trace it came from (or, in tests, into
// literals and data that outlive it).
struct KernelSample {
  std::string_view name;  // kernel name (GPU) or task name (Ascend)
  std::string_view op;    // launching CPU op (Kineto), op type (Ascend "Type"), empty if unknown
  std::string_view core;  // Ascend accelerator core (AI_CORE, AI_VECTOR_CORE, MIX_AIC, HCCL, ...); empty on GPU
  double start_us = 0;
  seconds duration = 0;
  long long launch_id = -1;  // Kineto External id of the launching op (kernels of one op share it); -1 if none
  long long stream = -1;     // the device stream (Kineto "stream", else tid) or Ascend "Stream ID"; -1 if not recorded
  double occurrences = 1;  // > 1 only for aggregated rows (op_statistic.csv: duration is the mean)
  std::span<const std::vector<double>> input_shapes;  // one dims list per input tensor (empty: not recorded)
  std::span<const std::string> input_types;
  std::span<const std::vector<double>> output_shapes;  // Ascend only
  std::span<const std::string> output_types;
  // Collectives, where the trace records them (0 / empty: unknown).
  std::string_view collective;    // e.g. "allreduce", "allgather", "hcom_allReduce_"
  double message_elements = 0;    // Kineto "In msg nelems" (output count for all-gather)
  std::string_view message_type;  // element type of the message
  bytes transit_bytes = 0;        // Ascend communication.json: bytes this device moved on its busiest transport
  std::string_view transport;     // Ascend: HCCS, RDMA, PCIE, SIO
  int group_size = 0;
  seconds transit_time = 0;       // Ascend: time actually moving data (excludes waiting for peers)
  // The duration excludes waiting for peers: Ascend transit times, or Kineto collectives aligned over
  // all ranks of their run (calibrate::align_collectives). A single rank's NCCL kernel span does not.
  bool excludes_peer_wait = false;
};

struct Trace {
  std::string file;
  TraceFormat format = TraceFormat::chrome_json;
  std::string device_name;  // Kineto deviceProperties[0].name, when present
  int world_size = 0;       // Kineto distributedInfo.world_size, when present
  std::shared_ptr<TracePool> pool = std::make_shared<TracePool>();  // what the kernels' views point into
  std::vector<KernelSample> kernels;
};

// Decides the format from the path (folder, .csv header, .json/.gz). Unknown input is an InputError.
TraceFormat detect_trace_format(const std::string& path);
Trace read_trace(const std::string& path);

// ASCII lower case (profiler names differ in case across vendors and versions).
std::string to_lower(std::string_view s);

// Bytes of one element of a profiler dtype name ("float", "c10::BFloat16", "DT_BF16", "FLOAT16", ...);
// 0 when the name is unknown.
double dtype_bytes(std::string_view dtype);

}  // namespace moesim::io
