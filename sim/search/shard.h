#pragma once
// Sweeps split across batch jobs (a Slurm job array): `moesim sweep SPEC --shard I/N` evaluates the
// points with index % N == I into a part file, and `moesim merge` joins the parts into the results
// file one process would have written. A part file is a header line naming the spec (by a fingerprint
// of its JSON) and the shard, then the shard's result lines exactly as run_sweep writes them.
#include <cstdint>
#include <string>
#include <vector>

#include "sim/search/sweep.h"

namespace moesim::shard {

struct Shard {
  std::uint64_t index = 0, count = 1;
};

// Shard I of N owns the points with index % N == I: neighbouring points (the last axis varies fastest)
// often cost alike, so striding gives every shard a similar mix of cheap and costly points.
// "I/N" with whole numbers 0 <= I < N; anything else is an InputError naming `flag`.
Shard parse_shard(const std::string& text, const std::string& flag);

// FNV-1a (64-bit) of the spec file's JSON as nlohmann dumps it, so spacing and key order do not
// matter but any value does. Two parts merge only when their fingerprints agree.
std::uint64_t spec_fingerprint(const std::string& spec_path);

// The first line of a part file; run_sweep writes it and resume requires it unchanged.
std::string part_header(const sweep::SweepSpec& spec, Shard shard);

struct MergeStats {
  std::uint64_t parts = 0, points = 0;
};

// Writes the result lines of `parts` to out_path in index order, byte for byte as they are in the
// parts. Refuses (InputError naming the file) parts of different specs, a point in two parts, a point
// in none, a line cut off mid-write. out_path is replaced only when the merge succeeds.
MergeStats merge_parts(const std::vector<std::string>& parts, const std::string& out_path);

}  // namespace moesim::shard
