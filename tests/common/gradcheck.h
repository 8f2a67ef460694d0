// Finite-difference gradient checking shared by the kernel tests (header-only).
// Compares an analytic gradient with central differences of a scalar loss, in double precision,
// failing on NaN/Inf and size mismatches as tests/common/compare.h does for plain comparisons.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace halo::test {

// The finite-difference check of one analytic gradient (see grad_close):
//   error = max_i |a_i - n_i| / max(|a_i|, |n_i|, 1e-3),
//   n_i = (f(x + h e_i) - f(x - h e_i)) / (2h), the central difference (truncation error O(h^2),
//   rounding error O(eps |f| / h)). The error is
// relative per element because each entry is a separate derivative; the 1e-3 floor keeps entries
// whose true gradient is ~0 from turning rounding noise into a huge relative error, so scale the
// loss so typical gradients are O(1) (e.g. loss = sum(y * r), r ~ U(-1,1)).
// Basis of the usual tolerance 1e-6: the kernels run in double (u = 2^-53 ~ 1.1e-16), so with
// h = 1e-6 the central difference errs by ~u |f| / h ~ 1e-9 for |f| ~ 10 (plus h^2 |f^(3)| ~ 1e-12
// truncation), i.e. ~1e-9 relative to an O(1) derivative; near the 1e-3 floor this grows towards
// 1e-6, which is why checks whose derivatives cross zero take a larger h. A wrong gradient fails by
// orders of magnitude (a wrong factor gives O(1)).
// f may read x freely; x is perturbed in place one entry at a time and restored exactly, so f
// must depend only on x (no hidden state). Cost: 2 * x.size() calls of f.
struct GradCheck {
  std::string problem;  // non-empty: size mismatch or a non-finite analytic/numeric value
  double error = 0;     // the max above (+inf when problem is set)
  std::size_t worst = 0;
  double analytic = 0, numeric = 0;  // at `worst`
};

inline GradCheck check_gradient(std::function<double(std::vector<double>&)> f,
                                std::vector<double>& x, const std::vector<double>& analytic,
                                double h = 1e-6) {
  GradCheck c;
  if (analytic.size() != x.size()) {
    c.problem = "size mismatch: analytic gradient has " + std::to_string(analytic.size()) +
                " entries, x has " + std::to_string(x.size());
    c.error = std::numeric_limits<double>::infinity();
    return c;
  }
  bool first = true;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double f_plus = f(x);
    x[i] = saved - h;
    const double f_minus = f(x);
    x[i] = saved;
    const double numeric = (f_plus - f_minus) / (2.0 * h);
    const double a = analytic[i];
    // A NaN or Inf (a backward that never wrote an output initialised to NaN) must fail the
    // check, not vanish in a max().
    if (!std::isfinite(a) || !std::isfinite(numeric)) {
      c.problem = "non-finite value at element " + std::to_string(i) + ": analytic " +
                  std::to_string(a) + ", finite difference " + std::to_string(numeric);
      c.error = std::numeric_limits<double>::infinity();
      c.worst = i, c.analytic = a, c.numeric = numeric;
      return c;
    }
    const double denom = std::max({std::abs(a), std::abs(numeric), 1e-3});
    const double err = std::abs(a - numeric) / denom;
    if (first || err > c.error) c.error = err, c.worst = i, c.analytic = a, c.numeric = numeric;
    first = false;
  }
  return c;
}

// The measured error alone (+inf on a size mismatch or a non-finite value).
inline double max_grad_error(std::function<double(std::vector<double>&)> f, std::vector<double>& x,
                             const std::vector<double>& analytic, double h = 1e-6) {
  return check_gradient(std::move(f), x, analytic, h).error;
}
inline double grad_error(std::function<double(std::vector<double>&)> f, std::vector<double>& x,
                         const std::vector<double>& analytic, double h = 1e-6) {
  return max_grad_error(std::move(f), x, analytic, h);
}

// EXPECT_TRUE(grad_close(loss, x, dx, 1e-6)): passes when the error above is < tol; the message
// names the worst entry with both derivatives.
inline ::testing::AssertionResult grad_close(std::function<double(std::vector<double>&)> f,
                                             std::vector<double>& x,
                                             const std::vector<double>& analytic, double tol,
                                             double h = 1e-6, const std::string& what = "") {
  const GradCheck c = check_gradient(std::move(f), x, analytic, h);
  std::ostringstream os;
  os << (what.empty() ? "" : what + ": ");
  if (!c.problem.empty()) return ::testing::AssertionFailure() << os.str() << c.problem;
  os << "gradient check (h " << h << "): max |analytic - numeric| / max(|analytic|, |numeric|, "
     << "1e-3) = " << c.error << " (tolerance " << tol << ") over " << x.size() << " entries";
  if (!x.empty())
    os << "; worst at [" << c.worst << "]: analytic " << c.analytic << ", numeric " << c.numeric;
  return (c.error < tol ? ::testing::AssertionSuccess() : ::testing::AssertionFailure())
         << os.str();
}

// Dot product of two equal-length vectors (the loss sum(y * r) of the gradient checks).
inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
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
