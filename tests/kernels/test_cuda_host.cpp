// Host-side parts of the CUDA backend that can be checked without a GPU: the FastDivmod index
// arithmetic every kernel relies on; the implicit-GEMM operand gatherers of the three convolution
// passes and of the SGEMM, the depthwise and max-pool per-element bodies (all __host__ __device__,
// run here by plain loops in place of the GPU's thread grid and compared with the CPU reference);
// the backend/TF32 settings; and the model shape tables the CUDA tests and benchmarks use (checked
// against the parameter and MAC counts of ../shared/reference/architectures.md). These run on any
// machine built with CUDA.
#include <gtest/gtest.h>

#ifdef HALO_HAVE_CUDA

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "kernels/blas.h"
#include "kernels/cuda/fast_divmod.h"
#include "kernels/cuda/gather_ops.h"
#include "kernels/cuda/gemm_tile_body.h"
#include "kernels/cuda/norm_ops.h"
#include "kernels/cuda/pool_ops.h"
#include "kernels/cudnn/settings.h"
#include "kernels/norm.h"
#include "tests/kernels/test_cuda_shapes.h"

namespace halo::test::cuda {
namespace {

using halo::kernels::cuda::FastDivmod;

void expect_divmod(const FastDivmod& f, uint32_t n) {
  uint32_t q, r;
  f.divmod(n, q, r);
  ASSERT_EQ(q, n / f.divisor) << n << " / " << f.divisor;
  ASSERT_EQ(r, n % f.divisor) << n << " % " << f.divisor;
}

TEST(CudaFastDivmod, MatchesIntegerDivision) {
  std::mt19937 gen(7);
  std::uniform_int_distribution<uint32_t> any(0, (1u << 31) - 1);
  std::vector<uint32_t> divisors;
  for (uint32_t d = 1; d <= 4096; ++d) divisors.push_back(d);
  for (uint32_t d : {5625u, 1369u, 5776u, 22500u, 65535u, 65536u, 65537u, 1000003u, (1u << 30) - 1,
                     1u << 30, (1u << 30) + 1, (1u << 31) - 1})
    divisors.push_back(d);
  for (int i = 0; i < 2000; ++i) divisors.push_back(1 + any(gen) % ((1u << 31) - 1));
  for (uint32_t d : divisors) {
    const FastDivmod f(d);
    // Around multiples of d (where rounding errors would show) and at the ends of the range.
    for (uint32_t k : {0u, 1u, 2u, 3u, 1000u, (1u << 31) / d - 1, (1u << 31) / d}) {
      const uint64_t base = uint64_t(k) * d;
      for (int64_t delta = -2; delta <= 2; ++delta) {
        const int64_t n = int64_t(base) + delta;
        if (n >= 0 && n < (int64_t(1) << 31)) expect_divmod(f, uint32_t(n));
      }
    }
    expect_divmod(f, (1u << 31) - 1);
    for (int i = 0; i < 50; ++i) expect_divmod(f, any(gen));
  }
}

TEST(CudaFastDivmod, RejectsBadDivisors) {
  EXPECT_THROW(FastDivmod(0), std::invalid_argument);
  EXPECT_THROW(FastDivmod(-3), std::invalid_argument);
  EXPECT_THROW(FastDivmod(1LL << 31), std::invalid_argument);
}

// ---- the gatherers and per-element bodies, run on the CPU ---------------------------------------

namespace kc = halo::kernels;

std::vector<float> rnd(std::size_t n, unsigned seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}
std::vector<double> dbl(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}
double rel(const std::vector<float>& got, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i])) return INFINITY;
    num = std::max(num, std::abs(double(got[i]) - ref[i]));
    den = std::max(den, std::abs(ref[i]));
  }
  return den > 0 ? num / den : num;
}

// What gemm_tile_kernel computes, without the tiling: for every group, output row m < M and
// column n < N, the sum over k of a_load * b_load, in K-slices of `k_chunk` handed to store() as
// separate splits. Also calls a_index/b_index past the end, as the tile kernel does for the
// padding rows and columns, and checks they report !ok.
template <class Op>
void emulate_gemm(const Op& op, int M, int N, int K, int groups, int splits, int k_chunk) {
  for (int g = 0; g < groups; ++g) {
    EXPECT_FALSE(op.a_index(g, M).ok);
    EXPECT_FALSE(op.a_index(g, M + 100).ok);
    EXPECT_FALSE(op.b_index(g, N).ok);
    EXPECT_FALSE(op.b_index(g, N + 100).ok);
    for (int split = 0; split < splits; ++split) {
      const int k0 = split * k_chunk, k1 = std::min(K, k0 + k_chunk);
      for (int m = 0; m < M; ++m) {
        const auto ai = op.a_index(g, m);
        ASSERT_TRUE(ai.ok);
        for (int n = 0; n < N; ++n) {
          const auto bi = op.b_index(g, n);
          ASSERT_TRUE(bi.ok);
          float acc = 0.f;
          for (int k = k0; k < k1; ++k) acc = std::fma(op.a_load(ai, k), op.b_load(bi, k), acc);
          op.store(g, split, m, op.c_index(g, n), acc);
        }
      }
    }
  }
}

std::vector<kc::Conv2dShape> gather_shapes() {
  std::vector<kc::Conv2dShape> v;
  for (const auto& c : shapes::odd_conv_cases()) v.push_back(c.s);
  // Model-like layers at batch 2 with small channel counts (the index arithmetic does not care).
  v.push_back(shapes::conv_shape(2, 1, 30, 4, 7, 2, 3));    // ResNet stem
  v.push_back(shapes::conv_shape(2, 4, 10, 6, 3, 2, 1));    // strided 3x3
  v.push_back(shapes::conv_shape(2, 4, 10, 6, 1, 2, 0));    // 1x1 stride-2 shortcut
  v.push_back(shapes::conv_shape(2, 1, 30, 4, 4, 4, 0));    // ConvNeXt stem (drops 2 rows)
  v.push_back(shapes::conv_shape(2, 4, 9, 6, 2, 2, 0));     // ConvNeXt downsample, odd input
  v.push_back(shapes::conv_shape(2, 6, 9, 6, 7, 1, 3, 6));  // ConvNeXt depthwise
  v.push_back(shapes::conv_shape(2, 6, 9, 6, 3, 1, 1, 2));  // grouped
  return v;
}

std::string describe(const kc::Conv2dShape& s) {
  std::string d = "n=";
  d += std::to_string(s.n) + " c_in=" + std::to_string(s.c_in) + " " + std::to_string(s.h) + "x" +
       std::to_string(s.w) + " c_out=" + std::to_string(s.c_out) + " k=" + std::to_string(s.kh) +
       "x" + std::to_string(s.kw) + " s=" + std::to_string(s.stride) +
       " p=" + std::to_string(s.pad) + " g=" + std::to_string(s.groups);
  return d;
}

TEST(CudaGatherOps, ConvolutionGatherersMatchCpuReference) {
  for (const auto& s : gather_shapes()) {
    const std::string what = describe(s);
    const unsigned seed = unsigned(s.x_size() + s.w_size());
    const auto x = rnd(std::size_t(s.x_size()), seed), w = rnd(std::size_t(s.w_size()), seed + 1),
               b = rnd(std::size_t(s.c_out), seed + 2), dy = rnd(std::size_t(s.y_size()), seed + 3);
    const auto xd = dbl(x), wd = dbl(w), bd = dbl(b), dyd = dbl(dy);
    std::vector<double> y_ref(dy.size()), dx_ref(x.size()), dw_ref(w.size());
    kc::cpu::conv2d_forward_reference<double>(s, xd.data(), wd.data(), bd.data(), y_ref.data());
    kc::cpu::conv2d_backward_data_reference<double>(s, dyd.data(), wd.data(), dx_ref.data());
    kc::cpu::conv2d_backward_weight_reference<double>(s, xd.data(), dyd.data(), dw_ref.data());

    const kc::cuda::ConvDims d(s);
    const int cin = s.c_in_per_group(), cout = s.c_out_per_group(), khkw = s.kh * s.kw;
    const int P = s.h_out() * s.w_out();

    std::vector<float> y(dy.size(), NAN);
    emulate_gemm(kc::cuda::ConvFwdOp{d, x.data(), w.data(), b.data(), y.data()}, cout, s.n * P,
                 cin * khkw, s.groups, 1, cin * khkw);
    EXPECT_LE(rel(y, y_ref), 1e-5) << "forward " << what;

    std::vector<float> dx(x.size(), NAN);
    emulate_gemm(kc::cuda::ConvBwdDataOp{d, dy.data(), w.data(), dx.data()}, cin, s.n * s.h * s.w,
                 cout * khkw, s.groups, 1, cout * khkw);
    EXPECT_LE(rel(dx, dx_ref), 1e-5) << "backward-data " << what;

    // Backward-weight with split-K: 3 splits into partials, then summed in order.
    const int K = s.n * P, chunk = (K + 2) / 3;
    const int splits = (K + chunk - 1) / chunk;
    std::vector<float> partial(std::size_t(splits) * w.size(), NAN);
    emulate_gemm(kc::cuda::ConvBwdWeightOp{d, x.data(), dy.data(), partial.data()}, cout,
                 cin * khkw, K, s.groups, splits, chunk);
    std::vector<float> dw(w.size(), 0.f);
    for (int sp = 0; sp < splits; ++sp)
      for (std::size_t i = 0; i < dw.size(); ++i) dw[i] += partial[sp * dw.size() + i];
    EXPECT_LE(rel(dw, dw_ref), 1e-5) << "backward-weight " << what;
  }
}

TEST(CudaGatherOps, DepthwiseBodiesMatchCpuReference) {
  for (const auto& s : gather_shapes()) {
    if (!(s.groups == s.c_in && s.c_out == s.c_in)) continue;
    const std::string what = describe(s);
    const unsigned seed = unsigned(s.x_size() * 3 + s.kh);
    const auto x = rnd(std::size_t(s.x_size()), seed), w = rnd(std::size_t(s.w_size()), seed + 1),
               b = rnd(std::size_t(s.c_out), seed + 2), dy = rnd(std::size_t(s.y_size()), seed + 3);
    const auto xd = dbl(x), wd = dbl(w), bd = dbl(b), dyd = dbl(dy);
    std::vector<double> y_ref(dy.size()), dx_ref(x.size()), dw_ref(w.size());
    kc::cpu::conv2d_forward_reference<double>(s, xd.data(), wd.data(), bd.data(), y_ref.data());
    kc::cpu::conv2d_backward_data_reference<double>(s, dyd.data(), wd.data(), dx_ref.data());
    kc::cpu::conv2d_backward_weight_reference<double>(s, xd.data(), dyd.data(), dw_ref.data());
    const kc::cuda::ConvDims d(s);
    const int khkw = s.kh * s.kw;
    const uint32_t per_channel = uint32_t(s.n * s.h_out() * s.w_out());

    // Run-time-size bodies (every shape) and the compile-time ones the kernels specialise.
    std::vector<float> y(dy.size()), dx(x.size()), dw(w.size(), 0.f);
    for (uint32_t i = 0; i < y.size(); ++i)
      y[i] = kc::cuda::depthwise_forward_at<0, 0>(d, x.data(), w.data(), b.data(), i);
    for (uint32_t i = 0; i < dx.size(); ++i)
      dx[i] = kc::cuda::depthwise_backward_data_at<0, 0>(d, dy.data(), w.data(), i);
    for (int c = 0; c < s.c_in; ++c)
      for (int t = 0; t < khkw; ++t)
        for (uint32_t e = 0; e < per_channel; ++e)
          dw[std::size_t(c) * khkw + t] +=
              kc::cuda::depthwise_weight_term(d, x.data(), dy.data(), c, 0, e, t / s.kw, t % s.kw);
    EXPECT_LE(rel(y, y_ref), 1e-5) << "forward " << what;
    EXPECT_LE(rel(dx, dx_ref), 1e-5) << "backward-data " << what;
    EXPECT_LE(rel(dw, dw_ref), 1e-5) << "backward-weight " << what;

    auto fixed = [&](auto kh_tag) {
      constexpr int K = decltype(kh_tag)::value;
      std::vector<float> y2(dy.size()), dx2(x.size()), dw2(w.size(), 0.f);
      for (uint32_t i = 0; i < y2.size(); ++i)
        y2[i] = kc::cuda::depthwise_forward_at<K, K>(d, x.data(), w.data(), b.data(), i);
      for (uint32_t i = 0; i < dx2.size(); ++i)
        dx2[i] = kc::cuda::depthwise_backward_data_at<K, K>(d, dy.data(), w.data(), i);
      for (int c = 0; c < s.c_in; ++c) {
        // Two "splits" of the batch, as the kernel's blocks would take them.
        const int half = (s.n + 1) / 2;
        for (int img0 : {0, half}) {
          const int imgs = std::min(s.n, img0 + half) - img0;
          if (imgs <= 0) continue;
          float acc[K * K] = {};
          for (uint32_t e = 0; e < uint32_t(imgs * s.h_out() * s.w_out()); ++e)
            kc::cuda::depthwise_weight_accumulate<K, K>(d, x.data(), dy.data(), c, img0, e, acc);
          for (int t = 0; t < K * K; ++t) dw2[std::size_t(c) * K * K + t] += acc[t];
        }
      }
      EXPECT_LE(rel(y2, y_ref), 1e-5) << "forward <" << K << "> " << what;
      EXPECT_LE(rel(dx2, dx_ref), 1e-5) << "backward-data <" << K << "> " << what;
      EXPECT_LE(rel(dw2, dw_ref), 1e-5) << "backward-weight <" << K << "> " << what;
    };
    if (s.kh == 7 && s.kw == 7) fixed(std::integral_constant<int, 7>{});
    if (s.kh == 3 && s.kw == 3) fixed(std::integral_constant<int, 3>{});
  }
}

TEST(CudaGatherOps, GemmGathererMatchesCpu) {
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    const int m = 37, n = 7, k = 13, pad = 3;
    const int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    const auto a = rnd(std::size_t(ta ? k : m) * lda, 1), b = rnd(std::size_t(tb ? n : k) * ldb, 2),
               bias = rnd(std::size_t(n), 3);
    for (float beta : {0.f, 0.5f}) {
      auto c = rnd(std::size_t(m) * ldc, 4);
      if (beta == 0.f) std::fill(c.begin(), c.end(), NAN);
      std::vector<double> ref = dbl(c);
      const auto ad = dbl(a), bd = dbl(b);
      kc::cpu::gemm<double>(ta, tb, m, n, k, -1.5, ad.data(), lda, bd.data(), ldb, beta, ref.data(),
                            ldc);
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) ref[std::size_t(i) * ldc + j] += double(bias[j]);
      auto run = [&](auto op) { emulate_gemm(op, m, n, k, 1, 1, k); };
      if (!ta && !tb)
        run(kc::cuda::GemmOp<false, false>{a.data(), b.data(), c.data(), bias.data(), lda, ldb, ldc,
                                           m, n, -1.5f, beta});
      if (ta && !tb)
        run(kc::cuda::GemmOp<true, false>{a.data(), b.data(), c.data(), bias.data(), lda, ldb, ldc,
                                          m, n, -1.5f, beta});
      if (!ta && tb)
        run(kc::cuda::GemmOp<false, true>{a.data(), b.data(), c.data(), bias.data(), lda, ldb, ldc,
                                          m, n, -1.5f, beta});
      if (ta && tb)
        run(kc::cuda::GemmOp<true, true>{a.data(), b.data(), c.data(), bias.data(), lda, ldb, ldc,
                                         m, n, -1.5f, beta});
      std::vector<float> got;
      std::vector<double> want;
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
          got.push_back(c[std::size_t(i) * ldc + j]);
          want.push_back(ref[std::size_t(i) * ldc + j]);
        }
      EXPECT_LE(rel(got, want), 1e-5) << "ta=" << ta << " tb=" << tb << " beta=" << beta;
    }
  }
}

TEST(CudaGatherOps, MaxPoolBodiesMatchCpuIncludingTies) {
  std::vector<kc::Pool2dShape> cases;
  for (int h : {1, 2, 3, 7, 37, 75})
    for (int k : {1, 2, 3})
      for (int stride : {1, 2, 3}) {
        kc::Pool2dShape p;
        p.n = 2, p.c = 3, p.h = h, p.w = h == 75 ? 5 : h, p.k = k, p.stride = stride, p.pad = k / 2;
        if (p.h_out() >= 1 && p.w_out() >= 1) cases.push_back(p);
      }
  for (const auto& s : cases) {
    auto x = rnd(std::size_t(s.x_size()), unsigned(s.x_size()) + unsigned(s.k));
    for (auto& v : x) v = std::round(v * 3.f) / 3.f;  // many ties
    const auto dy = rnd(std::size_t(s.y_size()), 5);
    std::vector<float> y_ref(dy.size()), dx_ref(x.size());
    std::vector<int32_t> arg_ref(dy.size());
    kc::cpu::max_pool2d_forward<float>(s, x.data(), y_ref.data(), arg_ref.data());
    kc::cpu::max_pool2d_backward<float>(s, dy.data(), arg_ref.data(), dx_ref.data());
    const kc::cuda::PoolDims d(s);
    std::vector<float> y(dy.size()), dx(x.size());
    std::vector<int32_t> arg(dy.size());
    for (uint32_t i = 0; i < y.size(); ++i)
      y[i] = kc::cuda::max_pool_forward_at(d, x.data(), i, &arg[i]);
    for (uint32_t i = 0; i < dx.size(); ++i)
      dx[i] = kc::cuda::max_pool_backward_at(d, dy.data(), arg_ref.data(), i);
    EXPECT_EQ(y, y_ref) << s.h << "x" << s.w << " k" << s.k << " s" << s.stride;
    EXPECT_EQ(arg, arg_ref) << s.h << "x" << s.w << " k" << s.k << " s" << s.stride;
    EXPECT_EQ(dx, dx_ref) << s.h << "x" << s.w << " k" << s.k << " s" << s.stride
                          << " (same order of additions as the CPU: bitwise equal)";
  }
}

// Batch-norm statistics the way the kernels compute them: pass 1 in blocks of 256 "threads", each
// a Welford over a strided share of its block's chunk, merged; pass 2 bn_finalize_channel. Inputs
// around 5 +- 1 (a mean well away from zero) check the stability of the variance.
TEST(CudaNormOps, BatchNormStatisticsMatchCpu) {
  for (const auto& c : shapes::odd_norm_cases()) {
    const kc::NormShape s = c.s;
    const auto x = rnd(std::size_t(s.size()), unsigned(s.size()) + 7, 4.f, 6.f);
    const auto g = rnd(std::size_t(s.c), 8, 0.5f, 1.5f), b = rnd(std::size_t(s.c), 9);
    const auto rm0 = rnd(std::size_t(s.c), 10), rv0 = rnd(std::size_t(s.c), 11, 0.5f, 2.f);
    const auto xd = dbl(x), gd = dbl(g), bd = dbl(b);
    std::vector<double> y_ref(x.size()), mean_ref(std::size_t(s.c)), inv_ref(std::size_t(s.c));
    std::vector<double> rm_ref = dbl(rm0), rv_ref = dbl(rv0);
    kc::cpu::batch_norm_forward_train<double>(s, xd.data(), gd.data(), bd.data(), 1e-5, 0.1,
                                              rm_ref.data(), rv_ref.data(), y_ref.data(),
                                              mean_ref.data(), inv_ref.data());
    const long long m = 1LL * s.n * s.hw;
    const int splits = m >= 3 ? 3 : 1;
    const long long chunk = (m + splits - 1) / splits;
    std::vector<float> partial(std::size_t(splits) * s.c * 3);
    for (int sp = 0; sp < splits; ++sp)
      for (int ch = 0; ch < s.c; ++ch) {
        kc::cuda::Welford block;
        for (int t = 0; t < 256; ++t) {
          kc::cuda::Welford th;
          for (long long e = sp * chunk + t; e < std::min(m, (sp + 1) * chunk); e += 256)
            th.add(x[std::size_t((e / s.hw * s.c + ch) * s.hw + e % s.hw)]);
          block.merge(th);
        }
        float* out = &partial[(std::size_t(sp) * s.c + ch) * 3];
        out[0] = block.n, out[1] = block.mean, out[2] = block.m2;
      }
    std::vector<float> rm = rm0, rv = rv0, mean(std::size_t(s.c)), inv(std::size_t(s.c)),
                       coef(3 * std::size_t(s.c));
    for (int ch = 0; ch < s.c; ++ch)
      kc::cuda::bn_finalize_channel(ch, partial.data(), s.c, splits, double(m), double(1e-5f),
                                    double(0.1f), g.data(), b.data(), rm.data(), rv.data(),
                                    mean.data(), inv.data(), coef.data());
    std::vector<float> y(x.size());
    for (std::size_t i = 0; i < y.size(); ++i) {
      const std::size_t ch = (i / std::size_t(s.hw)) % std::size_t(s.c);
      y[i] = kc::cuda::bn_apply(x[i], coef.data(), s.c, int(ch));
    }
    EXPECT_LE(rel(mean, mean_ref), 1e-5) << c.name;
    EXPECT_LE(rel(inv, inv_ref), 1e-5) << c.name;
    EXPECT_LE(rel(rm, rm_ref), 1e-5) << c.name;
    EXPECT_LE(rel(rv, rv_ref), 1e-5) << c.name;
    EXPECT_LE(rel(y, y_ref), 1e-5) << c.name;
  }
}

// The batch-norm backward as the kernels compute it: per-channel sums through BnBackwardSums in
// blocks of 256 "threads" (float), the splits merged in double by BnBackwardFinalize, then
// bn_backward_dx per element.
TEST(CudaNormOps, BatchNormBackwardMatchesCpu) {
  std::vector<kc::NormShape> cases;
  for (const auto& c : shapes::odd_norm_cases()) cases.push_back(c.s);
  kc::NormShape big;
  big.n = 2, big.c = 3, big.hw = 75 * 75;
  cases.push_back(big);
  for (const auto& s : cases) {
    const std::size_t C = std::size_t(s.c);
    const auto x = rnd(std::size_t(s.size()), unsigned(s.size()) + 21, 4.f, 6.f);
    const auto dy = rnd(std::size_t(s.size()), 22), g = rnd(C, 23, 0.5f, 1.5f);
    const auto xd = dbl(x), dyd = dbl(dy), gd = dbl(g);
    std::vector<double> tmp(x.size()), mean_d(C), inv_d(C);
    kc::cpu::batch_norm_forward_train<double>(s, xd.data(), gd.data(), nullptr, 1e-5, 0.1, nullptr,
                                              nullptr, tmp.data(), mean_d.data(), inv_d.data());
    std::vector<float> mean(mean_d.begin(), mean_d.end()), inv(inv_d.begin(), inv_d.end());
    const auto meanf = dbl(mean), invf = dbl(inv);
    std::vector<double> dx_ref(x.size()), dg_ref(C), db_ref(C);
    kc::cpu::batch_norm_backward<double>(s, xd.data(), dyd.data(), gd.data(), meanf.data(),
                                         invf.data(), true, dx_ref.data(), dg_ref.data(),
                                         db_ref.data());
    const long long m = 1LL * s.n * s.hw;
    const int splits = m >= 2 ? 2 : 1;
    const long long chunk = (m + splits - 1) / splits;
    std::vector<float> partial(std::size_t(splits) * C * 2);
    const kc::cuda::BnBackwardSums sums{x.data(), dy.data(), mean.data()};
    for (int sp = 0; sp < splits; ++sp)
      for (int ch = 0; ch < s.c; ++ch) {
        float block[2] = {0.f, 0.f};
        for (int t = 0; t < 256; ++t) {
          float acc[2] = {0.f, 0.f};
          for (long long e = sp * chunk + t; e < std::min(m, (sp + 1) * chunk); e += 256)
            sums(std::size_t((e / s.hw * s.c + ch) * s.hw + e % s.hw), ch, uint32_t(e), acc);
          block[0] += acc[0], block[1] += acc[1];
        }
        partial[(std::size_t(sp) * C + ch) * 2] = block[0];
        partial[(std::size_t(sp) * C + ch) * 2 + 1] = block[1];
      }
    std::vector<float> dg(C), db(C), coef(4 * C), dx(x.size());
    const kc::cuda::BnBackwardFinalize fin{g.data(),  mean.data(), inv.data(), dg.data(),
                                           db.data(), coef.data(), s.c,        double(m)};
    for (int ch = 0; ch < s.c; ++ch) {
      double sum[2] = {0.0, 0.0};
      for (int sp = 0; sp < splits; ++sp)
        for (int v = 0; v < 2; ++v) sum[v] += double(partial[(std::size_t(sp) * C + ch) * 2 + v]);
      fin(ch, sum);
    }
    for (std::size_t i = 0; i < dx.size(); ++i)
      dx[i] =
          kc::cuda::bn_backward_dx(x[i], dy[i], coef.data(), s.c, int((i / std::size_t(s.hw)) % C));
    EXPECT_LE(rel(dx, dx_ref), 1e-5) << "dx c=" << s.c << " hw=" << s.hw << " n=" << s.n;
    EXPECT_LE(rel(dg, dg_ref), 1e-5) << "dgamma c=" << s.c << " hw=" << s.hw << " n=" << s.n;
    EXPECT_LE(rel(db, db_ref), 1e-5) << "dbeta c=" << s.c << " hw=" << s.hw << " n=" << s.n;
  }
}

TEST(CudaNormOps, LayerNormBodiesMatchCpu) {
  std::vector<kc::NormShape> cases;
  for (const auto& c : shapes::odd_norm_cases()) cases.push_back(c.s);
  for (const auto& m : shapes::all_models(1))
    for (const auto& c : m.layer_norms) cases.push_back(c.s);
  for (const auto& s : cases) {
    const std::size_t P = std::size_t(1LL * s.n * s.hw);
    const auto x = rnd(std::size_t(s.size()), unsigned(s.size()), 4.f, 6.f);
    const auto g = rnd(std::size_t(s.c), 1, 0.5f, 1.5f), b = rnd(std::size_t(s.c), 2);
    const auto dy = rnd(std::size_t(s.size()), 3);
    const auto xd = dbl(x), gd = dbl(g), bd = dbl(b), dyd = dbl(dy);
    std::vector<double> y_ref(x.size()), mean_ref(P), inv_ref(P), dx_ref(x.size());
    kc::cpu::layer_norm2d_forward<double>(s, xd.data(), gd.data(), bd.data(), 1e-6, y_ref.data(),
                                          mean_ref.data(), inv_ref.data());
    std::vector<float> y(x.size()), mean(P), inv(P), dx(x.size());
    const kc::cuda::FastDivmod hw_div(s.hw);
    for (uint32_t q = 0; q < P; ++q)
      kc::cuda::ln_forward_pixel(q, s.c, uint32_t(s.hw), hw_div, x.data(), g.data(), b.data(),
                                 1e-6f, y.data(), mean.data(), inv.data());
    EXPECT_LE(rel(y, y_ref), 1e-5) << "forward c=" << s.c << " hw=" << s.hw;
    EXPECT_LE(rel(mean, mean_ref), 1e-5) << "mean c=" << s.c << " hw=" << s.hw;
    EXPECT_LE(rel(inv, inv_ref), 1e-5) << "invstd c=" << s.c << " hw=" << s.hw;
    // Backward from the float statistics, as the kernels get them.
    const auto meand = dbl(mean), invd = dbl(inv);
    kc::cpu::layer_norm2d_backward<double>(s, xd.data(), dyd.data(), gd.data(), meand.data(),
                                           invd.data(), dx_ref.data(), nullptr, nullptr);
    for (uint32_t q = 0; q < P; ++q)
      kc::cuda::ln_backward_pixel(q, s.c, uint32_t(s.hw), hw_div, x.data(), dy.data(), g.data(),
                                  mean.data(), inv.data(), dx.data());
    EXPECT_LE(rel(dx, dx_ref), 1e-5) << "backward c=" << s.c << " hw=" << s.hw;
  }
}

// ---- the tile kernel itself, on CPU threads -----------------------------------------------------

// Runs gemm_tile_thread -- the body of the GPU's gemm_tile_kernel -- for every block of the grid,
// with one std::thread per GPU thread of a block and a std::barrier as __syncthreads(). Shared
// memory starts as NaN for every block, so reading a tile element no thread has stored yet shows.
template <class Cfg, class Op>
void run_tile_on_cpu(const Op& op, int M, int N, int K, int groups, int splits, int k_chunk) {
  const int gx = (N + Cfg::BN - 1) / Cfg::BN, gy = (M + Cfg::BM - 1) / Cfg::BM;
  for (int bz = 0; bz < groups * splits; ++bz)
    for (int by = 0; by < gy; ++by)
      for (int bx = 0; bx < gx; ++bx) {
        auto sm = std::make_unique<kc::cuda::TileSmem<Cfg>>();
        std::fill(&sm->As[0][0], &sm->As[0][0] + sizeof(sm->As) / sizeof(float), NAN);
        std::fill(&sm->Bs[0][0], &sm->Bs[0][0] + sizeof(sm->Bs) / sizeof(float), NAN);
        std::barrier<> bar(Cfg::threads);
        const auto sync = [&bar] { bar.arrive_and_wait(); };
        std::vector<std::thread> threads;
        threads.reserve(Cfg::threads);
        for (int tid = 0; tid < Cfg::threads; ++tid)
          threads.emplace_back([&, tid] {
            kc::cuda::gemm_tile_thread<Cfg>(op, M, N, K, splits, k_chunk, tid, bx, by, bz, *sm,
                                            sync);
          });
        for (auto& t : threads) t.join();
      }
}

template <class Cfg>
void check_tile_convolution(const kc::Conv2dShape& s, int splits_wanted) {
  const std::string what = describe(s);
  const unsigned seed = unsigned(s.x_size() * 7 + s.w_size());
  const auto x = rnd(std::size_t(s.x_size()), seed), w = rnd(std::size_t(s.w_size()), seed + 1),
             b = rnd(std::size_t(s.c_out), seed + 2), dy = rnd(std::size_t(s.y_size()), seed + 3);
  const auto xd = dbl(x), wd = dbl(w), bd = dbl(b), dyd = dbl(dy);
  std::vector<double> y_ref(dy.size()), dx_ref(x.size()), dw_ref(w.size());
  kc::cpu::conv2d_forward_reference<double>(s, xd.data(), wd.data(), bd.data(), y_ref.data());
  kc::cpu::conv2d_backward_data_reference<double>(s, dyd.data(), wd.data(), dx_ref.data());
  kc::cpu::conv2d_backward_weight_reference<double>(s, xd.data(), dyd.data(), dw_ref.data());
  const kc::cuda::ConvDims d(s);
  const int cin = s.c_in_per_group(), cout = s.c_out_per_group(), khkw = s.kh * s.kw;
  const int P = s.h_out() * s.w_out();

  std::vector<float> y(dy.size(), NAN), dx(x.size(), NAN);
  run_tile_on_cpu<Cfg>(kc::cuda::ConvFwdOp{d, x.data(), w.data(), b.data(), y.data()}, cout,
                       s.n * P, cin * khkw, s.groups, 1, cin * khkw);
  EXPECT_LE(rel(y, y_ref), 1e-5) << "tile forward " << what;
  run_tile_on_cpu<Cfg>(kc::cuda::ConvBwdDataOp{d, dy.data(), w.data(), dx.data()}, cin,
                       s.n * s.h * s.w, cout * khkw, s.groups, 1, cout * khkw);
  EXPECT_LE(rel(dx, dx_ref), 1e-5) << "tile backward-data " << what;

  // Split-K as conv2d_backward_weight does it: chunks a multiple of BK, partials summed in order.
  const int K = s.n * P;
  int k_chunk = (K + splits_wanted - 1) / splits_wanted;
  k_chunk = (k_chunk + Cfg::BK - 1) / Cfg::BK * Cfg::BK;
  const int splits = (K + k_chunk - 1) / k_chunk;
  std::vector<float> partial(std::size_t(splits) * w.size(), NAN);
  run_tile_on_cpu<Cfg>(kc::cuda::ConvBwdWeightOp{d, x.data(), dy.data(), partial.data()}, cout,
                       cin * khkw, K, s.groups, splits, k_chunk);
  std::vector<float> dw(w.size(), 0.f);
  for (int sp = 0; sp < splits; ++sp)
    for (std::size_t i = 0; i < dw.size(); ++i) dw[i] += partial[sp * dw.size() + i];
  EXPECT_LE(rel(dw, dw_ref), 1e-5) << "tile backward-weight (" << splits << " splits) " << what;
}

TEST(CudaTileOnCpu, ConvolutionPassesMatchCpuReference) {
  // Small enough for a CPU thread per GPU thread; M both below and above one tile's rows, N and
  // K not multiples of the tile, groups, strides, padding.
  const kc::Conv2dShape cases[] = {
      shapes::conv_shape(1, 3, 7, 5, 3, 1, 1),      // tiny: one block, mostly padding
      shapes::conv_shape(2, 5, 12, 70, 3, 2, 1),    // M = 70 > 64: two small-tile rows
      shapes::conv_shape(1, 16, 9, 131, 1, 1, 0),   // 1x1, M = 131 > 128
      shapes::conv_shape(2, 6, 11, 9, 3, 1, 1, 3),  // grouped
      shapes::conv_shape(2, 1, 23, 8, 7, 2, 3),     // ResNet-stem-like
      shapes::conv_shape(1, 4, 13, 6, 4, 4, 0),     // ConvNeXt-stem-like (drops a row)
  };
  for (const auto& s : cases) {
    check_tile_convolution<kc::cuda::TileSmall>(s, 3);
    check_tile_convolution<kc::cuda::TileLarge>(s, 2);
  }
}

TEST(CudaTileOnCpu, GemmMatchesCpuAllTransposes) {
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    const int m = 130, n = 137, k = 29, pad = 1;
    const int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    const auto a = rnd(std::size_t(ta ? k : m) * lda, 11),
               b = rnd(std::size_t(tb ? n : k) * ldb, 12);
    auto c = rnd(std::size_t(m) * ldc, 13);
    std::vector<double> ref = dbl(c);
    const auto ad = dbl(a), bd = dbl(b);
    kc::cpu::gemm<double>(ta, tb, m, n, k, 0.5, ad.data(), lda, bd.data(), ldb, 2.0, ref.data(),
                          ldc);
    auto run = [&](auto op) { run_tile_on_cpu<kc::cuda::TileLarge>(op, m, n, k, 1, 1, k); };
    if (!ta && !tb)
      run(kc::cuda::GemmOp<false, false>{a.data(), b.data(), c.data(), nullptr, lda, ldb, ldc, m, n,
                                         0.5f, 2.f});
    if (ta && !tb)
      run(kc::cuda::GemmOp<true, false>{a.data(), b.data(), c.data(), nullptr, lda, ldb, ldc, m, n,
                                        0.5f, 2.f});
    if (!ta && tb)
      run(kc::cuda::GemmOp<false, true>{a.data(), b.data(), c.data(), nullptr, lda, ldb, ldc, m, n,
                                        0.5f, 2.f});
    if (ta && tb)
      run(kc::cuda::GemmOp<true, true>{a.data(), b.data(), c.data(), nullptr, lda, ldb, ldc, m, n,
                                       0.5f, 2.f});
    EXPECT_LE(rel(c, ref), 1e-5) << "ta=" << ta << " tb=" << tb;
  }
}

TEST(CudaSettings, DefaultsFollowPyTorchAndSwitchesRoundTrip) {
  namespace cd = halo::kernels::cudnn;
  cd::reset_tf32_defaults();
  EXPECT_TRUE(cd::conv_tf32());
  EXPECT_FALSE(cd::matmul_tf32());
  cd::set_tf32(false);
  EXPECT_FALSE(cd::conv_tf32());
  EXPECT_FALSE(cd::matmul_tf32());
  cd::set_tf32(true);
  EXPECT_TRUE(cd::matmul_tf32());
  cd::reset_tf32_defaults();
  EXPECT_EQ(cd::workspace_limit(), std::size_t(256) << 20);
  EXPECT_EQ(cd::conv_algo_search(), cd::ConvAlgoSearch::heuristic);
  EXPECT_FALSE(cd::conv_exact_algorithms());
  for (auto b : {cd::Backend::handwritten, cd::Backend::vendor}) {
    cd::set_conv_backend(b);
    cd::set_batch_norm_backend(b);
    cd::set_gemm_backend(b);
    EXPECT_EQ(cd::conv_backend(), b);
    EXPECT_EQ(cd::batch_norm_backend(), b);
    EXPECT_EQ(cd::gemm_backend(), b);
  }
  cd::set_conv_backend(cd::default_backend());
  cd::set_batch_norm_backend(cd::default_backend());
  cd::set_gemm_backend(cd::default_backend());
}

// The shape tables reproduce the reference parameter and MAC counts, so the tests and benchmarks
// really run the three models' layers.
TEST(CudaShapeTables, MatchReferenceParameterAndMacCounts) {
  struct Expect {
    const char* model;
    long long params, macs;
  };
  const Expect expect[] = {{"resnet18", 11170753, 839265344},
                           {"resnet26", 13941953, 1094545984},
                           {"convnext_pico", 8531137, 547140736}};
  const auto models = shapes::all_models(1, 150);
  ASSERT_EQ(models.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& m = models[i];
    EXPECT_EQ(m.model, expect[i].model);
    long long params = 0, macs = 0;
    for (auto p : m.parameter_sizes) params += (long long)p;
    for (const auto& c : m.convs) macs += c.s.macs() * c.count;
    for (const auto& l : m.linears) macs += 1LL * l.s.in * l.s.out;
    EXPECT_EQ(params, expect[i].params) << m.model;
    EXPECT_EQ(macs, expect[i].macs) << m.model;
  }
}

}  // namespace
}  // namespace halo::test::cuda

#else

TEST(CudaTileOnCpu, SkippedWithoutCuda) {
  GTEST_SKIP() << "built without CUDA (HALO_CUDA=OFF or nvcc/cuDNN not found): the CUDA kernels' "
                  "host-side tests need the CUDA headers (a GPU build or -DHALO_CUDA=EMULATED)";
}

#endif  // HALO_HAVE_CUDA
