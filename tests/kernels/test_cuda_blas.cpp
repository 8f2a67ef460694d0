// CUDA GEMM and linear-layer parity tests: the hand-written tiled SGEMM and cuBLAS against the
// CPU reference in double, all four transpose combinations, odd sizes, padded leading dimensions,
// alpha/beta (beta = 0 must overwrite a NaN), the models' head layers; and the TF32 switch.
// Skipped where no GPU is usable.
#include <gtest/gtest.h>

#include "kernels/blas.h"

#ifdef HALO_HAVE_CUDA

#include "tests/kernels/test_cuda_helpers.h"
#include "tests/kernels/test_cuda_shapes.h"

namespace halo::test::cuda {
namespace {

namespace kc = halo::kernels;
using GemmFn = void (*)(bool, bool, int, int, int, float, const float*, int, const float*, int,
                        float, float*, int, void*);

class CudaGemm : public CudaTest {};

struct GemmCase {
  bool ta, tb;
  int m, n, k, pad;  // pad: extra columns in every leading dimension
  float alpha, beta;
};

void check_gemm(GemmFn fn, const char* impl, const GemmCase& c) {
  const int rows_a = c.ta ? c.k : c.m, cols_a = c.ta ? c.m : c.k;
  const int rows_b = c.tb ? c.n : c.k, cols_b = c.tb ? c.k : c.n;
  const int lda = cols_a + c.pad, ldb = cols_b + c.pad, ldc = c.n + c.pad;
  const unsigned seed = unsigned(c.m * 131 + c.n * 17 + c.k + c.ta * 7 + c.tb * 3);
  const auto a = random_floats(std::size_t(rows_a) * lda, seed);
  const auto b = random_floats(std::size_t(rows_b) * ldb, seed + 1);
  auto c0 = random_floats(std::size_t(c.m) * ldc, seed + 2);
  if (c.beta == 0.f) std::fill(c0.begin(), c0.end(), NAN);  // must be overwritten, not scaled
  auto ref = to_double(c0);
  const auto ad = to_double(a), bd = to_double(b);
  kc::cpu::gemm<double>(c.ta, c.tb, c.m, c.n, c.k, c.alpha, ad.data(), lda, bd.data(), ldb, c.beta,
                        ref.data(), ldc);
  DevF ga(a), gb(b), gc(c0);
  fn(c.ta, c.tb, c.m, c.n, c.k, c.alpha, ga.get(), lda, gb.get(), ldb, c.beta, gc.get(), ldc,
     nullptr);
  auto got = gc.download();
  // Compare only the m x n block (the padding columns of C are not part of the product).
  std::vector<float> g2;
  std::vector<double> r2;
  for (int i = 0; i < c.m; ++i)
    for (int j = 0; j < c.n; ++j) {
      g2.push_back(got[std::size_t(i) * ldc + j]);
      r2.push_back(ref[std::size_t(i) * ldc + j]);
    }
  EXPECT_LE(rel_error(g2, r2), kTol)
      << impl << " gemm ta=" << c.ta << " tb=" << c.tb << " m=" << c.m << " n=" << c.n
      << " k=" << c.k << " pad=" << c.pad << " alpha=" << c.alpha << " beta=" << c.beta;
  // The padding columns are untouched.
  for (int i = 0; i < c.m; ++i)
    for (int j = c.n; j < ldc; ++j) {
      const float g = got[std::size_t(i) * ldc + j], o = c0[std::size_t(i) * ldc + j];
      EXPECT_TRUE(g == o || (std::isnan(g) && std::isnan(o))) << impl << " wrote padding";
    }
}

std::vector<GemmCase> gemm_cases() {
  std::vector<GemmCase> v;
  const int sizes[][3] = {{1, 1, 1},     {3, 7, 37},    {37, 3, 7},
                          {7, 37, 3},    {64, 128, 8},  {130, 257, 65},
                          {256, 1, 512}, {1, 512, 256}, {200, 300, 1000}};
  for (auto& s : sizes)
    for (int t = 0; t < 4; ++t) {
      v.push_back({bool(t & 1), bool(t & 2), s[0], s[1], s[2], 0, 1.f, 0.f});
      v.push_back({bool(t & 1), bool(t & 2), s[0], s[1], s[2], 3, -0.5f, 0.75f});
    }
  v.push_back({false, false, 5, 6, 0, 0, 1.f, 0.5f});  // k = 0: C = beta C
  return v;
}

TEST_F(CudaGemm, HandwrittenMatchesCpu) {
  run_under_two_thread_orders([&] {
    for (const auto& c : gemm_cases()) check_gemm(kc::cuda::gemm, "hand-written", c);
  });
}
TEST_F(CudaGemm, CublasMatchesCpu) {
  HALO_REQUIRE_VENDOR_LIBRARIES();
  for (const auto& c : gemm_cases()) check_gemm(kc::cudnn::gemm, "cuBLAS", c);
}

void check_linear(bool vendor, const kc::LinearShape& s, bool bias) {
  const unsigned seed = unsigned(s.n * 7 + s.in * 3 + s.out);
  const auto x = random_floats(std::size_t(s.n) * s.in, seed);
  const auto w = random_floats(std::size_t(s.out) * s.in, seed + 1, -0.1f, 0.1f);
  const auto b = random_floats(std::size_t(s.out), seed + 2);
  const auto dy = random_floats(std::size_t(s.n) * s.out, seed + 3);
  const auto xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy);
  std::vector<double> y(dy.size()), dx(x.size()), dw(w.size()), db(b.size());
  kc::cpu::linear_forward<double>(s, xd.data(), wd.data(), bias ? bd.data() : nullptr, y.data());
  kc::cpu::linear_backward<double>(s, xd.data(), wd.data(), dyd.data(), dx.data(), dw.data(),
                                   db.data());
  DevF gx(x), gw(w), gb(b), gdy(dy), gy(y.size()), gdx(dx.size()), gdw(dw.size()), gdb(db.size());
  gy.poison(), gdx.poison(), gdw.poison(), gdb.poison();
  auto fwd = vendor ? kc::cudnn::linear_forward : kc::cuda::linear_forward;
  auto bwd = vendor ? kc::cudnn::linear_backward : kc::cuda::linear_backward;
  fwd(s, gx.get(), gw.get(), bias ? gb.get() : nullptr, gy.get(), nullptr);
  bwd(s, gx.get(), gw.get(), gdy.get(), gdx.get(), gdw.get(), gdb.get(), nullptr);
  const char* impl = vendor ? "cuBLAS" : "hand-written";
  EXPECT_LE(rel_error(gy.download(), y), kTol)
      << impl << " linear forward " << s.n << "x" << s.in << "->" << s.out;
  EXPECT_LE(rel_error(gdx.download(), dx), kTol) << impl << " linear dx";
  EXPECT_LE(rel_error(gdw.download(), dw), kTol) << impl << " linear dw";
  EXPECT_LE(rel_error(gdb.download(), db), kTol) << impl << " linear db";
}

std::vector<kc::LinearShape> linear_cases() {
  std::vector<kc::LinearShape> v;
  for (const auto& m : shapes::all_models(2, kModelImageSize))
    for (const auto& l : m.linears) v.push_back(l.s);
  for (int n : {1, 3})
    for (int in : {1, 7, 37})
      for (int out : {1, 3, 37}) {
        kc::LinearShape s;
        s.n = n, s.in = in, s.out = out;
        v.push_back(s);
      }
  return v;
}

TEST_F(CudaGemm, LinearHandwrittenMatchesCpu) {
  run_under_two_thread_orders([&] {
    for (const auto& s : linear_cases())
      check_linear(false, s, true), check_linear(false, s, false);
  });
}
TEST_F(CudaGemm, LinearCublasMatchesCpu) {
  HALO_REQUIRE_VENDOR_LIBRARIES();
  for (const auto& s : linear_cases()) check_linear(true, s, true), check_linear(true, s, false);
}

TEST_F(CudaGemm, DispatchFollowsBackendSwitch) {
  const GemmCase c{false, true, 130, 257, 65, 0, 1.f, 0.f};
  kc::cudnn::set_gemm_backend(kc::cudnn::Backend::handwritten);
  check_gemm(kc::cudnn::dispatch::gemm, "dispatch(hand-written)", c);
  if (on_emulated_device()) return;  // no cuBLAS on the emulated device
  kc::cudnn::set_gemm_backend(kc::cudnn::Backend::vendor);
  check_gemm(kc::cudnn::dispatch::gemm, "dispatch(cuBLAS)", c);
}

// With matmul TF32 allowed, cuBLAS rounds the inputs to a 10-bit mantissa: on a GPU with TF32
// (compute capability >= 8.0) a 1024^3 product then differs from FP32 by well over 1e-5; with the
// switch off it is back within 1e-5. This shows the switch reaches cuBLAS.
TEST_F(CudaGemm, Tf32SwitchReachesCublas) {
  HALO_REQUIRE_VENDOR_LIBRARIES();
  int dev = 0, major = 0;
  HALO_CUDA_CHECK(cudaGetDevice(&dev));
  HALO_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  if (major < 8) GTEST_SKIP() << "no TF32 before compute capability 8.0";
  const int n = 1024;
  const auto a = random_floats(std::size_t(n) * n, 1), b = random_floats(std::size_t(n) * n, 2);
  std::vector<double> ref(std::size_t(n) * n);
  const auto ad = to_double(a), bd = to_double(b);
  kc::cpu::gemm<double>(false, false, n, n, n, 1.0, ad.data(), n, bd.data(), n, 0.0, ref.data(), n);
  DevF ga(a), gb(b), gc(ref.size());
  kc::cudnn::set_matmul_tf32(true);
  kc::cudnn::gemm(false, false, n, n, n, 1.f, ga.get(), n, gb.get(), n, 0.f, gc.get(), n, nullptr);
  const double err_tf32 = rel_error(gc.download(), ref);
  kc::cudnn::set_matmul_tf32(false);
  kc::cudnn::gemm(false, false, n, n, n, 1.f, ga.get(), n, gb.get(), n, 0.f, gc.get(), n, nullptr);
  const double err_fp32 = rel_error(gc.download(), ref);
  EXPECT_GT(err_tf32, 1e-5) << "TF32 on, yet FP32-exact: the switch did not reach cuBLAS";
  EXPECT_LE(err_fp32, kTol);
}

}  // namespace
}  // namespace halo::test::cuda

#else

TEST(CudaGemm, SkippedWithoutCuda) {
  GTEST_SKIP() << "built without CUDA (HALO_CUDA=OFF or nvcc/cuDNN not found): these CUDA tests "
                  "need a GPU build or -DHALO_CUDA=EMULATED";
}

#endif  // HALO_HAVE_CUDA
