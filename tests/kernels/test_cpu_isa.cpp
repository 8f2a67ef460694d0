// Tests of the CPU kernels' instruction-set dispatch (kernels/cpu/isa.h, kernels/cpu/dispatch.cpp):
// the names round-trip, a variant the CPU lacks is refused with a message that says so, and within
// one process every variant this CPU supports computes a convolution, a GEMM and GELU that match
// the baseline's (the full suites run once per variant through HALO_TEST_CPU_ISA, see
// tests/CMakeLists.txt; this file checks that switching variants really changes the code that
// runs).
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/activation.h"
#include "kernels/blas.h"
#include "kernels/conv.h"
#include "kernels/cpu/isa.h"
#include "tests/common/compare.h"
#include "tests/common/gradcheck.h"

namespace halo::kernels::cpu {
namespace {

using halo::test::close_rel;
using halo::test::random_vector;

// Restores the variant in use when a test ends.
struct IsaGuard {
  Isa saved = isa();
  ~IsaGuard() { set_isa(saved); }
};

TEST(CpuIsa, NamesRoundTripAndBadNamesAreRefused) {
  for (Isa v : {Isa::sse2, Isa::avx2, Isa::avx512}) EXPECT_EQ(parse_isa(isa_name(v)), v);
  try {
    parse_isa("avx3");
    FAIL() << "parse_isa accepted avx3";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("expected sse2, avx2 or avx512"), std::string::npos)
        << e.what();
  }
}

TEST(CpuIsa, SupportedListStartsWithTheBaselineAndEndsWithTheBest) {
  const std::vector<Isa> all = supported_isas();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.front(), Isa::sse2);
  EXPECT_EQ(all.back(), best_isa());
  EXPECT_TRUE(isa_supported(isa()));
}

TEST(CpuIsa, AnUnsupportedVariantIsRefused) {
  IsaGuard guard;
  for (Isa v : {Isa::sse2, Isa::avx2, Isa::avx512}) {
    if (isa_supported(v)) {
      EXPECT_NO_THROW(set_isa(v));
      EXPECT_EQ(isa(), v);
      continue;
    }
    try {
      set_isa(v);
      FAIL() << "set_isa accepted " << isa_name(v) << ", which this CPU lacks";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("does not support"), std::string::npos) << e.what();
    }
  }
}

// A 3x3 convolution, a transposed GEMM and GELU on each supported variant, against the reference
// loops (conv) and the baseline variant (GEMM, GELU). The variants differ in rounding (FMA, the
// order of vector sums), so equality is not expected; 1e-5 relative is float's accumulation error.
TEST(CpuIsa, EverySupportedVariantMatchesTheReference) {
  IsaGuard guard;
  Conv2dShape s;
  s.n = 3, s.c_in = 8, s.h = 13, s.w = 11, s.c_out = 16, s.kh = 3, s.kw = 3, s.stride = 1,
  s.pad = 1;
  const std::vector<double> xd = random_vector(s.x_size(), 1), wd = random_vector(s.w_size(), 2);
  const std::vector<float> x(xd.begin(), xd.end()), w(wd.begin(), wd.end());
  std::vector<float> ref(s.y_size());
  conv2d_forward_reference<float>(s, x.data(), w.data(), nullptr, ref.data());

  const int m = 37, n = 29, k = 53;
  const std::vector<double> ad = random_vector(k * m, 3), bd = random_vector(k * n, 4);
  const std::vector<float> a(ad.begin(), ad.end()), b(bd.begin(), bd.end());
  std::vector<float> c_base(m * n), gelu_base(1000);
  const std::vector<double> gd = random_vector(gelu_base.size(), 5, -5.0, 5.0);
  const std::vector<float> g(gd.begin(), gd.end());
  set_isa(Isa::sse2);
  gemm<float>(true, false, m, n, k, 1.0f, a.data(), m, b.data(), n, 0.0f, c_base.data(), n);
  gelu_forward<float>(g.size(), g.data(), gelu_base.data());

  for (Isa v : supported_isas()) {
    SCOPED_TRACE(isa_name(v));
    set_isa(v);
    std::vector<float> y(s.y_size(), std::nanf("")), c(m * n, std::nanf("")),
        gy(g.size(), std::nanf(""));
    conv2d_forward<float>(s, x.data(), w.data(), nullptr, y.data());
    gemm<float>(true, false, m, n, k, 1.0f, a.data(), m, b.data(), n, 0.0f, c.data(), n);
    gelu_forward<float>(g.size(), g.data(), gy.data());
    EXPECT_TRUE(close_rel(y, ref, 1e-5, "conv2d_forward"));
    EXPECT_TRUE(close_rel(c, c_base, 1e-5, "gemm"));
    EXPECT_TRUE(close_rel(gy, gelu_base, 1e-6, "gelu_forward"));
  }
}

}  // namespace
}  // namespace halo::kernels::cpu
