#pragma once
// How many keys an attention core's queries see, by the layer's AttentionSpan: the executed count (what
// a causal kernel computes) and the count model FLOPs (MFU) take. Pure math; costmodels/graph.cpp
// turns keys into FLOPs.
#include "costmodels/specs.h"

namespace moesim::graph {

// (query, key) pairs of causal attention over s tokens where each query sees at most w keys, itself
// included: query i sees min(i + 1, w) keys, so the sum is s w - w (w - 1) / 2 for w <= s and
// s (s + 1) / 2 otherwise (the banded causal mask of Longformer §3.1, arXiv 2004.05150, and Mistral 7B
// §2, arXiv 2310.06825, where a layer's query at position i attends to positions i - w + 1 .. i).
double causal_window_pairs(double s, double w);

struct AttentionKeys {
  double executed = 0;  // mean keys per query the kernel computes
  double model = 0;     // keys per query model FLOPs count
};

// Keys per query of one attention layer over a sequence of seq_len tokens.
// full: model FLOPs count all seq_len keys, not halved by the causal mask (PaLM, Chowdhery et al. 2022
// App. B); a causal kernel computes half of them (FlashAttention skips the masked blocks).
// sliding (window w < seq_len): model FLOPs count the w keys of the window, with the same convention
// of not discounting the mask (the first w - 1 queries see fewer): the model does that work and no
// more, so MFU of a sliding layer is its windowed work. The kernel computes exactly
// causal_window_pairs(seq_len, w) / seq_len keys per query (FlashAttention-2's window_size skips the
// blocks outside the band). A window as long as the sequence is full attention.
AttentionKeys attention_keys(double seq_len, AttentionSpan span, int window, bool causal);

}  // namespace moesim::graph
