// The one numerical comparison of the test suite (header-only): computed values against reference
// values, as std::vectors (float or double, mixed) or as halo::Tensors (copied to the host), with a
// gtest AssertionResult whose message names the worst element. Any NaN or Inf on either side, a
// size mismatch or (tensors) a shape mismatch fails, whatever the tolerance.
//
//   EXPECT_TRUE(halo::test::close_rel(got, ref, 1e-5));           // max|got-ref| / max|ref| <=
//   1e-5 EXPECT_TRUE(halo::test::close_abs(got, ref, 1e-6));           // max|got-ref| <= 1e-6
//   EXPECT_TRUE(halo::test::close_elementwise(got, ref, a, r));   // |got_i-ref_i| <= max(a,
//   r|ref_i|) double e = halo::test::rel_error(got, ref);                   // the measured value
//   (+inf if any
//                                                                 // of the failures above)
//
// Why not `std::max` over |got - ref|: std::max(d, NaN) returns d, so a loop of that kind silently
// skips NaN and an all-NaN output "matches" anything (tests/engine/test_compare.cpp shows it).
// Every loop here tests std::isfinite explicitly and takes maxima with `>`, which NaN cannot reach.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/tensor.h"

namespace halo::test {

// Row-major multi-index of flat element i of `shape`, as "[n, c, h, w]".
inline std::string index_string(const Shape& shape, int64_t i) {
  std::vector<int64_t> idx(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] > 0 ? i % shape[d] : 0;
    i = shape[d] > 0 ? i / shape[d] : 0;
  }
  std::ostringstream os;
  os << "[";
  for (std::size_t d = 0; d < idx.size(); ++d) os << (d ? ", " : "") << idx[d];
  os << "]";
  return os.str();
}

// The result of comparing got with ref element by element.
struct Comparison {
  std::string problem;  // non-empty: a size mismatch or a non-finite value; the comparison fails
  std::size_t n = 0;    // elements compared
  double max_abs_diff = 0;  // max_i |got_i - ref_i|
  double ref_scale = 0;     // max_i |ref_i|
  std::size_t worst = 0;    // index of the element with the largest |got_i - ref_i| (or the
                            // largest excess over its per-element bound, for close_elementwise)
  double worst_got = 0, worst_ref = 0;
  double worst_excess = 0;  // close_elementwise: max_i |got_i - ref_i| / max(atol, rtol |ref_i|)
  // max|got - ref| / max|ref|: the error relative to the magnitude of what is compared. The floor
  // keeps an all-zero reference from dividing by zero; against it any difference is enormous, so
  // compare exact zeros with close_abs.
  double rel() const { return problem.empty() ? max_abs_diff / std::max(ref_scale, 1e-300) : kInf; }
  static constexpr double kInf = std::numeric_limits<double>::infinity();
};

namespace detail {

template <class T>
constexpr bool is_real = std::is_floating_point_v<T>;

template <class G, class R>
Comparison compare(const G* got, std::size_t n_got, const R* ref, std::size_t n_ref, double atol,
                   double rtol) {
  Comparison c;
  if (n_got != n_ref) {
    std::ostringstream os;
    os << "size mismatch: got " << n_got << " elements, reference " << n_ref;
    c.problem = os.str();
    return c;
  }
  c.n = n_got;
  bool first = true;
  for (std::size_t i = 0; i < n_got; ++i) {
    const double g = double(got[i]), r = double(ref[i]);
    if (!std::isfinite(g) || !std::isfinite(r)) {
      std::ostringstream os;
      os << "non-finite value at element " << i << ": got " << g << ", reference " << r;
      c.problem = os.str();
      c.worst = i, c.worst_got = g, c.worst_ref = r;
      return c;
    }
    const double d = std::abs(g - r);
    const double a = std::abs(r);
    if (a > c.ref_scale) c.ref_scale = a;
    // close_elementwise (atol >= 0): the excess of element i over its bound, d / max(atol,
    // rtol |r|) (inf when the bound is 0 and d > 0), and the worst element is the worst excess.
    const bool by_excess = atol >= 0;
    double excess = 0;
    if (by_excess && d > 0) {
      const double bound = std::max(atol, rtol * a);
      excess = bound > 0 ? d / bound : Comparison::kInf;
    }
    if (first || (by_excess ? excess > c.worst_excess : d > c.max_abs_diff)) {
      c.worst = i, c.worst_got = g, c.worst_ref = r;
      first = false;
    }
    if (d > c.max_abs_diff) c.max_abs_diff = d;
    if (excess > c.worst_excess) c.worst_excess = excess;
  }
  return c;
}

inline std::string where(const Shape* shape, std::size_t i) {
  if (shape) return index_string(*shape, int64_t(i));
  std::ostringstream
      os;  // (not "[" + to_string(i) + "]": GCC 12 warns falsely on that, -Wrestrict)
  os << "[" << i << "]";
  return os.str();
}

inline std::string prefix(const std::string& what) {
  return what.empty() ? "" : what + ": ";
}

// The common failure/success message: what, the worst element, the error and the tolerance.
inline ::testing::AssertionResult report(const Comparison& c, bool pass, const std::string& what,
                                         const Shape* shape, const std::string& measure,
                                         double value, double tol) {
  std::ostringstream os;
  os << prefix(what);
  if (!c.problem.empty()) {
    os << c.problem;
    if (shape && c.problem.rfind("non-finite", 0) == 0)
      os << " (index " << where(shape, c.worst) << ")";
    return ::testing::AssertionFailure() << os.str();
  }
  os << measure << " " << value << " (tolerance " << tol << ") over " << c.n << " elements";
  if (c.n > 0)
    os << "; worst at " << where(shape, c.worst) << ": got " << c.worst_got << ", ref "
       << c.worst_ref << ", |diff| " << std::abs(c.worst_got - c.worst_ref);
  os << "; max|ref| " << c.ref_scale;
  return (pass ? ::testing::AssertionSuccess() : ::testing::AssertionFailure()) << os.str();
}

inline ::testing::AssertionResult undefined(const Tensor& got, const Tensor& ref,
                                            const std::string& what) {
  return ::testing::AssertionFailure()
         << prefix(what) << (got.defined() ? "the reference" : "the computed")
         << " tensor is undefined" << (got.defined() || ref.defined() ? "" : " (both are)");
}

inline ::testing::AssertionResult shape_mismatch(const Tensor& got, const Tensor& ref,
                                                 const std::string& what) {
  return ::testing::AssertionFailure()
         << prefix(what) << "shape mismatch: got " << to_string(got.shape()) << ", reference "
         << to_string(ref.shape());
}

}  // namespace detail

// ---- the measured values ---------------------------------------------------------------------

template <class G, class R, class = std::enable_if_t<detail::is_real<G> && detail::is_real<R>>>
Comparison compare(const std::vector<G>& got, const std::vector<R>& ref) {
  return detail::compare(got.data(), got.size(), ref.data(), ref.size(), -1.0, 0.0);
}

// max|got - ref| / max|ref|; +inf on NaN/Inf in either side or a size mismatch.
template <class G, class R, class = std::enable_if_t<detail::is_real<G> && detail::is_real<R>>>
double rel_error(const std::vector<G>& got, const std::vector<R>& ref) {
  return compare(got, ref).rel();
}

// The same for tensors; +inf also on a shape mismatch or an undefined tensor.
inline double rel_error(const Tensor& got, const Tensor& ref) {
  if (!got.defined() || !ref.defined() || got.shape() != ref.shape()) return Comparison::kInf;
  return rel_error(got.to_vector(), ref.to_vector());
}

// ---- assertions ------------------------------------------------------------------------------

// max_i |got_i - ref_i| / max_i |ref_i| <= tol: the error relative to the magnitude of the whole
// reference, so entries that are ~0 by cancellation do not turn rounding into a huge relative
// error. The tolerance is then "how many float32 roundings of the largest value" (float32 unit
// roundoff 2^-24 ~ 6e-8, times the depth of the computation).
template <class G, class R, class = std::enable_if_t<detail::is_real<G> && detail::is_real<R>>>
::testing::AssertionResult close_rel(const std::vector<G>& got, const std::vector<R>& ref,
                                     double tol, const std::string& what = "") {
  const Comparison c = compare(got, ref);
  const double e = c.rel();
  return detail::report(c, e <= tol, what, nullptr, "max|got-ref|/max|ref|", e, tol);
}

inline ::testing::AssertionResult close_rel(const Tensor& got, const Tensor& ref, double tol,
                                            const std::string& what = "") {
  if (!got.defined() || !ref.defined()) return detail::undefined(got, ref, what);
  if (got.shape() != ref.shape()) return detail::shape_mismatch(got, ref, what);
  const Shape shape = ref.shape();
  const Comparison c = compare(got.to_vector(), ref.to_vector());
  const double e = c.rel();
  return detail::report(c, e <= tol, what + (what.empty() ? "" : " ") + to_string(shape), &shape,
                        "max|got-ref|/max|ref|", e, tol);
}

// max_i |got_i - ref_i| <= atol: for references whose scale is known in absolute terms (hand
// values, exact zeros, quantities of size ~1).
template <class G, class R, class = std::enable_if_t<detail::is_real<G> && detail::is_real<R>>>
::testing::AssertionResult close_abs(const std::vector<G>& got, const std::vector<R>& ref,
                                     double atol, const std::string& what = "") {
  const Comparison c = compare(got, ref);
  const bool pass = c.problem.empty() && c.max_abs_diff <= atol;
  return detail::report(c, pass, what, nullptr, "max|got-ref|", c.max_abs_diff, atol);
}

inline ::testing::AssertionResult close_abs(const Tensor& got, const Tensor& ref, double atol,
                                            const std::string& what = "") {
  if (!got.defined() || !ref.defined()) return detail::undefined(got, ref, what);
  if (got.shape() != ref.shape()) return detail::shape_mismatch(got, ref, what);
  const Shape shape = ref.shape();
  const Comparison c = compare(got.to_vector(), ref.to_vector());
  const bool pass = c.problem.empty() && c.max_abs_diff <= atol;
  return detail::report(c, pass, what + (what.empty() ? "" : " ") + to_string(shape), &shape,
                        "max|got-ref|", c.max_abs_diff, atol);
}

// Every element within its own bound: |got_i - ref_i| <= max(atol, rtol |ref_i|). For values
// whose sizes differ by orders of magnitude and must each be right relative to themselves (an
// image's faint outskirts beside its bright centre). The message reports the element that exceeds
// its bound the most, and max_i |got_i - ref_i| / bound_i as the measure (pass: <= 1).
template <class G, class R, class = std::enable_if_t<detail::is_real<G> && detail::is_real<R>>>
::testing::AssertionResult close_elementwise(const std::vector<G>& got, const std::vector<R>& ref,
                                             double atol, double rtol,
                                             const std::string& what = "") {
  const Comparison c =
      detail::compare(got.data(), got.size(), ref.data(), ref.size(), std::max(atol, 0.0), rtol);
  const bool pass = c.problem.empty() && c.worst_excess <= 1.0;
  std::ostringstream measure;
  measure << "max |got-ref| / max(" << atol << ", " << rtol << " |ref|) =";
  return detail::report(c, pass, what, nullptr, measure.str(), c.worst_excess, 1.0);
}

}  // namespace halo::test
