#pragma once
// Layout rules (Megatron-Core with MoE parallel folding, Liu et al. 2025 arXiv 2504.14960): attention
// uses TP x CP x DP x PP, experts use ETP x EP x expert-DP x PP over the same devices. And the split of
// layers over pipeline stages.
#include <optional>
#include <string>
#include <vector>

#include "costmodels/specs.h"

namespace moesim {

// The most (stage, chunk, microbatch) forward passes one simulated iteration may hold: about 20 us
// and 0.5 KB each, so a few seconds and ~150 MB at the limit; the largest published run
// (validation/published_runs.json, Narayanan 2021 530B on 560 GPUs) has 117,600.
constexpr long long max_pipeline_passes = 1 << 18;

// Fills derived fields (dp) and returns the first rule the layout breaks, naming the product that
// fails, or nothing when the layout can run.
std::optional<std::string> complete_and_check_layout(const ModelSpec& model, LayoutSpec& layout);

// What one virtual pipeline stage (a model chunk) holds.
struct ChunkContent {
  int first_layer = 0;
  int layers = 0;          // decoder layers
  bool embedding = false;  // input embedding (first chunk)
  bool lm_head = false;    // final norm, output head and loss (last chunk)
  int mtp_layers = 0;      // MTP modules sit with the output head (DeepSeek-V3 §3.2.1)
};

struct PipelinePlan {
  int stages = 1;
  int chunks = 1;  // model chunks per device (vpp; 2 for DualPipe)
  bool bidirectional = false;  // DualPipe: chunk 1 of stage s holds part p-1-s (a second copy)
  std::vector<ChunkContent> parts;  // in model order

  // Inline: the memory model calls it per stage and chunk of every layout a sweep screens.
  const ChunkContent& at(int stage, int chunk) const {
    if (bidirectional) return parts[chunk == 0 ? stage : stages - 1 - stage];
    return parts[static_cast<size_t>(chunk) * stages + stage];  // Megatron interleaving: chunk-major
  }
};

// Even split where the layers divide; otherwise Megatron's uneven split: the first and last parts
// give up layers (they also hold the embedding and the output head), or an explicit list.
PipelinePlan partition_layers(const ModelSpec& model, const LayoutSpec& layout);

}  // namespace moesim
