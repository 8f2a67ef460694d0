// CUDA parity tests of the memory-bound kernels: ReLU, GELU, the elementwise helpers, the
// per-channel multiply (layer scale), max and global average pooling, MSE and the fused Adam,
// against the CPU reference (double where the reference is templated, float for Adam to follow
// PyTorch's float arithmetic), at the sizes the three models meet on 150x150 at batch 2 and at odd
// sizes (1, 3, 7, 37), also through misaligned pointers (the scalar path of vectorised kernels).
// Skipped where no GPU is usable.
#include <gtest/gtest.h>

#include "kernels/activation.h"
#include "kernels/elementwise.h"
#include "kernels/loss.h"
#include "kernels/optim.h"
#include "kernels/pool.h"

#ifdef HALO_HAVE_CUDA

#include "tests/kernels/test_cuda_helpers.h"
#include "tests/kernels/test_cuda_shapes.h"

namespace halo::test::cuda {
namespace {

namespace kc = halo::kernels;

// Sizes for pointwise ops: odd ones, a large odd one, and every ReLU/GELU/add size of the models.
std::vector<std::size_t> pointwise_sizes() {
  std::vector<std::size_t> v = {1, 3, 7, 37, 37 * 37, 1000003};
  for (const auto& m : shapes::all_models(2, kModelImageSize)) {
    for (const auto& c : m.relus) v.push_back(c.n);
    for (const auto& c : m.gelus) v.push_back(c.n);
    for (const auto& c : m.adds) v.push_back(c.n);
  }
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

class CudaPointwise : public CudaTest {};

// Runs `gpu` on x (and b) at offset 0 (vector path) and offset 1 float (misaligned: scalar path)
// and compares with `ref`.
template <class Gpu>
void check_unary_binary(const char* what, std::size_t n, const std::vector<double>& ref,
                        const std::vector<float>& a, const std::vector<float>* b, Gpu gpu) {
  for (std::size_t off : {std::size_t(0), std::size_t(1)}) {
    std::vector<float> ha(off, 0.f), hb(off, 0.f);
    ha.insert(ha.end(), a.begin(), a.end());
    if (b) hb.insert(hb.end(), b->begin(), b->end());
    DevF da(ha), db(b ? hb : std::vector<float>(1)), dy(n + off);
    dy.poison();
    gpu(n, da.get() + off, b ? db.get() + off : nullptr, dy.get() + off);
    std::vector<float> got = dy.download();
    got.erase(got.begin(), got.begin() + long(off));
    EXPECT_LE(rel_error(got, ref), kTol) << what << " n=" << n << " offset=" << off;
  }
}

TEST_F(CudaPointwise, ReluAndGeluMatchCpu) {
  run_under_two_thread_orders([&] {
    for (std::size_t n : pointwise_sizes()) {
      // Include exact zeros and large magnitudes (GELU's tails, ReLU's boundary).
      auto x = random_floats(n, unsigned(n), -6.f, 6.f);
      for (std::size_t i = 0; i < n; i += 97) x[i] = 0.f;
      const auto dy = random_floats(n, unsigned(n) + 1);
      const auto xd = to_double(x), dyd = to_double(dy);
      std::vector<double> y(n), g(n);
      kc::cpu::relu_forward<double>(n, xd.data(), y.data());
      check_unary_binary("relu_forward", n, y, x, nullptr,
                         [](std::size_t k, const float* a, const float*, float* o) {
                           kc::cuda::relu_forward(k, a, o, nullptr);
                         });
      const std::vector<float> yf(y.begin(), y.end());
      kc::cpu::relu_backward<double>(n, y.data(), dyd.data(), g.data());
      check_unary_binary("relu_backward", n, g, yf, &dy,
                         [](std::size_t k, const float* a, const float* b, float* o) {
                           kc::cuda::relu_backward(k, a, b, o, nullptr);
                         });
      kc::cpu::gelu_forward<double>(n, xd.data(), y.data());
      check_unary_binary("gelu_forward", n, y, x, nullptr,
                         [](std::size_t k, const float* a, const float*, float* o) {
                           kc::cuda::gelu_forward(k, a, o, nullptr);
                         });
      kc::cpu::gelu_backward<double>(n, xd.data(), dyd.data(), g.data());
      check_unary_binary("gelu_backward", n, g, x, &dy,
                         [](std::size_t k, const float* a, const float* b, float* o) {
                           kc::cuda::gelu_backward(k, a, b, o, nullptr);
                         });
    }
  });
}

TEST_F(CudaPointwise, ElementwiseHelpersMatchCpu) {
  run_under_two_thread_orders([&] {
    for (std::size_t n : pointwise_sizes()) {
      const auto a = random_floats(n, unsigned(n) + 2), b = random_floats(n, unsigned(n) + 3);
      const auto ad = to_double(a), bd = to_double(b);
      std::vector<double> y(n);
      kc::cpu::add<double>(n, ad.data(), bd.data(), y.data());
      check_unary_binary("add", n, y, a, &b,
                         [](std::size_t k, const float* p, const float* q, float* o) {
                           kc::cuda::add(k, p, q, o, nullptr);
                         });
      kc::cpu::mul<double>(n, ad.data(), bd.data(), y.data());
      check_unary_binary("mul", n, y, a, &b,
                         [](std::size_t k, const float* p, const float* q, float* o) {
                           kc::cuda::mul(k, p, q, o, nullptr);
                         });
      kc::cpu::scale<double>(n, 0.37, ad.data(), y.data());
      check_unary_binary("scale", n, y, a, nullptr,
                         [](std::size_t k, const float* p, const float*, float* o) {
                           kc::cuda::scale(k, 0.37f, p, o, nullptr);
                         });
      // axpy accumulates into y: y = b, then y += alpha a.
      y = bd;
      kc::cpu::axpy<double>(n, -1.5, ad.data(), y.data());
      DevF da(a), dy(b);
      kc::cuda::axpy(n, -1.5f, da.get(), dy.get(), nullptr);
      EXPECT_LE(rel_error(dy.download(), y), kTol) << "axpy n=" << n;
      kc::cuda::fill(n, 2.5f, dy.get(), nullptr);
      EXPECT_LE(rel_error(dy.download(), std::vector<double>(n, 2.5)), 0.0) << "fill n=" << n;
    }
  });
}

TEST_F(CudaPointwise, MulChannelMatchesCpu) {
  run_under_two_thread_orders([&] {
    std::vector<shapes::ChannelCase> cases;
    for (const auto& m : shapes::all_models(2, kModelImageSize))
      for (const auto& c : m.layer_scales) cases.push_back(c);
    for (const auto& c : shapes::odd_norm_cases())
      cases.push_back({"odd", c.name, c.s.n, c.s.c, c.s.hw});
    for (const auto& c : cases) {
      const std::size_t n = std::size_t(c.n) * c.c * c.hw;
      const unsigned seed = unsigned(n + c.c);
      const auto x = random_floats(n, seed), s = random_floats(std::size_t(c.c), seed + 1),
                 dy = random_floats(n, seed + 2);
      const auto xd = to_double(x), sd = to_double(s), dyd = to_double(dy);
      std::vector<double> y(n), dx(n), ds(std::size_t(c.c));
      kc::cpu::mul_channel_forward<double>(c.n, c.c, c.hw, xd.data(), sd.data(), y.data());
      kc::cpu::mul_channel_backward<double>(c.n, c.c, c.hw, xd.data(), sd.data(), dyd.data(),
                                            dx.data(), ds.data());
      DevF gx(x), gs(s), gdy(dy), gy(n), gdx(n), gds(std::size_t(c.c));
      gy.poison(), gdx.poison(), gds.poison();
      kc::cuda::mul_channel_forward(c.n, c.c, c.hw, gx.get(), gs.get(), gy.get(), nullptr);
      kc::cuda::mul_channel_backward(c.n, c.c, c.hw, gx.get(), gs.get(), gdy.get(), gdx.get(),
                                     gds.get(), nullptr);
      EXPECT_LE(rel_error(gy.download(), y), kTol) << c.model << "/" << c.name << " forward";
      EXPECT_LE(rel_error(gdx.download(), dx), kTol) << c.model << "/" << c.name << " dx";
      EXPECT_LE(rel_error(gds.download(), ds), kTol) << c.model << "/" << c.name << " ds";
    }
  });
}

TEST_F(CudaPointwise, MaxPoolMatchesCpuIncludingTiesAndArgmax) {
  run_under_two_thread_orders([&] {
    std::vector<kc::Pool2dShape> cases;
    for (const auto& m : shapes::all_models(2, kModelImageSize))
      for (const auto& p : m.max_pools) cases.push_back(p);
    for (int h : {1, 3, 7, 37})
      for (int k : {1, 2, 3}) {
        kc::Pool2dShape p;
        p.n = 1, p.c = 3, p.h = h, p.w = (h == 37 ? 7 : h), p.k = k, p.stride = k == 1 ? 1 : 2;
        p.pad = k / 2;
        cases.push_back(p);
      }
    for (const auto& s : cases) {
      auto x = random_floats(std::size_t(s.x_size()), unsigned(s.x_size()));
      // Quantise so that ties are common: ties must go to the first element in row-major order.
      for (auto& v : x) v = std::round(v * 4.f) / 4.f;
      const auto xd = to_double(x);
      const auto dy = random_floats(std::size_t(s.y_size()), unsigned(s.y_size()) + 1);
      const auto dyd = to_double(dy);
      std::vector<double> y(std::size_t(s.y_size())), dx(std::size_t(s.x_size()));
      std::vector<int32_t> arg(std::size_t(s.y_size()));
      kc::cpu::max_pool2d_forward<double>(s, xd.data(), y.data(), arg.data());
      kc::cpu::max_pool2d_backward<double>(s, dyd.data(), arg.data(), dx.data());
      DevF gx(x), gy(y.size()), gdy(dy), gdx(dx.size());
      DeviceBuffer<int32_t> garg(arg.size());
      gy.poison(), gdx.poison(), garg.poison();
      kc::cuda::max_pool2d_forward(s, gx.get(), gy.get(), garg.get(), nullptr);
      const auto got_arg = garg.download();
      EXPECT_EQ(got_arg, arg) << "argmax " << s.n << "x" << s.c << "x" << s.h << "x" << s.w << " k"
                              << s.k;
      EXPECT_LE(rel_error(gy.download(), y), 0.0) << "max pool forward is exact";
      // Backward from the CPU's argmax, so the two tests stay independent.
      garg.upload(arg);
      kc::cuda::max_pool2d_backward(s, gdy.get(), garg.get(), gdx.get(), nullptr);
      EXPECT_LE(rel_error(gdx.download(), dx), kTol) << "max pool backward";
    }
  });
}

TEST_F(CudaPointwise, GlobalAvgPoolMatchesCpu) {
  run_under_two_thread_orders([&] {
    std::vector<shapes::ChannelCase> cases;
    for (const auto& m : shapes::all_models(2, kModelImageSize))
      for (const auto& c : m.global_pools) cases.push_back(c);
    for (int c : {1, 3, 7, 37})
      for (int hw : {1, 9, 49, 1369}) cases.push_back({"odd", "", 1, c, hw});
    for (const auto& c : cases) {
      const std::size_t n = std::size_t(c.n) * c.c * c.hw, rows = std::size_t(c.n) * c.c;
      const auto x = random_floats(n, unsigned(n)), dy = random_floats(rows, unsigned(n) + 1);
      const auto xd = to_double(x), dyd = to_double(dy);
      std::vector<double> y(rows), dx(n);
      kc::cpu::global_avg_pool_forward<double>(c.n, c.c, c.hw, xd.data(), y.data());
      kc::cpu::global_avg_pool_backward<double>(c.n, c.c, c.hw, dyd.data(), dx.data());
      DevF gx(x), gy(rows), gdy(dy), gdx(n);
      gy.poison(), gdx.poison();
      kc::cuda::global_avg_pool_forward(c.n, c.c, c.hw, gx.get(), gy.get(), nullptr);
      kc::cuda::global_avg_pool_backward(c.n, c.c, c.hw, gdy.get(), gdx.get(), nullptr);
      EXPECT_LE(rel_error(gy.download(), y), kTol) << c.model << " " << c.c << "x" << c.hw;
      EXPECT_LE(rel_error(gdx.download(), dx), kTol) << c.model << " " << c.c << "x" << c.hw;
    }
  });
}

TEST_F(CudaPointwise, MseMatchesCpuWithLossOnDevice) {
  run_under_two_thread_orders([&] {
    for (std::size_t n : {std::size_t(1), std::size_t(2), std::size_t(3), std::size_t(37),
                          std::size_t(256), std::size_t(100003)}) {
      const auto p = random_floats(n, unsigned(n)), t = random_floats(n, unsigned(n) + 1);
      const auto pd = to_double(p), td = to_double(t);
      const double loss = kc::cpu::mse_forward<double>(n, pd.data(), td.data());
      std::vector<double> grad(n), grad_scaled(n);
      kc::cpu::mse_backward<double>(n, pd.data(), td.data(), 1.0, grad.data());
      kc::cpu::mse_backward<double>(n, pd.data(), td.data(), double(0.25f), grad_scaled.data());
      DevF gp(p), gt(t), gl(1), gdl(std::vector<float>{0.25f}), gg(n);
      gl.poison(), gg.poison();
      kc::cuda::mse_forward(n, gp.get(), gt.get(), gl.get(), nullptr);
      EXPECT_LE(rel_error(gl.download(), std::vector<double>{loss}), kTol) << "mse n=" << n;
      kc::cuda::mse_backward(n, gp.get(), gt.get(), nullptr, gg.get(), nullptr);
      EXPECT_LE(rel_error(gg.download(), grad), kTol) << "mse backward n=" << n;
      gg.poison();
      kc::cuda::mse_backward(n, gp.get(), gt.get(), gdl.get(), gg.get(), nullptr);
      EXPECT_LE(rel_error(gg.download(), grad_scaled), kTol) << "mse backward dloss n=" << n;
    }
  });
}

// Adam over a whole model's parameter list (and odd sizes) in one launch, three steps, against
// the float CPU step applied tensor by tensor; plain Adam, L2 (coupled) and AdamW (decoupled).
TEST_F(CudaPointwise, FusedAdamMatchesCpuOverAllParameters) {
  run_under_two_thread_orders([&] {
    std::vector<std::size_t> sizes = shapes::resnet(false, 2).parameter_sizes;
    sizes.insert(sizes.end(), {1, 3, 7, 37, 1023, 1024, 1025});
    for (int mode = 0; mode < 3; ++mode) {
      kc::AdamConfig cfg;
      cfg.lr = 3e-3f;
      cfg.weight_decay = mode == 0 ? 0.f : 0.05f;
      cfg.decoupled = mode == 2;
      std::vector<std::vector<float>> p, g, m, v;
      std::vector<DevF> dp, dg, dm, dv;
      std::vector<kc::cuda::AdamTensor> list;
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        const unsigned seed = unsigned(1000 * mode + i);
        p.push_back(random_floats(sizes[i], seed));
        g.push_back(random_floats(sizes[i], seed + 1));
        m.push_back(std::vector<float>(sizes[i], 0.f));
        v.push_back(std::vector<float>(sizes[i], 0.f));
        dp.emplace_back(p.back()), dg.emplace_back(g.back()), dm.emplace_back(m.back()),
            dv.emplace_back(v.back());
      }
      for (std::size_t i = 0; i < sizes.size(); ++i)
        list.push_back({dp[i].get(), dg[i].get(), dm[i].get(), dv[i].get(), sizes[i]});
      for (long long step = 1; step <= 3; ++step) {
        for (std::size_t i = 0; i < sizes.size(); ++i)
          kc::cpu::adam_step<float>(sizes[i], cfg, step, p[i].data(), g[i].data(), m[i].data(),
                                    v[i].data());
        kc::cuda::adam_step(list.data(), int(list.size()), cfg, step, nullptr);
      }
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        EXPECT_LE(rel_error(dp[i].download(), p[i]), kTol) << "mode " << mode << " tensor " << i;
        EXPECT_LE(rel_error(dm[i].download(), m[i]), kTol) << "mode " << mode << " tensor " << i;
        EXPECT_LE(rel_error(dv[i].download(), v[i]), kTol) << "mode " << mode << " tensor " << i;
      }
    }
  });
}

}  // namespace
}  // namespace halo::test::cuda

#else

TEST(CudaPointwise, SkippedWithoutCuda) {
  GTEST_SKIP() << "built without CUDA (HALO_CUDA=OFF or nvcc/cuDNN not found): these CUDA tests "
                  "need a GPU build or -DHALO_CUDA=EMULATED";
}

#endif  // HALO_HAVE_CUDA
