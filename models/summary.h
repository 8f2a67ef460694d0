// Model summaries (layers, output shapes, parameters, multiply-accumulates per image), printable
// and as JSON, plus the small tracing hook the models call their children through so that one
// forward pass can record what ran, in order, with the shape it produced.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/nn.h"

namespace halo::models {

// Runs m.forward(x). When a summary is being recorded on this thread, also notes the module, the
// shape of its output and, for Conv2d and Linear, its multiply-accumulates. Models call their
// children through this instead of operator() so that summarize() sees nested modules.
Tensor call(nn::Module& m, const Tensor& x);
template <class M>
Tensor call(const std::shared_ptr<M>& m, const Tensor& x) {
  return call(static_cast<nn::Module&>(*m), x);
}

// relu(bn(x) + residual) (residual may be an undefined Tensor), the way ResNets end a conv: with
// fused ops on (the default) one op, bn.forward_add_relu; off, bn, add and act one after another,
// as timm writes it. Either way a summary or profile lists bn and act with their output shapes;
// fused, the whole time is bn's and act shows 0 ms.
Tensor call_bn_add_relu(nn::BatchNorm2d& bn, nn::ReLU& act, const Tensor& x,
                        const Tensor& residual = Tensor());
// Whether models use the fused ops above (default true; the tests compare both ways).
void set_fused_ops(bool on);
bool fused_ops();

// nn::Sequential whose children are run through call() (so they show up in a summary); the keys
// are the same ("0", "1", ...).
class TracedSequential : public nn::Module {
 public:
  TracedSequential() = default;
  explicit TracedSequential(std::vector<nn::ModulePtr> modules);
  void push_back(nn::ModulePtr m);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sequential"; }
  std::size_t size() const { return named_children().size(); }
};

// Depth-first, pre-order walk over `root` and every descendant with its dotted name ("" for root).
void visit_modules(nn::Module& root,
                   const std::function<void(const std::string& name, nn::Module& m)>& fn);

struct LayerInfo {
  std::string name;      // dotted module name, as in the state-dict keys ("layer1.0.conv1")
  std::string type;      // "Conv2d", "BasicBlock", ...
  std::string describe;  // the layer's settings, e.g. "1->64, k7, s2, p3, no bias"
  int depth = 0;         // 1 for direct children of the model
  Shape output_shape;    // for the summary's batch of one
  int64_t params = 0;    // trainable parameters of the module and its children
  int64_t macs = 0;      // multiply-accumulates per image (Conv2d, Linear; summed for containers)
  double ms = 0;         // profile_forward() only: mean wall time of the module's forward
};

struct ModelSummary {
  std::string model;
  Shape input_shape;  // [1, C, H, W]
  Shape output_shape;
  int64_t params = 0;  // trainable parameters
  int64_t param_tensors = 0;
  int64_t buffer_tensors = 0;
  int64_t buffer_elements = 0;
  int64_t macs = 0;  // per image: conv C_out*H_out*W_out*(C_in/groups)*kH*kW, linear in*out
  std::vector<LayerInfo> layers;

  std::string to_text() const;  // a table, one line per layer, and the totals
  nlohmann::json to_json() const;
};

// Runs one eval-mode forward of a zero image [1, in_chans, size, size] without gradients and
// records every module called through call(). The model's train/eval flag is restored after.
ModelSummary summarize(nn::Module& model, const std::string& name, int size, int in_chans = 1);

// Times the forward pass of every module called through call(): one warm-up pass, then the mean
// over `repeats` passes of `x` in the model's current train/eval mode. With `with_grad` false the
// passes run under NoGradGuard. Returns the layers in call order (as summarize()) with ms set.
std::vector<LayerInfo> profile_forward(nn::Module& model, const Tensor& x, int repeats,
                                       bool with_grad);

// Writes summary.to_json() (indented) to `path`, via "<path>.tmp" and a rename.
void write_summary_json(const ModelSummary& summary, const std::string& path);

}  // namespace halo::models
