// A whole sweep: its points evaluated on threads into a results file that an interrupted run resumes,
// and the summary of the best points and Pareto fronts kept as they arrive.
#include "sim/search/sweep.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "sim/io/input_error.h"
#include "sim/io/sweep_results.h"

namespace moesim::sweep {

namespace fs = std::filesystem;

Summary::Summary(Objective objective, int top_k) : objective_(objective), top_k_(std::max(0, top_k)) {}

namespace {

std::uint64_t index_of(const json& line) { return line.at("index").get<std::uint64_t>(); }

// Keeps the points no other point beats on both keys (higher is better for both; callers negate a
// key to minimise it). Exact ties on both keys all stay, so the front is the same in any order.
void add_to_front(std::vector<json>& front, const json& line, double (*x)(const json&), double (*y)(const json&)) {
  auto dominates = [&](const json& a, const json& b) {
    return x(a) >= x(b) && y(a) >= y(b) && (x(a) > x(b) || y(a) > y(b));
  };
  for (const json& f : front)
    if (dominates(f, line)) return;
  std::erase_if(front, [&](const json& f) { return dominates(line, f); });
  front.push_back(line);
}

double mfu_of(const json& l) { return l.at("mfu").get<double>(); }
double active_of(const json& l) { return l.at("params").at("active").get<double>(); }
double tokens_of(const json& l) { return l.at("tokens_per_s").get<double>(); }
double neg_memory_of(const json& l) { return -l.at("peak_memory_bytes").get<double>(); }

std::vector<json> by_index(std::vector<json> v) {
  std::sort(v.begin(), v.end(), [](const json& a, const json& b) { return index_of(a) < index_of(b); });
  return v;
}

}  // namespace

void Summary::add(const json& line) {
  const std::string status = line.at("status").get<std::string>();
  if (status != "ok") {
    ++(status == "no_fit" ? no_fit : infeasible);
    return;
  }
  ++ok;
  auto ahead = [&](const json& a, const json& b) {
    const double oa = a.at("objective").get<double>(), ob = b.at("objective").get<double>();
    if (oa != ob) return better(objective_, oa, ob);
    return index_of(a) < index_of(b);
  };
  top_.insert(std::upper_bound(top_.begin(), top_.end(), line, ahead), line);
  if (static_cast<int>(top_.size()) > top_k_) top_.pop_back();
  add_to_front(front_mfu_, line, mfu_of, active_of);
  add_to_front(front_memory_, line, tokens_of, neg_memory_of);
}

std::vector<json> Summary::ranked() const { return top_; }
std::vector<json> Summary::pareto_mfu_active() const { return by_index(front_mfu_); }
std::vector<json> Summary::pareto_tokens_memory() const { return by_index(front_memory_); }

// ------------------------------------------------------------------------------------------------
namespace {

// An earlier run's file may have been edited or damaged anywhere: resume takes only lines that
// sweep writes (the report's check), and an ok point must carry every model axis the summary shows.
void check_resumable_line(const json& line, const std::string& where) {
  io::check_sweep_result_line(line, where);
  if (line.at("status") != "ok") return;
  for (const auto& name : model_result_names)
    if (!line.at("model").contains(name)) throw InputError(where + ": field 'model." + name + "': expected a whole number, got missing");
}

// Reads the complete lines of an earlier run into `summary` and `done`; returns the byte length of
// those lines. A last line without its newline was cut off mid-write and is dropped (rewritten). A
// part file's first line must be its shard's header.
std::uint64_t read_existing(const RunOptions& options, std::uint64_t points, Summary& summary, std::set<std::uint64_t>& done) {
  const std::string& path = options.out_path;
  std::ifstream in(path, std::ios::binary);
  if (!in) return 0;
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  std::uint64_t good = 0;
  int line_no = 0;
  for (size_t start = 0; start < text.size();) {
    const size_t end = text.find('\n', start);
    if (end == std::string::npos) break;
    ++line_no;
    if (line_no == 1 && !options.header.empty()) {
      if (text.compare(0, end, options.header) != 0)
        throw InputError(fmt::format("{}: line 1: not the part header of this spec and shard ({}); cannot resume", path, options.header));
      start = good = end + 1;
      continue;
    }
    json line;
    try {
      line = io::parse_json_text(text.substr(start, end - start), path);
    } catch (const InputError&) {
      throw InputError(fmt::format("{}: line {}: not a JSON result line; cannot resume", path, line_no));
    }
    try {
      check_resumable_line(line, fmt::format("{}: line {}", path, line_no));
    } catch (const InputError& e) {
      throw InputError(std::string(e.what()) + "; cannot resume");
    }
    // A point's best is the operator level's (an "op_level" block) or, with --pass-level, the pass
    // level's: a file of one search is not resumed by the other.
    const bool op_level_line = line.contains("op_level"), op_level_run = options.eval.op_level_finalists > 0;
    if (line.value("status", "") == "ok" && op_level_line != op_level_run)
      throw InputError(fmt::format("{}: line {}: a result of the {}-level search, this run is {} level{}; cannot resume", path, line_no,
                                   op_level_line ? "operator" : "pass", op_level_run ? "operator" : "pass",
                                   op_level_run ? " (add --pass-level)" : " (drop --pass-level)"));
    const std::uint64_t index = index_of(line);
    if (index >= points || index % options.shard_count != options.shard_index || !done.insert(index).second)
      throw InputError(fmt::format("{}: line {}: point {} is not a new point of this spec ({} points{}); cannot resume", path,
                                   line_no, index, points,
                                   options.shard_count > 1 ? fmt::format(", shard {}/{}", options.shard_index, options.shard_count) : ""));
    summary.add(line);
    start = end + 1;
    good = start;
  }
  return good;
}

std::string clock(double s) {
  const long t = static_cast<long>(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60) : fmt::format("{}:{:02}", t / 60, t % 60);
}

}  // namespace

std::ofstream open_results(const RunOptions& options, std::uint64_t points, Summary& summary, std::set<std::uint64_t>& done) {
  if (options.shard_count < 1 || options.shard_index >= options.shard_count)
    throw InputError(fmt::format("shard {}/{}: expected I/N with 0 <= I < N", options.shard_index, options.shard_count));
  std::ofstream out;
  std::uint64_t keep = 0;
  if (options.resume && fs::exists(options.out_path)) keep = read_existing(options, points, summary, done);
  if (keep > 0) {
    fs::resize_file(options.out_path, keep);
    out.open(options.out_path, std::ios::binary | std::ios::app);
  } else {
    out.open(options.out_path, std::ios::binary | std::ios::trunc);
    if (!options.header.empty()) out << options.header << '\n' << std::flush;
  }
  if (!out) throw InputError(options.out_path + ": cannot write file");
  return out;
}

Summary run_sweep(const SweepSpec& spec, const RunOptions& options, RunStats* stats) {
  const std::uint64_t points = point_count(spec);
  Summary summary(spec.objective, options.top_k);
  std::set<std::uint64_t> done;
  std::ofstream out = open_results(options, points, summary, done);
  auto skipped = [&](std::uint64_t i) { return done.count(i) || i % options.shard_count != options.shard_index; };

  // Workers take indices in order and hand back finished lines; this thread writes them in index
  // order. A worker waits while it is `window` points ahead of the writer, so one slow point cannot
  // make the reorder buffer hold the rest of the space.
  const int jobs = std::max(1, options.jobs);
  const std::uint64_t window = 64ull * jobs;
  std::mutex mu;
  std::condition_variable line_ready, space;
  std::map<std::uint64_t, std::pair<std::string, json>> buffer;
  std::uint64_t writer_at = 0;  // every index below is written or was already in the file
  std::atomic<std::uint64_t> next{0};

  auto worker = [&] {
    for (;;) {
      const std::uint64_t i = next.fetch_add(1);
      if (i >= points) return;
      if (skipped(i)) continue;
      {
        std::unique_lock lock(mu);
        space.wait(lock, [&] { return i < writer_at + window; });
      }
      json line = point_line(spec, i, options.eval);
      std::string text = line.dump();
      {
        std::lock_guard lock(mu);
        buffer.emplace(i, std::pair{std::move(text), std::move(line)});
      }
      line_ready.notify_all();
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < jobs; ++t) threads.emplace_back(worker);

  const auto started = std::chrono::steady_clock::now();
  auto last_draw = started - std::chrono::seconds(1);
  std::uint64_t evaluated = 0;
  const std::uint64_t selected = points / options.shard_count + (options.shard_index < points % options.shard_count);
  const std::uint64_t to_do = selected - done.size();
  for (std::uint64_t i = 0; i < points; ++i) {
    if (skipped(i)) {
      {
        std::lock_guard lock(mu);
        writer_at = i + 1;
      }
      space.notify_all();
      continue;
    }
    std::pair<std::string, json> entry;
    {
      std::unique_lock lock(mu);
      line_ready.wait(lock, [&] { return buffer.count(i) > 0; });
      entry = std::move(buffer.at(i));
      buffer.erase(i);
      writer_at = i + 1;
    }
    space.notify_all();
    out << entry.first << '\n';
    out.flush();  // a killed sweep loses at most the line being written
    summary.add(entry.second);
    ++evaluated;
    const auto now = std::chrono::steady_clock::now();
    if (options.progress && (now - last_draw > std::chrono::milliseconds(100) || evaluated == to_do)) {
      last_draw = now;
      const double elapsed = std::chrono::duration<double>(now - started).count();
      const double rate = elapsed > 0 ? evaluated / elapsed : 0;
      const int width = 30;
      const int filled = static_cast<int>(width * evaluated / std::max<std::uint64_t>(1, to_do));
      *options.progress << fmt::format("\r[{}{}] {}/{} points  {:.1f}/s  ETA {}  ", std::string(filled, '#'),
                                       std::string(width - filled, '.'), evaluated, to_do, rate,
                                       rate > 0 ? clock((to_do - evaluated) / rate) : std::string("?"))
                        << std::flush;
    }
  }
  for (auto& t : threads) t.join();
  if (options.progress && to_do > 0) *options.progress << "\n";
  if (!out) throw InputError(options.out_path + ": write failed");
  if (stats) *stats = {selected, evaluated, done.size()};
  return summary;
}

}  // namespace moesim::sweep
