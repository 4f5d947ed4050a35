#pragma once
#include <stdexcept>
#include <string>

namespace moesim {

// Bad input from a user's file or flags. The message is one line that names the file, the field and
// what was expected; the CLI prints it and exits non-zero.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace moesim
