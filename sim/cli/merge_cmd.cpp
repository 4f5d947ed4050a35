// moesim merge PART... [--out results.jsonl]: joins the part files of 'sweep --shard I/N' runs.
#include <fmt/format.h>

#include <boost/program_options.hpp>

#include "sim/cli/commands.h"
#include "sim/search/shard.h"

namespace moesim {

namespace po = boost::program_options;

int cmd_merge(const std::vector<std::string>& args) {
  po::options_description d("moesim merge PART... [--out results.jsonl]");
  d.add_options()("help,h", "this help")("part", po::value<std::vector<std::string>>()->required(),
                                         "part files written by 'moesim sweep SPEC --shard I/N'")(
      "out,o", po::value<std::string>()->default_value("results.jsonl"),
      "the merged results, byte for byte the file one 'moesim sweep SPEC' run writes");
  po::positional_options_description pos;
  pos.add("part", -1);
  const auto parsed = parse_command(args, d, &pos);
  if (!parsed) return 0;
  const po::variables_map& vm = *parsed;
  const std::string out = vm["out"].as<std::string>();
  const shard::MergeStats stats = shard::merge_parts(vm["part"].as<std::vector<std::string>>(), out);
  fmt::print("merged {} parts: {} model points -> {} (for the ranked table and Pareto fronts: moesim sweep SPEC --out {} --resume)\n",
             stats.parts, stats.points, out, out);
  return 0;
}

}  // namespace moesim
