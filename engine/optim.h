// Optimizers. Adam follows torch.optim.Adam exactly (and AdamW with decoupled weight decay):
// per-parameter step counts, bias correction, eps added to the bias-corrected sqrt(v).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "engine/nn.h"
#include "engine/tensor.h"
#include "kernels/optim.h"

namespace halo {

class Adam {
 public:
  Adam(std::vector<std::pair<std::string, Tensor>> named_params, kernels::AdamConfig config = {});
  // Updates every parameter that has a gradient; parameters without one are left alone (their
  // step count does not advance), as in PyTorch.
  void step();
  void zero_grad();
  void set_lr(double lr) { config_.lr = lr; }
  double lr() const { return config_.lr; }
  const kernels::AdamConfig& config() const { return config_; }

  // Optimizer state for checkpoints: "<param>.exp_avg", "<param>.exp_avg_sq" (float tensors) and
  // "<param>.step" (int64 scalar). load_state() checks every key and shape.
  StateDict state() const;
  void load_state(const StateDict& sd);

 private:
  struct Slot {
    std::string name;
    Tensor param, exp_avg, exp_avg_sq;
    long long step = 0;
  };
  std::vector<Slot> slots_;
  kernels::AdamConfig config_;
};

}  // namespace halo
