// Ascend profiler output as torch_npu / msprof write it (ASCEND_PROFILER_OUTPUT): kernel_details.csv with
// communication.json and communication_matrix.json beside it, and op_statistic.csv.
#include "sim/io/trace_readers.h"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <istream>
#include <map>
#include <set>

#include "sim/io/json_reader.h"

namespace moesim::io {

namespace fs = std::filesystem;

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n\"");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n\"");
  return s.substr(b, e - b + 1);
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

}  // namespace

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
            out_shapes = csv.index("Output Shapes"), out_types = csv.index("Output Data Types"),
            stream = csv.index("Stream ID");
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
    // HCCL tasks have no stream ("N/A"): they keep -1.
    if (stream >= 0) {
      const std::string& id = row[static_cast<std::size_t>(stream)];
      long long value = -1;
      if (std::from_chars(id.data(), id.data() + id.size(), value).ec == std::errc() && value >= 0) k.stream = value;
    }
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

std::string csv_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open file");
  std::string header;
  read_csv_line(in, header, path, 1);
  return header;
}

}  // namespace moesim::io
