// ResNet-18 and ResNet-26 exactly as timm builds them (`resnet18`, `resnet26`; default "b" form:
// one 7x7 stem conv, max-pool, 1x1 strided projection shortcuts, stride on the 3x3 conv), with
// timm's module names, so the state-dict keys are timm's. See ../shared/reference/architectures.md.
#pragma once
#include <memory>
#include <vector>

#include "engine/nn.h"
#include "models/summary.h"

namespace halo::models {

// conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus the shortcut, then ReLU. Keys: conv1, bn1, conv2,
// bn2, downsample.{0,1} (downsample only where the stride or width changes).
class BasicBlock : public nn::Module {
 public:
  static constexpr int expansion = 1;
  BasicBlock(int in, int width, int stride);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "BasicBlock"; }
  std::string describe() const override;
  nn::BatchNorm2d& last_bn() { return *bn2; }

  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2;
  std::shared_ptr<nn::ReLU> act1, act2;
  std::shared_ptr<TracedSequential> downsample;  // null for the identity shortcut
  int in, width, stride;
};

// conv1x1 -> BN -> ReLU -> conv3x3 (stride) -> BN -> ReLU -> conv1x1 (x4) -> BN, plus the
// shortcut, then ReLU. Keys: conv1, bn1, conv2, bn2, conv3, bn3, downsample.{0,1}.
class Bottleneck : public nn::Module {
 public:
  static constexpr int expansion = 4;
  Bottleneck(int in, int width, int stride);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Bottleneck"; }
  std::string describe() const override;
  nn::BatchNorm2d& last_bn() { return *bn3; }

  std::shared_ptr<nn::Conv2d> conv1, conv2, conv3;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2, bn3;
  std::shared_ptr<nn::ReLU> act1, act2, act3;
  std::shared_ptr<TracedSequential> downsample;
  int in, width, stride;
};

enum class BlockType { basic, bottleneck };

class ResNet : public nn::Module {
 public:
  // depths: blocks per stage (4 stages, widths 64, 128, 256, 512, strides 1, 2, 2, 2).
  // Initialises as timm: Kaiming-normal (fan_out, ReLU gain) convs, BN weight 1 / bias 0 except
  // the last BN of every residual branch (weight 0, zero_init_last), Linear left at PyTorch's
  // default. Draws from nn::init_rng().
  ResNet(BlockType block, std::vector<int> depths, int in_chans = 1, int num_classes = 1);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ResNet"; }
  std::string describe() const override;

  std::shared_ptr<nn::Conv2d> conv1;
  std::shared_ptr<nn::BatchNorm2d> bn1;
  std::shared_ptr<nn::ReLU> act1;
  std::shared_ptr<nn::MaxPool2d> maxpool;
  std::shared_ptr<TracedSequential> layer1, layer2, layer3, layer4;
  std::shared_ptr<nn::GlobalAvgPool> global_pool;
  std::shared_ptr<nn::Linear> fc;
  BlockType block;
  std::vector<int> depths;
  int num_features;  // channels into the head: 512 (basic) or 2048 (bottleneck)
};

std::shared_ptr<ResNet> resnet18(int in_chans = 1, int num_classes = 1);  // BasicBlock x (2,2,2,2)
std::shared_ptr<ResNet> resnet26(int in_chans = 1, int num_classes = 1);  // Bottleneck x (2,2,2,2)

}  // namespace halo::models
