#pragma once
#include <string>
#include <vector>

namespace moesim {
int cmd_validate(const std::vector<std::string>& args);
int cmd_sweep(const std::vector<std::string>& args);
}
