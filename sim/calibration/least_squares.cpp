#include "sim/calibration/least_squares.h"

#include <algorithm>
#include <cmath>

namespace moesim::calibrate {

namespace {

// Sum of squared relative residuals of target = a*x1 + b*x2.
double weighted_sse(const std::vector<Row>& rows, double a, double b) {
  double sse = 0;
  for (const Row& r : rows) {
    const double e = (r.target - a * r.x1 - b * r.x2) / r.measured;
    sse += e * e;
  }
  return sse;
}

}  // namespace

LinearFit fit_two(const std::vector<Row>& rows) {
  double s11 = 0, s12 = 0, s22 = 0, t1 = 0, t2 = 0;
  for (const Row& r : rows) {
    const double w = 1.0 / (r.measured * r.measured);
    s11 += w * r.x1 * r.x1;
    s12 += w * r.x1 * r.x2;
    s22 += w * r.x2 * r.x2;
    t1 += w * r.x1 * r.target;
    t2 += w * r.x2 * r.target;
  }
  const double det = s11 * s22 - s12 * s12;
  if (rows.size() < 3 || !(std::abs(det) > 1e-9 * s11 * s22)) return {};
  return {(t1 * s22 - t2 * s12) / det, (s11 * t2 - s12 * t1) / det, true};
}

double fit_one(const std::vector<Row>& rows) {
  double sxx = 0, sxt = 0;
  for (const Row& r : rows) {
    const double w = 1.0 / (r.measured * r.measured);
    sxx += w * r.x1 * r.x1;
    sxt += w * r.x1 * r.target;
  }
  return sxx > 0 ? sxt / sxx : 0;
}

std::vector<double> least_squares(const std::vector<std::vector<double>>& x, const std::vector<double>& target,
                                  const std::vector<double>& weight) {
  if (x.empty()) return {};
  const std::size_t n = x.front().size();
  std::vector<std::vector<double>> a(n, std::vector<double>(n + 1, 0.0));
  for (std::size_t r = 0; r < x.size(); ++r)
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < n; ++j) a[i][j] += weight[r] * x[r][i] * x[r][j];
      a[i][n] += weight[r] * x[r][i] * target[r];
    }
  for (std::size_t c = 0; c < n; ++c) {
    std::size_t pivot = c;
    for (std::size_t r = c + 1; r < n; ++r)
      if (std::abs(a[r][c]) > std::abs(a[pivot][c])) pivot = r;
    if (!(std::abs(a[pivot][c]) > 0)) return {};  // a column of zeros or a repeated column
    std::swap(a[c], a[pivot]);
    for (std::size_t r = 0; r < n; ++r) {
      if (r == c) continue;
      const double f = a[r][c] / a[c][c];
      for (std::size_t k = c; k <= n; ++k) a[r][k] -= f * a[c][k];
    }
  }
  std::vector<double> coef(n);
  for (std::size_t i = 0; i < n; ++i) coef[i] = a[i][n] / a[i][i];
  return coef;
}

std::vector<double> least_absolute_deviations(const std::vector<std::vector<double>>& x, const std::vector<double>& target,
                                              const std::vector<double>& weight) {
  std::vector<double> irls(weight), coef;
  for (int iteration = 0; iteration < 20; ++iteration) {
    coef = least_squares(x, target, irls);
    if (coef.empty()) return {};
    for (std::size_t r = 0; r < x.size(); ++r) {
      double predicted = 0;
      for (std::size_t j = 0; j < coef.size(); ++j) predicted += coef[j] * x[r][j];
      irls[r] = weight[r] / std::max(std::abs(target[r] - predicted) * std::sqrt(weight[r]), 1e-3);
    }
  }
  return coef;
}

LinearFit fit_two_non_negative(const std::vector<Row>& rows) {
  const LinearFit free = fit_two(rows);
  if (free.ok && free.a >= 0 && free.b >= 0) return free;
  std::vector<Row> only_b;
  for (const Row& r : rows) only_b.push_back({r.x2, 0, r.target, r.measured});
  const double a = std::max(0.0, fit_one(rows)), b = std::max(0.0, fit_one(only_b));
  const double sse_a = weighted_sse(rows, a, 0), sse_b = weighted_sse(rows, 0, b);
  if (a <= 0 && b <= 0) return {};
  return sse_a <= sse_b ? LinearFit{a, 0, a > 0} : LinearFit{0, b, b > 0};
}

}  // namespace moesim::calibrate
