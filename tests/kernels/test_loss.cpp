// Tests of the CPU mean-squared-error kernels (kernels/loss.h): hand-computed values, double
// accumulation for float inputs, and a finite-difference gradient check in double.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "kernels/loss.h"
#include "tests/common/gradcheck.h"

namespace {

using halo::test::dot;
using halo::test::grad_close;
using halo::test::random_vector;
namespace cpu = halo::kernels::cpu;
using Vec = std::vector<double>;

// pred - target = {1, -2, 0.5, 0}: squares sum to 5.25, mean 1.3125.
TEST(Mse, ForwardHandValue) {
  const Vec p{2.0, -1.0, 0.5, 3.0}, t{1.0, 1.0, 0.0, 3.0};
  EXPECT_DOUBLE_EQ(cpu::mse_forward<double>(4, p.data(), t.data()), 1.3125);
  const std::vector<float> pf(p.begin(), p.end()), tf(t.begin(), t.end());
  EXPECT_FLOAT_EQ(cpu::mse_forward<float>(4, pf.data(), tf.data()), 1.3125f);
}

// One square of 2^24 followed by 999 squares of 1: a float accumulator drops every later 1
// (2^24 + 1 rounds back to 2^24), a double one keeps them.
TEST(Mse, FloatAccumulatesInDouble) {
  const std::size_t n = 1000;
  std::vector<float> p(n, 1.0f), t(n, 0.0f);
  p[0] = 4096.0f;  // (2^12)^2 = 2^24
  const double exact = (16777216.0 + 999.0) / 1000.0;
  EXPECT_FLOAT_EQ(cpu::mse_forward<float>(n, p.data(), t.data()), float(exact));
}

TEST(Mse, BackwardHandValue) {
  const Vec p{2.0, -1.0, 0.5, 3.0}, t{1.0, 1.0, 0.0, 3.0};
  Vec d(4, 99.0);
  cpu::mse_backward<double>(4, p.data(), t.data(), 3.0, d.data());
  // dloss * 2 (p - t) / n with dloss = 3, n = 4
  EXPECT_EQ(d, (Vec{1.5, -3.0, 0.75, 0.0}));
}

TEST(Mse, GradCheck) {
  const std::size_t n = 50;
  Vec p = random_vector(n, 1, -2.0, 2.0);
  const Vec t = random_vector(n, 2, -2.0, 2.0);
  const double dloss = 1.7;  // the upstream gradient scales the loss
  auto loss = [&](Vec& v) { return dloss * cpu::mse_forward<double>(n, v.data(), t.data()); };
  Vec dp(n, std::nan(""));
  cpu::mse_backward<double>(n, p.data(), t.data(), dloss, dp.data());
  // The loss is quadratic, so the central difference has no truncation error and a large step
  // only shrinks the rounding noise.
  EXPECT_TRUE(grad_close(loss, p, dp, 1e-6, 1e-3));
}

}  // namespace
