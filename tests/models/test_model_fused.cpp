// The ResNets' fused batch norm + (shortcut add) + ReLU (models::call_bn_add_relu,
// ops::batch_norm2d_add_relu) against the same model run with the pieces one after another, as
// timm writes it: output, loss, every parameter gradient and the running statistics after one
// training step, and the eval-mode output. Every 1-D parameter is randomised first: timm
// initialises each block's last batch-norm weight to zero, which would hide the residual branch
// (the fused op's residual path) from the comparison.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "models/registry.h"
#include "models/summary.h"
#include "tests/common/compare.h"

namespace {

using halo::Tensor;
using halo::test::close_rel;

void perturb_1d_parameters(halo::nn::Module& m, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (auto& [key, p] : m.named_parameters()) {
    if (p.dim() != 1) continue;
    const bool is_bias = key.size() >= 4 && key.compare(key.size() - 4, 4, "bias") == 0;
    p.copy_from(is_bias ? Tensor::uniform(p.shape(), rng, -0.2f, 0.2f)
                        : Tensor::uniform(p.shape(), rng, 0.5f, 1.5f));
  }
}

struct FusedFlag {  // restores the default when a test ends
  ~FusedFlag() { halo::models::set_fused_ops(true); }
};

class FusedOps : public ::testing::TestWithParam<std::string> {};

TEST_P(FusedOps, TrainingStepMatchesThePieces) {
  FusedFlag restore;
  auto make = [&] {
    halo::nn::manual_seed(5);
    auto m = halo::models::make_model(GetParam());
    perturb_1d_parameters(*m, 6);
    return m;
  };
  auto fused = make(), pieces = make();
  std::mt19937_64 rng(7);
  const Tensor x = Tensor::randn({3, 1, 40, 40}, rng), t = Tensor::randn({3, 1}, rng);

  halo::models::set_fused_ops(true);
  Tensor y_f = (*fused)(x);
  Tensor l_f = halo::mse_loss(y_f, t);
  l_f.backward();
  halo::models::set_fused_ops(false);
  Tensor y_p = (*pieces)(x);
  Tensor l_p = halo::mse_loss(y_p, t);
  l_p.backward();

  EXPECT_TRUE(close_rel(y_f, y_p, 1e-5)) << "output";
  EXPECT_TRUE(close_rel(l_f, l_p, 1e-5)) << "loss";
  const auto pf = fused->named_parameters(), pp = pieces->named_parameters();
  ASSERT_EQ(pf.size(), pp.size());
  for (std::size_t i = 0; i < pf.size(); ++i) {
    ASSERT_TRUE(pf[i].second.grad().defined()) << pf[i].first;
    EXPECT_TRUE(close_rel(pf[i].second.grad(), pp[i].second.grad(), 1e-4)) << pf[i].first;
  }
  const auto bf = fused->named_buffers(), bp = pieces->named_buffers();
  ASSERT_EQ(bf.size(), bp.size());
  for (std::size_t i = 0; i < bf.size(); ++i) {
    if (bf[i].second.dtype() != halo::DType::f32) {  // num_batches_tracked
      EXPECT_EQ(bf[i].second.data_i64()[0], bp[i].second.data_i64()[0]) << bf[i].first;
      continue;
    }
    EXPECT_TRUE(close_rel(bf[i].second, bp[i].second, 1e-5)) << bf[i].first;
  }

  // Eval mode, from the running statistics both just updated.
  fused->eval();
  pieces->eval();
  halo::NoGradGuard no_grad;
  halo::models::set_fused_ops(true);
  const Tensor e_f = (*fused)(x);
  halo::models::set_fused_ops(false);
  const Tensor e_p = (*pieces)(x);
  EXPECT_TRUE(close_rel(e_f, e_p, 1e-5)) << "eval output";
}

INSTANTIATE_TEST_SUITE_P(ResNets, FusedOps, ::testing::Values("resnet18", "resnet26"),
                         [](const auto& info) { return info.param; });

}  // namespace
