// Reading a launch script: the bash subset Megatron-LM and MindSpeed-LLM scripts are written in.
// Assignments (VAR=..., export VAR=..., VAR="..." over several lines with \ continuations) are
// evaluated in order with $VAR, ${VAR}, ${VAR:-default} and $((arithmetic)) expanded; unquoted
// expansions split into words as bash splits them. The launch command is the first command with a
// *.py word (torchrun / python -m torch.distributed.launch / python); the words after the .py are the
// training arguments. Other commands (echo, mkdir, if, source) are skipped: nothing is executed.
#include "sim/io/launch_script.h"

#include <fmt/format.h>

#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

#include "sim/io/launch_flags.h"

namespace moesim::io {

namespace launch {
namespace {

// Scripts are a few kilobytes; a variable that grows past this is a runaway expansion, not a script.
constexpr std::size_t max_value_bytes = std::size_t{1} << 20;
constexpr std::size_t max_file_bytes = std::size_t{64} << 20;

// Text with the line of the file each character was written on, so that a flag that comes out of
// $GPT_ARGS is reported at the line of the assignment that holds it.
struct Text {
  std::string chars;
  std::vector<int> lines;
  void add(char c, int line) {
    chars += c;
    lines.push_back(line);
  }
  void add(const Text& t) {
    chars += t.chars;
    lines.insert(lines.end(), t.lines.begin(), t.lines.end());
  }
};

// Integer arithmetic of $((...)) after expansion: + - * / % and parentheses.
class Arithmetic {
 public:
  explicit Arithmetic(const std::string& s) : s_(s) {}
  std::optional<long> evaluate() {
    const auto v = sum();
    skip();
    return v && pos_ == s_.size() ? v : std::nullopt;
  }

 private:
  void skip() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  std::optional<long> atom() {
    skip();
    if (pos_ < s_.size() && s_[pos_] == '(') {
      ++pos_;
      auto v = sum();
      skip();
      if (!v || pos_ >= s_.size() || s_[pos_] != ')') return std::nullopt;
      ++pos_;
      return v;
    }
    const std::size_t start = pos_;
    while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    if (start == pos_ || pos_ - start > 12) return std::nullopt;
    return std::stol(s_.substr(start, pos_ - start));
  }
  std::optional<long> product() {
    auto v = atom();
    for (skip(); v && pos_ < s_.size() && (s_[pos_] == '*' || s_[pos_] == '/' || s_[pos_] == '%'); skip()) {
      const char op = s_[pos_++];
      const auto r = atom();
      if (!r || (op != '*' && *r == 0) || std::abs(*v) > 1'000'000'000 || std::abs(*r) > 1'000'000'000) return std::nullopt;
      v = op == '*' ? *v * *r : op == '/' ? *v / *r : *v % *r;
    }
    return v;
  }
  std::optional<long> sum() {
    auto v = product();
    for (skip(); v && pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-'); skip()) {
      const char op = s_[pos_++];
      const auto r = product();
      if (!r) return std::nullopt;
      v = op == '+' ? *v + *r : *v - *r;
    }
    return v;
  }
  const std::string& s_;
  std::size_t pos_ = 0;
};

class ShellReader {
 public:
  ShellReader(std::string file, const std::string& text) : file_(std::move(file)), s_(text) {}

  ArgumentList read() {
    ArgumentList list{file_, "shell script", {}, std::nullopt, ""};
    while (pos_ < s_.size()) {
      const std::vector<Text> texts = command();
      if (texts.empty() || !launch_words_.empty()) continue;
      if (assignments(texts)) continue;
      std::vector<Word> words;
      for (const Text& t : texts) words.push_back({t.chars, t.lines.empty() ? line_ : t.lines.front()});
      launch_command(words);
    }
    if (launch_words_.empty())
      throw InputError(file_ + ": expected a launch command (torchrun / python ... pretrain_gpt.py --flags), found none");
    list.args = group_arguments(launch_words_, file_);
    set_devices(list);
    return list;
  }

 private:
  [[noreturn]] void fail(int line, const std::string& what) const {
    throw InputError(fmt::format("{}:{}: {}", file_, line, what));
  }
  char peek(std::size_t ahead = 0) const { return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0'; }
  void advance() {
    if (s_[pos_++] == '\n') ++line_;
  }

  // One command: words up to a newline, ';', '|', '&' or the end, with quotes removed and expansions
  // done. Unquoted expansions were split where bash splits words.
  std::vector<Text> command() {
    std::vector<Text> words;
    Text word;
    bool in_word = false;  // a word has started (quotes make even an empty word)
    auto finish = [&] {
      if (in_word) split_into(word, words);
      word = Text{};
      in_word = false;
    };
    while (pos_ < s_.size()) {
      const char c = peek();
      if (c == '\\' && peek(1) == '\n') {
        advance(), advance();
        continue;
      }
      if (c == '\n' || c == ';' || c == '|' || c == '&') {
        finish();
        advance();
        if (!words.empty() || c == '\n') break;
        continue;
      }
      if (std::isspace(static_cast<unsigned char>(c))) {
        finish();
        advance();
        continue;
      }
      if (c == '#' && !in_word) {
        while (pos_ < s_.size() && peek() != '\n') advance();
        continue;
      }
      in_word = true;
      if (c == '\'' || c == '"') {
        assigning_ = assigned_name(word);
        c == '\'' ? single_quoted(word) : double_quoted(word);
        assigning_.clear();
      } else if (c == '$') {
        expansion(word, false);
      } else if (c == '\\') {
        advance();
        if (pos_ < s_.size()) word.add(s_[pos_], line_), advance();
      } else {
        word.add(c, line_);
        advance();
      }
    }
    finish();
    return words;
  }

  // The pieces of a word between split marks (\x01), each keeping the lines of its characters.
  static void split_into(const Text& word, std::vector<Text>& words) {
    Text piece;
    for (std::size_t i = 0; i <= word.chars.size(); ++i) {
      if (i == word.chars.size() || word.chars[i] == '\x01') {
        if (!piece.chars.empty()) words.push_back(std::move(piece));
        piece = Text{};
      } else {
        piece.add(word.chars[i], word.lines[i]);
      }
    }
  }

  // "NAME" when the word so far is "NAME=" (the quoted string that follows is NAME's value).
  static std::string assigned_name(const Text& word) {
    const std::string& w = word.chars;
    if (w.size() < 2 || w.back() != '=') return "";
    const std::string name = w.substr(0, w.size() - 1);
    const bool is_name = std::all_of(name.begin(), name.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
    return is_name ? name : "";
  }

  void single_quoted(Text& word) {
    const int opened = line_;
    advance();
    while (pos_ < s_.size() && peek() != '\'') word.add(peek(), line_), advance();
    if (pos_ >= s_.size()) fail(opened, "unterminated ' quote" + in_variable());
    advance();
  }

  void double_quoted(Text& word) {
    const int opened = line_;
    advance();
    while (pos_ < s_.size() && peek() != '"') {
      const char c = peek();
      if (c == '\\' && peek(1) == '\n') {
        advance(), advance();
      } else if (c == '\\' && (peek(1) == '"' || peek(1) == '\\' || peek(1) == '$' || peek(1) == '`')) {
        advance();
        word.add(peek(), line_), advance();
      } else if (c == '$') {
        expansion(word, true);
      } else {
        word.add(c, line_), advance();
      }
    }
    if (pos_ >= s_.size()) fail(opened, "unterminated \" quote" + in_variable());
    advance();
  }

  // $NAME, ${NAME}, ${NAME:-default}, ${NAME-default}, $((expr)), $(command) (not run: empty).
  void expansion(Text& word, bool quoted) {
    const int line = line_;
    advance();
    Text value;
    if (peek() == '(' && peek(1) == '(') {
      advance(), advance();
      Text expr;
      int depth = 0;
      while (pos_ < s_.size() && !(depth == 0 && peek() == ')' && peek(1) == ')')) {
        if (peek() == '(') ++depth;
        if (peek() == ')') --depth;
        if (peek() == '$') expansion(expr, true);
        else expr.add(peek(), line_), advance();
      }
      if (pos_ >= s_.size()) fail(line, "unterminated $(( arithmetic" + in_variable());
      advance(), advance();
      std::string names_expanded;  // bare names inside $(( )) are variables too
      for (std::size_t i = 0; i < expr.chars.size();) {
        if (std::isalpha(static_cast<unsigned char>(expr.chars[i])) || expr.chars[i] == '_') {
          std::size_t j = i;
          while (j < expr.chars.size() && (std::isalnum(static_cast<unsigned char>(expr.chars[j])) || expr.chars[j] == '_')) ++j;
          names_expanded += variable(expr.chars.substr(i, j - i)).chars;
          i = j;
        } else {
          names_expanded += expr.chars[i++];
        }
      }
      if (const auto v = Arithmetic(names_expanded).evaluate())
        for (char c : std::to_string(*v)) value.add(c, line);
    } else if (peek() == '(' || peek() == '`') {
      skip_balanced(line);
    } else if (peek() == '{') {
      advance();
      std::string name;
      while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '_')) name += peek(), advance();
      value = variable(name);
      if (peek() == ':' || peek() == '-') {
        const bool colon = peek() == ':';
        if (colon) advance();
        if (peek() != '-') fail(line, "${" + name + peek() + "...}: expected ${NAME}, ${NAME:-default} or ${NAME-default}");
        advance();
        Text fallback;
        while (pos_ < s_.size() && peek() != '}') {
          if (peek() == '$') expansion(fallback, true);
          else if (peek() == '"' ) double_quoted(fallback);
          else fallback.add(peek(), line_), advance();
        }
        if (!variables_.count(name) || (colon && value.chars.empty())) value = fallback;
      }
      if (peek() != '}') fail(line, "unterminated ${" + name + in_variable());
      advance();
    } else if (std::isalpha(static_cast<unsigned char>(peek())) || peek() == '_') {
      std::string name;
      while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '_')) name += peek(), advance();
      value = variable(name);
    } else if (std::isdigit(static_cast<unsigned char>(peek())) || peek() == '@' || peek() == '*' || peek() == '#' || peek() == '?') {
      advance();  // positional and special parameters: empty, the script is not run
    } else {
      word.add('$', line);
      return;
    }
    if (word.chars.size() + value.chars.size() > max_value_bytes) fail(line, "an expansion larger than 1 MB" + in_variable());
    if (quoted) {
      word.add(value);
      return;
    }
    // Unquoted: bash splits the value at whitespace into separate words.
    for (std::size_t i = 0; i < value.chars.size(); ++i) {
      const bool space = std::isspace(static_cast<unsigned char>(value.chars[i]));
      word.add(space ? '\x01' : value.chars[i], value.lines[i]);
    }
  }

  // $( ... ) or ` ... `: skipped (commands are not run), balanced over nested parentheses and quotes.
  void skip_balanced(int line) {
    const char close = peek() == '`' ? '`' : ')';
    advance();
    int depth = 0;
    while (pos_ < s_.size()) {
      const char c = peek();
      if (c == close && depth == 0) {
        advance();
        return;
      }
      if (close == ')' && c == '(') ++depth;
      if (close == ')' && c == ')') --depth;
      advance();
    }
    fail(line, std::string("unterminated $") + (close == ')' ? "(" : "`") + in_variable());
  }

  Text variable(const std::string& name) const {
    const auto it = variables_.find(name);
    return it == variables_.end() ? Text{} : it->second;
  }

  // " in VAR" while the assignment of VAR is being read (for errors inside long *_ARGS strings).
  std::string in_variable() const { return assigning_.empty() ? "" : " in " + assigning_; }

  // NAME=value words (optionally after `export`/`local`/`declare`) are assignments, evaluated now;
  // true if the command was only that.
  bool assignments(const std::vector<Text>& words) {
    const std::string& first = words[0].chars;
    std::size_t i = (first == "export" || first == "local" || first == "declare" || first == "readonly") ? 1 : 0;
    const std::size_t begin = i;
    for (; i < words.size(); ++i) {
      const std::size_t eq = words[i].chars.find('=');
      if (eq == std::string::npos || eq == 0) break;
      const std::string name = words[i].chars.substr(0, eq);
      if (!std::all_of(name.begin(), name.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; })) break;
      Text value;
      for (std::size_t k = eq + 1; k < words[i].chars.size(); ++k) value.add(words[i].chars[k], words[i].lines[k]);
      variables_[name] = std::move(value);
    }
    return i == words.size() || (begin == 1 && i == words.size());
  }

  void launch_command(const std::vector<Word>& words) {
    std::size_t py = 0;
    while (py < words.size() && !words[py].text.ends_with(".py")) ++py;
    if (py == words.size()) return;
    launcher_.assign(words.begin(), words.begin() + static_cast<long>(py));
    launch_words_.assign(words.begin() + static_cast<long>(py) + 1, words.end());
  }

  // Launcher flags (--nnodes N --nproc_per_node M), else the script's node variables.
  void set_devices(ArgumentList& list) const {
    auto launcher_value = [&](const std::string& flag) -> std::optional<int> {
      for (std::size_t i = 0; i + 1 < launcher_.size(); ++i)
        if (launcher_[i].text == "--" + flag) return parse_count(launcher_[i + 1].text);
      return std::nullopt;
    };
    auto var = [&](const char* name) { return parse_count(variable(name).chars); };
    const auto nodes = launcher_value("nnodes"), per_node = launcher_value("nproc_per_node");
    if (nodes && per_node) {
      list.devices = *nodes * *per_node;
      list.devices_from = fmt::format("the launcher's --nnodes {} x --nproc_per_node {}", *nodes, *per_node);
      return;
    }
    for (const char* per : {"NPUS_PER_NODE", "GPUS_PER_NODE", "NPU_PER_NODE", "GPU_PER_NODE"}) {
      if (var("NNODES") && var(per)) {
        list.devices = *var("NNODES") * *var(per);
        list.devices_from = fmt::format("NNODES {} x {} {}", *var("NNODES"), per, *var(per));
        return;
      }
    }
  }

  static std::optional<int> parse_count(const std::string& s) {
    if (s.empty() || s.size() > 7 || !std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) return std::nullopt;
    const int n = std::stoi(s);
    return n > 0 ? std::optional<int>(n) : std::nullopt;
  }

  std::string file_;
  const std::string& s_;
  std::size_t pos_ = 0;
  int line_ = 1;
  std::map<std::string, Text> variables_;
  std::string assigning_;
  std::vector<Word> launcher_, launch_words_;
};

}  // namespace
}  // namespace launch

LaunchDialect parse_launch_dialect(const std::string& text, const std::string& where) {
  if (text == "megatron") return LaunchDialect::megatron;
  if (text == "mindspeed") return LaunchDialect::mindspeed;
  throw InputError(where + ": expected megatron or mindspeed, got '" + text.substr(0, 40) + "'");
}

const char* to_string(LaunchDialect d) { return d == LaunchDialect::megatron ? "megatron" : "mindspeed"; }

LaunchConfig read_launch_file(const std::string& path, const LaunchOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot read file");
  std::string text;
  text.resize(launch::max_file_bytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > launch::max_file_bytes) throw InputError(path + ": larger than 64 MB, not a launch script");
  if (launch::is_yaml_file(path, text)) return launch::read_yaml_config(path, text, options);
  return launch::translate_arguments(launch::ShellReader(path, text).read(), options);
}

}  // namespace moesim::io
