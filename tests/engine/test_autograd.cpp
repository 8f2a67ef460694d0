// Autograd mechanics: gradients through shared inputs, accumulation across backward calls,
// no-grad scope, freeing the graph, and errors for misuse.
#include <gtest/gtest.h>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "tests/common/compare.h"

using namespace halo;

namespace {
Tensor param(std::vector<float> v, Shape s) {
  Tensor t = Tensor::from_vector(v, s);
  t.set_requires_grad(true);
  return t;
}
}  // namespace

TEST(Autograd, ChainAndSharedInput) {
  // L = mean((a*a + a) - t)^2 over 2 elements; dL/da = 2/n (a^2 + a - t)(2a + 1)
  Tensor a = param({1.f, -2.f}, {2});
  Tensor t = Tensor::from_vector({0.5f, 1.f}, {2});
  Tensor loss = mse_loss(add(mul(a, a), a), t);
  loss.backward();
  // Hand values of size ~4 after a few float32 operations (u = 6e-8): 1e-5 absolute.
  EXPECT_TRUE(halo::test::close_abs(
      a.grad(), Tensor::from_vector({(1 + 1 - 0.5f) * 3, (4 - 2 - 1.f) * -3}, {2}), 1e-5, "da"));
}

TEST(Autograd, GradientsAccumulateUntilZeroGrad) {
  Tensor a = param({3.f}, {1});
  Tensor t = Tensor::zeros({1});
  mse_loss(a, t).backward();
  mse_loss(a, t).backward();
  EXPECT_NEAR(a.grad().item(), 2 * 2 * 3.f, 1e-6);
  a.zero_grad();
  EXPECT_FALSE(a.grad().defined());
  mse_loss(a, t).backward();
  EXPECT_NEAR(a.grad().item(), 2 * 3.f, 1e-6);
}

TEST(Autograd, NoGradRecordsNothing) {
  Tensor a = param({1.f, 2.f}, {2});
  {
    NoGradGuard g;
    EXPECT_FALSE(grad_enabled());
    Tensor y = mul(a, a);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
    {
      NoGradGuard nested;
    }
    EXPECT_FALSE(grad_enabled());
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_TRUE(mul(a, a).requires_grad());
}

TEST(Autograd, GraphIsFreedAfterBackward) {
  Tensor a = param({1.f, 2.f, 3.f, 4.f}, {4});
  Tensor y = mul(a, a);
  std::weak_ptr<Storage> saved;
  {
    Tensor sq = mul(y, y);  // MulBackward saves y's storage
    saved = y.impl()->storage;
    Tensor loss = mse_loss(sq, Tensor::zeros({4}));
    y = Tensor();  // drop our handle: only the graph keeps y's storage alive now
    EXPECT_FALSE(saved.expired());
    loss.backward();
    EXPECT_TRUE(saved.expired()) << "saved tensors must be released after backward";
    EXPECT_THROW(loss.backward(), std::logic_error);  // graph already freed
  }
}

TEST(Autograd, BackwardErrors) {
  Tensor a = Tensor::from_vector({1.f, 2.f}, {2});
  EXPECT_THROW(mse_loss(a, a).backward(), std::logic_error);  // nothing requires grad
  Tensor p = param({1.f, 2.f}, {2});
  EXPECT_THROW(mul(p, p).backward(), std::logic_error);  // not a scalar
  EXPECT_THROW(add_(p, a), std::logic_error);            // in-place on a grad-requiring tensor
}

TEST(Autograd, ReshapeAndFlattenPassGradientsThrough) {
  Tensor a = param({1, 2, 3, 4, 5, 6}, {1, 2, 3});
  Tensor w = param({1, 1, 1, 1, 1, 1}, {1, 6});
  Tensor y = linear(a.flatten(1), w, Tensor());
  mse_loss(y, Tensor::zeros({1, 1})).backward();
  // dL/da = 2 * y * w = 2 * 21
  // 42 after a 6-term dot product and a product in float32 (u = 6e-8, ~2.5e-6 at 42): 1e-4.
  EXPECT_TRUE(halo::test::close_abs(a.grad(), Tensor::full({1, 2, 3}, 42.f), 1e-4, "da"));
}

TEST(Autograd, OnlyRequestedGradientsAreComputed) {
  Tensor x = Tensor::from_vector({1, 2, 3, 4}, {1, 1, 2, 2});
  Tensor w = param({0.5f}, {1, 1, 1, 1});
  Tensor y = conv2d(x, w, Tensor(), 1, 0, 1);
  mse_loss(y, Tensor::zeros({1, 1, 2, 2})).backward();
  EXPECT_FALSE(x.grad().defined());
  // dL/dw = 2/4 * sum(0.5 x * x) = 0.25 * 30
  EXPECT_NEAR(w.grad().item(), 7.5f, 1e-5);
}
