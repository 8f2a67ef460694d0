// CUDA normalisation parity tests: batch norm (hand-written and cuDNN) and layer norm over
// channels (hand-written) against the CPU reference in double: training forward with the
// running-statistics update, eval forward, training and eval backward, at the shapes of the three
// models on 150x150 at batch 2 and at odd shapes, with inputs far from zero mean (x = 5 + U(-1, 1))
// to exercise the numerical stability of the variance. Skipped where no GPU is usable.
#include <gtest/gtest.h>

#include "kernels/norm.h"

#ifdef HALO_HAVE_CUDA

#include <cctype>
#include <functional>
#include <map>

#include "tests/kernels/test_cuda_helpers.h"
#include "tests/kernels/test_cuda_shapes.h"

namespace halo::test::cuda {
namespace {

using shapes::NormCase;
namespace kc = halo::kernels;

constexpr float kBnEps = 1e-5f, kMomentum = 0.1f, kLnEps = 1e-6f;

std::string case_name(const ::testing::TestParamInfo<NormCase>& info) {
  std::string n = info.param.model + "_" + info.param.name;
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n + "_" + std::to_string(info.index);
}

unsigned seed_of(const NormCase& c) {
  return unsigned(std::hash<std::string>{}(c.model + c.name));
}

// ---- batch norm ---------------------------------------------------------------------------------

struct BnData {
  std::vector<float> x, gamma, beta, rm, rv, dy;
  // reference
  std::vector<double> y, mean, invstd, rm_new, rv_new, y_eval;
  std::vector<double> dx, dgamma, dbeta;        // training backward
  std::vector<double> dx_e, dgamma_e, dbeta_e;  // eval backward (statistics = running stats)
  std::vector<double> eval_invstd;              // 1/sqrt(rv + eps)
};

BnData bn_data(const NormCase& c) {
  const auto& s = c.s;
  const unsigned seed = seed_of(c);
  BnData d;
  d.x = random_floats(std::size_t(s.size()), seed, 4.f, 6.f);
  d.gamma = random_floats(std::size_t(s.c), seed + 1, 0.5f, 1.5f);
  d.beta = random_floats(std::size_t(s.c), seed + 2);
  d.rm = random_floats(std::size_t(s.c), seed + 3);
  d.rv = random_floats(std::size_t(s.c), seed + 4, 0.5f, 2.f);
  d.dy = random_floats(std::size_t(s.size()), seed + 5);
  const auto x = to_double(d.x), g = to_double(d.gamma), b = to_double(d.beta),
             dy = to_double(d.dy);
  d.rm_new = to_double(d.rm);
  d.rv_new = to_double(d.rv);
  const std::size_t n = d.x.size(), C = std::size_t(s.c);
  d.y.resize(n), d.mean.resize(C), d.invstd.resize(C), d.y_eval.resize(n);
  d.dx.resize(n), d.dgamma.resize(C), d.dbeta.resize(C);
  d.dx_e.resize(n), d.dgamma_e.resize(C), d.dbeta_e.resize(C), d.eval_invstd.resize(C);
  kc::cpu::batch_norm_forward_train<double>(s, x.data(), g.data(), b.data(), kBnEps, kMomentum,
                                            d.rm_new.data(), d.rv_new.data(), d.y.data(),
                                            d.mean.data(), d.invstd.data());
  const auto rm = to_double(d.rm), rv = to_double(d.rv);
  kc::cpu::batch_norm_forward_eval<double>(s, x.data(), g.data(), b.data(), rm.data(), rv.data(),
                                           kBnEps, d.y_eval.data());
  // The GPU gets the statistics rounded to float; give the reference the same values.
  std::vector<double> mean_f(C), invstd_f(C);
  for (std::size_t i = 0; i < C; ++i) {
    mean_f[i] = float(d.mean[i]);
    invstd_f[i] = float(d.invstd[i]);
    d.eval_invstd[i] = float(1.0 / std::sqrt(double(d.rv[i]) + double(kBnEps)));
  }
  kc::cpu::batch_norm_backward<double>(s, x.data(), dy.data(), g.data(), mean_f.data(),
                                       invstd_f.data(), true, d.dx.data(), d.dgamma.data(),
                                       d.dbeta.data());
  kc::cpu::batch_norm_backward<double>(s, x.data(), dy.data(), g.data(), rm.data(),
                                       d.eval_invstd.data(), false, d.dx_e.data(),
                                       d.dgamma_e.data(), d.dbeta_e.data());
  return d;
}

std::vector<float> to_float(const std::vector<double>& v) {
  return std::vector<float>(v.begin(), v.end());
}

enum class Impl { handwritten, cudnn };

void expect_bn_parity(Impl impl, const NormCase& c) {
  const auto& s = c.s;
  const bool hand = impl == Impl::handwritten;
  const std::string what = std::string(hand ? "hand-written " : "cuDNN ") + c.model + "/" + c.name;
  const BnData d = bn_data(c);
  const std::size_t n = d.x.size(), C = std::size_t(s.c);
  DevF x(d.x), gamma(d.gamma), beta(d.beta), rm(d.rm), rv(d.rv), dy(d.dy);
  DevF y(n), mean(C), invstd(C), dx(n), dgamma(C), dbeta(C);

  y.poison(), mean.poison(), invstd.poison();
  (hand ? kc::cuda::batch_norm_forward_train : kc::cudnn::batch_norm_forward_train)(
      s, x.get(), gamma.get(), beta.get(), kBnEps, kMomentum, rm.get(), rv.get(), y.get(),
      mean.get(), invstd.get(), nullptr);
  EXPECT_LE(rel_error(y.download(), d.y), kTol) << what << " train forward y";
  EXPECT_LE(rel_error(mean.download(), d.mean), kTol) << what << " saved mean";
  EXPECT_LE(rel_error(invstd.download(), d.invstd), kTol) << what << " saved invstd";
  EXPECT_LE(rel_error(rm.download(), d.rm_new), kTol) << what << " running mean";
  EXPECT_LE(rel_error(rv.download(), d.rv_new), kTol) << what << " running var (unbiased)";

  rm.upload(d.rm), rv.upload(d.rv);
  y.poison();
  (hand ? kc::cuda::batch_norm_forward_eval : kc::cudnn::batch_norm_forward_eval)(
      s, x.get(), gamma.get(), beta.get(), rm.get(), rv.get(), kBnEps, y.get(), nullptr);
  EXPECT_LE(rel_error(y.download(), d.y_eval), kTol) << what << " eval forward";

  auto backward = hand ? kc::cuda::batch_norm_backward : kc::cudnn::batch_norm_backward;
  mean.upload(to_float(d.mean)), invstd.upload(to_float(d.invstd));
  dx.poison(), dgamma.poison(), dbeta.poison();
  backward(s, x.get(), dy.get(), gamma.get(), mean.get(), invstd.get(), true, dx.get(),
           dgamma.get(), dbeta.get(), nullptr);
  EXPECT_LE(rel_error(dx.download(), d.dx), kTol) << what << " train backward dx";
  EXPECT_LE(rel_error(dgamma.download(), d.dgamma), kTol) << what << " train backward dgamma";
  EXPECT_LE(rel_error(dbeta.download(), d.dbeta), kTol) << what << " train backward dbeta";

  mean.upload(d.rm), invstd.upload(to_float(d.eval_invstd));
  dx.poison(), dgamma.poison(), dbeta.poison();
  backward(s, x.get(), dy.get(), gamma.get(), mean.get(), invstd.get(), false, dx.get(),
           dgamma.get(), dbeta.get(), nullptr);
  EXPECT_LE(rel_error(dx.download(), d.dx_e), kTol) << what << " eval backward dx";
  EXPECT_LE(rel_error(dgamma.download(), d.dgamma_e), kTol) << what << " eval backward dgamma";
  EXPECT_LE(rel_error(dbeta.download(), d.dbeta_e), kTol) << what << " eval backward dbeta";
}

std::vector<NormCase> bn_model_cases() {
  std::vector<NormCase> v;
  for (const auto& m : shapes::all_models(2, kModelImageSize))
    for (const auto& c : m.batch_norms) v.push_back(c);
  return v;
}
std::vector<NormCase> ln_model_cases() {
  std::vector<NormCase> v;
  for (const auto& m : shapes::all_models(2, kModelImageSize))
    for (const auto& c : m.layer_norms) v.push_back(c);
  return v;
}

class CudaBatchNormParity : public CudaTest, public ::testing::WithParamInterface<NormCase> {};

TEST_P(CudaBatchNormParity, HandwrittenMatchesCpu) {
  run_under_two_thread_orders([&] { expect_bn_parity(Impl::handwritten, GetParam()); });
}
TEST_P(CudaBatchNormParity, CudnnMatchesCpu) {
  HALO_REQUIRE_VENDOR_LIBRARIES();
  if (1LL * GetParam().s.n * GetParam().s.hw < 2)
    GTEST_SKIP() << "batch norm over a single value per channel (PyTorch rejects it in training)";
  expect_bn_parity(Impl::cudnn, GetParam());
}

INSTANTIATE_TEST_SUITE_P(ModelsBatch2, CudaBatchNormParity, ::testing::ValuesIn(bn_model_cases()),
                         case_name);
INSTANTIATE_TEST_SUITE_P(Odd, CudaBatchNormParity, ::testing::ValuesIn(shapes::odd_norm_cases()),
                         case_name);

class CudaBatchNorm : public CudaTest {};

// Without affine parameters, running statistics or saved statistics (all nullptr), both
// implementations still normalise correctly.
TEST_F(CudaBatchNorm, NullOptionalArguments) {
  kc::NormShape s;
  s.n = 2, s.c = 7, s.hw = 37;
  const auto xf = random_floats(std::size_t(s.size()), 11, 4.f, 6.f);
  const auto x = to_double(xf);
  std::vector<double> ref(x.size());
  kc::cpu::batch_norm_forward_train<double>(s, x.data(), nullptr, nullptr, kBnEps, kMomentum,
                                            nullptr, nullptr, ref.data(), nullptr, nullptr);
  for (auto fn : {kc::cuda::batch_norm_forward_train, kc::cudnn::batch_norm_forward_train}) {
    if (on_emulated_device() && fn == kc::cudnn::batch_norm_forward_train) continue;
    DevF dx(xf), y(xf.size());
    y.poison();
    fn(s, dx.get(), nullptr, nullptr, kBnEps, kMomentum, nullptr, nullptr, y.get(), nullptr,
       nullptr, nullptr);
    EXPECT_LE(rel_error(y.download(), ref), kTol);
  }
  // Only dgamma (no dx, no dbeta) in training mode: the parameters-only backward.
  const auto dyf = random_floats(xf.size(), 12);
  const auto dyd = to_double(dyf);
  std::vector<double> mean(7), invstd(7), dgamma(7), tmp(x.size());
  kc::cpu::batch_norm_forward_train<double>(s, x.data(), nullptr, nullptr, kBnEps, kMomentum,
                                            nullptr, nullptr, tmp.data(), mean.data(),
                                            invstd.data());
  for (auto& v : mean) v = float(v);
  for (auto& v : invstd) v = float(v);
  kc::cpu::batch_norm_backward<double>(s, x.data(), dyd.data(), nullptr, mean.data(), invstd.data(),
                                       true, nullptr, dgamma.data(), nullptr);
  for (auto fn : {kc::cuda::batch_norm_backward, kc::cudnn::batch_norm_backward}) {
    if (on_emulated_device() && fn == kc::cudnn::batch_norm_backward) continue;
    DevF dx(xf), ddy(dyf), dm(to_float(mean)), di(to_float(invstd)), dg(7);
    dg.poison();
    fn(s, dx.get(), ddy.get(), nullptr, dm.get(), di.get(), true, nullptr, dg.get(), nullptr,
       nullptr);
    EXPECT_LE(rel_error(dg.download(), dgamma), kTol);
  }
}

TEST_F(CudaBatchNorm, DispatchFollowsBackendSwitch) {
  const NormCase c = bn_model_cases()[0];
  const BnData d = bn_data(c);
  DevF x(d.x), g(d.gamma), b(d.beta), y(d.x.size());
  auto run = [&] {
    y.poison();
    kc::cudnn::dispatch::batch_norm_forward_train(c.s, x.get(), g.get(), b.get(), kBnEps, kMomentum,
                                                  nullptr, nullptr, y.get(), nullptr, nullptr,
                                                  nullptr);
    return y.download();
  };
  auto direct = [&](auto fn) {
    y.poison();
    fn(c.s, x.get(), g.get(), b.get(), kBnEps, kMomentum, nullptr, nullptr, y.get(), nullptr,
       nullptr, nullptr);
    return y.download();
  };
  kc::cudnn::set_batch_norm_backend(kc::cudnn::Backend::handwritten);
  EXPECT_TRUE(bitwise_equal(run(), direct(kc::cuda::batch_norm_forward_train)));
  if (on_emulated_device()) return;  // no cuDNN on the emulated device
  kc::cudnn::set_batch_norm_backend(kc::cudnn::Backend::vendor);
  EXPECT_TRUE(bitwise_equal(run(), direct(kc::cudnn::batch_norm_forward_train)));
}

TEST_F(CudaBatchNorm, HandwrittenIsDeterministic) {
  const NormCase c = bn_model_cases()[0];  // 64 x 75 x 75 at batch 2: several splits per channel
  const BnData d = bn_data(c);
  DevF x(d.x), g(d.gamma), b(d.beta), dy(d.dy), y(d.x.size()), mean(std::size_t(c.s.c)),
      invstd(std::size_t(c.s.c)), dx(d.x.size()), dgamma(std::size_t(c.s.c));
  auto once = [&] {
    kc::cuda::batch_norm_forward_train(c.s, x.get(), g.get(), b.get(), kBnEps, kMomentum, nullptr,
                                       nullptr, y.get(), mean.get(), invstd.get(), nullptr);
    kc::cuda::batch_norm_backward(c.s, x.get(), dy.get(), g.get(), mean.get(), invstd.get(), true,
                                  dx.get(), dgamma.get(), nullptr, nullptr);
    return std::make_pair(y.download(), std::make_pair(dx.download(), dgamma.download()));
  };
  const auto a = once(), bb = once();
  EXPECT_TRUE(bitwise_equal(a.first, bb.first));
  EXPECT_TRUE(bitwise_equal(a.second.first, bb.second.first));
  EXPECT_TRUE(bitwise_equal(a.second.second, bb.second.second));
}

// ---- layer norm over channels -------------------------------------------------------------------

class CudaLayerNormParity : public CudaTest, public ::testing::WithParamInterface<NormCase> {};

void expect_ln_parity(const NormCase& c, bool affine) {
  const auto& s = c.s;
  const std::string what =
      "hand-written " + c.model + "/" + c.name + (affine ? "" : " (no affine)");
  const unsigned seed = seed_of(c);
  const auto xf = random_floats(std::size_t(s.size()), seed, 4.f, 6.f);
  const auto gf = random_floats(std::size_t(s.c), seed + 1, 0.5f, 1.5f);
  const auto bf = random_floats(std::size_t(s.c), seed + 2);
  const auto dyf = random_floats(std::size_t(s.size()), seed + 3);
  const auto x = to_double(xf), g = to_double(gf), b = to_double(bf), dy = to_double(dyf);
  const std::size_t n = xf.size(), C = std::size_t(s.c), P = std::size_t(1LL * s.n * s.hw);
  std::vector<double> y(n), mean(P), invstd(P), dx(n), dgamma(C), dbeta(C);
  kc::cpu::layer_norm2d_forward<double>(s, x.data(), affine ? g.data() : nullptr,
                                        affine ? b.data() : nullptr, kLnEps, y.data(), mean.data(),
                                        invstd.data());
  for (auto& v : mean) v = float(v);
  for (auto& v : invstd) v = float(v);
  kc::cpu::layer_norm2d_backward<double>(s, x.data(), dy.data(), affine ? g.data() : nullptr,
                                         mean.data(), invstd.data(), dx.data(), dgamma.data(),
                                         dbeta.data());

  DevF dx_(xf), dg(gf), db(bf), ddy(dyf), dy_out(n), dmean(P), dinv(P), ddx(n), ddg(C), ddb(C);
  dy_out.poison(), dmean.poison(), dinv.poison();
  kc::cuda::layer_norm2d_forward(s, dx_.get(), affine ? dg.get() : nullptr,
                                 affine ? db.get() : nullptr, kLnEps, dy_out.get(), dmean.get(),
                                 dinv.get(), nullptr);
  EXPECT_LE(rel_error(dy_out.download(), y), kTol) << what << " forward y";
  EXPECT_LE(rel_error(dmean.download(), mean), kTol) << what << " saved mean";
  EXPECT_LE(rel_error(dinv.download(), invstd), kTol) << what << " saved invstd";

  dmean.upload(to_float(mean)), dinv.upload(to_float(invstd));
  ddx.poison(), ddg.poison(), ddb.poison();
  kc::cuda::layer_norm2d_backward(s, dx_.get(), ddy.get(), affine ? dg.get() : nullptr, dmean.get(),
                                  dinv.get(), ddx.get(), ddg.get(), ddb.get(), nullptr);
  EXPECT_LE(rel_error(ddx.download(), dx), kTol) << what << " backward dx";
  EXPECT_LE(rel_error(ddg.download(), dgamma), kTol) << what << " backward dgamma";
  EXPECT_LE(rel_error(ddb.download(), dbeta), kTol) << what << " backward dbeta";
}

TEST_P(CudaLayerNormParity, HandwrittenMatchesCpu) {
  run_under_two_thread_orders([&] { expect_ln_parity(GetParam(), true); });
}
TEST_P(CudaLayerNormParity, HandwrittenWithoutAffineMatchesCpu) {
  run_under_two_thread_orders([&] { expect_ln_parity(GetParam(), false); });
}

INSTANTIATE_TEST_SUITE_P(ModelsBatch2, CudaLayerNormParity, ::testing::ValuesIn(ln_model_cases()),
                         case_name);
INSTANTIATE_TEST_SUITE_P(Odd, CudaLayerNormParity, ::testing::ValuesIn(shapes::odd_norm_cases()),
                         case_name);

}  // namespace
}  // namespace halo::test::cuda

#else

TEST(CudaNormParity, SkippedWithoutCuda) {
  GTEST_SKIP() << "built without CUDA (HALO_CUDA=OFF or nvcc/cuDNN not found): the CUDA "
                  "norm tests need a GPU build or -DHALO_CUDA=EMULATED";
}

#endif  // HALO_HAVE_CUDA
