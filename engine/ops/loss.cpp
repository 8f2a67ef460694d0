// mse_loss = mean((pred - target)^2), the regression loss; the target is a constant.
// On the GPU the loss stays in device memory (a 0-d CUDA tensor): nothing is copied to the host
// until someone reads it (item()), and backward reads the upstream gradient from device memory.
#include "kernels/loss.h"

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops/common.h"

namespace halo {
using namespace ops_detail;

namespace {
struct MseBackward : Node {
  Tensor pred, target;
  const char* name() const override { return "MseBackward"; }
  std::vector<Tensor> apply(const Tensor& dloss) override {
    Tensor dp = Tensor::empty(pred.shape(), pred.device());
    if (on_gpu(pred.device()))
      HALO_GPU(kernels::cuda::mse_backward(pred.numel(), pred.data(), target.data(), dloss.data(),
                                           dp.data(), gpu_stream()));
    else
      kernels::cpu::mse_backward<float>(pred.numel(), pred.data(), target.data(), dloss.item(),
                                        dp.data());
    return {dp};
  }
  void release_saved() override { pred = target = Tensor(); }
};
}  // namespace

Tensor mse_loss(const Tensor& pred, const Tensor& target) {
  require_f32(pred, "mse_loss", "prediction");
  require_f32(target, "mse_loss", "target");
  if (pred.numel() != target.numel())
    throw std::invalid_argument("mse_loss: prediction " + pred.str() + " and target " +
                                target.str() + " have different sizes");
  if (pred.numel() == 0) throw std::invalid_argument("mse_loss: empty prediction");
  const Device dev = common_device({&pred, &target}, "mse_loss");
  Tensor loss = Tensor::empty({}, dev);
  if (on_gpu(dev))
    HALO_GPU(kernels::cuda::mse_forward(pred.numel(), pred.data(), target.data(), loss.data(),
                                        gpu_stream()));
  else
    loss.data()[0] = kernels::cpu::mse_forward<float>(pred.numel(), pred.data(), target.data());
  if (needs_grad({&pred})) {
    auto node = std::make_shared<MseBackward>();
    node->pred = pred.detach();
    node->target = target.detach();
    attach(loss, node, {&pred});
  }
  return loss;
}

}  // namespace halo
