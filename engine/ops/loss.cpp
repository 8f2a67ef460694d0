// mse_loss = mean((pred - target)^2), the regression loss; the target is a constant.
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
    Tensor dp = Tensor::empty(pred.shape());
    kernels::cpu::mse_backward<float>(pred.numel(), pred.data(), target.data(), dloss.item(), dp.data());
    return {dp};
  }
  void release_saved() override { pred = target = Tensor(); }
};
}  // namespace

Tensor mse_loss(const Tensor& pred, const Tensor& target) {
  require_f32(pred, "mse_loss", "prediction");
  require_f32(target, "mse_loss", "target");
  if (pred.numel() != target.numel())
    throw std::invalid_argument("mse_loss: prediction " + pred.str() + " and target " + target.str() +
                                " have different sizes");
  if (pred.numel() == 0) throw std::invalid_argument("mse_loss: empty prediction");
  if (common_device({&pred, &target}, "mse_loss") != Device::cpu) no_cuda_path("mse_loss");
  Tensor loss = Tensor::empty({});
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
