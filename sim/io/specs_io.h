#pragma once
// The one place that turns files into specs: models (moesim format or HuggingFace config.json),
// layouts and hardware profiles. Everything is checked here; errors name file, field and expectation.
#include <string>
#include <vector>

#include "costmodels/specs.h"
#include "sim/io/json_reader.h"

namespace moesim::io {

// Where built-in models/ and hw_profiles/ live: $MOESIM_DATA_DIR, else the source tree.
std::string data_dir();

ModelSpec parse_model(const json& j, const std::string& file);
ModelSpec parse_hf_config(const json& j, const std::string& file);
// A built-in name (models/NAME.json), a moesim model file, or a HuggingFace config.json.
ModelSpec load_model(const std::string& name_or_path);
std::vector<std::string> builtin_models();

LayoutSpec parse_layout(const json& j, const std::string& file);
LayoutSpec load_layout(const std::string& path);

HardwareProfile parse_profile(const json& j, const std::string& file);
HardwareProfile load_profile(const std::string& name_or_path);
// The file a built-in name or path resolves to (for tools that rewrite a profile).
std::string profile_path(const std::string& name_or_path);
// `hw` written over a copy of the profile file it was read from (`base`): every value comes from `hw`,
// every other key (sources, reasoning) is kept, so parse_profile(profile_json(hw, base)) == hw.
json profile_json(const HardwareProfile& hw, const json& base);
std::vector<std::string> builtin_profiles();

const char* to_string(ScheduleKind s);
const char* to_string(Recompute r);
const char* to_string(Precision p);
const char* to_string(Fp8Recipe r);
const char* to_string(MoeDispatcher d);
const char* to_string(AttentionType a);
const char* to_string(LinearMixer k);
const char* to_string(CrossEntropy c);
// Name of a floating-point storage type by its size in bytes, as layouts write it: 4 "fp32", 2 "bf16".
const char* float_type_name(int bytes);
// Names of the RecomputeModule bits set in `modules`, in declaration order.
std::vector<std::string> recompute_module_names(unsigned modules);
ScheduleKind parse_schedule(const std::string& s, const std::string& where);
Recompute parse_recompute(const std::string& s, const std::string& where);

}  // namespace moesim::io
