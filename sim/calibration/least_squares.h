#pragma once
// Internal to sim/calibration: the weighted linear fits the calibration solves, all on relative
// residuals (weights 1 / measured^2). Pure math over rows of numbers.
#include <vector>

namespace moesim::calibrate {

// One observation of a linear model target = a*x1 + b*x2, weighted by 1/measured^2 so the fit
// minimises relative residuals.
struct Row {
  double x1, x2, target, measured;
};

struct LinearFit {
  double a = 0, b = 0;
  bool ok = false;
};

// Weighted least squares for target = a*x1 + b*x2 (normal equations).
LinearFit fit_two(const std::vector<Row>& rows);

// Weighted least squares for target = a*x1 (x2 ignored).
double fit_one(const std::vector<Row>& rows);

// Weighted least squares for target = sum_j coef_j * x_j (normal equations, Gaussian elimination with
// partial pivoting); empty when the columns are degenerate.
std::vector<double> least_squares(const std::vector<std::vector<double>>& x, const std::vector<double>& target,
                                  const std::vector<double>& weight);

// Weighted least absolute deviations by iteratively reweighted least squares (weights 1 / |e|,
// Schlossmacher 1973): the replay scores median |error|, and kernels slowed by what the trace does not
// show (clock changes, other processes) are outliers that would pull a squared-error fit. Weights
// 1/measured^2 make the deviations relative. Empty when the columns are degenerate.
std::vector<double> least_absolute_deviations(const std::vector<std::vector<double>>& x, const std::vector<double>& target,
                                              const std::vector<double>& weight);

// target = a*x1 + b*x2 with a, b >= 0: the unconstrained solution if it is non-negative, else the
// better of the two one-parameter fits on the boundary (the minimum of a convex problem with one
// bound active). `ok` is false when neither parameter can be fitted.
LinearFit fit_two_non_negative(const std::vector<Row>& rows);

}  // namespace moesim::calibrate
