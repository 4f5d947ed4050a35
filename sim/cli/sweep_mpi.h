#pragma once
// `mpirun -np N moesim sweep SPEC --mpi`: the sweep shared out over MPI ranks. Defined in
// sweep_mpi.cpp, which is compiled only with -DMOESIM_WITH_MPI=ON.
#include <optional>
#include <string>

#include "sim/search/sweep.h"

namespace moesim {

struct MpiSweep {
  sweep::SweepSpec spec;
  sweep::Summary summary;
  sweep::RunStats stats;
};

// Every rank loads the spec; rank 0 writes options.out_path exactly as run_sweep would (same lines,
// same order, --resume the same way), handing out chunks of point indices to the ranks that ask
// and evaluating points on its own threads in between. Each rank runs options.jobs threads. Rank 0
// returns the outcome and prints the points per rank to stderr; the other ranks return nothing.
// Input errors are agreed on by all ranks and thrown (as InputError) by the lowest rank that hit one.
std::optional<MpiSweep> run_sweep_mpi(const std::string& spec_path, const sweep::RunOptions& options);

}  // namespace moesim
