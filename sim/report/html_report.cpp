#include "sim/report/html_report.h"

#include <map>
#include <sstream>

#include "sim/report/html_assets.h"
#include "sim/report/report.h"
#include "sim/search/sweep.h"

namespace moesim::html {

using nlohmann::json;

namespace {

// The objective a sweep ranked by, from its ok lines: `objective` holds the value of one of the
// metrics (sweep::evaluate_point); time_to_train is the only one that is none of the others.
sweep::Objective objective_of(const std::vector<json>& ok_lines) {
  if (ok_lines.empty()) return sweep::Objective::mfu;
  const json& l = ok_lines.front();
  const double value = l.at("objective").get<double>();
  if (value == l.at("mfu").get<double>()) return sweep::Objective::mfu;
  if (value == l.at("tokens_per_s").get<double>()) return sweep::Objective::tokens_per_s;
  if (value == l.at("params").at("active").get<double>() * l.at("tokens_per_s").get<double>())
    return sweep::Objective::active_params_per_s;
  return sweep::Objective::time_to_train;
}

json indices(const std::vector<json>& lines) {
  json out = json::array();
  for (const json& l : lines) out.push_back(l.at("index"));
  return out;
}

// Inside <script>, "</script" ends the element and "<!--" changes how the rest is parsed. In JSON
// text "<" occurs only inside strings, where "\u003c" stands for it.
std::string script_safe(const std::string& json_text) {
  std::string out;
  for (char c : json_text) {
    if (c == '<')
      out += "\\u003c";
    else
      out += c;
  }
  return out;
}

std::string html_escaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

json sweep_report_data(const std::string& results_path, const std::vector<json>& lines, int top_k) {
  std::vector<json> ok;
  for (const json& l : lines)
    if (l.at("status") == "ok") ok.push_back(l);
  const sweep::Objective objective = objective_of(ok);
  sweep::Summary summary(objective, top_k);
  for (const json& l : lines) summary.add(l);
  return json{{"kind", "sweep"},
              {"source", results_path},
              {"objective", sweep::to_string(objective)},
              {"counts", {{"points", lines.size()}, {"ok", summary.ok}, {"infeasible", summary.infeasible}, {"no_fit", summary.no_fit}}},
              {"points", ok},
              {"ranked", indices(summary.ranked())},
              {"front_mfu_active", indices(summary.pareto_mfu_active())},
              {"front_tokens_memory", indices(summary.pareto_tokens_memory())}};
}

json simulation_report_data(const ModelSpec& model, const LayoutSpec& layout, const HardwareProfile& hw,
                            const sim::SimulationResult& r, const sim::OpLevelResult* op_level) {
  // The timeline is the Chrome trace itself (--trace), so the page and Perfetto show the same tasks.
  std::stringstream trace_text;
  if (op_level) sim::write_op_trace(trace_text, *op_level);
  else sim::write_pipeline_trace(trace_text, r.pipeline);
  const json trace = json::parse(trace_text);
  std::map<std::pair<int, int>, std::string> stream_names;
  for (const json& e : trace.at("traceEvents"))
    if (e.at("ph") == "M" && e.at("name") == "thread_name")
      stream_names[{e.at("pid").get<int>(), e.at("tid").get<int>()}] = e.at("args").at("name").get<std::string>();
  constexpr double ms_per_us = 1e-3;
  json tasks = json::array();
  for (const json& e : trace.at("traceEvents")) {
    if (e.at("ph") != "X") continue;
    const int stage = e.at("pid").get<int>();
    tasks.push_back({{"name", e.at("name")},
                     {"category", e.at("cat")},
                     {"stage", stage},
                     {"stream", stream_names.at({stage, e.at("tid").get<int>()})},
                     {"start_ms", e.at("ts").get<double>() * ms_per_us},
                     {"duration_ms", e.at("dur").get<double>() * ms_per_us}});
  }
  json data = report::simulation_json(model, layout, hw, r);
  data["kind"] = "simulation";
  data["timeline_level"] = op_level ? "operator" : "pass";
  data["timeline"] = tasks;
  return data;
}

json validation_report_data(const std::vector<validate::RunResult>& results, const validate::Summary& summary) {
  json data = validate::to_json(results, summary);
  data["kind"] = "validation";
  return data;
}

void write_report(std::ostream& out, const std::string& title, const json& data) {
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" << html_escaped(title)
      << "</title>\n<style>\n"
      << assets::report_css << "\n</style>\n<script>\n"
      << assets::vega << "\n</script>\n<script>\n"
      << assets::vega_lite << "\n</script>\n<script>\n"
      << assets::vega_embed << "\n</script>\n</head>\n<body>\n<main id=\"report\"></main>\n"
      << "<script type=\"application/json\" id=\"moesim-data\">" << script_safe(data.dump()) << "</script>\n<script>\n"
      << assets::report_js << "\n</script>\n</body>\n</html>\n";
}

}  // namespace moesim::html
