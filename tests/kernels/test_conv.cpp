// Tests of the CPU convolution kernels (kernels/conv.h): the fast paths against the reference loops
// over a table of shapes in float and double, and finite-difference gradient checks of the fast
// backward passes against the fast forward in double.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/conv.h"
#include "tests/common/compare.h"
#include "tests/common/gradcheck.h"

namespace halo::kernels::cpu {
namespace {

using halo::test::close_rel;
using halo::test::grad_close;
using halo::test::max_grad_error;
using halo::test::random_vector;

struct ConvCase {
  std::string name;
  Conv2dShape s;
};

// gtest prints a failing parameter with this instead of a byte dump.
void PrintTo(const ConvCase& c, std::ostream* os) {
  const Conv2dShape& s = c.s;
  *os << c.name << " {n=" << s.n << " c_in=" << s.c_in << " h=" << s.h << " w=" << s.w
      << " c_out=" << s.c_out << " k=" << s.kh << "x" << s.kw << " stride=" << s.stride
      << " pad=" << s.pad << " groups=" << s.groups << "}";
}

ConvCase make_case(std::string name, int n, int c_in, int h, int w, int c_out, int kh, int kw,
                   int stride, int pad, int groups) {
  Conv2dShape s;
  s.n = n, s.c_in = c_in, s.h = h, s.w = w, s.c_out = c_out, s.kh = kh, s.kw = kw;
  s.stride = stride, s.pad = pad, s.groups = groups;
  return {std::move(name), s};
}

// Shapes the fast paths are compared with the reference on. The first block are the benchmark
// shapes (ResNet-18 and ConvNeXt-pico at 150x150) at batch 1-2; the rest exercise the corners:
// sizes 1/3/7/37, strides 1-3, pads 0-3, groups 1/2/C, kernels 1/3/7 and 3x1, h != w, output
// sizes that drop the last rows, 1x1 convs read in place (one image, wide) and gathered (several
// small images side by side), and a batch that the GEMM paths split into uneven chunks
// (20x20 outputs: 3 + 2 images on one thread).
std::vector<ConvCase> reference_cases() {
  return {
      // name                     n  cin    h    w  cout kh kw  s  p  groups
      make_case("r18_stem", 2, 1, 150, 150, 64, 7, 7, 2, 3, 1),
      make_case("r18_layer1", 1, 64, 38, 38, 64, 3, 3, 1, 1, 1),
      make_case("r18_layer2", 1, 128, 19, 19, 128, 3, 3, 1, 1, 1),
      make_case("r18_layer3", 1, 256, 10, 10, 256, 3, 3, 1, 1, 1),
      make_case("r18_layer4", 2, 512, 5, 5, 512, 3, 3, 1, 1, 1),
      make_case("r18_down3x3", 2, 64, 38, 38, 128, 3, 3, 2, 1, 1),
      make_case("r18_shortcut1x1s2", 2, 64, 38, 38, 128, 1, 1, 2, 0, 1),
      make_case("cnx_stem", 2, 1, 150, 150, 64, 4, 4, 4, 0, 1),
      make_case("cnx_dw64", 2, 64, 37, 37, 64, 7, 7, 1, 3, 64),
      make_case("cnx_dw512", 2, 512, 4, 4, 512, 7, 7, 1, 3, 512),
      make_case("cnx_fc1_inplace", 1, 64, 37, 37, 256, 1, 1, 1, 0, 1),
      make_case("cnx_fc2_batched", 3, 256, 4, 4, 64, 1, 1, 1, 0, 1),
      make_case("cnx_down2x2", 2, 64, 37, 37, 128, 2, 2, 2, 0, 1),
      make_case("size1_k1", 1, 3, 1, 1, 2, 1, 1, 1, 0, 1),
      make_case("size1_k3_pad1", 2, 3, 1, 1, 4, 3, 3, 1, 1, 1),
      make_case("size3_k3_pad2_s2", 2, 2, 3, 3, 3, 3, 3, 2, 2, 1),
      make_case("size7_k3_s3", 2, 3, 7, 7, 5, 3, 3, 3, 0, 1),
      make_case("size7_k7_valid", 2, 3, 7, 7, 2, 7, 7, 1, 0, 1),
      make_case("size37_k7_pad3", 1, 3, 37, 37, 4, 7, 7, 1, 3, 1),
      make_case("nonsquare_s2_pad2", 2, 4, 7, 13, 6, 3, 3, 2, 2, 1),
      make_case("nonsquare_k3x1", 1, 2, 6, 5, 3, 3, 1, 1, 1, 1),
      make_case("truncating_s3", 2, 2, 8, 9, 3, 3, 3, 3, 1, 1),
      make_case("k1_pad3", 1, 2, 5, 4, 3, 1, 1, 1, 3, 1),
      make_case("k1_s3", 2, 3, 10, 11, 4, 1, 1, 3, 0, 1),
      make_case("groups2", 2, 4, 9, 7, 6, 3, 3, 1, 1, 2),
      make_case("groups2_s2_pad2", 2, 6, 11, 8, 4, 3, 3, 2, 2, 2),
      make_case("groups2_k1", 3, 4, 5, 6, 8, 1, 1, 1, 0, 2),
      make_case("dw_k3_s2", 2, 5, 9, 9, 5, 3, 3, 2, 1, 5),
      make_case("dw_multiplier2", 2, 3, 8, 6, 6, 3, 3, 1, 1, 3),
      make_case("dw_k7_s3_pad3", 1, 4, 13, 10, 4, 7, 7, 3, 3, 4),
      make_case("dw_k7_size1", 2, 3, 1, 1, 3, 7, 7, 1, 3, 3),
      make_case("dw_k5_pad2_nonsquare", 2, 4, 8, 11, 4, 5, 5, 1, 2, 4),
      make_case("dw_k3_pad3", 1, 3, 5, 4, 3, 3, 3, 1, 3, 3),
      make_case("dw_k2_pad0", 1, 3, 6, 5, 6, 2, 2, 1, 0, 3),
      make_case("dw_k1_s2", 2, 3, 5, 6, 3, 1, 1, 2, 1, 3),
      make_case("chunks_3_plus_2", 5, 4, 20, 20, 3, 3, 3, 1, 1, 1),
  };
}

template <class T>
std::vector<T> random_t(size_t n, unsigned seed) {
  const std::vector<double> d = random_vector(n, seed);
  return std::vector<T>(d.begin(), d.end());
}

// Outputs start as NaN so a fast path that accumulates into (or skips) part of its output fails.
template <class T>
std::vector<T> nan_vector(size_t n) {
  return std::vector<T>(n, std::numeric_limits<T>::quiet_NaN());
}

template <class T>
void expect_fast_matches_reference(const ConvCase& c, double tol) {
  const Conv2dShape& s = c.s;
  const auto x = random_t<T>(s.x_size(), 1), w = random_t<T>(s.w_size(), 2),
             b = random_t<T>(s.c_out, 3), dy = random_t<T>(s.y_size(), 4);

  auto y = nan_vector<T>(s.y_size()), y_ref = nan_vector<T>(s.y_size());
  conv2d_forward(s, x.data(), w.data(), b.data(), y.data());
  conv2d_forward_reference(s, x.data(), w.data(), b.data(), y_ref.data());
  EXPECT_TRUE(close_rel(y, y_ref, tol, "forward with bias"));

  conv2d_forward<T>(s, x.data(), w.data(), nullptr, y.data());
  conv2d_forward_reference<T>(s, x.data(), w.data(), nullptr, y_ref.data());
  EXPECT_TRUE(close_rel(y, y_ref, tol, "forward without bias"));

  auto dx = nan_vector<T>(s.x_size()), dx_ref = nan_vector<T>(s.x_size());
  conv2d_backward_data(s, dy.data(), w.data(), dx.data());
  conv2d_backward_data_reference(s, dy.data(), w.data(), dx_ref.data());
  EXPECT_TRUE(close_rel(dx, dx_ref, tol, "backward data"));

  auto dw = nan_vector<T>(s.w_size()), dw_ref = nan_vector<T>(s.w_size());
  conv2d_backward_weight(s, x.data(), dy.data(), dw.data());
  conv2d_backward_weight_reference(s, x.data(), dy.data(), dw_ref.data());
  EXPECT_TRUE(close_rel(dw, dw_ref, tol, "backward weight"));

  auto db = nan_vector<T>(s.c_out);
  std::vector<T> db_ref(s.c_out, T(0));
  const long long plane = 1LL * s.h_out() * s.w_out();
  for (int n = 0; n < s.n; ++n)
    for (int co = 0; co < s.c_out; ++co)
      for (long long i = 0; i < plane; ++i) db_ref[co] += dy[(1LL * n * s.c_out + co) * plane + i];
  conv2d_backward_bias(s, dy.data(), db.data());
  EXPECT_TRUE(close_rel(db, db_ref, tol, "backward bias"));
}

class ConvFastVsReference : public ::testing::TestWithParam<ConvCase> {};

// Tolerances, as max|fast - reference| / max|reference| over each output (close_rel): the two
// sum the same products in different orders (GEMM blocking and threads against plain loops), up
// to ~11,000 terms (backward weight of r18_stem: 2 x 75 x 75). Each sum of n terms of random sign
// errs by ~sqrt(n) u max|partial sum|, i.e. a few hundred u relative to the result's scale at
// most: ~1e-5 in float (u = 6e-8; measured up to 3.0e-6 over these cases), ~1e-13 in double
// (u = 1.1e-16; measured up to 6.5e-15). 1e-4 and 1e-10 leave >= 30x; a wrong index gives O(1).

TEST_P(ConvFastVsReference, Double) {
  expect_fast_matches_reference<double>(GetParam(), 1e-10);
}
TEST_P(ConvFastVsReference, Float) {
  expect_fast_matches_reference<float>(GetParam(), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Conv, ConvFastVsReference, ::testing::ValuesIn(reference_cases()),
                         [](const ::testing::TestParamInfo<ConvCase>& info) {
                           return info.param.name;
                         });

// The GEMM paths split the batch differently with the thread count (threads take whole chunks
// when there are at least as many images as threads, otherwise they share each chunk), and
// backward-weight then adds per-thread partial sums: every split must give the reference result.
TEST(ConvThreadCounts, FastMatchesReferenceWithOneToThreeThreads) {
  const int saved = omp_get_max_threads();
  const ConvCase cases[] = {
      make_case("batch5_k3", 5, 6, 9, 8, 4, 3, 3, 1, 1, 1),
      make_case("batch4_groups2_s2", 4, 4, 11, 10, 6, 3, 3, 2, 1, 2),
      make_case("batch7_pointwise_small", 7, 8, 3, 4, 5, 1, 1, 1, 0, 1),
      make_case("batch3_depthwise", 3, 4, 9, 9, 4, 7, 7, 1, 3, 4),
  };
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    for (const ConvCase& c : cases) {
      SCOPED_TRACE(c.name + " with " + std::to_string(threads) + " threads");
      expect_fast_matches_reference<double>(c, 1e-10);
    }
  }
  omp_set_num_threads(saved);
}

// ---- finite-difference gradient checks of the fast backward passes ----------------------------
// loss(x, w, b) = sum(conv2d_forward(x, w, b) * r) for a fixed random r, so dloss/dy = r and the
// analytic gradients are backward_data(r), backward_weight(x, r), backward_bias(r).

std::vector<ConvCase> gradcheck_cases() {
  return {
      // name                 n cin h  w cout kh kw s  p  groups
      make_case("plain", 2, 3, 5, 4, 2, 3, 3, 1, 1, 1),
      make_case("strided", 1, 2, 7, 6, 3, 3, 3, 2, 1, 1),
      make_case("k1_padded", 1, 2, 4, 3, 2, 1, 1, 1, 2, 1),
      make_case("pointwise_batched", 3, 4, 3, 3, 2, 1, 1, 1, 0, 1),
      make_case("grouped", 2, 4, 5, 5, 4, 3, 3, 1, 1, 2),
      make_case("grouped_s2_p2", 1, 4, 6, 7, 2, 3, 3, 2, 2, 2),
      make_case("depthwise", 2, 3, 6, 5, 3, 3, 3, 1, 1, 3),
      make_case("depthwise_k7_s2_p3", 1, 2, 9, 8, 2, 7, 7, 2, 3, 2),
      make_case("stem_like_k7_s2", 1, 1, 9, 8, 3, 7, 7, 2, 3, 1),
  };
}

class ConvGradcheck : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvGradcheck, FastBackwardMatchesFiniteDifferences) {
  const Conv2dShape s = GetParam().s;
  std::vector<double> x = random_vector(s.x_size(), 11), w = random_vector(s.w_size(), 12),
                      b = random_vector(s.c_out, 13);
  const std::vector<double> r = random_vector(s.y_size(), 14);
  std::vector<double> y(s.y_size());
  auto loss = [&](const std::vector<double>& xv, const std::vector<double>& wv,
                  const std::vector<double>& bv) {
    conv2d_forward(s, xv.data(), wv.data(), bv.data(), y.data());
    double l = 0;
    for (size_t i = 0; i < y.size(); ++i) l += y[i] * r[i];
    return l;
  };

  std::vector<double> dx(s.x_size()), dw(s.w_size()), db(s.c_out);
  conv2d_backward_data(s, r.data(), w.data(), dx.data());
  conv2d_backward_weight(s, x.data(), r.data(), dw.data());
  conv2d_backward_bias(s, r.data(), db.data());

  // The loss is linear in each argument, so the central difference has no truncation error and a
  // larger step only shrinks rounding error.
  const double h = 1e-4, tol = 1e-6;
  EXPECT_TRUE(grad_close([&](std::vector<double>& v) { return loss(v, w, b); }, x, dx, tol, h))
      << "dx";
  EXPECT_TRUE(grad_close([&](std::vector<double>& v) { return loss(x, v, b); }, w, dw, tol, h))
      << "dw";
  EXPECT_TRUE(grad_close([&](std::vector<double>& v) { return loss(x, w, v); }, b, db, tol, h))
      << "db";
}

INSTANTIATE_TEST_SUITE_P(Conv, ConvGradcheck, ::testing::ValuesIn(gradcheck_cases()),
                         [](const ::testing::TestParamInfo<ConvCase>& info) {
                           return info.param.name;
                         });

// The helper must notice a wrong gradient, not only accept a right one.
TEST(ConvGradcheckHelper, AcceptsRightAndRejectsWrongGradient) {
  std::vector<double> x = random_vector(5, 21);
  auto cubes = [](std::vector<double>& v) {
    double s = 0;
    for (double e : v) s += e * e * e;
    return s;
  };
  std::vector<double> right(x.size()), wrong(x.size());
  for (size_t i = 0; i < x.size(); ++i) right[i] = 3 * x[i] * x[i], wrong[i] = 2 * x[i] * x[i];
  const std::vector<double> x_before = x;
  EXPECT_TRUE(grad_close(cubes, x, right, 1e-6));
  EXPECT_GE(max_grad_error(cubes, x, wrong), 0.1);
  EXPECT_FALSE(grad_close(cubes, x, wrong, 0.1));
  // A NaN or Inf in the analytic gradient, or a short one, fails whatever the tolerance.
  for (double bad : {std::nan(""), std::numeric_limits<double>::infinity()}) {
    std::vector<double> poisoned = right;
    poisoned[2] = bad;
    EXPECT_FALSE(grad_close(cubes, x, poisoned, 1e30));
    EXPECT_EQ(max_grad_error(cubes, x, poisoned), std::numeric_limits<double>::infinity());
  }
  EXPECT_FALSE(grad_close(cubes, x, std::vector<double>(right.begin(), right.end() - 1), 1e30));
  EXPECT_EQ(x, x_before) << "x must be restored";
}

TEST(ConvShapeCheck, RejectsBadShapes) {
  std::vector<float> buf(4096, 0.f);
  auto bad = [](auto edit) {
    Conv2dShape s;
    s.n = 1, s.c_in = 4, s.h = 5, s.w = 5, s.c_out = 4, s.kh = 3, s.kw = 3, s.pad = 1;
    edit(s);
    return s;
  };
  const Conv2dShape shapes[] = {
      bad([](Conv2dShape& s) { s.groups = 3; }),  // does not divide 4
      bad([](Conv2dShape& s) { s.stride = 0; }),  // no stride
      bad([](Conv2dShape& s) { s.pad = -1; }),    // negative pad
      bad([](Conv2dShape& s) { s.kh = 8; }),      // kernel larger than padded input
      bad([](Conv2dShape& s) { s.c_out = 0; }),   // empty
  };
  for (const Conv2dShape& s : shapes) {
    EXPECT_THROW(conv2d_forward<float>(s, buf.data(), buf.data(), nullptr, buf.data()),
                 std::invalid_argument);
    EXPECT_THROW(conv2d_backward_data<float>(s, buf.data(), buf.data(), buf.data()),
                 std::invalid_argument);
    EXPECT_THROW(conv2d_backward_weight<float>(s, buf.data(), buf.data(), buf.data()),
                 std::invalid_argument);
    EXPECT_THROW(conv2d_backward_bias<float>(s, buf.data(), buf.data()), std::invalid_argument);
  }
}

}  // namespace
}  // namespace halo::kernels::cpu
