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
  // What the step allocates and frees again: activations, transient and pipeline buffers, and the
  // unsharded copies of ZeRO-3 states (gathered weights, unsharded gradients). The rest is allocated
  // once and stays.
  bytes per_step = 0;
  // The caching allocator's free blocks at the peak (allocator_cache_bytes): in the allocator's
  // reserved memory, not in its allocated memory, and not in total(): the allocator frees them and
  // retries when a cudaMalloc fails, so they never decide whether a layout fits.
  bytes allocator_cache = 0;
  // Live tensors at the peak (torch.cuda.max_memory_allocated).
  bytes allocated() const { return weights + gradients + optimizer + activations + buffers; }
  // What the allocator holds from the device at the peak where the device has room for its cache
  // (torch.cuda.max_memory_reserved).
  bytes reserved() const { return allocated() + allocator_cache; }
  // What the device must give: the live tensors and the memory outside the allocator.
  bytes total() const { return allocated() + reserve; }
};

// PyTorch's CUDA caching allocator (c10/cuda/CUDACachingAllocator.cpp; PyTorch docs "CUDA semantics:
// memory management") and torch_npu's NPUCachingAllocator, a port of the same design, keep every
// freed block cached for reuse and return it to the device only on empty_cache() or when a cudaMalloc
// fails. A cached block serves a later request of its size or smaller (split off), but blocks of
// different segments are never merged (with expandable_segments free neighbours merge, but a free
// block between two live ones still serves only requests that fit it), so the blocks a step's
// allocate/free churn leaves behind (activations and transients of many sizes, freed in another order
// than allocated) are reserved but too small or too scattered for the next large request, which gets
// new memory. The share of the churned bytes left so is not derived here: it is the profile's
// allocator_cache_share, fitted to measured max_memory_reserved peaks (hw_profiles/*.json say on which
// runs). When a cudaMalloc fails the allocator releases its cached blocks and retries (malloc:
// release_cached_blocks, counted in num_alloc_retries), so the cache fills only memory the device has
// spare. Block rounding (512 B; 2 MiB for blocks over 10 MiB) costs under 2 MiB a live block, under
// 0.3 GB for the hundreds of live blocks of the runs here, and is not counted.
inline bytes allocator_cache_bytes(bytes per_step, double cache_share) { return cache_share * per_step; }

// `inflight` is the peak number of model chunks (microbatch x chunk forward passes) whose backward has
// not finished, per stage, as the pipeline schedule keeps them (1F1B: p - stage on stage `stage`).
std::vector<StageMemory> stage_memory(const ModelSpec& model, const LayoutSpec& layout, const PipelinePlan& plan,
                                      const graph::ModelGraphs& graphs, const HardwareProfile& hw,
                                      const std::vector<double>& inflight, double imbalance);
// The largest op working sets stage_memory's transient buffers read from the graphs (decoder layers with
// MTP, embedding, output head), apart by whether the op scales with expert imbalance: the same for every
// layout on the same graphs, so a caller bounding many layouts (the sweep pre-screen) computes them once.
struct OpWorkingSets {
  bytes decoder = 0, decoder_expert = 0, embedding = 0, embedding_expert = 0, head = 0, head_expert = 0;
};
OpWorkingSets op_working_sets(const graph::ModelGraphs& graphs);
std::vector<StageMemory> stage_memory(const ModelSpec& model, const LayoutSpec& layout, const PipelinePlan& plan,
                                      const graph::ModelGraphs& graphs, const HardwareProfile& hw,
                                      const std::vector<double>& inflight, double imbalance,
                                      const OpWorkingSets& working_sets);

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
