#pragma once
// The scripts and style inlined into every HTML report, read from web/ at configure time
// (CMakeLists.txt generates their definitions): Vega, Vega-Lite and vega-embed from npm, and the
// page script that draws moesim's charts.
#include <string_view>

namespace moesim::html::assets {

extern const std::string_view vega, vega_lite, vega_embed, report_js, report_css;

}  // namespace moesim::html::assets
