// Activation ops: ReLU and exact GELU. ReLU saves its output (y > 0 <=> x > 0), GELU its input.
#include "kernels/activation.h"

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops/common.h"

namespace halo {
using namespace ops_detail;

namespace {
struct ReluBackward : Node {
  Tensor y;
  const char* name() const override { return "ReluBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor dx = Tensor::empty(y.shape(), y.device());
    if (on_gpu(y.device()))
      HALO_GPU(
          kernels::cuda::relu_backward(y.numel(), y.data(), g.data(), dx.data(), gpu_stream()));
    else
      kernels::cpu::relu_backward<float>(y.numel(), y.data(), g.data(), dx.data());
    return {dx};
  }
  void release_saved() override { y = Tensor(); }
};

struct GeluBackward : Node {
  Tensor x;
  const char* name() const override { return "GeluBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor dx = Tensor::empty(x.shape(), x.device());
    if (on_gpu(x.device()))
      HALO_GPU(
          kernels::cuda::gelu_backward(x.numel(), x.data(), g.data(), dx.data(), gpu_stream()));
    else
      kernels::cpu::gelu_backward<float>(x.numel(), x.data(), g.data(), dx.data());
    return {dx};
  }
  void release_saved() override { x = Tensor(); }
};
}  // namespace

Tensor relu(const Tensor& x) {
  require_f32(x, "relu", "x");
  Tensor y = Tensor::empty(x.shape(), x.device());
  if (on_gpu(x.device()))
    HALO_GPU(kernels::cuda::relu_forward(x.numel(), x.data(), y.data(), gpu_stream()));
  else
    kernels::cpu::relu_forward<float>(x.numel(), x.data(), y.data());
  if (needs_grad({&x})) {
    auto node = std::make_shared<ReluBackward>();
    node->y = y.detach();
    attach(y, node, {&x});
  }
  return y;
}

Tensor gelu(const Tensor& x) {
  require_f32(x, "gelu", "x");
  Tensor y = Tensor::empty(x.shape(), x.device());
  if (on_gpu(x.device()))
    HALO_GPU(kernels::cuda::gelu_forward(x.numel(), x.data(), y.data(), gpu_stream()));
  else
    kernels::cpu::gelu_forward<float>(x.numel(), x.data(), y.data());
  if (needs_grad({&x})) {
    auto node = std::make_shared<GeluBackward>();
    node->x = x.detach();
    attach(y, node, {&x});
  }
  return y;
}

}  // namespace halo
