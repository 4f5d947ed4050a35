#include "costmodels/layout.h"

#include <initializer_list>
#include <numeric>
#include <stdexcept>

namespace moesim {

namespace {
std::string str(long long v) { return std::to_string(v); }
}  // namespace

std::optional<std::string> complete_and_check_layout(const ModelSpec& model, LayoutSpec& l) {
  for (auto [name, v] : {std::pair{"tp", l.tp}, {"pp", l.pp}, {"vpp", l.vpp}, {"ep", l.ep}, {"etp", l.etp},
                         {"cp", l.cp}, {"micro_batch", l.micro_batch}, {"devices", l.devices}}) {
    if (v < 1) return std::string(name) + " must be >= 1, got " + str(v);
  }
  // Products of up to three sizes (each < 2^31) can overflow even 64 bits: stop at the first partial
  // product beyond the device count, which cannot divide it anyway.
  auto product = [&](std::initializer_list<int> sizes) {
    long long p = 1;
    for (int v : sizes) {
      p *= v;
      if (p > l.devices) return p;
    }
    return p;
  };
  const long long attention_group = product({l.tp, l.cp, l.pp});
  if (l.devices % attention_group != 0)
    return "devices " + str(l.devices) + " is not a multiple of tp*cp*pp = " + str(attention_group);
  const int derived_dp = static_cast<int>(l.devices / attention_group);
  if (l.dp == 0) l.dp = derived_dp;
  if (l.dp != derived_dp)
    return "tp*cp*dp*pp = " + str(attention_group * l.dp) + " does not equal devices " + str(l.devices);
  const long long expert_group = product({l.etp, l.ep, l.pp});
  if (l.devices % expert_group != 0)
    return "devices " + str(l.devices) + " is not a multiple of etp*ep*pp = " + str(expert_group);
  if (model.attention.heads % l.tp != 0)
    return "attention heads " + str(model.attention.heads) + " not divisible by tp " + str(l.tp);
  // MLA's and DeepSeek-V4's key-value projections are replicated over TP, not split by head.
  if (model.attention.type != AttentionType::mla && model.attention.type != AttentionType::hybrid_compressed &&
      model.attention.kv_heads % l.tp != 0 &&
      l.tp % model.attention.kv_heads != 0)
    return "kv_heads " + str(model.attention.kv_heads) + " and tp " + str(l.tp) + " do not divide each other";
  if (model.moe) {
    if (model.moe->experts % l.ep != 0)
      return "experts " + str(model.moe->experts) + " not divisible by ep " + str(l.ep);
    if (static_cast<long>(model.moe->expert_intermediate) % l.etp != 0)
      return "expert_intermediate not divisible by etp " + str(l.etp);
  } else if (l.ep > 1) {
    return "ep " + str(l.ep) + " > 1 for a dense model";
  }
  if (l.zero_shard_dp > 0 && (l.zero_stage < 3 || (l.dp * l.cp) % l.zero_shard_dp != 0))
    return "zero_shard_dp " + str(l.zero_shard_dp) + " needs zero_stage 3 and must divide dp*cp = " + str(l.dp * l.cp);
  if (!l.zero_reshard_after_forward && l.zero_stage < 3) return "zero_reshard_after_forward false needs zero_stage 3";
  if (l.seq_len <= 0) l.seq_len = model.seq_len;
  if (l.seq_len <= 0) return "seq_len must be > 0 (set it in the layout or the model)";
  if (l.seq_len % l.cp != 0) return "seq_len " + str(l.seq_len) + " not divisible by cp " + str(l.cp);
  if (l.global_batch <= 0) return "global_batch must be > 0 sequences";
  const long per_step = static_cast<long>(l.dp) * l.micro_batch;
  if (l.global_batch % per_step != 0)
    return "global_batch " + str(l.global_batch) + " is not a multiple of dp*micro_batch = " + str(per_step);
  const long long virtual_stages = static_cast<long long>(l.pp) * (l.schedule == ScheduleKind::dualpipe ? 1 : l.vpp);
  // With an explicit split, the first and last virtual stages may hold only the embedding or the loss
  // (Megatron's account_for_embedding/loss_in_pipeline_split), checked with pipeline_layers below.
  if (l.pipeline_layers.empty() && virtual_stages > static_cast<long long>(model.layers) + model.mtp_layers)
    return "pp*vpp = " + str(virtual_stages) + " stages exceed the " + str(model.layers) + " layers";
  // Megatron-LM interleaves model chunks across pipeline stages; with one stage there is nothing to
  // interleave (it requires pipeline-model-parallel size > 1 for a virtual pipeline).
  if (l.vpp > 1 && l.pp == 1) return "vpp " + str(l.vpp) + " needs pp > 1";
  // The schedules' own preconditions (sim/engine/schedule.cpp build_schedule), checked here so that a layout
  // that passes is one the simulation can run.
  if (l.schedule == ScheduleKind::interleaved && l.microbatches() % l.pp != 0)
    return "interleaved schedule needs microbatches (" + str(l.microbatches()) + ") divisible by pp " + str(l.pp);
  if (l.schedule == ScheduleKind::dualpipe &&
      (l.microbatches() % 2 != 0 || l.pp % 2 != 0 || l.microbatches() < 2LL * l.pp))
    return "dualpipe needs an even pp and an even number of microbatches (" + str(l.microbatches()) + ") >= 2*pp";
  // The simulation keeps one record per (stage, chunk, microbatch, pass): bound it so that a huge
  // batch on few devices is refused instead of exhausting memory.
  const long long pipeline_passes =
      static_cast<long long>(l.pp) * (l.schedule == ScheduleKind::dualpipe ? 2 : l.vpp) * l.microbatches();
  if (pipeline_passes > max_pipeline_passes)
    return "pp*chunks*microbatches = " + str(pipeline_passes) + " exceeds the " + str(max_pipeline_passes) +
           " pipeline passes one iteration can simulate (raise micro_batch or dp)";
  if (!l.pipeline_layers.empty()) {
    if (static_cast<int>(l.pipeline_layers.size()) != virtual_stages)
      return "pipeline_layers has " + str(static_cast<long>(l.pipeline_layers.size())) + " entries, expected pp*vpp = " +
             str(virtual_stages);
    const long long sum = std::accumulate(l.pipeline_layers.begin(), l.pipeline_layers.end(), 0LL);
    if (sum != model.layers) return "pipeline_layers sum to " + str(sum) + ", expected layers " + str(model.layers);
    for (std::size_t i = 1; i + 1 < l.pipeline_layers.size(); ++i)
      if (l.pipeline_layers[i] == 0)
        return "pipeline_layers[" + str(static_cast<long>(i)) +
               "] is 0: only the first and last virtual stages may hold no decoder layer (the embedding or the loss alone)";
  }
  return std::nullopt;
}

PipelinePlan partition_layers(const ModelSpec& model, const LayoutSpec& layout) {
  PipelinePlan plan;
  plan.stages = layout.pp;
  plan.bidirectional = layout.schedule == ScheduleKind::dualpipe;
  plan.chunks = plan.bidirectional ? 2 : layout.vpp;
  const int n_parts = plan.bidirectional ? layout.pp : layout.pp * layout.vpp;
  std::vector<int> counts;
  if (!layout.pipeline_layers.empty()) {
    counts = layout.pipeline_layers;
  } else {
    // In 64 bits: layers + n_parts and per * n_parts can pass 2^31 with ~2e9 layers.
    const int per = static_cast<int>((static_cast<long long>(model.layers) + n_parts - 1) / n_parts);
    counts.assign(n_parts, per);
    int surplus = static_cast<int>(static_cast<long long>(per) * n_parts - model.layers);
    // Take layers from the last part (it also runs the head, loss and MTP), then the first (embedding),
    // alternating, then inwards (Llama 3 405B: one fewer layer on the first and last stage).
    for (int i = 0; surplus > 0; ++i) {
      const int idx = (i % 2 == 0) ? n_parts - 1 - i / 2 : i / 2;
      const int take = std::min(surplus, counts[idx]);
      counts[idx] -= take > 0 ? 1 : 0;
      surplus -= take > 0 ? 1 : 0;
      if (i > 4 * n_parts) throw std::invalid_argument("cannot split layers over pipeline stages");
    }
  }
  int next = 0;
  plan.parts.reserve(n_parts);
  for (int i = 0; i < n_parts; ++i) {
    ChunkContent c;
    c.first_layer = next;
    c.layers = counts[i];
    next += counts[i];
    c.embedding = i == 0;
    c.lm_head = i == n_parts - 1;
    c.mtp_layers = c.lm_head ? model.mtp_layers : 0;
    plan.parts.push_back(c);
  }
  return plan;
}

}  // namespace moesim
