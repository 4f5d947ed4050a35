#pragma once
// Typed, checked access to one JSON object, with the file and field path in every error.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sim/io/input_error.h"

namespace moesim::io {

using nlohmann::json;

// Input files are configurations, a few hundred kilobytes at most; anything far larger (or endless,
// such as /dev/zero) is refused before it is parsed, so memory stays bounded.
constexpr std::size_t max_json_file_bytes = std::size_t{256} << 20;
// Nesting deeper than this is refused while parsing: copying or printing a deeper value recurses
// once per level and would overflow the stack (nlohmann::json copy and dump are recursive).
constexpr int max_json_depth = 64;

// Reads and parses a JSON file; unreadable, oversized or unparsable files raise InputError naming the file.
json read_json_file(const std::string& path);
// Parses JSON text from `file` with the same checks and messages as read_json_file.
json parse_json_text(const std::string& text, const std::string& file);

class Field {
 public:
  Field(const json& object, std::string file, std::string path);

  bool has(const std::string& key) const;
  Field child(const std::string& key) const;  // required object
  std::optional<Field> optional_child(const std::string& key) const;

  std::string string(const std::string& key) const;
  std::string string_or(const std::string& key, const std::string& fallback) const;
  double number(const std::string& key) const;  // finite
  double positive(const std::string& key) const;  // finite, > 0
  double non_negative(const std::string& key) const;
  double number_or(const std::string& key, double fallback) const;
  double positive_or(const std::string& key, double fallback) const;
  double non_negative_or(const std::string& key, double fallback) const;
  int positive_int(const std::string& key) const;
  int positive_int_or(const std::string& key, int fallback) const;
  int non_negative_int_or(const std::string& key, int fallback) const;
  bool boolean_or(const std::string& key, bool fallback) const;
  std::vector<int> int_list_or_empty(const std::string& key) const;
  // One of `choices`, else an error listing them.
  std::string choice(const std::string& key, const std::vector<std::string>& choices) const;
  std::string choice_or(const std::string& key, const std::vector<std::string>& choices,
                        const std::string& fallback) const;

  const json& raw() const { return object_; }
  [[noreturn]] void fail(const std::string& key, const std::string& expected) const;
  std::string where(const std::string& key) const;

 private:
  const json& value(const std::string& key) const;
  const json& object_;
  std::string file_;
  std::string path_;
};

}  // namespace moesim::io
