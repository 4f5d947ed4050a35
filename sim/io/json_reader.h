#pragma once
// Typed, checked access to one JSON object, with the file and field path in every error.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sim/io/input_error.h"

namespace moesim::io {

using nlohmann::json;

// Reads and parses a JSON file; unreadable or unparsable files raise InputError naming the file.
json read_json_file(const std::string& path);

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
