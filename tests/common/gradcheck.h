// Finite-difference gradient checking shared by the kernel tests (header-only).
// Compares an analytic gradient with central differences of a scalar loss, in double precision.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace halo::test {

// Max over i of |a_i - n_i| / max(|a_i|, |n_i|, 1e-3), where a is `analytic` and
//   n_i = (f(x + h e_i) - f(x - h e_i)) / (2h)
// is the central difference (truncation error O(h^2), rounding error O(eps |f| / h)).
// f may read x freely; x is perturbed in place one entry at a time and restored exactly, so f
// must depend only on x (no hidden state). Cost: 2 * x.size() calls of f.
// The 1e-3 floor keeps entries whose true gradient is ~0 from turning rounding noise into a huge
// relative error; scale the loss so typical gradients are O(1) (e.g. loss = sum(y * r), r ~
// U(-1,1)).
inline double max_grad_error(std::function<double(std::vector<double>&)> f, std::vector<double>& x,
                             const std::vector<double>& analytic, double h = 1e-6) {
  if (analytic.size() != x.size())
    throw std::invalid_argument("max_grad_error: analytic gradient has " +
                                std::to_string(analytic.size()) + " entries, x has " +
                                std::to_string(x.size()));
  double worst = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double f_plus = f(x);
    x[i] = saved - h;
    const double f_minus = f(x);
    x[i] = saved;
    const double numeric = (f_plus - f_minus) / (2.0 * h);
    const double a = analytic[i];
    const double denom = std::max({std::abs(a), std::abs(numeric), 1e-3});
    const double err = std::abs(a - numeric) / denom;
    if (std::isnan(err)) return err;  // a NaN gradient must fail the check, not vanish in max()
    worst = std::max(worst, err);
  }
  return worst;
}

// Dot product of two equal-length vectors (the loss sum(y * r) of the gradient checks).
inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// max_grad_error, failing (returning +inf) when the analytic gradient holds a NaN or an Inf: a
// backward that never wrote an output initialised to NaN must not pass.
inline double grad_error(std::function<double(std::vector<double>&)> f, std::vector<double>& x,
                         const std::vector<double>& analytic, double h = 1e-6) {
  for (double a : analytic)
    if (!std::isfinite(a)) return std::numeric_limits<double>::infinity();
  return max_grad_error(std::move(f), x, analytic, h);
}

// n values uniform in [lo, hi) from a fixed seed: reproducible test inputs.
inline std::vector<double> random_vector(std::size_t n, unsigned seed, double lo = -1.0,
                                         double hi = 1.0) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(n);
  for (auto& e : v) e = dist(gen);
  return v;
}

}  // namespace halo::test
