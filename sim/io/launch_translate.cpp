// Megatron-LM / MindSpeed-LLM arguments -> moesim model and layout, and back (launch_arguments).
// Defaults are Megatron-LM's (megatron/training/arguments.py) where a flag is absent.
#include <fmt/format.h>

#include <cmath>
#include <map>
#include <regex>

#include "sim/io/launch_flags.h"
#include "sim/io/specs_io.h"

namespace moesim::io::launch {

namespace {

// The last value of each flag, with checked conversions whose errors name file, line and flag.
class Arguments {
 public:
  explicit Arguments(const ArgumentList& list) : file_(list.file) {
    for (const LaunchArgument& a : list.args) {
      const auto [it, inserted] = by_flag_.emplace(a.flag, &a);
      // argparse keeps the last value; two different values for one flag are a contradiction in the script.
      if (!inserted && it->second->values != a.values)
        fail(a, fmt::format("one value (also set to '{}' on line {})", fmt::join(it->second->values, " "), it->second->line));
      it->second = &a;
    }
  }
  bool has(const std::string& flag) const { return by_flag_.count(flag) > 0; }
  const LaunchArgument* find(const std::string& flag) const {
    const auto it = by_flag_.find(flag);
    return it == by_flag_.end() ? nullptr : it->second;
  }
  std::string text(const std::string& flag, const std::string& fallback = "") const {
    const LaunchArgument* a = find(flag);
    return a && !a->values.empty() ? a->values.front() : fallback;
  }
  std::vector<std::string> list(const std::string& flag) const {
    const LaunchArgument* a = find(flag);
    std::vector<std::string> out;
    if (!a) return out;
    // A YAML string "moe_act layernorm" or a shell list: either way one name per word.
    for (const std::string& v : a->values) {
      std::size_t start = 0;
      while (start < v.size()) {
        const std::size_t end = v.find_first_of(" ,", start);
        if (end != start) out.push_back(v.substr(start, end == std::string::npos ? std::string::npos : end - start));
        if (end == std::string::npos) break;
        start = end + 1;
      }
    }
    return out;
  }
  int integer(const std::string& flag, int fallback, int min = 1) const {
    const LaunchArgument* a = find(flag);
    if (!a) return fallback;
    const std::string& v = a->values.front();
    std::size_t used = 0;
    long n = 0;
    try {
      n = std::stol(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != v.size() || n < min || n > 1'000'000'000)
      fail(*a, fmt::format("a whole number >= {}, got '{}'", min, v.substr(0, 40)));
    return static_cast<int>(n);
  }
  double number(const std::string& flag, double fallback) const {
    const LaunchArgument* a = find(flag);
    if (!a) return fallback;
    try {
      std::size_t used = 0;
      const double d = std::stod(a->values.front(), &used);
      if (used == a->values.front().size() && std::isfinite(d)) return d;
    } catch (const std::exception&) {
    }
    fail(*a, "a number, got '" + a->values.front().substr(0, 40) + "'");
  }
  [[noreturn]] void fail(const LaunchArgument& a, const std::string& expected) const {
    throw InputError(fmt::format("{}:{}: --{}: expected {}", file_, a.line, a.flag, expected));
  }
  [[noreturn]] void fail(const std::string& flag, const std::string& expected) const {
    if (const LaunchArgument* a = find(flag)) fail(*a, expected);
    throw InputError(fmt::format("{}: --{}: expected {}", file_, flag, expected));
  }

 private:
  std::string file_;
  std::map<std::string, const LaunchArgument*> by_flag_;
};

// Megatron-LM's _vocab_size_with_padding: up to a multiple of make-vocab-size-divisible-by x TP.
int padded_vocab(int vocab, int divisible_by, int tp) {
  const int multiple = divisible_by * tp;
  return (vocab + multiple - 1) / multiple * multiple;
}

// Vocabulary sizes fixed by a tokenizer type, not by files the script points to.
std::optional<int> tokenizer_vocab(const std::string& type) {
  if (type == "Llama2Tokenizer") return 32000;   // Llama 2's SentencePiece model
  if (type == "GPT2BPETokenizer") return 50257;  // GPT-2's BPE merges
  return std::nullopt;
}

// Megatron-Core --moe-layer-freq: 1 (every layer), or the list expression "([0]*3+[1]*58)" whose leading
// zeros are dense layers; other patterns (interleaved dense layers) are not modelled.
int first_dense_layers(const Arguments& a) {
  if (a.has("first-k-dense-replace")) return a.integer("first-k-dense-replace", 0, 0);
  const std::string freq = a.text("moe-layer-freq", "1");
  if (freq == "1") return 0;
  static const std::regex leading_dense(R"(\(?\[0\]\*(\d+)\+\[1\]\*(\d+)\)?)");
  std::smatch m;
  if (!std::regex_match(freq, m, leading_dense))
    a.fail("moe-layer-freq", "1 or ([0]*N+[1]*M) (leading dense layers; other patterns are not modelled), got '" + freq + "'");
  return std::stoi(m[1].str());
}

json model_json(const Arguments& a, const ArgumentList& list, const LaunchOptions& options, std::vector<std::string>& notes) {
  const int noop = a.has("noop-layers") ? static_cast<int>(a.list("noop-layers").size()) : 0;
  const int layers = a.integer("num-layers", 0) - noop;
  if (!a.has("num-layers")) a.fail("num-layers", "the number of transformer layers (no default)");
  if (layers < 1) a.fail("noop-layers", "fewer no-op layers than --num-layers");
  const int hidden = a.integer("hidden-size", 0);
  const int heads = a.integer("num-attention-heads", 0);
  if (!a.has("hidden-size")) a.fail("hidden-size", "the hidden size (no default)");
  if (!a.has("num-attention-heads")) a.fail("num-attention-heads", "the number of attention heads (no default)");
  const bool swiglu = a.has("swiglu");
  // Megatron-LM: 4h, or with SwiGLU 2/3 of that rounded down to a multiple of 64.
  const int default_ffn = swiglu ? static_cast<int>(4.0 * hidden * 2 / 3 / 64) * 64 : 4 * hidden;
  const int ffn = a.integer("ffn-hidden-size", default_ffn);
  const int tp = a.integer("tensor-model-parallel-size", 1);

  int vocab = 0;
  if (options.vocab) {
    vocab = *options.vocab;
    notes.push_back(fmt::format("vocab {} from --vocab", vocab));
  } else if (a.has("padded-vocab-size")) {
    vocab = a.integer("padded-vocab-size", 0);
  } else {
    const int divisible = a.integer("make-vocab-size-divisible-by", 128);
    const auto from_tokenizer = tokenizer_vocab(a.text("tokenizer-type", a.has("vocab-file") ? "GPT2BPETokenizer" : ""));
    if (!a.has("vocab-size") && !from_tokenizer)
      a.fail(a.has("tokenizer-type") ? "tokenizer-type" : "vocab-size",
             "a vocabulary size: --vocab-size or --padded-vocab-size (tokenizer '" + a.text("tokenizer-type", "none") +
                 "' keeps it in its files; give moesim --vocab N)");
    vocab = padded_vocab(a.has("vocab-size") ? a.integer("vocab-size", 0) : *from_tokenizer, divisible, tp);
    if (!a.has("vocab-size")) notes.push_back(fmt::format("vocab {} from tokenizer {} padded as Megatron-LM pads it", vocab, a.text("tokenizer-type", "GPT2BPETokenizer")));
  }

  json m = {{"name", std::filesystem::path(list.file).stem().string()},
            {"source", list.format + ": " + list.file},
            {"layers", layers},
            {"hidden", hidden},
            {"vocab", vocab},
            {"seq_len", a.integer("seq-length", 0, 0)},
            {"ffn", {{"intermediate", ffn}, {"activation", swiglu ? "swiglu" : "gelu"}}},
            {"mtp_layers", a.integer("mtp-num-layers", 0, 0)},
            {"tie_embeddings", !a.has("untie-embeddings-and-output-weights")}};
  // Megatron-LM's default position embedding is a learned absolute table.
  const std::string position = a.has("no-position-embedding") || a.has("use-rotary-position-embeddings")
                                   ? "rope" : a.text("position-embedding-type", "learned_absolute");
  m["learned_position_embeddings"] = position == "learned_absolute";
  m["dropout"] = a.number("hidden-dropout", 0.1) > 0 || a.number("attention-dropout", 0.1) > 0;

  if (a.has("multi-latent-attention") || a.has("multi-head-latent-attention")) {
    m["attention"] = {{"type", "mla"},
                      {"heads", heads},
                      {"q_lora_rank", a.integer("q-lora-rank", 0, 0)},
                      {"kv_lora_rank", a.integer("kv-lora-rank", 512)},
                      {"qk_nope_head_dim", a.integer("qk-head-dim", a.integer("qk-nope-head-dim", 128))},
                      {"qk_rope_head_dim", a.integer("qk-pos-emb-head-dim", a.integer("qk-rope-head-dim", 64))},
                      {"v_head_dim", a.integer("v-head-dim", 128)}};
  } else {
    // --num-query-groups counts only with --group-query-attention (Megatron-LM ignores it otherwise).
    const int kv = a.has("group-query-attention") ? a.integer("num-query-groups", 1) : heads;
    m["attention"] = {{"type", kv < heads ? "gqa" : "mha"}, {"heads", heads}, {"kv_heads", kv}};
    if (a.has("kv-channels")) m["attention"]["head_dim"] = a.integer("kv-channels", 0);
  }

  if (a.has("num-experts")) {
    const int expert_width = a.integer("moe-ffn-hidden-size", a.integer("moe-intermediate-size", ffn));
    // MindSpeed-LLM's group_limited_greedy (--topk-group without a group count) groups the experts by
    // EP rank, as DeepSeek-V2's device-limited routing does.
    const int groups = a.has("moe-router-num-groups") ? a.integer("moe-router-num-groups", 1)
                       : a.has("topk-group")           ? a.integer("expert-model-parallel-size", 1)
                                                       : 1;
    json moe = {{"experts", a.integer("num-experts", 0)},
                {"top_k", a.integer("moe-router-topk", 2)},
                {"expert_intermediate", expert_width},
                {"first_dense_layers", first_dense_layers(a)},
                {"router_groups", groups},
                {"router_group_top_k", a.integer("moe-router-group-topk", a.integer("topk-group", groups))}};
    // Megatron-Core: one shared expert of the given total width; MindSpeed-LLM: N experts of the routed width.
    if (a.has("moe-shared-expert-intermediate-size")) {
      moe["shared_experts"] = 1;
      moe["shared_expert_intermediate"] = a.integer("moe-shared-expert-intermediate-size", 0);
    } else if (a.has("n-shared-experts")) {
      moe["shared_experts"] = a.integer("n-shared-experts", 0, 0);
    }
    m["moe"] = moe;
  }
  return m;
}

// Megatron-Core --pipeline-model-parallel-layout ("Et*4|(tttt|)*14tmL"): virtual stages split by '|',
// 't' a decoder layer, E / m / L the embedding, MTP and loss; "x*N" and "(...)*N" repeat.
std::vector<int> layout_stages(const Arguments& a) {
  std::string s = a.text("pipeline-model-parallel-layout");
  static const std::regex group(R"(\(([^()]*)\)\*(\d+))"), single(R"(([A-Za-z])\*(\d+))");
  for (const std::regex* re : {&group, &single}) {
    std::smatch m;
    while (std::regex_search(s, m, *re)) {
      const int n = std::stoi(m[2].str());
      if (n > 100000) a.fail("pipeline-model-parallel-layout", "repeat counts below 100000");
      std::string repeated;
      for (int i = 0; i < n; ++i) repeated += m[1].str();
      s = m.prefix().str() + repeated + m.suffix().str();
    }
  }
  std::vector<int> layers{0};
  for (char c : s) {
    if (c == '|') layers.push_back(0);
    else if (c == 't') ++layers.back();
    else if (c != 'E' && c != 'm' && c != 'L' && c != ' ')
      a.fail("pipeline-model-parallel-layout", std::string("stages of t, E, m, L separated by | (got '") + c + "')");
  }
  return layers;
}

void set_pipeline(const Arguments& a, int layers, int pp, json& l) {
  int vpp = 1;
  if (a.has("num-layers-per-virtual-pipeline-stage")) {
    // Megatron-Core's account-for-embedding/loss-in-pipeline-split count the embedding and the loss as
    // one layer each when the layers are cut into virtual stages.
    const int counted = layers + a.has("account-for-embedding-in-pipeline-split") + a.has("account-for-loss-in-pipeline-split");
    const int per_stage = a.integer("num-layers-per-virtual-pipeline-stage", 1);
    if (counted % (pp * per_stage) != 0)
      a.fail("num-layers-per-virtual-pipeline-stage", fmt::format("a divisor of --num-layers / PP = {} / {}", counted, pp));
    vpp = counted / (pp * per_stage);
  } else if (a.has("num-virtual-stages-per-pipeline-rank")) {
    vpp = a.integer("num-virtual-stages-per-pipeline-rank", 1);
  } else if (a.has("pipeline-model-parallel-layout")) {
    const std::vector<int> stages = layout_stages(a);
    if (stages.size() % pp != 0) a.fail("pipeline-model-parallel-layout", fmt::format("a multiple of PP = {} stages, got {}", pp, stages.size()));
    vpp = static_cast<int>(stages.size()) / pp;
    l["pipeline_layers"] = stages;
  }
  if (a.has("num-layer-list")) {
    std::vector<int> split;
    for (const std::string& n : a.list("num-layer-list")) split.push_back(std::atoi(n.c_str()));
    if (static_cast<int>(split.size()) != pp) a.fail("num-layer-list", fmt::format("{} comma-separated layer counts (one per stage)", pp));
    l["pipeline_layers"] = split;
  }
  l["vpp"] = vpp;
  const std::string method = a.text("schedules-method");
  if (!method.empty() && method != "dualpipev") a.fail("schedules-method", "dualpipev, got '" + method + "'");
  l["schedule"] = method == "dualpipev" ? "dualpipe" : vpp > 1 ? "interleaved" : "1f1b";
}

json layout_json(const Arguments& a, const ArgumentList& list, const LaunchOptions& options, int layers, std::vector<std::string>& notes) {
  json l = json::object();
  if (options.devices) l["devices"] = *options.devices;
  else if (list.devices) {
    l["devices"] = *list.devices;
    notes.push_back(fmt::format("devices {} from {}", *list.devices, list.devices_from));
  } else {
    throw InputError(list.file + ": devices: expected NNODES and NPUS_PER_NODE / GPUS_PER_NODE (or the launcher's --nnodes and --nproc_per_node), or moesim --devices N");
  }
  const int tp = a.integer("tensor-model-parallel-size", 1), pp = a.integer("pipeline-model-parallel-size", 1);
  const int cp = a.integer("context-parallel-size", 1), ep = a.integer("expert-model-parallel-size", 1);
  const int devices = l["devices"].get<int>();
  if (devices % (tp * pp * cp) != 0) {
    a.fail(a.has("tensor-model-parallel-size") ? "tensor-model-parallel-size" : "pipeline-model-parallel-size",
           fmt::format("TP x PP x CP = {} x {} x {} to divide the {} devices", tp, pp, cp, devices));
  }
  l["tp"] = tp;
  l["pp"] = pp;
  l["cp"] = cp;
  // MindSpeed's ring attention (--context-parallel-algo megatron_cp_algo, a MindSpeed flag) sends and
  // receives each step in turn without --use-cp-send-recv-overlap (LayoutSpec::cp_send_recv_overlap).
  if (cp > 1 && a.text("context-parallel-algo") == "megatron_cp_algo" && !a.has("use-cp-send-recv-overlap"))
    l["cp_send_recv_overlap"] = false;
  // MindSpeed-LLM --moe-tp-extend-ep: experts are split over TP x EP ranks instead of sliced by TP.
  if (a.has("moe-tp-extend-ep")) {
    l["ep"] = tp * ep;
    l["etp"] = 1;
  } else {
    l["ep"] = ep;
    if (a.has("expert-tensor-parallel-size")) l["etp"] = a.integer("expert-tensor-parallel-size", 1);
  }
  const int slots = layers + (a.has("noop-layers") ? static_cast<int>(a.list("noop-layers").size()) : 0);
  set_pipeline(a, slots, pp, l);
  l["sequence_parallel"] = a.has("sequence-parallel");
  l["micro_batch"] = a.integer("micro-batch-size", 1);
  if (!a.has("global-batch-size")) a.fail("global-batch-size", "the global batch size in sequences");
  l["global_batch"] = a.integer("global-batch-size", 1);
  l["seq_len"] = a.integer("seq-length", 0, 0);
  const std::string granularity = a.text("recompute-granularity", "none");
  if (granularity != "none" && granularity != "full" && granularity != "selective")
    a.fail("recompute-granularity", "full or selective, got '" + granularity + "'");
  l["recompute"] = granularity;
  if (granularity == "selective" && a.has("recompute-modules")) l["recompute_modules"] = a.list("recompute-modules");
  // Block recompute reruns only the first N layers of each model chunk; Megatron-LM of 2023-24 (ModelLink's
  // base) defaults N to 1. The uniform method checkpoints every layer.
  const std::string method = a.text("recompute-method", "uniform");
  if (method != "uniform" && method != "block") a.fail("recompute-method", "uniform or block, got '" + method + "'");
  if (granularity == "full" && method == "block") {
    const int chunk_layers = slots / (pp * l.value("vpp", 1));
    const int rerun = a.integer("recompute-num-layers", 1);
    if (rerun < chunk_layers) l["recompute_num_layers"] = rerun;
  }
  if (a.has("no-gradient-accumulation-fusion")) l["gradient_accumulation_fusion"] = false;
  if (a.has("swap-optimizer")) l["optimizer_swap"] = true;
  l["distributed_optimizer"] = a.has("use-distributed-optimizer");
  const bool fp8 = a.has("fp8-format") || a.has("fp8-recipe");
  l["precision"] = fp8 ? "fp8" : "bf16";
  // Megatron's --fp8-recipe names the recipe as the layout does (default delayed); "custom" has no cost model.
  if (fp8 && a.has("fp8-recipe")) l["fp8_recipe"] = a.text("fp8-recipe");
  // Megatron-Core dispatches BF16 tokens with either flex backend: its FusedDispatch hands DeepEP's
  // Buffer.dispatch the hidden states unquantised (DeepEP sends FP8 only when given an (fp8, scales) tuple),
  // and HybridEP asserts it has no FP8 dispatch (megatron/core/transformer/moe/fused_a2a.py).
  l["fp8_dispatch"] = false;
  l["flash_attention"] = a.has("use-flash-attn") || a.text("transformer-impl") == "transformer_engine";
  // Without flash attention the softmax path decides how often the s x s scores cross HBM (LayoutSpec).
  if (!l["flash_attention"].get<bool>()) {
    l["softmax_fusion"] = !a.has("no-masked-softmax-fusion");
    l["softmax_in_fp32"] = a.has("attention-softmax-in-fp32");
  }
  const bool ep_overlap = a.has("moe-alltoall-overlap-comm") || a.has("overlap-moe-expert-parallel-comm") || a.has("moe-fb-overlap");
  l["overlap"] = {{"ep_all_to_all", ep_overlap},
                  // MC2 fuses TP collectives into the GEMMs; Ascend CoC (communication over computation) overlaps them in slices.
                  {"tp_comm", a.has("use-mc2") || a.has("use-ascend-coc") || a.has("tp-comm-overlap")},
                  {"dp_grad_reduce", a.has("overlap-grad-reduce")},
                  {"dp_param_gather", a.has("overlap-param-gather")},
                  {"delay_wgrad", ep_overlap && a.has("delay-wgrad-compute")}};
  if (a.has("num-experts")) {
    // Without --moe-grouped-gemm Megatron runs the local experts one GEMM after another (SequentialMLP).
    if (!a.has("moe-grouped-gemm")) l["moe_grouped_gemm"] = false;
    // Megatron-Core's default dispatcher is allgather (megatron/training/arguments.py); scripts of the
    // legacy model path (no --use-mcore-models in MindSpeed-LLM) dispatch by all-to-all.
    const bool mcore = a.has("use-mcore-models") || list.format != "shell script";
    // MindSpeed-LLM's legacy MoE (ModelLink 2024: modellink/model/moe.py SwitchMLP over AscendSpeed's
    // DeepSpeed-style MoE) is the one that takes --moe-train-capacity-factor (default 1.0,
    // modellink/adaptor_arguments.py) and --noisy_gate_policy: GShard einsum dispatch with capacity.
    const bool gshard = !mcore && !a.has("moe-token-dispatcher-type") &&
                        (a.has("moe-train-capacity-factor") || a.has("noisy-gate-policy"));
    const auto capacity = [&a](const std::string& flag) {
      const double factor = a.number(flag, 1.0);
      if (factor <= 0) a.fail(*a.find(flag), "a positive capacity factor");
      return factor;
    };
    if (gshard) {
      l["moe_dispatcher"] = "einsum";
      l["moe_capacity_factor"] = capacity("moe-train-capacity-factor");
    } else {
      const std::string dispatcher = a.text("moe-token-dispatcher-type", mcore ? "allgather" : "alltoall");
      if (dispatcher == "allgather" || dispatcher == "flex") l["moe_dispatcher"] = dispatcher;
      else if (dispatcher != "alltoall" && dispatcher != "alltoall_seq")
        notes.push_back("EP dispatcher " + dispatcher + " simulated as an all-to-all");
      // The SMs the flex backend's kernels hold (Megatron-Core TransformerConfig moe_deepep_num_sms, default 20;
      // moe_hybridep_num_sms); the backend's own flag counts.
      if (dispatcher == "flex") {
        const std::string sms_flag = a.text("moe-flex-dispatcher-backend", "deepep") == "hybridep" ? "moe-hybridep-num-sms"
                                                                                                     : "moe-deepep-num-sms";
        if (a.has(sms_flag)) l["ep_dispatch_sms"] = a.integer(sms_flag, LayoutSpec::default_ep_dispatch_sms);
      }
      // MindSpeed's permutation and expert code paths (MindSpeed-LLM megatron_patch.py, MindSpeed
      // megatron_adaptor.py mcore_moe_adaptation select them by this flag and the dispatcher).
      if (a.has("moe-permutation-async-comm")) l["moe_permutation_async_comm"] = true;
      // Megatron-Core drops tokens over capacity (--moe-expert-capacity-factor) and pads to it with
      // --moe-pad-expert-input-to-capacity (moe_utils.get_capacity, token_dispatcher.py).
      if (a.has("moe-expert-capacity-factor")) {
        l["moe_capacity_factor"] = capacity("moe-expert-capacity-factor");
        l["moe_pad_to_capacity"] = a.has("moe-pad-expert-input-to-capacity");
      }
    }
  }
  // CUDA graphs: Transformer Engine graphs of some modules (partial), or the local full-iteration capture.
  // --external-cuda-graph is the deprecated spelling of --cuda-graph-impl transformer_engine (Megatron-LM
  // megatron/training/arguments.py replaces the one by the other).
  const std::string graph_impl = a.has("external-cuda-graph") ? "transformer_engine" : a.text("cuda-graph-impl", "none");
  const auto scope = a.list("cuda-graph-scope");
  const bool full_iteration = std::find(scope.begin(), scope.end(), "full_iteration") != scope.end();
  l["cuda_graphs"] = graph_impl == "transformer_engine" ? "partial" : graph_impl == "local" && full_iteration ? "full" : "none";
  if (a.has("cross-entropy-loss-fusion") && a.text("cross-entropy-fusion-impl", "native") == "te") l["cross_entropy"] = "fused";
  if (a.has("use-precision-aware-optimizer") && a.text("exp-avg-dtype", "fp32") == "bf16") l["adam_moments"] = "bf16";
  if (a.has("grad-reduce-in-bf16") || a.text("main-grads-dtype", "fp32") == "bf16") l["main_grads"] = "bf16";
  l["source"] = list.format + ": " + list.file;
  return l;
}

}  // namespace

LaunchConfig translate_arguments(const ArgumentList& list, const LaunchOptions& options) {
  const Arguments a(list);
  LaunchConfig c;
  c.file = list.file;
  c.format = list.format;
  c.model = model_json(a, list, options, c.notes);
  c.layout = layout_json(a, list, options, c.model["layers"].get<int>(), c.notes);
  for (const LaunchArgument& arg : list.args) {
    const std::string shown = fmt::format("--{}{}{}", arg.flag, arg.values.empty() ? "" : " ", fmt::join(arg.values, " "));
    switch (find_flag(arg.flag)->use) {
      case FlagUse::model:
      case FlagUse::layout: c.used.push_back(shown); break;
      case FlagUse::irrelevant: c.ignored.push_back(shown); break;
      case FlagUse::not_modelled: c.not_modelled.push_back(shown); break;
    }
  }
  return c;
}

}  // namespace moesim::io::launch
