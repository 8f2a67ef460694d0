// ConvNeXt-pico exactly as timm builds it (`convnext_pico`: depths 2-2-6-2, dims 64-128-256-512,
// conv_mlp=True, so the block MLP is two 1x1 convs on NCHW after a channels-first LayerNorm), with
// timm's module names and state-dict keys. See ../shared/reference/architectures.md.
#pragma once
#include <memory>
#include <vector>

#include "engine/nn.h"
#include "models/summary.h"

namespace halo::models {

// timm's Mlp with 1x1 convs (conv_mlp): fc1 (C -> 4C) -> GELU (erf) -> fc2 (4C -> C).
class ConvMlp : public nn::Module {
 public:
  ConvMlp(int channels, int hidden);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Mlp"; }
  std::shared_ptr<nn::Conv2d> fc1, fc2;
  std::shared_ptr<nn::GELU> act;
};

// out = x + gamma[c] * mlp(norm(conv_dw(x))). Keys: gamma (first: a parameter of the block
// itself), conv_dw, norm, mlp.fc1, mlp.fc2.
class ConvNeXtBlock : public nn::Module {
 public:
  explicit ConvNeXtBlock(int channels, float ls_init = 1e-6f);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ConvNeXtBlock"; }
  std::string describe() const override;
  Tensor gamma;  // layer scale [C]
  std::shared_ptr<nn::Conv2d> conv_dw;
  std::shared_ptr<nn::LayerNorm2d> norm;
  std::shared_ptr<ConvMlp> mlp;
  int channels;
};

// Optional downsample (LayerNorm2d, then 2x2 stride-2 conv), then the blocks.
class ConvNeXtStage : public nn::Module {
 public:
  ConvNeXtStage(int in, int out, int depth);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ConvNeXtStage"; }
  std::string describe() const override;
  std::shared_ptr<TracedSequential> downsample;  // null when in == out (stage 0): timm's Identity
  std::shared_ptr<TracedSequential> blocks;
  int in, out;
};

// [N, C, H, W] -> [N, C, 1, 1] (timm's SelectAdaptivePool2d without flatten).
class GlobalAvgPool2d : public nn::Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
};

// timm's NormMlpClassifierHead: pool -> LayerNorm2d over the pooled channels -> flatten -> fc.
class NormClassifierHead : public nn::Module {
 public:
  NormClassifierHead(int channels, int num_classes);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "NormMlpClassifierHead"; }
  std::shared_ptr<GlobalAvgPool2d> global_pool;
  std::shared_ptr<nn::LayerNorm2d> norm;
  std::shared_ptr<nn::Flatten> flatten;
  std::shared_ptr<nn::Linear> fc;
};

class ConvNeXt : public nn::Module {
 public:
  // Initialises as timm: conv and linear weights truncated normal (std 0.02, cut at +-2
  // absolute), biases 0, LayerNorm weight 1 / bias 0, layer scale 1e-6, head init scale 1.
  // Draws from nn::init_rng().
  ConvNeXt(std::vector<int> depths, std::vector<int> dims, int in_chans = 1, int num_classes = 1,
           float ls_init = 1e-6f);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ConvNeXt"; }
  std::string describe() const override;
  std::shared_ptr<TracedSequential> stem;    // 0: Conv2d k4 s4 (bias), 1: LayerNorm2d
  std::shared_ptr<TracedSequential> stages;  // ConvNeXtStage x 4
  std::shared_ptr<NormClassifierHead> head;
  std::vector<int> depths, dims;
};

std::shared_ptr<ConvNeXt> convnext_pico(int in_chans = 1, int num_classes = 1);

}  // namespace halo::models
