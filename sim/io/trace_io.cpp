#include "sim/io/trace_io.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>
#include <istream>
#include <limits>
#include <map>
#include <set>
#include <streambuf>
#include <unordered_map>

#include "sim/io/json_reader.h"

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

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n\"");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n\"");
  return s.substr(b, e - b + 1);
}

// ------------------------------------------------------------------------------------------------
// gzip-transparent input: zlib's gzread passes plain files through unchanged, so one reader serves
// trace.json and trace.json.gz alike.
class GzipStreamBuf : public std::streambuf {
 public:
  explicit GzipStreamBuf(const std::string& path) : path_(path), file_(gzopen(path.c_str(), "rb")) {
    if (!file_) throw InputError(path + ": cannot open file");
    gzbuffer(file_, 1 << 18);
  }
  ~GzipStreamBuf() override { gzclose(file_); }
  GzipStreamBuf(const GzipStreamBuf&) = delete;
  GzipStreamBuf& operator=(const GzipStreamBuf&) = delete;

 protected:
  int_type underflow() override {
    const int n = gzread(file_, buffer_, sizeof buffer_);
    if (n < 0) {
      int code = 0;
      const char* msg = gzerror(file_, &code);
      throw InputError(path_ + ": corrupt compressed data after byte " + std::to_string(total_) + ": " + msg);
    }
    if (n == 0) return traits_type::eof();
    total_ += static_cast<std::size_t>(n);
    setg(buffer_, buffer_, buffer_ + n);
    return traits_type::to_int_type(buffer_[0]);
  }

 private:
  std::string path_;
  gzFile file_;
  char buffer_[1 << 16];
  std::size_t total_ = 0;
};

// ------------------------------------------------------------------------------------------------
// SAX scanner over a Chrome trace: the top level is either {"traceEvents": [...], ...} (Kineto) or a
// bare array of events (torch_npu trace_view.json). Each event object is built alone, handed to
// `on_event` and dropped; of the other top-level keys only the small deviceProperties and
// distributedInfo are kept.
class ChromeTraceScanner : public json::json_sax_t {
 public:
  using EventHandler = std::function<void(const json&)>;
  ChromeTraceScanner(std::string file, EventHandler on_event) : file_(std::move(file)), on_event_(std::move(on_event)) {}

  bool null() override { return scalar(json(nullptr)); }
  bool boolean(bool v) override { return scalar(json(v)); }
  bool number_integer(number_integer_t v) override { return scalar(json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return scalar(json(v)); }
  bool number_float(number_float_t v, const string_t&) override { return scalar(json(v)); }
  bool string(string_t& v) override { return scalar(json(std::move(v))); }
  bool binary(binary_t&) override { return scalar(json()); }
  bool key(string_t& k) override {
    key_ = k;
    return true;
  }
  bool start_object(std::size_t) override { return open(json::object()); }
  bool start_array(std::size_t) override { return open(json::array()); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    std::string what = e.what();
    const auto colon = what.find("syntax error");
    throw InputError(file_ + ": malformed JSON at byte " + std::to_string(position) + ": " +
                     (colon == std::string::npos ? what : what.substr(colon)));
  }

  bool found_events() const { return saw_events_; }
  const json& metadata() const { return metadata_; }

 private:
  struct Frame {
    json value;
    std::string key;  // key in the parent object
  };

  bool open(json container) {
    ++depth_;
    if (!building_.empty()) {
      building_.push_back({std::move(container), key_});
      return true;
    }
    if (depth_ == 1) {
      if (container.is_array()) events_depth_ = 1, saw_events_ = true;
      return true;
    }
    if (events_depth_ > 0 && depth_ == events_depth_ + 1) {
      to_metadata_ = false;
      building_.push_back({std::move(container), ""});
      return true;
    }
    if (depth_ == 2 && events_depth_ < 0) {
      if (key_ == "traceEvents" && container.is_array()) {
        events_depth_ = 2;
        saw_events_ = true;
      } else if (key_ == "deviceProperties" || key_ == "distributedInfo") {
        to_metadata_ = true;
        building_.push_back({std::move(container), key_});
      }
    }
    return true;  // anything else is skipped
  }

  bool close() {
    if (!building_.empty()) {
      Frame done = std::move(building_.back());
      building_.pop_back();
      if (!building_.empty()) {
        add(done.key, std::move(done.value));
      } else if (to_metadata_) {
        metadata_[done.key] = std::move(done.value);
      } else if (done.value.is_object()) {
        on_event_(done.value);
      }
    } else if (depth_ == events_depth_) {
      events_depth_ = -2;  // the events array is closed; a second one is not expected
    }
    --depth_;
    return true;
  }

  bool scalar(json v) {
    if (!building_.empty()) add(key_, std::move(v));
    return true;
  }

  void add(const std::string& key, json v) {
    json& parent = building_.back().value;
    if (parent.is_object()) {
      parent[key] = std::move(v);
    } else {
      parent.push_back(std::move(v));
    }
  }

  std::string file_;
  EventHandler on_event_;
  std::vector<Frame> building_;
  bool to_metadata_ = false;
  int depth_ = 0;
  int events_depth_ = -1;
  bool saw_events_ = false;
  std::string key_;
  json metadata_ = json::object();
};

// A text field of an event object; a missing field or one of another type reads as "" (traces from
// other tools put numbers where Kineto puts names).
std::string_view text_of(const json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? std::string_view(it->get_ref<const std::string&>()) : std::string_view();
}

// A rank count as a trace records it (group or world size); a value out of range (NaN included) reads
// as 0, not recorded.
int rank_count_of(double v) { return v >= 1 && v <= 1e7 ? static_cast<int>(v) : 0; }

double number_of(const json& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {  // torch_npu writes ts as a string with nanosecond decimals
    try {
      return std::stod(v.get<std::string>());
    } catch (const std::exception&) {
      return NAN;
    }
  }
  return NAN;
}

std::vector<std::vector<double>> dims_of(const json& v) {
  std::vector<std::vector<double>> out;
  if (!v.is_array()) return out;
  for (const json& t : v) {
    std::vector<double> dims;
    if (t.is_array())
      for (const json& d : t)
        if (d.is_number()) dims.push_back(d.get<double>());
    out.push_back(std::move(dims));
  }
  return out;
}

std::vector<std::string> strings_of(const json& v) {
  std::vector<std::string> out;
  if (!v.is_array()) return out;
  for (const json& t : v) out.push_back(t.is_string() ? t.get<std::string>() : "");
  return out;
}

// What a kernel takes from the CPU op that launched it: the op's name, Input Dims and Input type (views
// into the trace's pool). Ops repeat every step and layer, so each distinct signature is held once and
// an op is 16 bytes: a gigabyte trace has millions of them.
struct OpSignature {
  std::string_view name;
  std::span<const std::vector<double>> dims;
  std::span<const std::string> types;
};

struct CpuOp {
  long long external_id = -1;
  std::uint32_t signature = 0;
};

class OpSignatures {
 public:
  std::uint32_t add(const OpSignature& s) {
    // Pooled views are equal exactly when their data pointers are.
    const Key key{s.name.data(), s.name.size(), s.dims.data(), s.types.data()};
    const auto [it, added] = index_.try_emplace(key, static_cast<std::uint32_t>(list_.size()));
    if (added) list_.push_back(s);
    return it->second;
  }
  const OpSignature& operator[](std::uint32_t i) const { return list_[i]; }

 private:
  struct Key {
    const void* name;
    std::size_t name_size;
    const void* dims;
    const void* types;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const {
      std::size_t h = std::hash<const void*>{}(k.name) ^ k.name_size * 0x9e3779b97f4a7c15ULL;
      h = h * 31 + std::hash<const void*>{}(k.dims);
      return h * 31 + std::hash<const void*>{}(k.types);
    }
  };
  std::vector<OpSignature> list_;
  std::unordered_map<Key, std::uint32_t, KeyHash> index_;
};

// A CUDA runtime/driver launch call: the thread and time it ran at, found by its correlation id.
struct LaunchCall {
  long long correlation = 0;
  long long thread = 0;
  double start_us = 0;
};

// The entry for `key` of a list sorted (stably) by key; of repeated keys the last one recorded wins.
template <class T, class Key>
const T* last_with_key(const std::vector<T>& sorted, long long key, Key key_of) {
  const auto it = std::upper_bound(sorted.begin(), sorted.end(), key, [&](long long k, const T& e) { return k < key_of(e); });
  return it != sorted.begin() && key_of(*std::prev(it)) == key ? &*std::prev(it) : nullptr;
}

// A CPU-side span on one thread (cpu_op or a CUDA launch call).
struct ThreadSpan {
  long long thread = 0;  // pid and tid folded together
  double start_us = 0, end_us = 0;
  std::uint32_t op = 0;  // index into the op list (cpu_ops only)
};

long long thread_key(const json& e) {
  auto id = [](const json& v) -> long long {
    if (v.is_number_integer()) return v.get<long long>();
    if (v.is_string()) return static_cast<long long>(std::hash<std::string>{}(v.get<std::string>()));
    return 0;
  };
  // Unsigned, so that any pid/tid mixes without signed overflow.
  const unsigned long long pid = static_cast<unsigned long long>(id(e.value("pid", json(0))));
  const unsigned long long tid = static_cast<unsigned long long>(id(e.value("tid", json(0))));
  return static_cast<long long>(pid * 1000003ULL + tid);
}

// Innermost op on `thread` whose span holds `t` (ops sorted by thread, start, longest first).
const ThreadSpan* enclosing_op(const std::vector<ThreadSpan>& ops, long long thread, double t) {
  auto it = std::upper_bound(ops.begin(), ops.end(), std::make_pair(thread, t), [](const auto& key, const ThreadSpan& s) {
    return key.first < s.thread || (key.first == s.thread && key.second < s.start_us);
  });
  // Walk back over the ops that started before t; the first one still open at t is the innermost.
  for (int steps = 0; it != ops.begin() && steps < 256; ++steps) {
    --it;
    if (it->thread != thread) return nullptr;
    if (it->end_us >= t) return &*it;
  }
  return nullptr;
}

Trace read_chrome_trace(const std::string& path) {
  Trace trace;
  trace.file = path;
  trace.format = TraceFormat::chrome_json;
  TracePool& pool = *trace.pool;
  // Lists, not hash maps, sorted once at the end: a gigabyte trace has millions of ops and launches.
  OpSignatures signatures;
  std::vector<CpuOp> ops;
  std::vector<std::uint32_t> op_by_external_id;  // indices of the ops with an External id
  std::vector<ThreadSpan> op_spans;
  std::vector<LaunchCall> launches;
  std::vector<std::pair<long long, long long>> kernel_links;  // (External id, correlation)
  std::unordered_map<long long, std::string> process_names;   // trace_view.json: pid -> name
  std::vector<long long> kernel_pids;
  auto on_event = [&](const json& e) {
    if (!e.is_object()) return;
    const std::string_view ph = text_of(e, "ph");
    if (ph == "M" && text_of(e, "name") == "process_name" && e.contains("args") && e["args"].contains("name") &&
        e.contains("pid") && e["pid"].is_number_integer())
      process_names[e["pid"].get<long long>()] = e["args"]["name"].is_string() ? e["args"]["name"].get<std::string>() : "";
    if (ph != "X") return;
    const std::string cat = to_lower(text_of(e, "cat"));
    const json& args = e.contains("args") && e["args"].is_object() ? e["args"] : json::object();
    auto integer_arg = [&](const char* key) -> long long {
      const auto it = args.find(key);
      if (it == args.end() || !it->is_number()) return -1;
      if (it->is_number_integer()) return it->get<long long>();
      const double v = it->get<double>();  // an id written as a float; out of range is no id
      return std::isfinite(v) && std::fabs(v) < 9e18 ? static_cast<long long>(v) : -1;
    };
    const double ts = e.contains("ts") ? number_of(e["ts"]) : NAN;
    const double dur = e.contains("dur") ? number_of(e["dur"]) : NAN;
    if (cat == "cpu_op" || cat == "operator") {
      OpSignature signature;
      signature.name = pool.text(text_of(e, "name"));
      if (args.contains("Input Dims")) signature.dims = pool.shapes(dims_of(args["Input Dims"]));
      if (args.contains("Input type")) signature.types = pool.types(strings_of(args["Input type"]));
      if (ops.size() >= std::numeric_limits<std::uint32_t>::max()) throw InputError(path + ": more than 4e9 CPU ops");
      const auto index = static_cast<std::uint32_t>(ops.size());
      ops.push_back({integer_arg("External id"), signatures.add(signature)});
      if (ops.back().external_id >= 0) op_by_external_id.push_back(index);
      if (std::isfinite(ts) && std::isfinite(dur)) op_spans.push_back({thread_key(e), ts, ts + dur, index});
      return;
    }
    if (cat == "cuda_runtime" || cat == "cuda_driver") {
      if (const long long c = integer_arg("correlation"); c >= 0 && std::isfinite(ts)) launches.push_back({c, thread_key(e), ts});
      return;
    }
    // Kineto kernels have cat "kernel"; torch_npu device tasks carry a "Task Type".
    const bool gpu_kernel = cat == "kernel";
    const bool npu_task = cat.empty() && args.contains("Task Type");
    if (!gpu_kernel && !npu_task) return;
    KernelSample k;
    k.name = pool.text(text_of(e, "name"));
    k.start_us = ts;
    if (!std::isfinite(dur) || dur < 0)
      throw InputError(path + ": kernel '" + std::string(k.name.substr(0, 60)) + "': field 'dur': expected a duration >= 0 in us");
    if (!std::isfinite(ts))
      throw InputError(path + ": kernel '" + std::string(k.name.substr(0, 60)) + "': field 'ts': expected a timestamp in us");
    k.duration = dur * 1e-6;
    if (npu_task) k.core = pool.text(text_of(args, "Task Type"));
    if (args.contains("Collective name") && args["Collective name"].is_string()) {
      k.collective = pool.text(to_lower(args["Collective name"].get<std::string>()));
      const bool gather = k.collective.find("gather") != std::string::npos;
      const char* count_key = gather ? "Out msg nelems" : "In msg nelems";
      if (args.contains(count_key)) k.message_elements = number_of(args[count_key]);
      if (args.contains("dtype")) k.message_type = pool.text(text_of(args, "dtype"));
      if (args.contains("Group size")) k.group_size = rank_count_of(number_of(args["Group size"]));
    }
    kernel_links.emplace_back(integer_arg("External id"), integer_arg("correlation"));
    kernel_pids.push_back(e.contains("pid") && e["pid"].is_number_integer() ? e["pid"].get<long long>() : -1);
    trace.kernels.push_back(std::move(k));
  };
  GzipStreamBuf buffer(path);
  std::istream in(&buffer);
  ChromeTraceScanner scanner(path, on_event);
  json::sax_parse(in, &scanner);
  if (!scanner.found_events())
    throw InputError(path + ": field 'traceEvents': expected a Chrome trace (an array of events, or an object with traceEvents)");
  const json& meta = scanner.metadata();
  if (meta.contains("deviceProperties") && meta["deviceProperties"].is_array() && !meta["deviceProperties"].empty() &&
      meta["deviceProperties"][0].is_object())
    trace.device_name = text_of(meta["deviceProperties"][0], "name");
  if (meta.contains("distributedInfo") && meta["distributedInfo"].is_object()) {
    trace.world_size = rank_count_of(number_of(meta["distributedInfo"].value("world_size", json(0))));
  }
  std::sort(op_spans.begin(), op_spans.end(), [](const ThreadSpan& a, const ThreadSpan& b) {
    return a.thread != b.thread ? a.thread < b.thread : a.start_us != b.start_us ? a.start_us < b.start_us : a.end_us > b.end_us;
  });
  std::stable_sort(op_by_external_id.begin(), op_by_external_id.end(),
                   [&](std::uint32_t a, std::uint32_t b) { return ops[a].external_id < ops[b].external_id; });
  std::stable_sort(launches.begin(), launches.end(), [](const LaunchCall& a, const LaunchCall& b) { return a.correlation < b.correlation; });
  // Link each kernel to its launching op: by External id where the trace shares it between op and
  // kernel (newer Kineto), else by the op that encloses the kernel's launch call on the CPU thread
  // (older Kineto, where the kernel's External id is its correlation id; HTA links them the same way).
  // torch_npu: keep only the device tasks of "Ascend Hardware".
  std::size_t kept = 0;  // kernels are kept in place, in order
  for (std::size_t i = 0; i < trace.kernels.size(); ++i) {
    KernelSample& k = trace.kernels[i];
    if (!k.core.empty()) {
      const auto p = process_names.find(kernel_pids[i]);
      if (p != process_names.end() && p->second != "Ascend Hardware") continue;
    }
    const auto [external_id, correlation] = kernel_links[i];
    const CpuOp* op = nullptr;
    if (const auto* by_id = last_with_key(op_by_external_id, external_id, [&](std::uint32_t i) { return ops[i].external_id; })) {
      op = &ops[*by_id];
    } else if (const auto* launch = last_with_key(launches, correlation, [](const LaunchCall& c) { return c.correlation; })) {
      if (const ThreadSpan* span = enclosing_op(op_spans, launch->thread, launch->start_us)) op = &ops[span->op];
    }
    if (op) {
      const OpSignature& signature = signatures[op->signature];
      k.op = signature.name;
      k.launch_id = op->external_id >= 0 ? op->external_id : static_cast<long long>(op - ops.data());
      k.input_shapes = signature.dims;
      k.input_types = signature.types;
    }
    trace.kernels[kept++] = k;
  }
  trace.kernels.resize(kept);
  return trace;
}

// ------------------------------------------------------------------------------------------------
// CSV (RFC 4180 quoting; Ascend wraps shapes in triple quotes and may end numbers with a TAB).
std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(trim(field));
      field.clear();
    } else if (c != '\r') {
      field += c;
    }
  }
  if (quoted) fields.push_back("\x01unterminated");
  fields.push_back(trim(field));
  return fields;
}

// std::getline with a cap: endless bytes without a newline (/dev/zero, a binary file) are refused, not
// read into memory. False at the end of the input.
bool read_csv_line(std::istream& in, std::string& line, const std::string& path, long line_number) {
  constexpr std::size_t max_line_bytes = std::size_t{16} << 20;
  line.clear();
  std::streambuf* buffer = in.rdbuf();
  for (auto c = buffer->sbumpc(); c != std::char_traits<char>::eof(); c = buffer->sbumpc()) {
    if (c == '\n') return true;
    line.push_back(static_cast<char>(c));
    if (line.size() > max_line_bytes)
      throw InputError(path + ":" + std::to_string(line_number) + ": a line longer than 16 MiB (not a profiler CSV?)");
  }
  return !line.empty();
}

class CsvTable {
 public:
  explicit CsvTable(const std::string& path) : path_(path), in_(path, std::ios::binary) {
    if (!in_) throw InputError(path + ": cannot open file");
    std::string header;
    if (!read_csv_line(in_, header, path, 1)) throw InputError(path + ": empty file (expected a CSV header)");
    if (header.size() >= 3 && header.compare(0, 3, "\xEF\xBB\xBF") == 0) header.erase(0, 3);  // UTF-8 BOM
    columns_ = split_csv_line(header);
    line_ = 1;
  }
  bool has(const std::string& column) const { return index(column) >= 0; }
  int index(const std::string& column) const {
    for (std::size_t i = 0; i < columns_.size(); ++i)
      if (columns_[i] == column) return static_cast<int>(i);
    return -1;
  }
  int require(const std::vector<std::string>& names) const {
    for (const auto& n : names)
      if (int i = index(n); i >= 0) return i;
    throw InputError(path_ + ": header: expected a column '" + names.front() + "'");
  }
  // Next row, checked for its field count (a truncated last line has fewer).
  bool next(std::vector<std::string>& row) {
    std::string line;
    while (read_csv_line(in_, line, path_, line_ + 1)) {
      ++line_;
      if (trim(line).empty()) continue;
      row = split_csv_line(line);
      if (!row.empty() && row.back() == "\x01unterminated")
        throw InputError(where() + ": unterminated quoted field (truncated file?)");
      if (row.size() != columns_.size())
        throw InputError(where() + ": expected " + std::to_string(columns_.size()) + " fields as in the header, got " +
                         std::to_string(row.size()) + " (truncated or malformed line)");
      return true;
    }
    return false;
  }
  double number(const std::vector<std::string>& row, int column) const {
    const std::string& s = row[static_cast<std::size_t>(column)];
    std::size_t used = 0;
    double v = NAN;
    try {
      v = std::stod(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != s.size() || !std::isfinite(v))
      throw InputError(where() + ": column '" + columns_[static_cast<std::size_t>(column)] + "': expected a number, got \"" +
                       s.substr(0, 40) + "\"");
    return v;
  }
  std::string where() const { return path_ + ":" + std::to_string(line_); }

 private:
  std::string path_;
  std::ifstream in_;
  std::vector<std::string> columns_;
  long line_ = 0;
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string part;
  for (char c : s) {
    if (c == sep) {
      parts.push_back(trim(part));
      part.clear();
    } else {
      part += c;
    }
  }
  parts.push_back(trim(part));
  return parts;
}

// "32,3,224,224;64" -> {{32,3,224,224},{64}}; "N/A" or "" -> {}.
std::vector<std::vector<double>> parse_shapes(const std::string& s) {
  std::vector<std::vector<double>> out;
  if (s.empty() || s == "N/A") return out;
  for (const std::string& tensor : split(s, ';')) {
    std::vector<double> dims;
    if (!tensor.empty())
      for (const std::string& d : split(tensor, ',')) {
        char* end = nullptr;
        const double v = std::strtod(d.c_str(), &end);
        if (end != d.c_str()) dims.push_back(v);
      }
    out.push_back(std::move(dims));
  }
  return out;
}

std::vector<std::string> parse_types(const std::string& s) {
  if (s.empty() || s == "N/A") return {};
  return split(s, ';');
}

// communication.json (+ communication_matrix.json for group sizes) of one rank.
struct AscendCollective {
  seconds transit_time = 0;
  bytes transit_bytes = 0;
  std::string transport;
  int group_size = 0;
};

std::map<std::string, AscendCollective> read_ascend_communication(const fs::path& folder) {
  std::map<std::string, AscendCollective> out;
  const fs::path comm_file = folder / "communication.json";
  if (!fs::exists(comm_file)) return out;
  // Group size of each op: the distinct ranks of the links this rank recorded for it in the matrix
  // (keys are "<op>@<group>" or "<class>@<group>" with the op under "Op Name").
  std::map<std::string, std::set<std::string>> ranks_by_op;
  const fs::path matrix_file = folder / "communication_matrix.json";
  if (fs::exists(matrix_file)) {
    const json m = read_json_file(matrix_file.string());
    for (const auto& [step, kinds] : m.items()) {
      if (!kinds.is_object()) continue;
      for (const auto& [kind, classes] : kinds.items()) {
        if (!classes.is_object()) continue;
        for (const auto& [cls, links] : classes.items()) {
          if (!links.is_object()) continue;
          const std::string key_op = cls.substr(0, cls.find('@'));
          for (const auto& [link, info] : links.items()) {
            std::string op = key_op;
            if (info.is_object() && info.contains("Op Name") && info["Op Name"].is_string()) op = info["Op Name"].get<std::string>();
            if (!op.starts_with("hcom_")) continue;
            for (const std::string& r : split(link, '-'))
              if (!r.empty()) ranks_by_op[op].insert(r);
          }
        }
      }
    }
  }
  const std::string file = comm_file.string();
  const json c = read_json_file(file);
  if (!c.is_object()) throw InputError(file + ": top level: expected an object of steps");
  for (const auto& [step, kinds] : c.items()) {
    if (!kinds.is_object()) throw InputError(file + ": field '" + step + "': expected an object");
    for (const auto& [kind, ops] : kinds.items()) {
      if (!ops.is_object()) continue;
      for (const auto& [op_key, info] : ops.items()) {
        const auto at = op_key.find('@');
        if (at == std::string::npos) continue;  // "Total Op Info"
        const Field f(info, file, step + "." + kind + "." + op_key);
        AscendCollective a;
        a.transit_time = f.child("Communication Time Info").non_negative("Transit Time(ms)") * 1e-3;
        const Field bw = f.child("Communication Bandwidth Info");
        // SDMA mirrors the HCCS traffic (the copy engine moving it), so the busiest of the link
        // transports is the traffic this device put on the wire.
        for (const char* transport : {"HCCS", "RDMA", "PCIE", "SIO"}) {
          if (!bw.has(transport)) continue;
          const bytes b = bw.child(transport).non_negative("Transit Size(MB)") * 1e6;
          if (b > a.transit_bytes) a.transit_bytes = b, a.transport = transport;
        }
        const auto g = ranks_by_op.find(op_key.substr(0, at));
        if (g != ranks_by_op.end()) a.group_size = static_cast<int>(g->second.size());
        out[op_key.substr(0, at)] = a;
      }
    }
  }
  return out;
}

Trace read_kernel_details(const std::string& path) {
  Trace trace;
  trace.file = path;
  trace.format = TraceFormat::ascend_kernel_details;
  TracePool& pool = *trace.pool;
  const auto collectives = read_ascend_communication(fs::path(path).parent_path());
  CsvTable csv(path);
  const int name = csv.require({"Name"}), type = csv.require({"Type"}), core = csv.require({"Accelerator Core"}),
            start = csv.require({"Start Time(us)"}), duration = csv.require({"Duration(us)"});
  const int in_shapes = csv.index("Input Shapes"), in_types = csv.index("Input Data Types"),
            out_shapes = csv.index("Output Shapes"), out_types = csv.index("Output Data Types");
  std::set<std::pair<std::string, std::string>> seen_collectives;  // an HCCL op may appear twice
  std::set<std::string> matched;
  std::vector<std::string> row;
  while (csv.next(row)) {
    KernelSample k;
    k.name = pool.text(row[static_cast<std::size_t>(name)]);
    k.op = pool.text(row[static_cast<std::size_t>(type)]);
    k.core = pool.text(row[static_cast<std::size_t>(core)]);
    k.start_us = csv.number(row, start);
    const double dur_us = csv.number(row, duration);
    if (dur_us < 0) throw InputError(csv.where() + ": column 'Duration(us)': expected a duration >= 0");
    k.duration = dur_us * 1e-6;
    if (in_shapes >= 0) k.input_shapes = pool.shapes(parse_shapes(row[static_cast<std::size_t>(in_shapes)]));
    if (in_types >= 0) k.input_types = pool.types(parse_types(row[static_cast<std::size_t>(in_types)]));
    if (out_shapes >= 0) k.output_shapes = pool.shapes(parse_shapes(row[static_cast<std::size_t>(out_shapes)]));
    if (out_types >= 0) k.output_types = pool.types(parse_types(row[static_cast<std::size_t>(out_types)]));
    if (k.core == "HCCL" || k.op.starts_with("hcom_")) {
      if (!seen_collectives.insert({row[static_cast<std::size_t>(start)], std::string(k.name)}).second) continue;
      k.collective = k.op;
      if (const auto it = collectives.find(std::string(k.name)); it != collectives.end()) {
        k.transit_bytes = it->second.transit_bytes;
        k.transport = pool.text(it->second.transport);
        k.group_size = it->second.group_size;
        k.transit_time = it->second.transit_time;
        k.excludes_peer_wait = true;
        matched.emplace(k.name);
      }
    }
    trace.kernels.push_back(std::move(k));
  }
  // Collectives communication.json records but kernel_details.csv does not list (exports may trim it).
  for (const auto& [op_name, c] : collectives) {
    if (matched.count(op_name)) continue;
    KernelSample k;
    k.name = k.collective = pool.text(op_name);
    k.core = "HCCL";
    k.duration = c.transit_time;
    k.transit_bytes = c.transit_bytes;
    k.transport = pool.text(c.transport);
    k.group_size = c.group_size;
    k.transit_time = c.transit_time;
    k.excludes_peer_wait = true;
    trace.kernels.push_back(std::move(k));
  }
  return trace;
}

Trace read_op_statistic(const std::string& path) {
  Trace trace;
  trace.file = path;
  trace.format = TraceFormat::ascend_op_statistic;
  TracePool& pool = *trace.pool;
  CsvTable csv(path);
  const int type = csv.require({"OP Type"}), core = csv.require({"Core Type"}), count = csv.require({"Count"}),
            avg = csv.require({"Avg Time(us)"});
  std::vector<std::string> row;
  while (csv.next(row)) {
    KernelSample k;
    k.op = k.name = pool.text(row[static_cast<std::size_t>(type)]);
    k.core = pool.text(row[static_cast<std::size_t>(core)]);
    k.occurrences = csv.number(row, count);
    k.duration = csv.number(row, avg) * 1e-6;
    if (k.occurrences < 1 || k.duration < 0) throw InputError(csv.where() + ": expected Count >= 1 and Avg Time(us) >= 0");
    if (k.core == "HCCL" || k.op.starts_with("hcom_")) k.collective = k.op;
    trace.kernels.push_back(std::move(k));
  }
  return trace;
}

// The ASCEND_PROFILER_OUTPUT folder of a path: the folder itself, or its child of that name.
fs::path ascend_output_folder(const fs::path& p) {
  if (fs::exists(p / "ASCEND_PROFILER_OUTPUT")) return p / "ASCEND_PROFILER_OUTPUT";
  return p;
}

std::string csv_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open file");
  std::string header;
  read_csv_line(in, header, path, 1);
  return header;
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
