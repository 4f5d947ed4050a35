#include "sim/io/json_reader.h"

#include <cmath>
#include <fstream>

namespace moesim::io {

json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open file");
  std::string text;
  char chunk[1 << 16];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
    text.append(chunk, static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_json_file_bytes)
      throw InputError(path + ": larger than " + std::to_string(max_json_file_bytes >> 20) + " MiB; not a moesim input file");
  }
  if (in.bad()) throw InputError(path + ": cannot read file");
  return parse_json_text(text, path);
}

json parse_json_text(const std::string& text, const std::string& file) {
  // The last object key seen, so an error inside a value (a number out of range such as 1e999) can
  // name its field.
  std::string last_key;
  const json::parser_callback_t track_keys = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key) last_key = parsed.get<std::string>();
    if (depth >= max_json_depth)
      throw InputError(file + ": invalid JSON: nested deeper than " + std::to_string(max_json_depth) + " levels");
    return true;
  };
  try {
    return json::parse(text, track_keys, true, false);
  } catch (const json::exception& e) {  // parse errors, and numbers out of range (1e999)
    std::string what = e.what();
    const auto pos = what.find("parse error");
    const std::string field = last_key.empty() ? "" : "field '" + last_key + "': ";
    throw InputError(file + ": invalid JSON: " + field + (pos == std::string::npos ? what : what.substr(pos)));
  }
}

Field::Field(const json& object, std::string file, std::string path)
    : object_(object), file_(std::move(file)), path_(std::move(path)) {
  if (!object_.is_object()) throw InputError(file_ + ": " + (path_.empty() ? "top level" : "field '" + path_ + "'") +
                                             ": expected a JSON object");
}

std::string Field::where(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

void Field::fail(const std::string& key, const std::string& expected) const {
  std::string got;
  if (!object_.contains(key)) {
    got = "missing";
  } else {
    // Strings set from command-line flags may hold invalid UTF-8, which a strict dump refuses.
    got = object_.at(key).dump(-1, ' ', false, json::error_handler_t::replace);
    if (got.size() > 40) got = got.substr(0, 37) + "...";
  }
  throw InputError(file_ + ": field '" + where(key) + "': expected " + expected + ", got " + got);
}

bool Field::has(const std::string& key) const { return object_.contains(key) && !object_.at(key).is_null(); }

const json& Field::value(const std::string& key) const {
  if (!has(key)) fail(key, "a value");
  return object_.at(key);
}

Field Field::child(const std::string& key) const {
  if (!has(key) || !object_.at(key).is_object()) fail(key, "an object");
  return Field(object_.at(key), file_, where(key));
}

std::optional<Field> Field::optional_child(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return child(key);
}

std::string Field::string(const std::string& key) const {
  if (!has(key) || !object_.at(key).is_string()) fail(key, "a string");
  return object_.at(key).get<std::string>();
}

std::string Field::string_or(const std::string& key, const std::string& fallback) const {
  return has(key) ? string(key) : fallback;
}

double Field::number(const std::string& key) const {
  if (!has(key) || !object_.at(key).is_number()) fail(key, "a number");
  const double v = object_.at(key).get<double>();
  if (!std::isfinite(v)) fail(key, "a finite number");
  return v;
}

double Field::positive(const std::string& key) const {
  const double v = number(key);
  if (!(v > 0)) fail(key, "a number > 0");
  return v;
}

double Field::non_negative(const std::string& key) const {
  const double v = number(key);
  if (v < 0) fail(key, "a number >= 0");
  return v;
}

double Field::number_or(const std::string& key, double fallback) const { return has(key) ? number(key) : fallback; }
double Field::positive_or(const std::string& key, double fallback) const { return has(key) ? positive(key) : fallback; }
double Field::non_negative_or(const std::string& key, double fallback) const {
  return has(key) ? non_negative(key) : fallback;
}

int Field::positive_int(const std::string& key) const {
  const double v = number(key);
  if (v < 1 || v > 2e9 || v != std::floor(v)) fail(key, "a whole number >= 1");
  return static_cast<int>(v);
}

int Field::positive_int_or(const std::string& key, int fallback) const { return has(key) ? positive_int(key) : fallback; }

int Field::non_negative_int_or(const std::string& key, int fallback) const {
  if (!has(key)) return fallback;
  const double v = number(key);
  if (v < 0 || v > 2e9 || v != std::floor(v)) fail(key, "a whole number >= 0");
  return static_cast<int>(v);
}

bool Field::boolean_or(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  if (!object_.at(key).is_boolean()) fail(key, "true or false");
  return object_.at(key).get<bool>();
}

std::vector<int> Field::int_list_or_empty(const std::string& key) const {
  if (!has(key)) return {};
  const json& v = object_.at(key);
  if (!v.is_array()) fail(key, "an array of whole numbers");
  std::vector<int> out;
  for (const json& e : v) {
    if (!e.is_number_integer() || e.get<long long>() < 0 || e.get<long long>() > 2000000000)
      fail(key, "an array of whole numbers >= 0");
    out.push_back(e.get<int>());
  }
  return out;
}

std::string Field::choice(const std::string& key, const std::vector<std::string>& choices) const {
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : "|") + c;
  if (!has(key) || !object_.at(key).is_string()) fail(key, "one of " + list);
  const std::string v = object_.at(key).get<std::string>();
  for (const auto& c : choices)
    if (c == v) return v;
  fail(key, "one of " + list);
}

std::string Field::choice_or(const std::string& key, const std::vector<std::string>& choices,
                             const std::string& fallback) const {
  return has(key) ? choice(key, choices) : fallback;
}

}  // namespace moesim::io
