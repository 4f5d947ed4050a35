// Launch scripts in, launch arguments out (sim/io/launch_script.h): every launch script and YAML of
// ../shared/validation/ascend/scripts and the Megatron-LM moe_recipes YAMLs of tests/data/launch give
// the model and layout of their validation records, and the arguments moesim writes read back to the
// same model and layout.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "costmodels/layout.h"
#include "sim/io/launch_script.h"
#include "sim/io/specs_io.h"
#include "tests/files.h"

using namespace moesim;
namespace fs = std::filesystem;

namespace {

const std::string shared_scripts = std::string(MOESIM_SHARED_DIR) + "/validation/ascend/scripts";

using Fields = std::map<std::string, std::string>;

std::string s(double v) { return std::to_string(static_cast<long long>(v)); }

// The fields a launch script sets, as text, for comparison and for naming what disagrees.
Fields model_fields(const ModelSpec& m) {
  Fields f = {{"layers", s(m.layers)},          {"hidden", s(m.hidden)},
              {"heads", s(m.attention.heads)},  {"kv_heads", s(m.attention.kv_heads)},
              {"vocab", s(m.vocab)},            {"attention", io::to_string(m.attention.type)},
              {"mtp_layers", s(m.mtp_layers)},  {"tie_embeddings", m.tie_embeddings ? "true" : "false"}};
  if (m.dense_layers() > 0) f["ffn"] = s(m.ffn.intermediate);
  if (m.moe) {
    f["experts"] = s(m.moe->experts);
    f["top_k"] = s(m.moe->top_k);
    f["expert_intermediate"] = s(m.moe->expert_intermediate);
    // One shared expert of width 8w and eight of width w are the same FFN (Qwen2-57B's shared expert).
    f["shared_width"] = s(m.moe->shared_experts * m.moe->shared_expert_intermediate);
    f["first_dense_layers"] = s(m.moe->first_dense_layers);
  }
  return f;
}

Fields layout_fields(const LayoutSpec& l) {
  return {{"devices", s(l.devices)},     {"tp", s(l.tp)},
          {"pp", s(l.pp)},               {"vpp", s(l.vpp)},
          {"ep", s(l.ep)},               {"cp", s(l.cp)},
          {"dp", s(l.dp)},               {"sequence_parallel", l.sequence_parallel ? "true" : "false"},
          {"micro_batch", s(l.micro_batch)}, {"global_batch", s(l.global_batch)},
          {"seq_len", s(l.seq_len)},     {"recompute", io::to_string(l.recompute)},
          {"schedule", io::to_string(l.schedule)}, {"distributed_optimizer", l.distributed_optimizer ? "true" : "false"},
          {"precision", io::to_string(l.precision)}, {"flash_attention", l.flash_attention ? "true" : "false"},
          {"etp", s(l.etp)}, {"tp_comm", l.overlap.tp_comm ? "true" : "false"},
          {"ep_overlap", l.overlap.ep_all_to_all ? "true" : "false"}, {"dp_grad_reduce", l.overlap.dp_grad_reduce ? "true" : "false"},
          {"dp_param_gather", l.overlap.dp_param_gather ? "true" : "false"}, {"cuda_graphs", std::to_string(static_cast<int>(l.cuda_graphs))},
          {"cross_entropy", io::to_string(l.cross_entropy)}, {"adam_moments", s(l.adam_moment_bytes)},
          {"fp8_dispatch", l.fp8_dispatch ? "true" : "false"}, {"recompute_num_layers", s(l.recompute_num_layers)},
          {"gradient_accumulation_fusion", l.gradient_accumulation_fusion ? "true" : "false"},
          {"moe_grouped_gemm", l.moe_grouped_gemm ? "true" : "false"}, {"optimizer_swap", l.optimizer_swap ? "true" : "false"},
          {"cp_send_recv_overlap", l.cp_send_recv_overlap ? "true" : "false"},
          {"moe_dispatcher", io::to_string(l.moe_dispatcher)}, {"moe_capacity_factor", std::to_string(l.moe_capacity_factor)},
          {"moe_pad_to_capacity", l.moe_pad_to_capacity ? "true" : "false"}, {"ep_dispatch_sms", s(l.ep_dispatch_sms)},
          {"moe_permutation_async_comm", l.moe_permutation_async_comm ? "true" : "false"}};
}

// "field: script x, record y" for each field both hold and that differs.
std::vector<std::string> differences(const Fields& script, const Fields& record) {
  std::vector<std::string> out;
  for (const auto& [key, value] : record) {
    const auto it = script.find(key);
    if (it != script.end() && it->second != value) out.push_back(key + ": script " + it->second + ", record " + value);
  }
  return out;
}

struct Read {
  ModelSpec model;
  LayoutSpec layout;
  io::LaunchConfig config;
  bool vocab_from_record = false;
};

// Reads a launch file; where its arguments hold no vocabulary size (a tokenizer's files do), the
// record's is given as --vocab would give it.
Read read(const std::string& path, int record_vocab) {
  Read r;
  try {
    r.config = io::read_launch_file(path);
  } catch (const InputError& e) {
    if (std::string(e.what()).find("vocabulary size") == std::string::npos) throw;
    r.config = io::read_launch_file(path, {std::nullopt, record_vocab});
    r.vocab_from_record = true;
  }
  r.model = io::parse_model(r.config.model, path);
  if (!r.config.layout.contains("seq_len") || r.config.layout["seq_len"] == 0) r.config.layout["seq_len"] = r.model.seq_len;
  r.layout = io::parse_layout(r.config.layout, path);
  if (auto err = complete_and_check_layout(r.model, r.layout)) FAIL(path << ": " << *err);
  return r;
}

// The shared data set's record (../shared/validation/ascend_runs.json) in the same fields.
std::pair<Fields, Fields> shared_record_fields(const io::json& r) {
  const io::json& m = r.at("model");
  const io::json& p = r.at("parallelism");
  const auto num = [](const io::json& j, const char* k, long fallback) { return j.contains(k) && !j[k].is_null() ? s(j[k].get<double>()) : s(fallback); };
  Fields model = {{"layers", num(m, "num_layers", 0)}, {"hidden", num(m, "hidden_size", 0)}, {"heads", num(m, "num_attention_heads", 0)},
                  {"kv_heads", num(m, "num_kv_heads", 0)}, {"vocab", num(m, "vocab_size", 0)}};
  if (m.contains("moe") && m["moe"].is_object()) {
    model["experts"] = num(m["moe"], "experts", 0);
    model["top_k"] = num(m["moe"], "top_k", 0);
    model["expert_intermediate"] = num(m["moe"], "expert_ffn", 0);
  }
  Fields layout = {{"devices", num(r.at("hardware"), "num_devices", 0)}, {"tp", num(p, "tp", 1)}, {"pp", num(p, "pp", 1)},
                   {"vpp", num(p, "vpp", 1)}, {"ep", num(p, "ep", 1)}, {"cp", num(p, "cp", 1)}, {"dp", num(p, "dp", 1)},
                   {"global_batch", num(r.at("batch"), "global_batch_seqs", 0)}, {"micro_batch", num(r.at("batch"), "micro_batch", 0)},
                   {"seq_len", num(m, "seq_len", 0)}};
  for (const char* k : {"sequence_parallel", "distributed_optimizer"})
    if (p.contains(k) && p[k].is_boolean()) layout[k] = p[k].get<bool>() ? "true" : "false";
  return {model, layout};
}

// Reading the arguments moesim writes gives the same model and layout back.
void check_round_trip(const Read& r, const std::string& id) {
  for (io::LaunchDialect dialect : {io::LaunchDialect::mindspeed, io::LaunchDialect::megatron}) {
    if (dialect == io::LaunchDialect::megatron &&
        (r.layout.schedule == ScheduleKind::dualpipe || r.layout.moe_dispatcher == MoeDispatcher::einsum ||
         r.layout.moe_permutation_async_comm || !r.layout.cp_send_recv_overlap))
      continue;  // no Megatron flag
    const test::ScratchDir dir("launch-round-trip");
    const std::string script = dir.file(id + ".sh");
    {
      std::ofstream out(script);
      out << "NNODES=1\nNPUS_PER_NODE=" << r.layout.devices << "\n" << io::launch_arguments(r.model, r.layout, dialect)
          << "torchrun --nnodes $NNODES --nproc_per_node $NPUS_PER_NODE pretrain_gpt.py $GPT_ARGS\n";
    }
    const Read back = read(script, static_cast<int>(r.model.vocab));
    INFO(id << " written as " << io::to_string(dialect) << " arguments");
    for (const auto& d : differences(model_fields(back.model), model_fields(r.model))) FAIL_CHECK(d);
    for (const auto& d : differences(layout_fields(back.layout), layout_fields(r.layout))) FAIL_CHECK(d);
    CHECK(back.layout.pipeline_layers == r.layout.pipeline_layers);
  }
}

}  // namespace

TEST_CASE("every Ascend launch script and YAML gives the model and layout of its record", "[launch]") {
  REQUIRE(fs::is_directory(shared_scripts));
  const io::json records = io::read_json_file(std::string(MOESIM_SHARED_DIR) + "/validation/ascend_runs.json");
  std::map<std::string, const io::json*> by_id;
  for (const io::json& r : records) by_id[r.at("id").get<std::string>()] = &r;
  int files = 0, matched = 0, vocab_given = 0;
  std::vector<std::string> disagreements;
  for (const auto& entry : fs::directory_iterator(shared_scripts)) {
    const std::string id = entry.path().stem().string();
    INFO(entry.path().string());
    REQUIRE(by_id.count(id) == 1);
    const auto [record_model, record_layout] = shared_record_fields(*by_id[id]);
    const Read r = read(entry.path().string(), std::stoi(record_model.at("vocab")));
    ++files;
    vocab_given += r.vocab_from_record;
    auto diff = differences(model_fields(r.model), record_model);
    const auto layout_diff = differences(layout_fields(r.layout), record_layout);
    diff.insert(diff.end(), layout_diff.begin(), layout_diff.end());
    if (diff.empty()) ++matched;
    for (const auto& d : diff) disagreements.push_back(id + " " + d);
    check_round_trip(r, id);
  }
  // Where script and record disagree, the script is what ran.
  const std::map<std::string, std::string> explained = {
      {"mindspeed-mixtral-8x22b-64npu-32k vocab: script 32768, record 32000",
       "no --make-vocab-size-divisible-by: Megatron-LM pads --vocab-size 32000 to a multiple of 128 x TP 8; the record gives the tokenizer's size"},
      {"mindspeed-mixtral-8x22b-a3internal-32k vocab: script 32768, record 32000", "as the 64-NPU script"},
      {"mindspeed-llama2-7b-8npu-sft16k-mfu56.0 kv_heads: script 8, record 32",
       "the script sets --group-query-attention --num-query-groups 8 (../shared's README: 'the script is what ran'); the record keeps LLaMA2-7B's MHA"},
      {"mindformers-telechat2-39b-a12b-ft-8k ep: script 8, record 2",
       "moe_config.ep_extend_tp: the experts spread over expert_parallel 2 x model_parallel 4 ranks; the record keeps the YAML's expert_parallel"}};
  for (const auto& d : disagreements) {
    const auto it = explained.find(d);
    if (it == explained.end()) FAIL_CHECK("unexplained: " << d);
    else WARN(d << " (" << it->second << ")");
  }
  CHECK(files == 22);
  CHECK(disagreements.size() == explained.size());
  WARN(files << " files read, " << matched << " match their records in every field; vocab from the record for " << vocab_given
             << " (their tokenizer holds it)");
}

TEST_CASE("the Megatron-LM moe_recipes YAMLs give the model and layout of their published records", "[launch]") {
  const std::string folder = std::string(MOESIM_SOURCE_DIR) + "/tests/data/launch/moe_recipes";
  const io::json records = io::read_json_file(std::string(MOESIM_SOURCE_DIR) + "/validation/published_runs.json");
  int files = 0;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string id = entry.path().stem().string();
    INFO(id);
    const io::json* record = nullptr;
    for (const io::json& r : records)
      if (r.at("id") == id) record = &r;
    REQUIRE(record);
    const ModelSpec record_model = record->at("model").is_string() ? io::load_model(record->at("model").get<std::string>())
                                                                    : io::parse_model(record->at("model"), id);
    io::json layout_json = record->at("layout");
    layout_json["devices"] = record->at("hardware").at("devices");
    LayoutSpec record_layout = io::parse_layout(layout_json, id);
    REQUIRE_FALSE(complete_and_check_layout(record_model, record_layout).has_value());
    const Read r = read(entry.path().string(), static_cast<int>(record_model.vocab));
    ++files;
    for (const auto& d : differences(model_fields(r.model), model_fields(record_model))) FAIL_CHECK(d);
    // The records assume DP overlap where a recipe leaves it to Megatron-LM's default (off); the recipe is what ran.
    const bool dp_overlap_assumed = record->at("assumptions").value("overlap", "").find("DP overlap assumed") != std::string::npos;
    // Flex (DeepEP / HybridEP) recipes whose records say so are scored with the alltoall dispatcher as a stand-in.
    const bool alltoall_stated = record->at("assumptions").value("moe_dispatcher", "").find("simulated as alltoall") != std::string::npos;
    for (const auto& d : differences(layout_fields(r.layout), layout_fields(record_layout))) {
      if (dp_overlap_assumed && (d.starts_with("dp_grad_reduce: script false") || d.starts_with("dp_param_gather: script false")))
        WARN(id << " " << d << " (the record assumes DP overlap; the recipe sets no overlap_grad_reduce / overlap_param_gather)");
      else if (alltoall_stated && (d == "moe_dispatcher: script flex, record alltoall" || (d.starts_with("ep_dispatch_sms: script ") && d.ends_with(", record 0")) ||
                                   d == "fp8_dispatch: script false, record true"))
        WARN(id << " " << d << " (the record states why it is scored as alltoall, FP8 tokens and no flex SMs kept)");
      else
        FAIL_CHECK(d);
    }
    check_round_trip(r, id);
  }
  CHECK(files == 14);
}

TEST_CASE("launch arguments name the flags of each dialect", "[launch]") {
  const ModelSpec model = io::load_model("mixtral-8x7b");
  io::json j = {{"devices", 64}, {"tp", 2}, {"pp", 4}, {"vpp", 2}, {"ep", 8}, {"global_batch", 256}, {"seq_len", 4096},
                {"recompute", "full"}, {"overlap", {{"tp_comm", true}, {"ep_all_to_all", true}}}};
  LayoutSpec layout = io::parse_layout(j, "test");
  REQUIRE_FALSE(complete_and_check_layout(model, layout).has_value());
  const std::string mindspeed = io::launch_arguments(model, layout, io::LaunchDialect::mindspeed);
  const std::string megatron = io::launch_arguments(model, layout, io::LaunchDialect::megatron);
  CHECK(mindspeed.starts_with("# MindSpeed-LLM arguments"));
  CHECK(mindspeed.find("GPT_ARGS=\"\n") != std::string::npos);
  CHECK(mindspeed.find("--use-mc2") != std::string::npos);
  CHECK(mindspeed.find("--moe-alltoall-overlap-comm") != std::string::npos);
  CHECK(megatron.find("--tp-comm-overlap") != std::string::npos);
  CHECK(megatron.find("--overlap-moe-expert-parallel-comm") != std::string::npos);
  for (const std::string& args : {mindspeed, megatron}) {
    CHECK(args.find("--num-layers-per-virtual-pipeline-stage 4") != std::string::npos);
    CHECK(args.find("--recompute-granularity full") != std::string::npos);
    CHECK(args.find("--moe-token-dispatcher-type alltoall") != std::string::npos);
    CHECK(args.find("--micro-batch-size 1") != std::string::npos);
    CHECK(args.find("--global-batch-size 256") != std::string::npos);
  }
}

// validation/ascend_runs.json (scripts/import_ascend_runs.py) holds the same runs in moesim's record
// format. Until it is part of the tree this case only says so; with it, the fields the importer copies
// from the script as written must agree with the reader. The device count comes from the source's table (the
// scripts carry placeholder node counts), and the importer turns block recompute of every layer into full
// recompute: those decisions are its own and are not compared.
TEST_CASE("the launch scripts agree with the project's Ascend records", "[launch]") {
  const std::string path = std::string(MOESIM_SOURCE_DIR) + "/validation/ascend_runs.json";
  if (!fs::exists(path)) {
    WARN(path << " is not in the tree yet: compared with ../shared's records only");
    return;
  }
  const io::json records = io::read_json_file(path);
  int compared = 0;
  std::vector<std::string> disagreements;
  for (const io::json& record : records) {
    const std::string id = record.at("id").get<std::string>();
    std::string script;
    for (const char* ext : {".sh", ".yaml"})
      if (fs::exists(shared_scripts + "/" + id + ext)) script = shared_scripts + "/" + id + ext;
    if (script.empty() || !record.contains("layout")) continue;
    const ModelSpec record_model = record.at("model").is_string() ? io::load_model(record.at("model").get<std::string>())
                                                                   : io::parse_model(record.at("model"), id);
    const Read r = read(script, static_cast<int>(record_model.vocab));
    ++compared;
    Fields script_layout = layout_fields(r.layout), record_layout;
    io::json l = record.at("layout");
    l["devices"] = record.at("hardware").at("devices");
    LayoutSpec parsed = io::parse_layout(l, id);
    if (!complete_and_check_layout(record_model, parsed)) record_layout = layout_fields(parsed);
    // The importer's own decisions (see above).
    for (const char* key : {"devices", "dp", "recompute"}) record_layout.erase(key);
    for (const auto& d : differences(model_fields(r.model), model_fields(record_model))) disagreements.push_back(id + " " + d);
    for (const auto& d : differences(script_layout, record_layout)) disagreements.push_back(id + " " + d);
  }
  for (const auto& d : disagreements) FAIL_CHECK(d);
  WARN(compared << " scripts compared with " << path << ": " << disagreements.size() << " fields differ");
}

TEST_CASE("MindSpeed's ring CP without --use-cp-send-recv-overlap reads as cp_send_recv_overlap false", "[launch][cp]") {
  const ModelSpec model = io::load_model("mixtral-8x7b");
  io::json j = {{"devices", 64}, {"tp", 2}, {"pp", 2}, {"cp", 4}, {"ep", 4}, {"global_batch", 64}, {"seq_len", 32768}};
  LayoutSpec layout = io::parse_layout(j, "test");
  REQUIRE_FALSE(complete_and_check_layout(model, layout).has_value());
  const test::ScratchDir dir("launch-cp-overlap");
  for (const bool overlap : {true, false}) {
    CAPTURE(overlap);
    layout.cp_send_recv_overlap = overlap;
    const std::string args = io::launch_arguments(model, layout, io::LaunchDialect::mindspeed);
    CHECK(args.find("--context-parallel-algo megatron_cp_algo") != std::string::npos);
    CHECK((args.find("--use-cp-send-recv-overlap") != std::string::npos) == overlap);
    const std::string script = dir.file(overlap ? "on.sh" : "off.sh");
    {
      std::ofstream out(script);
      out << "NNODES=8\nNPUS_PER_NODE=8\n" << args << "torchrun pretrain_gpt.py $GPT_ARGS\n";
    }
    CHECK(read(script, static_cast<int>(model.vocab)).layout.cp_send_recv_overlap == overlap);
  }
}

TEST_CASE("a modelled EP dispatcher reads back without a stand-in note, whatever MoE flags go with it", "[launch][moe]") {
  const ModelSpec model = io::load_model("mixtral-8x7b");
  const auto layout_with = [&](const char* dispatcher) {
    io::json j = {{"devices", 16}, {"tp", 2},          {"pp", 1},      {"ep", 8},
                  {"global_batch", 64}, {"seq_len", 4096}, {"moe_dispatcher", dispatcher}};
    LayoutSpec layout = io::parse_layout(j, "test");  // as a layout file gives it (flex: its default SMs)
    REQUIRE_FALSE(complete_and_check_layout(model, layout).has_value());
    return layout;
  };
  const test::ScratchDir dir("launch-dispatcher-notes");
  const auto notes_of = [&](const std::string& name, const std::string& args) {
    const std::string script = dir.file(name);
    {
      std::ofstream out(script);
      out << "NNODES=2\nNPUS_PER_NODE=8\n" << args << "torchrun pretrain_gpt.py $GPT_ARGS\n";
    }
    return read(script, static_cast<int>(model.vocab)).config.notes;
  };
  const auto stand_in = [](const std::vector<std::string>& notes) {
    return std::any_of(notes.begin(), notes.end(),
                       [](const std::string& n) { return n.find("simulated as an all-to-all") != std::string::npos; });
  };
  for (const char* dispatcher : {"alltoall", "allgather", "flex"}) {
    CAPTURE(dispatcher);
    const std::string args = io::launch_arguments(model, layout_with(dispatcher), io::LaunchDialect::megatron);
    CHECK_FALSE(stand_in(notes_of("modelled.sh", args)));
  }
  // A dispatcher moesim does not model is named, with MindSpeed's permutation flag beside it too.
  std::string args = io::launch_arguments(model, layout_with("alltoall"), io::LaunchDialect::megatron);
  const std::string flag = "--moe-token-dispatcher-type alltoall";
  REQUIRE(args.find(flag) != std::string::npos);
  args.replace(args.find(flag), flag.size(), "--moe-token-dispatcher-type made_up --moe-permutation-async-comm");
  CHECK(stand_in(notes_of("unmodelled.sh", args)));
}
