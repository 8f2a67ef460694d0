// Elementwise ops: add, mul, mul_channel (per-channel scale) and in-place accumulation.
// Forward and backward side by side; the kernels are in kernels/cpu/elementwise.cpp.
#include "kernels/elementwise.h"

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops/common.h"

namespace halo {
using namespace ops_detail;

// ---- add: y = a + b;  da = dy, db = dy
// ------------------------------------------------------------
namespace {
struct AddBackward : Node {
  const char* name() const override { return "AddBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {g, g}; }
};
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  require_f32(a, "add", "a");
  require_f32(b, "add", "b");
  require_same_shape(a, b, "add");
  const Device dev = common_device({&a, &b}, "add");
  Tensor y = Tensor::empty(a.shape(), dev);
  if (on_gpu(dev))
    HALO_GPU(kernels::cuda::add(a.numel(), a.data(), b.data(), y.data(), gpu_stream()));
  else
    kernels::cpu::add<float>(a.numel(), a.data(), b.data(), y.data());
  if (needs_grad({&a, &b})) attach(y, std::make_shared<AddBackward>(), {&a, &b});
  return y;
}

void add_(Tensor& a, const Tensor& b) {
  require_f32(a, "add_", "a");
  require_f32(b, "add_", "b");
  require_same_shape(a, b, "add_");
  if (grad_enabled() && a.requires_grad())
    throw std::logic_error(
        "add_: in-place update of a tensor that requires grad while grad mode "
        "is on (wrap it in NoGradGuard)");
  if (on_gpu(common_device({&a, &b}, "add_")))
    HALO_GPU(kernels::cuda::axpy(a.numel(), 1.f, b.data(), a.data(), gpu_stream()));
  else
    kernels::cpu::axpy<float>(a.numel(), 1.f, b.data(), a.data());
}

// ---- mul: y = a * b;  da = dy * b, db = dy * a
// --------------------------------------------------------
namespace {
Tensor times(const Tensor& a, const Tensor& b) {  // a * b on a's device, no autograd
  Tensor y = Tensor::empty(a.shape(), a.device());
  if (on_gpu(a.device()))
    HALO_GPU(kernels::cuda::mul(a.numel(), a.data(), b.data(), y.data(), gpu_stream()));
  else
    kernels::cpu::mul<float>(a.numel(), a.data(), b.data(), y.data());
  return y;
}

struct MulBackward : Node {
  Tensor a, b;  // saved inputs (only those whose partner needs a gradient)
  const char* name() const override { return "MulBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor da, db;
    if (next[0].active()) da = times(g, b);
    if (next[1].active()) db = times(g, a);
    return {da, db};
  }
  void release_saved() override { a = b = Tensor(); }
};
}  // namespace

Tensor mul(const Tensor& a, const Tensor& b) {
  require_f32(a, "mul", "a");
  require_f32(b, "mul", "b");
  require_same_shape(a, b, "mul");
  common_device({&a, &b}, "mul");
  Tensor y = times(a, b);
  if (needs_grad({&a, &b})) {
    auto node = std::make_shared<MulBackward>();
    attach(y, node, {&a, &b});
    if (node->next[1].active()) node->a = a.detach();
    if (node->next[0].active()) node->b = b.detach();
  }
  return y;
}

// ---- mul_channel: y[n,c,p] = x[n,c,p] * s[c];  dx = dy * s[c], ds[c] = sum_{n,p} dy * x
// ----------
namespace {
struct MulChannelBackward : Node {
  Tensor x, s;
  const char* name() const override { return "MulChannelBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    const int outer = static_cast<int>(x.size(0)), c = static_cast<int>(x.size(1));
    const int inner = static_cast<int>(x.numel() / (int64_t(outer) * c));
    Tensor dx = empty_if(next[0].active(), x.shape(), x.device());
    Tensor ds = empty_if(next[1].active(), s.shape(), x.device());
    if (on_gpu(x.device()))
      HALO_GPU(kernels::cuda::mul_channel_backward(outer, c, inner, x.data(), s.data(), g.data(),
                                                   out_or_null(dx), out_or_null(ds), gpu_stream()));
    else
      kernels::cpu::mul_channel_backward<float>(outer, c, inner, x.data(), s.data(), g.data(),
                                                out_or_null(dx), out_or_null(ds));
    return {dx, ds};
  }
  void release_saved() override { x = s = Tensor(); }
};
}  // namespace

Tensor mul_channel(const Tensor& x, const Tensor& s) {
  require_f32(x, "mul_channel", "x");
  require_dim(s, 1, "mul_channel", "s");
  if (x.dim() < 2 || x.size(1) != s.size(0))
    throw std::invalid_argument("mul_channel: x must be [N, C, ...] with C = " +
                                std::to_string(s.size(0)) + ", got " + x.str());
  // The kernels take x as [outer, c, inner] blocks, each size >= 1 (inner is numel / (outer c)).
  if (x.numel() == 0)
    throw std::invalid_argument("mul_channel: x must have no zero-size dimension, got " + x.str());
  const Device dev = common_device({&x, &s}, "mul_channel");
  const int outer = static_cast<int>(x.size(0)), c = static_cast<int>(x.size(1));
  const int inner = static_cast<int>(x.numel() / (int64_t(outer) * c));
  Tensor y = Tensor::empty(x.shape(), dev);
  if (on_gpu(dev))
    HALO_GPU(kernels::cuda::mul_channel_forward(outer, c, inner, x.data(), s.data(), y.data(),
                                                gpu_stream()));
  else
    kernels::cpu::mul_channel_forward<float>(outer, c, inner, x.data(), s.data(), y.data());
  if (needs_grad({&x, &s})) {
    auto node = std::make_shared<MulChannelBackward>();
    node->x = x.detach();
    node->s = s.detach();
    attach(y, node, {&x, &s});
  }
  return y;
}

}  // namespace halo
