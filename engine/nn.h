// Neural-network modules (PyTorch's nn.Module idea): a module owns named parameters, buffers and
// child modules, so that state-dict keys come out exactly as PyTorch names them
// ("layer1.0.conv1.weight", "bn1.running_mean", "bn1.num_batches_tracked").
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace halo {

// An ordered name -> tensor list (insertion order = PyTorch's state_dict order).
class StateDict {
 public:
  void set(const std::string& key, const Tensor& t);  // replaces or appends
  bool contains(const std::string& key) const;
  const Tensor& at(const std::string& key) const&;  // throws std::out_of_range naming the key
  // On a temporary (`const Tensor& w = model.state_dict().at(k)`) a handle to the same storage,
  // so the reference does not outlive the dict (AddressSanitizer caught a test doing that).
  Tensor at(const std::string& key) && { return static_cast<const StateDict&>(*this).at(key); }
  const std::vector<std::pair<std::string, Tensor>>& items() const& { return items_; }
  // On a temporary (`for (auto& kv : model.state_dict().items())`) return by value, so the
  // range-for does not iterate a destroyed vector.
  std::vector<std::pair<std::string, Tensor>> items() && { return std::move(items_); }
  std::vector<std::string> keys() const;
  std::size_t size() const { return items_.size(); }

 private:
  std::vector<std::pair<std::string, Tensor>> items_;
};

namespace nn {

class Module {
 public:
  virtual ~Module() = default;
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
  virtual std::string type_name() const = 0;  // "Conv2d", "BatchNorm2d", ...
  // One-line description of the layer's settings, e.g. "1->64, k7, s2, p3, no bias".
  virtual std::string describe() const { return ""; }

  void train(bool on = true);  // recursive, as PyTorch
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Recursive, in PyTorch's order: own entries first, then each child's, prefixed "child.".
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const {
    return children_;
  }
  std::vector<Tensor> parameters() const;
  int64_t num_parameters() const;
  void zero_grad();
  // Moves every parameter and buffer to `device` in place (handles stay valid).
  void to(Device device);

  // Parameters and buffers (state_dict order as PyTorch: for each module, parameters, then
  // buffers, then children). Tensors share storage with the module.
  StateDict state_dict() const;
  // Copies values in by key. strict: every key of the module must be present and no other key may
  // be. A missing/unexpected key or a shape/dtype mismatch throws std::invalid_argument naming
  // the key and what was expected; on error nothing has been changed.
  void load_state_dict(const StateDict& sd, bool strict = true);

 protected:
  Tensor register_parameter(const std::string& name, Tensor t);  // sets requires_grad
  Tensor register_buffer(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  void collect(const std::string& prefix, bool params, bool buffers,
               std::vector<std::pair<std::string, Tensor>>& out) const;
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

using ModulePtr = std::shared_ptr<Module>;

// ---- layers (nn/layers.cpp). Default initialisation is PyTorch's for the layer. -----------------
class Conv2d : public Module {
 public:
  Conv2d(int in, int out, int kernel, int stride = 1, int padding = 0, int groups = 1,
         bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Conv2d"; }
  std::string describe() const override;
  Tensor weight, bias;  // bias undefined when bias == false
  int in, out, kernel, stride, padding, groups;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int channels, float eps = 1e-5f, float momentum = 0.1f);
  Tensor forward(const Tensor& x) override;
  // relu(forward(x) + residual) as one fused op (ops::batch_norm2d_add_relu); residual may be an
  // undefined Tensor. Same statistics and buffer updates as forward().
  Tensor forward_add_relu(const Tensor& x, const Tensor& residual);
  std::string type_name() const override { return "BatchNorm2d"; }
  std::string describe() const override;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;  // the last is int64 []
  int channels;
  float eps, momentum;
};

// LayerNorm over the channel dimension of NCHW (timm's LayerNorm2d).
class LayerNorm2d : public Module {
 public:
  explicit LayerNorm2d(int channels, float eps = 1e-6f);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "LayerNorm2d"; }
  std::string describe() const override;
  Tensor weight, bias;
  int channels;
  float eps;
};

class Linear : public Module {
 public:
  Linear(int in, int out, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Linear"; }
  std::string describe() const override;
  Tensor weight, bias;
  int in, out;
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ReLU"; }
};

class GELU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "GELU"; }
};

class MaxPool2d : public Module {
 public:
  MaxPool2d(int kernel = 3, int stride = 2, int padding = 1);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "MaxPool2d"; }
  std::string describe() const override;
  int kernel, stride, padding;
};

// [N, C, H, W] -> [N, C] (global average pool, then flatten).
class GlobalAvgPool : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "GlobalAvgPool"; }
};

class Flatten : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x.flatten(1); }
  std::string type_name() const override { return "Flatten"; }
};

// Children named "0", "1", ... run in order.
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<ModulePtr> modules);
  void push_back(ModulePtr m);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sequential"; }
  std::size_t size() const { return named_children().size(); }
};

// The random generator that layer constructors draw their initial weights from. Seed it before
// building a model to make the initialisation reproducible.
std::mt19937_64& init_rng();
void manual_seed(uint64_t seed);

}  // namespace nn
}  // namespace halo
