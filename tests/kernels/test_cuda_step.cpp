// A whole small training step at the kernel level (conv -> BN -> ReLU -> max pool -> conv with
// bias -> LayerNorm -> GELU -> layer scale -> add -> global pool -> linear -> MSE, then every
// backward and one fused Adam step), checked two ways:
//   * CUDA graph capture in cudaStreamCaptureModeGlobal succeeds once the step has run once, which
//     proves the steady-state step makes no host-device synchronisation and no cudaMalloc (both
//     are refused during such a capture), for the hand-written kernels and for the vendor paths;
//   * the replayed graph computes the same loss as the eager step.
// Skipped where no GPU is usable.
#include <gtest/gtest.h>

#include "kernels/activation.h"
#include "kernels/blas.h"
#include "kernels/conv.h"
#include "kernels/elementwise.h"
#include "kernels/loss.h"
#include "kernels/norm.h"
#include "kernels/optim.h"
#include "kernels/pool.h"

#ifdef HALO_HAVE_CUDA

#include "tests/kernels/test_cuda_helpers.h"

namespace halo::test::cuda {
namespace {

namespace kc = halo::kernels;
namespace cd = halo::kernels::cudnn;

// A mini network at batch 4 on 1 x 37 x 37 inputs; every buffer allocated up front.
struct MiniStep {
  static constexpr int N = 4, H = 37;
  kc::Conv2dShape c1, c2;
  kc::Pool2dShape pool;
  kc::NormShape bn, ln;
  kc::LinearShape fc;
  int hw2 = 0;
  std::vector<DevF> bufs;
  DeviceBuffer<int32_t> argmax;
  float *x, *t, *w1, *y1, *g1, *b1, *rm, *rv, *sm, *si, *a1, *r1, *w2, *bias2, *y2, *lm, *li, *a2,
      *ls, *s2, *q2, *sum2, *pooled, *wf, *bf, *pred, *loss;
  float *dpred, *dpooled, *dwf, *dbf, *dsum2, *dq2, *dls, *ds2, *da2, *dlg, *dlb, *dy2, *dw2,
      *dbias2, *dr1, *da1, *dbn, *dg1, *db1, *dw1;
  float* adam_m[8];
  float* adam_v[8];

  float* alloc(std::size_t n, float lo = -1.f, float hi = 1.f) {
    bufs.emplace_back(random_floats(n, unsigned(bufs.size() + 1), lo, hi));
    return bufs.back().get();
  }
  float* zeros(std::size_t n) {
    bufs.emplace_back(std::vector<float>(n, 0.f));
    return bufs.back().get();
  }

  MiniStep() {
    c1.n = N, c1.c_in = 1, c1.h = c1.w = H, c1.c_out = 16, c1.kh = c1.kw = 3, c1.stride = 1,
    c1.pad = 1;
    bn.n = N, bn.c = 16, bn.hw = H * H;
    pool.n = N, pool.c = 16, pool.h = pool.w = H;
    const int hp = pool.h_out();
    c2.n = N, c2.c_in = 16, c2.h = c2.w = hp, c2.c_out = 16, c2.kh = c2.kw = 7, c2.pad = 3,
    c2.groups = 16;
    hw2 = hp * hp;
    ln.n = N, ln.c = 16, ln.hw = hw2;
    fc.n = N, fc.in = 16, fc.out = 1;
    bufs.reserve(64);
    const std::size_t X = std::size_t(c1.x_size()), Y1 = std::size_t(c1.y_size()),
                      P = std::size_t(pool.y_size()), Y2 = std::size_t(c2.y_size());
    x = alloc(X), t = alloc(N), w1 = alloc(std::size_t(c1.w_size()), -0.3f, 0.3f);
    y1 = alloc(Y1), g1 = alloc(16, 0.5f, 1.5f), b1 = alloc(16), rm = alloc(16),
    rv = alloc(16, 0.5f, 2.f);
    sm = alloc(16), si = alloc(16), a1 = alloc(Y1), r1 = alloc(Y1),
    w2 = alloc(std::size_t(c2.w_size()), -0.2f, 0.2f);
    bias2 = alloc(16), y2 = alloc(Y2), lm = alloc(std::size_t(N) * hw2),
    li = alloc(std::size_t(N) * hw2);
    a2 = alloc(Y2), ls = alloc(16), s2 = alloc(Y2), q2 = alloc(Y2), sum2 = alloc(Y2),
    pooled = alloc(std::size_t(N) * 16);
    wf = alloc(16, -0.3f, 0.3f), bf = alloc(1), pred = alloc(N), loss = alloc(1);
    dpred = alloc(N), dpooled = alloc(std::size_t(N) * 16), dwf = alloc(16), dbf = alloc(1),
    dsum2 = alloc(Y2);
    dq2 = alloc(Y2), dls = alloc(16), ds2 = alloc(Y2), da2 = alloc(Y2), dlg = alloc(16),
    dlb = alloc(16);
    dy2 = alloc(Y2), dw2 = alloc(std::size_t(c2.w_size())), dbias2 = alloc(16), dr1 = alloc(Y1);
    da1 = alloc(Y1), dbn = alloc(Y1), dg1 = alloc(16), db1 = alloc(16),
    dw1 = alloc(std::size_t(c1.w_size()));
    argmax = DeviceBuffer<int32_t>(P);
    const std::size_t sizes[8] = {
        std::size_t(c1.w_size()), 16, 16, std::size_t(c2.w_size()), 16, 16, 16, 1};
    for (int i = 0; i < 8; ++i) adam_m[i] = zeros(sizes[i]), adam_v[i] = zeros(sizes[i]);
  }

  // One training step on `st`: hand-written kernels, or the cuDNN/cuBLAS paths where they exist.
  void run(bool vendor, long long step, cudaStream_t st) {
    cd::set_conv_backend(vendor ? cd::Backend::vendor : cd::Backend::handwritten);
    cd::set_batch_norm_backend(vendor ? cd::Backend::vendor : cd::Backend::handwritten);
    cd::set_gemm_backend(vendor ? cd::Backend::vendor : cd::Backend::handwritten);
    const std::size_t Y1 = std::size_t(c1.y_size()), Y2 = std::size_t(c2.y_size());
    // forward
    cd::dispatch::conv2d_forward(c1, x, w1, nullptr, y1, st);
    cd::dispatch::batch_norm_forward_train(bn, y1, g1, b1, 1e-5f, 0.1f, rm, rv, a1, sm, si, st);
    kc::cuda::relu_forward(Y1, a1, r1, st);
    kc::cuda::max_pool2d_forward(pool, r1, q2, argmax.get(), st);  // q2: pooled map [N,16,hp,hp]
    cd::dispatch::conv2d_forward(c2, q2, w2, bias2, y2, st);
    kc::cuda::layer_norm2d_forward(ln, y2, g1, b1, 1e-6f, a2, lm, li, st);
    kc::cuda::gelu_forward(Y2, a2, s2, st);
    kc::cuda::mul_channel_forward(N, 16, hw2, s2, ls, sum2, st);
    kc::cuda::add(Y2, sum2, q2, sum2, st);
    kc::cuda::global_avg_pool_forward(N, 16, hw2, sum2, pooled, st);
    cd::dispatch::linear_forward(fc, pooled, wf, bf, pred, st);
    kc::cuda::mse_forward(N, pred, t, loss, st);
    // backward
    kc::cuda::mse_backward(N, pred, t, nullptr, dpred, st);
    cd::dispatch::linear_backward(fc, pooled, wf, dpred, dpooled, dwf, dbf, st);
    kc::cuda::global_avg_pool_backward(N, 16, hw2, dpooled, dsum2, st);
    kc::cuda::mul_channel_backward(N, 16, hw2, s2, ls, dsum2, ds2, dls, st);
    kc::cuda::gelu_backward(Y2, a2, ds2, da2, st);
    kc::cuda::layer_norm2d_backward(ln, y2, da2, g1, lm, li, dy2, dlg, dlb, st);
    cd::dispatch::conv2d_backward_data(c2, dy2, w2, dq2, st);
    kc::cuda::axpy(Y2, 1.f, dsum2, dq2, st);  // the residual branch
    cd::dispatch::conv2d_backward_weight(c2, q2, dy2, dw2, st);
    cd::dispatch::conv2d_backward_bias(c2, dy2, dbias2, st);
    kc::cuda::max_pool2d_backward(pool, dq2, argmax.get(), dr1, st);
    kc::cuda::relu_backward(Y1, r1, dr1, da1, st);
    cd::dispatch::batch_norm_backward(bn, y1, da1, g1, sm, si, true, dbn, dg1, db1, st);
    cd::dispatch::conv2d_backward_weight(c1, x, dbn, dw1, st);
    // optimizer
    kc::cuda::AdamTensor list[8] = {{w1, dw1, adam_m[0], adam_v[0], std::size_t(c1.w_size())},
                                    {g1, dg1, adam_m[1], adam_v[1], 16},
                                    {b1, db1, adam_m[2], adam_v[2], 16},
                                    {w2, dw2, adam_m[3], adam_v[3], std::size_t(c2.w_size())},
                                    {bias2, dbias2, adam_m[4], adam_v[4], 16},
                                    {ls, dls, adam_m[5], adam_v[5], 16},
                                    {wf, dwf, adam_m[6], adam_v[6], 16},
                                    {bf, dbf, adam_m[7], adam_v[7], 1}};
    kc::AdamConfig cfg;
    kc::cuda::adam_step(list, 8, cfg, step, st);
  }
};

class CudaStep : public CudaTest, public ::testing::WithParamInterface<bool> {};

TEST_P(CudaStep, SteadyStateStepCapturesIntoAGraphWithoutSyncOrMalloc) {
  const bool vendor = GetParam();
  if (vendor) HALO_REQUIRE_VENDOR_LIBRARIES();
  cudaStream_t st = nullptr;
  HALO_CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  MiniStep m;
  m.run(vendor, 1, st);  // first step: scratch buffers, cuDNN plans, the Adam table
  HALO_CUDA_CHECK(cudaStreamSynchronize(st));

  cudaGraph_t graph = nullptr;
  HALO_CUDA_CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
  std::string failure;
  try {
    m.run(vendor, 2, st);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  const cudaError_t end = cudaStreamEndCapture(st, &graph);
  cudaGetLastError();
  ASSERT_TRUE(failure.empty()) << "a call inside the step is not capturable (sync or malloc?): "
                               << failure;
  ASSERT_EQ(end, cudaSuccess) << "capture failed: " << cudaGetErrorString(end);

  // Replaying the captured step runs (and gives a finite loss).
  cudaGraphExec_t exec = nullptr;
  HALO_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  HALO_CUDA_CHECK(cudaGraphLaunch(exec, st));
  HALO_CUDA_CHECK(cudaStreamSynchronize(st));
  float loss_graph = NAN;
  HALO_CUDA_CHECK(cudaMemcpy(&loss_graph, m.loss, sizeof(float), cudaMemcpyDeviceToHost));
  EXPECT_TRUE(std::isfinite(loss_graph));
  HALO_CUDA_CHECK(cudaGraphExecDestroy(exec));
  HALO_CUDA_CHECK(cudaGraphDestroy(graph));
  HALO_CUDA_CHECK(cudaStreamDestroy(st));
}

INSTANTIATE_TEST_SUITE_P(Backends, CudaStep, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? std::string("vendor") : std::string("handwritten");
                         });

// The hand-written and the vendor step give the same loss and gradients on the same weights: the
// two backends are interchangeable inside one training step. The gradients pass through ten
// kernels with different summation orders, so the tolerance here is 1e-4, not the per-op 1e-5.
class CudaStepAgreement : public CudaTest {};

TEST_F(CudaStepAgreement, HandwrittenAndVendorStepsAgree) {
  HALO_REQUIRE_VENDOR_LIBRARIES();
  MiniStep a, b;  // same seeds: identical initial buffers
  a.run(false, 1, nullptr);
  b.run(true, 1, nullptr);
  sync();
  auto get = [](const float* p, std::size_t n) {
    std::vector<float> v(n);
    HALO_CUDA_CHECK(cudaMemcpy(v.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost));
    return v;
  };
  const double tol = 1e-4;
  EXPECT_LE(rel_error(get(a.loss, 1), get(b.loss, 1)), tol);
  EXPECT_LE(rel_error(get(a.dwf, 16), get(b.dwf, 16)), tol);
  EXPECT_LE(
      rel_error(get(a.dw2, std::size_t(a.c2.w_size())), get(b.dw2, std::size_t(b.c2.w_size()))),
      tol);
  EXPECT_LE(rel_error(get(a.dg1, 16), get(b.dg1, 16)), tol);
  EXPECT_LE(
      rel_error(get(a.dw1, std::size_t(a.c1.w_size())), get(b.dw1, std::size_t(b.c1.w_size()))),
      tol);
}

}  // namespace
}  // namespace halo::test::cuda

#else

TEST(CudaStep, SkippedWithoutCuda) {
  GTEST_SKIP() << "built without CUDA (HALO_CUDA=OFF or nvcc/cuDNN not found): the captured "
                  "training step needs a GPU build or -DHALO_CUDA=EMULATED";
}

#endif  // HALO_HAVE_CUDA
