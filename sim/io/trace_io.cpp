#include "sim/io/trace_io.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "sim/io/input_error.h"
#include "sim/io/trace_readers.h"

namespace moesim::io {

namespace fs = std::filesystem;

const char* to_string(TraceFormat f) {
  switch (f) {
    case TraceFormat::chrome_json: return "chrome-trace-json";
    case TraceFormat::ascend_kernel_details: return "ascend-kernel-details";
    case TraceFormat::ascend_op_statistic: return "ascend-op-statistic";
    case TraceFormat::ascend_profiler_output: return "ascend-profiler-output";
  }
  return "?";
}

std::string to_lower(std::string_view text) {
  std::string s(text);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string_view TracePool::text(std::string_view s) { return *texts_.emplace(s).first; }

std::span<const std::vector<double>> TracePool::shapes(Shapes s) {
  if (s.empty()) return {};
  return *shapes_.insert(std::move(s)).first;
}

std::span<const std::string> TracePool::types(std::vector<std::string> s) {
  if (s.empty()) return {};
  return *types_.insert(std::move(s)).first;
}

namespace {

// The ASCEND_PROFILER_OUTPUT folder of a path: the folder itself, or its child of that name.
fs::path ascend_output_folder(const fs::path& p) {
  if (fs::exists(p / "ASCEND_PROFILER_OUTPUT")) return p / "ASCEND_PROFILER_OUTPUT";
  return p;
}

}  // namespace

double dtype_bytes(std::string_view dtype) {
  const std::string t = to_lower(dtype);
  if (t.empty()) return 0;
  // Order matters: "bfloat16" and "float16" contain "float".
  if (t.find("bf16") != std::string::npos || t.find("bfloat16") != std::string::npos) return 2;
  if (t.find("float16") != std::string::npos || t.find("half") != std::string::npos || t.find("fp16") != std::string::npos)
    return 2;
  if (t.find("fp8") != std::string::npos || t.find("float8") != std::string::npos || t.find("e4m3") != std::string::npos ||
      t.find("e5m2") != std::string::npos)
    return 1;
  if (t.find("double") != std::string::npos || t.find("float64") != std::string::npos || t.find("int64") != std::string::npos ||
      t == "long" || t.find("long int") != std::string::npos)
    return 8;
  if (t.find("float") != std::string::npos || t.find("int32") != std::string::npos || t == "int" || t == "dt_int32" ||
      t.find("fp32") != std::string::npos)
    return 4;
  if (t.find("int16") != std::string::npos || t == "short") return 2;
  if (t.find("int8") != std::string::npos || t.find("bool") != std::string::npos || t == "char" || t.find("byte") != std::string::npos)
    return 1;
  return 0;
}

TraceFormat detect_trace_format(const std::string& path) {
  const fs::path p(path);
  if (fs::is_directory(p)) {
    const fs::path out = ascend_output_folder(p);
    if (fs::exists(out / "kernel_details.csv") || fs::exists(out / "trace_view.json") || fs::exists(out / "op_statistic.csv"))
      return TraceFormat::ascend_profiler_output;
    throw InputError(path + ": folder has no ASCEND_PROFILER_OUTPUT/kernel_details.csv, trace_view.json or op_statistic.csv");
  }
  if (!fs::exists(p)) throw InputError(path + ": cannot open file");
  const std::string name = to_lower(p.filename().string());
  if (name.ends_with(".csv")) {
    const std::string header = csv_header(path);
    if (header.find("Duration(us)") != std::string::npos && header.find("Accelerator Core") != std::string::npos)
      return TraceFormat::ascend_kernel_details;
    if (header.find("OP Type") != std::string::npos && header.find("Avg Time(us)") != std::string::npos)
      return TraceFormat::ascend_op_statistic;
    throw InputError(path + ": header: expected an Ascend kernel_details.csv (Name, Type, Accelerator Core, Duration(us), ...) "
                     "or op_statistic.csv (OP Type, Count, Avg Time(us), ...)");
  }
  if (name.ends_with(".json") || name.ends_with(".json.gz") || name.ends_with(".gz")) return TraceFormat::chrome_json;
  throw InputError(path + ": unknown trace kind (expected a Chrome/Kineto .json or .json.gz, an Ascend kernel_details.csv "
                   "or op_statistic.csv, or an ASCEND_PROFILER_OUTPUT folder)");
}

Trace read_trace(const std::string& path) {
  switch (detect_trace_format(path)) {
    case TraceFormat::chrome_json: return read_chrome_trace(path);
    case TraceFormat::ascend_kernel_details: return read_kernel_details(path);
    case TraceFormat::ascend_op_statistic: return read_op_statistic(path);
    case TraceFormat::ascend_profiler_output: {
      // kernel_details.csv has shapes; trace_view.json and op_statistic.csv are read only without it.
      const fs::path out = ascend_output_folder(path);
      Trace t;
      if (fs::exists(out / "kernel_details.csv")) {
        t = read_kernel_details((out / "kernel_details.csv").string());
      } else if (fs::exists(out / "trace_view.json")) {
        t = read_chrome_trace((out / "trace_view.json").string());
      } else {
        t = read_op_statistic((out / "op_statistic.csv").string());
      }
      t.file = path;
      t.format = TraceFormat::ascend_profiler_output;
      return t;
    }
  }
  throw InputError(path + ": unknown trace kind");
}

}  // namespace moesim::io
