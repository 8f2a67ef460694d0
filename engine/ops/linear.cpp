// linear: y = x W^T + b (PyTorch's nn.Linear), on the row-major GEMM of kernels/cpu/blas.cpp.
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/blas.h"

namespace halo {
using namespace ops_detail;

namespace {
struct LinearBackward : Node {
  kernels::LinearShape shape;
  Tensor x, w;
  const char* name() const override { return "LinearBackward"; }
  std::vector<Tensor> apply(const Tensor& dy) override {
    const Device dev = dy.device();
    Tensor dx = empty_if(next[0].active(), {shape.n, shape.in}, dev);
    Tensor dw = empty_if(next[1].active(), {shape.out, shape.in}, dev);
    Tensor db = empty_if(next[2].active(), {shape.out}, dev);
    if (on_gpu(dev))
      HALO_GPU(kernels::cudnn::dispatch::linear_backward(shape, x.data(), w.data(), dy.data(),
                                                         out_or_null(dx), out_or_null(dw),
                                                         out_or_null(db), gpu_stream()));
    else
      kernels::cpu::linear_backward<float>(shape, x.data(), w.data(), dy.data(), out_or_null(dx),
                                           out_or_null(dw), out_or_null(db));
    return {dx, dw, db};
  }
  void release_saved() override { x = w = Tensor(); }
};
}  // namespace

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  require_dim(x, 2, "linear", "input x [N, in]");
  require_dim(w, 2, "linear", "weight [out, in]");
  if (w.size(1) != x.size(1))
    throw std::invalid_argument("linear: weight " + to_string(w.shape()) + " expects " +
                                std::to_string(w.size(1)) + " input features, input is " + x.str());
  if (bias.defined()) {
    check_shape(bias, {w.size(0)}, "linear bias");
    require_f32(bias, "linear", "bias");
  }
  const Device dev = common_device({&x, &w, &bias}, "linear");
  kernels::LinearShape s{static_cast<int>(x.size(0)), static_cast<int>(x.size(1)),
                         static_cast<int>(w.size(0))};
  Tensor y = Tensor::empty({s.n, s.out}, dev);
  if (on_gpu(dev))
    HALO_GPU(kernels::cudnn::dispatch::linear_forward(s, x.data(), w.data(), ptr_or_null(bias),
                                                      y.data(), gpu_stream()));
  else
    kernels::cpu::linear_forward<float>(s, x.data(), w.data(), ptr_or_null(bias), y.data());
  if (needs_grad({&x, &w, &bias})) {
    auto node = std::make_shared<LinearBackward>();
    node->shape = s;
    attach(y, node, {&x, &w, &bias});
    node->w = w.detach();
    node->x = x.detach();
  }
  return y;
}

}  // namespace halo
