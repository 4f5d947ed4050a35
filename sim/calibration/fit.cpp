// The least-squares fit of a hardware profile's efficiency parameters to classified kernels (fit in
// calibrate.h): one method per step, in the order fit applies them.
#include "sim/calibration/calibrate.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>

#include "sim/calibration/least_squares.h"
#include "sim/calibration/predict.h"

namespace moesim::calibrate {

namespace {

double rms_pct(const std::vector<const Sample*>& group, const HardwareProfile& hw) {
  if (group.empty()) return 0;
  double sum = 0;
  for (const Sample* s : group) {
    const double e = abs_error_pct(predict(*s, hw), s->measured);
    sum += e * e;
  }
  return std::sqrt(sum / static_cast<double>(group.size()));
}

// Tile-quantisation product of a GEMM on the profile's tiles (matrix_efficiency with a unit curve).
double quantisation(const compute::GemmShape& g, const MatrixEfficiency& e) {
  MatrixEfficiency unit = e;
  unit.peak_fraction = 1;
  unit.half_saturation_flops = 0;
  unit.grouped_gemm_factor = 1;
  return compute::matrix_efficiency(g, unit, false);
}

std::vector<const Sample*> select(const std::vector<Sample>& samples, const std::function<bool(const Sample&)>& keep) {
  std::vector<const Sample*> out;
  for (const Sample& s : samples)
    if (scored(s) && keep(s)) out.push_back(&s);
  return out;
}

// The samples as if every compute kernel had run alone: a kernel that shared its span with a collective
// for a fraction f of it is given measured / (1 + slowdown * f), the inverse of predict's charge.
std::vector<Sample> as_if_alone(const std::vector<Sample>& samples, double slowdown) {
  std::vector<Sample> out(samples);
  for (Sample& s : out) {
    s.measured /= 1.0 + slowdown * fraction_beside_collective(s);
    s.beside_collective = 0;
  }
  return out;
}

bool is_half_precision(const Sample& s) { return s.precision != MatrixPrecision::fp32; }

std::string fmt_pct(double before, double after, std::size_t samples) {
  char text[160];
  std::snprintf(text, sizeof text, ": rms residual would go %.1f%% -> %.1f%% over %zu samples", before, after, samples);
  return text;
}

// Rate columns of the replayed GEMM kernels off the tensor-core path (step 2b): TF32 on aligned
// operands, TF32 on unaligned ones, CUDA-core FP32 without a named layout (gemmSN), CUDA-core FP32 per
// named layout (nn, nt, tn, tt); then the GEMV fixed cost (seconds, not an inverse rate). A column
// without samples keeps its value.
constexpr int columns_count = 8, gemv_column = 7;
using RateColumns = std::array<double, columns_count>;

int column_of(const Sample& s) {
  if (s.path == GemmPath::gemv) return gemv_column;
  if (s.path == GemmPath::tf32) return unaligned_tf32(s) ? 1 : 0;
  return s.layout >= 0 ? 3 + s.layout : 2;
}

struct RateFit {
  RateColumns inverse_rates{};  // per column (the GEMV column: seconds); 0 where absent
  double sse = 0;
  bool ok = false;
};

// The inverse rates of the present columns for one saturation point, by least absolute relative
// deviations; each at least its `lowest` value (an inverse rate at least 1 / its peak, the GEMV fixed
// cost at least 0).
RateFit fit_rates(const std::vector<const Sample*>& group, const std::array<bool, columns_count>& present,
                  const RateColumns& lowest, const DeviceSpec& d, flops half_saturation) {
  // How far a coefficient falls below its bound, relative to it (1: at zero or below a zero bound).
  auto shortfall = [&](int c, double coef) { return lowest[c] > 0 ? 1 - coef / lowest[c] : coef < 0 ? 1.0 : 0.0; };
  MatrixEfficiency curve = at_own_rate(d).matrix;
  curve.half_saturation_flops = half_saturation;
  std::vector<double> work, targets, weights;
  for (const Sample* s : group) {
    if (s->path == GemmPath::gemv) {  // t - (launches - 1) L - gemv_time without its fixed cost = c_gemv
      work.push_back(1.0);
      targets.push_back(s->measured - (s->launches - 1) * d.launch_overhead - (gemv_time(*s, d) - d.gemv_fixed_cost));
    } else {
      work.push_back(compute::kernel_gemm_work(s->gemm, s->tile, curve));
      targets.push_back(s->measured - s->launches * d.launch_overhead);
    }
    weights.push_back(1.0 / (s->measured * s->measured));
  }
  // A column whose free fit would pass its bound is pinned there and the others refitted (the
  // minimum of the constrained problem has that bound active); at most one pin per pass.
  std::array<bool, columns_count> pinned{};
  RateFit f;
  for (int pass = 0; pass <= columns_count; ++pass) {
    std::vector<int> free_columns;
    for (int c = 0; c < columns_count; ++c)
      if (present[c] && !pinned[c]) free_columns.push_back(c);
    std::vector<std::vector<double>> x;
    std::vector<double> rest;  // target less the pinned columns' time
    for (std::size_t r = 0; r < group.size(); ++r) {
      const int c = column_of(*group[r]);
      std::vector<double> row;
      for (int free : free_columns) row.push_back(free == c ? work[r] : 0.0);
      x.push_back(std::move(row));
      rest.push_back(targets[r] - (pinned[c] ? work[r] * lowest[c] : 0.0));
    }
    std::vector<double> coef;
    if (!free_columns.empty()) {
      coef = least_absolute_deviations(x, rest, weights);
      if (coef.empty()) return RateFit{};
    }
    f = {};
    for (int c = 0; c < columns_count; ++c)
      if (pinned[c]) f.inverse_rates[static_cast<std::size_t>(c)] = lowest[c];
    for (std::size_t j = 0; j < free_columns.size(); ++j) f.inverse_rates[static_cast<std::size_t>(free_columns[j])] = coef[j];
    int worst = -1;  // the free column furthest past its bound
    for (int c : free_columns) {
      const double past = shortfall(c, f.inverse_rates[static_cast<std::size_t>(c)]);
      if (past > 0 && (worst < 0 || past > shortfall(worst, f.inverse_rates[static_cast<std::size_t>(worst)]))) worst = c;
    }
    if (worst < 0) break;
    pinned[worst] = true;
  }
  for (std::size_t r = 0; r < group.size(); ++r) {
    const double predicted = f.inverse_rates[static_cast<std::size_t>(column_of(*group[r]))] * work[r];
    f.sse += std::abs(targets[r] - predicted) * std::sqrt(weights[r]);  // sum of |relative residual|
  }
  f.ok = true;
  return f;
}

// One fit in progress: the profile as fitted so far (result.profile), the values fitted and the fits
// undone. Each step fits its parameters to its own samples and keeps them only if they lower those
// samples' rms relative residual.
class ProfileFit {
 public:
  explicit ProfileFit(const HardwareProfile& base_profile) : base(base_profile) {}
  FitResult run(const std::vector<Sample>& samples);

 private:
  void record(const std::string& parameter, double before, double after, const std::vector<const Sample*>& group,
              const HardwareProfile& before_profile, std::string note);
  bool improves(const std::vector<const Sample*>& group, const HardwareProfile& before_profile, const std::string& what);
  void fit_compute_and_slowdown(const std::vector<Sample>& samples);
  void fit_compute(const std::vector<Sample>& alone);
  void fit_launch_and_hbm(const std::vector<Sample>& alone);
  void fit_matrix_curve(const std::vector<const Sample*>& half);
  void fit_fp32_rate(const std::vector<const Sample*>& single, bool have_half);
  void fit_off_tensor_core_rates(const std::vector<Sample>& alone, bool have_half);
  void keep_off_tensor_core_rates(const RateFit& best, const std::array<bool, columns_count>& present, flops half_saturation,
                                  const std::vector<const Sample*>& group);
  void fit_grouped_gemm_factor(const std::vector<Sample>& alone);
  void fit_attention_fraction(const std::vector<Sample>& alone);
  void fit_tier(const std::vector<Sample>& samples, std::size_t t);

  const HardwareProfile& base;
  FitResult result{base, {}, {}};
  HardwareProfile& p = result.profile;
  DeviceSpec& d = p.device;
};

void ProfileFit::record(const std::string& parameter, double before, double after, const std::vector<const Sample*>& group,
                        const HardwareProfile& before_profile, std::string note) {
  result.values.push_back({parameter, before, after, static_cast<int>(group.size()), rms_pct(group, before_profile),
                           rms_pct(group, p), std::move(note)});
}

// Keeps a step's fit only if it lowers the rms relative residual of the samples it was fitted to.
bool ProfileFit::improves(const std::vector<const Sample*>& group, const HardwareProfile& before_profile, const std::string& what) {
  const double before_rms = rms_pct(group, before_profile), after_rms = rms_pct(group, p);
  if (after_rms <= before_rms) return true;
  p = before_profile;
  result.rejected.push_back(what + fmt_pct(before_rms, after_rms, group.size()));
  return false;
}

FitResult ProfileFit::run(const std::vector<Sample>& samples) {
  fit_compute_and_slowdown(samples);
  // 6. Collectives, innermost tier first: the alpha-beta time is linear in the tier's latency and in
  //    1/(bandwidth * efficiency); the coefficients come from comm::collective_time itself, evaluated
  //    with that tier's latency and bandwidth switched on and off (inner tiers at their fitted values).
  for (std::size_t t = 0; t < p.tiers.size(); ++t) fit_tier(samples, t);
  return result;
}

// Steps 1-4 fit the compute samples as if they had run alone (as_if_alone with the slowdown of the
// previous pass, on a copy of the samples; the first pass takes them as measured), step 5 the slowdown
// on the samples as measured, given the rates and efficiencies of steps 1-4: alternating least squares
// of the model predict uses, three passes. A slowdown the traces do not support (step 5 undone) leaves
// the base profile's value and the first pass's rates.
//
// 5. Slowdown of compute kernels beside a collective: t = t_alone * (1 + s * f), f the fraction of the
//    kernel's span that shared the device with a collective (predict), so t - t_alone = s * (t_alone * f):
//    one coefficient, by least absolute relative deviations as the GEMM rates. At most 1: a kernel
//    sharing the SMs with one other kernel keeps at least half of them (a fair share), and at least 0.
void ProfileFit::fit_compute_and_slowdown(const std::vector<Sample>& samples) {
  const auto beside = select(samples, [](const Sample& s) { return s.kind != OpKind::collective && s.beside_collective > 0; });
  double slowdown = 0;  // the first pass fits the kernels as measured
  FitResult previous = result;
  for (int pass = 0; pass < 3; ++pass) {
    result = FitResult{base, {}, {}};
    if (beside.size() < 3) {  // no slowdown to fit: the samples as measured
      fit_compute(samples);
      break;
    }
    fit_compute(as_if_alone(samples, slowdown));
    const HardwareProfile before = p;
    std::vector<std::vector<double>> x;
    std::vector<double> targets, weights;
    for (const Sample* s : beside) {
      const seconds alone = predict_alone(*s, p);
      x.push_back({alone * fraction_beside_collective(*s)});
      targets.push_back(s->measured - alone);
      weights.push_back(1.0 / (s->measured * s->measured));
    }
    const auto coef = least_absolute_deviations(x, targets, weights);
    if (!coef.empty()) d.comm_compute_slowdown = std::clamp(coef[0], 0.0, 1.0);
    if (coef.empty() || !improves(beside, before, "comm_compute_slowdown")) {
      if (pass > 0) result = previous;  // the last pass whose slowdown held
      break;
    }
    record("device.comm_compute_slowdown", base.device.comm_compute_slowdown, d.comm_compute_slowdown, beside, before,
           "compute kernels that ran beside a collective kernel, by the fraction of their span they shared");
    slowdown = d.comm_compute_slowdown;
    previous = result;
  }
}

void ProfileFit::fit_compute(const std::vector<Sample>& alone) {
  fit_launch_and_hbm(alone);
  // The GEMMs of steps 2 and 2b on tensor cores, half precision and FP32, both chosen before either is fitted.
  auto compute_bound = [&](const Sample& s) {
    return s.gemm.flop_count() / (matrix_peak(s.precision, d) * compute::matrix_efficiency(s.gemm, d.matrix, false)) >=
           s.hbm / (d.hbm_bandwidth * d.hbm_efficiency);
  };
  auto on_tensor_cores = [](const Sample& s) { return s.kind == OpKind::matmul && s.path == GemmPath::tensor_core; };
  const auto half = select(alone, [&](const Sample& s) { return on_tensor_cores(s) && is_half_precision(s) && compute_bound(s); });
  const auto single = select(alone, [&](const Sample& s) { return on_tensor_cores(s) && !is_half_precision(s) && compute_bound(s); });
  if (!half.empty()) fit_matrix_curve(half);
  if (!single.empty()) fit_fp32_rate(single, !half.empty());
  fit_off_tensor_core_rates(alone, !half.empty());
  fit_grouped_gemm_factor(alone);
  fit_attention_fraction(alone);
}

// 1. Launch overhead and HBM efficiency from memory-bound vector ops: t = L + (1/e) * bytes / BW
//    (the roofline's memory term plus the fixed per-kernel cost; DESIGN.md op-time rule).
void ProfileFit::fit_launch_and_hbm(const std::vector<Sample>& alone) {
  const auto group = select(alone, [&](const Sample& s) {
    return s.kind == OpKind::vector && s.hbm / d.hbm_bandwidth >= s.op_flops / (d.vector_flops * d.vector_efficiency);
  });
  std::vector<Row> rows;
  for (const Sample* s : group) rows.push_back({static_cast<double>(s->launches), s->hbm / d.hbm_bandwidth, s->measured, s->measured});
  LinearFit f = rows.size() >= 3 ? fit_two_non_negative(rows) : LinearFit{};
  if (!(f.ok && f.b > 0)) return;
  const HardwareProfile before = p;
  double launch = f.a, inverse_efficiency = f.b;
  if (inverse_efficiency < 1) {  // faster than the datasheet bandwidth: keep efficiency 1, refit L
    inverse_efficiency = 1;
    std::vector<Row> l_rows;
    for (const Row& r : rows) l_rows.push_back({r.x1, 0, r.target - r.x2, r.measured});
    launch = fit_one(l_rows);
  }
  launch = std::max(0.0, launch);
  d.launch_overhead = launch;
  d.hbm_efficiency = 1.0 / inverse_efficiency;
  if (improves(group, before, "launch_overhead and hbm_efficiency from vector ops")) {
    record("device.launch_overhead", before.device.launch_overhead, d.launch_overhead, group, before,
           "intercept of kernel time vs HBM bytes over memory-bound vector ops");
    record("device.hbm_efficiency", before.device.hbm_efficiency, d.hbm_efficiency, group, before,
           "inverse slope of kernel time vs bytes / hbm_bandwidth");
  }
}

// Rows of the GEMM fits: target = (F + F_half) / (peak * q * peak_fraction), x1 = F / (q * peak) and
// x2 = 1 / (q * peak) (the peak left out for the FP32 rate, which is what that fit solves for).
std::vector<Row> gemm_rows(const std::vector<const Sample*>& group, bool include_peak, const DeviceSpec& d) {
  std::vector<Row> rows;
  for (const Sample* s : group) {
    const double scale = quantisation(s->gemm, d.matrix) * (include_peak ? matrix_peak(s->precision, d) : 1.0);
    rows.push_back({s->gemm.flop_count() / scale, 1.0 / scale, s->measured - s->launches * d.launch_overhead, s->measured});
  }
  return rows;
}

// 2. Matrix curve from half-precision GEMMs: t - L = (F + F_half) / (peak * q * peak_fraction)
//    (compute::matrix_efficiency), linear in 1/peak_fraction and F_half/peak_fraction.
void ProfileFit::fit_matrix_curve(const std::vector<const Sample*>& half) {
  const HardwareProfile before = p;
  const std::vector<Row> rows = gemm_rows(half, true, d);
  LinearFit f = rows.size() >= 3 ? fit_two_non_negative(rows) : LinearFit{};
  double inverse_peak = 0, half_saturation = d.matrix.half_saturation_flops;
  if (f.ok && f.a > 0) {
    inverse_peak = f.a;
    half_saturation = f.b / f.a;
  } else {  // too few distinct sizes: fit peak_fraction with the base saturation point
    std::vector<Row> one;
    for (const Row& r : rows) one.push_back({r.x1 + half_saturation * r.x2, 0, r.target, r.measured});
    inverse_peak = fit_one(one);
  }
  d.matrix.peak_fraction = std::min(1.0, 1.0 / inverse_peak);
  d.matrix.half_saturation_flops = half_saturation;
  if (improves(half, before, "matrix curve from half-precision GEMMs")) {
    record("device.matrix_efficiency.peak_fraction", before.device.matrix.peak_fraction, d.matrix.peak_fraction, half, before,
           "half-precision GEMMs");
    record("device.matrix_efficiency.half_saturation_flops", before.device.matrix.half_saturation_flops,
           d.matrix.half_saturation_flops, half, before, f.ok ? "half-precision GEMMs" : "kept (too few distinct sizes)");
  }
}

// 2. FP32 GEMM rate on the tensor (Cube) units (and, without half-precision GEMMs, the saturation point).
void ProfileFit::fit_fp32_rate(const std::vector<const Sample*>& single, bool have_half) {
  const HardwareProfile before = p;
  const std::vector<Row> rows = gemm_rows(single, false, d);  // target = (F + F_half) / (P32 * q * pf)
  LinearFit f = !have_half && rows.size() >= 3 ? fit_two_non_negative(rows) : LinearFit{};
  double rate = 0;
  if (f.ok && f.a > 0) {
    d.matrix.half_saturation_flops = f.b / f.a;
    rate = 1.0 / (f.a * d.matrix.peak_fraction);
  } else {
    std::vector<Row> one;
    for (const Row& r : rows) one.push_back({r.x1 + d.matrix.half_saturation_flops * r.x2, 0, r.target, r.measured});
    rate = 1.0 / (fit_one(one) * d.matrix.peak_fraction);
  }
  d.matrix_fp32 = rate;
  if (improves(single, before, "FP32 GEMM rate")) {
    record("device.matrix_flops.fp32", matrix_peak(MatrixPrecision::fp32, before.device), d.matrix_fp32, single, before,
           "FP32 GEMMs (rate at peak_fraction)");
    if (f.ok)
      record("device.matrix_efficiency.half_saturation_flops", before.device.matrix.half_saturation_flops,
             d.matrix.half_saturation_flops, single, before, "FP32 GEMMs (no half-precision GEMMs in the traces)");
  }
}

// 2b. Replayed GPU kernels off the tensor-core path, TF32 and CUDA-core FP32 (GemmPath): t - L =
//     (F / q + F_half) / rate on the kernel's own tile (compute::kernel_gemm_time at peak_fraction 1),
//     linear in 1/rate_tf32, 1/rate_tf32_unaligned (unaligned_tf32) and 1/rate_fp32 for a given F_half.
//     Without half-precision GEMMs to fix the saturation point, F_half is the best of a log-spaced scan
//     (one shared curve, the rates fitted at each point). Matrix-vector kernels, on no tile, add one more
//     column: their fixed cost beyond launch and memory roofline (gemv_time), t - L - roofline = c_gemv.
void ProfileFit::fit_off_tensor_core_rates(const std::vector<Sample>& alone, bool have_half) {
  // Kernels whose measured time exceeds their HBM roofline time are limited by their main loop, not by
  // memory: the ones the rates describe. The measured time, not the base rates, decides: an unaligned
  // kernel the base TF32 rate would call memory-bound can run several times slower than its HBM time.
  auto path_bound = [&](const Sample& s) {
    return s.measured - s.launches * d.launch_overhead >= s.hbm / (d.hbm_bandwidth * d.hbm_efficiency);
  };
  const auto group = select(alone, [&](const Sample& s) {
    return s.kind == OpKind::matmul && (s.path == GemmPath::tf32 || s.path == GemmPath::simt || s.path == GemmPath::gemv) &&
           path_bound(s);
  });
  std::array<bool, columns_count> present{};
  for (const Sample* s : group) present[column_of(*s)] = true;
  // A rate is at most what the hardware can reach: TF32 (aligned or not) at most the datasheet TF32
  // peak, CUDA-core FP32 at most the base profile's FP32 rate (the datasheet's where the profile gives it,
  // else half the non-tensor rate, matrix_peak).
  // Few distinct shapes otherwise trade the rate against the fixed cost without bound (one A100 trace:
  // 140 PFLOPS TF32 with F_half = 1 TFLOP, every GEMM a constant).
  const flops_per_second tf32_peak = d.matrix_bf16 / 2, simt_peak = matrix_peak(MatrixPrecision::fp32, base.device);
  // As coefficients: an inverse rate at least 1 / its peak above; the GEMV fixed cost at least 0.
  const RateColumns lowest{1 / tf32_peak, 1 / tf32_peak, 1 / simt_peak, 1 / simt_peak, 1 / simt_peak, 1 / simt_peak, 1 / simt_peak, 0.0};
  flops half_saturation = d.matrix.half_saturation_flops;
  RateFit best = group.size() >= 3 ? fit_rates(group, present, lowest, d, half_saturation) : RateFit{};
  if (!have_half && group.size() >= 3) {
    for (double f_half = 1e6; f_half <= 1e12; f_half *= std::pow(10.0, 0.125)) {  // 1 MFLOP .. 1 TFLOP, 8 per decade
      const RateFit f = fit_rates(group, present, lowest, d, f_half);
      if (f.ok && (!best.ok || f.sse < best.sse)) best = f, half_saturation = f_half;
    }
  }
  if (best.ok) {
    keep_off_tensor_core_rates(best, present, half_saturation, group);
  } else if (group.size() >= 3) {
    result.rejected.push_back("TF32 and CUDA-core FP32 GEMM rates: no least-squares solution over " +
                              std::to_string(group.size()) + " kernels");
  }
}

// Sets the rates of step 2b's present columns and its saturation point, and records them if they
// lower the kernels' residual.
void ProfileFit::keep_off_tensor_core_rates(const RateFit& best, const std::array<bool, columns_count>& present,
                                            flops half_saturation, const std::vector<const Sample*>& group) {
  const HardwareProfile before = p;
  const auto rate = [&](int column) { return 1.0 / best.inverse_rates[static_cast<std::size_t>(column)]; };
  if (present[0]) d.matrix_tf32 = rate(0);
  if (present[1]) d.matrix_tf32_unaligned = rate(1);
  if (present[2]) d.matrix_fp32 = rate(2);
  for (int layout = 0; layout < 4; ++layout)
    if (present[3 + layout]) d.matrix_fp32_by_layout[static_cast<std::size_t>(layout)] = rate(3 + layout);
  if (present[gemv_column]) d.gemv_fixed_cost = best.inverse_rates[gemv_column];
  d.matrix.half_saturation_flops = half_saturation;
  if (!improves(group, before, "TF32 and CUDA-core FP32 GEMM rates and GEMV fixed cost")) return;
  if (present[0])
    record("device.matrix_flops.tf32", tf32_rate(before.device), d.matrix_tf32, group, before,
           "FP32 GEMM kernels on tensor cores (TF32), each on its named tile");
  if (present[1])
    record("device.matrix_flops.tf32_unaligned", tf32_unaligned_rate(before.device), d.matrix_tf32_unaligned, group, before,
           "TF32 GEMM kernels on unaligned operands (CUTLASS align1/align2)");
  if (present[2])
    record("device.matrix_flops.fp32", matrix_peak(MatrixPrecision::fp32, before.device), d.matrix_fp32, group, before,
           "FP32 GEMM kernels on CUDA cores without a named layout (gemmSN)");
  for (std::size_t layout = 0; layout < gemm_layout_names.size(); ++layout)
    if (present[3 + layout])
      record(std::string("device.matrix_flops.fp32_") + gemm_layout_names[layout],
             before.device.matrix_fp32_by_layout[layout] > 0 ? before.device.matrix_fp32_by_layout[layout]
                                                             : matrix_peak(MatrixPrecision::fp32, before.device),
             d.matrix_fp32_by_layout[layout], group, before,
             std::string("FP32 sgemm kernels of layout ") + gemm_layout_names[layout] + ", each on its named tile");
  if (present[gemv_column])
    record("device.gemv_fixed_cost", before.device.gemv_fixed_cost, d.gemv_fixed_cost, group, before,
           "matrix-vector kernels (gemv, dot, gemmk1): time beyond launch overhead and memory roofline");
  if (half_saturation != before.device.matrix.half_saturation_flops)
    record("device.matrix_efficiency.half_saturation_flops", before.device.matrix.half_saturation_flops, half_saturation, group,
           before, "TF32 / FP32 GEMM kernels (no half-precision GEMMs in the traces)");
}

// 3. Grouped GEMM factor: t - L = F / (peak * matrix_efficiency without the factor) / factor.
void ProfileFit::fit_grouped_gemm_factor(const std::vector<Sample>& alone) {
  const auto group = select(alone, [](const Sample& s) { return s.kind == OpKind::grouped_matmul; });
  if (group.empty()) return;
  const HardwareProfile before = p;
  std::vector<Row> rows;
  for (const Sample* s : group) {
    const double eff = compute::matrix_efficiency(s->gemm, d.matrix, false);
    rows.push_back({s->gemm.flop_count() / (matrix_peak(s->precision, d) * eff), 0, s->measured - s->launches * d.launch_overhead,
                    s->measured});
  }
  d.matrix.grouped_gemm_factor = std::min(1.0, 1.0 / fit_one(rows));
  if (improves(group, before, "grouped_gemm_factor"))
    record("device.matrix_efficiency.grouped_gemm_factor", before.device.matrix.grouped_gemm_factor,
           d.matrix.grouped_gemm_factor, group, before, "grouped GEMMs");
}

// 4. Attention fraction: t - L = F / (peak * peak_fraction * attention_fraction).
void ProfileFit::fit_attention_fraction(const std::vector<Sample>& alone) {
  const auto group = select(alone, [](const Sample& s) { return s.kind == OpKind::attention; });
  if (group.empty()) return;
  const HardwareProfile before = p;
  std::vector<Row> rows;
  for (const Sample* s : group)
    rows.push_back({s->op_flops / (matrix_peak(s->precision, d) * d.matrix.peak_fraction), 0,
                    s->measured - s->launches * d.launch_overhead, s->measured});
  d.matrix.attention_fraction = std::min(1.0 / d.matrix.peak_fraction, 1.0 / fit_one(rows));
  if (improves(group, before, "attention_fraction"))
    record("device.matrix_efficiency.attention_fraction", before.device.matrix.attention_fraction, d.matrix.attention_fraction,
           group, before, "fused attention kernels");
}

// 6. (run) Latency and efficiency of tier t from the collectives whose outermost tier it is.
void ProfileFit::fit_tier(const std::vector<Sample>& samples, std::size_t t) {
  const auto group = select(samples, [&](const Sample& s) {
    return s.kind == OpKind::collective && s.excludes_peer_wait && s.outer_tier == static_cast<int>(t);
  });
  if (group.empty()) return;
  const HardwareProfile before = p;
  auto time_with = [&](const Sample& s, seconds latency, bytes_per_second bandwidth) {
    std::vector<Tier> tiers = p.tiers;
    tiers[t].latency = latency;
    tiers[t].bandwidth = bandwidth;
    tiers[t].efficiency = 1;
    return comm::collective_time(s.collective, s.buffer, {s.group_size, s.group_stride}, tiers).time;
  };
  constexpr double unlimited = 1e30;  // bytes/s: makes the tier's bandwidth term vanish
  std::vector<Row> rows;
  std::vector<double> sizes;
  for (const Sample* s : group) {
    const seconds rest = time_with(*s, 0, unlimited);
    rows.push_back({time_with(*s, 1, unlimited) - rest, time_with(*s, 0, 1) - rest, s->measured - rest, s->measured});
    sizes.push_back(s->buffer);
  }
  std::sort(sizes.begin(), sizes.end());
  const bool spread = sizes.back() > 4 * sizes.front();  // a latency needs small and large messages
  Tier& tier = p.tiers[t];
  // Bandwidth is identifiable only if some message spends longer on bytes than on latency steps.
  const double base_inverse_bandwidth = 1.0 / (tier.bandwidth * tier.efficiency);
  const bool bandwidth_visible = std::any_of(rows.begin(), rows.end(), [&](const Row& r) {
    return r.x2 * base_inverse_bandwidth > r.x1 * tier.latency;
  });
  LinearFit f = spread && bandwidth_visible ? fit_two_non_negative(rows) : LinearFit{};
  double latency = tier.latency, inverse_bandwidth = 0;
  if (f.ok && f.b > 0) {
    latency = f.a;
    inverse_bandwidth = f.b;
  } else if (!bandwidth_visible) {  // latency-bound messages only: fit the latency, keep the bandwidth
    std::vector<Row> alpha_rows;
    for (const Row& r : rows) alpha_rows.push_back({r.x1, 0, r.target - base_inverse_bandwidth * r.x2, r.measured});
    latency = std::max(0.0, fit_one(alpha_rows));
    inverse_bandwidth = base_inverse_bandwidth;
  } else {
    std::vector<Row> beta_rows;
    for (const Row& r : rows) beta_rows.push_back({r.x2, 0, r.target - latency * r.x1, r.measured});
    inverse_bandwidth = fit_one(beta_rows);
  }
  if (!(inverse_bandwidth > 0)) return;
  tier.latency = latency;
  tier.efficiency = std::min(1.0, 1.0 / (inverse_bandwidth * tier.bandwidth));
  const std::string where = "tiers[" + std::to_string(t) + "] (" + tier.name + ")";
  if (!improves(group, before, where + " latency and efficiency")) return;
  if (f.ok || !bandwidth_visible)
    record(where + ".latency", before.tiers[t].latency, tier.latency, group, before,
           bandwidth_visible ? "collectives on this tier" : "latency-bound collectives on this tier");
  if (bandwidth_visible)
    record(where + ".efficiency", before.tiers[t].efficiency, tier.efficiency, group, before,
           spread ? "collectives on this tier" : "collectives on this tier (one message size: latency kept)");
}

}  // namespace

FitResult fit(const std::vector<Sample>& samples, const HardwareProfile& base) { return ProfileFit(base).run(samples); }

}  // namespace moesim::calibrate
