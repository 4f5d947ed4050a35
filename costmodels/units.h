#pragma once
// Units used across moesim. Every quantity is a double whose name says its unit: a double holds
// 10^15 parameters or 10^25 FLOPs without overflow, which integer counts of bytes and FLOPs
// (products of several large dimensions) would not guarantee.

namespace moesim {

using seconds = double;
using bytes = double;
using flops = double;            // floating-point operations (a count, not a rate)
using flops_per_second = double;
using bytes_per_second = double;
using count = double;            // parameters, tokens: large counts kept exact up to 2^53

constexpr double giga = 1e9;
constexpr double tera = 1e12;
constexpr double gib = 1024.0 * 1024.0 * 1024.0;

}  // namespace moesim
