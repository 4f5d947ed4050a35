#pragma once
// The builder of one layer's operator graph (costmodels/graph.cpp); the MoE block's ops are built in
// costmodels/moe_layer.cpp. Internal to costmodels/: other code reads the built graphs (graph.h).
#include <initializer_list>
#include <string_view>
#include <vector>

#include "costmodels/attention_span.h"
#include "costmodels/fp8_cast.h"
#include "costmodels/graph.h"

namespace moesim::graph::detail {

// Builds ops of one layer; `a` is the activation element size.
class LayerBuilder {
 public:
  LayerBuilder(const ModelSpec& m, const GraphContext& c)
      : m_(m), c_(c), a_(c.activation_bytes), li_(c.linear_input_bytes) {
    tokens_sp_ = c.sequence_parallel ? c.tokens / c.tp : c.tokens;
  }

  // Room for `ops` ops up front, so that adding one never moves the ops built so far.
  void reserve(std::size_t ops) { graph_.forward.reserve(ops); }

  LayerGraph take(LayerKind kind, AttentionSpan span) {
    add_fp8_casts();
    graph_.kind = kind;
    graph_.span = span;
    return std::move(graph_);
  }

  // With mHC the layer's input is residual_streams streams of width hidden (ModelSpec::residual_streams).
  void set_layer_input() { graph_.layer_input_bytes = m_.residual_streams * tokens_sp_ * m_.hidden * a_; }

  // Weight bytes are read once per GEMM; input and output activations pass through HBM once.
  // A plain GEMM is one aten.mm of the reference model; grouped (per-expert) GEMMs are not aten.mm.
  Op& gemm(const char* name, double m, double k, double n, double count = 1, bool grouped = false) {
    Op& op = make_gemm(name, m, k, n, count, grouped);
    if (!grouped) op_sac_matmuls(op, m * n * count, {1.0});
    return op;
  }

  // One GEMM standing for several nn.Linear calls of the reference model that share an input (Llama's
  // wq, wk, wv; w1, w3): `widths` are their output widths in call order, summing to n.
  Op& fused_gemm(const char* name, double m, double k, std::initializer_list<double> widths) {
    double n = 0;
    for (double w : widths) n += w;
    Op& op = make_gemm(name, m, k, n);
    op_sac_matmuls(op, m, widths);
    return op;
  }

  // torchtitan's op-level selective activation checkpointing, as benchmarked in its docs/performance.md
  // (torchtitan 9dec370, Dec 2024: torchtitan/parallelisms/parallelize_llama.py, `_save_list` and
  // `_custom_policy`): inside each checkpointed TransformerBlock the outputs of aten.mm, flash/efficient
  // SDPA and _c10d_functional.reduce_scatter_tensor are saved (MUST_SAVE), except every second aten.mm
  // in call order ("meta[mm_count_key] % 2 == 0": the block's 2nd, 4th, ... mm is recomputed); every
  // other op is recomputed in backward. `rows` x `widths` are the output elements of the mm calls one
  // GEMM op stands for, in call order; their FLOPs share one input, so they split by output size. (No
  // vector of outputs: graphs are built for every layout a sweep screens, and an allocation per GEMM
  // showed.)
  void op_sac_matmuls(Op& op, double rows, std::initializer_list<double> widths) {
    double total = 0, rerun = 0;
    op.kept_by_op_sac = 0;
    for (double w : widths) {
      const double elements = rows * w;
      total += elements;
      if (++matmuls_ % 2 == 0) rerun += elements;
      else op.kept_by_op_sac += elements * a_;
    }
    op.rerun_by_op_sac = total > 0 ? rerun / total : 1.0;
  }

  Op& make_gemm(const char* name, double m, double k, double n, double count = 1, bool grouped = false) {
    Op& op = graph_.forward.emplace_back();  // built in place: graphs are built per screened layout
    op.name = name;
    op.kind = grouped ? OpKind::grouped_gemm : OpKind::gemm;
    op.shape = {m, n, k, count};
    op.flop_count = op.shape.flop_count();
    op.model_flop_count = op.flop_count;
    op.hbm_bytes = (m * k + k * n + m * n) * count * a_;
    op.working_bytes = op.hbm_bytes;  // input, weight and output live at once
    return op;
  }

  // Marks a GEMM as a Transformer Engine linear, which FP8 training runs in FP8 (add_fp8_casts).
  // `gathered`: the operand sequence parallelism all-gathers (column-parallel input, row-parallel gradient).
  static Op& linear(Op& op, Fp8Cast cast = Fp8Cast::input, Fp8Gather gathered = Fp8Gather::none) {
    op.fp8_cast = cast;
    op.fp8_gathered = gathered;
    return op;
  }

  // Under FP8, the quantisation op of each TE linear before its GEMM (costmodels/fp8_cast.cpp).
  void add_fp8_casts();
  Op fp8_cast_op(const Op& gemm) const;
  struct Fp8Bytes {
    bytes cast = 0, transpose = 0;  // the cast of the operand; the transposed copy of its gathered whole
  };
  Fp8Bytes fp8_operand_bytes(double elements, Fp8Operand operand, bool gathered, bool from_norm) const;

  // Element-wise / reduction op over `elements` elements: read and write each once.
  Op& vector(const char* name, double elements, double flops_per_element, double passes = 2) {
    Op& op = graph_.forward.emplace_back();  // built in place: graphs are built per screened layout
    op.name = name;
    op.kind = OpKind::vector;
    op.flop_count = elements * flops_per_element;
    op.model_flop_count = 0;  // MFU counts matmul FLOPs only (PaLM App. B)
    op.hbm_bytes = elements * passes * a_;
    op.working_bytes = op.hbm_bytes;  // each pass an input or output tensor, all live at once
    return op;
  }

  Op& collective(const char* name, comm::CollectiveKind kind, GroupKind group, bytes buffer) {
    Op& op = graph_.forward.emplace_back();  // built in place: graphs are built per screened layout
    op.name = name;
    op.kind = OpKind::collective;
    op.collective.kind = kind;
    op.collective.group = group;
    op.collective.buffer = buffer;
    return op;
  }

  // Sequence parallelism (Korthikanti et al. 2022 §4.2.2) turns the TP all-reduce into an all-gather
  // before the column-parallel GEMM and a reduce-scatter after the row-parallel one.
  void tp_gather(const char* name) {
    if (c_.tp > 1 && c_.sequence_parallel)
      collective(name, comm::CollectiveKind::all_gather, GroupKind::tp, c_.tokens * m_.hidden * a_);
  }
  void tp_reduce(const char* name) {
    if (c_.tp <= 1) return;
    Op& op = collective(name, c_.sequence_parallel ? comm::CollectiveKind::reduce_scatter : comm::CollectiveKind::all_reduce,
                        GroupKind::tp, c_.tokens * m_.hidden * a_);
    if (c_.sequence_parallel) keep_reduce_scatter_output(op, c_.tp);
  }

  // Op-level selective AC saves a reduce-scatter's output (its shard of the buffer) and does not rerun it.
  static void keep_reduce_scatter_output(Op& op, int group) {
    op.kept_by_op_sac = op.collective.buffer / group;
    op.rerun_by_op_sac = 0;
  }

  void norm(const char* name) {
    // RMSNorm/LayerNorm: ~5 FLOPs per element; input saved for backward (Korthikanti: 2sbh).
    vector(name, tokens_sp_ * m_.hidden, 5).saved_bytes = tokens_sp_ * m_.hidden * a_;
  }

  bool recomputes(RecomputeModule module) const { return (c_.recompute_modules & static_cast<unsigned>(module)) != 0; }

  // Selective recompute of `module`: `dropped` keep nothing for backward, `rerun` run again in backward.
  // Ops are named, not held, because the op vector may grow between building and marking.
  void mark_recompute(RecomputeModule module, std::initializer_list<const char*> dropped, std::initializer_list<const char*> rerun) {
    if (!recomputes(module)) return;
    for (Op& op : graph_.forward) {
      for (const char* name : dropped)
        if (std::string_view(op.name) == name) op.dropped_by_selective = true;
      for (const char* name : rerun)
        if (std::string_view(op.name) == name) op.recomputed_by_selective = true;
    }
  }

  void residual(const char* name) {
    if (m_.residual_streams > 1) {
      hyper_connection_post(name, std::string_view(name) == "attn_residual");
      return;
    }
    Op& op = vector(name, tokens_sp_ * m_.hidden, 1, 3);
    // Dropout mask before the residual add: 1 byte per element (Korthikanti eq. 1: sbh).
    if (c_.dropout) op.saved_bytes = tokens_sp_ * m_.hidden;
  }

  // Bytes of a GEMM input saved for backward: with Megatron's SP the gathered input is kept sharded and
  // gathered again in backward, so it costs 1/tp (Korthikanti et al. 2022 §4.2.2); DTensor's SP keeps
  // the gathered input itself (LayoutSpec::sp_saves_gathered_inputs). `element` is the saved
  // element size: a decoder linear's (linear_input, FP8 under fp8_cached_inputs) or the bf16 of the
  // output head, which FP8 recipes keep in bf16.
  bytes gathered_input_saved(double width, bytes element) const {
    const bool sharded = c_.sequence_parallel && !c_.sp_saves_gathered_inputs;
    return (sharded ? c_.tokens / c_.tp : c_.tokens) * width * element;
  }

  void attention(AttentionSpan span = AttentionSpan::full) {
    if (m_.residual_streams > 1) hyper_connection_pre(true);
    norm("attn_norm");
    tp_gather("attn_tp_all_gather");
    if (m_.attention.type == AttentionType::hybrid_compressed) compressed_attention(span);
    else softmax_attention(span);
    if (m_.parallel_block) return;  // the FFN branch's reduce and residual serve both (dense_mlp)
    tp_reduce("attn_tp_reduce");
    residual("attn_residual");
  }

  // MHA, GQA or MLA projections, the core (dense or DeepSeek sparse) and the output projection.
  void softmax_attention(AttentionSpan span) {
    const AttentionSpec& at = m_.attention;
    const double t = c_.tp, h = m_.hidden, T = c_.tokens;
    double heads = at.heads / t;
    double qk_dim, v_dim, kv_heads;
    // DeepSeek Sparse Attention replaces the core of every full-span MLA layer (AttentionSpec::sparse).
    const bool sparse = at.sparse.active() && span == AttentionSpan::full;
    if (at.type == AttentionType::mla) {
      // DeepSeek-V2 §2.1 (arXiv 2405.04434): down-projections are replicated over TP, up-projections split.
      qk_dim = at.qk_nope_head_dim + at.qk_rope_head_dim;
      v_dim = at.v_head_dim;
      kv_heads = heads;
      if (at.q_lora_rank > 0) {
        linear(gemm("q_down_proj", T, h, at.q_lora_rank), Fp8Cast::input, Fp8Gather::input).saved_bytes =
            gathered_input_saved(h, li_);
        vector("q_norm", T * at.q_lora_rank, 5).saved_bytes = T * at.q_lora_rank * a_;
        linear(gemm("q_up_proj", T, at.q_lora_rank, heads * qk_dim)).saved_bytes = T * at.q_lora_rank * li_;
      } else {
        linear(gemm("q_proj", T, h, heads * qk_dim), Fp8Cast::input, Fp8Gather::input).saved_bytes =
            gathered_input_saved(h, li_);
      }
      const double kv_down = at.kv_lora_rank + at.qk_rope_head_dim;
      linear(gemm("kv_down_proj", T, h, kv_down), Fp8Cast::input, Fp8Gather::input).saved_bytes =
          gathered_input_saved(h, li_);
      vector("kv_norm", T * at.kv_lora_rank, 5).saved_bytes = T * at.kv_lora_rank * a_;
      // DSA's MQA mode keeps keys and values latent (sparse_attention_core absorbs the up-projections).
      if (!sparse)
        linear(gemm("kv_up_proj", T, at.kv_lora_rank, heads * (at.qk_nope_head_dim + v_dim))).saved_bytes =
            T * at.kv_lora_rank * li_;
      vector("rope", T * heads * at.qk_rope_head_dim * 2, 3);
    } else {
      qk_dim = v_dim = at.head_dim;
      kv_heads = at.kv_heads / t;
      // Llama's wq, wk, wv are three linears (torchtitan models/llama/model.py Attention); a gated
      // attention's q_proj also emits the output gate (AttentionSpec::output_gate).
      const double q_width = heads * at.head_dim * (at.output_gate ? 2 : 1);
      linear(fused_gemm("qkv_proj", T, h, {q_width, kv_heads * at.head_dim, kv_heads * at.head_dim}), Fp8Cast::normed_input,
             Fp8Gather::input).saved_bytes =
          gathered_input_saved(h, li_);
    }
    if (sparse) {
      sparse_attention_core(heads);  // costmodels/sparse_attention.cpp; its kernels are always fused
    } else {
      dense_attention_core(span, heads, kv_heads, qk_dim, v_dim);
    }
    if (at.type == AttentionType::mla) {
      // Megatron-Core MLA: the input norm is a module of its own (TENorm) before the down-projections.
      mark_recompute(RecomputeModule::layernorm, {"q_down_proj", "kv_down_proj"}, {"attn_norm"});
      mark_recompute(RecomputeModule::mla_up_proj, {"attention_core"},
                     {"q_up_proj", "q_proj", "kv_up_proj", "rope", "q_absorb"});
    }
    // Qwen3-Next gated attention: O x sigmoid(gate), keeping O and the gate for backward.
    if (at.output_gate) vector("attn_output_gate", T * heads * v_dim, 5, 3).saved_bytes = 2 * T * heads * v_dim * a_;
    // Output projection input O (2sbh / t) is saved by the projection.
    linear(gemm("attn_out_proj", T, heads * v_dim, h), Fp8Cast::input, Fp8Gather::gradient).saved_bytes =
        T * heads * v_dim * li_;
  }

  // Softmax attention over all keys up to the query, or a sliding window of them: the CP exchange of K
  // and V, the fused core and, unfused, its saved scores.
  void dense_attention_core(AttentionSpan span, double heads, double kv_heads, double qk_dim, double v_dim) {
    const AttentionSpec& at = m_.attention;
    const double T = c_.tokens;
    if (c_.cp > 1) {
      // Ring attention (Liu et al. 2023; Megatron CP): cp-1 exchanges of the local K and V chunk,
      // overlapped with the attention of the previous chunk. The backward sends each K, V block on
      // together with the dK, dV accumulated for it so far, twice the forward's bytes (MindSpeed
      // mindspeed/core/context_parallel/ring_context_parallel.py, AttentionWithCp.backward:
      // send_kv_dkv = [kv, dkv], "Point-to-point communications of KV and dKV").
      CollectiveOp& exchange = collective("cp_kv_exchange", comm::CollectiveKind::send_recv, GroupKind::cp,
                                          (c_.cp - 1) * T * kv_heads * (qk_dim + v_dim) * a_)
                                   .collective;
      exchange.backward_volume = 2.0;
      // Without MindSpeed's --use-cp-send-recv-overlap each step's send and receive run in turn
      // (LayoutSpec::cp_send_recv_overlap), the backward's K, V and dK, dV exchanges alike.
      if (!c_.cp_send_recv_overlap) exchange.serial_phases = 2;
    }
    // Attention core: QK^T and AV, 2 x 2 x T x keys x heads x dim, keys per query by the layer's span
    // (costmodels/attention_span.h: causal kernels skip the masked half of full attention and every
    // block outside a sliding window). Memory is the same for both spans: fused kernels keep no scores.
    const double s_keys = c_.seq_len;
    const AttentionKeys keys = attention_keys(s_keys, span, at.sliding_window, c_.causal);
    Op core;
    core.name = "attention_core";
    core.kind = OpKind::attention;
    core.model_flop_count = 2.0 * T * keys.model * heads * (qk_dim + v_dim);
    core.flop_count = 2.0 * T * keys.executed * heads * (qk_dim + v_dim);
    core.hbm_bytes = T * (heads * (qk_dim + v_dim) + kv_heads * (qk_dim + v_dim)) * a_;
    core.working_bytes = core.hbm_bytes;  // Q, K, V and O
    if (c_.cp_kv_all_gather) {
      // torch context_parallel's ring attention (LayoutSpec::cp_kv_all_gather): the backward (the peak,
      // after the recomputed forward has freed its own gather) all-gathers the K and V that SDPA got
      // from the whole CP group (_AllGatherRotater), accumulates dQ, dK, dV in fp32 and holds the fp32
      // dK, dV it sends and the one it receives (_templated_ring_attention_backward). torchtitan repeats
      // the KV heads to the query heads before SDPA (models/llama/model.py repeat_kv), so K and V have
      // the query heads.
      const double kv_elems = T * heads * (qk_dim + v_dim), q_elems = T * heads * qk_dim;
      core.working_bytes += c_.cp * kv_elems * a_ + (q_elems + kv_elems) * 4 + 2 * kv_elems * 4;
    }
    // Saved: Q, K, V (Korthikanti: QK^T inputs 4sbh and V 2sbh for MHA), split over TP.
    core.saved_bytes = T * (heads * qk_dim + kv_heads * (qk_dim + v_dim)) * a_;
    if (at.sinks) {
      // GPT-OSS sinks: per query and head, the sink logit's exponential (less the running max) joins
      // the softmax denominator; one fp32 logit per head is read. 3 FLOPs against the core's
      // 2 (d_qk + d_v) per key: 0.02% of a 128-key window at head_dim 64.
      core.flop_count += 3 * T * heads;
      core.hbm_bytes += heads * 4;
    }
    if (c_.flash_attention) {
      // Op-level selective AC saves fused SDPA's outputs: O and the fp32 log-sum-exp per query and head
      // (aten._scaled_dot_product_flash_attention returns both); the unfused path is recomputed.
      core.kept_by_op_sac = T * heads * (v_dim * a_ + 4);
      core.rerun_by_op_sac = 0;
    }
    graph_.forward.push_back(core);
    if (c_.cp > 1 && !c_.cp_kv_all_gather && c_.ring_update_bytes > 0) ring_output_update(heads, kv_heads, qk_dim, v_dim);
    if (!c_.flash_attention) {
      // Unfused attention keeps softmax output (2), its dropout mask (1) and the dropped-out
      // scores (2 bytes) per score: 5 a s^2 b / t (Korthikanti et al. 2022 eq. 1); without dropout
      // only the softmax output (2). Selective recompute drops exactly this and recomputes the core.
      // A sliding window masks the full s x s scores (HF eager attention), so they are as large.
      const double bytes_per_score = c_.dropout ? 5 : 2;
      Op scores;
      scores.name = "attention_scores";
      scores.kind = OpKind::attention;
      scores.flop_count = 0;
      scores.hbm_bytes = (bytes_per_score + unfused_softmax_extra_bytes()) * T * s_keys * heads;
      // fp32 softmax keeps its fp32 output for its backward and holds the fp32 copy of the scores meanwhile.
      const double fp32_kept = c_.softmax_in_fp32 && !c_.softmax_fusion ? 4 : 0;
      scores.working_bytes = (bytes_per_score + 2 * fp32_kept) * T * s_keys * heads;
      scores.saved_bytes = (bytes_per_score + fp32_kept) * T * s_keys * heads;
      graph_.forward.push_back(scores);
      mark_recompute(RecomputeModule::core_attn, {"attention_scores"}, {"attention_core"});
    }
  }

  // Ring attention merges each later K, V block's partial output and softmax statistics into the
  // running ones outside the fused kernel, cp - 1 times a layer, moving the profile's ring_update_bytes per
  // element of the output (forward_update in MindSpeed's ring_context_parallel.py: element-wise torch ops,
  // the scales repeated to the output's shape in fp32). Its backward adds each block's dQ, dK, dV into the
  // accumulated ones (dq.add_, dk.add_, dv.add_: read 2, write 1 element each).
  void ring_output_update(double heads, double kv_heads, double qk_dim, double v_dim) {
    const double T = c_.tokens, steps = c_.cp - 1, out = T * heads * v_dim;
    Op update;
    update.name = "cp_output_update";
    update.kind = OpKind::vector;
    update.flop_count = steps * 3 * out;  // two scalings and an add per element
    update.hbm_bytes = steps * c_.ring_update_bytes * out;
    update.backward_hbm_bytes = steps * 3 * a_ * T * (heads * qk_dim + kv_heads * (qk_dim + v_dim));
    update.working_bytes = 3 * 4 * out;  // the two fp32 scales and the fp32 product live at once
    graph_.forward.push_back(update);
  }

  // HBM bytes per score that Megatron's unfused softmax (FusedScaleMaskSoftmax.forward_torch_softmax,
  // megatron/core/fusions/fused_softmax.py) moves beyond its fused scale-mask-softmax kernel, forward. The
  // fused kernel reads the 16-bit scores and writes 16-bit probabilities (4 bytes). Unfused, with element
  // size e (4 under softmax_in_fp32, else 2): [fp32: .float() reads 2, writes 4], masked_fill reads e and
  // the 1-byte mask and writes e, softmax reads e and writes e, [fp32: the cast back reads 4, writes 2].
  double unfused_softmax_extra_bytes() const {
    if (c_.softmax_fusion) return 0;
    const double e = c_.softmax_in_fp32 ? 4 : 2;
    return 4 * e + 1 + (c_.softmax_in_fp32 ? 12 : 0) - 4;
  }

  // DeepSeek Sparse Attention's indexer, MQA-mode core and absorbed projections (costmodels/
  // sparse_attention.cpp), in place of dense_attention_core for an MLA layer with AttentionSpec::sparse.
  void sparse_attention_core(double heads);

  // DeepSeek-V4's hybrid attention (costmodels/compressed_attention.cpp): projections, the compressors
  // and indexer of the layer's span, the sparse core over window and compressed entries, and the grouped
  // output projection.
  void compressed_attention(AttentionSpan span);
  // A Compressor's two projections of the layer input (`coff` x `width` each) and its gated pooling of
  // every `ratio` rows into one entry.
  void compressor(const char* proj, const char* pool, double tokens, double ratio, int coff, double width);
  // mHC (ModelSpec::residual_streams): the mixing weights and the aggregate before a sublayer, and the
  // new streams after it (in place of the residual add).
  void hyper_connection_pre(bool attention_side);
  void hyper_connection_post(const char* name, bool attention_side);

  void dense_mlp(double intermediate, const char* prefix_norm = "mlp_norm") {
    const double t = c_.tp, h = m_.hidden, T = c_.tokens;
    const bool swiglu = m_.ffn.activation == Activation::swiglu;
    const double width = intermediate / t;
    // A parallel block's FFN reads the attention branch's normed, gathered input, already saved by its
    // QKV projection (MegaScale §3.1 fuses the two input projections into one GEMM on it).
    const bool parallel = m_.parallel_block;
    if (!parallel) {
      if (m_.residual_streams > 1) hyper_connection_pre(false);
      norm(prefix_norm);
      tp_gather("mlp_tp_all_gather");
    }
    // SwiGLU's gate and up projections are two linears, w1 then w3 (torchtitan FeedForward.forward).
    linear(swiglu ? fused_gemm("mlp_fc1", T, h, {width, width}) : gemm("mlp_fc1", T, h, width), Fp8Cast::normed_input,
           Fp8Gather::input).saved_bytes =
        parallel ? 0 : gathered_input_saved(h, li_);
    // Activation input saved: GeLU input 8sbh for ffn=4h (Korthikanti); SwiGLU keeps gate and up.
    vector("mlp_act", T * width, swiglu ? 4 : 8, swiglu ? 3 : 2).saved_bytes = T * (swiglu ? 2 : 1) * width * a_;
    linear(gemm("mlp_fc2", T, width, h), Fp8Cast::input, Fp8Gather::gradient).saved_bytes = T * width * li_;
    mark_recompute(RecomputeModule::mlp, {"mlp_act", "mlp_fc2"}, {"mlp_fc1", "mlp_act", "mlp_fc2"});
    tp_reduce("mlp_tp_reduce");
    residual("mlp_residual");
  }

  // Linear-attention / state-space token mixer in place of attention (costmodels/linear_mixer.cpp).
  void linear_mixer();

  // MoE block (costmodels/moe_layer.cpp): router, permutation, EP dispatch, grouped expert GEMMs,
  // combine, unpermutation and shared experts.
  void moe_block();
  void router(double tokens);
  void permute(double tokens);
  void unpermute(double tokens);
  void mindspeed_gather_rows(double tokens);
  void mindspeed_fp32_combine(double tokens);
  void mindspeed_sequential_gather(double rows);
  void mindspeed_sequential_output(double rows);
  double gshard_slots(double tokens) const;
  void gshard_dispatch(double tokens);
  void gshard_combine(double tokens);

  void embedding() {
    vector("embedding_lookup", c_.tokens * m_.hidden, 0);
    // mHC: the embedding is copied into residual_streams streams (HyperConnectionModule block expand).
    if (m_.residual_streams > 1) vector("mhc_expand", tokens_sp_ * m_.residual_streams * m_.hidden, 0, 1);
    // Vocab-parallel embedding: partial lookups summed over TP.
    tp_reduce("embedding_tp_reduce");
  }

  void lm_head() {
    const double t = c_.tp, h = m_.hidden, T = c_.tokens;
    // mHC: the streams are contracted to one before the final norm (block-level contract: a weighted
    // sum of the n streams, n multiply-adds per output element).
    if (m_.residual_streams > 1)
      vector("mhc_contract", tokens_sp_ * m_.residual_streams * h, 2, (m_.residual_streams + 1.0) / m_.residual_streams);
    norm("final_norm");
    tp_gather("head_tp_all_gather");
    gemm("lm_head", T, h, m_.vocab / t).saved_bytes = gathered_input_saved(h, a_);
    // Without loss_parallel the vocab shards are all-gathered and every rank runs the loss on the whole
    // vocabulary (the gather's backward only slices the gradient; timed as a reduce-scatter, an over-count).
    const bool gathered = t > 1 && !c_.loss_parallel;
    if (gathered) collective("head_logits_all_gather", comm::CollectiveKind::all_gather, GroupKind::tp, T * m_.vocab * a_);
    const double vocab_local = gathered ? m_.vocab : m_.vocab / t;
    // Vocab-parallel cross-entropy: max, sum-exp and target logit reduced over TP (3 x T floats).
    Op& ce = vector("cross_entropy", T * vocab_local, 5, 3);
    const double logits = T * vocab_local;
    // HBM traffic: three fp32 passes over the logits (Megatron's fp32 copy, max, exp and sum, division
    // in place; PyTorch's .float() and log_softmax), or three bf16 passes for the fused kernel.
    ce.hbm_bytes = logits * 4 * 3;
    // Saved tensor and what is live beside it (CrossEntropy in costmodels/specs.h).
    switch (c_.cross_entropy) {
      case CrossEntropy::in_place:  // the fp32 softmax; beside it the bf16 logits the caller still holds
        ce.saved_bytes = logits * 4;
        ce.working_bytes = logits * a_;
        break;
      case CrossEntropy::fused:
        // The bf16 logits, which the forward overwrites with the gradient. Transformer Engine's
        // parallel_cross_entropy (transformer_engine/pytorch/triton/cross_entropy.py) reads the bf16
        // logits for the online max and sum-exp, reads them again for the loss and writes the gradient
        // in place: three bf16 passes, no fp32 copy.
        ce.saved_bytes = logits * a_;
        ce.working_bytes = 0;
        ce.hbm_bytes = logits * a_ * 3;
        break;
      case CrossEntropy::pytorch:
        // The fp32 log-probs; beside them nll_loss's dense fp32 gradient and log_softmax's fp32 input
        // gradient, plus the bf16 logits' block: PyTorch's caching allocator keeps a freed block for
        // reuse and never splits one request across blocks (PyTorch docs, "CUDA semantics: memory
        // management"), so the freed bf16 logits hold none of the later fp32 tensors and stay reserved.
        // Under TP the loss runs vocab-sharded through DTensor's loss_parallel decompositions
        // (torch/distributed/tensor/parallel/loss.py; torchtitan enables it with TP), whose fused
        // backward (grad_input + exp(x)) * grad_output holds three fp32 tensors beside the log-probs:
        // zeros_like(x), exp(x) and their sum.
        ce.saved_bytes = logits * 4;
        ce.working_bytes = logits * ((t > 1 && !gathered ? 3 : 2) * 4 + a_);
        break;
      case CrossEntropy::pytorch_bf16:
        // log_softmax on the bf16 logits saves bf16 log-probs; backward holds nll_loss's dense gradient
        // and log_softmax's input gradient beside them, all bf16 (the logits, unsaved, are freed).
        ce.saved_bytes = logits * a_;
        ce.working_bytes = logits * 2 * a_;
        ce.hbm_bytes = logits * a_ * 3;
        break;
    }
    if (t > 1 && !gathered) collective("ce_tp_all_reduce", comm::CollectiveKind::all_reduce, GroupKind::tp, 3 * T * 4);
  }

  void mtp_projection() {
    // DeepSeek-V3 §2.2: RMSNorm of the previous depth's hidden state and of the next token's
    // embedding, concatenated and projected 2h -> h.
    const double h = m_.hidden, T = c_.tokens;
    vector("mtp_embedding_lookup", T * h, 0);
    norm("mtp_hidden_norm");
    norm("mtp_embed_norm");
    linear(gemm("mtp_proj", T, 2 * h, h)).saved_bytes = T * 2 * h * a_;
  }

 private:
  const ModelSpec& m_;
  const GraphContext& c_;
  bytes a_;
  bytes li_;  // GraphContext::linear_input_bytes
  double tokens_sp_ = 0;
  int matmuls_ = 0;  // aten.mm calls so far in this layer (op-level selective AC counts them per block)
  LayerGraph graph_;
};

}  // namespace moesim::graph::detail
