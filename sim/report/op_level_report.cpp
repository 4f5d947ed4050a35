#include "sim/report/op_level_report.h"

#include <fmt/format.h>
#include <fmt/ostream.h>

namespace moesim::report {
namespace {

nlohmann::json breakdown_json(const sim::TimeBreakdown& b) {
  return {{"compute_s", b.compute},     {"exposed_tp_s", b.exposed_tp}, {"exposed_ep_s", b.exposed_ep},
          {"exposed_cp_s", b.exposed_cp}, {"exposed_pp_s", b.exposed_pp}, {"exposed_dp_s", b.exposed_dp},
          {"exposed_swap_s", b.exposed_swap}, {"bubble_s", b.bubble},     {"optimizer_s", b.optimizer}};
}

}  // namespace

void print_op_level(std::ostream& out, const sim::OpLevelResult& r) {
  const sim::TimeBreakdown& o = r.result.breakdown;
  const sim::TimeBreakdown& p = r.pass_level.breakdown;
  fmt::print(out, "\noperator level ({} tasks on {} streams)      op-level   pass-level\n", r.engine.task_count(),
             r.engine.stream_count());
  const auto row = [&](const char* name, double a, double b) { fmt::print(out, "  {:<38} {:>10.4f} {:>10.4f}\n", name, a, b); };
  row("iteration time (s)", r.result.iteration_time, r.pass_level.iteration_time);
  fmt::print(out, "  {:<38} {:>9.1f}% {:>9.1f}%\n", "MFU", 100 * r.result.mfu, 100 * r.pass_level.mfu);
  row("compute, critical stage (s)", o.compute, p.compute);
  row("exposed TP (s)", o.exposed_tp, p.exposed_tp);
  row("exposed EP (s)", o.exposed_ep, p.exposed_ep);
  row("exposed CP (s)", o.exposed_cp, p.exposed_cp);
  row("exposed PP (s)", o.exposed_pp, p.exposed_pp);
  row("exposed DP (s)", o.exposed_dp, p.exposed_dp);
  row("exposed swap (s)", o.exposed_swap, p.exposed_swap);
  row("bubble (s)", o.bubble, p.bubble);
  row("optimizer (s)", o.optimizer, p.optimizer);
}

nlohmann::json op_level_json(const sim::OpLevelResult& r) {
  return {{"iteration_time_s", r.result.iteration_time},
          {"mfu", r.result.mfu},
          {"critical_stage", r.result.critical_stage},
          {"time_breakdown", breakdown_json(r.result.breakdown)},
          {"tasks", r.engine.task_count()},
          {"pass_level",
           {{"iteration_time_s", r.pass_level.iteration_time},
            {"mfu", r.pass_level.mfu},
            {"time_breakdown", breakdown_json(r.pass_level.breakdown)}}}};
}

}  // namespace moesim::report
