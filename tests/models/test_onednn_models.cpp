// The CPU convolution switch end to end: one training step (forward in training mode, MSE loss,
// backward) of each model with oneDNN's convolutions gives the loss and every parameter gradient
// of the same step with Halo's own kernels. Skips, saying so, in a build without oneDNN.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/onednn/settings.h"
#include "models/registry.h"
#include "tests/common/compare.h"

namespace halo {
namespace {

using kernels::onednn::CpuConvKernels;

struct Step {
  float loss = 0;
  std::map<std::string, Tensor> grads;
};

// One training step of a freshly seeded `name` on a fixed batch, with the given CPU convolutions.
// The setting is restored on return (also when the step throws).
Step train_step(const std::string& name, CpuConvKernels k) {
  kernels::onednn::ScopedCpuConvKernels scope(k);
  nn::manual_seed(7);
  auto model = models::make_model(name);
  // timm zero-initialises each ResNet block's last batch-norm weight and sets ConvNeXt's layer
  // scales to 1e-6, which would hide every residual branch's convolutions from the comparison:
  // every 1-D parameter is set to a random value first.
  std::mt19937_64 prng(13);
  for (auto& [key, p] : model->named_parameters()) {
    if (p.dim() != 1) continue;
    const bool is_bias = key.size() >= 4 && key.compare(key.size() - 4, 4, "bias") == 0;
    p.copy_from(is_bias ? Tensor::uniform(p.shape(), prng, -0.2f, 0.2f)
                        : Tensor::uniform(p.shape(), prng, 0.5f, 1.5f));
  }
  model->train();
  std::mt19937_64 rng(11);
  // Batch 4 of 64x64: the last stage's batch norm then sees 4 x 2 x 2 values per channel, enough
  // that normalising does not blow the float32 rounding differences up.
  const Tensor x = Tensor::randn({4, 1, 64, 64}, rng), y = Tensor::randn({4, 1}, rng);
  Tensor loss = mse_loss(model->forward(x), y);
  loss.backward();
  Step s;
  s.loss = loss.item();
  for (const auto& [key, p] : model->named_parameters()) s.grads[key] = p.grad();
  return s;
}

class OneDnnModelStep : public ::testing::TestWithParam<std::string> {};

// The two implementations sum each convolution's products in different orders (float32), so the
// gradients differ by rounding carried through the network: measured 2e-6 to 4e-6 relative to
// each gradient's largest entry (max_rel_error in the test XML); 1e-4 leaves room for other
// machines' instruction sets, and a wrong pass gives O(1).
TEST_P(OneDnnModelStep, GradientsMatchHalosKernels) {
  if (!kernels::onednn::available()) GTEST_SKIP() << "built without oneDNN";
  const CpuConvKernels before = kernels::onednn::cpu_conv_kernels();
  const Step halo_step = train_step(GetParam(), CpuConvKernels::halo);
  const Step onednn_step = train_step(GetParam(), CpuConvKernels::onednn);
  // fastest: per shape and pass whichever was timed faster, so a mix of the two that differs from
  // run to run. Only the loss is compared: the gradients of a mix can sit on the other side of a
  // ReLU kink or max-pool near-tie than either pure choice's (seen once: 2e-3 on resnet26), a jump
  // no tolerance bounds. OneDnnFastest below checks that each call returns one implementation's
  // exact output.
  const Step fastest_step = train_step(GetParam(), CpuConvKernels::fastest);
  EXPECT_EQ(kernels::onednn::cpu_conv_kernels(), before) << "the setting must be restored";
  EXPECT_NEAR(fastest_step.loss, halo_step.loss, 1e-4 * std::abs(halo_step.loss));
  EXPECT_NEAR(onednn_step.loss, halo_step.loss, 1e-4 * std::abs(halo_step.loss));
  ASSERT_EQ(onednn_step.grads.size(), halo_step.grads.size());
  double worst = 0;
  for (const auto& [key, g] : halo_step.grads) {
    ASSERT_TRUE(onednn_step.grads.count(key)) << key;
    EXPECT_TRUE(halo::test::close_rel(onednn_step.grads.at(key), g, 1e-4, key));
    worst = std::max(worst, halo::test::rel_error(onednn_step.grads.at(key), g));
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.2e", worst);
  RecordProperty("max_rel_error", text);  // in the test XML: the margin left under 1e-4
}

// fastest times both implementations on the first call of a shape and keeps one: that first call
// must already return the kept implementation's output, bit for bit what every later call returns
// and what that implementation alone returns (a shape no other test uses, so this call decides).
TEST(OneDnnFastest, FirstCallReturnsTheKeptImplementationsOutput) {
  if (!kernels::onednn::available()) GTEST_SKIP() << "built without oneDNN";
  std::mt19937_64 rng(17);
  const Tensor x = Tensor::randn({3, 5, 23, 19}, rng), w = Tensor::randn({7, 5, 3, 3}, rng),
               b = Tensor::randn({7}, rng);
  auto run = [&](CpuConvKernels k) {
    kernels::onednn::ScopedCpuConvKernels scope(k);
    return conv2d(x, w, b, 2, 1).to_vector();
  };
  const std::vector<float> first = run(CpuConvKernels::fastest),
                           second = run(CpuConvKernels::fastest), halo = run(CpuConvKernels::halo),
                           onednn = run(CpuConvKernels::onednn);
  EXPECT_EQ(first, second);
  EXPECT_TRUE(first == halo || first == onednn) << "neither implementation's output";
}

INSTANTIATE_TEST_SUITE_P(Models, OneDnnModelStep, ::testing::ValuesIn(models::model_names()));

}  // namespace
}  // namespace halo
