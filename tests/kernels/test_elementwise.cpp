// Tests of the CPU elementwise kernels (kernels/elementwise.h): the vector helpers against plain
// loops (at sizes on both sides of the OpenMP threshold) and the per-channel multiply against
// loops and finite-difference gradients in double.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "kernels/elementwise.h"
#include "tests/common/compare.h"
#include "tests/common/gradcheck.h"

namespace {

using halo::test::close_abs;
using halo::test::dot;
using halo::test::grad_close;
using halo::test::random_vector;
namespace cpu = halo::kernels::cpu;
using Vec = std::vector<double>;

class VectorOps : public ::testing::TestWithParam<std::size_t> {};

TEST_P(VectorOps, MatchLoops) {
  const std::size_t n = GetParam();
  const Vec a = random_vector(n, 1), b = random_vector(n, 2);
  Vec y(n);
  cpu::fill<double>(n, 2.5, y.data());
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(y[i], 2.5);
  cpu::add<double>(n, a.data(), b.data(), y.data());
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(y[i], a[i] + b[i]);
  cpu::mul<double>(n, a.data(), b.data(), y.data());
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(y[i], a[i] * b[i]);
  cpu::scale<double>(n, -3.0, a.data(), y.data());
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(y[i], -3.0 * a[i]);
  Vec acc = b;
  cpu::axpy<double>(n, 0.5, a.data(), acc.data());
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(acc[i], b[i] + 0.5 * a[i]);
  // float instantiations
  const std::vector<float> af(a.begin(), a.end()), bf(b.begin(), b.end());
  std::vector<float> yf(n);
  cpu::fill<float>(n, 1.5f, yf.data());
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(yf[i], 1.5f);
  cpu::add<float>(n, af.data(), bf.data(), yf.data());
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(yf[i], af[i] + bf[i]);
  cpu::mul<float>(n, af.data(), bf.data(), yf.data());
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(yf[i], af[i] * bf[i]);
  cpu::scale<float>(n, 2.f, af.data(), yf.data());
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(yf[i], 2.f * af[i]);
  std::vector<float> accf = bf;
  cpu::axpy<float>(n, 0.25f, af.data(), accf.data());
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(accf[i], bf[i] + 0.25f * af[i]);
}

INSTANTIATE_TEST_SUITE_P(Elementwise, VectorOps, ::testing::Values(0, 1, 17, 100003));

// In-place use (y aliasing an input) is how autograd accumulates and scales.
TEST(Elementwise, InPlaceAliasing) {
  Vec a{1, 2, 3}, b{10, 20, 30};
  cpu::add<double>(3, a.data(), b.data(), a.data());
  EXPECT_EQ(a, (Vec{11, 22, 33}));
  cpu::scale<double>(3, 2.0, a.data(), a.data());
  EXPECT_EQ(a, (Vec{22, 44, 66}));
  cpu::mul<double>(3, a.data(), b.data(), b.data());
  EXPECT_EQ(b, (Vec{220, 880, 1980}));
}

// ---- per-channel multiply (layer scale)
// ------------------------------------------------------------

TEST(MulChannel, ForwardMatchesLoops) {
  const int outer = 3, c = 4, inner = 5;
  const Vec x = random_vector(outer * c * inner, 10), s = random_vector(c, 11);
  Vec y(x.size());
  cpu::mul_channel_forward<double>(outer, c, inner, x.data(), s.data(), y.data());
  for (int o = 0; o < outer; ++o)
    for (int ch = 0; ch < c; ++ch)
      for (int p = 0; p < inner; ++p) {
        const int i = (o * c + ch) * inner + p;
        EXPECT_EQ(y[i], x[i] * s[ch]);
      }
}

TEST(MulChannel, GradCheck) {
  const int outer = 2, c = 3, inner = 4;
  Vec x = random_vector(outer * c * inner, 20), s = random_vector(c, 21);
  const Vec r = random_vector(x.size(), 22);
  auto loss = [&](const Vec& xv, const Vec& sv) {
    Vec y(xv.size());
    cpu::mul_channel_forward<double>(outer, c, inner, xv.data(), sv.data(), y.data());
    return dot(y, r);
  };
  Vec dx(x.size(), std::nan("")), ds(c, std::nan(""));
  cpu::mul_channel_backward<double>(outer, c, inner, x.data(), s.data(), r.data(), dx.data(),
                                    ds.data());
  EXPECT_TRUE(grad_close([&](Vec& v) { return loss(v, s); }, x, dx, 1e-6));
  EXPECT_TRUE(grad_close([&](Vec& v) { return loss(x, v); }, s, ds, 1e-6));
}

// Large shape (parallel path), nullable outputs, and the float instantiation.
TEST(MulChannel, LargeBackwardAndOptionalOutputs) {
  const int outer = 4, c = 96, inner = 200;
  const std::size_t n = std::size_t(outer) * c * inner;
  const Vec x = random_vector(n, 30), s = random_vector(c, 31), dy = random_vector(n, 32);
  Vec dx(n), ds(c), dx_only(n), ds_only(c);
  cpu::mul_channel_backward<double>(outer, c, inner, x.data(), s.data(), dy.data(), dx.data(),
                                    ds.data());
  cpu::mul_channel_backward<double>(outer, c, inner, x.data(), s.data(), dy.data(), dx_only.data(),
                                    nullptr);
  cpu::mul_channel_backward<double>(outer, c, inner, x.data(), s.data(), dy.data(), nullptr,
                                    ds_only.data());
  EXPECT_EQ(dx, dx_only);
  EXPECT_EQ(ds, ds_only);
  Vec ds_ref(c, 0.0);
  for (int ch = 0; ch < c; ++ch) {
    for (int o = 0; o < outer; ++o)
      for (int p = 0; p < inner; ++p) {
        const std::size_t i = (std::size_t(o) * c + ch) * inner + p;
        ds_ref[ch] += dy[i] * x[i];
        ASSERT_EQ(dx[i], dy[i] * s[ch]);
      }
  }
  // ds sums n = 800 products of U(-1,1) values (rms 1/3, |ds| ~ 10). Summed one by one the
  // partial sums grow like sqrt(k), so the rounding error is ~u rms n / sqrt(2) ~ 2e-14 in double
  // (u = 1.1e-16), whatever the order; 1e-10 absolute leaves room for any summation order.
  EXPECT_TRUE(close_abs(ds, ds_ref, 1e-10, "ds (double)"));
  const std::vector<float> xf(x.begin(), x.end()), sf(s.begin(), s.end()),
      dyf(dy.begin(), dy.end());
  std::vector<float> dxf(n), dsf(c);
  cpu::mul_channel_backward<float>(outer, c, inner, xf.data(), sf.data(), dyf.data(), dxf.data(),
                                   dsf.data());
  // The same sum in float (u = 6e-8): ~u rms n / sqrt(2) ~ 1e-5 per channel, a few times that
  // for the worst of 96 channels; 1e-4 absolute.
  EXPECT_TRUE(close_abs(dsf, ds, 1e-4, "ds (float vs double)"));
}

}  // namespace
