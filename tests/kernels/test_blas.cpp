// Tests of the CPU dense kernels (kernels/blas.h): GEMM in all four transpose combinations with row
// strides, beta != 0 and beta == 0 over NaN, against a triple loop; the linear layer against loops
// and finite-difference gradients in double.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/blas.h"
#include "tests/common/compare.h"
#include "tests/common/gradcheck.h"

namespace {

using halo::kernels::LinearShape;
using halo::test::close_abs;
using halo::test::dot;
using halo::test::grad_close;
using halo::test::random_vector;
namespace cpu = halo::kernels::cpu;
using Vec = std::vector<double>;

// A rows x cols row-major matrix stored with row stride ld >= cols; the padding holds NaN so a
// kernel that reads it (wrong stride) poisons its result.
Vec strided_random(int rows, int cols, int ld, unsigned seed) {
  const Vec v = random_vector(std::size_t(rows) * cols, seed);
  Vec out(std::size_t(rows) * ld, std::numeric_limits<double>::quiet_NaN());
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) out[std::size_t(r) * ld + c] = v[std::size_t(r) * cols + c];
  return out;
}

// The rows x cols block of a row-major matrix with row stride ld, as a dense vector.
template <class T>
std::vector<T> block(const std::vector<T>& v, int rows, int cols, int ld) {
  std::vector<T> out(std::size_t(rows) * cols);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) out[std::size_t(r) * cols + c] = v[std::size_t(r) * ld + c];
  return out;
}

// m, n, k: the product's sizes; small ones take Eigen's lazy path, larger its blocked GEMM.
class GemmCase : public ::testing::TestWithParam<std::tuple<bool, bool, int, int, int>> {};

TEST_P(GemmCase, MatchesTripleLoop) {
  const auto [ta, tb, m, n, k] = GetParam();
  const int a_rows = ta ? k : m, a_cols = ta ? m : k;
  const int b_rows = tb ? n : k, b_cols = tb ? k : n;
  const int lda = a_cols + 3, ldb = b_cols + 2, ldc = n + 5;
  const Vec a = strided_random(a_rows, a_cols, lda, 1), b = strided_random(b_rows, b_cols, ldb, 2);
  const double sentinel = 12345.0;
  const Vec c0 = random_vector(std::size_t(m) * ldc, 3);
  auto op_a = [&](int i, int p) {
    return ta ? a[std::size_t(p) * lda + i] : a[std::size_t(i) * lda + p];
  };
  auto op_b = [&](int p, int j) {
    return tb ? b[std::size_t(j) * ldb + p] : b[std::size_t(p) * ldb + j];
  };
  for (double beta : {0.75, 0.0}) {
    Vec c = c0;
    for (int i = 0; i < m; ++i)
      for (int j = n; j < ldc; ++j) c[std::size_t(i) * ldc + j] = sentinel;
    if (beta == 0.0)
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) c[std::size_t(i) * ldc + j] = std::nan("");
    const double alpha = -1.5;
    cpu::gemm<double>(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
    Vec ref(std::size_t(m) * n);
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < n; ++j) {
        double s = 0;
        for (int p = 0; p < k; ++p) s += op_a(i, p) * op_b(p, j);
        ref[std::size_t(i) * n + j] =
            alpha * s + (beta == 0.0 ? 0.0 : beta * c0[std::size_t(i) * ldc + j]);
      }
      for (int j = n; j < ldc; ++j) ASSERT_EQ(c[std::size_t(i) * ldc + j], sentinel);
    }
    // Absolute tolerances, entries ~ |alpha| sqrt(k) / 3 with a, b ~ U(-1,1): k products summed
    // with rounding u each (double u = 1.1e-16, float u = 6e-8) of terms up to |alpha| = 1.5, so
    // the error is below ~k u |alpha| at worst: 1e-12 (1 + k) in double, 1e-5 (1 + k) in float
    // (which also includes the float rounding of the inputs, ~u |alpha| k).
    EXPECT_TRUE(close_abs(block(c, m, n, ldc), ref, 1e-12 * (1 + k),
                          "double, beta " + std::to_string(beta)));
    // float instantiation, same layout
    const std::vector<float> af(a.begin(), a.end()), bf(b.begin(), b.end());
    std::vector<float> cf(c0.begin(), c0.end());
    if (beta == 0.0) std::fill(cf.begin(), cf.end(), std::numeric_limits<float>::quiet_NaN());
    cpu::gemm<float>(ta, tb, m, n, k, float(alpha), af.data(), lda, bf.data(), ldb, float(beta),
                     cf.data(), ldc);
    EXPECT_TRUE(close_abs(block(cf, m, n, ldc), block(c, m, n, ldc), 1e-5 * (1 + k),
                          "float vs double, beta " + std::to_string(beta)));
  }
}

INSTANTIATE_TEST_SUITE_P(Gemm, GemmCase,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(),
                                            ::testing::Values(5, 67), ::testing::Values(7, 45),
                                            ::testing::Values(3, 80)));

// k == 0: the product is empty, so C = beta * C (and 0 when beta == 0, NaN or not).
TEST(Gemm, EmptyInnerDimension) {
  Vec c{1.0, 2.0, std::nan(""), 4.0};
  const double dummy = 0;
  cpu::gemm<double>(false, false, 1, 2, 0, 1.0, &dummy, 1, &dummy, 2, 2.0, c.data(), 2);
  EXPECT_EQ(c[0], 2.0);
  EXPECT_EQ(c[1], 4.0);
  cpu::gemm<double>(false, false, 2, 2, 0, 1.0, &dummy, 1, &dummy, 2, 0.0, c.data(), 2);
  EXPECT_EQ(c, (Vec{0.0, 0.0, 0.0, 0.0}));
}

// ---- linear layer
// ---------------------------------------------------------------------------------

TEST(Linear, ForwardMatchesLoops) {
  LinearShape s;
  s.n = 4, s.in = 6, s.out = 3;
  const Vec x = random_vector(s.n * s.in, 10), w = random_vector(s.out * s.in, 11),
            b = random_vector(s.out, 12);
  Vec y(s.n * s.out, std::nan("")), y_nobias(s.n * s.out, std::nan(""));
  cpu::linear_forward<double>(s, x.data(), w.data(), b.data(), y.data());
  cpu::linear_forward<double>(s, x.data(), w.data(), nullptr, y_nobias.data());
  Vec ref(y.size()), ref_nobias(y.size());
  for (int r = 0; r < s.n; ++r)
    for (int o = 0; o < s.out; ++o) {
      double acc = 0;
      for (int i = 0; i < s.in; ++i) acc += x[r * s.in + i] * w[o * s.in + i];
      ref_nobias[r * s.out + o] = acc;
      ref[r * s.out + o] = acc + b[o];
    }
  // 6 products of U(-1,1) values in double: |y| < 7, rounding ~ 6 u |y| ~ 5e-15 (u = 1.1e-16).
  EXPECT_TRUE(close_abs(y_nobias, ref_nobias, 1e-14, "without bias"));
  EXPECT_TRUE(close_abs(y, ref, 1e-14, "with bias"));
}

TEST(Linear, GradCheck) {
  LinearShape s;
  s.n = 5, s.in = 7, s.out = 4;
  Vec x = random_vector(s.n * s.in, 20), w = random_vector(s.out * s.in, 21),
      b = random_vector(s.out, 22);
  const Vec r = random_vector(s.n * s.out, 23);
  auto loss = [&](const Vec& xv, const Vec& wv, const Vec& bv) {
    Vec y(s.n * s.out);
    cpu::linear_forward<double>(s, xv.data(), wv.data(), bv.data(), y.data());
    return dot(y, r);
  };
  // Outputs start as NaN: the backward must overwrite, not accumulate.
  Vec dx(x.size(), std::nan("")), dw(w.size(), std::nan("")), db(b.size(), std::nan(""));
  cpu::linear_backward<double>(s, x.data(), w.data(), r.data(), dx.data(), dw.data(), db.data());
  EXPECT_TRUE(grad_close([&](Vec& v) { return loss(v, w, b); }, x, dx, 1e-6));
  EXPECT_TRUE(grad_close([&](Vec& v) { return loss(x, v, b); }, w, dw, 1e-6));
  EXPECT_TRUE(grad_close([&](Vec& v) { return loss(x, w, v); }, b, db, 1e-6));
}

// Each output is optional; the float instantiation agrees with double.
TEST(Linear, OptionalOutputsAndFloat) {
  LinearShape s;
  s.n = 8, s.in = 33, s.out = 17;
  const Vec x = random_vector(s.n * s.in, 30), w = random_vector(s.out * s.in, 31),
            dy = random_vector(s.n * s.out, 32);
  Vec dx(x.size()), dw(w.size()), db(s.out), dx1(x.size()), dw1(w.size()), db1(s.out);
  cpu::linear_backward<double>(s, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
  cpu::linear_backward<double>(s, x.data(), w.data(), dy.data(), dx1.data(), nullptr, nullptr);
  cpu::linear_backward<double>(s, x.data(), w.data(), dy.data(), nullptr, dw1.data(), nullptr);
  cpu::linear_backward<double>(s, x.data(), w.data(), dy.data(), nullptr, nullptr, db1.data());
  EXPECT_EQ(dx, dx1);
  EXPECT_EQ(dw, dw1);
  EXPECT_EQ(db, db1);
  const std::vector<float> xf(x.begin(), x.end()), wf(w.begin(), w.end()),
      dyf(dy.begin(), dy.end());
  std::vector<float> dxf(x.size()), dwf(w.size()), dbf(s.out);
  cpu::linear_backward<float>(s, xf.data(), wf.data(), dyf.data(), dxf.data(), dwf.data(),
                              dbf.data());
  // Float against double, absolute: sums of 17 (dx) or 8 (dw, db) products of U(-1,1) values,
  // |result| < ~5, float rounding u = 6e-8 per operation and per input: ~20 u * 5 ~ 6e-6 at worst.
  EXPECT_TRUE(close_abs(dxf, dx, 1e-5, "dx"));
  EXPECT_TRUE(close_abs(dwf, dw, 1e-5, "dw"));
  EXPECT_TRUE(close_abs(dbf, db, 1e-5, "db"));
}

}  // namespace
