// Tests of the CPU activation kernels (kernels/activation.h): ReLU and exact GELU against
// hand-computed values and finite-difference gradients in double.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "kernels/activation.h"
#include "tests/common/compare.h"
#include "tests/common/gradcheck.h"

namespace {

using halo::test::close_abs;
using halo::test::dot;
using halo::test::grad_close;
using halo::test::random_vector;
namespace cpu = halo::kernels::cpu;
using Vec = std::vector<double>;

// Random values kept at least 0.05 away from ReLU's kink at 0, where a central difference with
// h = 1e-6 would straddle it.
Vec away_from_zero(std::size_t n, unsigned seed) {
  Vec x = random_vector(n, seed, -2.0, 2.0);
  for (auto& v : x)
    if (std::abs(v) < 0.05) v = v < 0 ? v - 0.05 : v + 0.05;
  return x;
}

// ---- ReLU
// ------------------------------------------------------------------------------------------

TEST(Relu, ForwardHandValues) {
  const Vec x{-2.0, -0.5, 0.0, 0.25, 3.0};
  Vec y(x.size());
  cpu::relu_forward<double>(x.size(), x.data(), y.data());
  EXPECT_EQ(y, (Vec{0.0, 0.0, 0.0, 0.25, 3.0}));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> xf{-1.f, nan, 2.f};
  std::vector<float> yf(3);
  cpu::relu_forward<float>(3, xf.data(), yf.data());
  EXPECT_EQ(yf[0], 0.f);
  EXPECT_TRUE(std::isnan(yf[1]));  // NaN propagates, as torch.relu
  EXPECT_EQ(yf[2], 2.f);
}

TEST(Relu, BackwardMasksByOutput) {
  const Vec y{0.0, 0.0, 0.25, 3.0}, dy{1.0, 2.0, 3.0, 4.0};
  Vec dx(4, 99.0);
  cpu::relu_backward<double>(4, y.data(), dy.data(), dx.data());
  EXPECT_EQ(dx, (Vec{0.0, 0.0, 3.0, 4.0}));
}

TEST(Relu, GradCheck) {
  Vec x = away_from_zero(200, 1);
  const Vec r = random_vector(x.size(), 2);
  auto loss = [&](Vec& v) {
    Vec y(v.size());
    cpu::relu_forward<double>(v.size(), v.data(), y.data());
    return dot(y, r);
  };
  Vec y(x.size()), dx(x.size(), std::nan(""));
  cpu::relu_forward<double>(x.size(), x.data(), y.data());
  cpu::relu_backward<double>(x.size(), y.data(), r.data(), dx.data());
  EXPECT_TRUE(grad_close(loss, x, dx, 1e-6));
}

// ---- GELU
// ------------------------------------------------------------------------------------------

// gelu(x) = x Phi(x); Phi(1) = 0.8413447460685429, Phi(-1) = 0.15865525393145707,
// Phi(2) = 0.9772498680518208.
TEST(Gelu, ForwardHandValues) {
  const Vec x{-1.0, 0.0, 1.0, 2.0};
  Vec y(4);
  cpu::gelu_forward<double>(4, x.data(), y.data());
  EXPECT_NEAR(y[0], -0.15865525393145707, 1e-15);
  EXPECT_EQ(y[1], 0.0);
  EXPECT_NEAR(y[2], 0.8413447460685429, 1e-15);
  EXPECT_NEAR(y[3], 2.0 * 0.9772498680518208, 1e-15);
  const std::vector<float> xf(x.begin(), x.end());
  std::vector<float> yf(4);
  cpu::gelu_forward<float>(4, xf.data(), yf.data());
  // float: |y| <= 2, one rounding of x Phi(x) and a few inside erf, u = 6e-8 each: < 1e-6.
  EXPECT_TRUE(close_abs(yf, y, 1e-6, "float"));
}

// gelu'(x) = Phi(x) + x phi(x): at 0 it is 0.5, at 1 it is Phi(1) + phi(1) with
// phi(1) = 0.24197072451914337.
TEST(Gelu, BackwardHandValues) {
  const Vec x{0.0, 1.0}, dy{2.0, 1.0};
  Vec dx(2);
  cpu::gelu_backward<double>(2, x.data(), dy.data(), dx.data());
  EXPECT_NEAR(dx[0], 1.0, 1e-15);
  EXPECT_NEAR(dx[1], 0.8413447460685429 + 0.24197072451914337, 1e-15);
}

// h = 1e-5: gelu' crosses 0 near x = -0.75, where the 1e-3 floor of the relative error meets
// the O(eps |loss| / h) rounding noise of the central difference; a larger step (and a loss of
// few terms) keeps that noise ~1e-8 while the O(h^2) truncation error stays ~1e-11.
TEST(Gelu, GradCheck) {
  Vec x = random_vector(100, 3, -4.0, 4.0);
  const Vec r = random_vector(x.size(), 4);
  auto loss = [&](Vec& v) {
    Vec y(v.size());
    cpu::gelu_forward<double>(v.size(), v.data(), y.data());
    return dot(y, r);
  };
  Vec dx(x.size(), std::nan(""));
  cpu::gelu_backward<double>(x.size(), x.data(), r.data(), dx.data());
  EXPECT_TRUE(grad_close(loss, x, dx, 1e-6, 1e-5));
}

// float against double on the same (float) inputs, for a short array (no OpenMP split, and a length
// no vector width divides: the vector loop's tail) and a large one (the OpenMP path). Absolute:
// |y| <= 5 and |dx| <= ~1.1, a few float32 roundings (u = 6e-8, ~3e-7 at |y| = 5) in erf, exp and
// the products: < 2e-6.
TEST(Gelu, FloatMatchesDouble) {
  for (const std::size_t n : {std::size_t(13), std::size_t(100000)}) {
    SCOPED_TRACE(n);
    const Vec xd = random_vector(n, 5, -5.0, 5.0), dyd = random_vector(n, 6);
    const std::vector<float> x(xd.begin(), xd.end()), dy(dyd.begin(), dyd.end());
    const Vec xr(x.begin(), x.end()), dyr(dy.begin(), dy.end());
    std::vector<float> y(n, std::nanf("")), dx(n, std::nanf(""));
    Vec yr(n), dxr(n);
    cpu::gelu_forward<float>(n, x.data(), y.data());
    cpu::gelu_backward<float>(n, x.data(), dy.data(), dx.data());
    cpu::gelu_forward<double>(n, xr.data(), yr.data());
    cpu::gelu_backward<double>(n, xr.data(), dyr.data(), dxr.data());
    EXPECT_TRUE(close_abs(y, yr, 2e-6, "forward"));
    EXPECT_TRUE(close_abs(dx, dxr, 2e-6, "backward"));
  }
}

}  // namespace
