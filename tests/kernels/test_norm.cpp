// Tests of the CPU normalisation kernels (kernels/norm.h): batch norm in training and eval mode and
// the per-pixel channel layer norm, against plain loops, hand-computed running statistics and
// finite-difference gradients in double.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "kernels/activation.h"
#include "kernels/elementwise.h"
#include "kernels/norm.h"
#include "tests/common/compare.h"
#include "tests/common/gradcheck.h"

namespace {

using halo::kernels::NormShape;
using halo::test::close_abs;
using halo::test::close_elementwise;
using halo::test::dot;
using halo::test::grad_close;
using halo::test::random_vector;
namespace cpu = halo::kernels::cpu;
using Vec = std::vector<double>;

// Straightforward per-channel batch statistics: mean and biased variance over (n, hw).
void batch_stats_reference(const NormShape& s, const Vec& x, Vec& mean, Vec& var) {
  mean.assign(s.c, 0.0);
  var.assign(s.c, 0.0);
  const double m = double(s.n) * s.hw;
  for (int c = 0; c < s.c; ++c) {
    for (int n = 0; n < s.n; ++n)
      for (int p = 0; p < s.hw; ++p) mean[c] += x[(n * s.c + c) * s.hw + p];
    mean[c] /= m;
    for (int n = 0; n < s.n; ++n)
      for (int p = 0; p < s.hw; ++p) {
        const double d = x[(n * s.c + c) * s.hw + p] - mean[c];
        var[c] += d * d;
      }
    var[c] /= m;
  }
}

// ---- batch norm, training mode -------------------------------------------------------------

TEST(BatchNormTrain, ForwardMatchesLoops) {
  const NormShape s{3, 4, 5};
  Vec x = random_vector(s.size(), 1, -2.0, 3.0);
  Vec gamma = random_vector(s.c, 2, 0.5, 1.5), beta = random_vector(s.c, 3);
  Vec y(s.size()), mean(s.c), invstd(s.c);
  const double eps = 1e-5;
  cpu::batch_norm_forward_train<double>(s, x.data(), gamma.data(), beta.data(), eps, 0.1, nullptr,
                                        nullptr, y.data(), mean.data(), invstd.data());
  Vec rm, rv;
  batch_stats_reference(s, x, rm, rv);
  Vec ref_invstd(s.c), ref_y(s.size());
  for (int c = 0; c < s.c; ++c) ref_invstd[c] = 1.0 / std::sqrt(rv[c] + eps);
  for (int n = 0; n < s.n; ++n)
    for (int c = 0; c < s.c; ++c)
      for (int p = 0; p < s.hw; ++p) {
        const int i = (n * s.c + c) * s.hw + p;
        ref_y[i] = (x[i] - rm[c]) / std::sqrt(rv[c] + eps) * gamma[c] + beta[c];
      }
  // Absolute, in double (u = 1.1e-16): the mean of 15 values in [-2, 3] (~15 u * 3 ~ 5e-15), and
  // invstd ~ 1 / 1.4 and y ~ 3 after a few more roundings each: 1e-14, 1e-12, 1e-12.
  EXPECT_TRUE(close_abs(mean, rm, 1e-14, "mean"));
  EXPECT_TRUE(close_abs(invstd, ref_invstd, 1e-12, "invstd"));
  EXPECT_TRUE(close_abs(y, ref_y, 1e-12, "y"));
}

// x = {1, 2, 3, 4} in one channel: mean 2.5, biased var 1.25, unbiased var 5/3.
TEST(BatchNormTrain, RunningStatsUseUnbiasedVarianceAndMomentum) {
  const NormShape s{2, 1, 2};
  const Vec x{1, 2, 3, 4};
  const double gamma = 1, beta = 0, momentum = 0.1;
  double running_mean = 0.5, running_var = 2.0;
  Vec y(4);
  double mean = 0, invstd = 0;
  cpu::batch_norm_forward_train<double>(s, x.data(), &gamma, &beta, 0.0, momentum, &running_mean,
                                        &running_var, y.data(), &mean, &invstd);
  EXPECT_NEAR(mean, 2.5, 1e-15);
  EXPECT_NEAR(invstd, 1.0 / std::sqrt(1.25), 1e-15);  // the biased variance normalises
  EXPECT_NEAR(running_mean, 0.9 * 0.5 + 0.1 * 2.5, 1e-15);
  EXPECT_NEAR(running_var, 0.9 * 2.0 + 0.1 * (5.0 / 3.0), 1e-15);
  // A second step with the same batch moves the running stats again by the same rule.
  cpu::batch_norm_forward_train<double>(s, x.data(), &gamma, &beta, 0.0, momentum, &running_mean,
                                        &running_var, y.data(), &mean, &invstd);
  EXPECT_NEAR(running_mean, 0.9 * (0.9 * 0.5 + 0.1 * 2.5) + 0.1 * 2.5, 1e-15);
  EXPECT_NEAR(running_var, 0.9 * (0.9 * 2.0 + 0.1 * (5.0 / 3.0)) + 0.1 * (5.0 / 3.0), 1e-15);
}

// Float data with a large mean and a small spread: E[x^2] - E[x]^2 in float would lose every digit
// of the variance; the two-pass double accumulation keeps it.
TEST(BatchNormTrain, FloatStatisticsStableForLargeMean) {
  const NormShape s{4, 2, 64};
  const Vec xd = random_vector(s.size(), 4, -1.0, 1.0);
  std::vector<float> x(s.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(1e4 + xd[i]);
  Vec xf(x.begin(), x.end());  // the float values exactly, for the double reference
  Vec rm, rv;
  batch_stats_reference(s, xf, rm, rv);
  std::vector<float> gamma(s.c, 1.f), beta(s.c, 0.f), y(s.size()), mean(s.c), invstd(s.c);
  std::vector<float> running_mean(s.c, 0.f), running_var(s.c, 1.f);
  cpu::batch_norm_forward_train<float>(s, x.data(), gamma.data(), beta.data(), 1e-5f, 0.1f,
                                       running_mean.data(), running_var.data(), y.data(),
                                       mean.data(), invstd.data());
  const double m = double(s.n) * s.hw;
  Vec ref_invstd(s.c), ref_running_var(s.c);
  for (int c = 0; c < s.c; ++c) {
    ref_invstd[c] = 1.0 / std::sqrt(rv[c] + 1e-5);
    ref_running_var[c] = 0.9 + 0.1 * rv[c] * m / (m - 1);
  }
  // invstd within 1e-5 of itself per channel: float storage alone is u = 6e-8 relative, and a
  // variance that lost digits to the mean of 1e4 would be off by ~u 1e8 / var ~ 20 relative.
  EXPECT_TRUE(close_elementwise(invstd, ref_invstd, 0.0, 1e-5, "invstd"));
  // running_var ~ 0.93: a few float roundings (~1e-7) of the momentum update; 1e-5 absolute.
  EXPECT_TRUE(close_abs(running_var, ref_running_var, 1e-5, "running_var"));
}

TEST(BatchNormTrain, GradCheck) {
  const NormShape s{3, 2, 5};
  Vec x = random_vector(s.size(), 10, -2.0, 2.0);
  Vec gamma = random_vector(s.c, 11, 0.5, 1.5), beta = random_vector(s.c, 12);
  const Vec r = random_vector(s.size(), 13);
  const double eps = 1e-3;
  // loss = sum(y * r) as a function of each input, the others held fixed.
  auto loss = [&](const Vec& xv, const Vec& g, const Vec& b) {
    Vec y(s.size()), mean(s.c), invstd(s.c);
    cpu::batch_norm_forward_train<double>(s, xv.data(), g.data(), b.data(), eps, 0.1, nullptr,
                                          nullptr, y.data(), mean.data(), invstd.data());
    return dot(y, r);
  };
  Vec y(s.size()), mean(s.c), invstd(s.c);
  cpu::batch_norm_forward_train<double>(s, x.data(), gamma.data(), beta.data(), eps, 0.1, nullptr,
                                        nullptr, y.data(), mean.data(), invstd.data());
  Vec dx(s.size(), std::nan("")), dgamma(s.c, std::nan("")), dbeta(s.c, std::nan(""));
  cpu::batch_norm_backward<double>(s, x.data(), r.data(), gamma.data(), mean.data(), invstd.data(),
                                   true, dx.data(), dgamma.data(), dbeta.data());
  EXPECT_TRUE(grad_close([&](Vec& v) { return loss(v, gamma, beta); }, x, dx, 1e-6));
  EXPECT_TRUE(grad_close([&](Vec& v) { return loss(x, v, beta); }, gamma, dgamma, 1e-6));
  EXPECT_TRUE(grad_close([&](Vec& v) { return loss(x, gamma, v); }, beta, dbeta, 1e-6));
}

// Each nullable output alone gives the same values as all three together.
TEST(BatchNormTrain, BackwardOutputsAreIndependentlyOptional) {
  const NormShape s{2, 3, 4};
  const Vec x = random_vector(s.size(), 20), dy = random_vector(s.size(), 21);
  const Vec gamma = random_vector(s.c, 22, 0.5, 1.5), beta = random_vector(s.c, 23);
  Vec y(s.size()), mean(s.c), invstd(s.c);
  cpu::batch_norm_forward_train<double>(s, x.data(), gamma.data(), beta.data(), 1e-5, 0.1, nullptr,
                                        nullptr, y.data(), mean.data(), invstd.data());
  Vec dx(s.size()), dg(s.c), db(s.c), dx1(s.size()), dg1(s.c), db1(s.c);
  cpu::batch_norm_backward<double>(s, x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(),
                                   true, dx.data(), dg.data(), db.data());
  cpu::batch_norm_backward<double>(s, x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(),
                                   true, dx1.data(), nullptr, nullptr);
  cpu::batch_norm_backward<double>(s, x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(),
                                   true, nullptr, dg1.data(), nullptr);
  cpu::batch_norm_backward<double>(s, x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(),
                                   true, nullptr, nullptr, db1.data());
  EXPECT_EQ(dx, dx1);
  EXPECT_EQ(dg, dg1);
  EXPECT_EQ(db, db1);
}

// ---- batch norm + add + ReLU, fused
// -------------------------------------------------------------------------------------------

// The fused kernels against the pieces run one after another (batch norm, add, ReLU forward; ReLU
// backward, batch norm backward), in training and eval mode, with and without a residual, in
// double (equal to rounding) and float, on a shape small enough for one thread and one large
// enough for the OpenMP path.
template <class T>
void check_fused_against_pieces(const NormShape& s, bool training, bool with_residual, double tol) {
  SCOPED_TRACE(::testing::Message()
               << "n=" << s.n << " c=" << s.c << " hw=" << s.hw
               << (training ? " training" : " eval") << (with_residual ? " residual" : ""));
  auto cast = [](const Vec& v) { return std::vector<T>(v.begin(), v.end()); };
  const std::vector<T> x = cast(random_vector(s.size(), 40, -2.0, 2.0)),
                       r = cast(random_vector(s.size(), 41)),
                       dy = cast(random_vector(s.size(), 42)),
                       gamma = cast(random_vector(s.c, 43, 0.5, 1.5)),
                       beta = cast(random_vector(s.c, 44));
  const T* res = with_residual ? r.data() : nullptr;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  // The pieces.
  std::vector<T> rm(s.c, T(0.1)), rv(s.c, T(0.9)), mean(s.c), invstd(s.c), y(s.size());
  if (training)
    cpu::batch_norm_forward_train<T>(s, x.data(), gamma.data(), beta.data(), T(1e-5), T(0.1),
                                     rm.data(), rv.data(), y.data(), mean.data(), invstd.data());
  else
    cpu::batch_norm_forward_eval<T>(s, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(),
                                    T(1e-5), y.data());
  if (res) cpu::add<T>(y.size(), y.data(), res, y.data());
  cpu::relu_forward<T>(y.size(), y.data(), y.data());
  std::vector<T> g(s.size()), dx(s.size()), dg(s.c), db(s.c);
  cpu::relu_backward<T>(y.size(), y.data(), dy.data(), g.data());
  if (!training) {  // eval: the statistics are the running ones
    for (int c = 0; c < s.c; ++c) {
      mean[c] = rm[c];
      invstd[c] = T(1.0 / std::sqrt(double(rv[c]) + 1e-5));
    }
  }
  cpu::batch_norm_backward<T>(s, x.data(), g.data(), gamma.data(), mean.data(), invstd.data(),
                              training, dx.data(), dg.data(), db.data());
  // Fused.
  std::vector<T> rm2(s.c, T(0.1)), rv2(s.c, T(0.9)), mean2(s.c, nan), invstd2(s.c, nan),
      y2(s.size(), nan);
  if (training)
    cpu::batch_norm_add_relu_forward_train<T>(s, x.data(), res, gamma.data(), beta.data(), T(1e-5),
                                              T(0.1), rm2.data(), rv2.data(), y2.data(),
                                              mean2.data(), invstd2.data());
  else
    cpu::batch_norm_add_relu_forward_eval<T>(s, x.data(), res, gamma.data(), beta.data(),
                                             rm2.data(), rv2.data(), T(1e-5), y2.data());
  EXPECT_TRUE(close_abs(y2, y, tol, "y"));
  if (training) {
    EXPECT_TRUE(close_abs(mean2, mean, tol, "mean"));
    EXPECT_TRUE(close_abs(invstd2, invstd, tol * 10, "invstd"));
    EXPECT_TRUE(close_abs(rm2, rm, tol, "running_mean"));
    EXPECT_TRUE(close_abs(rv2, rv, tol, "running_var"));
  } else {
    mean2 = mean;
    invstd2 = invstd;
  }
  std::vector<T> dx2(s.size(), nan), dg2(s.c, nan), db2(s.c, nan), dr2(s.size(), nan);
  cpu::batch_norm_relu_backward<T>(s, x.data(), y.data(), dy.data(), gamma.data(), mean2.data(),
                                   invstd2.data(), training, dx2.data(), dg2.data(), db2.data(),
                                   with_residual ? dr2.data() : nullptr);
  EXPECT_TRUE(close_abs(dx2, dx, tol, "dx"));
  EXPECT_TRUE(close_abs(dg2, dg, tol * s.n * s.hw, "dgamma"));
  EXPECT_TRUE(close_abs(db2, db, tol * s.n * s.hw, "dbeta"));
  if (with_residual) EXPECT_TRUE(close_abs(dr2, g, 0.0, "dresidual (the masked gradient)"));
}

TEST(BatchNormAddRelu, MatchesThePiecesInDouble) {
  for (const NormShape& s : {NormShape{3, 2, 5}, NormShape{4, 16, 28 * 28}})
    for (bool training : {true, false})
      for (bool residual : {true, false})
        check_fused_against_pieces<double>(s, training, residual, 1e-12);
}

TEST(BatchNormAddRelu, MatchesThePiecesInFloat) {
  for (const NormShape& s : {NormShape{3, 2, 5}, NormShape{2, 13, 37}, NormShape{4, 16, 28 * 28}})
    for (bool training : {true, false})
      for (bool residual : {true, false})
        check_fused_against_pieces<float>(s, training, residual, 2e-5);
}

// Finite differences of loss = sum(relu(bn(x) + r) * w) with respect to x, gamma, beta and r.
TEST(BatchNormAddRelu, GradCheck) {
  const NormShape s{3, 2, 5};
  Vec x = random_vector(s.size(), 50, -2.0, 2.0), r = random_vector(s.size(), 51);
  Vec gamma = random_vector(s.c, 52, 0.5, 1.5), beta = random_vector(s.c, 53);
  const Vec w = random_vector(s.size(), 54);
  auto loss = [&](const Vec& xv, const Vec& g, const Vec& b, const Vec& rv) {
    Vec y(s.size()), mean(s.c), invstd(s.c);
    cpu::batch_norm_add_relu_forward_train<double>(s, xv.data(), rv.data(), g.data(), b.data(),
                                                   1e-3, 0.1, nullptr, nullptr, y.data(),
                                                   mean.data(), invstd.data());
    return dot(y, w);
  };
  Vec y(s.size()), mean(s.c), invstd(s.c);
  cpu::batch_norm_add_relu_forward_train<double>(s, x.data(), r.data(), gamma.data(), beta.data(),
                                                 1e-3, 0.1, nullptr, nullptr, y.data(), mean.data(),
                                                 invstd.data());
  Vec dx(s.size(), std::nan("")), dg(s.c, std::nan("")), db(s.c, std::nan("")),
      dr(s.size(), std::nan(""));
  cpu::batch_norm_relu_backward<double>(s, x.data(), y.data(), w.data(), gamma.data(), mean.data(),
                                        invstd.data(), true, dx.data(), dg.data(), db.data(),
                                        dr.data());
  EXPECT_TRUE(grad_close([&](Vec& v) { return loss(v, gamma, beta, r); }, x, dx, 1e-6));
  EXPECT_TRUE(grad_close([&](Vec& v) { return loss(x, v, beta, r); }, gamma, dg, 1e-6));
  EXPECT_TRUE(grad_close([&](Vec& v) { return loss(x, gamma, v, r); }, beta, db, 1e-6));
  EXPECT_TRUE(grad_close([&](Vec& v) { return loss(x, gamma, beta, v); }, r, dr, 1e-6));
}

// Big enough for the kernels' OpenMP path: forward statistics and the training-mode backward
// against the formulas of norm.h evaluated with plain loops.
TEST(BatchNormTrain, LargeMatchesFormula) {
  const NormShape s{4, 16, 28 * 28};
  const Vec x = random_vector(s.size(), 80, -2.0, 3.0), dy = random_vector(s.size(), 81);
  const Vec gamma = random_vector(s.c, 82, 0.5, 1.5), beta = random_vector(s.c, 83);
  Vec y(s.size()), mean(s.c), invstd(s.c), dx(s.size()), dgamma(s.c), dbeta(s.c);
  cpu::batch_norm_forward_train<double>(s, x.data(), gamma.data(), beta.data(), 1e-5, 0.1, nullptr,
                                        nullptr, y.data(), mean.data(), invstd.data());
  cpu::batch_norm_backward<double>(s, x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(),
                                   true, dx.data(), dgamma.data(), dbeta.data());
  Vec rm, rv;
  batch_stats_reference(s, x, rm, rv);
  const double m = double(s.n) * s.hw;
  Vec ref_invstd(s.c), ref_dbeta(s.c, 0.0), ref_dgamma(s.c, 0.0), ref_y(s.size()), ref_dx(s.size());
  for (int c = 0; c < s.c; ++c) {
    const double is = 1.0 / std::sqrt(rv[c] + 1e-5);
    ref_invstd[c] = is;
    double& sdy = ref_dbeta[c];
    double& sdyx = ref_dgamma[c];
    for (int n = 0; n < s.n; ++n)
      for (int p = 0; p < s.hw; ++p) {
        const int i = (n * s.c + c) * s.hw + p;
        sdy += dy[i];
        sdyx += dy[i] * (x[i] - rm[c]) * is;
      }
    for (int n = 0; n < s.n; ++n)
      for (int p = 0; p < s.hw; ++p) {
        const int i = (n * s.c + c) * s.hw + p;
        const double xhat = (x[i] - rm[c]) * is;
        ref_y[i] = xhat * gamma[c] + beta[c];
        ref_dx[i] = gamma[c] * is / m * (m * dy[i] - sdy - xhat * sdyx);
      }
  }
  // Absolute, in double (u = 1.1e-16), sums over m = 3136 values per channel in another order
  // (threads, blocks): a sum of m terms of size ~1 errs by ~sqrt(m) u max|partial sum| <= ~1e-12
  // (partial sums stay below ~m/2 for the shifted x, ~sqrt(m) for random-sign dy). So the mean
  // (sum / m) is good to ~1e-15 (1e-13), invstd ~ 0.7 to a few u (1e-12), dbeta and dgamma
  // (|sum| ~ 50) to ~1e-12 (1e-9); y (~5) and dx (~1) are pointwise given those (1e-12, 1e-11).
  EXPECT_TRUE(close_abs(mean, rm, 1e-13, "mean"));
  EXPECT_TRUE(close_abs(invstd, ref_invstd, 1e-12, "invstd"));
  EXPECT_TRUE(close_abs(dbeta, ref_dbeta, 1e-9, "dbeta"));
  EXPECT_TRUE(close_abs(dgamma, ref_dgamma, 1e-9, "dgamma"));
  EXPECT_TRUE(close_abs(y, ref_y, 1e-12, "y"));
  EXPECT_TRUE(close_abs(dx, ref_dx, 1e-11, "dx"));
}

// ---- batch norm, eval mode ---------------------------------------------------------------------

TEST(BatchNormEval, ForwardUsesRunningStats) {
  const NormShape s{2, 3, 4};
  const Vec x = random_vector(s.size(), 30, -2.0, 2.0);
  const Vec gamma = random_vector(s.c, 31, 0.5, 1.5), beta = random_vector(s.c, 32);
  const Vec rm = random_vector(s.c, 33), rv = random_vector(s.c, 34, 0.5, 2.0);
  Vec y(s.size());
  cpu::batch_norm_forward_eval<double>(s, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(),
                                       1e-5, y.data());
  Vec ref(s.size());
  for (int n = 0; n < s.n; ++n)
    for (int c = 0; c < s.c; ++c)
      for (int p = 0; p < s.hw; ++p) {
        const int i = (n * s.c + c) * s.hw + p;
        ref[i] = (x[i] - rm[c]) / std::sqrt(rv[c] + 1e-5) * gamma[c] + beta[c];
      }
  // Pointwise in double, |y| < ~6: a few roundings of u = 1.1e-16 each; 1e-12 absolute.
  EXPECT_TRUE(close_abs(y, ref, 1e-12, "y"));
}

// In eval mode mean and invstd are the running statistics, constants with respect to x.
TEST(BatchNormEval, GradCheck) {
  const NormShape s{2, 3, 4};
  Vec x = random_vector(s.size(), 40, -2.0, 2.0);
  Vec gamma = random_vector(s.c, 41, 0.5, 1.5), beta = random_vector(s.c, 42);
  const Vec rm = random_vector(s.c, 43), rv = random_vector(s.c, 44, 0.5, 2.0);
  const Vec r = random_vector(s.size(), 45);
  const double eps = 1e-5;
  auto loss = [&](const Vec& xv, const Vec& g, const Vec& b) {
    Vec y(s.size());
    cpu::batch_norm_forward_eval<double>(s, xv.data(), g.data(), b.data(), rm.data(), rv.data(),
                                         eps, y.data());
    return dot(y, r);
  };
  Vec invstd(s.c);
  for (int c = 0; c < s.c; ++c) invstd[c] = 1.0 / std::sqrt(rv[c] + eps);
  Vec dx(s.size(), std::nan("")), dgamma(s.c, std::nan("")), dbeta(s.c, std::nan(""));
  cpu::batch_norm_backward<double>(s, x.data(), r.data(), gamma.data(), rm.data(), invstd.data(),
                                   false, dx.data(), dgamma.data(), dbeta.data());
  EXPECT_TRUE(grad_close([&](Vec& v) { return loss(v, gamma, beta); }, x, dx, 1e-6));
  EXPECT_TRUE(grad_close([&](Vec& v) { return loss(x, v, beta); }, gamma, dgamma, 1e-6));
  EXPECT_TRUE(grad_close([&](Vec& v) { return loss(x, gamma, v); }, beta, dbeta, 1e-6));
}

// ---- layer norm over channels
// ---------------------------------------------------------------------

// hw = 300 spans more than one of the kernel's pixel blocks.
TEST(LayerNorm2d, ForwardMatchesLoops) {
  const NormShape s{2, 5, 300};
  const Vec x = random_vector(s.size(), 50, -2.0, 3.0);
  const Vec gamma = random_vector(s.c, 51, 0.5, 1.5), beta = random_vector(s.c, 52);
  const double eps = 1e-6;
  Vec y(s.size()), mean(s.n * s.hw), invstd(s.n * s.hw);
  cpu::layer_norm2d_forward<double>(s, x.data(), gamma.data(), beta.data(), eps, y.data(),
                                    mean.data(), invstd.data());
  Vec ref_mean(mean.size()), ref_invstd(invstd.size()), ref_y(s.size());
  for (int n = 0; n < s.n; ++n)
    for (int p = 0; p < s.hw; ++p) {
      double mu = 0, var = 0;
      for (int c = 0; c < s.c; ++c) mu += x[(n * s.c + c) * s.hw + p];
      mu /= s.c;
      for (int c = 0; c < s.c; ++c) var += std::pow(x[(n * s.c + c) * s.hw + p] - mu, 2);
      var /= s.c;  // biased
      ref_mean[n * s.hw + p] = mu;
      ref_invstd[n * s.hw + p] = 1.0 / std::sqrt(var + eps);
      for (int c = 0; c < s.c; ++c) {
        const int i = (n * s.c + c) * s.hw + p;
        ref_y[i] = (x[i] - mu) / std::sqrt(var + eps) * gamma[c] + beta[c];
      }
    }
  // Absolute, in double (u = 1.1e-16): the mean of 5 values in [-2, 3] (1e-14); invstd, which
  // is large (up to ~1e3 / sqrt(var + eps)) where the 5 values happen to lie close together, so
  // its absolute error is u times that: 1e-11; y ~ 5 after a few roundings: 1e-12.
  EXPECT_TRUE(close_abs(mean, ref_mean, 1e-14, "mean"));
  EXPECT_TRUE(close_abs(invstd, ref_invstd, 1e-11, "invstd"));
  EXPECT_TRUE(close_abs(y, ref_y, 1e-12, "y"));
}

TEST(LayerNorm2d, FloatMatchesDouble) {
  const NormShape s{2, 8, 10};
  const Vec xd = random_vector(s.size(), 53, 100.0, 101.0);  // offset mean: needs stable stats
  const Vec gd = random_vector(s.c, 54, 0.5, 1.5), bd = random_vector(s.c, 55);
  std::vector<float> x(xd.begin(), xd.end()), g(gd.begin(), gd.end()), b(bd.begin(), bd.end());
  Vec xr(x.begin(), x.end()), gr(g.begin(), g.end()), br(b.begin(), b.end());
  Vec y(s.size()), mean(s.n * s.hw), invstd(s.n * s.hw);
  cpu::layer_norm2d_forward<double>(s, xr.data(), gr.data(), br.data(), 1e-6, y.data(), mean.data(),
                                    invstd.data());
  std::vector<float> yf(s.size()), meanf(s.n * s.hw), invstdf(s.n * s.hw);
  cpu::layer_norm2d_forward<float>(s, x.data(), g.data(), b.data(), 1e-6f, yf.data(), meanf.data(),
                                   invstdf.data());
  // Float against double on the same float inputs, absolute: y ~ 2 after normalising values
  // ~100 with spread ~0.3, so the float rounding of x - mean (u 100 ~ 6e-6 of a spread of 0.3,
  // i.e. ~2e-5 relative) scaled by invstd ~ 3.5 and gamma: errors up to ~5e-6; 1e-5.
  EXPECT_TRUE(close_abs(yf, y, 1e-5, "y"));
}

TEST(LayerNorm2d, GradCheck) {
  const NormShape s{2, 4, 3};
  Vec x = random_vector(s.size(), 60, -2.0, 2.0);
  Vec gamma = random_vector(s.c, 61, 0.5, 1.5), beta = random_vector(s.c, 62);
  const Vec r = random_vector(s.size(), 63);
  const double eps = 1e-3;
  auto loss = [&](const Vec& xv, const Vec& g, const Vec& b) {
    Vec y(s.size()), mean(s.n * s.hw), invstd(s.n * s.hw);
    cpu::layer_norm2d_forward<double>(s, xv.data(), g.data(), b.data(), eps, y.data(), mean.data(),
                                      invstd.data());
    return dot(y, r);
  };
  Vec y(s.size()), mean(s.n * s.hw), invstd(s.n * s.hw);
  cpu::layer_norm2d_forward<double>(s, x.data(), gamma.data(), beta.data(), eps, y.data(),
                                    mean.data(), invstd.data());
  Vec dx(s.size(), std::nan("")), dgamma(s.c, std::nan("")), dbeta(s.c, std::nan(""));
  cpu::layer_norm2d_backward<double>(s, x.data(), r.data(), gamma.data(), mean.data(),
                                     invstd.data(), dx.data(), dgamma.data(), dbeta.data());
  EXPECT_TRUE(grad_close([&](Vec& v) { return loss(v, gamma, beta); }, x, dx, 1e-6));
  EXPECT_TRUE(grad_close([&](Vec& v) { return loss(x, v, beta); }, gamma, dgamma, 1e-6));
  EXPECT_TRUE(grad_close([&](Vec& v) { return loss(x, gamma, v); }, beta, dbeta, 1e-6));
}

// Larger than the kernels' OpenMP threshold and the pixel block: the parallel, blocked path must
// give the same gradient as the formula evaluated directly.
TEST(LayerNorm2d, BackwardLargeMatchesFormula) {
  const NormShape s{2, 96, 400};
  const Vec x = random_vector(s.size(), 70, -2.0, 2.0), dy = random_vector(s.size(), 71);
  const Vec gamma = random_vector(s.c, 72, 0.5, 1.5), beta = random_vector(s.c, 73);
  Vec y(s.size()), mean(s.n * s.hw), invstd(s.n * s.hw);
  cpu::layer_norm2d_forward<double>(s, x.data(), gamma.data(), beta.data(), 1e-6, y.data(),
                                    mean.data(), invstd.data());
  Vec dx(s.size(), std::nan("")), dgamma(s.c, std::nan("")), dbeta(s.c, std::nan(""));
  cpu::layer_norm2d_backward<double>(s, x.data(), dy.data(), gamma.data(), mean.data(),
                                     invstd.data(), dx.data(), dgamma.data(), dbeta.data());
  Vec rdg(s.c, 0.0), rdb(s.c, 0.0), rdx(s.size());
  for (int n = 0; n < s.n; ++n)
    for (int p = 0; p < s.hw; ++p) {
      const double mu = mean[n * s.hw + p], is = invstd[n * s.hw + p];
      double sg = 0, sgx = 0;
      for (int c = 0; c < s.c; ++c) {
        const int i = (n * s.c + c) * s.hw + p;
        sg += dy[i] * gamma[c];
        sgx += dy[i] * gamma[c] * (x[i] - mu) * is;
        rdg[c] += dy[i] * (x[i] - mu) * is;
        rdb[c] += dy[i];
      }
      for (int c = 0; c < s.c; ++c) {
        const int i = (n * s.c + c) * s.hw + p;
        const double xhat = (x[i] - mu) * is;
        rdx[i] = is / s.c * (s.c * dy[i] * gamma[c] - sg - xhat * sgx);
      }
    }
  // Absolute, in double (u = 1.1e-16): dx is pointwise given two sums over 96 channels (1e-11);
  // dgamma and dbeta sum 800 terms of size ~1 per channel in another (blocked, threaded) order:
  // ~sqrt(800) u 800 ~ 3e-12 typical; 1e-9.
  EXPECT_TRUE(close_abs(dx, rdx, 1e-11, "dx"));
  EXPECT_TRUE(close_abs(dgamma, rdg, 1e-9, "dgamma"));
  EXPECT_TRUE(close_abs(dbeta, rdb, 1e-9, "dbeta"));
}

}  // namespace
