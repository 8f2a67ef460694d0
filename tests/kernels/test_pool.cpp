// Tests of the CPU pooling kernels (kernels/pool.h): max pooling against a brute-force loop over
// the padded input, PyTorch's tie and padding rules, finite-difference gradients in double on
// several shapes (ResNet's 3x3 s2 p1 stem pool on odd sizes among them), and global average pool.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <vector>

#include "kernels/pool.h"
#include "tests/common/compare.h"
#include "tests/common/gradcheck.h"

namespace {

using halo::kernels::Pool2dShape;
using halo::test::close_abs;
using halo::test::dot;
using halo::test::grad_close;
using halo::test::random_vector;
namespace cpu = halo::kernels::cpu;
using Vec = std::vector<double>;

// Pairwise distinct values 1e-3 apart in random order: no two window entries are within the
// finite-difference step of each other, so the max is differentiable at every point checked.
Vec distinct_values(std::size_t n, unsigned seed) {
  Vec v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = (double(i) - double(n) / 2) * 1e-3;
  std::shuffle(v.begin(), v.end(), std::mt19937(seed));
  return v;
}

Pool2dShape shape(int n, int c, int h, int w, int k, int stride, int pad) {
  Pool2dShape s;
  s.n = n, s.c = c, s.h = h, s.w = w, s.k = k, s.stride = stride, s.pad = pad;
  return s;
}

// Brute force: explicitly pads the plane with -inf, scans every window in row-major order and
// keeps the first strict maximum.
void max_pool_reference(const Pool2dShape& s, const Vec& x, Vec& y, std::vector<int32_t>& arg) {
  const int hp = s.h + 2 * s.pad, wp = s.w + 2 * s.pad;
  y.assign(s.y_size(), 0.0);
  arg.assign(s.y_size(), -1);
  for (int pl = 0; pl < s.n * s.c; ++pl) {
    Vec padded(std::size_t(hp) * wp, -std::numeric_limits<double>::infinity());
    for (int iy = 0; iy < s.h; ++iy)
      for (int ix = 0; ix < s.w; ++ix)
        padded[(iy + s.pad) * wp + ix + s.pad] = x[(std::size_t(pl) * s.h + iy) * s.w + ix];
    for (int oy = 0; oy < s.h_out(); ++oy)
      for (int ox = 0; ox < s.w_out(); ++ox) {
        double best = -std::numeric_limits<double>::infinity();
        int best_i = -1;
        for (int ky = 0; ky < s.k; ++ky)
          for (int kx = 0; kx < s.k; ++kx) {
            const int py = oy * s.stride + ky, px = ox * s.stride + kx;
            if (best_i < 0 || padded[py * wp + px] > best) {
              best = padded[py * wp + px];
              best_i = (py - s.pad) * s.w + (px - s.pad);
            }
          }
        const std::size_t o = (std::size_t(pl) * s.h_out() + oy) * s.w_out() + ox;
        y[o] = best;
        arg[o] = best_i;
      }
  }
}

// ---- max pool -----------------------------------------------------------------------------------

TEST(MaxPool2d, OutputShapes) {
  EXPECT_EQ(shape(1, 1, 75, 75, 3, 2, 1).h_out(), 38);
  EXPECT_EQ(shape(1, 1, 7, 7, 3, 2, 1).w_out(), 4);
  EXPECT_EQ(shape(1, 1, 112, 112, 3, 2, 1).h_out(), 56);
  EXPECT_EQ(shape(1, 1, 8, 6, 2, 2, 0).w_out(), 3);
}

class MaxPoolShapes : public ::testing::TestWithParam<Pool2dShape> {};

TEST_P(MaxPoolShapes, ForwardMatchesBruteForce) {
  const Pool2dShape s = GetParam();
  const Vec x = random_vector(s.x_size(), 1, -3.0, 3.0);
  Vec y(s.y_size());
  std::vector<int32_t> arg(s.y_size());
  cpu::max_pool2d_forward<double>(s, x.data(), y.data(), arg.data());
  Vec ry;
  std::vector<int32_t> rarg;
  max_pool_reference(s, x, ry, rarg);
  EXPECT_EQ(y, ry);
  EXPECT_EQ(arg, rarg);
  // float instantiation: same winners
  const std::vector<float> xf(x.begin(), x.end());
  std::vector<float> yf(s.y_size());
  std::vector<int32_t> argf(s.y_size());
  cpu::max_pool2d_forward<float>(s, xf.data(), yf.data(), argf.data());
  EXPECT_EQ(argf, rarg);
  // Without an argmax (eval): the same maxima, through the loop that tracks no index.
  std::vector<float> yf_only(s.y_size(), std::nanf(""));
  cpu::max_pool2d_forward<float>(s, xf.data(), yf_only.data(), nullptr);
  EXPECT_EQ(yf_only, yf);
}

TEST_P(MaxPoolShapes, GradCheck) {
  const Pool2dShape s = GetParam();
  Vec x = distinct_values(s.x_size(), 2);
  const Vec r = random_vector(s.y_size(), 3);
  std::vector<int32_t> arg(s.y_size());
  auto loss = [&](Vec& v) {
    Vec y(s.y_size());
    std::vector<int32_t> a(s.y_size());
    cpu::max_pool2d_forward<double>(s, v.data(), y.data(), a.data());
    return dot(y, r);
  };
  Vec y(s.y_size());
  cpu::max_pool2d_forward<double>(s, x.data(), y.data(), arg.data());
  Vec dx(s.x_size(), std::nan(""));
  cpu::max_pool2d_backward<double>(s, r.data(), arg.data(), dx.data());
  // The loss is piecewise linear and inputs are 1e-3 apart, so any step below 5e-4 has no
  // truncation error; 1e-4 keeps rounding noise low on the 1444-term loss of the 75x75 case.
  EXPECT_TRUE(grad_close(loss, x, dx, 1e-6, 1e-4));
}

INSTANTIATE_TEST_SUITE_P(
    MaxPool2d, MaxPoolShapes,
    ::testing::Values(shape(1, 1, 75, 75, 3, 2, 1),  // ResNet stem pool, odd size
                      shape(2, 3, 7, 7, 3, 2, 1),    // small odd size, last window half padding
                      shape(2, 2, 8, 8, 3, 2, 1),    // even size
                      shape(1, 2, 9, 6, 3, 1, 1),    // overlapping windows: gradients add up
                      shape(2, 1, 8, 6, 2, 2, 0)),   // plain 2x2, no padding
    [](const ::testing::TestParamInfo<Pool2dShape>& info) {
      const Pool2dShape& s = info.param;
      std::ostringstream name;  // (string operator+ chains trip a GCC 12 -Wrestrict false positive)
      name << "n" << s.n << "c" << s.c << "_" << s.h << "x" << s.w << "_k" << s.k << "s" << s.stride
           << "p" << s.pad;
      return name.str();
    });

// ResNet-18's real stem pool size: the parallel path against the brute force (no gradient check
// here: 2 forward passes per input element would take minutes).
TEST(MaxPool2d, LargeForwardMatchesBruteForce) {
  const Pool2dShape s = shape(2, 64, 56, 56, 3, 2, 1);
  const Vec x = random_vector(s.x_size(), 6, -3.0, 3.0);
  Vec y(s.y_size());
  std::vector<int32_t> arg(s.y_size());
  cpu::max_pool2d_forward<double>(s, x.data(), y.data(), arg.data());
  Vec ry;
  std::vector<int32_t> rarg;
  max_pool_reference(s, x, ry, rarg);
  EXPECT_EQ(y, ry);
  EXPECT_EQ(arg, rarg);
}

// A constant plane: every window ties, and the winner is the first in-bounds element in row-major
// order (PyTorch's CPU kernel: replace only when strictly greater).
TEST(MaxPool2d, TiesGoToFirstInRowMajorOrder) {
  const Pool2dShape s = shape(1, 1, 5, 5, 3, 2, 1);
  const Vec x(25, 1.0);
  Vec y(s.y_size());
  std::vector<int32_t> arg(s.y_size());
  cpu::max_pool2d_forward<double>(s, x.data(), y.data(), arg.data());
  // windows start at rows/cols -1, 1, 3 -> first in-bounds row/col 0, 1, 3
  const int first[3] = {0, 1, 3};
  for (int oy = 0; oy < 3; ++oy)
    for (int ox = 0; ox < 3; ++ox) {
      EXPECT_EQ(y[oy * 3 + ox], 1.0);
      EXPECT_EQ(arg[oy * 3 + ox], first[oy] * 5 + first[ox]);
    }
  // A tie inside one window between (0,1) and (1,0): the row-major first, (0,1), wins.
  Vec x2(25, 0.0);
  x2[0 * 5 + 1] = 2.0;
  x2[1 * 5 + 0] = 2.0;
  cpu::max_pool2d_forward<double>(s, x2.data(), y.data(), arg.data());
  EXPECT_EQ(arg[0], 1);
}

// All inputs negative: zero padding would win every border window; -inf padding never wins.
TEST(MaxPool2d, PaddingIsMinusInfinity) {
  const Pool2dShape s = shape(1, 1, 4, 4, 3, 2, 1);
  Vec x(16);
  for (int i = 0; i < 16; ++i) x[i] = -1.0 - i;
  Vec y(s.y_size());
  std::vector<int32_t> arg(s.y_size());
  cpu::max_pool2d_forward<double>(s, x.data(), y.data(), arg.data());
  // window (0,0) covers input rows/cols 0..1: best is x[0] = -1
  EXPECT_EQ(y[0], -1.0);
  EXPECT_EQ(arg[0], 0);
  // window (1,1) covers rows/cols 1..3: best is x[1*4+1] = -6
  EXPECT_EQ(y[3], -6.0);
  EXPECT_EQ(arg[3], 5);
  for (double v : y) EXPECT_LT(v, 0.0);
}

// Like PyTorch's CPU kernel, a NaN in the window wins (`val > max || isnan(val)`).
TEST(MaxPool2d, NaNPropagates) {
  const Pool2dShape s = shape(1, 1, 2, 2, 2, 2, 0);
  const Vec x{1.0, std::nan(""), 3.0, 2.0};
  Vec y(1);
  int32_t arg = -1;
  cpu::max_pool2d_forward<double>(s, x.data(), y.data(), &arg);
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(arg, 1);
  y[0] = 0.0;
  cpu::max_pool2d_forward<double>(s, x.data(), y.data(), nullptr);
  EXPECT_TRUE(std::isnan(y[0])) << "without an argmax too";
  // A NaN in the interior columns of a wider row (the vectorised loop), and one at the border.
  const Pool2dShape w = shape(1, 1, 3, 21, 3, 2, 1);
  Vec xw(w.x_size(), 1.0);
  xw[1 * 21 + 10] = std::nan("");
  xw[0 * 21 + 20] = std::nan("");
  Vec yw(w.y_size()), yw2(w.y_size());
  std::vector<int32_t> aw(w.y_size());
  cpu::max_pool2d_forward<double>(w, xw.data(), yw.data(), aw.data());
  cpu::max_pool2d_forward<double>(w, xw.data(), yw2.data(), nullptr);
  // Window (oy, ox) covers rows 2oy-1..2oy+1 and columns 2ox-1..2ox+1.
  for (int ox = 0; ox < w.w_out(); ++ox) {
    for (int oy = 0; oy < w.h_out(); ++oy) {
      const bool row_nan = (oy * 2 - 1 <= 1 && ox * 2 - 1 <= 10 && 10 <= ox * 2 + 1) ||
                           (oy * 2 - 1 <= 0 && ox * 2 + 1 >= 20);
      EXPECT_EQ(std::isnan(yw[oy * w.w_out() + ox]), row_nan) << oy << "," << ox;
      EXPECT_EQ(std::isnan(yw2[oy * w.w_out() + ox]), row_nan) << oy << "," << ox;
    }
  }
}

// dx is overwritten: stale values (here NaN) must not survive, and untouched inputs get 0.
TEST(MaxPool2d, BackwardOverwritesDx) {
  const Pool2dShape s = shape(2, 2, 7, 7, 3, 2, 1);
  const Vec x = distinct_values(s.x_size(), 4);
  const Vec dy = random_vector(s.y_size(), 5);
  Vec y(s.y_size());
  std::vector<int32_t> arg(s.y_size());
  cpu::max_pool2d_forward<double>(s, x.data(), y.data(), arg.data());
  Vec dx(s.x_size(), std::nan(""));
  cpu::max_pool2d_backward<double>(s, dy.data(), arg.data(), dx.data());
  Vec ref(s.x_size(), 0.0);
  const int plane_in = s.h * s.w, plane_out = s.h_out() * s.w_out();
  for (int pl = 0; pl < s.n * s.c; ++pl)
    for (int o = 0; o < plane_out; ++o)
      ref[pl * plane_in + arg[pl * plane_out + o]] += dy[pl * plane_out + o];
  EXPECT_EQ(dx, ref);
}

// ---- global average pool ------------------------------------------------------------------------

TEST(GlobalAvgPool, ForwardMatchesLoops) {
  const int n = 2, c = 3, hw = 49;
  const Vec x = random_vector(n * c * hw, 10);
  Vec y(n * c);
  cpu::global_avg_pool_forward<double>(n, c, hw, x.data(), y.data());
  Vec ref(n * c);
  for (int pl = 0; pl < n * c; ++pl) {
    double s = 0;
    for (int p = 0; p < hw; ++p) s += x[pl * hw + p];
    ref[pl] = s / hw;
  }
  // The mean of 49 values in [-1, 1], |y| ~ 0.15: any summation order in double errs by
  // ~sqrt(49) u ~ 1e-15 of the sum, /49 for the mean (u = 1.1e-16); 1e-15 absolute.
  EXPECT_TRUE(close_abs(y, ref, 1e-15, "double"));
  const std::vector<float> xf(x.begin(), x.end());
  std::vector<float> yf(n * c);
  cpu::global_avg_pool_forward<float>(n, c, hw, xf.data(), yf.data());
  // Float (u = 6e-8) against double, absolute: 49 roundings of partial sums up to ~5, random in
  // sign, ~sqrt(49) u 5 ~ 2e-6 on the sum and /49 on the mean (~5e-8); 1e-6.
  EXPECT_TRUE(close_abs(yf, y, 1e-6, "float vs double"));
}

TEST(GlobalAvgPool, GradCheck) {
  const int n = 2, c = 3, hw = 7 * 7;
  Vec x = random_vector(n * c * hw, 20);
  const Vec r = random_vector(n * c, 21);
  auto loss = [&](Vec& v) {
    Vec y(n * c);
    cpu::global_avg_pool_forward<double>(n, c, hw, v.data(), y.data());
    return dot(y, r);
  };
  Vec dx(x.size(), std::nan(""));
  cpu::global_avg_pool_backward<double>(n, c, hw, r.data(), dx.data());
  EXPECT_TRUE(grad_close(loss, x, dx, 1e-6));
}

}  // namespace
