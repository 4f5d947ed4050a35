// HTML reports: the page carries its data safely inside <script>, the sweep report recovers the
// sweep's objective and fronts from the result lines, and the sweep lines carry the breakdowns the
// report draws. (The charts themselves are checked in a browser: tests/cli/html_reports.sh.)
#include <catch2/catch.hpp>
#include <sstream>

#include "sim/report/html_report.h"
#include "sim/search/sweep.h"

using namespace moesim;
using nlohmann::json;

namespace {

int occurrences(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::vector<json> small_sweep_lines() {
  const sweep::SweepSpec spec = sweep::load_spec(std::string(MOESIM_SOURCE_DIR) + "/tests/data/sweep-small.json");
  std::vector<json> lines;
  for (std::uint64_t i = 0; i < sweep::point_count(spec); ++i) lines.push_back(sweep::result_json(spec, sweep::evaluate_point(spec, i)));
  return lines;
}

}  // namespace

TEST_CASE("report data cannot close its script element, and the page loads nothing from elsewhere", "[html]") {
  const json data = {{"kind", "validation"}, {"note", "</script><script>alert(1)</script>"}};
  std::ostringstream page;
  html::write_report(page, "a <b> & \"c\"", data);
  const std::string html = page.str();
  // Five inlined scripts (Vega, Vega-Lite, vega-embed, the data, the page script), each closed once.
  CHECK(occurrences(html, "</script>") == 5);
  CHECK(occurrences(html, "<script>") == 4);
  CHECK(occurrences(html, "<script type=\"application/json\" id=\"moesim-data\">") == 1);
  CHECK(occurrences(html, "<script") == 5);  // none with a src
  CHECK(html.find("<title>a &lt;b&gt; &amp; &quot;c&quot;</title>") != std::string::npos);
  const auto start = html.find("id=\"moesim-data\">") + std::string("id=\"moesim-data\">").size();
  CHECK(json::parse(html.substr(start, html.find("</script>", start) - start)) == data);
}

TEST_CASE("sweep lines carry the time breakdown by kind and the fullest stage's memory", "[html][sweep]") {
  for (const json& l : small_sweep_lines()) {
    if (l.at("status") != "ok") continue;
    const json& b = l.at("breakdown");
    const double exposed = b.at("exposed_tp_s").get<double>() + b.at("exposed_ep_s").get<double>() +
                           b.at("exposed_cp_s").get<double>() + b.at("exposed_pp_s").get<double>() +
                           b.at("exposed_dp_s").get<double>();
    CHECK(exposed == Approx(b.at("exposed_comm_s").get<double>()));
    const json& m = l.at("memory");
    const double total = m.at("weights").get<double>() + m.at("gradients").get<double>() + m.at("optimizer").get<double>() +
                         m.at("activations").get<double>() + m.at("buffers").get<double>() + m.at("reserve").get<double>();
    CHECK(total == Approx(l.at("peak_memory_bytes").get<double>()));
    CHECK(m.at("capacity").get<double>() >= total);  // the point fits (memory_margin 0.1)
  }
}

TEST_CASE("the sweep report finds the objective, the ranking and the fronts from the lines", "[html][sweep]") {
  const std::vector<json> lines = small_sweep_lines();
  const json data = html::sweep_report_data("results.jsonl", lines, 3);
  CHECK(data.at("objective") == "tokens_per_s");  // tests/data/sweep-small.json
  sweep::Summary summary(sweep::Objective::tokens_per_s, 3);
  for (const json& l : lines) summary.add(l);
  REQUIRE(data.at("ranked").size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(data.at("ranked")[i] == summary.ranked()[i].at("index"));
  CHECK(data.at("points").size() == summary.ok);
  CHECK(data.at("front_mfu_active").size() == summary.pareto_mfu_active().size());
  CHECK(data.at("counts").at("points") == lines.size());

  // The other objectives, as the sweep would have written them.
  std::vector<json> by_mfu = lines, by_time = lines;
  for (json& l : by_mfu)
    if (l.at("status") == "ok") l["objective"] = l.at("mfu");
  for (json& l : by_time)
    if (l.at("status") == "ok") l["objective"] = 1e12 / l.at("tokens_per_s").get<double>();
  CHECK(html::sweep_report_data("results.jsonl", by_mfu, 3).at("objective") == "mfu");
  const json by_time_data = html::sweep_report_data("results.jsonl", by_time, 3);
  CHECK(by_time_data.at("objective") == "time_to_train");
  CHECK(by_time_data.at("ranked")[0] == data.at("ranked")[0]);  // least time = most tokens/s
}
