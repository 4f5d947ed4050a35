#pragma once
// Self-contained interactive HTML reports: one page with Vega, Vega-Lite, vega-embed and the page
// script (web/report.js) inlined, so it opens offline and can be mailed. C++ gathers the data; the
// page script draws the charts from it. The page keeps each chart's Vega view in
// window.moesimViews[name] (the browser test counts their marks).
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "sim/engine/op_sim.h"
#include "sim/engine/simulate.h"
#include "sim/validation/validate.h"

namespace moesim::html {

// Sweep results file (sweep::result_json lines): every point for the Pareto charts, the fronts, and
// the top `top_k` by the objective for the ranked table and the breakdowns.
nlohmann::json sweep_report_data(const std::string& results_path, const std::vector<nlohmann::json>& lines, int top_k);

// One simulation: report::simulation_json plus the timeline (the tasks of the Chrome trace): every pass
// of every stage, or with `op_level` (simulate --op-level) every operator on its stream.
nlohmann::json simulation_report_data(const ModelSpec& model, const LayoutSpec& layout, const HardwareProfile& hw,
                                      const sim::SimulationResult& r, const sim::OpLevelResult* op_level = nullptr);

// Predicted against measured for every scored run (validate::to_json).
nlohmann::json validation_report_data(const std::vector<validate::RunResult>& results, const validate::Summary& summary);

// The page; `data.kind` (sweep | simulation | validation) selects what the page script draws.
void write_report(std::ostream& out, const std::string& title, const nlohmann::json& data);

}  // namespace moesim::html
