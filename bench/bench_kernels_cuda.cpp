// Google Benchmark of the GPU kernels: every op of ResNet-18, ResNet-26 and ConvNeXt-pico at the
// layer shapes of a 150x150 input, batch 256, hand-written (kernels/cuda) beside cuDNN/cuBLAS
// (kernels/cudnn), each timed with CUDA events (UseManualTime: GPU time only). Each result reports
// GFLOP/s (convolutions, GEMMs) or GB/s (memory-bound ops) and the fraction of the device's
// ceilings, which this binary measures first on the same GPU:
//   copy_GBps   a 1 GiB device-to-device cudaMemcpy (bytes read + bytes written per second),
//   sgemm       cuBLAS SGEMM 8192^3, FP32 (TF32 off),
//   tf32        cuBLAS GEMM 8192^3 with TF32 tensor cores.
// GB/s counts the unavoidable traffic only (every input read once, every output written once), so
// it is comparable between implementations; a two-pass kernel moving more bytes shows it as a
// lower fraction. Implementations: "handwritten", "cudnn" (FP32: TF32 off, cudnnFind-timed
// algorithms, like torch.backends.cudnn.benchmark = True) and "cudnn_tf32" (PyTorch's default
// convolution policy) for convolutions.
//
//   bench_kernels_cuda --benchmark_filter='resnet18/conv' --benchmark_counters_tabular=true
//
// Without a GPU it says so and exits 0; built without CUDA it says that.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#ifdef HALO_HAVE_CUDA

#include <cuda_runtime.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "engine/cuda_memory.h"
#include "kernels/activation.h"
#include "kernels/blas.h"
#include "kernels/conv.h"
#include "kernels/cuda/check.h"
#include "kernels/cudnn/settings.h"
#include "kernels/elementwise.h"
#include "kernels/loss.h"
#include "kernels/norm.h"
#include "kernels/optim.h"
#include "kernels/pool.h"
#include "tests/kernels/test_cuda_shapes.h"

namespace {

namespace kc = halo::kernels;
namespace cd = halo::kernels::cudnn;
namespace shapes = halo::test::shapes;

constexpr int kBatch = 256;

struct Ceilings {
  double copy_gbps = 0, sgemm_gflops = 0, tf32_gflops = 0;
};
Ceilings g_ceil;

// A device buffer filled with a constant (values do not change the speed of these kernels).
class Buf {
 public:
  explicit Buf(std::size_t n, float value = 0.01f) : n_(n) {
    HALO_CUDA_CHECK(cudaMalloc(&p_, std::max<std::size_t>(n, 1) * sizeof(float)));
    if (n) kc::cuda::fill(n, value, static_cast<float*>(p_), nullptr);
  }
  ~Buf() { cudaFree(p_); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  float* f() const { return static_cast<float*>(p_); }
  int32_t* i() const { return static_cast<int32_t*>(p_); }
  std::size_t size() const { return n_; }

 private:
  void* p_ = nullptr;
  std::size_t n_;
};

// Runs fn twice untimed (algorithm choice, scratch growth), then times each iteration with CUDA
// events and reports the rates from the total GPU time.
void time_gpu(benchmark::State& state, const std::function<void()>& fn, double flops,
              double bytes) {
  fn();
  fn();
  HALO_CUDA_CHECK(cudaDeviceSynchronize());
  cudaEvent_t start, stop;
  HALO_CUDA_CHECK(cudaEventCreate(&start));
  HALO_CUDA_CHECK(cudaEventCreate(&stop));
  double total = 0;
  for (auto _ : state) {
    HALO_CUDA_CHECK(cudaEventRecord(start, nullptr));
    fn();
    HALO_CUDA_CHECK(cudaEventRecord(stop, nullptr));
    HALO_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    HALO_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    state.SetIterationTime(double(ms) * 1e-3);
    total += double(ms) * 1e-3;
  }
  HALO_CUDA_CHECK(cudaEventDestroy(start));
  HALO_CUDA_CHECK(cudaEventDestroy(stop));
  const double per_iter =
      total / double(std::max<benchmark::IterationCount>(state.iterations(), 1));
  if (flops > 0) {
    const double gflops = flops / per_iter * 1e-9;
    state.counters["GFLOPs"] = gflops;
    if (g_ceil.sgemm_gflops > 0) state.counters["of_sgemm"] = gflops / g_ceil.sgemm_gflops;
    if (g_ceil.tf32_gflops > 0) state.counters["of_tf32"] = gflops / g_ceil.tf32_gflops;
  }
  if (bytes > 0) {
    const double gbps = bytes / per_iter * 1e-9;
    state.counters["GBps"] = gbps;
    if (g_ceil.copy_gbps > 0) state.counters["of_copy"] = gbps / g_ceil.copy_gbps;
  }
}

benchmark::internal::Benchmark* reg(const std::string& name,
                                    std::function<void(benchmark::State&)> fn) {
  return benchmark::RegisterBenchmark(name.c_str(), std::move(fn))
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
}

// ---- ceilings -----------------------------------------------------------------------------------

double best_seconds(const std::function<void()>& fn, int reps) {
  fn();
  HALO_CUDA_CHECK(cudaDeviceSynchronize());
  cudaEvent_t a, b;
  HALO_CUDA_CHECK(cudaEventCreate(&a));
  HALO_CUDA_CHECK(cudaEventCreate(&b));
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    HALO_CUDA_CHECK(cudaEventRecord(a, nullptr));
    fn();
    HALO_CUDA_CHECK(cudaEventRecord(b, nullptr));
    HALO_CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    HALO_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    best = std::min(best, double(ms) * 1e-3);
  }
  HALO_CUDA_CHECK(cudaEventDestroy(a));
  HALO_CUDA_CHECK(cudaEventDestroy(b));
  return best;
}

constexpr std::size_t kCopyBytes = std::size_t(1) << 30;
constexpr int kGemmN = 8192;

void copy_1gib(const Buf& src, const Buf& dst) {
  HALO_CUDA_CHECK(cudaMemcpyAsync(dst.f(), src.f(), kCopyBytes, cudaMemcpyDeviceToDevice, nullptr));
}
void gemm_8192(bool tf32, bool handwritten, const Buf& a, const Buf& b, const Buf& c) {
  cd::set_matmul_tf32(tf32);
  if (handwritten)
    kc::cuda::gemm(false, false, kGemmN, kGemmN, kGemmN, 1.f, a.f(), kGemmN, b.f(), kGemmN, 0.f,
                   c.f(), kGemmN, nullptr);
  else
    kc::cudnn::gemm(false, false, kGemmN, kGemmN, kGemmN, 1.f, a.f(), kGemmN, b.f(), kGemmN, 0.f,
                    c.f(), kGemmN, nullptr);
  cd::set_matmul_tf32(false);
}

void measure_ceilings() {
  {
    Buf src(kCopyBytes / 4), dst(kCopyBytes / 4);
    g_ceil.copy_gbps =
        2.0 * double(kCopyBytes) / best_seconds([&] { copy_1gib(src, dst); }, 10) * 1e-9;
  }
  const std::size_t n2 = std::size_t(kGemmN) * kGemmN;
  Buf a(n2), b(n2), c(n2);
  const double flops = 2.0 * double(kGemmN) * kGemmN * kGemmN;
  g_ceil.sgemm_gflops = flops / best_seconds([&] { gemm_8192(false, false, a, b, c); }, 5) * 1e-9;
  g_ceil.tf32_gflops = flops / best_seconds([&] { gemm_8192(true, false, a, b, c); }, 5) * 1e-9;
  std::printf(
      "Measured ceilings: copy %.0f GB/s (read + write), cuBLAS SGEMM %.0f GFLOP/s, "
      "cuBLAS TF32 GEMM %.0f GFLOP/s (8192^3)\n",
      g_ceil.copy_gbps, g_ceil.sgemm_gflops, g_ceil.tf32_gflops);
}

void register_ceilings() {
  reg("ceiling/copy_d2d_1GiB", [](benchmark::State& st) {
    Buf src(kCopyBytes / 4), dst(kCopyBytes / 4);
    time_gpu(
        st, [&] { copy_1gib(src, dst); }, 0, 2.0 * double(kCopyBytes));
  });
  const double flops = 2.0 * double(kGemmN) * kGemmN * kGemmN;
  const std::pair<const char*, std::pair<bool, bool>> gemms[] = {
      {"ceiling/gemm_8192/cublas_fp32", {false, false}},
      {"ceiling/gemm_8192/cublas_tf32", {true, false}},
      {"ceiling/gemm_8192/handwritten", {false, true}}};
  for (const auto& [name, mode] : gemms)
    reg(name, [mode = mode, flops](benchmark::State& st) {
      const std::size_t n2 = std::size_t(kGemmN) * kGemmN;
      Buf a(n2), b(n2), c(n2);
      time_gpu(
          st, [&] { gemm_8192(mode.first, mode.second, a, b, c); }, flops, 0);
    })->Iterations(5);
}

// ---- per-op benchmarks ------------------------------------------------------------------------

enum class Impl { handwritten, cudnn, cudnn_tf32 };
const char* impl_name(Impl i) {
  return i == Impl::handwritten ? "handwritten" : i == Impl::cudnn ? "cudnn" : "cudnn_tf32";
}
// Puts the vendor libraries in the mode an implementation stands for.
void set_mode(Impl i) {
  cd::set_conv_tf32(i == Impl::cudnn_tf32);
  cd::set_matmul_tf32(false);
  cd::set_conv_algo_search(cd::ConvAlgoSearch::benchmark);
}

// e.g. "64x38x38-128_k3s2" (c_in x h x w - c_out, kernel, stride, groups if any).
std::string conv_label(const kc::Conv2dShape& s) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%dx%dx%d-%d_k%ds%d", s.c_in, s.h, s.w, s.c_out, s.kh, s.stride);
  std::string label = buf;
  if (s.groups > 1) label += std::string("g") + std::to_string(s.groups);
  return label;
}

void register_convs(const shapes::ModelShapes& m) {
  for (const auto& c : m.convs) {
    const std::string base = m.model + "/conv_";
    const std::string tail = "/" + c.name + "[" + conv_label(c.s) + "]/";
    const double flops = 2.0 * double(c.s.macs());
    for (Impl impl : {Impl::handwritten, Impl::cudnn, Impl::cudnn_tf32}) {
      const bool hand = impl == Impl::handwritten;
      const kc::Conv2dShape s = c.s;
      const bool bias = c.bias;
      reg(base + "fwd" + tail + impl_name(impl), [=](benchmark::State& st) {
        set_mode(impl);
        Buf x(std::size_t(s.x_size())), w(std::size_t(s.w_size())), b(std::size_t(s.c_out)),
            y(std::size_t(s.y_size()));
        time_gpu(
            st,
            [&] {
              (hand ? kc::cuda::conv2d_forward : kc::cudnn::conv2d_forward)(
                  s, x.f(), w.f(), bias ? b.f() : nullptr, y.f(), nullptr);
            },
            flops, 0);
      });
      reg(base + "bwd_data" + tail + impl_name(impl), [=](benchmark::State& st) {
        set_mode(impl);
        Buf dy(std::size_t(s.y_size())), w(std::size_t(s.w_size())), dx(std::size_t(s.x_size()));
        time_gpu(
            st,
            [&] {
              (hand ? kc::cuda::conv2d_backward_data : kc::cudnn::conv2d_backward_data)(
                  s, dy.f(), w.f(), dx.f(), nullptr);
            },
            flops, 0);
      });
      reg(base + "bwd_weight" + tail + impl_name(impl), [=](benchmark::State& st) {
        set_mode(impl);
        Buf x(std::size_t(s.x_size())), dy(std::size_t(s.y_size())), dw(std::size_t(s.w_size()));
        time_gpu(
            st,
            [&] {
              (hand ? kc::cuda::conv2d_backward_weight : kc::cudnn::conv2d_backward_weight)(
                  s, x.f(), dy.f(), dw.f(), nullptr);
            },
            flops, 0);
      });
      if (bias && impl != Impl::cudnn_tf32)
        reg(base + "bwd_bias" + tail + impl_name(impl), [=](benchmark::State& st) {
          set_mode(impl);
          Buf dy(std::size_t(s.y_size())), db(std::size_t(s.c_out));
          time_gpu(
              st,
              [&] {
                (hand ? kc::cuda::conv2d_backward_bias : kc::cudnn::conv2d_backward_bias)(
                    s, dy.f(), db.f(), nullptr);
              },
              0, 4.0 * double(s.y_size()));
        });
    }
  }
}

std::string norm_label(const kc::NormShape& s) {
  return std::to_string(s.c) + "x" + std::to_string(s.hw);
}

void register_norms(const shapes::ModelShapes& m) {
  for (const auto& c : m.batch_norms) {
    const kc::NormShape s = c.s;
    const double elems = double(s.size());
    const std::string tail = "/" + c.name + "[" + norm_label(s) + "]/";
    for (Impl impl : {Impl::handwritten, Impl::cudnn}) {
      const bool hand = impl == Impl::handwritten;
      reg(m.model + "/bn_fwd_train" + tail + impl_name(impl), [=](benchmark::State& st) {
        const std::size_t C = std::size_t(s.c);
        Buf x(std::size_t(s.size())), y(std::size_t(s.size())), g(C, 1.f), b(C), rm(C), rv(C, 1.f),
            sm(C), si(C);
        time_gpu(
            st,
            [&] {
              (hand ? kc::cuda::batch_norm_forward_train : kc::cudnn::batch_norm_forward_train)(
                  s, x.f(), g.f(), b.f(), 1e-5f, 0.1f, rm.f(), rv.f(), y.f(), sm.f(), si.f(),
                  nullptr);
            },
            0, 8.0 * elems);
      });
      reg(m.model + "/bn_fwd_eval" + tail + impl_name(impl), [=](benchmark::State& st) {
        const std::size_t C = std::size_t(s.c);
        Buf x(std::size_t(s.size())), y(std::size_t(s.size())), g(C, 1.f), b(C), rm(C), rv(C, 1.f);
        time_gpu(
            st,
            [&] {
              (hand ? kc::cuda::batch_norm_forward_eval : kc::cudnn::batch_norm_forward_eval)(
                  s, x.f(), g.f(), b.f(), rm.f(), rv.f(), 1e-5f, y.f(), nullptr);
            },
            0, 8.0 * elems);
      });
      reg(m.model + "/bn_bwd" + tail + impl_name(impl), [=](benchmark::State& st) {
        const std::size_t C = std::size_t(s.c);
        Buf x(std::size_t(s.size())), dy(std::size_t(s.size())), dx(std::size_t(s.size())),
            g(C, 1.f), mean(C), invstd(C, 1.f), dg(C), db(C);
        time_gpu(
            st,
            [&] {
              (hand ? kc::cuda::batch_norm_backward : kc::cudnn::batch_norm_backward)(
                  s, x.f(), dy.f(), g.f(), mean.f(), invstd.f(), true, dx.f(), dg.f(), db.f(),
                  nullptr);
            },
            0, 12.0 * elems);
      });
    }
  }
  for (const auto& c : m.layer_norms) {
    const kc::NormShape s = c.s;
    const double elems = double(s.size());
    const std::string tail = "/" + c.name + "[" + norm_label(s) + "]/handwritten";
    const std::size_t P = std::size_t(1LL * s.n * s.hw), C = std::size_t(s.c);
    reg(m.model + "/ln_fwd" + tail, [=](benchmark::State& st) {
      Buf x(std::size_t(s.size())), y(std::size_t(s.size())), g(C, 1.f), b(C), mean(P), inv(P);
      time_gpu(
          st,
          [&] {
            kc::cuda::layer_norm2d_forward(s, x.f(), g.f(), b.f(), 1e-6f, y.f(), mean.f(), inv.f(),
                                           nullptr);
          },
          0, 8.0 * elems + 8.0 * double(P));
    });
    reg(m.model + "/ln_bwd" + tail, [=](benchmark::State& st) {
      Buf x(std::size_t(s.size())), dy(std::size_t(s.size())), dx(std::size_t(s.size())), g(C, 1.f),
          mean(P), inv(P, 1.f), dg(C), db(C);
      time_gpu(
          st,
          [&] {
            kc::cuda::layer_norm2d_backward(s, x.f(), dy.f(), g.f(), mean.f(), inv.f(), dx.f(),
                                            dg.f(), db.f(), nullptr);
          },
          0, 12.0 * elems + 8.0 * double(P));
    });
  }
}

void register_pointwise(const shapes::ModelShapes& m) {
  auto unary = [&](const std::string& op, std::size_t n,
                   void (*fn)(std::size_t, const float*, float*, void*)) {
    reg(m.model + "/" + op + "/n" + std::to_string(n) + "/handwritten", [=](benchmark::State& st) {
      Buf x(n), y(n);
      time_gpu(
          st, [&] { fn(n, x.f(), y.f(), nullptr); }, 0, 8.0 * double(n));
    });
  };
  auto binary = [&](const std::string& op, std::size_t n,
                    void (*fn)(std::size_t, const float*, const float*, float*, void*)) {
    reg(m.model + "/" + op + "/n" + std::to_string(n) + "/handwritten", [=](benchmark::State& st) {
      Buf a(n), b(n), y(n);
      time_gpu(
          st, [&] { fn(n, a.f(), b.f(), y.f(), nullptr); }, 0, 12.0 * double(n));
    });
  };
  for (const auto& c : m.relus) {
    unary("relu_fwd", c.n, kc::cuda::relu_forward);
    binary("relu_bwd", c.n, kc::cuda::relu_backward);
  }
  for (const auto& c : m.gelus) {
    unary("gelu_fwd", c.n, kc::cuda::gelu_forward);
    binary("gelu_bwd", c.n, kc::cuda::gelu_backward);
  }
  for (const auto& c : m.adds) binary("add", c.n, kc::cuda::add);
  for (const auto& c : m.layer_scales) {
    const std::size_t n = std::size_t(c.n) * c.c * c.hw;
    const std::string tail =
        std::string("/") + std::to_string(c.c) + "x" + std::to_string(c.hw) + "/handwritten";
    reg(m.model + "/mul_channel_fwd" + tail, [=](benchmark::State& st) {
      Buf x(n), s(std::size_t(c.c)), y(n);
      time_gpu(
          st, [&] { kc::cuda::mul_channel_forward(c.n, c.c, c.hw, x.f(), s.f(), y.f(), nullptr); },
          0, 8.0 * double(n));
    });
    reg(m.model + "/mul_channel_bwd" + tail, [=](benchmark::State& st) {
      Buf x(n), s(std::size_t(c.c)), dy(n), dx(n), ds(std::size_t(c.c));
      time_gpu(
          st,
          [&] {
            kc::cuda::mul_channel_backward(c.n, c.c, c.hw, x.f(), s.f(), dy.f(), dx.f(), ds.f(),
                                           nullptr);
          },
          0, 12.0 * double(n));
    });
  }
  for (const auto& p : m.max_pools) {
    const std::string tail = std::string("/") + std::to_string(p.c) + "x" + std::to_string(p.h) +
                             "x" + std::to_string(p.w) + "_k3s2/handwritten";
    const double in = double(p.x_size()), out = double(p.y_size());
    reg(m.model + "/maxpool_fwd" + tail, [=](benchmark::State& st) {
      Buf x(std::size_t(p.x_size())), y(std::size_t(p.y_size())), arg(std::size_t(p.y_size()));
      time_gpu(
          st, [&] { kc::cuda::max_pool2d_forward(p, x.f(), y.f(), arg.i(), nullptr); }, 0,
          4.0 * in + 8.0 * out);
    });
    reg(m.model + "/maxpool_bwd" + tail, [=](benchmark::State& st) {
      Buf x(std::size_t(p.x_size())), y(std::size_t(p.y_size())), arg(std::size_t(p.y_size())),
          dx(std::size_t(p.x_size()));
      kc::cuda::max_pool2d_forward(p, x.f(), y.f(), arg.i(), nullptr);  // valid argmax
      time_gpu(
          st, [&] { kc::cuda::max_pool2d_backward(p, y.f(), arg.i(), dx.f(), nullptr); }, 0,
          4.0 * in + 8.0 * out);
    });
  }
  for (const auto& g : m.global_pools) {
    const std::size_t n = std::size_t(g.n) * g.c * g.hw, rows = std::size_t(g.n) * g.c;
    const std::string tail =
        std::string("/") + std::to_string(g.c) + "x" + std::to_string(g.hw) + "/handwritten";
    reg(m.model + "/avgpool_fwd" + tail, [=](benchmark::State& st) {
      Buf x(n), y(rows);
      time_gpu(
          st, [&] { kc::cuda::global_avg_pool_forward(g.n, g.c, g.hw, x.f(), y.f(), nullptr); }, 0,
          4.0 * double(n + rows));
    });
    reg(m.model + "/avgpool_bwd" + tail, [=](benchmark::State& st) {
      Buf dy(rows), dx(n);
      time_gpu(
          st, [&] { kc::cuda::global_avg_pool_backward(g.n, g.c, g.hw, dy.f(), dx.f(), nullptr); },
          0, 4.0 * double(n + rows));
    });
  }
  for (const auto& l : m.linears) {
    const kc::LinearShape s = l.s;
    const double flops = 2.0 * s.n * s.in * s.out;
    for (bool vendor : {false, true}) {
      const char* impl = vendor ? "cublas" : "handwritten";
      reg(m.model + "/linear_fwd/" + l.name + "/" + impl, [=](benchmark::State& st) {
        Buf x(std::size_t(s.n) * s.in), w(std::size_t(s.out) * s.in), b(std::size_t(s.out)),
            y(std::size_t(s.n) * s.out);
        time_gpu(
            st,
            [&] {
              (vendor ? kc::cudnn::linear_forward : kc::cuda::linear_forward)(
                  s, x.f(), w.f(), b.f(), y.f(), nullptr);
            },
            flops, 0);
      });
      reg(m.model + "/linear_bwd/" + l.name + "/" + impl, [=](benchmark::State& st) {
        Buf x(std::size_t(s.n) * s.in), w(std::size_t(s.out) * s.in), dy(std::size_t(s.n) * s.out),
            dx(std::size_t(s.n) * s.in), dw(std::size_t(s.out) * s.in), db(std::size_t(s.out));
        time_gpu(
            st,
            [&] {
              (vendor ? kc::cudnn::linear_backward : kc::cuda::linear_backward)(
                  s, x.f(), w.f(), dy.f(), dx.f(), dw.f(), db.f(), nullptr);
            },
            2.0 * flops, 0);
      });
    }
  }
  reg(m.model + "/mse_fwd_bwd/n" + std::to_string(kBatch) + "/handwritten",
      [](benchmark::State& st) {
        Buf p(kBatch), t(kBatch), loss(1), dp(kBatch);
        time_gpu(
            st,
            [&] {
              kc::cuda::mse_forward(kBatch, p.f(), t.f(), loss.f(), nullptr);
              kc::cuda::mse_backward(kBatch, p.f(), t.f(), nullptr, dp.f(), nullptr);
            },
            0, 4.0 * 4 * kBatch);
      });
  // Adam over every parameter tensor of the model in one launch: 28 bytes per parameter.
  const std::vector<std::size_t> sizes = m.parameter_sizes;
  std::size_t total = 0;
  for (auto n : sizes) total += n;
  reg(m.model + "/adam_all_params/n" + std::to_string(total) + "/handwritten",
      [sizes, total](benchmark::State& st) {
        Buf p(total), g(total), mm(total, 0.f), v(total, 0.f);
        std::vector<kc::cuda::AdamTensor> list;
        std::size_t off = 0;
        for (auto n : sizes) {
          list.push_back({p.f() + off, g.f() + off, mm.f() + off, v.f() + off, n});
          off += n;
        }
        long long step = 0;
        kc::AdamConfig cfg;
        time_gpu(
            st, [&] { kc::cuda::adam_step(list.data(), int(list.size()), cfg, ++step, nullptr); },
            0, 28.0 * double(total));
      });
}

}  // namespace

int main(int argc, char** argv) {
  std::string why;
  if (!halo::cuda::gpu_available(&why)) {
    std::printf("bench_kernels_cuda: no usable GPU (%s); nothing to measure.\n", why.c_str());
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  cudaDeviceProp prop;
  HALO_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("Device: %s (compute capability %d.%d, %d SMs)\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount);
  measure_ceilings();
  register_ceilings();
  for (const auto& m : shapes::all_models(kBatch)) {
    register_convs(m);
    register_norms(m);
    register_pointwise(m);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

#else  // !HALO_HAVE_CUDA

int main() {
  std::printf(
      "bench_kernels_cuda: built without CUDA (HALO_CUDA=OFF, or nvcc/cuDNN not found); "
      "nothing to measure.\n");
  return 0;
}

#endif
