// batch_norm2d and layer_norm2d, forward and backward. Both save the per-group mean and 1/std
// computed in the forward pass, so backward never recomputes statistics. On the GPU batch norm goes
// to kernels::cudnn::dispatch (cuDNN or kernels/cuda/norm.cu), layer norm to kernels/cuda/norm.cu.
#include "kernels/norm.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops/common.h"
#include "kernels/activation.h"
#include "kernels/elementwise.h"

namespace halo {
using namespace ops_detail;

namespace {
kernels::NormShape norm_shape(const Tensor& x) {
  return {static_cast<int>(x.size(0)), static_cast<int>(x.size(1)),
          static_cast<int>(x.size(2) * x.size(3))};
}

// Backward of batch_norm2d and of batch_norm2d_add_relu (relu == true: the gradient is first
// masked by the output y > 0, and with a residual the masked gradient is also the residual's).
struct BatchNormBackward : Node {
  kernels::NormShape shape;
  Tensor x, gamma, mean, invstd;  // batch stats (training) or running mean and 1/sqrt(var+eps)
  Tensor y;                       // the output, when relu
  bool training = true, relu = false, residual = false;
  const char* name() const override {
    return relu ? "BatchNormAddReluBackward" : "BatchNormBackward";
  }
  std::vector<Tensor> apply(const Tensor& dy) override {
    const Device dev = dy.device();
    Tensor dx = empty_if(next[0].active(), x.shape(), dev);
    Tensor dg = empty_if(next[1].active(), {shape.c}, dev);
    Tensor db = empty_if(next[2].active(), {shape.c}, dev);
    Tensor dr = empty_if(residual && next[3].active(), x.shape(), dev);
    if (on_gpu(dev)) {
      // The GPU runs the pieces one after another: mask (ReLU's backward), then batch norm's.
      Tensor g = dy;
      if (relu) {
        g = dr.defined() ? dr : Tensor::empty(x.shape(), dev);
        HALO_GPU(
            kernels::cuda::relu_backward(y.numel(), y.data(), dy.data(), g.data(), gpu_stream()));
      }
      HALO_GPU(kernels::cudnn::dispatch::batch_norm_backward(
          shape, x.data(), g.data(), gamma.data(), mean.data(), invstd.data(), training,
          out_or_null(dx), out_or_null(dg), out_or_null(db), gpu_stream()));
    } else if (relu) {
      kernels::cpu::batch_norm_relu_backward<float>(
          shape, x.data(), y.data(), dy.data(), gamma.data(), mean.data(), invstd.data(), training,
          out_or_null(dx), out_or_null(dg), out_or_null(db), out_or_null(dr));
    } else {
      kernels::cpu::batch_norm_backward<float>(shape, x.data(), dy.data(), gamma.data(),
                                               mean.data(), invstd.data(), training,
                                               out_or_null(dx), out_or_null(dg), out_or_null(db));
    }
    if (residual) return {dx, dg, db, dr};
    return {dx, dg, db};
  }
  void release_saved() override { x = gamma = mean = invstd = y = Tensor(); }
};

struct LayerNorm2dBackward : Node {
  kernels::NormShape shape;
  Tensor x, gamma, mean, invstd;
  const char* name() const override { return "LayerNorm2dBackward"; }
  std::vector<Tensor> apply(const Tensor& dy) override {
    const Device dev = dy.device();
    Tensor dx = empty_if(next[0].active(), x.shape(), dev);
    Tensor dg = empty_if(next[1].active(), {shape.c}, dev);
    Tensor db = empty_if(next[2].active(), {shape.c}, dev);
    if (on_gpu(dev))
      HALO_GPU(kernels::cuda::layer_norm2d_backward(
          shape, x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(), out_or_null(dx),
          out_or_null(dg), out_or_null(db), gpu_stream()));
    else
      kernels::cpu::layer_norm2d_backward<float>(shape, x.data(), dy.data(), gamma.data(),
                                                 mean.data(), invstd.data(), out_or_null(dx),
                                                 out_or_null(dg), out_or_null(db));
    return {dx, dg, db};
  }
  void release_saved() override { x = gamma = mean = invstd = Tensor(); }
};
}  // namespace

namespace {
// batch_norm2d, and with relu == true batch_norm2d_add_relu (residual may be undefined).
Tensor batch_norm2d_impl(const Tensor& x, const Tensor& residual, const Tensor& gamma,
                         const Tensor& beta, const Tensor& running_mean, const Tensor& running_var,
                         bool training, float momentum, float eps, bool relu) {
  require_dim(x, 4, "batch_norm2d", "input x [N, C, H, W]");
  if (residual.defined()) {
    require_f32(residual, "batch_norm2d_add_relu", "residual");
    require_same_shape(x, residual, "batch_norm2d_add_relu");
  }
  const int64_t c = x.size(1);
  check_shape(gamma, {c}, "batch_norm2d weight");
  check_shape(beta, {c}, "batch_norm2d bias");
  check_shape(running_mean, {c}, "batch_norm2d running_mean");
  check_shape(running_var, {c}, "batch_norm2d running_var");
  require_f32(gamma, "batch_norm2d", "weight");
  require_f32(beta, "batch_norm2d", "bias");
  require_f32(running_mean, "batch_norm2d", "running_mean");
  require_f32(running_var, "batch_norm2d", "running_var");
  const Device dev =
      common_device({&x, &gamma, &beta, &running_mean, &running_var}, "batch_norm2d");
  if (residual.defined()) common_device({&x, &residual}, "batch_norm2d_add_relu");
  const kernels::NormShape s = norm_shape(x);
  if (training && int64_t(s.n) * s.hw < 2)
    throw std::invalid_argument(
        "batch_norm2d: training needs more than one value per channel, got " + x.str());

  Tensor y = Tensor::empty(x.shape(), dev);
  Tensor mean = Tensor::empty({c}, dev), invstd = Tensor::empty({c}, dev);
  if (training) {
    // Running statistics are buffers, updated in place with no gradient.
    if (on_gpu(dev))
      HALO_GPU(kernels::cudnn::dispatch::batch_norm_forward_train(
          s, x.data(), gamma.data(), beta.data(), eps, momentum, running_mean.data(),
          running_var.data(), y.data(), mean.data(), invstd.data(), gpu_stream()));
    else if (relu)
      kernels::cpu::batch_norm_add_relu_forward_train<float>(
          s, x.data(), ptr_or_null(residual), gamma.data(), beta.data(), eps, momentum,
          running_mean.data(), running_var.data(), y.data(), mean.data(), invstd.data());
    else
      kernels::cpu::batch_norm_forward_train<float>(
          s, x.data(), gamma.data(), beta.data(), eps, momentum, running_mean.data(),
          running_var.data(), y.data(), mean.data(), invstd.data());
  } else {
    if (on_gpu(dev))
      HALO_GPU(kernels::cudnn::dispatch::batch_norm_forward_eval(
          s, x.data(), gamma.data(), beta.data(), running_mean.data(), running_var.data(), eps,
          y.data(), gpu_stream()));
    else if (relu)
      kernels::cpu::batch_norm_add_relu_forward_eval<float>(
          s, x.data(), ptr_or_null(residual), gamma.data(), beta.data(), running_mean.data(),
          running_var.data(), eps, y.data());
    else
      kernels::cpu::batch_norm_forward_eval<float>(s, x.data(), gamma.data(), beta.data(),
                                                   running_mean.data(), running_var.data(), eps,
                                                   y.data());
  }
  if (relu && on_gpu(dev)) {
    // The GPU runs the pieces one after another, in place on y.
    if (residual.defined())
      HALO_GPU(kernels::cuda::add(y.numel(), y.data(), residual.data(), y.data(), gpu_stream()));
    HALO_GPU(kernels::cuda::relu_forward(y.numel(), y.data(), y.data(), gpu_stream()));
  }
  const bool grad = residual.defined() ? needs_grad({&x, &gamma, &beta, &residual})
                                       : needs_grad({&x, &gamma, &beta});
  if (grad) {
    auto node = std::make_shared<BatchNormBackward>();
    node->shape = s;
    node->training = training;
    node->relu = relu;
    node->residual = residual.defined();
    if (relu) node->y = y.detach();
    node->x = x.detach();
    node->gamma = gamma.detach();
    if (training) {
      node->mean = mean;
      node->invstd = invstd;
    } else {  // constants: the running statistics at this moment (computed on the host: C numbers,
              // and only a model trained in eval mode, e.g. with frozen batch norm, comes here)
      node->mean = running_mean.clone();
      Tensor iv = running_var.to(Device::cpu).clone();
      float* p = iv.data();
      for (int64_t i = 0; i < c; ++i) p[i] = 1.f / std::sqrt(p[i] + eps);
      node->invstd = iv.to(dev);
    }
    if (residual.defined())
      attach(y, node, {&x, &gamma, &beta, &residual});
    else
      attach(y, node, {&x, &gamma, &beta});
  }
  return y;
}
}  // namespace

Tensor batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                    const Tensor& running_mean, const Tensor& running_var, bool training,
                    float momentum, float eps) {
  return batch_norm2d_impl(x, Tensor(), gamma, beta, running_mean, running_var, training, momentum,
                           eps, /*relu=*/false);
}

Tensor batch_norm2d_add_relu(const Tensor& x, const Tensor& residual, const Tensor& gamma,
                             const Tensor& beta, const Tensor& running_mean,
                             const Tensor& running_var, bool training, float momentum, float eps) {
  return batch_norm2d_impl(x, residual, gamma, beta, running_mean, running_var, training, momentum,
                           eps, /*relu=*/true);
}

Tensor layer_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps) {
  require_dim(x, 4, "layer_norm2d", "input x [N, C, H, W]");
  const int64_t c = x.size(1);
  check_shape(gamma, {c}, "layer_norm2d weight");
  check_shape(beta, {c}, "layer_norm2d bias");
  require_f32(gamma, "layer_norm2d", "weight");
  require_f32(beta, "layer_norm2d", "bias");
  const Device dev = common_device({&x, &gamma, &beta}, "layer_norm2d");
  const kernels::NormShape s = norm_shape(x);
  Tensor y = Tensor::empty(x.shape(), dev);
  Tensor mean = Tensor::empty({int64_t(s.n) * s.hw}, dev),
         invstd = Tensor::empty({int64_t(s.n) * s.hw}, dev);
  if (on_gpu(dev))
    HALO_GPU(kernels::cuda::layer_norm2d_forward(s, x.data(), gamma.data(), beta.data(), eps,
                                                 y.data(), mean.data(), invstd.data(),
                                                 gpu_stream()));
  else
    kernels::cpu::layer_norm2d_forward<float>(s, x.data(), gamma.data(), beta.data(), eps, y.data(),
                                              mean.data(), invstd.data());
  if (needs_grad({&x, &gamma, &beta})) {
    auto node = std::make_shared<LayerNorm2dBackward>();
    node->shape = s;
    node->x = x.detach();
    node->gamma = gamma.detach();
    node->mean = mean;
    node->invstd = invstd;
    attach(y, node, {&x, &gamma, &beta});
  }
  return y;
}

}  // namespace halo
