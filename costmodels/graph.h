#pragma once
// Operator graph of one layer of each kind, forward pass of one microbatch on one device of the
// layout. Each op knows its FLOPs, HBM bytes, unit, GEMM shape, the activation bytes it saves for
// backward (so recompute policies move memory and time together) and, for collectives, its group and
// volume. Time (costmodels/compute, comm), memory (costmodels/memory) and model FLOPs all read this
// graph; nothing downstream re-derives shapes.
#include <optional>
#include <vector>

#include "costmodels/comm.h"
#include "costmodels/compute.h"
#include "costmodels/specs.h"

namespace moesim::graph {

enum class OpKind { gemm, grouped_gemm, attention, vector, collective };
enum class GroupKind { tp, cp, ep, etp, pp, dp, expert_dp };
enum class LayerKind { dense, moe, mtp, embedding, lm_head };
// Which GEMMs are Transformer Engine linears that FP8 training runs in FP8 (their input, output gradient
// and weight quantised), and whether the input comes from the norm TE fuses with the cast
// (LayerNormLinear: the QKV and FC1 of a dense layer).
enum class Fp8Cast { none, input, normed_input };
// Which operand of a TE linear sequence parallelism all-gathers over TP: the input of a column-parallel
// linear, the output gradient of a row-parallel one (Korthikanti et al. 2022 §4.2.2). TE quantises the
// local shard before the gather (linear.py: input_quantizer, then gather_along_first_dim(quantizer=...);
// base.py grad_output_preprocess for the gradient).
enum class Fp8Gather { none, input, gradient };

const char* to_string(OpKind k);
const char* to_string(GroupKind g);
const char* to_string(LayerKind k);

struct CollectiveOp {
  comm::CollectiveKind kind = comm::CollectiveKind::all_reduce;
  GroupKind group = GroupKind::tp;
  bytes buffer = 0;             // as comm::collective_time defines it
  // The backward's buffer over the forward's: 1 where the backward mirrors the forward collective; 2 for
  // ring attention, whose backward passes each block's K, V and its partial dK, dV on together.
  double backward_volume = 1.0;
  // Transfers of the buffer that run one after another (LayoutSpec::cp_send_recv_overlap false: a ring
  // step's send and receive share one communicator), each priced as the collective: 1 or 2.
  int serial_phases = 1;
  bool expert_dispatch = false; // EP dispatch/combine: priced by comm::expert_dispatch_time
  double tokens = 0;            // for expert_dispatch: tokens per device before routing
  bytes token_bytes = 0;
  comm::ExpertRouting routing;
};

struct Op {
  const char* name = "";
  OpKind kind = OpKind::vector;
  compute::GemmShape shape;      // gemm and grouped_gemm
  flops flop_count = 0;          // FLOPs this device executes in the forward pass
  flops model_flop_count = 0;    // FLOPs counted by MFU (attention core not causally halved, PaLM App. B)
  // Attention: FLOPs the kernel also runs on index slots the mask discards (a sparse kernel walking the
  // whole padded top-k of every query, costmodels/compressed_attention.cpp). Timed with flop_count, but
  // not work the causal count or MFU credit.
  flops masked_flop_count = 0;
  bytes hbm_bytes = 0;           // HBM traffic of the forward pass
  bytes saved_bytes = 0;         // activations kept for backward when nothing is recomputed
  // Bytes live while the op runs (forward or backward) beside the activations layers keep saved: its
  // inputs, outputs and temporaries. The memory model's transient peak is the largest of these.
  bytes working_bytes = 0;
  bool dropped_by_selective = false;    // selective recompute (Korthikanti et al. 2022 §4.2) frees its saved bytes
  bool recomputed_by_selective = false; // ... and runs this op again in backward
  // torchtitan's op-level selective AC (Recompute::selective_op): output bytes the op keeps for
  // backward, and the share of its forward run again in backward (set by the graph builder).
  bytes kept_by_op_sac = 0;
  double rerun_by_op_sac = 1.0;
  Fp8Cast fp8_cast = Fp8Cast::none;   // GEMMs: a TE linear (quantised under FP8)
  Fp8Gather fp8_gathered = Fp8Gather::none;
  // Memory-bound ops whose backward is a pass of its own rather than the forward's mirror (the FP8 cast
  // of a linear's output gradient): the HBM bytes it moves; unset: vector_backward_factor x forward.
  std::optional<bytes> backward_hbm_bytes;
  bool scales_with_imbalance = false; // expert ops: the busiest rank does `imbalance` x the mean work
  // GEMMs of two activations (GShard's einsum dispatch and combine): the K x N operand is no weight, so
  // its gradient is not accumulated into main_grad, and a 0/1 mask there needs no gradient at all.
  bool kn_is_weight = true;
  bool kn_needs_gradient = true;
  // A GEMM that an FP8 recipe still runs in BF16: DeepSeek-V4's compressor and indexer head-weight
  // projections (csa.py builds and runs them under get_fp8_disabled_context) and its grouped output
  // projection (a torch.einsum on a plain Parameter, outside Transformer Engine's FP8 modules).
  bool bf16_under_fp8 = false;
  // Vector ops run as one kernel per expert where the framework splits the tokens by expert on the host:
  // Transformer Engine's split_quantize casts each expert's rows with a kernel of its own for current
  // scaling, blockwise and MXFP8 (transformer_engine/pytorch/csrc/extensions/cast.cpp, split_quantize and
  // multi_tensor_quantize_impl). The experts of a grouped GEMM's cast; 1 for every other op.
  double per_expert_kernels = 1;
  CollectiveOp collective;       // kind == collective
};

struct LayerGraph {
  LayerKind kind = LayerKind::dense;
  AttentionSpan span = AttentionSpan::full;  // which keys its attention core sees (decoder layers)
  std::vector<Op> forward;
  bytes layer_input_bytes = 0;   // what full recompute keeps (Korthikanti et al. 2022 §4.2: 2sbh)
  // A dropless MoE layer's host waits for the device's per-expert token counts before it can issue the
  // expert GEMMs (grouped GEMM split sizes, dispatcher output sizes): true where the layer has one.
  bool host_syncs() const {
    for (const Op& op : forward)
      if (op.kind == OpKind::grouped_gemm) return true;
    return false;
  }

  // Activation bytes saved per microbatch under a recompute policy.
  bytes saved_bytes(Recompute policy, double imbalance = 1.0) const;
  // FLOPs executed again in backward under a recompute policy.
  flops recompute_flops(Recompute policy) const;
  // Share of an op's forward run again in backward under a policy (0: kept, 1: rerun whole).
  double rerun_fraction(const Op& op, Recompute policy) const {
    switch (policy) {
      case Recompute::none: return 0.0;
      case Recompute::selective: return op.recomputed_by_selective ? 1.0 : 0.0;
      case Recompute::selective_op: return op.rerun_by_op_sac;
      case Recompute::full: return 1.0;
    }
    return 1.0;
  }
  flops forward_flops() const;
  flops model_forward_flops() const;
};

// Shapes that follow from the model and layout for one microbatch on one device.
struct GraphContext {
  double tokens = 0;         // tokens per device per microbatch: micro_batch x seq_len / cp
  double seq_len = 0;        // full sequence (keys an attention query sees)
  int tp = 1, cp = 1, ep = 1, etp = 1;
  bool sequence_parallel = false;
  bool flash_attention = true;  // fused attention keeps no s x s scores (Dao et al. 2022)
  bool softmax_fusion = true, softmax_in_fp32 = false;  // unfused attention's softmax path (LayoutSpec)
  bool causal = true;           // causal mask: fused kernels skip the masked half
  bool dropout = false;         // GPT-3-era models keep dropout masks (1 byte per element)
  bytes activation_bytes = 2;   // bf16 activations
  bytes dispatch_bytes = 2;     // bytes per hidden element sent by EP dispatch (layout fp8_dispatch: 1)
  CrossEntropy cross_entropy = CrossEntropy::in_place;
  bool loss_parallel = true;  // LayoutSpec::loss_parallel
  bool sp_saves_gathered_inputs = false;  // LayoutSpec::sp_saves_gathered_inputs
  bool cp_kv_all_gather = false;  // LayoutSpec::cp_kv_all_gather
  bool cp_send_recv_overlap = true;  // LayoutSpec::cp_send_recv_overlap
  unsigned recompute_modules = static_cast<unsigned>(RecomputeModule::core_attn);  // what Recompute::selective reruns
  bytes linear_input_bytes = 2;  // per element of a decoder linear layer's input saved for backward
  MoeDispatcher moe_dispatcher = MoeDispatcher::alltoall;
  bool moe_permutation_async_comm = false;  // LayoutSpec::moe_permutation_async_comm
  bool moe_grouped_gemm = true;             // LayoutSpec::moe_grouped_gemm
  double moe_capacity_factor = 0;  // LayoutSpec::moe_capacity_factor (the einsum dispatcher's buffers)
  // FP8 training (layout precision fp8 on hardware with an FP8 rate): TE linears get quantisation ops
  // (costmodels/fp8_cast.cpp) by the recipe; the hardware says whether tensor-scaled FP8 needs a
  // transposed copy; weights are quantised once per iteration, at the first of its microbatches.
  bool fp8 = false;
  Fp8Recipe fp8_recipe = Fp8Recipe::delayed;
  bool fp8_any_layout = false;
  double ring_update_bytes = 0;  // DeviceSpec::ring_update_bytes
  double microbatches = 1;
  bool operator==(const GraphContext&) const = default;
};

GraphContext make_context(const ModelSpec& model, const LayoutSpec& layout);
// The same on a given device: FP8 quantisation ops only where it has an FP8 rate above BF16 (the GEMMs
// run in FP8 there, HardwareProfile::matrix_peak), with its FP8 operand layouts.
GraphContext make_context(const ModelSpec& model, const LayoutSpec& layout, const DeviceSpec& device);

// `span` picks the attention core of a decoder layer (dense or moe); MTP modules attend fully.
LayerGraph build_layer(const ModelSpec& model, const GraphContext& ctx, LayerKind kind,
                       AttentionSpan span = AttentionSpan::full);

// Model FLOPs per token of one training step (forward + backward = 3x forward, Kaplan et al. 2020
// §2.1) without recomputation, with the whole model on one device: the MFU numerator of PaLM App. B.
struct FlopsPerToken {
  flops forward = 0;
  flops recompute = 0;         // forward FLOPs run again under the recompute policy (HFU only)
  flops training = 0;          // 3 x forward (model FLOPs, MFU)
  // Forward attention-core share (included above): s keys per query (w when sliding; DSA: the indexer's
  // s and the core's top k).
  flops attention_core = 0;
  // Forward attention-core FLOPs the model count holds and a causal kernel skips: half the core of a
  // full layer, the ragged start of a window (costmodels/attention_span.h); less what kernels run beyond
  // the model's count (DSA's indexer-loss target, costmodels/sparse_attention.cpp).
  flops attention_core_masked = 0;
};
FlopsPerToken model_flops_per_token(const ModelSpec& model, int seq_len, Recompute policy = Recompute::none,
                                    bool flash_attention = true);

}  // namespace moesim::graph

namespace moesim::graph {

// The layer graphs of one model on one layout, built once and shared by time and memory. A decoder
// layer's index picks its graph: dense or MoE FFN (MoeSpec::first_dense_layers) and full or sliding
// attention (AttentionSpec::span_of_layer).
struct ModelGraphs {
  LayerGraph dense, moe, mtp, embedding, lm_head;
  LayerGraph dense_sliding, moe_sliding;  // sliding-window attention; empty unless the model has such layers
  LayerGraph dense_linear, moe_linear;    // linear token mixer (AttentionSpec::linear); empty unless used
  // DeepSeek-V4's compressed-sparse and heavily compressed layers (AttentionSpan::compressed_sparse,
  // compressed); empty unless used.
  LayerGraph dense_compressed_sparse, moe_compressed_sparse, dense_compressed, moe_compressed;
  // The graph of a decoder layer with (or without) an MoE FFN and the given span.
  template <class Self>
  static auto& pick(Self& g, bool moe_layer, AttentionSpan span) {
    switch (span) {
      case AttentionSpan::sliding: return moe_layer ? g.moe_sliding : g.dense_sliding;
      case AttentionSpan::linear: return moe_layer ? g.moe_linear : g.dense_linear;
      case AttentionSpan::compressed_sparse: return moe_layer ? g.moe_compressed_sparse : g.dense_compressed_sparse;
      case AttentionSpan::compressed: return moe_layer ? g.moe_compressed : g.dense_compressed;
      case AttentionSpan::full: break;
    }
    return moe_layer ? g.moe : g.dense;
  }
  LayerGraph& of(bool moe_layer, AttentionSpan span) { return pick(*this, moe_layer, span); }
  const LayerGraph& decoder(const ModelSpec& model, int layer) const {
    return pick(*this, model.moe && layer >= model.moe->first_dense_layers, model.attention.span_of_layer(layer));
  }
  // Decoder layers whose graph is `g`, and the decoder graphs in a fixed order (dense then moe, each
  // full, sliding, linear, compressed sparse, compressed), for sums over layers that group the layers
  // of one graph.
  int decoder_layers_of(const ModelSpec& model, const LayerGraph& g) const;
  std::vector<const LayerGraph*> decoder_graphs() const {
    return {&dense, &dense_sliding, &dense_linear, &dense_compressed_sparse, &dense_compressed,
            &moe,   &moe_sliding,   &moe_linear,   &moe_compressed_sparse,   &moe_compressed};
  }
};
ModelGraphs build_model_graphs(const ModelSpec& model, const GraphContext& ctx);

}  // namespace moesim::graph
