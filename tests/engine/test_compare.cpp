// Self-test of the suite's one comparison helper (tests/common/compare.h): it fails on NaN, +Inf
// and -Inf on either side, on a short vector and on a shape mismatch, whatever the tolerance, names
// the worst element, and passes on equal data. The first test documents the defect it replaced:
// the old helpers took std::max over |got - ref|, which drops NaN, so an all-NaN model output
// passed the timm checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "tests/common/compare.h"

namespace {

using halo::Shape;
using halo::Tensor;
using halo::test::close_abs;
using halo::test::close_elementwise;
using halo::test::close_rel;
using halo::test::rel_error;

const float kNan = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

std::string message(const ::testing::AssertionResult& r) {
  return r.message();
}

// The formula of the replaced rel_max_diff (tests/models/model_test_util.h, used by the timm
// fixture and interop checks), verbatim: max |a - b| / max |b| with std::max, up to the shorter
// length.
double old_rel_max_diff(const std::vector<float>& va, const std::vector<float>& vb) {
  double d = 0, scale = 0;
  for (std::size_t i = 0; i < va.size() && i < vb.size(); ++i) {
    d = std::max(d, std::abs(double(va[i]) - double(vb[i])));
    scale = std::max(scale, std::abs(double(vb[i])));
  }
  return d / std::max(scale, 1e-30);
}

TEST(Compare, OldMaxPatternPassedAllNanOutputAndShortVector) {
  const std::vector<float> ref{0.5f, -1.25f, 2.0f, 0.75f};
  const std::vector<float> all_nan(ref.size(), kNan);
  // std::max(d, NaN) returns d: every NaN difference is dropped, the error stays 0 and
  // EXPECT_LE(rel, 1e-5) passed.
  EXPECT_EQ(old_rel_max_diff(all_nan, ref), 0.0);
  EXPECT_LE(old_rel_max_diff(all_nan, ref), 1e-5) << "the defect: an all-NaN output 'matched'";
  // Only the common prefix was compared: a truncated output passed too.
  EXPECT_EQ(old_rel_max_diff({0.5f, -1.25f}, ref), 0.0);
  // The helper that replaced it fails on both.
  EXPECT_FALSE(close_rel(all_nan, ref, 1e-5));
  EXPECT_FALSE(close_rel(std::vector<float>{0.5f, -1.25f}, ref, 1e-5));
  EXPECT_EQ(rel_error(all_nan, ref), std::numeric_limits<double>::infinity());
}

TEST(Compare, PassesOnEqualDataAndMixedPrecision) {
  const std::vector<float> f{1.f, -2.f, 3.5f};
  const std::vector<double> d{1.0, -2.0, 3.5};
  EXPECT_TRUE(close_rel(f, f, 0.0));
  EXPECT_TRUE(close_rel(f, d, 0.0));
  EXPECT_TRUE(close_rel(d, f, 0.0));
  EXPECT_TRUE(close_abs(d, d, 0.0));
  EXPECT_TRUE(close_elementwise(f, d, 0.0, 0.0));
  EXPECT_EQ(rel_error(f, d), 0.0);
  // Empty against empty is equal (nothing differs), and an all-zero reference matches zeros.
  EXPECT_TRUE(close_rel(std::vector<float>{}, std::vector<float>{}, 0.0));
  EXPECT_TRUE(close_rel(std::vector<float>(3, 0.f), std::vector<float>(3, 0.f), 0.0));
  const Tensor t = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_TRUE(close_rel(t, t.clone(), 0.0));
  EXPECT_TRUE(close_abs(t, t.clone(), 0.0));
}

TEST(Compare, FailsOnNonFiniteValuesOnEitherSide) {
  const std::vector<float> ref{1.f, 2.f, 3.f};
  for (float bad : {kNan, kInf, -kInf}) {
    for (std::size_t at = 0; at < ref.size(); ++at) {
      std::vector<float> got = ref;
      got[at] = bad;
      // A huge tolerance does not help: non-finite values fail before any tolerance applies.
      const auto r = close_rel(got, ref, 1e30);
      EXPECT_FALSE(r) << bad << " at " << at << " in got";
      EXPECT_NE(message(r).find("non-finite value at element " + std::to_string(at)),
                std::string::npos)
          << message(r);
      EXPECT_FALSE(close_rel(ref, got, 1e30)) << bad << " at " << at << " in ref";
      EXPECT_FALSE(close_abs(got, ref, 1e30)) << bad;
      EXPECT_FALSE(close_abs(ref, got, 1e30)) << bad;
      EXPECT_FALSE(close_elementwise(got, ref, 1e30, 1e30)) << bad;
      EXPECT_FALSE(close_elementwise(ref, got, 1e30, 1e30)) << bad;
      EXPECT_EQ(rel_error(got, ref), std::numeric_limits<double>::infinity());
      EXPECT_EQ(rel_error(ref, got), std::numeric_limits<double>::infinity());
      // Both sides equal and non-finite (NaN == NaN would be false anyway; Inf == Inf is not).
      EXPECT_FALSE(close_rel(got, got, 1e30)) << bad << " on both sides";
      // Mixed float/double and tensors too.
      const std::vector<double> refd(ref.begin(), ref.end());
      EXPECT_FALSE(close_rel(got, refd, 1e30));
      const Tensor tg = Tensor::from_vector(got, {3}), tr = Tensor::from_vector(ref, {3});
      EXPECT_FALSE(close_rel(tg, tr, 1e30));
      EXPECT_FALSE(close_rel(tr, tg, 1e30));
      EXPECT_FALSE(close_abs(tg, tr, 1e30));
      EXPECT_EQ(rel_error(tg, tr), std::numeric_limits<double>::infinity());
    }
  }
}

TEST(Compare, FailsOnSizeAndShapeMismatch) {
  const std::vector<float> ref{1.f, 2.f, 3.f, 4.f};
  const std::vector<float> shorter{1.f, 2.f, 3.f};  // a prefix that agrees exactly
  const auto r = close_rel(shorter, ref, 1e30);
  EXPECT_FALSE(r);
  EXPECT_NE(message(r).find("size mismatch: got 3 elements, reference 4"), std::string::npos)
      << message(r);
  EXPECT_FALSE(close_rel(ref, shorter, 1e30));
  EXPECT_FALSE(close_abs(shorter, ref, 1e30));
  EXPECT_FALSE(close_elementwise(shorter, ref, 1e30, 1e30));
  EXPECT_EQ(rel_error(shorter, ref), std::numeric_limits<double>::infinity());
  EXPECT_FALSE(close_rel(std::vector<float>{}, ref, 1e30));
  // Tensors: the same 6 values as [2, 3] and [3, 2] differ in shape, so they differ.
  const std::vector<float> v{1, 2, 3, 4, 5, 6};
  const Tensor a = Tensor::from_vector(v, {2, 3}), b = Tensor::from_vector(v, {3, 2});
  const auto rt = close_rel(a, b, 1e30, "reshaped");
  EXPECT_FALSE(rt);
  EXPECT_NE(message(rt).find("shape mismatch: got [2, 3], reference [3, 2]"), std::string::npos)
      << message(rt);
  EXPECT_NE(message(rt).find("reshaped"), std::string::npos) << message(rt);
  EXPECT_FALSE(close_abs(a, b, 1e30));
  EXPECT_EQ(rel_error(a, b), std::numeric_limits<double>::infinity());
  EXPECT_FALSE(close_rel(Tensor::from_vector({1, 2}, {2}), Tensor::from_vector({1, 2}, {1, 2}), 1));
  // An undefined tensor never matches.
  EXPECT_FALSE(close_rel(Tensor(), a, 1e30));
  EXPECT_FALSE(close_rel(a, Tensor(), 1e30));
}

TEST(Compare, MeasuresRelativeToTheLargestReferenceValueAndNamesTheWorstElement) {
  // max|got - ref| = 0.02 at element 2, max|ref| = 4: relative error 0.005.
  const std::vector<double> ref{4.0, -1.0, 0.5, 0.0};
  const std::vector<double> got{4.01, -1.0, 0.52, 0.001};
  EXPECT_NEAR(rel_error(got, ref), 0.02 / 4.0, 1e-15);
  EXPECT_TRUE(close_rel(got, ref, 0.0051));
  const auto r = close_rel(got, ref, 0.0049, "probe");
  EXPECT_FALSE(r);
  const std::string m = message(r);
  EXPECT_NE(m.find("probe"), std::string::npos) << m;
  EXPECT_NE(m.find("worst at [2]"), std::string::npos) << m;
  EXPECT_NE(m.find("got 0.52"), std::string::npos) << m;
  EXPECT_NE(m.find("ref 0.5"), std::string::npos) << m;
  EXPECT_NE(m.find("tolerance 0.0049"), std::string::npos) << m;
  // Absolute: 0.02 is the largest difference.
  EXPECT_TRUE(close_abs(got, ref, 0.0201));
  EXPECT_FALSE(close_abs(got, ref, 0.0199));
  // Per element: element 3 (0.001 off a 0 reference) needs atol, element 2 (4% off) needs rtol.
  EXPECT_TRUE(close_elementwise(got, ref, 0.001, 0.04 + 1e-12));
  EXPECT_FALSE(close_elementwise(got, ref, 0.0009, 0.05));
  const auto re = close_elementwise(got, ref, 0.001, 0.03);
  EXPECT_FALSE(re);
  EXPECT_NE(message(re).find("worst at [2]"), std::string::npos) << message(re);
  // A non-zero result against an all-zero reference is an infinite relative error: such a
  // comparison belongs to close_abs.
  EXPECT_FALSE(close_rel(std::vector<double>{1e-20}, std::vector<double>{0.0}, 1e6));
  EXPECT_TRUE(close_abs(std::vector<double>{1e-20}, std::vector<double>{0.0}, 1e-19));
}

TEST(Compare, TensorMessageGivesTheMultiIndex) {
  std::vector<float> v(24, 1.f), w = v;
  w[1 * 12 + 2 * 4 + 3] = 1.5f;  // element [1, 2, 3] of a [2, 3, 4] tensor
  const auto r =
      close_rel(Tensor::from_vector(w, {2, 3, 4}), Tensor::from_vector(v, {2, 3, 4}), 1e-3, "y");
  EXPECT_FALSE(r);
  EXPECT_NE(message(r).find("worst at [1, 2, 3]"), std::string::npos) << message(r);
  w[5] = kNan;  // [0, 1, 1]
  const auto rn =
      close_rel(Tensor::from_vector(w, {2, 3, 4}), Tensor::from_vector(v, {2, 3, 4}), 1.0);
  EXPECT_FALSE(rn);
  EXPECT_NE(message(rn).find("[0, 1, 1]"), std::string::npos) << message(rn);
}

}  // namespace
