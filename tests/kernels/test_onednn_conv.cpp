// Tests of the oneDNN convolutions (kernels/onednn/conv.cpp) against Halo's reference loops
// (kernels/cpu/conv_reference.cpp, in double) at the layer shapes of the three models on small
// images and at odd shapes, and of the CPU convolution switch (kernels/onednn/settings.h). In a
// build without oneDNN the parity tests skip, saying so, and the stand-ins must refuse clearly.
#include <gtest/gtest.h>

#include <cctype>
#include <limits>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/conv.h"
#include "kernels/onednn/settings.h"
#include "tests/common/compare.h"
#include "tests/common/gradcheck.h"
#include "tests/kernels/test_cuda_shapes.h"

namespace halo::kernels::onednn {
namespace {

using halo::test::close_rel;
using halo::test::random_vector;
using halo::test::shapes::ConvCase;

std::vector<float> to_float(const std::vector<double>& d) {
  return std::vector<float>(d.begin(), d.end());
}
std::vector<double> to_double(const std::vector<float>& f) {
  return std::vector<double>(f.begin(), f.end());
}
// Outputs start as NaN, so a pass that skips part of its output (or adds into it) fails.
std::vector<float> nan_vector(long long n) {
  return std::vector<float>(n, std::numeric_limits<float>::quiet_NaN());
}

ConvCase odd_case(const std::string& name, int n, int c_in, int h, int w, int c_out, int k,
                  int stride, int pad, int groups, bool bias) {
  Conv2dShape s;
  s.n = n, s.c_in = c_in, s.h = h, s.w = w, s.c_out = c_out, s.kh = k, s.kw = k;
  s.stride = stride, s.pad = pad, s.groups = groups;
  return {"odd", name, s, bias, 1};
}

// Every convolution shape of ResNet-18, ResNet-26 and ConvNeXt-pico on a 32x32 image (the
// smallest the models take; 7x7/2 stem, 3x3/1 and /2, 1x1/2 shortcuts, 4x4/4 patch stem, 2x2/2
// downsampling, 7x7 depthwise, 1x1 pointwise) at batch 2, the odd shapes of the CUDA tests, and
// a few more: batches 1 and 3, h != w, pad > 0 with stride 2, groups = 2 (neither dense nor
// depthwise), each with and without bias.
std::vector<ConvCase> cases() {
  std::vector<ConvCase> v;
  for (const auto& m : halo::test::shapes::all_models(2, 32))
    for (const ConvCase& c : m.convs) v.push_back(c);
  for (const ConvCase& c : halo::test::shapes::odd_conv_cases()) v.push_back(c);
  v.push_back(odd_case("n1_stem_like_k7_s2_p3", 1, 1, 20, 20, 8, 7, 2, 3, 1, false));
  v.push_back(odd_case("n3_k3_s2_p1_nonsquare", 3, 5, 11, 17, 6, 3, 2, 1, 1, true));
  v.push_back(odd_case("n3_k3_s2_p2_nonsquare", 3, 4, 9, 6, 5, 3, 2, 2, 1, false));
  v.push_back(odd_case("n2_groups2", 2, 8, 10, 9, 6, 3, 1, 1, 2, true));
  v.push_back(odd_case("n3_groups2_s2_p1", 3, 6, 12, 12, 10, 3, 2, 1, 2, false));
  v.push_back(odd_case("n1_dw_k7_p3_20", 1, 16, 20, 20, 16, 7, 1, 3, 16, true));
  v.push_back(odd_case("n3_pointwise_20", 3, 16, 20, 20, 64, 1, 1, 0, 1, true));
  return v;
}

class OneDnnConv : public ::testing::TestWithParam<ConvCase> {
 protected:
  void SetUp() override {
    if (!available()) GTEST_SKIP() << "built without oneDNN";
  }
};

// Tolerance as max|oneDNN - reference| / max|reference| (close_rel), the reference in double:
// oneDNN sums the same products in float32 in its own blocked order, up to a few thousand terms
// here, so ~sqrt(n) u (u = 6e-8) relative to the result's scale, a few 1e-6 at most; 1e-4
// leaves a wide margin, and a wrong index or a missed tile gives O(1).
constexpr double kTol = 1e-4;

TEST_P(OneDnnConv, MatchesReferenceAndOverwritesOutputs) {
  const ConvCase& c = GetParam();
  const Conv2dShape& s = c.s;
  const auto xd = random_vector(s.x_size(), 1), wd = random_vector(s.w_size(), 2),
             bd = random_vector(s.c_out, 3), dyd = random_vector(s.y_size(), 4);
  const auto x = to_float(xd), w = to_float(wd), b = to_float(bd), dy = to_float(dyd);

  // Forward, with the bias when the model's layer has one (both are covered over the cases).
  std::vector<double> y_ref(s.y_size());
  cpu::conv2d_forward_reference<double>(s, xd.data(), wd.data(), c.bias ? bd.data() : nullptr,
                                        y_ref.data());
  auto y = nan_vector(s.y_size());
  conv2d_forward(s, x.data(), w.data(), c.bias ? b.data() : nullptr, y.data());
  EXPECT_TRUE(close_rel(y, y_ref, kTol, c.bias ? "forward with bias" : "forward without bias"));

  std::vector<double> dx_ref(s.x_size());
  cpu::conv2d_backward_data_reference<double>(s, dyd.data(), wd.data(), dx_ref.data());
  auto dx = nan_vector(s.x_size());
  conv2d_backward_data(s, dy.data(), w.data(), dx.data());
  EXPECT_TRUE(close_rel(dx, dx_ref, kTol, "backward data"));

  std::vector<double> dw_ref(s.w_size());
  cpu::conv2d_backward_weight_reference<double>(s, xd.data(), dyd.data(), dw_ref.data());
  auto dw = nan_vector(s.w_size());
  conv2d_backward_weight(s, x.data(), dy.data(), dw.data());
  EXPECT_TRUE(close_rel(dw, dw_ref, kTol, "backward weight"));

  // The second call of each pass runs the cached plan (primitives, reorders, reused buffers) on
  // fresh NaN outputs: bit for bit the first call's result.
  auto y2 = nan_vector(s.y_size()), dx2 = nan_vector(s.x_size()), dw2 = nan_vector(s.w_size());
  conv2d_forward(s, x.data(), w.data(), c.bias ? b.data() : nullptr, y2.data());
  conv2d_backward_data(s, dy.data(), w.data(), dx2.data());
  conv2d_backward_weight(s, x.data(), dy.data(), dw2.data());
  EXPECT_EQ(y2, y);
  EXPECT_EQ(dx2, dx);
  EXPECT_EQ(dw2, dw);

  // The other bias choice of the same shape: another cached plan.
  cpu::conv2d_forward_reference<double>(s, xd.data(), wd.data(), c.bias ? nullptr : bd.data(),
                                        y_ref.data());
  y = nan_vector(s.y_size());
  conv2d_forward(s, x.data(), w.data(), c.bias ? nullptr : b.data(), y.data());
  EXPECT_TRUE(close_rel(y, y_ref, kTol, c.bias ? "forward without bias" : "forward with bias"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, OneDnnConv, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<ConvCase>& info) {
                           std::string name = info.param.model + "_" + info.param.name;
                           for (char& ch : name)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name + "_" + std::to_string(info.index);
                         });

// Between calls of other shapes the shared scratch buffers are reused by other plans: a shape run
// again after them still gives its first result (nothing stale is read from a buffer).
TEST(OneDnnConvCache, InterleavedShapesGiveTheSameResults) {
  if (!available()) GTEST_SKIP() << "built without oneDNN";
  const auto a = odd_case("a", 2, 16, 12, 12, 32, 3, 1, 1, 1, true).s;
  const auto big = odd_case("big", 2, 32, 20, 20, 64, 3, 2, 1, 1, false).s;
  const auto x = to_float(random_vector(a.x_size(), 5)), w = to_float(random_vector(a.w_size(), 6)),
             b = to_float(random_vector(a.c_out, 7));
  const auto xb = to_float(random_vector(big.x_size(), 8)),
             wb = to_float(random_vector(big.w_size(), 9));
  auto y1 = nan_vector(a.y_size()), y2 = nan_vector(a.y_size()), yb = nan_vector(big.y_size());
  conv2d_forward(a, x.data(), w.data(), b.data(), y1.data());
  conv2d_forward(big, xb.data(), wb.data(), nullptr, yb.data());
  auto dxb = nan_vector(big.x_size());
  conv2d_backward_data(big, yb.data(), wb.data(), dxb.data());
  conv2d_forward(a, x.data(), w.data(), b.data(), y2.data());
  EXPECT_EQ(y1, y2);
}

TEST(OneDnnConvShapeCheck, RejectsBadShapesNamingOpAndShape) {
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
    if (!available()) {  // the stand-ins refuse every call, whatever the shape
      EXPECT_THROW(conv2d_forward(s, buf.data(), buf.data(), nullptr, buf.data()),
                   std::runtime_error);
      continue;
    }
    try {
      conv2d_forward(s, buf.data(), buf.data(), nullptr, buf.data());
      ADD_FAILURE() << "conv2d_forward accepted a bad shape";
    } catch (const std::invalid_argument& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("conv2d_forward"), std::string::npos) << m;
      EXPECT_NE(m.find("c_in=4"), std::string::npos) << m;
    }
    EXPECT_THROW(conv2d_backward_data(s, buf.data(), buf.data(), buf.data()),
                 std::invalid_argument);
    EXPECT_THROW(conv2d_backward_weight(s, buf.data(), buf.data(), buf.data()),
                 std::invalid_argument);
  }
}

TEST(OneDnnUnavailable, StandInsSayHowToGetOneDnn) {
  if (available()) GTEST_SKIP() << "built with oneDNN: the stand-ins are not compiled";
  Conv2dShape s;
  std::vector<float> buf(16, 0.f);
  try {
    conv2d_backward_weight(s, buf.data(), buf.data(), buf.data());
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("built without oneDNN"), std::string::npos) << e.what();
  }
  EXPECT_EQ(default_cpu_conv_kernels(), CpuConvKernels::halo);
  EXPECT_THROW(set_cpu_conv_kernels(CpuConvKernels::onednn), std::runtime_error);
  EXPECT_EQ(cpu_conv_kernels(), CpuConvKernels::halo);
}

TEST(OneDnnSettings, ParseNamesAndScopes) {
  EXPECT_EQ(parse_cpu_conv_kernels("halo"), CpuConvKernels::halo);
  EXPECT_EQ(parse_cpu_conv_kernels("onednn"), CpuConvKernels::onednn);
  EXPECT_EQ(parse_cpu_conv_kernels("fastest"), CpuConvKernels::fastest);
  EXPECT_STREQ(to_string(CpuConvKernels::halo), "halo");
  EXPECT_STREQ(to_string(CpuConvKernels::onednn), "onednn");
  EXPECT_STREQ(to_string(CpuConvKernels::fastest), "fastest");
  try {
    parse_cpu_conv_kernels("mkl");
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("expected halo, onednn or fastest"), std::string::npos);
  }
  EXPECT_EQ(default_cpu_conv_kernels(),
            available() ? CpuConvKernels::onednn : CpuConvKernels::halo);
  const CpuConvKernels before = cpu_conv_kernels();
  {
    ScopedCpuConvKernels scope(CpuConvKernels::halo);
    EXPECT_EQ(cpu_conv_kernels(), CpuConvKernels::halo);
  }
  EXPECT_EQ(cpu_conv_kernels(), before);
}

}  // namespace
}  // namespace halo::kernels::onednn
