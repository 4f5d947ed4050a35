#include "sim/engine/invariants.h"

#include <fmt/format.h>

#include <cmath>

namespace moesim::sim {

std::vector<std::string> invariant_violations(const SimulationResult& r) {
  std::vector<std::string> out;
  auto non_negative = [&](const std::string& name, double v) {
    if (!std::isfinite(v) || v < 0) out.push_back(fmt::format("{} = {} (expected finite, >= 0)", name, v));
  };
  auto positive = [&](const std::string& name, double v) {
    if (!std::isfinite(v) || v <= 0) out.push_back(fmt::format("{} = {} (expected finite, > 0)", name, v));
  };
  auto fraction = [&](const std::string& name, double v, double ceiling) {
    if (!std::isfinite(v) || v <= 0 || v > ceiling)
      out.push_back(fmt::format("{} = {} (expected in (0, {}])", name, v, ceiling));
  };
  positive("iteration_time", r.iteration_time);
  positive("tokens_per_iteration", r.tokens_per_iteration);
  positive("tokens_per_s", r.tokens_per_s);
  positive("tflops_per_device", r.tflops_per_device);
  fraction("mfu", r.mfu, r.mfu_ceiling);
  // HFU counts the attention core at full s^2 (PaLM Appendix B) while a causal kernel runs about half
  // of it, so at long sequences with recomputation it can pass 1; it must still be a finite positive.
  positive("hfu", r.hfu);
  positive("params.total", r.params.total());
  non_negative("bubble_fraction", r.bubble_fraction);
  if (r.bubble_fraction >= 1) out.push_back(fmt::format("bubble_fraction = {} (expected < 1)", r.bubble_fraction));
  positive("imbalance", r.imbalance);
  const TimeBreakdown& b = r.breakdown;
  for (const auto& [name, v] : {std::pair{"compute", b.compute}, {"exposed_tp", b.exposed_tp}, {"exposed_ep", b.exposed_ep},
                                {"exposed_cp", b.exposed_cp}, {"exposed_pp", b.exposed_pp}, {"exposed_dp", b.exposed_dp},
                                {"exposed_swap", b.exposed_swap}, {"bubble", b.bubble}, {"optimizer", b.optimizer}})
    non_negative(std::string("breakdown.") + name, v);
  for (const memory::StageMemory& m : r.memory) {
    const std::string stage = fmt::format("memory[stage {}].", m.stage);
    for (const auto& [name, v] : {std::pair{"weights", m.weights}, {"gradients", m.gradients}, {"optimizer", m.optimizer},
                                  {"activations", m.activations}, {"buffers", m.buffers},
                                  {"allocator_cache", m.allocator_cache}, {"reserve", m.reserve}})
      non_negative(stage + name, v);
  }
  positive("peak_memory", r.peak_memory);
  for (size_t s = 0; s < r.stage_busy_fraction.size(); ++s) {
    const double f = r.stage_busy_fraction[s];
    if (!std::isfinite(f) || f < 0 || f > 1 + 1e-9) out.push_back(fmt::format("stage_busy_fraction[{}] = {}", s, f));
  }
  return out;
}

}  // namespace moesim::sim
