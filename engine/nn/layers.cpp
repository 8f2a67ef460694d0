// The layers of nn.h. Each forward() is one call into engine/ops; constructors set PyTorch's
// default initialisation (models may re-initialise as timm does).
#include <cmath>

#include "engine/nn.h"
#include "engine/ops.h"

namespace halo::nn {

namespace {
// PyTorch's default for Conv2d and Linear: kaiming_uniform_(a = sqrt(5)) on the weight, which is
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias.
Tensor uniform_fan_in(const Shape& shape, int64_t fan_in) {
  const float bound = 1.f / std::sqrt(static_cast<float>(fan_in));
  return Tensor::uniform(shape, init_rng(), -bound, bound);
}
}  // namespace

Conv2d::Conv2d(int in_, int out_, int kernel_, int stride_, int padding_, int groups_,
               bool has_bias)
    : in(in_), out(out_), kernel(kernel_), stride(stride_), padding(padding_), groups(groups_) {
  if (in % groups || out % groups)
    throw std::invalid_argument("Conv2d: channels " + std::to_string(in) + "->" +
                                std::to_string(out) + " not divisible by groups " +
                                std::to_string(groups));
  const int64_t fan_in = int64_t(in / groups) * kernel * kernel;
  weight = register_parameter("weight", uniform_fan_in({out, in / groups, kernel, kernel}, fan_in));
  if (has_bias) bias = register_parameter("bias", uniform_fan_in({out}, fan_in));
}
Tensor Conv2d::forward(const Tensor& x) {
  return conv2d(x, weight, bias, stride, padding, groups);
}
std::string Conv2d::describe() const {
  return std::to_string(in) + "->" + std::to_string(out) + ", k" + std::to_string(kernel) + ", s" +
         std::to_string(stride) + ", p" + std::to_string(padding) +
         (groups > 1 ? ", groups " + std::to_string(groups) : "") +
         (bias.defined() ? "" : ", no bias");
}

BatchNorm2d::BatchNorm2d(int c, float eps_, float momentum_)
    : channels(c), eps(eps_), momentum(momentum_) {
  weight = register_parameter("weight", Tensor::ones({c}));
  bias = register_parameter("bias", Tensor::zeros({c}));
  running_mean = register_buffer("running_mean", Tensor::zeros({c}));
  running_var = register_buffer("running_var", Tensor::ones({c}));
  num_batches_tracked = register_buffer("num_batches_tracked", Tensor::scalar_i64(0));
}
Tensor BatchNorm2d::forward(const Tensor& x) {
  if (is_training()) num_batches_tracked.data_i64()[0] += 1;
  return batch_norm2d(x, weight, bias, running_mean, running_var, is_training(), momentum, eps);
}
Tensor BatchNorm2d::forward_add_relu(const Tensor& x, const Tensor& residual) {
  if (is_training()) num_batches_tracked.data_i64()[0] += 1;
  return batch_norm2d_add_relu(x, residual, weight, bias, running_mean, running_var, is_training(),
                               momentum, eps);
}
std::string BatchNorm2d::describe() const {
  return std::to_string(channels) + ", eps " + std::to_string(eps);
}

LayerNorm2d::LayerNorm2d(int c, float eps_) : channels(c), eps(eps_) {
  weight = register_parameter("weight", Tensor::ones({c}));
  bias = register_parameter("bias", Tensor::zeros({c}));
}
Tensor LayerNorm2d::forward(const Tensor& x) {
  return layer_norm2d(x, weight, bias, eps);
}
std::string LayerNorm2d::describe() const {
  return std::to_string(channels) + ", eps " + std::to_string(eps);
}

Linear::Linear(int in_, int out_, bool has_bias) : in(in_), out(out_) {
  weight = register_parameter("weight", uniform_fan_in({out, in}, in));
  if (has_bias) bias = register_parameter("bias", uniform_fan_in({out}, in));
}
Tensor Linear::forward(const Tensor& x) {
  return linear(x, weight, bias);
}
std::string Linear::describe() const {
  return std::to_string(in) + "->" + std::to_string(out) + (bias.defined() ? "" : ", no bias");
}

Tensor ReLU::forward(const Tensor& x) {
  return relu(x);
}
Tensor GELU::forward(const Tensor& x) {
  return gelu(x);
}

MaxPool2d::MaxPool2d(int k, int s, int p) : kernel(k), stride(s), padding(p) {}
Tensor MaxPool2d::forward(const Tensor& x) {
  return max_pool2d(x, kernel, stride, padding);
}
std::string MaxPool2d::describe() const {
  return "k" + std::to_string(kernel) + ", s" + std::to_string(stride) + ", p" +
         std::to_string(padding);
}

Tensor GlobalAvgPool::forward(const Tensor& x) {
  return global_avg_pool2d(x).flatten(1);
}

Sequential::Sequential(std::vector<ModulePtr> modules) {
  for (auto& m : modules) push_back(std::move(m));
}
void Sequential::push_back(ModulePtr m) {
  register_module(std::to_string(size()), std::move(m));
}
Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& [name, m] : named_children()) h = m->forward(h);
  return h;
}

}  // namespace halo::nn
