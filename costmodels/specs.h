#pragma once
// Validated value types for the three inputs of every simulation: the model, the parallel layout and
// the hardware profile. Field names follow ../shared/DESIGN.md. These types hold no I/O; sim/io parses
// files into them and checks them.
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "costmodels/units.h"

namespace moesim {

// ---------------------------------------------------------------------------------------------
// Model
// hybrid_compressed: DeepSeek-V4's attention (CompressedAttentionSpec): one 512-wide key-value head
// shared by all query heads, a grouped low-rank output projection, and per layer a sliding window alone
// or with compressed key-value entries.
enum class AttentionType { mha, gqa, mla, hybrid_compressed };
enum class Activation { swiglu, gelu };
// Which keys an attention layer's queries see. full: every key up to the query (causal). sliding: the
// last `sliding_window` keys up to and including the query (Beltagy et al. 2020, Longformer §3.1,
// arXiv 2004.05150; Jiang et al. 2023, Mistral 7B §2, arXiv 2310.06825). linear: the layer's token
// mixer is a linear-attention or state-space layer (AttentionSpec::linear) instead of softmax attention:
// Qwen3-Next's Gated DeltaNet layers, MiniMax-01's lightning attention layers, Nemotron-H's Mamba-2 layers.
// compressed_sparse and compressed: DeepSeek-V4's CSA and HCA layers (CompressedAttentionSpec): the
// sliding window plus, respectively, the indexer's top-k of the KV entries compressed csa_ratio to one,
// or every KV entry compressed hca_ratio to one.
enum class AttentionSpan { full, sliding, linear, compressed_sparse, compressed };

// The linear token mixers moesim models (costmodels/linear_mixer.h gives their FLOPs).
// gated_deltanet: Yang, Kautz, Hatamizadeh 2024, "Gated Delta Networks", arXiv 2412.06464 (Qwen3-Next).
// lightning: Qin et al. 2024, "Lightning Attention-2", arXiv 2401.04658 (MiniMax-01, arXiv 2501.08313).
// mamba2: Dao and Gu 2024, "Transformers are SSMs" (Mamba-2 SSD), arXiv 2405.21060 (Nemotron-H).
enum class LinearMixer { gated_deltanet, lightning, mamba2 };

// Shapes of a linear mixer layer. Field meanings per kind:
//   heads          value heads (GDN linear_num_value_heads; lightning heads; Mamba-2 nheads)
//   key_heads      heads of q and k (GDN linear_num_key_heads, each shared by heads / key_heads value
//                  heads; Mamba-2 n_groups of B and C; lightning = heads)
//   key_head_dim   GDN linear_key_head_dim; Mamba-2 state size N (ssm_state_size); lightning head_dim
//   value_head_dim GDN linear_value_head_dim; Mamba-2 head dim P (mamba_head_dim); lightning head_dim
//   conv_kernel    depthwise causal short convolution over q, k, v (GDN) or x, B, C (Mamba-2); 0: none
//   chunk          tokens per chunk (block) of the chunked training kernel
struct LinearAttentionSpec {
  LinearMixer kind = LinearMixer::gated_deltanet;
  int heads = 0;
  int key_heads = 0;
  int key_head_dim = 0;
  int value_head_dim = 0;
  int conv_kernel = 0;
  int chunk = 64;
};

// DeepSeek Sparse Attention (DSA; DeepSeek-V3.2-Exp report §2.1, https://github.com/deepseek-ai/
// DeepSeek-V3.2-Exp/blob/main/DeepSeek_V3_2.pdf; config.json index_n_heads, index_head_dim,
// index_topk): a lightning indexer of index_heads heads of width index_head_dim scores every preceding
// token, I_{t,s} = sum_j w_{t,j} ReLU(q_{t,j} . k_s), and the MLA core attends, in MQA mode (one
// latent key-value entry shared by all heads), to the topk keys of highest score. topk 0: no DSA.
struct SparseAttentionSpec {
  int index_heads = 0;
  int index_head_dim = 0;
  int topk = 0;
  bool active() const { return topk > 0; }
};

// DeepSeek-V4's hybrid attention (AttentionType::hybrid_compressed), as Megatron-LM dev builds it
// (megatron/core/transformer/experimental_attention_variant/deepseek_v4_hybrid_attention.py and csa.py,
// commit 9c5258f109; DeepSeek-V4 config.json compress_ratios, o_groups, o_lora_rank, index_*): queries
// through the query latent (q_lora_rank) to heads x head_dim, one key-value entry of head_dim per token
// (linear_kv_proj, shared by all heads as key and value, MQA), and the attention output, grouped into
// o_groups groups of heads, each projected to o_lora_rank (linear_o_group_proj) before linear_proj maps
// o_groups x o_lora_rank to hidden. Each layer's compress ratio (AttentionSpec::layer_pattern): 0 a
// sliding window of sliding_window keys (AttentionSpan::sliding); csa_ratio (4) the window plus the top-k
// (AttentionSpec::sparse.topk) of the entries a Compressor pools from csa_ratio tokens each, chosen by an
// indexer of sparse.index_heads x index_head_dim over its own compressed keys; hca_ratio (128) the window
// plus every entry pooled from hca_ratio tokens. Every softmax also has a learned sink logit per head.
struct CompressedAttentionSpec {
  int o_groups = 0;
  int o_lora_rank = 0;
  int csa_ratio = 4;
  int hca_ratio = 128;
  bool active() const { return o_groups > 0; }
};

struct AttentionSpec {
  AttentionType type = AttentionType::mha;
  int heads = 0;
  int kv_heads = 0;   // = heads for MHA
  int head_dim = 0;   // = hidden / heads unless given
  // Multi-head latent attention (DeepSeek-V2/V3, Pangu Ultra MoE); zero when not MLA.
  int q_lora_rank = 0;  // 0: queries are projected directly from the hidden state
  int kv_lora_rank = 0;
  int qk_nope_head_dim = 0;
  int qk_rope_head_dim = 0;
  int v_head_dim = 0;
  // Sliding-window attention: keys a sliding layer's query sees, itself included; 0: no sliding layers.
  int sliding_window = 0;
  // Span of each decoder layer, repeated from layer 0: layer i has layer_pattern[i % size] (GPT-OSS
  // {sliding, full}; Gemma 3 five sliding then one full; Qwen3-Next three linear then one full; a list
  // as long as the layers for any other order). Empty: every layer sliding when sliding_window > 0
  // (Mistral 7B), else full. MTP modules always attend fully (DeepSeek-V3 §2.2).
  std::vector<AttentionSpan> layer_pattern{};
  // GPT-OSS attention sinks: one learned logit per head added to each softmax denominator (HF
  // GptOssAttention `sinks`). Costed as what it is: one exponential and one add per query and head
  // beside the s (or w) score exponentials, and `heads` parameters per layer (LayerBuilder::attention).
  bool sinks = false;
  // Qwen3-Next gated attention: q_proj also emits a per-channel gate, and the attention output is
  // multiplied by its sigmoid before o_proj (transformers Qwen3NextAttention: q_proj width 2 x heads x
  // head_dim, "attn_output = attn_output * torch.sigmoid(gate)").
  bool output_gate = false;
  // The layers whose span is linear (empty otherwise: linear.heads == 0).
  LinearAttentionSpec linear{};
  // DSA on every full-span softmax layer, the MTP module's included (DeepSeek-V3.2: all of them);
  // MLA only (the report instantiates DSA on MLA's MQA mode).
  SparseAttentionSpec sparse{};
  // DeepSeek-V4's hybrid attention (type hybrid_compressed); its indexer's shapes are `sparse`.
  CompressedAttentionSpec compressed{};
  // Span of the MTP modules' attention: full (DeepSeek-V3 §2.2), or the last compress ratio of a
  // DeepSeek-V4 model (Megatron-LM csa_compress_ratios has num_layers + mtp_num_layers entries; the
  // recipes' MTP layer is a sliding-window one).
  AttentionSpan mtp_span = AttentionSpan::full;

  AttentionSpan span_of_layer(int layer) const {
    if (layer_pattern.empty()) return sliding_window > 0 ? AttentionSpan::sliding : AttentionSpan::full;
    return layer_pattern[static_cast<std::size_t>(layer) % layer_pattern.size()];
  }
};

struct FfnSpec {
  double intermediate = 0;  // dense-layer FFN width
  Activation activation = Activation::swiglu;
};

struct MoeSpec {
  int experts = 0;                    // routed experts per MoE layer
  int top_k = 0;                      // routed experts activated per token
  double expert_intermediate = 0;     // width of one routed expert
  int shared_experts = 0;             // always-active experts
  double shared_expert_intermediate = 0;  // width of one shared expert (= expert_intermediate unless given)
  int first_dense_layers = 0;         // leading layers that use the dense FFN instead of experts
  // Group-limited routing (DeepSeek-V2/V3 n_group / topk_group): the experts form router_groups equal
  // groups and a token picks its top_k experts from its router_group_top_k best groups. 1 / 1: any experts.
  int router_groups = 1;
  int router_group_top_k = 1;
  // Mixture of Grouped Experts (MoGE, Pangu Pro MoE §2, arXiv 2505.21411): the experts form
  // expert_groups equal groups and every token takes exactly top_k / expert_groups experts from each
  // group, so a device holding whole groups receives the same number of tokens whatever the router
  // prefers (the paper's imbalance score is 0). 1: ordinary top-k.
  int expert_groups = 1;
  // Leading MoE layers whose experts a hash of the token id picks instead of the learned router
  // (DeepSeek-V4 config.json num_hash_layers; Megatron-LM moe_n_hash_layers). Same expert work and
  // dispatch; the router's scoring GEMM is costed on them too (h x experts per token, < 0.3% of the layer).
  int hash_layers = 0;
  // Experts a token can choose from: those of its router_group_top_k groups (all experts without groups).
  int experts_in_chosen_groups() const { return router_group_top_k * (experts / router_groups); }
};

struct ModelSpec {
  std::string name;
  int layers = 0;
  double hidden = 0;
  double vocab = 0;
  int seq_len = 0;  // default training sequence length; the layout may override it
  AttentionSpec attention;
  FfnSpec ffn;
  std::optional<MoeSpec> moe;
  int mtp_layers = 0;           // multi-token-prediction modules (DeepSeek-V3 style)
  bool tie_embeddings = false;  // LM head shares the input embedding
  bool learned_position_embeddings = false;  // GPT-2/3 style absolute position table (seq_len x hidden)
  bool dropout = false;  // GPT-3-era training keeps dropout masks for backward
  // Parallel attention + FFN block: y = x + attn(norm(x)) + mlp(norm(x)) (GPT-J; PaLM §2 "Parallel
  // Layers", arXiv 2204.02311; MegaScale §3.1, arXiv 2402.15627): one norm and one TP all-gather of its
  // output feed both branches, and one TP all-reduce (or reduce-scatter) sums both output projections.
  // Dense layers only.
  bool parallel_block = false;
  // Manifold-constrained hyper-connections (mHC; DeepSeek-V4 config.json hc_mult, hc_sinkhorn_iters;
  // Megatron-LM megatron/core/transformer/hyper_connection.py HyperConnectionModule): the residual is
  // residual_streams streams of width hidden; around each sublayer a fp32 projection of all streams
  // gives H_pre (n), H_post (n) and H_res (n x n, Sinkhorn-normalised over sinkhorn_iterations), the
  // sublayer reads H_pre's mix of the streams and the streams become H_res^T x + H_post^T F(.). 1: the
  // plain residual.
  int residual_streams = 1;
  int sinkhorn_iterations = 0;
  std::string source;

  bool is_moe() const { return moe.has_value(); }
  int moe_layers() const { return moe ? layers - moe->first_dense_layers : 0; }
  int dense_layers() const { return moe ? moe->first_dense_layers : layers; }
};

// ---------------------------------------------------------------------------------------------
// Parallel layout (Megatron-Core semantics with MoE parallel folding)
// selective: Korthikanti et al. 2022 §4.2 (attention core recomputed). selective_op: torchtitan's op-level
// selective activation checkpointing (see costmodels/graph.cpp, LayerBuilder::op_sac_matmuls).
enum class Recompute { none, selective, selective_op, full };
// What selective recompute reruns: Megatron-Core's --recompute-modules (transformer_config.py
// recompute_modules; transformer_layer.py and multi_latent_attention.py), one bit each. core_attn: the
// attention core (Korthikanti et al. 2022 §4.2, the default). layernorm: norms that are modules of their
// own (the MoE layer's pre-MLP norm, MLA's input norm; Transformer Engine fuses the others into the next
// linear) keep no output for the next GEMM. mla_up_proj: MLA's up-projections and RoPE are rerun, so
// Q, K and V are not kept. mlp: the dense MLP (not MoE layers) keeps only its input. moe_act: the expert
// activation's output (expert fc2's input) is not kept. mhc: the hyper-connections' mixing
// (ModelSpec::residual_streams) keeps only its input streams (megatron/core/transformer/mhc_recompute.py).
enum class RecomputeModule : unsigned { core_attn = 1, layernorm = 2, mla_up_proj = 4, mlp = 8, moe_act = 16, mhc = 32 };
enum class ScheduleKind { gpipe, one_f_one_b, interleaved, zero_bubble, dualpipe };
enum class Precision { bf16, fp8 };
// How FP8 training scales its tensors (Megatron-Core --fp8-recipe, megatron/core/enums.py Fp8Recipe;
// Transformer Engine's recipes, transformer_engine/common/recipe/__init__.py): delayed scaling (one
// scale per tensor from the amax history), tensorwise current scaling (Float8CurrentScaling: the amax
// of the tensor itself, one more pass over it), blockwise (Float8BlockScaling, Hopper: fp32 scales per
// 1x128 block of activations and gradients, 128x128 of weights) and MXFP8 (MXFP8BlockScaling,
// Blackwell: E8M0 scales per 32 elements).
enum class Fp8Recipe { delayed, tensorwise, blockwise, mxfp8 };
// CUDA graphs as Megatron-Core uses them: none (eager), partial (Transformer Engine graphs of the
// static-shape modules: attention, router, MoE preprocess), full (the whole iteration captured).
enum class CudaGraphs { none, partial, full };
// How the loss is computed, which sets the memory of the loss phase. in_place: Megatron-LM's
// vocab-parallel cross entropy (tensor_parallel/cross_entropy.py) copies the bf16 logits to fp32 once
// and computes exp and the softmax in place in that copy, which it saves for backward and turns into
// the gradient in place. fused: Transformer Engine's parallel_cross_entropy (Megatron-Core
// --cross-entropy-loss-fusion with --cross-entropy-fusion-impl te; transformer_engine/pytorch/
// cross_entropy.py) saves the bf16 logits themselves and writes the gradient into them in backward.
// pytorch: torch.nn.functional.cross_entropy on .float() logits, as torchtitan (train.py loss_fn) and
// Hugging Face models do: log_softmax writes a new fp32 tensor (saved), and backward holds it beside
// nll_loss's dense fp32 gradient and log_softmax's input gradient (three fp32 tensors beside it under
// TP, where DTensor's loss_parallel runs the loss vocab-sharded). pytorch_bf16: the same call on the
// bf16 logits without .float() (KempnerForge training/loss.py): every one of those tensors in bf16.
enum class CrossEntropy { in_place, fused, pytorch, pytorch_bf16 };
enum class PipelineRuntime { megatron, torch };

// Which communication hides behind compute. Each switch can only make an iteration faster.
struct OverlapSwitches {
  bool ep_all_to_all = false;      // EP dispatch/combine hidden behind another microbatch's compute
  bool tp_comm = false;            // TP all-gather/reduce-scatter fused with GEMMs (MC2, userbuffers)
  bool dp_grad_reduce = true;      // gradient reduce-scatter overlapped with backward
  bool dp_param_gather = true;     // parameter all-gather overlapped with the next forward
  bool pp_p2p = true;              // pipeline send/recv asynchronous
  bool delay_wgrad = false;        // weight-gradient GEMMs delayed to hide the backward EP all-to-all
};


// Expert load: per-expert token shares drawn from a seeded lognormal whose sigma is `skew`
// (0 = perfectly balanced routing).
struct ExpertLoadSpec {
  double skew = 0.0;
  unsigned seed = 1;
  int redundant_experts = 0;  // extra expert replicas placed on the hottest experts (EPLB-style)
};

// einsum: the DeepSpeed / GShard MoE layer of MindSpeed-LLM's legacy model path (no --use-mcore-models;
// AscendSpeed ascendspeed/components/moe, copied from DeepSpeed's sharded_moe.py): dense S x E x C
// dispatch and combine masks, the dispatch and combine as matmuls over them ('sec,sm->ecm',
// 'sec,ecm->sm'), experts on capacity-padded buffers and an all-to-all of the padded E x C x h buffer.
// flex: Megatron-Core's --moe-token-dispatcher-type flex, whose DeepEP and HybridEP backends send a token
// once to each rank (and across scale-up domains once to each domain) that holds any of its experts.
enum class MoeDispatcher { alltoall, allgather, einsum, flex };

struct LayoutSpec {
  int devices = 0;
  int tp = 1, pp = 1, vpp = 1, ep = 1, etp = 1, cp = 1, dp = 0;  // dp derived when 0
  bool sequence_parallel = false;
  int micro_batch = 1;
  int global_batch = 0;  // sequences per iteration
  int seq_len = 0;
  Recompute recompute = Recompute::none;
  // Partial block recompute (Megatron-LM --recompute-method block --recompute-num-layers N): with full
  // recompute, only the first N decoder layers of each model chunk (virtual stage) rerun in backward;
  // the others keep all their activations. 0: every layer follows `recompute`.
  int recompute_num_layers = 0;
  Recompute recompute_of_layer(int index_in_chunk) const {
    return recompute == Recompute::full && recompute_num_layers > 0 && index_in_chunk >= recompute_num_layers
               ? Recompute::none
               : recompute;
  }
  // Megatron-LM --gradient-accumulation-fusion (default on): the weight-gradient GEMM accumulates into
  // the fp32 main_grad itself; off (--no-gradient-accumulation-fusion, common in MindSpeed-LLM scripts)
  // it writes a 16-bit gradient that a separate add folds into main_grad every microbatch.
  bool gradient_accumulation_fusion = true;
  // MindSpeed --swap-optimizer (docs "Swap Optimizer"): the fp32 master weights and Adam moments live in
  // host memory; the step reloads them in --swap-optimizer-times chunks (default 16) with host-to-device
  // and device-to-host copies on two streams, so the device holds one chunk of them.
  bool optimizer_swap = false;
  static constexpr int optimizer_swap_chunks = 16;
  // Expert GEMMs as one grouped kernel (Megatron-LM / MindSpeed --moe-grouped-gemm: TEGroupedMLP,
  // Ascend GMM) or, without the flag, one GEMM per local expert in a loop (SequentialMLP).
  bool moe_grouped_gemm = true;
  // Megatron's token dispatchers (--moe-token-dispatcher-type): alltoall sends each token to the EP
  // ranks of its experts; allgather gathers every rank's tokens over the EP group, each rank computes its
  // local experts on the tokens routed to them and the outputs are reduce-scattered back.
  MoeDispatcher moe_dispatcher = MoeDispatcher::alltoall;
  // Compute units (SMs) the flex dispatcher's DeepEP / HybridEP kernels hold for as long as they run
  // (Megatron-Core --moe-deepep-num-sms, default 20 in TransformerConfig; --moe-hybridep-num-sms): the normal
  // kernels are persistent CUDA blocks, one per SM, that copy tokens with their own warps (DeepEP
  // csrc/kernels/intranode.cu, internode.cu; Buffer.num_sms), so a GEMM beside them runs on the rest of the
  // device's compute_units. 0 with the other dispatchers (NCCL's all-to-all is in comm_compute_slowdown).
  int ep_dispatch_sms = 0;
  static constexpr int default_ep_dispatch_sms = 20;
  // MindSpeed's allgather token permutation (--moe-permutation-async-comm with the allgather dispatcher:
  // MindSpeed-LLM's megatron_patch.py then patches in mindspeed/core/transformer/moe/token_dispatcher.py
  // allgather_token_permutation / allgather_token_unpermutation, Ascend/MindSpeed 4ea42a23): two row gathers
  // and a combine that accumulates into an fp32 buffer of all gathered tokens. With the alltoall dispatcher and
  // no grouped GEMM, MindSpeed's SequentialMLP forward (experts.py sequential_mlp_forward, registered by
  // megatron_adaptor.py mcore_moe_adaptation): per-expert last-dim gathers and an output buffer filled by copies.
  bool moe_permutation_async_comm = false;
  // Expert capacity (Megatron-Core --moe-expert-capacity-factor, MindSpeed legacy --moe-train-capacity-
  // factor; Lepikhin et al. 2020 "GShard" §2.2): an expert takes at most factor x its balanced share of
  // the routed tokens, the rest are dropped; 0: dropless. Padded (--moe-pad-expert-input-to-capacity,
  // and always with the einsum dispatcher), every expert computes and sends its full capacity.
  double moe_capacity_factor = 0.0;
  bool moe_pad_to_capacity = false;
  unsigned recompute_modules = static_cast<unsigned>(RecomputeModule::core_attn);  // RecomputeModule bits, selective only
  ScheduleKind schedule = ScheduleKind::one_f_one_b;
  bool distributed_optimizer = true;
  Precision precision = Precision::bf16;
  // FP8 tokens in the EP dispatch (DeepSeek-V3 §3.3.4 quantises before the dispatch, combines in BF16).
  // Megatron-Core dispatches BF16 and quantises inside the expert GEMMs: its HybridEP backend asserts
  // "HybridEP dispatcher does not support fp8 dispatch now", DeepEP and all-to-all get the BF16 hidden
  // states (megatron/core/transformer/moe/fused_a2a.py, token_dispatcher.py).
  bool fp8_dispatch = false;
  // FP8 training keeps for backward the FP8 copy of each linear layer's input that it made for the
  // forward GEMM (Transformer Engine: Linear, LayerNormLinear and GroupedLinear save the quantised
  // input, 1 byte per element, used by the weight-gradient GEMM; DeepSeek-V3 §3.3.2 caches activations
  // in FP8 the same way); false as torchao's float8 linear does, which saves the bf16 input and
  // quantises it again in backward (torchao/float8/float8_linear.py, torchtitan's Float8). Only with fp8.
  bool fp8_cached_inputs = true;
  // Default: Megatron-Core's TransformerConfig.fp8_recipe default "delayed"; a record sets another only
  // where its source names it. Only with fp8.
  Fp8Recipe fp8_recipe = Fp8Recipe::delayed;
  bool flash_attention = true;  // fused attention (no s x s scores kept); false for 2021-era Megatron
  // Without flash attention, Megatron's FusedScaleMaskSoftmax runs one fused scale-mask-softmax kernel
  // unless --no-masked-softmax-fusion (softmax_fusion false): then each torch step is a pass over the
  // s x s scores, in fp32 with --attention-softmax-in-fp32 (softmax_in_fp32).
  bool softmax_fusion = true;
  bool softmax_in_fp32 = false;
  // Fraction of saved activations offloaded to host memory after the forward and fetched back for the
  // backward (the swap half of Pangu Ultra MoE's "Selective R/S"): less HBM, more host-link traffic.
  double activation_swap = 0.0;
  // Megatron-LM --distribute-saved-activations (CheckpointFunction in megatron/core/tensor_parallel/
  // random.py): under full recompute each TP rank keeps only its 1/tp slice of a layer's checkpointed
  // input and all-gathers it before the rerun. Megatron ignores it with sequence parallelism, whose input
  // is split already (TransformerConfig: distribute_saved_activations and not sequence_parallel).
  bool distribute_saved_activations = false;
  // false: under TP the output head's logits are all-gathered to every rank, which computes the loss
  // on the whole vocabulary (KempnerForge tensor_parallel.py: ColwiseParallel(output_layouts=
  // Replicate()) on the head); true: the loss runs vocab-parallel on each rank's shard (Megatron-LM's
  // vocab-parallel cross entropy, torchtitan's loss_parallel).
  bool loss_parallel = true;
  // true: PyTorch DTensor sequence parallelism (torchtitan parallelize_llama.py PrepareModuleInput
  // Shard(1) -> Replicate() before attention and feed_forward; KempnerForge tensor_parallel.py
  // ColwiseParallel(input_layouts=Shard(1))): the all-gather is an autograd op whose output is the
  // GEMM input, and the GEMM saves it for its weight gradient, so each rank keeps the whole T x h input
  // of the QKV, FC1 and output-head GEMMs. false: Megatron's SP keeps the 1/tp shard and gathers it again
  // in backward (Korthikanti et al. 2022 §4.2.2). Memory only: the re-gather is not timed either way.
  bool sp_saves_gathered_inputs = false;
  // true: the token embedding is not split over TP, each TP rank holds the whole vocab x hidden table
  // (KempnerForge tensor_parallel.py: "Token embedding: Replicated"; no plan entry for it).
  bool embedding_tp_replicated = false;
  // false: pure 16-bit training, the optimizer steps the bf16 parameters themselves and keeps no fp32
  // master copy (KempnerForge build_parallel_model casts the model to param_dtype bf16 before FSDP2,
  // so parameters, gradients and AdamW's moments are all bf16).
  bool master_weights = true;
  bool hierarchical_ep_all_to_all = false;  // Pangu Ultra MoE: inter-node all-gather + intra-node all-to-all
  int zero_stage = 0;           // 3: parameters sharded over DP too (ZeRO-3 / FSDP)
  // ZeRO-3 shard group: the DP x CP ranks a parameter's shards span (hybrid sharding: PaLM shards within
  // one TPU pod and replicates across pods, Chowdhery et al. 2022 §4); 0 = the whole DP x CP group.
  int zero_shard_dp = 0;
  // FSDP2's reshard_after_forward. false as torchtitan sets it with pipeline parallelism
  // (parallelize_llama.py apply_fsdp: "For PP, do not reshard after forward to avoid per-microbatch
  // all-gathers"): the stage's 16-bit parameters stay unsharded from the first forward on, and with
  // pp > 1 torch.distributed.pipelining also keeps them through backward and accumulates the gradients
  // unsharded until the last microbatch (stage.py backward_maybe_with_nosync). Only with zero_stage 3.
  bool zero_reshard_after_forward = true;
  // FSDP2 gradient accumulation without sync (set_requires_gradient_sync(False) on every microbatch but
  // the last, as KempnerForge training/grad.py maybe_no_sync does): each unit keeps its unsharded
  // gradient, accumulated in the fp32 reduce dtype (_fsdp_param.py to_accumulated_grad_if_needed),
  // until the last microbatch's backward reduce-scatters it. Only with zero_stage 3.
  bool zero_no_sync = false;
  // Which runtime moves activations between pipeline stages, for the buffers it holds (memory only).
  // megatron: Megatron-LM's p2p_communication sends and receives one microbatch's tensor at a time
  // and frees each stage output's data once sent (deallocate_output_tensor). torch:
  // torch.distributed.pipelining (torchtitan), whose PipelineStage allocates a receive buffer and a
  // gradient-receive buffer for every microbatch up front (_prepare_forward_infra, _create_grad_recv_info),
  // keeps each received input's gradient in that buffer's .grad until the next step
  // (stage_backward: torch.autograd.backward, then val.grad; cleared in clear_runtime_states), keeps
  // each stage output in fwd_cache until its backward, and on the last stage keeps every microbatch's
  // output (the logits) in output_chunks until the step ends. Its ScheduleInterleaved1F1B also warms
  // up differently (sim/engine/schedule.cpp interleaved).
  PipelineRuntime pipeline_runtime = PipelineRuntime::megatron;
  // Context parallelism as torch's context_parallel runs it (torch/distributed/tensor/experimental/
  // _attention.py, torchtitan): _cp_options.rotate_method ALL_GATHER all-gathers the K and V that SDPA
  // receives from the whole CP group at once, and the backward accumulates dQ, dK, dV in fp32
  // (convert_to_f32) and passes dK, dV around the ring in fp32. false: Megatron/TE's ring exchanges one
  // K/V chunk at a time. Memory only; only with cp > 1.
  bool cp_kv_all_gather = false;
  // Whether a ring step's K/V send and receive run at once. MindSpeed's RingP2P
  // (mindspeed/core/context_parallel/utils.py async_send_recv) posts the isend and the irecv on one HCCL
  // communicator unless --use-cp-send-recv-overlap gives the receive a second one
  // (model_parallel_utils.py initialize_context_parallel_group_for_send_recv_overlap); the ops of one
  // communicator run in order, and even ring ranks send first while odd ones receive first, so without the
  // flag every exchange takes two transfer times (even -> odd ranks, then odd -> even). Megatron/TE's ring
  // (batch_isend_irecv) and MindSpeed with the flag move both at once: true. Only with cp > 1.
  bool cp_send_recv_overlap = true;
  CudaGraphs cuda_graphs = CudaGraphs::none;
  CrossEntropy cross_entropy = CrossEntropy::in_place;
  // Bytes of each Adam moment (m, v): 4 (fp32), or 2 with Megatron-Core's precision-aware optimizer
  // (--use-precision-aware-optimizer --exp-avg-dtype bf16 --exp-avg-sq-dtype bf16; the fp32 master
  // weights stay).
  int adam_moment_bytes = 4;
  // Bytes of each gradient kept for the optimizer and reduced over DP: 4 (Megatron's fp32 main_grad
  // buffer, accumulate_allreduce_grads_in_fp32 with bf16), or 2 with --grad-reduce-in-bf16
  // (Megatron-Core DistributedDataParallelConfig grad_reduce_in_fp32 = False).
  int main_grad_bytes = 4;
  int zero_shard_group() const { return zero_shard_dp > 0 ? zero_shard_dp : dp * cp; }
  std::vector<int> pipeline_layers;  // decoder layers per virtual stage (pp*vpp entries), empty = even split
  OverlapSwitches overlap;
  ExpertLoadSpec expert_load;

  int expert_dp() const { return devices / (etp * ep * pp); }
  int microbatches() const { return global_batch / (dp * micro_batch); }
};

// ---------------------------------------------------------------------------------------------
// Hardware profile
enum class TierTopology { switched, full_mesh };

// One level of the interconnect, innermost first. `size` is the number of devices that share this
// tier's domain (8 for an 8-device node); the last tier spans the cluster.
struct Tier {
  std::string name;
  int size = 0;
  bytes_per_second bandwidth = 0;  // per device, per direction, peak
  seconds latency = 0;             // per message step
  double efficiency = 1.0;         // achievable fraction of `bandwidth` for large messages
  // All-to-all's achievable fraction where it differs from `efficiency` (rings and trees stream to one
  // neighbour; an all-to-all keeps a flow to every peer at once); unset: `efficiency`.
  std::optional<double> all_to_all_efficiency;
  TierTopology topology = TierTopology::switched;
};

// Shape-dependent efficiency of the matrix unit (see costmodels/compute.h for the curve).
struct MatrixEfficiency {
  double peak_fraction = 0.8;            // best achievable fraction of peak on large GEMMs
  flops half_saturation_flops = 1e9;     // GEMM size at which efficiency is half of peak_fraction
  int tile_m = 128, tile_n = 128, tile_k = 64;  // tile quantisation of the matrix unit
  double grouped_gemm_factor = 0.9;      // grouped (per-expert) GEMMs relative to one large GEMM
  double attention_fraction = 0.7;       // fused attention core relative to peak_fraction
  // Matrix units that run output tiles side by side (GPU SMs, Ascend AI/cube cores); 0: not modelled.
  int compute_units = 0;
  // Fixed time of one output tile on its unit besides its main loop over K (pipeline fill, epilogue
  // writing the tile); 0: none. With compute_units it costs a GEMM the factor K / (K + K0) (compute.h).
  seconds tile_fixed_cost = 0;
  // Rows each expert's tokens are padded to before an FP8 grouped GEMM (Transformer Engine's
  // get_align_size_for_quantization: 16, MXFP8 32).
  int fp8_group_alignment = 16;
  // FP8 GEMMs take their operands in any layout (Transformer Engine nvte_is_non_tn_fp8_gemm_supported:
  // compute capability 10.0 and later), so a tensor-scaled FP8 tensor serves the forward and the
  // backward GEMMs in one copy; false (Hopper, Ada): the GEMMs take only K-major (TN) operands and TE
  // writes a transposed copy beside the FP8 data (transformer_engine/pytorch/csrc/quantizer.cpp,
  // Float8Quantizer::create_tensor: with_transpose = columnwise_usage && !non_tn).
  bool fp8_any_layout = false;
  // FP8 GEMMs reach this fraction of the large-GEMM efficiency BF16 GEMMs reach (peak_fraction) at their
  // own peak: the ratio of the measured maximal achievable matmul FLOPS (MAMF) of the two precisions.
  double fp8_fraction = 1.0;
  // Block-scaled FP8 GEMMs (Float8BlockScaling: a scale per 1x128 / 128x128 block) on hardware whose
  // tensor cores take one scale per tensor: the kernel multiplies every 128-deep partial sum by its block
  // scales on the CUDA cores (DeepSeek-V3 report §3.3.2, accumulation promotion), so these GEMMs reach this
  // share of the BF16 efficiency instead of fp8_fraction; 0: as fp8_fraction (native block scaling, MXFP8).
  double fp8_blockwise_fraction = 0;
};

// Operand layouts of a column-major GEMM as cuBLAS kernel names give them (n: as stored, t: transposed).
inline constexpr std::array<const char*, 4> gemm_layout_names{"nn", "nt", "tn", "tt"};

struct DeviceSpec {
  flops_per_second matrix_bf16 = 0;
  flops_per_second matrix_fp16 = 0;
  flops_per_second matrix_fp8 = 0;  // 0 when the hardware has no FP8 matrix rate
  flops_per_second matrix_fp32 = 0;  // FP32 GEMM rate when measured (calibrated); 0: not given
  flops_per_second matrix_tf32 = 0;  // FP32 GEMMs on tensor cores (TF32) when measured (calibrated); 0: not given
  // TF32 GEMM kernels whose operands allow only scalar (4-byte) global loads, CUTLASS `align1`/`align2`
  // (a leading dimension not a multiple of 4 floats), when measured (calibrated); 0: matrix_tf32.
  flops_per_second matrix_tf32_unaligned = 0;
  // CUDA-core FP32 GEMM kernels by the operand layout cuBLAS names (`volta_sgemm_128x32_tn`: nn, nt, tn,
  // tt), when measured (calibrated); 0: matrix_fp32.
  std::array<flops_per_second, 4> matrix_fp32_by_layout{};
  flops_per_second vector_flops = 0;
  bytes hbm_bytes = 0;
  bytes_per_second hbm_bandwidth = 0;
  MatrixEfficiency matrix;
  double vector_efficiency = 0.5;
  double hbm_efficiency = 0.8;
  seconds launch_overhead = 5e-6;        // per kernel
  // Matrix-vector kernels (cuBLAS gemv, dot, gemmk1: no threadblock tile, so no tiled main loop to fill
  // and drain) take launch_overhead plus their memory roofline plus this fixed cost of their reduction
  // (a second pass over partial sums); 0 until calibrated (sim/calibration/fit.cpp).
  seconds gemv_fixed_cost = 0;
  // Host (CPU) time to issue one modelled op in eager PyTorch (Python, dispatcher and the launches of
  // the op's kernels); 0: the host is never the bottleneck. Removed by CUDA graphs.
  seconds host_op_overhead = 0;
  // Host time of each further per-expert call an eager grouped op makes from its host loop: Transformer
  // Engine's GroupedLinear runs its expert GEMMs as one cuBLASLt GEMM per expert (multi_stream_cublas_gemm,
  // each building its descriptors and querying cublasLtMatmulAlgoGetHeuristic) and casts each expert's rows
  // with a quantize call of its own (split_quantize); 0 where a grouped op is one call (MindSpeed npu_gmm).
  seconds host_expert_call_overhead = 0;
  // HBM bytes moved per element of a block's attention output each time ring attention (CP > 1) merges
  // that block's partial output and softmax statistics into the running ones outside the fused kernel,
  // as the framework on this hardware runs the merge; 0: the merge is not charged.
  double ring_update_bytes = 0;
  double comm_compute_slowdown = 0.0;    // compute slowdown while overlapped collectives run on compute cores
  bytes_per_second host_link_bandwidth = 0;  // device <-> host, for activation swap
  bytes framework_reserve = 0;           // memory outside the tensor allocator: runtime context, collective buffers
  // The tensor allocator's cached free blocks at the peak, as a share of the bytes one step allocates
  // and frees (memory::StageMemory::per_step); 0 where the allocator caches nothing (XLA plans statically).
  double allocator_cache_share = 0;
};

struct HardwareProfile {
  std::string name;
  std::string source;
  DeviceSpec device;
  std::vector<Tier> tiers;  // innermost first; the last tier spans the cluster

  flops_per_second matrix_peak(Precision p) const {
    return p == Precision::fp8 && device.matrix_fp8 > 0 ? device.matrix_fp8 : device.matrix_bf16;
  }
};

}  // namespace moesim
