#pragma once
// The attention variants of a model file's `attention` object (costmodels/specs.h AttentionSpec):
// sliding windows and the layer pattern, sinks, the output gate, linear mixers and DeepSeek sparse
// attention. One line naming file, field and expectation for any bad value.
#include "costmodels/specs.h"
#include "sim/io/json_reader.h"

namespace moesim::io {

// attention.sliding_window, layer_pattern, sinks, output_gate, linear and sparse of a model with
// `layers` decoder layers, into s (whose type and MLA ranks are read already).
void read_attention_variants(const Field& a, int layers, AttentionSpec& s);

}  // namespace moesim::io
