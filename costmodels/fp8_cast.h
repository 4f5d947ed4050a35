#pragma once
// HBM bytes of Transformer Engine's FP8 quantisation of one bf16 tensor (costmodels/fp8_cast.cpp).
#include "costmodels/specs.h"

namespace moesim::graph {

// The three operands of an FP8 linear layer: its input (fprop and wgrad GEMMs), its output gradient
// (dgrad and wgrad) and its weight (fprop and dgrad).
enum class Fp8Operand { input, gradient, weight };

// HBM bytes per element of quantising a bf16 operand into the FP8 copies its two GEMMs need, under
// `recipe`; `any_layout`: DeviceSpec-side MatrixEfficiency::fp8_any_layout; `from_norm`: the input of a
// LayerNormLinear, whose norm kernel does part of the cast.
double fp8_cast_bytes(Fp8Recipe recipe, Fp8Operand operand, bool any_layout, bool from_norm = false);

}  // namespace moesim::graph
