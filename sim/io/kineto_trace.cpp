// Chrome trace JSON as Kineto (PyTorch profiler) and torch_npu (trace_view.json) write it, plain or
// gzip: kernels with their launching aten op, its shapes and types, and NCCL collective arguments.
#include "sim/io/trace_readers.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <istream>
#include <limits>
#include <streambuf>
#include <unordered_map>

#include "sim/io/json_reader.h"

namespace moesim::io {

namespace {

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

}  // namespace

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
    // Kineto names the CUDA stream in args and as the event's tid; torch_npu's device tasks only as the tid.
    k.stream = integer_arg("stream");
    if (k.stream < 0 && e.contains("tid") && e["tid"].is_number_integer()) k.stream = e["tid"].get<long long>();
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

}  // namespace moesim::io
