// conv2d: forward and the two backward passes (data and weight) plus the bias gradient.
// Following one training step down to a kernel: ResNet's conv layer calls conv2d() here; autograd
// later calls Conv2dBackward::apply(), which calls kernels::cpu::conv2d_backward_weight() (in
// kernels/cpu/conv.cpp) to compute dL/dW from the saved input x and the incoming gradient dy.
// On the GPU the same three passes go to kernels::cudnn::dispatch (cuDNN or the hand-written
// implicit GEMM of kernels/cuda/conv.cu, as set_conv_backend says); on the CPU to Halo's kernels or
// oneDNN's (kernels/onednn/conv.cpp), as onednn::set_cpu_conv_kernels says.
#include "kernels/conv.h"

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

// The CPU's convolution implementation for this call: oneDNN or Halo's own (the reference).
bool cpu_uses_onednn() {
  return kernels::onednn::cpu_conv_kernels() == kernels::onednn::CpuConvKernels::onednn;
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
      else if (cpu_uses_onednn())
        kernels::onednn::conv2d_backward_data(shape, dy.data(), w.data(), dx.data());
      else
        kernels::cpu::conv2d_backward_data<float>(shape, dy.data(), w.data(), dx.data());
    }
    if (next[1].active()) {  // dL/dw = sum over batch and pixels of dy (x) im2col(x)
      dw = Tensor::empty({shape.c_out, shape.c_in_per_group(), shape.kh, shape.kw}, dev);
      if (on_gpu(dev))
        HALO_GPU(kernels::cudnn::dispatch::conv2d_backward_weight(shape, x.data(), dy.data(),
                                                                  dw.data(), gpu_stream()));
      else if (cpu_uses_onednn())
        kernels::onednn::conv2d_backward_weight(shape, x.data(), dy.data(), dw.data());
      else
        kernels::cpu::conv2d_backward_weight<float>(shape, x.data(), dy.data(), dw.data());
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
  else if (cpu_uses_onednn())  // takes the bias in the same pass, as Halo's kernel does
    kernels::onednn::conv2d_forward(s, x.data(), w.data(), ptr_or_null(bias), y.data());
  else
    kernels::cpu::conv2d_forward<float>(s, x.data(), w.data(), ptr_or_null(bias), y.data());
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
