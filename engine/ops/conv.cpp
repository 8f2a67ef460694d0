// conv2d: forward and the two backward passes (data and weight) plus the bias gradient.
// Following one training step down to a kernel: ResNet's conv layer calls conv2d() here; autograd
// later calls Conv2dBackward::apply(), which calls kernels::cpu::conv2d_backward_weight() (in
// kernels/cpu/conv.cpp) to compute dL/dW from the saved input x and the incoming gradient dy.
// On the GPU the same three passes go to kernels::cudnn::dispatch (cuDNN or the hand-written
// implicit GEMM of kernels/cuda/conv.cu, as set_conv_backend says); on the CPU to Halo's kernels or
// oneDNN's (kernels/onednn/conv.cpp), as onednn::set_cpu_conv_kernels says.
#include "kernels/conv.h"

#include <chrono>
#include <map>
#include <mutex>
#include <tuple>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/onednn/settings.h"

namespace halo {
using namespace ops_detail;

namespace {
kernels::Conv2dShape conv_shape(const Tensor& x, const Tensor& w, int stride, int padding,
                                int groups) {
  kernels::Conv2dShape s;
  s.n = static_cast<int>(x.size(0));
  s.c_in = static_cast<int>(x.size(1));
  s.h = static_cast<int>(x.size(2));
  s.w = static_cast<int>(x.size(3));
  s.c_out = static_cast<int>(w.size(0));
  s.kh = static_cast<int>(w.size(2));
  s.kw = static_cast<int>(w.size(3));
  s.stride = stride;
  s.pad = padding;
  s.groups = groups;
  return s;
}

// Which CPU implementation runs one pass of one convolution shape.
enum class Pass { forward, backward_data, backward_weight };

// With CpuConvKernels::fastest: the implementation found faster for each (shape, pass), timed on
// its first call. Both implementations overwrite their outputs, so running both is harmless; each
// runs once untimed first (oneDNN builds its primitive, Halo grows its scratch buffers), then once
// timed, and the faster is kept. Ties go to Halo's.
struct FastestKey {
  int n, c_in, h, w, c_out, kh, kw, stride, pad, groups, pass;
  bool operator<(const FastestKey& o) const {
    return std::tie(n, c_in, h, w, c_out, kh, kw, stride, pad, groups, pass) <
           std::tie(o.n, o.c_in, o.h, o.w, o.c_out, o.kh, o.kw, o.stride, o.pad, o.groups, o.pass);
  }
};

template <class Halo, class OneDnn>
void run_fastest(const kernels::Conv2dShape& s, Pass pass, Halo&& halo, OneDnn&& onednn) {
  static std::mutex mu;
  static std::map<FastestKey, bool> use_onednn;  // per (shape, pass), decided once
  const FastestKey key{s.n,  s.c_in,   s.h,   s.w,      s.c_out,  s.kh,
                       s.kw, s.stride, s.pad, s.groups, int(pass)};
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = use_onednn.find(key);
    if (it != use_onednn.end()) return it->second ? onednn() : halo();
  }
  auto seconds = [](auto&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  halo();
  onednn();
  const double t_halo = seconds(halo), t_onednn = seconds(onednn);
  const bool pick = t_onednn < t_halo;
  // The output must be the chosen implementation's, from this call as from every later one: the
  // timed oneDNN call ran last, so Halo's runs again when it is the one kept.
  if (!pick) halo();
  std::lock_guard<std::mutex> lock(mu);
  use_onednn.emplace(key, pick);
}

// Runs one pass with the CPU implementation the switch names (kernels/onednn/settings.h).
// Depthwise convolutions (ConvNeXt's 7x7) stay on Halo's direct loops even when oneDNN is chosen:
// oneDNN 2.6 has no AVX2 JIT kernel for their weight gradient (it falls back to a generic GEMM,
// 5-8x slower than Halo's loop) and its layout reorders cost more than Halo's whole pass
// (bench_kernels_cpu, BM_Conv_* beside BM_OneDnnConv_*; docs/PERFORMANCE.md).
template <class Halo, class OneDnn>
void run_on_cpu(const kernels::Conv2dShape& s, Pass pass, Halo&& halo, OneDnn&& onednn) {
  using kernels::onednn::CpuConvKernels;
  const bool depthwise = s.groups > 1 && s.groups == s.c_in && s.groups == s.c_out;
  const CpuConvKernels k = kernels::onednn::cpu_conv_kernels();
  if (k == CpuConvKernels::halo || depthwise) return halo();
  if (k == CpuConvKernels::onednn) return onednn();
  run_fastest(s, pass, halo, onednn);
}

struct Conv2dBackward : Node {
  kernels::Conv2dShape shape;
  Tensor x, w;  // x is saved only if dW is needed, w only if dx is needed
  const char* name() const override { return "Conv2dBackward"; }
  std::vector<Tensor> apply(const Tensor& dy) override {
    const Device dev = dy.device();
    Tensor dx, dw, db;
    if (next[0].active()) {  // dL/dx = conv_transpose(dy, w)
      dx = Tensor::empty({shape.n, shape.c_in, shape.h, shape.w}, dev);
      if (on_gpu(dev))
        HALO_GPU(kernels::cudnn::dispatch::conv2d_backward_data(shape, dy.data(), w.data(),
                                                                dx.data(), gpu_stream()));
      else
        run_on_cpu(
            shape, Pass::backward_data,
            [&] {
              kernels::cpu::conv2d_backward_data<float>(shape, dy.data(), w.data(), dx.data());
            },
            [&] { kernels::onednn::conv2d_backward_data(shape, dy.data(), w.data(), dx.data()); });
    }
    if (next[1].active()) {  // dL/dw = sum over batch and pixels of dy (x) im2col(x)
      dw = Tensor::empty({shape.c_out, shape.c_in_per_group(), shape.kh, shape.kw}, dev);
      if (on_gpu(dev))
        HALO_GPU(kernels::cudnn::dispatch::conv2d_backward_weight(shape, x.data(), dy.data(),
                                                                  dw.data(), gpu_stream()));
      else
        run_on_cpu(
            shape, Pass::backward_weight,
            [&] {
              kernels::cpu::conv2d_backward_weight<float>(shape, x.data(), dy.data(), dw.data());
            },
            [&] {
              kernels::onednn::conv2d_backward_weight(shape, x.data(), dy.data(), dw.data());
            });
    }
    if (next.size() > 2 && next[2].active()) {  // dL/db = sum over batch and pixels of dy
      db = Tensor::empty({shape.c_out}, dev);
      if (on_gpu(dev))
        HALO_GPU(kernels::cudnn::dispatch::conv2d_backward_bias(shape, dy.data(), db.data(),
                                                                gpu_stream()));
      else
        kernels::cpu::conv2d_backward_bias<float>(shape, dy.data(), db.data());
    }
    return {dx, dw, db};
  }
  void release_saved() override { x = w = Tensor(); }
};
}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, int stride, int padding,
              int groups) {
  require_dim(x, 4, "conv2d", "input x [N, C, H, W]");
  require_dim(w, 4, "conv2d", "weight [C_out, C_in/groups, kH, kW]");
  if (stride < 1 || padding < 0 || groups < 1)
    throw std::invalid_argument("conv2d: need stride >= 1, padding >= 0, groups >= 1");
  if (x.size(1) % groups != 0 || w.size(0) % groups != 0)
    throw std::invalid_argument("conv2d: channels (in " + std::to_string(x.size(1)) + ", out " +
                                std::to_string(w.size(0)) + ") not divisible by groups " +
                                std::to_string(groups));
  if (w.size(1) * groups != x.size(1))
    throw std::invalid_argument("conv2d: weight " + to_string(w.shape()) + " expects " +
                                std::to_string(w.size(1) * groups) + " input channels, input is " +
                                x.str());
  if (bias.defined()) {
    check_shape(bias, {w.size(0)}, "conv2d bias");
    require_f32(bias, "conv2d", "bias");
  }
  const Device dev = common_device({&x, &w, &bias}, "conv2d");
  const kernels::Conv2dShape s = conv_shape(x, w, stride, padding, groups);
  if (s.h + 2 * padding < s.kh || s.w + 2 * padding < s.kw)
    throw std::invalid_argument("conv2d: kernel " + to_string(w.shape()) +
                                " larger than padded input " + x.str());

  Tensor y = Tensor::empty({s.n, s.c_out, s.h_out(), s.w_out()}, dev);
  if (on_gpu(dev))
    HALO_GPU(kernels::cudnn::dispatch::conv2d_forward(s, x.data(), w.data(), ptr_or_null(bias),
                                                      y.data(), gpu_stream()));
  else  // oneDNN takes the bias in the same pass, as Halo's kernel does
    run_on_cpu(
        s, Pass::forward,
        [&] {
          kernels::cpu::conv2d_forward<float>(s, x.data(), w.data(), ptr_or_null(bias), y.data());
        },
        [&] {
          kernels::onednn::conv2d_forward(s, x.data(), w.data(), ptr_or_null(bias), y.data());
        });
  if (needs_grad({&x, &w, &bias})) {
    auto node = std::make_shared<Conv2dBackward>();
    node->shape = s;
    attach(y, node, {&x, &w, &bias});
    if (node->next[1].active()) node->x = x.detach();
    if (node->next[0].active()) node->w = w.detach();
  }
  return y;
}

}  // namespace halo
