// CUDA convolution parity tests: the hand-written kernels (kernels/cuda/conv.cu) and cuDNN
// (kernels/cudnn/conv.cpp) against the CPU reference computed in double, forward (with and without
// bias), backward-data, backward-weight and bias gradient, at every convolution shape of
// ResNet-18, ResNet-26 and ConvNeXt-pico at batch 2 (on 150x150 on a GPU, 40x40 on the emulated
// device, where every layer and launcher branch still runs) and at odd shapes, TF32 off:
// max|gpu - cpu| / max|cpu| <= 1e-5. On the emulated device the hand-written passes run under two
// thread orders and must agree bit for bit; the cuDNN tests skip there (cuDNN needs a GPU).
// Skipped, saying why, where no device is usable.
#include <gtest/gtest.h>

#include <stdexcept>

#include "kernels/conv.h"
#include "kernels/cudnn/settings.h"

#ifdef HALO_HAVE_CUDA

#include <cctype>
#include <functional>
#include <map>

#include "tests/kernels/test_cuda_helpers.h"
#include "tests/kernels/test_cuda_shapes.h"

namespace halo::test::cuda {
namespace {

using shapes::ConvCase;
namespace kc = halo::kernels;

struct ConvData {
  std::vector<float> x, w, b, dy;
  std::vector<double> y, dx, dw, db;  // CPU reference in double from the same float inputs
};

// Inputs scaled like a trained network's (weights ~ 1/sqrt(fan_in)), reference computed once per
// case and shared by the hand-written and the cuDNN test.
const ConvData& data_for(const ConvCase& c) {
  static std::map<std::string, ConvData> cache;
  const std::string key = c.model + "/" + c.name;
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  const auto& s = c.s;
  ConvData d;
  const unsigned seed = unsigned(std::hash<std::string>{}(key));
  const float wscale = 1.f / std::sqrt(float(s.c_in_per_group() * s.kh * s.kw));
  d.x = random_floats(std::size_t(s.x_size()), seed);
  d.w = random_floats(std::size_t(s.w_size()), seed + 1, -wscale, wscale);
  d.b = random_floats(std::size_t(s.c_out), seed + 2);
  d.dy = random_floats(std::size_t(s.y_size()), seed + 3);
  const auto x = to_double(d.x), w = to_double(d.w), b = to_double(d.b), dy = to_double(d.dy);
  d.y.resize(d.dy.size());
  d.dx.resize(d.x.size());
  d.dw.resize(d.w.size());
  d.db.resize(d.b.size());
  kc::cpu::conv2d_forward<double>(s, x.data(), w.data(), c.bias ? b.data() : nullptr, d.y.data());
  kc::cpu::conv2d_backward_data<double>(s, dy.data(), w.data(), d.dx.data());
  kc::cpu::conv2d_backward_weight<double>(s, x.data(), dy.data(), d.dw.data());
  kc::cpu::conv2d_backward_bias<double>(s, dy.data(), d.db.data());
  return cache.emplace(key, std::move(d)).first->second;
}

enum class Impl { handwritten, cudnn };

struct ConvOut {
  std::vector<float> y, dx, dw, db;
  bool operator==(const ConvOut& o) const {
    return bitwise_equal(y, o.y) && bitwise_equal(dx, o.dx) && bitwise_equal(dw, o.dw) &&
           bitwise_equal(db, o.db);
  }
};

ConvOut run(Impl impl, const ConvCase& c, const ConvData& d) {
  const auto& s = c.s;
  DevF x(d.x), w(d.w), b(d.b), dy(d.dy);
  DevF y(d.y.size()), dx(d.dx.size()), dw(d.dw.size()), db(d.db.size());
  y.poison(), dx.poison(), dw.poison(), db.poison();
  const float* bias = c.bias ? b.get() : nullptr;
  if (impl == Impl::handwritten) {
    kc::cuda::conv2d_forward(s, x.get(), w.get(), bias, y.get(), nullptr);
    kc::cuda::conv2d_backward_data(s, dy.get(), w.get(), dx.get(), nullptr);
    kc::cuda::conv2d_backward_weight(s, x.get(), dy.get(), dw.get(), nullptr);
    kc::cuda::conv2d_backward_bias(s, dy.get(), db.get(), nullptr);
  } else {
    kc::cudnn::conv2d_forward(s, x.get(), w.get(), bias, y.get(), nullptr);
    kc::cudnn::conv2d_backward_data(s, dy.get(), w.get(), dx.get(), nullptr);
    kc::cudnn::conv2d_backward_weight(s, x.get(), dy.get(), dw.get(), nullptr);
    kc::cudnn::conv2d_backward_bias(s, dy.get(), db.get(), nullptr);
  }
  return {y.download(), dx.download(), dw.download(), db.download()};
}

void expect_parity(Impl impl, const ConvCase& c, double tol) {
  const ConvData& d = data_for(c);
  const ConvOut o = run(impl, c, d);
  const std::string what =
      (impl == Impl::handwritten ? "hand-written " : "cuDNN ") + c.model + "/" + c.name;
  EXPECT_LE(rel_error(o.y, d.y), tol) << what << " forward";
  EXPECT_LE(rel_error(o.dx, d.dx), tol) << what << " backward-data";
  EXPECT_LE(rel_error(o.dw, d.dw), tol) << what << " backward-weight";
  EXPECT_LE(rel_error(o.db, d.db), tol) << what << " bias gradient";
}

std::vector<ConvCase> model_cases() {
  std::vector<ConvCase> v;
  for (const auto& m : shapes::all_models(2, kModelImageSize))
    for (const auto& c : m.convs) v.push_back(c);
  return v;
}

std::string case_name(const ::testing::TestParamInfo<ConvCase>& info) {
  std::string n = info.param.model + "_" + info.param.name;
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n + "_" + std::to_string(info.index);
}

class CudaConvParity : public CudaTest, public ::testing::WithParamInterface<ConvCase> {};

TEST_P(CudaConvParity, HandwrittenMatchesCpu) {
  run_under_two_thread_orders([&] { expect_parity(Impl::handwritten, GetParam(), kTol); });
}
TEST_P(CudaConvParity, CudnnMatchesCpu) {
  HALO_REQUIRE_VENDOR_LIBRARIES();
  expect_parity(Impl::cudnn, GetParam(), kTol);
}

INSTANTIATE_TEST_SUITE_P(ModelsBatch2, CudaConvParity, ::testing::ValuesIn(model_cases()),
                         case_name);
INSTANTIATE_TEST_SUITE_P(Odd, CudaConvParity, ::testing::ValuesIn(shapes::odd_conv_cases()),
                         case_name);

class CudaConv : public CudaTest {};

// PyTorch's default policy (TF32 allowed for convolutions, any algorithm cuDNN prefers): every
// model shape must run, and agree to TF32 accuracy (10-bit mantissa: ~1e-3 relative).
TEST_F(CudaConv, CudnnDefaultPolicyRunsAtModelShapes) {
  HALO_REQUIRE_VENDOR_LIBRARIES();
  kc::cudnn::reset_tf32_defaults();
  kc::cudnn::set_conv_exact_algorithms(false);
  for (const ConvCase& c : model_cases()) expect_parity(Impl::cudnn, c, 5e-3);
}

// The timed algorithm search (cudnnFind*Ex) picks, per shape, an algorithm that is just as exact.
TEST_F(CudaConv, CudnnBenchmarkSearchMatchesCpu) {
  HALO_REQUIRE_VENDOR_LIBRARIES();
  kc::cudnn::set_conv_algo_search(kc::cudnn::ConvAlgoSearch::benchmark);
  const auto cases = model_cases();
  for (std::size_t i = 0; i < cases.size(); i += 5) expect_parity(Impl::cudnn, cases[i], kTol);
  kc::cudnn::clear_conv_plans();
}

// The hand-written passes are deterministic: split-K partial sums and per-channel reductions are
// added in a fixed order, so two runs agree bit for bit.
TEST_F(CudaConv, HandwrittenIsDeterministic) {
  for (const ConvCase& c : model_cases()) {
    if (c.name != "conv1" && c.name != "stages.0.blocks.0.conv_dw" && c.name != "layer4.0.conv2")
      continue;
    const ConvData& d = data_for(c);
    const ConvOut a = run(Impl::handwritten, c, d), b = run(Impl::handwritten, c, d);
    EXPECT_TRUE(bitwise_equal(a.y, b.y)) << c.model << "/" << c.name;
    EXPECT_TRUE(bitwise_equal(a.dx, b.dx)) << c.model << "/" << c.name;
    EXPECT_TRUE(bitwise_equal(a.dw, b.dw)) << c.model << "/" << c.name;
    EXPECT_TRUE(bitwise_equal(a.db, b.db)) << c.model << "/" << c.name;
  }
}

// cudnn::dispatch runs whichever implementation set_conv_backend names.
TEST_F(CudaConv, DispatchFollowsBackendSwitch) {
  const ConvCase c = model_cases()[1];
  const ConvData& d = data_for(c);
  DevF x(d.x), w(d.w), y(d.y.size());
  auto forward = [&](auto fn) {
    y.poison();
    fn(c.s, x.get(), w.get(), nullptr, y.get(), nullptr);
    return y.download();
  };
  const auto hand = forward(kc::cuda::conv2d_forward);
  kc::cudnn::set_conv_backend(kc::cudnn::Backend::handwritten);
  EXPECT_TRUE(bitwise_equal(forward(kc::cudnn::dispatch::conv2d_forward), hand));
  if (on_emulated_device()) {  // the vendor path says plainly that it needs a GPU
    kc::cudnn::set_conv_backend(kc::cudnn::Backend::vendor);
    try {
      forward(kc::cudnn::dispatch::conv2d_forward);
      ADD_FAILURE() << "cuDNN on the emulated device did not throw";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("need a real GPU"), std::string::npos) << e.what();
    }
    return;
  }
  const auto vendor = forward(kc::cudnn::conv2d_forward);
  kc::cudnn::set_conv_backend(kc::cudnn::Backend::vendor);
  EXPECT_TRUE(bitwise_equal(forward(kc::cudnn::dispatch::conv2d_forward), vendor));
}

// Work queued on a non-default stream lands in the same place.
TEST_F(CudaConv, RunsOnAStream) {
  const ConvCase c = model_cases()[2];
  const ConvData& d = data_for(c);
  cudaStream_t st = nullptr;
  HALO_CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  DevF x(d.x), w(d.w), y1(d.y.size()), y2(d.y.size());
  y1.poison(), y2.poison();
  kc::cuda::conv2d_forward(c.s, x.get(), w.get(), nullptr, y1.get(), st);
  if (!on_emulated_device())
    kc::cudnn::conv2d_forward(c.s, x.get(), w.get(), nullptr, y2.get(), st);
  HALO_CUDA_CHECK(cudaStreamSynchronize(st));
  HALO_CUDA_CHECK(cudaStreamDestroy(st));
  EXPECT_LE(rel_error(y1.download(), d.y), kTol);
  if (!on_emulated_device()) {
    EXPECT_LE(rel_error(y2.download(), d.y), kTol);
  }
}

}  // namespace
}  // namespace halo::test::cuda

#else

TEST(CudaConvParity, SkippedWithoutCuda) {
  GTEST_SKIP() << "built without CUDA (HALO_CUDA=OFF or nvcc/cuDNN not found): the CUDA "
                  "convolution tests need a GPU build or -DHALO_CUDA=EMULATED";
}

#endif  // HALO_HAVE_CUDA

// Bad shapes are refused before any CUDA call, so this runs (and must pass) without a GPU too.
TEST(CudaConvShapes, BadShapeThrowsBeforeTouchingTheGpu) {
#ifdef HALO_HAVE_CUDA
  halo::kernels::Conv2dShape s;
  s.c_in = 3, s.c_out = 4, s.groups = 2;  // groups must divide c_in
  EXPECT_THROW(halo::kernels::cuda::conv2d_forward(s, nullptr, nullptr, nullptr, nullptr, nullptr),
               std::invalid_argument);
#ifndef HALO_CUDA_EMULATED
  EXPECT_THROW(halo::kernels::cudnn::conv2d_forward(s, nullptr, nullptr, nullptr, nullptr, nullptr),
               std::invalid_argument);
#endif
  s.groups = 1, s.kh = 5, s.h = 2;  // kernel larger than the padded input
  EXPECT_THROW(halo::kernels::cuda::conv2d_backward_weight(s, nullptr, nullptr, nullptr, nullptr),
               std::invalid_argument);
#else
  GTEST_SKIP() << "built without CUDA (HALO_CUDA=OFF or nvcc/cuDNN not found)";
#endif
}
