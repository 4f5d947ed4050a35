#include "sim/io/npy.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <regex>

#include "sim/io/input_error.h"

namespace moesim::io {

static_assert(std::endian::native == std::endian::little, "the .npy reader copies little-endian data as is");

namespace {

// Value of `key` in the header dict: the text after "'key':" up to the matching end ("'...'" for a
// string, "(...)" for a tuple, a bare word otherwise).
std::string header_value(const std::string& header, const std::string& key, const std::string& file) {
  const std::regex pattern("['\"]" + key + "['\"]\\s*:\\s*('[^']*'|\"[^\"]*\"|\\([^)]*\\)|[A-Za-z]+)");
  std::smatch m;
  if (!std::regex_search(header, m, pattern)) throw InputError(file + ": .npy header: missing '" + key + "'");
  return m[1].str();
}

template <typename T>
void convert(const std::vector<char>& raw, std::vector<double>& out) {
  out.resize(raw.size() / sizeof(T));
  for (std::size_t i = 0; i < out.size(); ++i) {
    T v;
    std::memcpy(&v, raw.data() + i * sizeof(T), sizeof(T));
    out[i] = static_cast<double>(v);
  }
}

}  // namespace

NpyArray read_npy(const std::string& path) {
  // Read piece by piece: the header first, then at most the data it declares (and one byte more, to
  // detect trailing bytes), so an endless input (/dev/zero, a pipe) or a huge file of the wrong kind
  // is refused without being read into memory.
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open file");
  auto read_up_to = [&](char* into, std::size_t n) {
    in.read(into, static_cast<std::streamsize>(n));
    return static_cast<std::size_t>(in.gcount());
  };
  char lead[12];
  const char magic[] = "\x93NUMPY";
  if (read_up_to(lead, 10) < 10 || std::memcmp(lead, magic, 6) != 0)
    throw InputError(path + ": not a NumPy .npy file (expected the magic \\x93NUMPY)");
  const int major = static_cast<unsigned char>(lead[6]);
  std::size_t header_len = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(lead[8]) | static_cast<unsigned char>(lead[9]) << 8;
  } else if (major == 2 || major == 3) {
    if (read_up_to(lead + 10, 2) < 2) throw InputError(path + ": .npy header: truncated");
    std::uint32_t len;
    std::memcpy(&len, lead + 8, 4);
    header_len = len;
  } else {
    throw InputError(path + ": .npy version " + std::to_string(major) + ": expected 1, 2 or 3");
  }
  // numpy writes headers of a few hundred bytes; a shape of many dimensions stays far below 1 MiB.
  if (header_len > (std::size_t{1} << 20)) throw InputError(path + ": .npy header: " + std::to_string(header_len) + " bytes long, expected at most 1 MiB");
  std::string header(header_len, '\0');
  if (read_up_to(header.data(), header_len) < header_len) throw InputError(path + ": .npy header: truncated");

  NpyArray a;
  a.dtype = header_value(header, "descr", path);
  a.dtype = a.dtype.substr(1, a.dtype.size() - 2);  // strip the quotes
  if (header_value(header, "fortran_order", path) != "False")
    throw InputError(path + ": .npy header: field 'fortran_order': expected False (C order)");
  const std::string shape = header_value(header, "shape", path);
  if (shape.front() != '(') throw InputError(path + ": .npy header: field 'shape': expected a tuple, got " + shape);
  std::size_t elements = 1;
  const std::regex dim("\\s*(\\d+)\\s*(,|$)");
  const std::string inner = shape.substr(1, shape.size() - 2);
  std::size_t pos = 0;
  while (pos < inner.size()) {
    std::smatch m;
    const std::string rest = inner.substr(pos);
    if (rest.find_first_not_of(" ") == std::string::npos) break;
    if (!std::regex_search(rest, m, dim, std::regex_constants::match_continuous))
      throw InputError(path + ": .npy header: field 'shape': expected whole numbers, got " + shape);
    const std::size_t d = std::stoull(m[1].str());
    if (d > 0 && elements > (std::size_t{1} << 40) / d)
      throw InputError(path + ": .npy header: field 'shape': " + shape + " is too large");
    a.shape.push_back(d);
    elements *= d;
    pos += static_cast<std::size_t>(m.length(0));
  }
  if (a.shape.empty()) throw InputError(path + ": .npy header: field 'shape': expected at least one dimension");

  std::size_t item = 0;
  if (a.dtype == "<f4" || a.dtype == "<i4") item = 4;
  else if (a.dtype == "<f8" || a.dtype == "<i8") item = 8;
  else if (a.dtype == "<u2") item = 2;
  else if (a.dtype == "|u1" || a.dtype == "<u1") item = 1;
  else
    throw InputError(path + ": .npy header: field 'descr': expected one of <f4|<f8|<i4|<i8|<u2|u1 (little-endian), got '" +
                     a.dtype + "'");
  const std::size_t expected = elements * item;
  std::vector<char> raw;
  constexpr std::size_t chunk = std::size_t{1} << 20;  // grows with the bytes really there, not the declared size
  while (raw.size() <= expected) {
    const std::size_t before = raw.size(), want = std::min(chunk, expected + 1 - before);
    raw.resize(before + want);
    const std::size_t got = read_up_to(raw.data() + before, want);
    raw.resize(before + got);
    if (got < want) break;
  }
  if (raw.size() != expected)
    throw InputError(path + ": .npy data: shape " + shape + " of " + a.dtype + " needs " + std::to_string(expected) +
                     " bytes, file has " + (raw.size() < expected ? std::to_string(raw.size()) + " (truncated)" : "more (trailing bytes)"));
  if (a.dtype == "<f4") convert<float>(raw, a.values);
  else if (a.dtype == "<f8") convert<double>(raw, a.values);
  else if (a.dtype == "<i4") convert<std::int32_t>(raw, a.values);
  else if (a.dtype == "<i8") convert<std::int64_t>(raw, a.values);
  else if (a.dtype == "<u2") convert<std::uint16_t>(raw, a.values);
  else convert<std::uint8_t>(raw, a.values);
  for (std::size_t i = 0; i < a.values.size(); ++i)
    if (!std::isfinite(a.values[i]))
      throw InputError(path + ": .npy data: element " + std::to_string(i) + " is not finite");
  return a;
}

}  // namespace moesim::io
