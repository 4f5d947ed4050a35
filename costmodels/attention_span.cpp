#include "costmodels/attention_span.h"

#include <algorithm>

namespace moesim::graph {

double causal_window_pairs(double s, double w) {
  if (s <= 0 || w <= 0) return 0;
  if (w >= s) return s * (s + 1) / 2;
  return s * w - w * (w - 1) / 2;
}

AttentionKeys attention_keys(double seq_len, AttentionSpan span, int window, bool causal) {
  if (span == AttentionSpan::sliding && window > 0 && window < seq_len)
    return {.executed = causal_window_pairs(seq_len, window) / seq_len, .model = static_cast<double>(window)};
  return {.executed = causal ? seq_len / 2 : seq_len, .model = seq_len};
}

}  // namespace moesim::graph
