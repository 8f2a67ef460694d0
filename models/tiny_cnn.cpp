// TinyCnn (see tiny_cnn.h).
#include "models/tiny_cnn.h"

#include "engine/ops.h"

namespace halo::models {

TinyCnn::TinyCnn(int c) {
  conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(1, c, 3, 1, 1, 1, false));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(c));
  conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(c, 2 * c, 3, 2, 1, 1, false));
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(2 * c));
  fc = register_module("fc", std::make_shared<nn::Linear>(2 * c, 1));
}

Tensor TinyCnn::forward(const Tensor& x) {
  Tensor h = relu((*bn1)((*conv1)(x)));
  h = relu((*bn2)((*conv2)(h)));
  return (*fc)(global_avg_pool2d(h).flatten(1));
}

}  // namespace halo::models
