#pragma once
// Internal to sim/io: the per-profiler readers behind read_trace (trace_io.cpp).
#include <string>

#include "sim/io/trace_io.h"

namespace moesim::io {

// Chrome trace JSON, plain or gzip: Kineto's trace.json(.gz) and torch_npu's trace_view.json
// (kineto_trace.cpp).
Trace read_chrome_trace(const std::string& path);

// Ascend profiler CSVs (ascend_trace.cpp): kernel_details.csv, with the collectives of the
// communication.json beside it, and the aggregated op_statistic.csv.
Trace read_kernel_details(const std::string& path);
Trace read_op_statistic(const std::string& path);

// The first line of a CSV file, to tell kernel_details.csv from op_statistic.csv by their columns.
std::string csv_header(const std::string& path);

}  // namespace moesim::io
