// ConvNeXt-pico (see convnext.h). With conv_mlp=True every layer works on NCHW directly: the
// block LayerNorm is per pixel over channels (layer_norm2d) and the MLP's "Linear" layers are 1x1
// convs with [out, in, 1, 1] weights, exactly timm's parameter shapes.
#include "models/convnext.h"

#include <cmath>
#include <stdexcept>

#include "engine/ops.h"

namespace halo::models {

namespace {
constexpr float kLnEps = 1e-6f;  // timm overrides PyTorch's 1e-5 for every ConvNeXt LayerNorm

// timm's trunc_normal_(std=.02) with its default cut-offs a=-2, b=2, which are absolute values
// (not multiples of std): redraw any value outside [-2, 2] (in practice none at std 0.02).
void trunc_normal(Tensor& w, float std) {
  std::normal_distribution<float> dist(0.f, std);
  float* p = w.data();
  for (int64_t i = 0; i < w.numel(); ++i) {
    float v;
    do v = dist(nn::init_rng());
    while (v < -2.f || v > 2.f);
    p[i] = v;
  }
}
}  // namespace

ConvMlp::ConvMlp(int channels, int hidden) {
  fc1 = register_module("fc1", std::make_shared<nn::Conv2d>(channels, hidden, 1, 1, 0));
  act = register_module("act", std::make_shared<nn::GELU>());
  fc2 = register_module("fc2", std::make_shared<nn::Conv2d>(hidden, channels, 1, 1, 0));
}
Tensor ConvMlp::forward(const Tensor& x) {
  return call(fc2, call(act, call(fc1, x)));
}

ConvNeXtBlock::ConvNeXtBlock(int c, float ls_init) : channels(c) {
  gamma = register_parameter("gamma", Tensor::full({c}, ls_init));
  conv_dw = register_module("conv_dw", std::make_shared<nn::Conv2d>(c, c, 7, 1, 3, /*groups=*/c));
  norm = register_module("norm", std::make_shared<nn::LayerNorm2d>(c, kLnEps));
  mlp = register_module("mlp", std::make_shared<ConvMlp>(c, 4 * c));
}
Tensor ConvNeXtBlock::forward(const Tensor& x) {
  Tensor y = call(mlp, call(norm, call(conv_dw, x)));
  // Layer scale per channel before the residual add; no activation after the add.
  return add(mul_channel(y, gamma), x);
}
std::string ConvNeXtBlock::describe() const {
  return std::to_string(channels) + ", mlp x4, layer scale";
}

ConvNeXtStage::ConvNeXtStage(int in_, int out_, int depth) : in(in_), out(out_) {
  if (in != out) {
    auto ds = std::make_shared<TracedSequential>();
    ds->push_back(std::make_shared<nn::LayerNorm2d>(in, kLnEps));
    ds->push_back(std::make_shared<nn::Conv2d>(in, out, 2, 2, 0));
    downsample = register_module("downsample", ds);
  }
  blocks = register_module("blocks", std::make_shared<TracedSequential>());
  for (int b = 0; b < depth; ++b) blocks->push_back(std::make_shared<ConvNeXtBlock>(out));
}
Tensor ConvNeXtStage::forward(const Tensor& x) {
  return call(blocks, downsample ? call(downsample, x) : x);
}
std::string ConvNeXtStage::describe() const {
  return std::to_string(in) + "->" + std::to_string(out) + ", " + std::to_string(blocks->size()) +
         " blocks" + (downsample ? ", LN + 2x2/s2 downsample" : "");
}

Tensor GlobalAvgPool2d::forward(const Tensor& x) {
  return global_avg_pool2d(x);
}

NormClassifierHead::NormClassifierHead(int c, int num_classes) {
  global_pool = register_module("global_pool", std::make_shared<GlobalAvgPool2d>());
  norm = register_module("norm", std::make_shared<nn::LayerNorm2d>(c, kLnEps));
  flatten = register_module("flatten", std::make_shared<nn::Flatten>());
  fc = register_module("fc", std::make_shared<nn::Linear>(c, num_classes));
}
Tensor NormClassifierHead::forward(const Tensor& x) {
  // Pool first, then normalise the pooled channels (timm's order).
  return call(fc, call(flatten, call(norm, call(global_pool, x))));
}

ConvNeXt::ConvNeXt(std::vector<int> depths_, std::vector<int> dims_, int in_chans, int num_classes,
                   float ls_init)
    : depths(std::move(depths_)), dims(std::move(dims_)) {
  if (depths.size() != 4 || dims.size() != 4)
    throw std::invalid_argument("ConvNeXt: expected 4 depths and 4 dims");
  stem = register_module("stem", std::make_shared<TracedSequential>());
  stem->push_back(std::make_shared<nn::Conv2d>(in_chans, dims[0], 4, 4, 0));  // patchify 4x4/s4
  stem->push_back(std::make_shared<nn::LayerNorm2d>(dims[0], kLnEps));
  stages = register_module("stages", std::make_shared<TracedSequential>());
  int prev = dims[0];
  for (int s = 0; s < 4; ++s) {
    stages->push_back(std::make_shared<ConvNeXtStage>(prev, dims[s], depths[s]));
    prev = dims[s];
  }
  head = register_module("head", std::make_shared<NormClassifierHead>(prev, num_classes));

  // timm's _init_weights: every Conv2d and Linear gets trunc_normal(std .02) weights and zero
  // biases; LayerNorms stay 1 / 0; gamma was set to ls_init above; head_init_scale 1 is a no-op.
  visit_modules(*this, [](const std::string&, nn::Module& m) {
    Tensor* w = nullptr;
    Tensor* b = nullptr;
    if (auto* c = dynamic_cast<nn::Conv2d*>(&m)) w = &c->weight, b = &c->bias;
    if (auto* l = dynamic_cast<nn::Linear*>(&m)) w = &l->weight, b = &l->bias;
    if (!w) return;
    trunc_normal(*w, 0.02f);
    if (b->defined()) b->fill_(0.f);
  });
}

Tensor ConvNeXt::forward(const Tensor& x) {
  return call(head, call(stages, call(stem, x)));  // norm_pre is Identity
}

std::string ConvNeXt::describe() const {
  return "depths (" + std::to_string(depths[0]) + "," + std::to_string(depths[1]) + "," +
         std::to_string(depths[2]) + "," + std::to_string(depths[3]) + "), dims (" +
         std::to_string(dims[0]) + "," + std::to_string(dims[1]) + "," + std::to_string(dims[2]) +
         "," + std::to_string(dims[3]) + ")";
}

std::shared_ptr<ConvNeXt> convnext_pico(int in_chans, int num_classes) {
  return std::make_shared<ConvNeXt>(std::vector<int>{2, 2, 6, 2},
                                    std::vector<int>{64, 128, 256, 512}, in_chans, num_classes);
}

}  // namespace halo::models
