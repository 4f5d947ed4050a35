#include "sim/report/report.h"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include "sim/io/specs_io.h"

namespace moesim::report {

using nlohmann::json;

json layout_json(const LayoutSpec& l) {
  return json{{"devices", l.devices},
              {"tp", l.tp},
              {"pp", l.pp},
              {"vpp", l.vpp},
              {"ep", l.ep},
              {"etp", l.etp},
              {"cp", l.cp},
              {"dp", l.dp},
              {"expert_dp", l.expert_dp()},
              {"sequence_parallel", l.sequence_parallel},
              {"micro_batch", l.micro_batch},
              {"global_batch", l.global_batch},
              {"microbatches", l.microbatches()},
              {"seq_len", l.seq_len},
              {"recompute", io::to_string(l.recompute)},
              {"recompute_num_layers", l.recompute_num_layers},
              {"gradient_accumulation_fusion", l.gradient_accumulation_fusion},
              {"optimizer_swap", l.optimizer_swap},
              {"moe_grouped_gemm", l.moe_grouped_gemm},
              {"moe_dispatcher", io::to_string(l.moe_dispatcher)},
              {"moe_capacity_factor", l.moe_capacity_factor},
              {"moe_pad_to_capacity", l.moe_pad_to_capacity},
              {"moe_permutation_async_comm", l.moe_permutation_async_comm},
              {"recompute_modules", l.recompute == Recompute::selective ? json(io::recompute_module_names(l.recompute_modules)) : json::array()},
              {"cross_entropy", io::to_string(l.cross_entropy)},
              {"adam_moments", io::float_type_name(l.adam_moment_bytes)},
              {"main_grads", io::float_type_name(l.main_grad_bytes)},
              {"fp8_cached_inputs", l.fp8_cached_inputs},
              {"schedule", io::to_string(l.schedule)},
              {"distributed_optimizer", l.distributed_optimizer},
              {"precision", io::to_string(l.precision)},
              {"fp8_dispatch", l.fp8_dispatch},
              {"activation_swap", l.activation_swap},
              {"distribute_saved_activations", l.distribute_saved_activations},
              {"loss_parallel", l.loss_parallel},
              {"master_weights", l.master_weights},
              {"sp_saves_gathered_inputs", l.sp_saves_gathered_inputs},
              {"embedding_tp_replicated", l.embedding_tp_replicated},
              {"zero_no_sync", l.zero_no_sync},
              {"ep_all_to_all", l.hierarchical_ep_all_to_all ? "hierarchical" : "pairwise"},
              {"overlap",
               {{"ep_all_to_all", l.overlap.ep_all_to_all},
                {"tp_comm", l.overlap.tp_comm},
                {"dp_grad_reduce", l.overlap.dp_grad_reduce},
                {"dp_param_gather", l.overlap.dp_param_gather},
                {"pp_p2p", l.overlap.pp_p2p},
                {"delay_wgrad", l.overlap.delay_wgrad}}}};
}

json simulation_json(const ModelSpec& m, const LayoutSpec& l, const HardwareProfile& hw, const sim::SimulationResult& r) {
  json stages = json::array();
  for (const auto& s : r.memory) {
    stages.push_back({{"stage", s.stage},
                      {"params", s.params},
                      {"weights", s.weights},
                      {"gradients", s.gradients},
                      {"optimizer", s.optimizer},
                      {"activations", s.activations},
                      {"buffers", s.buffers},
                      {"allocator_cache", s.allocator_cache},
                      {"reserve", s.reserve},
                      {"total", s.total()}});
  }
  const auto& b = r.breakdown;
  return json{
      {"model", m.name},
      {"hardware", hw.name},
      {"layout", layout_json(l)},
      {"params",
       {{"total", r.params.total()},
        {"active", r.params.active()},
        {"active_with_embedding", r.params.active_with_embedding()},
        {"mtp", r.params.mtp},
        {"breakdown",
         {{"embedding", r.params.embedding},
          {"lm_head", r.params.lm_head},
          {"attention", r.params.attention},
          {"dense_ffn", r.params.dense_ffn},
          {"router", r.params.router},
          {"shared_experts", r.params.shared_experts},
          {"routed_experts", r.params.routed_experts},
          {"norms", r.params.norms}}}}},
      {"flops_per_token",
       {{"model", r.flops_per_token.training},
        {"hardware", r.hardware_flops_per_token},
        {"forward", r.flops_per_token.forward},
        {"attention_core_forward", r.flops_per_token.attention_core},
        {"attention_causal_halved", false},
        {"convention", "PaLM App. B: matmul FLOPs x3 (fwd+bwd), attention s^2 not halved; hardware adds recompute"}}},
      {"iteration_time_s", r.iteration_time},
      {"tokens_per_s", r.tokens_per_s},
      {"mfu", r.mfu},
      {"hfu", r.hfu},
      {"tflops_per_device", r.tflops_per_device},
      {"time_breakdown",
       {{"compute_s", b.compute},
        {"exposed_comm_s", b.exposed_tp + b.exposed_ep + b.exposed_cp + b.exposed_pp + b.exposed_dp + b.exposed_swap},
        {"exposed_tp_s", b.exposed_tp},
        {"exposed_ep_s", b.exposed_ep},
        {"exposed_cp_s", b.exposed_cp},
        {"exposed_pp_s", b.exposed_pp},
        {"exposed_dp_s", b.exposed_dp},
        {"exposed_swap_s", b.exposed_swap},
        {"bubble_s", b.bubble},
        {"optimizer_s", b.optimizer},
        {"critical_stage", r.critical_stage}}},
      {"pipeline_bubble_fraction", r.bubble_fraction},
      {"stage_busy_fraction", r.stage_busy_fraction},
      {"expert_imbalance", r.imbalance},
      {"memory", {{"stages", stages}, {"peak_bytes", r.peak_memory}, {"capacity_bytes", r.capacity}, {"fits", r.fits}}},
      {"warnings", r.warnings}};
}

void print_simulation(std::ostream& out, const ModelSpec& m, const LayoutSpec& l, const HardwareProfile& hw,
                      const sim::SimulationResult& r) {
  const auto& b = r.breakdown;
  fmt::print(out, "model      {}  ({:.1f}B total, {:.2f}B active per token, +{:.1f}B MTP)\n", m.name,
             r.params.total() / 1e9, r.params.active() / 1e9, r.params.mtp / 1e9);
  fmt::print(out, "hardware   {}  x {} devices\n", hw.name, l.devices);
  fmt::print(out,
             "layout     tp {} pp {} vpp {} ep {} etp {} cp {} dp {} (expert-dp {})  mb {} x {} microbatches, gbs {} x "
             "seq {}\n",
             l.tp, l.pp, l.vpp, l.ep, l.etp, l.cp, l.dp, l.expert_dp(), l.micro_batch, l.microbatches(), l.global_batch,
             l.seq_len);
  fmt::print(out, "           schedule {}, recompute {}, {}, EP all-to-all {}{}\n", io::to_string(l.schedule),
             io::to_string(l.recompute), io::to_string(l.precision),
             l.moe_dispatcher == MoeDispatcher::flex ? "deduplicated (flex)"
             : l.hierarchical_ep_all_to_all          ? "hierarchical"
                                                     : "pairwise",
             l.overlap.ep_all_to_all ? " (overlapped)" : "");
  // Sliding layers count the keys of their window (costmodels/attention_span.h).
  std::string window = m.attention.sliding_window > 0
                           ? fmt::format("; sliding layers {} keys per query", m.attention.sliding_window)
                           : "";
  // DSA layers: the indexer scores all s keys, the core attends to the top k (costmodels/sparse_attention.h);
  // DeepSeek-V4's layers add compressed entries to the window (costmodels/compressed_attention.h).
  const CompressedAttentionSpec& c = m.attention.compressed;
  if (m.attention.type == AttentionType::hybrid_compressed)
    window += fmt::format("; compressed layers: indexer over s/{} keys, top {} of them, or all s/{}", c.csa_ratio,
                          m.attention.sparse.topk, c.hca_ratio);
  else if (m.attention.sparse.active())
    window += fmt::format("; DSA indexer over s keys, core over the top {}", m.attention.sparse.topk);
  fmt::print(out, "FLOPs      {:.1f} GFLOP/token model, {:.1f} hardware (attention s^2 not causally halved{})\n",
             r.flops_per_token.training / 1e9, r.hardware_flops_per_token / 1e9, window);
  fmt::print(out, "\niteration  {:.3f} s   tokens/s {:.4g}   MFU {:.1f}%   HFU {:.1f}%   {:.1f} TFLOP/s/device\n",
             r.iteration_time, r.tokens_per_s, 100 * r.mfu, 100 * r.hfu, r.tflops_per_device);
  auto pct = [&](seconds s) { return 100.0 * s / r.iteration_time; };
  fmt::print(out, "breakdown (stage {}):\n", r.critical_stage);
  for (auto [name, v] : {std::pair{"compute", b.compute}, {"exposed TP comm", b.exposed_tp}, {"exposed EP comm", b.exposed_ep},
                         {"exposed CP comm", b.exposed_cp}, {"exposed PP comm", b.exposed_pp},
                         {"exposed DP comm", b.exposed_dp}, {"exposed swap", b.exposed_swap}, {"pipeline bubble", b.bubble}, {"optimizer", b.optimizer}}) {
    fmt::print(out, "  {:<18} {:9.3f} s  {:5.1f}%\n", name, v, pct(v));
  }
  fmt::print(out, "  expert imbalance   {:.3f}\n", r.imbalance);
  fmt::print(out, "\nmemory per device (GB)\n  {:>5} {:>8} {:>8} {:>9} {:>11} {:>8} {:>8} {:>8} {:>8}\n", "stage",
             "weights", "grads", "optimizer", "activations", "buffers", "reserve", "total", "+cache");
  for (const auto& s : r.memory) {
    fmt::print(out, "  {:>5} {:8.2f} {:8.2f} {:9.2f} {:11.2f} {:8.2f} {:8.2f} {:8.2f} {:8.2f}\n", s.stage,
               s.weights / 1e9, s.gradients / 1e9, s.optimizer / 1e9, s.activations / 1e9, s.buffers / 1e9,
               s.reserve / 1e9, s.total() / 1e9, s.allocator_cache / 1e9);
  }
  fmt::print(out, "  peak {:.2f} GB of {:.2f} GB: {}\n", r.peak_memory / 1e9, r.capacity / 1e9,
             r.fits ? "fits" : "DOES NOT FIT");
  fmt::print(out, "  (+cache: the caching allocator's cached free blocks beyond the total where the device has room;\n"
                  "   freed when an allocation would fail, so not part of whether it fits)\n");
  for (const auto& w : r.warnings) fmt::print(out, "warning: {}\n", w);
}

}  // namespace moesim::report
