#include "sim/search/allocator.h"

#if __has_include(<malloc.h>)
#include <malloc.h>
#endif

namespace moesim::sim {

void keep_freed_memory_for_reuse() {
#if defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
  // 32 MiB is the largest mmap threshold glibc accepts on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX in
  // malloc(3)); setting either threshold also turns off glibc's dynamic adjustment of both.
  constexpr int mmap_threshold_bytes = 32 << 20;
  constexpr int trim_threshold_bytes = 256 << 20;
  mallopt(M_MMAP_THRESHOLD, mmap_threshold_bytes);
  mallopt(M_TRIM_THRESHOLD, trim_threshold_bytes);
#endif
}

}  // namespace moesim::sim
