// max_pool2d (saves the argmax of each window for backward) and global_avg_pool2d.
#include "kernels/pool.h"

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops/common.h"

namespace halo {
using namespace ops_detail;

namespace {
struct MaxPoolBackward : Node {
  kernels::Pool2dShape shape;
  std::shared_ptr<Storage> argmax;  // int32 per output, on the tensors' device
  const char* name() const override { return "MaxPoolBackward"; }
  std::vector<Tensor> apply(const Tensor& dy) override {
    Tensor dx = Tensor::empty({shape.n, shape.c, shape.h, shape.w}, dy.device());
    const auto* am = static_cast<const int32_t*>(argmax->data());
    if (on_gpu(dy.device()))
      HALO_GPU(kernels::cuda::max_pool2d_backward(shape, dy.data(), am, dx.data(), gpu_stream()));
    else
      kernels::cpu::max_pool2d_backward<float>(shape, dy.data(), am, dx.data());
    return {dx};
  }
  void release_saved() override { argmax.reset(); }
};

struct GlobalAvgPoolBackward : Node {
  int n = 0, c = 0, h = 0, w = 0;
  const char* name() const override { return "GlobalAvgPoolBackward"; }
  std::vector<Tensor> apply(const Tensor& dy) override {
    Tensor dx = Tensor::empty({n, c, h, w}, dy.device());
    if (on_gpu(dy.device()))
      HALO_GPU(
          kernels::cuda::global_avg_pool_backward(n, c, h * w, dy.data(), dx.data(), gpu_stream()));
    else
      kernels::cpu::global_avg_pool_backward<float>(n, c, h * w, dy.data(), dx.data());
    return {dx};
  }
};
}  // namespace

Tensor max_pool2d(const Tensor& x, int kernel, int stride, int padding) {
  require_dim(x, 4, "max_pool2d", "input x [N, C, H, W]");
  // An empty plane leaves every window in the padding: the maximum would be -inf and its argmax
  // a pixel that does not exist, which backward would write to.
  if (x.size(2) < 1 || x.size(3) < 1)
    throw std::invalid_argument("max_pool2d: input x must have H, W >= 1, got " + x.str());
  if (kernel < 1 || stride < 1 || padding < 0 || 2 * padding > kernel)
    throw std::invalid_argument(
        "max_pool2d: need kernel >= 1, stride >= 1, 0 <= padding <= kernel/2");
  kernels::Pool2dShape s;
  s.n = static_cast<int>(x.size(0));
  s.c = static_cast<int>(x.size(1));
  s.h = static_cast<int>(x.size(2));
  s.w = static_cast<int>(x.size(3));
  s.k = kernel;
  s.stride = stride;
  s.pad = padding;
  if (s.h + 2 * padding < kernel || s.w + 2 * padding < kernel)
    throw std::invalid_argument("max_pool2d: input " + x.str() + " smaller than the window");
  const Device dev = x.device();
  Tensor y = Tensor::empty({s.n, s.c, s.h_out(), s.w_out()}, dev);
  const bool grad = needs_grad({&x});
  auto argmax =
      std::make_shared<Storage>(static_cast<std::size_t>(s.y_size()) * sizeof(int32_t), dev);
  auto* am = static_cast<int32_t*>(argmax->data());
  if (on_gpu(dev))
    HALO_GPU(kernels::cuda::max_pool2d_forward(s, x.data(), y.data(), am, gpu_stream()));
  else  // without a gradient to route (eval), the CPU kernel skips the argmax
    kernels::cpu::max_pool2d_forward<float>(s, x.data(), y.data(), grad ? am : nullptr);
  if (grad) {
    auto node = std::make_shared<MaxPoolBackward>();
    node->shape = s;
    node->argmax = std::move(argmax);
    attach(y, node, {&x});
  }
  return y;
}

Tensor global_avg_pool2d(const Tensor& x) {
  require_dim(x, 4, "global_avg_pool2d", "input x [N, C, H, W]");
  if (x.size(2) < 1 || x.size(3) < 1)  // the mean over no pixels would be 0/0
    throw std::invalid_argument("global_avg_pool2d: input x must have H, W >= 1, got " + x.str());
  const int n = static_cast<int>(x.size(0)), c = static_cast<int>(x.size(1));
  const int h = static_cast<int>(x.size(2)), w = static_cast<int>(x.size(3));
  Tensor y = Tensor::empty({n, c, 1, 1}, x.device());
  if (on_gpu(x.device()))
    HALO_GPU(kernels::cuda::global_avg_pool_forward(n, c, h * w, x.data(), y.data(), gpu_stream()));
  else
    kernels::cpu::global_avg_pool_forward<float>(n, c, h * w, x.data(), y.data());
  if (needs_grad({&x})) {
    auto node = std::make_shared<GlobalAvgPoolBackward>();
    node->n = n;
    node->c = c;
    node->h = h;
    node->w = w;
    attach(y, node, {&x});
  }
  return y;
}

}  // namespace halo
