#pragma once
#include <string>
#include <vector>

namespace moesim {
int cmd_validate(const std::vector<std::string>& args);
}
