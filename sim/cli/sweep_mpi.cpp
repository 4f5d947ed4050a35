// The MPI sweep driver (built only with -DMOESIM_WITH_MPI=ON). Rank 0 owns the results file and the
// list of points still to evaluate; it hands out chunks of point indices to the ranks that ask
// (dynamic load balancing: a rank that drew cheap points simply asks again sooner), evaluates points
// on its own threads in between, and writes the finished lines in index order. Only each rank's main
// thread calls MPI (MPI_THREAD_FUNNELED).
#include "sim/cli/sweep_mpi.h"

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "sim/io/input_error.h"
#include "sim/search/shard.h"

namespace moesim {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int results_tag = 1;  // worker -> rank 0: the lines of its last chunk, which also asks for more
constexpr int work_tag = 2;     // rank 0 -> worker: point indices to evaluate; an empty list means stop

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

class MpiSession {
 public:
  MpiSession() {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (provided < MPI_THREAD_FUNNELED) abort_all("the MPI library does not support threads (MPI_THREAD_FUNNELED)");
  }
  ~MpiSession() { MPI_Finalize(); }
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  // Once the ranks are exchanging points, an error on one of them cannot be agreed on: it stops all.
  [[noreturn]] void abort_all(const std::string& what) const {
    std::cerr << fmt::format("moesim sweep --mpi: rank {}: {}\n", rank, what) << std::flush;
    MPI_Abort(MPI_COMM_WORLD, 3);
    std::abort();  // MPI_Abort does not return
  }

  // True when any rank has an error; the lowest such rank throws it, so it is printed once.
  bool any_failed(const std::string& error) const {
    const int mine = error.empty() ? size : rank;
    int first = size;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == rank) throw InputError(error);
    return first < size;
  }

  int rank = 0, size = 1;
};

// The lines of one chunk as a worker sends them: its evaluation seconds on the first line, then one
// "INDEX LINE" per point.
std::string pack_results(double busy_seconds, const std::vector<std::uint64_t>& chunk, const std::vector<std::string>& lines) {
  std::string out = fmt::format("{:.17g}\n", busy_seconds);
  for (size_t k = 0; k < chunk.size(); ++k) out += fmt::format("{} {}\n", chunk[k], lines[k]);
  return out;
}

struct Unpacked {
  double busy_seconds = 0;
  std::vector<std::pair<std::uint64_t, std::string>> lines;
};

Unpacked unpack_results(const std::string& message) {
  Unpacked u;
  size_t end = message.find('\n');
  u.busy_seconds = std::stod(message.substr(0, end));
  for (size_t start = end + 1; start < message.size(); start = end + 1) {
    const size_t space = message.find(' ', start);
    end = message.find('\n', space);
    u.lines.emplace_back(std::stoull(message.substr(start, space - start)), message.substr(space + 1, end - space - 1));
  }
  return u;
}

// Evaluates `chunk` on `jobs` threads (at most one per point), as run_sweep and rank 0 do; the lines
// come back in chunk order.
std::vector<std::string> evaluate_chunk(const sweep::SweepSpec& spec, const std::vector<std::uint64_t>& chunk,
                                        const sweep::RunOptions& options) {
  std::vector<std::string> lines(chunk.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t k; (k = next.fetch_add(1)) < chunk.size();) lines[k] = sweep::point_line(spec, chunk[k], options.eval).dump();
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::min<int>(options.jobs, static_cast<int>(chunk.size())); ++t) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  return lines;
}

void run_worker(const sweep::SweepSpec& spec, const sweep::RunOptions& options) {
  std::string message = pack_results(0, {}, {});  // the first request carries no lines
  for (;;) {
    MPI_Send(message.data(), static_cast<int>(message.size()), MPI_CHAR, 0, results_tag, MPI_COMM_WORLD);
    MPI_Status status;
    MPI_Probe(0, work_tag, MPI_COMM_WORLD, &status);
    int count = 0;
    MPI_Get_count(&status, MPI_UINT64_T, &count);
    std::vector<std::uint64_t> chunk(count);
    MPI_Recv(chunk.data(), count, MPI_UINT64_T, 0, work_tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (chunk.empty()) return;
    const auto started = Clock::now();
    const std::vector<std::string> lines = evaluate_chunk(spec, chunk, options);
    message = pack_results(seconds_since(started), chunk, lines);
  }
}

// Rank 0: hands out the points of `todo` (ascending indices not yet in the file), evaluates some on
// options.jobs local threads, and writes every line in index order.
class Coordinator {
 public:
  Coordinator(const MpiSession& mpi, const sweep::SweepSpec& spec, const sweep::RunOptions& options, std::vector<std::uint64_t> todo)
      : mpi_(mpi), spec_(spec), options_(options), todo_(std::move(todo)),
        // As in run_sweep: nothing is handed out further than `window_` points past the first unwritten
        // one, so one slow point cannot make rank 0 buffer the rest of the space.
        window_(64ull * mpi.size * options.jobs),
        tally_{std::vector<std::uint64_t>(mpi.size), std::vector<double>(mpi.size)} {}

  // What each rank did, for the load-balance report.
  struct Tally {
    std::vector<std::uint64_t> points;
    std::vector<double> busy_seconds;
  };

  Tally run(std::ofstream& out, sweep::Summary& summary) {
    std::vector<std::thread> threads;
    for (int t = 0; t < options_.jobs; ++t) threads.emplace_back([this] { local_worker(); });
    std::vector<int> waiting;  // workers whose request for points is not answered yet
    int working = mpi_.size - 1;  // workers not yet told to stop
    std::map<std::uint64_t, std::string> finished;  // lines not yet written, by index
    size_t written = 0;
    while (written < todo_.size() || working > 0) {
      bool progressed = false;
      for (;;) {
        int flag = 0;
        MPI_Status status;
        MPI_Iprobe(MPI_ANY_SOURCE, results_tag, MPI_COMM_WORLD, &flag, &status);
        if (!flag) break;
        int bytes = 0;
        MPI_Get_count(&status, MPI_CHAR, &bytes);
        std::string message(bytes, '\0');
        MPI_Recv(message.data(), bytes, MPI_CHAR, status.MPI_SOURCE, results_tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        Unpacked u = unpack_results(message);
        tally_.busy_seconds[status.MPI_SOURCE] += u.busy_seconds;
        tally_.points[status.MPI_SOURCE] += u.lines.size();
        for (auto& [index, line] : u.lines) finished.emplace(index, std::move(line));
        waiting.push_back(status.MPI_SOURCE);
        progressed = true;
      }
      {
        std::lock_guard lock(mu_);
        tally_.points[0] += local_lines_.size();
        for (auto& [index, line] : local_lines_) finished.emplace(index, std::move(line));
        local_lines_.clear();
      }
      const size_t before = written;
      for (auto it = finished.begin(); written < todo_.size() && it != finished.end() && it->first == todo_[written];
           it = finished.erase(it), ++written) {
        out << it->second << '\n';
        out.flush();  // a killed run loses at most the line being written
        summary.add(sweep::json::parse(it->second));
      }
      if (written != before) {
        {
          std::lock_guard lock(mu_);
          written_ = written;
        }
        space_.notify_all();
        progressed = true;
      }
      for (auto it = waiting.begin(); it != waiting.end();) {
        bool stop = false;
        const std::vector<std::uint64_t> chunk = take_chunk(stop);
        if (chunk.empty() && !stop) break;  // the window is full: answer once the writer moves on
        MPI_Send(chunk.data(), static_cast<int>(chunk.size()), MPI_UINT64_T, *it, work_tag, MPI_COMM_WORLD);
        working -= stop;
        it = waiting.erase(it);
        progressed = true;
      }
      if (!progressed) {
        std::unique_lock lock(mu_);
        delivered_.wait_for(lock, std::chrono::milliseconds(1), [&] { return !local_lines_.empty(); });
      }
    }
    for (auto& t : threads) t.join();
    return tally_;
  }

 private:
  // The positions of todo_ that may be handed out now.
  size_t limit() const { return std::min<size_t>(todo_.size(), written_ + window_); }

  // Guided self-scheduling (Polychronopoulos and Kuck, IEEE Trans. Computers 1987): large chunks
  // while much is left, down to one point per thread near the end, so the last chunks even out. A
  // quarter of the fair share (rather than all of it) and at most 8 points per thread, because point
  // costs vary severalfold and one message (well under a millisecond) is cheap next to one point.
  std::vector<std::uint64_t> take_chunk(bool& stop) {
    std::lock_guard lock(mu_);
    stop = handed_ >= todo_.size();
    const std::uint64_t threads = static_cast<std::uint64_t>(mpi_.size) * options_.jobs;
    const std::uint64_t per_thread = std::clamp<std::uint64_t>((todo_.size() - handed_) / (4 * threads), 1, 8);
    const size_t end = std::min<size_t>(handed_ + per_thread * options_.jobs, limit());
    std::vector<std::uint64_t> chunk;
    for (; handed_ < end; ++handed_) chunk.push_back(todo_[handed_]);
    return chunk;
  }

  void local_worker() {
    for (;;) {
      size_t position;
      {
        std::unique_lock lock(mu_);
        space_.wait(lock, [&] { return handed_ >= todo_.size() || handed_ < limit(); });
        if (handed_ >= todo_.size()) return;
        position = handed_++;
      }
      const auto started = Clock::now();
      std::string line = sweep::point_line(spec_, todo_[position], options_.eval).dump();
      {
        std::lock_guard lock(mu_);
        tally_.busy_seconds[0] += seconds_since(started);
        local_lines_.emplace_back(todo_[position], std::move(line));
      }
      delivered_.notify_one();
    }
  }

  const MpiSession& mpi_;
  const sweep::SweepSpec& spec_;
  const sweep::RunOptions& options_;
  const std::vector<std::uint64_t> todo_;
  const std::uint64_t window_;
  std::mutex mu_;
  std::condition_variable space_, delivered_;
  size_t handed_ = 0, written_ = 0;  // positions of todo_; guarded by mu_
  std::vector<std::pair<std::uint64_t, std::string>> local_lines_;  // guarded by mu_
  Tally tally_;  // rank 0's entries guarded by mu_ while the local threads run
};

}  // namespace

std::optional<MpiSweep> run_sweep_mpi(const std::string& spec_path, const sweep::RunOptions& options) {
  const MpiSession mpi;
  const auto started = Clock::now();
  std::optional<sweep::SweepSpec> spec;
  std::uint64_t fingerprint = 0;
  std::string error;
  try {
    spec = sweep::load_spec(spec_path);
    fingerprint = shard::spec_fingerprint(spec_path);
  } catch (const InputError& e) {
    error = e.what();
  }
  if (mpi.any_failed(error)) return std::nullopt;
  std::uint64_t lowest = 0, highest = 0;
  MPI_Allreduce(&fingerprint, &lowest, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&fingerprint, &highest, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
  if (lowest != highest && mpi.rank == 0)
    error = spec_path + ": the ranks read different contents; every rank needs the same spec file";
  if (mpi.any_failed(error)) return std::nullopt;

  const std::uint64_t points = sweep::point_count(*spec);
  sweep::Summary summary(spec->objective, options.top_k);
  std::set<std::uint64_t> done;
  std::ofstream out;
  if (mpi.rank == 0) {
    try {
      out = sweep::open_results(options, points, summary, done);
    } catch (const InputError& e) {
      error = e.what();
    }
  }
  if (mpi.any_failed(error)) return std::nullopt;

  try {
    if (mpi.rank != 0) {
      run_worker(*spec, options);
      return std::nullopt;
    }
    std::vector<std::uint64_t> todo;
    for (std::uint64_t i = 0; i < points; ++i)
      if (!done.count(i)) todo.push_back(i);
    Coordinator coordinator(mpi, *spec, options, todo);
    const Coordinator::Tally tally = coordinator.run(out, summary);
    if (!out) throw InputError(options.out_path + ": write failed");
    std::cerr << fmt::format("moesim sweep --mpi: {} ranks, {} threads each: {} points evaluated in {:.1f} s\n", mpi.size, options.jobs,
                             todo.size(), seconds_since(started));
    for (int r = 0; r < mpi.size; ++r)
      std::cerr << fmt::format("  rank {}: {} points, {:.1f} s evaluating\n", r, tally.points[r], tally.busy_seconds[r]);
    return MpiSweep{*spec, summary, {points, todo.size(), done.size()}};
  } catch (const std::exception& e) {
    mpi.abort_all(e.what());
  }
}

}  // namespace moesim
