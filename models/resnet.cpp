// ResNet-18 / ResNet-26 (see resnet.h). Children are registered in timm's order, because the
// order of registration is the order of the state-dict keys; modules without keys (ReLU, pools)
// are registered too so that a summary lists them under timm's names.
#include "models/resnet.h"

#include <cmath>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace halo::models {

namespace {
std::shared_ptr<nn::Conv2d> conv(int in, int out, int k, int stride, int pad) {
  return std::make_shared<nn::Conv2d>(in, out, k, stride, pad, 1, /*bias=*/false);
}

// Projection shortcut: 1x1 conv with the block's stride, then BN (timm's downsample_conv).
std::shared_ptr<TracedSequential> projection(int in, int out, int stride) {
  auto ds = std::make_shared<TracedSequential>();
  ds->push_back(conv(in, out, 1, stride, 0));
  ds->push_back(std::make_shared<nn::BatchNorm2d>(out));
  return ds;
}

// Kaiming normal, mode fan_out, ReLU gain: w ~ N(0, 2 / (C_out * kH * kW)), untruncated.
void kaiming_normal_fan_out(nn::Conv2d& c) {
  const double fan_out = double(c.out) * c.kernel * c.kernel;
  const float std = static_cast<float>(std::sqrt(2.0 / fan_out));
  c.weight.copy_from(Tensor::randn(c.weight.shape(), nn::init_rng(), 0.f, std));
}
}  // namespace

// ---- BasicBlock ------------------------------------------------------------------------------
BasicBlock::BasicBlock(int in_, int width_, int stride_) : in(in_), width(width_), stride(stride_) {
  conv1 = register_module("conv1", conv(in, width, 3, stride, 1));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(width));
  act1 = register_module("act1", std::make_shared<nn::ReLU>());
  conv2 = register_module("conv2", conv(width, width, 3, 1, 1));
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(width));
  act2 = register_module("act2", std::make_shared<nn::ReLU>());
  if (stride != 1 || in != width * expansion)
    downsample = register_module("downsample", projection(in, width * expansion, stride));
}

// relu(bn1(conv1 x)), then relu(bn2(conv2 y) + shortcut): each batch norm with what follows it
// is one fused op (call_bn_add_relu), so the shortcut is computed before bn2 rather than after.
Tensor BasicBlock::forward(const Tensor& x) {
  Tensor y = call_bn_add_relu(*bn1, *act1, call(conv1, x));
  y = call(conv2, y);
  const Tensor shortcut = downsample ? call(downsample, x) : x;
  return call_bn_add_relu(*bn2, *act2, y, shortcut);
}

std::string BasicBlock::describe() const {
  return std::to_string(in) + "->" + std::to_string(width) + ", s" + std::to_string(stride) +
         (downsample ? ", projection shortcut" : "");
}

// ---- Bottleneck ------------------------------------------------------------------------------
Bottleneck::Bottleneck(int in_, int width_, int stride_) : in(in_), width(width_), stride(stride_) {
  const int out = width * expansion;
  conv1 = register_module("conv1", conv(in, width, 1, 1, 0));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(width));
  act1 = register_module("act1", std::make_shared<nn::ReLU>());
  conv2 = register_module("conv2", conv(width, width, 3, stride, 1));  // stride here ("v1.5")
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(width));
  act2 = register_module("act2", std::make_shared<nn::ReLU>());
  conv3 = register_module("conv3", conv(width, out, 1, 1, 0));
  bn3 = register_module("bn3", std::make_shared<nn::BatchNorm2d>(out));
  act3 = register_module("act3", std::make_shared<nn::ReLU>());
  if (stride != 1 || in != out)
    downsample = register_module("downsample", projection(in, out, stride));
}

Tensor Bottleneck::forward(const Tensor& x) {
  Tensor y = call_bn_add_relu(*bn1, *act1, call(conv1, x));
  y = call_bn_add_relu(*bn2, *act2, call(conv2, y));
  y = call(conv3, y);
  const Tensor shortcut = downsample ? call(downsample, x) : x;
  return call_bn_add_relu(*bn3, *act3, y, shortcut);
}

std::string Bottleneck::describe() const {
  return std::to_string(in) + "->" + std::to_string(width) + "->" +
         std::to_string(width * expansion) + ", s" + std::to_string(stride) +
         (downsample ? ", projection shortcut" : "");
}

// ---- ResNet ----------------------------------------------------------------------------------
ResNet::ResNet(BlockType block_, std::vector<int> depths_, int in_chans, int num_classes)
    : block(block_), depths(std::move(depths_)) {
  if (depths.size() != 4)
    throw std::invalid_argument("ResNet: expected 4 stage depths, got " +
                                std::to_string(depths.size()));
  const int expansion = block == BlockType::basic ? BasicBlock::expansion : Bottleneck::expansion;

  conv1 = register_module("conv1", conv(in_chans, 64, 7, 2, 3));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(64));
  act1 = register_module("act1", std::make_shared<nn::ReLU>());
  maxpool = register_module("maxpool", std::make_shared<nn::MaxPool2d>(3, 2, 1));

  const int widths[4] = {64, 128, 256, 512};
  const int strides[4] = {1, 2, 2, 2};
  std::shared_ptr<TracedSequential>* stages[4] = {&layer1, &layer2, &layer3, &layer4};
  int in = 64;
  for (int s = 0; s < 4; ++s) {
    auto stage = std::make_shared<TracedSequential>();
    for (int b = 0; b < depths[s]; ++b) {
      const int stride = b == 0 ? strides[s] : 1;
      if (block == BlockType::basic)
        stage->push_back(std::make_shared<BasicBlock>(in, widths[s], stride));
      else
        stage->push_back(std::make_shared<Bottleneck>(in, widths[s], stride));
      in = widths[s] * expansion;
    }
    *stages[s] = register_module("layer" + std::to_string(s + 1), stage);
  }
  num_features = in;
  global_pool = register_module("global_pool", std::make_shared<nn::GlobalAvgPool>());
  fc = register_module("fc", std::make_shared<nn::Linear>(num_features, num_classes));

  // timm's init (ResNet.init_weights + zero_init_last). BatchNorm2d already starts at weight 1,
  // bias 0, running mean 0 / var 1; fc keeps nn::Linear's PyTorch default.
  visit_modules(*this, [](const std::string&, nn::Module& m) {
    if (auto* c = dynamic_cast<nn::Conv2d*>(&m)) kaiming_normal_fan_out(*c);
  });
  for (auto* st : stages)
    for (auto& [name, blk] : (*st)->named_children()) {
      if (auto* bb = dynamic_cast<BasicBlock*>(blk.get())) bb->last_bn().weight.fill_(0.f);
      if (auto* bt = dynamic_cast<Bottleneck*>(blk.get())) bt->last_bn().weight.fill_(0.f);
    }
}

Tensor ResNet::forward(const Tensor& x) {
  Tensor h = call(maxpool, call_bn_add_relu(*bn1, *act1, call(conv1, x)));
  h = call(layer4, call(layer3, call(layer2, call(layer1, h))));
  return call(fc, call(global_pool, h));
}

std::string ResNet::describe() const {
  std::string d = block == BlockType::basic ? "BasicBlock" : "Bottleneck";
  d += " x (";
  for (std::size_t i = 0; i < depths.size(); ++i) d += (i ? "," : "") + std::to_string(depths[i]);
  return d + ")";
}

std::shared_ptr<ResNet> resnet18(int in_chans, int num_classes) {
  return std::make_shared<ResNet>(BlockType::basic, std::vector<int>{2, 2, 2, 2}, in_chans,
                                  num_classes);
}
std::shared_ptr<ResNet> resnet26(int in_chans, int num_classes) {
  return std::make_shared<ResNet>(BlockType::bottleneck, std::vector<int>{2, 2, 2, 2}, in_chans,
                                  num_classes);
}

}  // namespace halo::models
