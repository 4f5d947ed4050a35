#include "sim/search/shard.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <queue>

#include "sim/io/input_error.h"
#include "sim/io/json_reader.h"
#include "sim/io/sweep_results.h"

namespace moesim::shard {

namespace fs = std::filesystem;
using nlohmann::json;

Shard parse_shard(const std::string& text, const std::string& flag) {
  const std::string expected = fmt::format("{}: expected I/N with whole numbers 0 <= I < N (e.g. 0/4), got '{}'", flag, text);
  const size_t slash = text.find('/');
  auto whole = [&](const std::string& s) {
    if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos) throw InputError(expected);
    return std::stoull(s);
  };
  if (slash == std::string::npos) throw InputError(expected);
  const Shard s{whole(text.substr(0, slash)), whole(text.substr(slash + 1))};
  if (s.count < 1 || s.index >= s.count) throw InputError(expected);
  return s;
}

std::uint64_t spec_fingerprint(const std::string& spec_path) {
  // FNV-1a, 64-bit (Fowler, Noll, Vo): offset basis and prime from the reference definition.
  std::uint64_t hash = 14695981039346656037ull;
  for (const unsigned char c : io::read_json_file(spec_path).dump()) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

std::string part_header(const sweep::SweepSpec& spec, Shard shard) {
  const json header = {{"moesim_sweep_part",
                        {{"spec", fs::path(spec.file).filename().string()},
                         {"fingerprint", fmt::format("{:016x}", spec_fingerprint(spec.file))},
                         {"points", sweep::point_count(spec)},
                         {"shard", shard.index},
                         {"shards", shard.count}}}};
  return header.dump();
}

namespace {

// One part file read line by line: its header, then its result lines in increasing index order.
class PartReader {
 public:
  explicit PartReader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
    if (!in_) throw InputError(path + ": cannot read file");
    std::string first;
    std::getline(in_, first);
    const json h = json::parse(first, nullptr, false);
    if (h.is_discarded() || !h.is_object() || !h.contains("moesim_sweep_part"))
      throw InputError(path + ": line 1: not a sweep part file (no header from 'moesim sweep --shard')");
    const json& p = h["moesim_sweep_part"];
    auto field = [&](const char* key, bool text) -> const json& {
      if (!p.is_object() || !p.contains(key) || (text ? !p[key].is_string() : !p[key].is_number_unsigned()))
        throw InputError(fmt::format("{}: line 1: part header field '{}': expected {}", path, key, text ? "a string" : "a whole number"));
      return p[key];
    };
    spec = field("spec", true).get<std::string>();
    fingerprint = field("fingerprint", true).get<std::string>();
    points = field("points", false).get<std::uint64_t>();
    shard = {field("shard", false).get<std::uint64_t>(), field("shards", false).get<std::uint64_t>()};
    if (shard.count < 1 || shard.index >= shard.count)
      throw InputError(fmt::format("{}: line 1: part header: shard {}/{} is not I/N with 0 <= I < N", path, shard.index, shard.count));
  }

  // Reads the next result line into `line` and `index`; false at the end of the file.
  bool next() {
    if (!std::getline(in_, line)) return false;
    ++line_no_;
    if (in_.eof())
      throw InputError(fmt::format("{}: line {}: cut off mid-write (the shard was interrupted); finish it with "
                                   "'moesim sweep SPEC --shard {}/{} --out {} --resume'",
                                   path_, line_no_, shard.index, shard.count, path_));
    const json j = json::parse(line, nullptr, false);
    if (j.is_discarded()) throw InputError(fmt::format("{}: line {}: not a sweep result line (not JSON)", path_, line_no_));
    io::check_sweep_result_line(j, fmt::format("{}: line {}", path_, line_no_));
    const std::uint64_t i = j["index"].get<std::uint64_t>();
    if (i >= points || i % shard.count != shard.index)
      throw InputError(fmt::format("{}: line {}: point {} is not a point of shard {}/{} ({} points)", path_, line_no_, i,
                                   shard.index, shard.count, points));
    if (read_any_ && i <= index)
      throw InputError(fmt::format("{}: line {}: point {} after point {}: not in index order", path_, line_no_, i, index));
    index = i;
    read_any_ = true;
    return true;
  }

  std::string spec, fingerprint;
  std::uint64_t points = 0;
  Shard shard;
  std::string line;
  std::uint64_t index = 0;

 private:
  std::string path_;
  std::ifstream in_;
  int line_no_ = 1;
  bool read_any_ = false;
};

}  // namespace

MergeStats merge_parts(const std::vector<std::string>& parts, const std::string& out_path) {
  if (parts.empty()) throw InputError("merge: expected at least one part file");
  std::vector<std::unique_ptr<PartReader>> readers;
  for (const auto& path : parts) {
    readers.push_back(std::make_unique<PartReader>(path));
    const PartReader& r = *readers.back();
    const PartReader& first = *readers.front();
    const std::string& first_path = parts.front();
    if (r.fingerprint != first.fingerprint || r.points != first.points)
      throw InputError(fmt::format("{}: a part of spec '{}' (fingerprint {}, {} points), but {} is of spec '{}' (fingerprint {}, "
                                   "{} points); cannot merge parts of different specs",
                                   path, r.spec, r.fingerprint, r.points, first_path, first.spec, first.fingerprint, first.points));
    if (r.shard.count != first.shard.count)
      throw InputError(fmt::format("{}: shard {}/{}, but {} is shard {}/{}; the parts of one sweep share N", path, r.shard.index,
                                   r.shard.count, first_path, first.shard.index, first.shard.count));
    for (size_t k = 0; k + 1 < readers.size(); ++k)
      if (readers[k]->shard.index == r.shard.index)
        throw InputError(fmt::format("{}: shard {}/{} again (also {})", path, r.shard.index, r.shard.count, parts[k]));
  }
  const std::uint64_t points = readers.front()->points, shards = readers.front()->shard.count;

  // Written next to the destination and renamed over it at the end, so a refused merge leaves no
  // half-written results file behind.
  const std::string temp_path = out_path + ".merging";
  std::ofstream out(temp_path, std::ios::binary | std::ios::trunc);
  if (!out) throw InputError(out_path + ": cannot write file");
  try {
    // A k-way merge: every part is in index order, so memory stays at one line per part.
    using Head = std::pair<std::uint64_t, size_t>;  // (index, part)
    std::priority_queue<Head, std::vector<Head>, std::greater<>> heads;
    for (size_t k = 0; k < readers.size(); ++k)
      if (readers[k]->next()) heads.push({readers[k]->index, k});
    std::uint64_t expected = 0;
    while (!heads.empty()) {
      const auto [index, k] = heads.top();
      heads.pop();
      // Distinct shards of one N own disjoint points, and each part is strictly increasing, so the
      // only way to differ from `expected` is to be past a point no part has.
      if (index != expected) break;
      out << readers[k]->line << '\n';
      ++expected;
      if (readers[k]->next()) heads.push({readers[k]->index, k});
    }
    if (expected < points)
      throw InputError(fmt::format("merge: point {} of {} is in none of the parts: shard {}/{} is missing or unfinished (finish it "
                                   "with 'moesim sweep SPEC --shard {}/{} --out PART --resume')",
                                   expected, points, expected % shards, shards, expected % shards, shards));
    out.close();
    if (!out) throw InputError(out_path + ": write failed");
    fs::rename(temp_path, out_path);
  } catch (...) {
    out.close();
    fs::remove(temp_path);
    throw;
  }
  return {readers.size(), points};
}

}  // namespace moesim::shard
