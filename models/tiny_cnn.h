// A tiny convolutional regressor (conv-BN-ReLU x2, global pool, linear) for the demo and the
// end-to-end training test: small enough to train in seconds on a laptop CPU.
#pragma once
#include "engine/nn.h"

namespace halo::models {

class TinyCnn : public nn::Module {
 public:
  explicit TinyCnn(int channels = 8);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "TinyCnn"; }

  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2;
  std::shared_ptr<nn::Linear> fc;
};

}  // namespace halo::models
