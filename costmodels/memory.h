#pragma once
// Memory per device of each pipeline stage: weights, gradients, optimizer states, activations,
// communication buffers and a framework reserve. Activations come from the saved tensors of the same
// operator graph that drives time.
#include <vector>

#include "costmodels/graph.h"
#include "costmodels/layout.h"
#include "costmodels/specs.h"

namespace moesim::memory {

// Parameters one device of a stage holds, split by how they are sharded for the optimizer.
struct DeviceParams {
  count dense = 0;   // replicated over DP (x CP)
  count expert = 0;  // replicated over expert-DP
  count total() const { return dense + expert; }
};

DeviceParams chunk_params(const ModelSpec& model, const LayoutSpec& layout, const ChunkContent& chunk);
DeviceParams stage_params(const ModelSpec& model, const LayoutSpec& layout, const PipelinePlan& plan, int stage);

// Activation bytes one microbatch leaves saved on a device for one model chunk.
bytes chunk_activation_bytes(const ModelSpec& model, const LayoutSpec& layout, const graph::ModelGraphs& graphs,
                             const ChunkContent& chunk, double imbalance);

struct StageMemory {
  int stage = 0;
  count params = 0;
  bytes weights = 0, gradients = 0, optimizer = 0, activations = 0, buffers = 0, reserve = 0;
  bytes total() const { return weights + gradients + optimizer + activations + buffers + reserve; }
};

// `inflight` is the peak number of model chunks (microbatch x chunk forward passes) whose backward has
// not finished, per stage, as the pipeline schedule keeps them (1F1B: p - stage on stage `stage`).
std::vector<StageMemory> stage_memory(const ModelSpec& model, const LayoutSpec& layout, const PipelinePlan& plan,
                                      const graph::ModelGraphs& graphs, const HardwareProfile& hw,
                                      const std::vector<double>& inflight, double imbalance);

// Bytes per parameter (Megatron-LM distributed optimizer guide; Rajbhandari et al. 2020 ZeRO §3):
// bf16 weights 2, main gradients 4 (fp32; the layout's main_grad_bytes), Adam fp32 master weights
// 4 + m + v (4 each, or the layout's adam_moment_bytes).
constexpr double weight_bytes_per_param = 2;
constexpr double master_weight_bytes_per_param = 4;  // 0 without master weights (layout)
inline double grad_bytes_per_param(const LayoutSpec& layout) { return layout.main_grad_bytes; }
// FSDP2 accumulates unsharded gradients in its reduce dtype, fp32 in every framework modelled here
// (torchtitan mixed_precision_reduce float32, KempnerForge default_mp_policy reduce_dtype float32).
constexpr double fsdp_reduce_bytes_per_param = 4;
inline double optimizer_bytes_per_param(const LayoutSpec& layout) {
  return (layout.master_weights ? master_weight_bytes_per_param : 0.0) + 2.0 * layout.adam_moment_bytes;
}

}  // namespace moesim::memory
