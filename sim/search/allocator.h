#pragma once
// Process-wide allocator setting for programs that run many simulations (the CLI, benchmarks).

namespace moesim::sim {

// One simulation allocates and frees a few MB (engine task arrays, pass records). With glibc's
// defaults the freed heap top goes back to the OS and large blocks are mmapped afresh, so every
// simulation page-faults its arrays in again: perf stat on `moesim sweep` showed ~27,000 minor
// faults and about half its CPU time in the kernel. Raising the trim and mmap thresholds keeps
// freed memory in the process for the next simulation to reuse. Call once at startup, before
// threads start; does nothing where the C library has no mallopt thresholds.
void keep_freed_memory_for_reuse();

}  // namespace moesim::sim
