#include "sim/io/specs_io.h"

#include <fmt/format.h>

#include "sim/io/attention_io.h"
#include "sim/io/hf_config.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

namespace moesim::io {

namespace fs = std::filesystem;

std::string data_dir() {
  if (const char* env = std::getenv("MOESIM_DATA_DIR"); env && *env) return env;
  return MOESIM_SOURCE_DIR;
}

namespace {

std::vector<std::string> json_stems(const std::string& folder) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(data_dir()) / folder, ec))
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

// A name without a path separator or .json suffix is a built-in; anything else is a file.
std::string resolve(const std::string& name_or_path, const std::string& folder, const std::string& what) {
  const bool looks_like_path = name_or_path.find('/') != std::string::npos ||
                               (name_or_path.size() > 5 && name_or_path.ends_with(".json"));
  if (looks_like_path) return name_or_path;
  const fs::path p = fs::path(data_dir()) / folder / (name_or_path + ".json");
  std::error_code ec;  // a name too long for the file system is unknown, not an internal error
  if (!fs::exists(p, ec)) {
    std::string known;
    for (const auto& n : json_stems(folder)) known += (known.empty() ? "" : ", ") + n;
    throw InputError("unknown " + what + " '" + name_or_path + "' (built-in: " + known + "; or give a path to a .json file)");
  }
  return p.string();
}

}  // namespace

std::vector<std::string> builtin_models() { return json_stems("models"); }
std::vector<std::string> builtin_profiles() { return json_stems("hw_profiles"); }

const char* to_string(ScheduleKind s) {
  switch (s) {
    case ScheduleKind::gpipe: return "gpipe";
    case ScheduleKind::one_f_one_b: return "1f1b";
    case ScheduleKind::interleaved: return "interleaved";
    case ScheduleKind::zero_bubble: return "zero-bubble";
    case ScheduleKind::dualpipe: return "dualpipe";
  }
  return "?";
}
const char* to_string(Recompute r) {
  switch (r) {
    case Recompute::none: return "none";
    case Recompute::selective: return "selective";
    case Recompute::selective_op: return "selective_op";
    case Recompute::full: return "full";
  }
  return "?";
}
const char* to_string(Precision p) { return p == Precision::fp8 ? "fp8" : "bf16"; }
const char* to_string(Fp8Recipe r) {
  switch (r) {
    case Fp8Recipe::delayed: return "delayed";
    case Fp8Recipe::tensorwise: return "tensorwise";
    case Fp8Recipe::blockwise: return "blockwise";
    case Fp8Recipe::mxfp8: return "mxfp8";
  }
  return "?";
}
const char* to_string(MoeDispatcher d) {
  switch (d) {
    case MoeDispatcher::alltoall: return "alltoall";
    case MoeDispatcher::allgather: return "allgather";
    case MoeDispatcher::einsum: return "einsum";
    case MoeDispatcher::flex: return "flex";
  }
  return "?";
}
const char* float_type_name(int bytes) { return bytes == 2 ? "bf16" : "fp32"; }
const char* to_string(CrossEntropy c) {
  switch (c) {
    case CrossEntropy::in_place: return "in_place";
    case CrossEntropy::fused: return "fused";
    case CrossEntropy::pytorch: return "pytorch";
    case CrossEntropy::pytorch_bf16: return "pytorch_bf16";
  }
  return "?";
}

namespace {
constexpr std::pair<RecomputeModule, const char*> recompute_modules_named[] = {
    {RecomputeModule::core_attn, "core_attn"}, {RecomputeModule::layernorm, "layernorm"},
    {RecomputeModule::mla_up_proj, "mla_up_proj"}, {RecomputeModule::mlp, "mlp"}, {RecomputeModule::moe_act, "moe_act"},
    {RecomputeModule::mhc, "mhc"}};
}  // namespace

std::vector<std::string> recompute_module_names(unsigned modules) {
  std::vector<std::string> out;
  for (const auto& [bit, name] : recompute_modules_named)
    if (modules & static_cast<unsigned>(bit)) out.push_back(name);
  return out;
}
const char* to_string(LinearMixer k) {
  switch (k) {
    case LinearMixer::gated_deltanet: return "gated_deltanet";
    case LinearMixer::lightning: return "lightning";
    case LinearMixer::mamba2: return "mamba2";
  }
  return "?";
}

const char* to_string(AttentionType a) {
  switch (a) {
    case AttentionType::mha: return "mha";
    case AttentionType::gqa: return "gqa";
    case AttentionType::mla: return "mla";
    case AttentionType::hybrid_compressed: return "deepseek_v4";
  }
  return "?";
}

ScheduleKind parse_schedule(const std::string& s, const std::string& where) {
  for (ScheduleKind k : {ScheduleKind::gpipe, ScheduleKind::one_f_one_b, ScheduleKind::interleaved,
                         ScheduleKind::zero_bubble, ScheduleKind::dualpipe})
    if (s == to_string(k)) return k;
  throw InputError(where + ": expected one of gpipe|1f1b|interleaved|zero-bubble|dualpipe, got \"" + s + "\"");
}

Recompute parse_recompute(const std::string& s, const std::string& where) {
  for (Recompute r : {Recompute::none, Recompute::selective, Recompute::selective_op, Recompute::full})
    if (s == to_string(r)) return r;
  throw InputError(where + ": expected one of none|selective|selective_op|full, got \"" + s + "\"");
}

// ------------------------------------------------------------------------------------------------

namespace {

// Group-limited routing (DeepSeek-V2/V3 device/node-limited routing): `groups_key` equal groups of
// experts, a token's top_k experts from its `top_key` best groups. Without the keys, or with every group
// chosen, routing is unlimited.
void read_router_groups(const Field& f, MoeSpec& s, const char* groups_key, const char* top_key) {
  s.router_groups = f.positive_int_or(groups_key, 1);
  if (s.experts % s.router_groups != 0)
    f.fail(groups_key, "a divisor of the expert count (" + std::to_string(s.experts) + ")");
  s.router_group_top_k = f.positive_int_or(top_key, s.router_groups);
  if (s.router_group_top_k > s.router_groups)
    f.fail(top_key, std::string("at most ") + groups_key + " (" + std::to_string(s.router_groups) + ")");
  const int reachable = s.experts_in_chosen_groups();
  if (s.top_k > reachable)
    f.fail(top_key, "enough groups to hold top_k = " + std::to_string(s.top_k) + " experts (" +
                        std::to_string(s.router_group_top_k) + " groups hold " + std::to_string(reachable) + ")");
}

}  // namespace

ModelSpec parse_model(const json& j, const std::string& file) {
  const Field f(j, file, "");
  ModelSpec m;
  m.name = f.string("name");
  if (!f.has("source")) f.fail("source", "a citation (string or object) for the model's numbers");
  m.source = f.raw().at("source").is_string() ? f.string("source") : f.raw().at("source").dump();
  m.layers = f.positive_int("layers");
  m.hidden = f.positive_int("hidden");
  m.vocab = f.positive_int("vocab");
  m.seq_len = f.non_negative_int_or("seq_len", 0);
  m.mtp_layers = f.non_negative_int_or("mtp_layers", 0);
  m.tie_embeddings = f.boolean_or("tie_embeddings", false);
  m.learned_position_embeddings = f.boolean_or("learned_position_embeddings", false);
  m.dropout = f.boolean_or("dropout", false);
  m.parallel_block = f.boolean_or("parallel_block", false);
  m.residual_streams = f.positive_int_or("residual_streams", 1);
  if (m.residual_streams > 1) m.sinkhorn_iterations = f.positive_int("sinkhorn_iterations");
  if (m.residual_streams > 1 && m.parallel_block) f.fail("residual_streams", "1 for a parallel block (mHC wraps each sublayer)");
  if (m.parallel_block && f.has("moe")) f.fail("parallel_block", "false for an MoE model (parallel blocks are modelled for dense layers)");

  const Field a = f.child("attention");
  const std::string type = a.choice("type", {"mha", "gqa", "mla", "deepseek_v4"});
  m.attention.heads = a.positive_int("heads");
  if (type == "deepseek_v4") {
    m.attention.type = AttentionType::hybrid_compressed;
    read_compressed_attention(a, m.layers, m.mtp_layers, m.attention);
  } else if (type == "mla") {
    m.attention.type = AttentionType::mla;
    m.attention.q_lora_rank = a.non_negative_int_or("q_lora_rank", 0);
    m.attention.kv_lora_rank = a.positive_int("kv_lora_rank");
    m.attention.qk_nope_head_dim = a.positive_int("qk_nope_head_dim");
    m.attention.qk_rope_head_dim = a.positive_int("qk_rope_head_dim");
    m.attention.v_head_dim = a.positive_int("v_head_dim");
    m.attention.kv_heads = m.attention.heads;
    m.attention.head_dim = m.attention.qk_nope_head_dim + m.attention.qk_rope_head_dim;
  } else {
    m.attention.type = type == "gqa" ? AttentionType::gqa : AttentionType::mha;
    m.attention.kv_heads = type == "gqa" ? a.positive_int("kv_heads") : a.positive_int_or("kv_heads", m.attention.heads);
    if (m.attention.kv_heads > m.attention.heads) a.fail("kv_heads", "at most heads (" + std::to_string(m.attention.heads) + ")");
    if (!a.has("head_dim") && static_cast<long>(m.hidden) % m.attention.heads != 0)
      a.fail("head_dim", "a value (hidden is not divisible by heads)");
    m.attention.head_dim = a.positive_int_or("head_dim", static_cast<int>(m.hidden / m.attention.heads));
  }
  read_attention_variants(a, m.layers, m.attention);

  const Field ffn = f.child("ffn");
  m.ffn.activation = ffn.choice("activation", {"swiglu", "gelu"}) == "gelu" ? Activation::gelu : Activation::swiglu;
  if (auto moe = f.optional_child("moe")) {
    MoeSpec s;
    s.experts = moe->positive_int("experts");
    s.top_k = moe->positive_int("top_k");
    if (s.top_k > s.experts) moe->fail("top_k", "at most experts (" + std::to_string(s.experts) + ")");
    s.expert_intermediate = moe->positive_int("expert_intermediate");
    s.shared_experts = moe->non_negative_int_or("shared_experts", 0);
    s.shared_expert_intermediate = moe->positive_int_or("shared_expert_intermediate", static_cast<int>(s.expert_intermediate));
    s.first_dense_layers = moe->non_negative_int_or("first_dense_layers", 0);
    if (s.first_dense_layers >= m.layers) moe->fail("first_dense_layers", "fewer than layers");
    s.hash_layers = moe->non_negative_int_or("hash_layers", 0);
    if (s.hash_layers > m.layers - s.first_dense_layers) moe->fail("hash_layers", "at most the MoE layers");
    read_router_groups(*moe, s, "router_groups", "router_group_top_k");
    // MoGE: every token takes top_k / expert_groups experts from each of expert_groups equal groups.
    s.expert_groups = moe->positive_int_or("expert_groups", 1);
    if (s.expert_groups > 1) {
      if (s.experts % s.expert_groups != 0 || s.top_k % s.expert_groups != 0)
        moe->fail("expert_groups", "a divisor of experts (" + std::to_string(s.experts) + ") and of top_k (" +
                                       std::to_string(s.top_k) + ")");
      if (s.router_groups > 1) moe->fail("expert_groups", "1 when router_groups is set (MoGE or group-limited routing)");
    }
    m.moe = s;
    m.ffn.intermediate = s.first_dense_layers > 0 ? ffn.positive_int("intermediate")
                                                : ffn.positive_int_or("intermediate", static_cast<int>(s.expert_intermediate));
  } else {
    m.ffn.intermediate = ffn.positive_int("intermediate");
  }
  return m;
}

ModelSpec parse_hf_config(const json& j, const std::string& file) {
  const Field f(j, file, "");
  check_hf_fields_modelled(f);
  ModelSpec m;
  m.name = f.string_or("_name_or_path", f.string_or("model_type", fs::path(file).parent_path().filename().string()));
  m.source = "HuggingFace config.json: " + file;
  m.layers = f.positive_int("num_hidden_layers");
  m.hidden = f.positive_int("hidden_size");
  m.vocab = f.positive_int("vocab_size");
  m.tie_embeddings = f.boolean_or("tie_word_embeddings", false);
  const std::string act = f.string_or("hidden_act", "silu");
  m.ffn.activation = act.starts_with("gelu") ? Activation::gelu : Activation::swiglu;
  m.attention.heads = f.positive_int("num_attention_heads");
  // MLA: DeepSeek keys, or Pangu Ultra MoE's renamed keys (attention_*_dim).
  const bool deepseek_mla = f.has("kv_lora_rank");
  const bool pangu_mla = f.has("attention_kv_lora_dim");
  const bool deepseek_v4 = f.string_or("model_type", "") == "deepseek_v4";
  if (deepseek_v4) {
    read_hf_deepseek_v4(f, m);
  } else if (deepseek_mla || pangu_mla) {
    auto key = [&](const char* ds, const char* pg) { return deepseek_mla ? std::string(ds) : std::string(pg); };
    m.attention.type = AttentionType::mla;
    m.attention.q_lora_rank = f.non_negative_int_or(key("q_lora_rank", "attention_q_lora_dim"), 0);
    m.attention.kv_lora_rank = f.positive_int(key("kv_lora_rank", "attention_kv_lora_dim"));
    m.attention.qk_nope_head_dim = f.positive_int(key("qk_nope_head_dim", "attention_qk_dim"));
    m.attention.qk_rope_head_dim = f.positive_int(key("qk_rope_head_dim", "attention_qk_rope_dim"));
    m.attention.v_head_dim = f.positive_int(key("v_head_dim", "attention_v_dim"));
    m.attention.kv_heads = m.attention.heads;
    m.attention.head_dim = m.attention.qk_nope_head_dim + m.attention.qk_rope_head_dim;
  } else {
    m.attention.kv_heads = f.positive_int_or("num_key_value_heads", m.attention.heads);
    m.attention.type = m.attention.kv_heads < m.attention.heads ? AttentionType::gqa : AttentionType::mha;
    m.attention.head_dim = f.positive_int_or("head_dim", static_cast<int>(m.hidden / m.attention.heads));
    if (m.attention.head_dim < 1) f.fail("head_dim", "a value (hidden_size is smaller than num_attention_heads)");
  }
  if (!deepseek_v4) read_hf_attention_spans(f, m.layers, m.attention);
  m.ffn.intermediate = f.has("intermediate_size") ? f.positive_int("intermediate_size") : 0;
  // Routed-expert count: DeepSeek n_routed_experts, Pangu num_routed_experts, Mixtral num_local_experts,
  // Qwen-MoE num_experts.
  int experts = 0;
  for (const char* k : {"n_routed_experts", "num_routed_experts", "num_local_experts", "num_experts"})
    if (f.has(k)) { experts = f.positive_int(k); break; }
  if (experts > 0) {
    MoeSpec s;
    s.experts = experts;
    s.top_k = f.positive_int("num_experts_per_tok");
    // Mixtral has no moe_intermediate_size: its experts are the FFN.
    s.expert_intermediate = f.has("moe_intermediate_size") ? f.positive_int("moe_intermediate_size") : m.ffn.intermediate;
    if (f.has("n_shared_experts")) s.shared_experts = f.non_negative_int_or("n_shared_experts", 0);
    if (f.has("num_shared_experts")) s.shared_experts = f.non_negative_int_or("num_shared_experts", 0);
    s.shared_expert_intermediate = s.expert_intermediate;
    if (f.has("shared_expert_intermediate_size")) {  // Qwen2-MoE: one shared expert of its own width
      s.shared_experts = 1;
      s.shared_expert_intermediate = f.positive_int("shared_expert_intermediate_size");
    }
    if (s.top_k > s.experts) f.fail("num_experts_per_tok", "at most the expert count (" + std::to_string(s.experts) + ")");
    const char* dense_key = f.has("first_k_dense_replace") ? "first_k_dense_replace" : "num_dense_layers";
    s.first_dense_layers = f.non_negative_int_or(dense_key, 0);
    if (s.first_dense_layers >= m.layers) f.fail(dense_key, "fewer than num_hidden_layers");
    read_router_groups(f, s, "n_group", "topk_group");
    s.hash_layers = f.non_negative_int_or("num_hash_layers", 0);
    m.moe = s;
    if (s.expert_intermediate <= 0) f.fail("moe_intermediate_size", "a whole number >= 1 (or intermediate_size)");
    if (m.ffn.intermediate <= 0) m.ffn.intermediate = s.expert_intermediate;
  } else if (m.ffn.intermediate <= 0) {
    f.fail("intermediate_size", "a number > 0");
  }
  if (!deepseek_v4)  // read with the compress ratios, whose last entries may be the MTP modules'
    m.mtp_layers = f.non_negative_int_or("num_nextn_predict_layers", f.non_negative_int_or("num_mtp_layers", 0));
  // Parallel attention + FFN: GPTNeoXConfig use_parallel_residual (default true), and PhiConfig's
  // PhiDecoderLayer, which always adds both branches to the same input.
  const std::string type = f.string_or("model_type", "");
  m.parallel_block = f.boolean_or("use_parallel_residual", type == "gpt_neox") || type == "phi";
  if (m.parallel_block && m.moe) f.fail("use_parallel_residual", "false for an MoE model (parallel blocks are modelled for dense layers)");
  m.seq_len = 0;  // training sequence length is not part of config.json: the layout must give it
  return m;
}

ModelSpec load_model(const std::string& name_or_path) {
  const std::string file = resolve(name_or_path, "models", "model");
  const json j = read_json_file(file);
  if (!j.is_object()) throw InputError(file + ": top level: expected a JSON object");
  if (j.contains("hidden_size") || j.contains("num_hidden_layers")) return parse_hf_config(j, file);
  return parse_model(j, file);
}

// ------------------------------------------------------------------------------------------------
LayoutSpec parse_layout(const json& j, const std::string& file) {
  const Field f(j, file, "");
  LayoutSpec l;
  l.devices = f.positive_int("devices");
  l.tp = f.positive_int_or("tp", 1);
  l.pp = f.positive_int_or("pp", 1);
  l.vpp = f.positive_int_or("vpp", 1);
  l.ep = f.positive_int_or("ep", 1);
  // Megatron: expert tensor parallelism defaults to TP (--expert-tensor-parallel-size).
  l.etp = f.positive_int_or("etp", l.tp);
  l.cp = f.positive_int_or("cp", 1);
  l.dp = f.non_negative_int_or("dp", 0);
  l.sequence_parallel = f.boolean_or("sequence_parallel", l.tp > 1);
  l.micro_batch = f.positive_int_or("micro_batch", 1);
  l.global_batch = f.positive_int("global_batch");
  l.seq_len = f.non_negative_int_or("seq_len", 0);
  l.recompute = parse_recompute(f.string_or("recompute", "none"), file + ": field 'recompute'");
  l.recompute_num_layers = f.non_negative_int_or("recompute_num_layers", 0);
  if (l.recompute_num_layers > 0 && l.recompute != Recompute::full)
    f.fail("recompute_num_layers", "only with recompute \"full\" (Megatron's block method)");
  l.gradient_accumulation_fusion = f.boolean_or("gradient_accumulation_fusion", true);
  l.optimizer_swap = f.boolean_or("optimizer_swap", false);
  l.moe_grouped_gemm = f.boolean_or("moe_grouped_gemm", true);
  {
    const std::string dispatcher = f.choice_or("moe_dispatcher", {"alltoall", "allgather", "einsum", "flex"}, "alltoall");
    l.moe_dispatcher = dispatcher == "allgather" ? MoeDispatcher::allgather
                       : dispatcher == "einsum"  ? MoeDispatcher::einsum
                       : dispatcher == "flex"    ? MoeDispatcher::flex
                                                 : MoeDispatcher::alltoall;
  }
  if (l.moe_dispatcher == MoeDispatcher::flex)
    l.ep_dispatch_sms = f.positive_int_or("ep_dispatch_sms", LayoutSpec::default_ep_dispatch_sms);
  else if (f.has("ep_dispatch_sms"))
    f.fail("ep_dispatch_sms", "absent unless moe_dispatcher is \"flex\" (the SMs DeepEP / HybridEP kernels hold)");
  l.moe_capacity_factor = f.has("moe_capacity_factor") ? f.positive("moe_capacity_factor") : 0.0;
  l.moe_pad_to_capacity = f.boolean_or("moe_pad_to_capacity", false);
  l.moe_permutation_async_comm = f.boolean_or("moe_permutation_async_comm", false);
  if (l.moe_pad_to_capacity && l.moe_capacity_factor == 0)
    f.fail("moe_pad_to_capacity", "false unless moe_capacity_factor is set (padding to a capacity needs one)");
  if (l.moe_dispatcher == MoeDispatcher::einsum && l.moe_capacity_factor == 0)
    f.fail("moe_capacity_factor", "set with moe_dispatcher \"einsum\" (its buffers are the experts' capacity)");
  l.schedule = parse_schedule(f.string_or("schedule", l.vpp > 1 ? "interleaved" : "1f1b"), file + ": field 'schedule'");
  l.distributed_optimizer = f.boolean_or("distributed_optimizer", true);
  l.precision = f.choice_or("precision", {"bf16", "fp8"}, "bf16") == "fp8" ? Precision::fp8 : Precision::bf16;
  l.fp8_dispatch = f.boolean_or("fp8_dispatch", false);
  l.fp8_cached_inputs = f.boolean_or("fp8_cached_inputs", true);
  if (l.fp8_dispatch && l.precision != Precision::fp8) f.fail("fp8_dispatch", "false unless precision is fp8");
  if (f.has("fp8_recipe")) {
    if (l.precision != Precision::fp8) f.fail("fp8_recipe", "absent unless precision is fp8");
    const std::string recipe = f.choice_or("fp8_recipe", {"delayed", "tensorwise", "blockwise", "mxfp8"}, "delayed");
    for (Fp8Recipe r : {Fp8Recipe::delayed, Fp8Recipe::tensorwise, Fp8Recipe::blockwise, Fp8Recipe::mxfp8})
      if (recipe == to_string(r)) l.fp8_recipe = r;
  }
  l.flash_attention = f.boolean_or("flash_attention", true);
  l.softmax_fusion = f.boolean_or("softmax_fusion", true);
  l.softmax_in_fp32 = f.boolean_or("softmax_in_fp32", false);
  for (const char* field : {"softmax_fusion", "softmax_in_fp32"})
    if (f.has(field) && l.flash_attention) f.fail(field, "absent unless flash_attention is false (fused attention has no softmax pass)");
  l.zero_stage = f.non_negative_int_or("zero_stage", 0);
  l.zero_shard_dp = f.non_negative_int_or("zero_shard_dp", 0);
  l.zero_reshard_after_forward = f.boolean_or("zero_reshard_after_forward", true);
  {
    const std::string graphs = f.choice_or("cuda_graphs", {"none", "partial", "full"}, "none");
    l.cuda_graphs = graphs == "full" ? CudaGraphs::full : graphs == "partial" ? CudaGraphs::partial : CudaGraphs::none;
  }
  {
    constexpr CrossEntropy losses[] = {CrossEntropy::in_place, CrossEntropy::fused, CrossEntropy::pytorch,
                                       CrossEntropy::pytorch_bf16};
    const std::string ce = f.choice_or("cross_entropy",
                                       {to_string(losses[0]), to_string(losses[1]), to_string(losses[2]), to_string(losses[3])},
                                       to_string(CrossEntropy::in_place));
    for (CrossEntropy c : losses)
      if (ce == to_string(c)) l.cross_entropy = c;
  }
  if (f.has("recompute_modules")) {
    // Megatron-Core's --recompute-modules; "moe" and "shared_experts" (rerunning a whole MoE layer with its
    // all-to-alls) are not modelled, so they are refused rather than ignored.
    const char* expected = "a non-empty array of core_attn|layernorm|mla_up_proj|mlp|moe_act|mhc";
    if (l.recompute != Recompute::selective) f.fail("recompute_modules", "absent unless recompute is selective");
    const json& modules = f.raw().at("recompute_modules");
    if (!modules.is_array() || modules.empty()) f.fail("recompute_modules", expected);
    l.recompute_modules = 0;
    for (const json& m : modules) {
      unsigned bit = 0;
      for (const auto& [module, name] : recompute_modules_named)
        if (m.is_string() && m.get<std::string>() == name) bit = static_cast<unsigned>(module);
      if (bit == 0) f.fail("recompute_modules", expected);
      l.recompute_modules |= bit;
    }
  }
  // Optimizer-side storage types: fp32 unless the layout says bf16.
  const auto float_bytes = [&f](const char* key) {
    return f.choice_or(key, {float_type_name(4), float_type_name(2)}, float_type_name(4)) == float_type_name(2) ? 2 : 4;
  };
  l.adam_moment_bytes = float_bytes("adam_moments");
  l.main_grad_bytes = float_bytes("main_grads");
  l.activation_swap = f.non_negative_or("activation_swap", 0.0);
  l.distribute_saved_activations = f.boolean_or("distribute_saved_activations", false);
  l.loss_parallel = f.boolean_or("loss_parallel", true);
  l.master_weights = f.boolean_or("master_weights", true);
  l.sp_saves_gathered_inputs = f.boolean_or("sp_saves_gathered_inputs", false);
  if (l.sp_saves_gathered_inputs && !l.sequence_parallel)
    f.fail("sp_saves_gathered_inputs", "absent unless sequence_parallel is true");
  l.embedding_tp_replicated = f.boolean_or("embedding_tp_replicated", false);
  l.zero_no_sync = f.boolean_or("zero_no_sync", false);
  if (l.zero_no_sync && l.zero_stage < 3) f.fail("zero_no_sync", "absent unless zero_stage is 3");
  if (l.distribute_saved_activations && (l.recompute != Recompute::full || l.sequence_parallel || l.tp < 2))
    f.fail("distribute_saved_activations", "absent unless recompute is full, tp > 1 and sequence_parallel is false");
  if (l.activation_swap > 1) f.fail("activation_swap", "a fraction in [0, 1]");
  l.hierarchical_ep_all_to_all =
      f.choice_or("ep_all_to_all", {"pairwise", "hierarchical"}, "pairwise") == "hierarchical";
  if (l.hierarchical_ep_all_to_all && l.moe_dispatcher == MoeDispatcher::flex)
    f.fail("ep_all_to_all", "\"pairwise\" or absent with moe_dispatcher \"flex\" (DeepEP / HybridEP choose their own path)");
  l.pipeline_runtime = f.choice_or("pipeline_runtime", {"megatron", "torch"}, "megatron") == "torch"
                           ? PipelineRuntime::torch
                           : PipelineRuntime::megatron;
  if (l.pipeline_runtime == PipelineRuntime::torch && l.pp < 2) f.fail("pipeline_runtime", "absent unless pp > 1");
  l.cp_kv_all_gather = f.boolean_or("cp_kv_all_gather", false);
  if (l.cp_kv_all_gather && l.cp < 2) f.fail("cp_kv_all_gather", "absent unless cp > 1");
  l.cp_send_recv_overlap = f.boolean_or("cp_send_recv_overlap", true);
  if (!l.cp_send_recv_overlap && (l.cp < 2 || l.cp_kv_all_gather))
    f.fail("cp_send_recv_overlap", "absent unless cp > 1 with the ring's K/V exchange (not cp_kv_all_gather)");
  l.pipeline_layers = f.int_list_or_empty("pipeline_layers");
  if (auto o = f.optional_child("overlap")) {
    l.overlap.ep_all_to_all = o->boolean_or("ep_all_to_all", l.overlap.ep_all_to_all);
    l.overlap.tp_comm = o->boolean_or("tp_comm", l.overlap.tp_comm);
    l.overlap.dp_grad_reduce = o->boolean_or("dp_grad_reduce", l.overlap.dp_grad_reduce);
    l.overlap.dp_param_gather = o->boolean_or("dp_param_gather", l.overlap.dp_param_gather);
    l.overlap.pp_p2p = o->boolean_or("pp_p2p", l.overlap.pp_p2p);
    l.overlap.delay_wgrad = o->boolean_or("delay_wgrad", l.overlap.delay_wgrad);
    if (l.overlap.delay_wgrad && !l.overlap.ep_all_to_all)
      o->fail("delay_wgrad", "false unless overlap.ep_all_to_all is true (it only widens that overlap)");
  }
  if (auto e = f.optional_child("expert_load")) {
    l.expert_load.skew = e->non_negative_or("skew", 0.0);
    l.expert_load.seed = static_cast<unsigned>(e->non_negative_int_or("seed", 1));
    l.expert_load.redundant_experts = e->non_negative_int_or("redundant_experts", 0);
  }
  return l;
}

LayoutSpec load_layout(const std::string& path) { return parse_layout(read_json_file(path), path); }

// ------------------------------------------------------------------------------------------------
HardwareProfile parse_profile(const json& j, const std::string& file) {
  const Field f(j, file, "");
  HardwareProfile hw;
  hw.name = f.string("name");
  hw.source = f.string("source");
  const Field d = f.child("device");
  if (!d.has("source")) d.fail("source", "an object citing a source for each number");
  const Field mf = d.child("matrix_flops");
  hw.device.matrix_bf16 = mf.positive("bf16");
  hw.device.matrix_fp16 = mf.positive_or("fp16", hw.device.matrix_bf16);
  hw.device.matrix_fp8 = mf.non_negative_or("fp8", 0);
  hw.device.matrix_fp32 = mf.non_negative_or("fp32", 0);
  hw.device.matrix_tf32 = mf.non_negative_or("tf32", 0);
  hw.device.matrix_tf32_unaligned = mf.non_negative_or("tf32_unaligned", 0);
  for (std::size_t i = 0; i < gemm_layout_names.size(); ++i)
    hw.device.matrix_fp32_by_layout[i] = mf.non_negative_or(std::string("fp32_") + gemm_layout_names[i], 0);
  hw.device.vector_flops = d.positive("vector_flops");
  hw.device.hbm_bytes = d.positive("hbm_bytes");
  hw.device.hbm_bandwidth = d.positive("hbm_bandwidth");
  if (auto me = d.optional_child("matrix_efficiency")) {
    MatrixEfficiency& e = hw.device.matrix;
    e.peak_fraction = me->positive("peak_fraction");
    if (e.peak_fraction > 1) me->fail("peak_fraction", "a fraction in (0, 1]");
    e.half_saturation_flops = me->non_negative("half_saturation_flops");
    const std::vector<int> tile = me->int_list_or_empty("tile");
    if (!tile.empty()) {
      if (tile.size() != 3 || tile[0] < 1 || tile[1] < 1 || tile[2] < 1) me->fail("tile", "[m, n, k] of whole numbers >= 1");
      e.tile_m = tile[0];
      e.tile_n = tile[1];
      e.tile_k = tile[2];
    }
    e.grouped_gemm_factor = me->positive_or("grouped_gemm_factor", e.grouped_gemm_factor);
    e.attention_fraction = me->positive_or("attention_fraction", e.attention_fraction);
    e.compute_units = me->non_negative_int_or("compute_units", 0);
    e.tile_fixed_cost = me->non_negative_or("tile_fixed_cost", 0);
    if (e.tile_fixed_cost > 0 && e.compute_units == 0) me->fail("tile_fixed_cost", "compute_units as well (the tiles share them)");
    e.fp8_group_alignment = me->positive_int_or("fp8_group_alignment", e.fp8_group_alignment);
    e.fp8_any_layout = me->boolean_or("fp8_any_layout", false);
    e.fp8_fraction = me->positive_or("fp8_fraction", 1.0);
    if (e.fp8_fraction > 1) me->fail("fp8_fraction", "at most 1 (a share of peak_fraction)");
    e.fp8_blockwise_fraction = me->positive_or("fp8_blockwise_fraction", 0.0);
    if (e.fp8_blockwise_fraction > 1) me->fail("fp8_blockwise_fraction", "at most 1 (a share of peak_fraction)");
    // Both scale peak_fraction; the product is a fraction of peak and cannot exceed it (MFU > 1).
    for (const auto& [key, factor] : {std::pair{"grouped_gemm_factor", e.grouped_gemm_factor}, {"attention_fraction", e.attention_fraction}})
      if (e.peak_fraction * factor > 1) me->fail(key, fmt::format("at most 1 / peak_fraction = {:.4g}", 1 / e.peak_fraction));
  }
  auto fraction = [&](const Field& fl, const char* key, double fallback) {
    const double v = fl.positive_or(key, fallback);
    if (v > 1) fl.fail(key, "a fraction in (0, 1]");
    return v;
  };
  hw.device.vector_efficiency = fraction(d, "vector_efficiency", hw.device.vector_efficiency);
  hw.device.hbm_efficiency = fraction(d, "hbm_efficiency", hw.device.hbm_efficiency);
  hw.device.launch_overhead = d.non_negative_or("launch_overhead", hw.device.launch_overhead);
  hw.device.host_op_overhead = d.non_negative_or("host_op_overhead", 0.0);
  hw.device.host_expert_call_overhead = d.non_negative_or("host_expert_call_overhead", 0.0);
  hw.device.ring_update_bytes = d.non_negative_or("ring_update_bytes", 0.0);
  hw.device.comm_compute_slowdown = d.non_negative_or("comm_compute_slowdown", 0);
  hw.device.gemv_fixed_cost = d.non_negative_or("gemv_fixed_cost", 0);
  hw.device.host_link_bandwidth = d.non_negative_or("host_link_bandwidth", 0);
  hw.device.framework_reserve = d.non_negative_or("framework_reserve", 0);
  hw.device.allocator_cache_share = d.non_negative_or("allocator_cache_share", 0);
  if (hw.device.allocator_cache_share >= 1) d.fail("allocator_cache_share", "a fraction in [0, 1)");

  if (!f.has("tiers") || !f.raw().at("tiers").is_array() || f.raw().at("tiers").empty())
    f.fail("tiers", "a non-empty array of tiers, innermost first");
  int previous = 0;
  const json& tiers = f.raw().at("tiers");
  for (size_t i = 0; i < tiers.size(); ++i) {
    const Field t(tiers[i], file, "tiers[" + std::to_string(i) + "]");
    Tier tier;
    tier.name = t.string("name");
    tier.size = t.positive_int("size");
    // Domains nest: each tier's domain is a whole number of the previous tier's domains.
    if (tier.size <= previous || (previous > 0 && tier.size % previous != 0))
      t.fail("size", "a multiple of the previous tier's size " + std::to_string(previous) + ", and larger");
    previous = tier.size;
    tier.bandwidth = t.positive("bandwidth");
    tier.latency = t.non_negative("latency");
    tier.efficiency = fraction(t, "efficiency", 1.0);
    if (t.has("all_to_all_efficiency")) tier.all_to_all_efficiency = fraction(t, "all_to_all_efficiency", 1.0);
    tier.topology = t.choice_or("topology", {"switched", "full_mesh"}, "switched") == "full_mesh" ? TierTopology::full_mesh
                                                                                                  : TierTopology::switched;
    if (!t.has("source")) t.fail("source", "a citation for this tier's numbers");
    hw.tiers.push_back(tier);
  }
  return hw;
}

std::string profile_path(const std::string& name_or_path) {
  return resolve(name_or_path, "hw_profiles", "hardware profile");
}

HardwareProfile load_profile(const std::string& name_or_path) {
  const std::string file = profile_path(name_or_path);
  return parse_profile(read_json_file(file), file);
}

json profile_json(const HardwareProfile& hw, const json& base) {
  json j = base;
  j["name"] = hw.name;
  json& d = j["device"];
  const DeviceSpec& dev = hw.device;
  d["matrix_flops"]["bf16"] = dev.matrix_bf16;
  d["matrix_flops"]["fp16"] = dev.matrix_fp16;
  d["matrix_flops"]["fp8"] = dev.matrix_fp8;
  if (dev.matrix_fp32 > 0) d["matrix_flops"]["fp32"] = dev.matrix_fp32;
  if (dev.matrix_tf32 > 0) d["matrix_flops"]["tf32"] = dev.matrix_tf32;
  if (dev.matrix_tf32_unaligned > 0) d["matrix_flops"]["tf32_unaligned"] = dev.matrix_tf32_unaligned;
  for (std::size_t i = 0; i < gemm_layout_names.size(); ++i)
    if (dev.matrix_fp32_by_layout[i] > 0) d["matrix_flops"][std::string("fp32_") + gemm_layout_names[i]] = dev.matrix_fp32_by_layout[i];
  d["vector_flops"] = dev.vector_flops;
  d["hbm_bytes"] = dev.hbm_bytes;
  d["hbm_bandwidth"] = dev.hbm_bandwidth;
  const MatrixEfficiency& e = dev.matrix;
  d["matrix_efficiency"]["peak_fraction"] = e.peak_fraction;
  d["matrix_efficiency"]["half_saturation_flops"] = e.half_saturation_flops;
  d["matrix_efficiency"]["tile"] = {e.tile_m, e.tile_n, e.tile_k};
  d["matrix_efficiency"]["grouped_gemm_factor"] = e.grouped_gemm_factor;
  d["matrix_efficiency"]["attention_fraction"] = e.attention_fraction;
  if (e.compute_units > 0) d["matrix_efficiency"]["compute_units"] = e.compute_units;
  if (e.tile_fixed_cost > 0) d["matrix_efficiency"]["tile_fixed_cost"] = e.tile_fixed_cost;
  d["matrix_efficiency"]["fp8_group_alignment"] = e.fp8_group_alignment;
  d["matrix_efficiency"]["fp8_any_layout"] = e.fp8_any_layout;
  d["matrix_efficiency"]["fp8_fraction"] = e.fp8_fraction;
  if (e.fp8_blockwise_fraction > 0) d["matrix_efficiency"]["fp8_blockwise_fraction"] = e.fp8_blockwise_fraction;
  d["vector_efficiency"] = dev.vector_efficiency;
  d["hbm_efficiency"] = dev.hbm_efficiency;
  d["launch_overhead"] = dev.launch_overhead;
  d["host_op_overhead"] = dev.host_op_overhead;
  if (dev.host_expert_call_overhead > 0) d["host_expert_call_overhead"] = dev.host_expert_call_overhead;
  if (dev.ring_update_bytes > 0) d["ring_update_bytes"] = dev.ring_update_bytes;
  d["comm_compute_slowdown"] = dev.comm_compute_slowdown;
  if (dev.gemv_fixed_cost > 0) d["gemv_fixed_cost"] = dev.gemv_fixed_cost;
  d["host_link_bandwidth"] = dev.host_link_bandwidth;
  d["framework_reserve"] = dev.framework_reserve;
  d["allocator_cache_share"] = dev.allocator_cache_share;
  json& tiers = j["tiers"];
  for (std::size_t i = 0; i < hw.tiers.size() && i < tiers.size(); ++i) {
    const Tier& t = hw.tiers[i];
    tiers[i]["name"] = t.name;
    tiers[i]["size"] = t.size;
    tiers[i]["bandwidth"] = t.bandwidth;
    tiers[i]["latency"] = t.latency;
    tiers[i]["efficiency"] = t.efficiency;
    if (t.all_to_all_efficiency) tiers[i]["all_to_all_efficiency"] = *t.all_to_all_efficiency;
    tiers[i]["topology"] = t.topology == TierTopology::full_mesh ? "full_mesh" : "switched";
  }
  return j;
}

}  // namespace moesim::io
