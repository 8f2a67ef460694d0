// End to end: a small network trained with the engine on a learnable synthetic regression must
// reduce its MSE at least tenfold.
#include <gtest/gtest.h>

#include "data/synthetic.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "models/tiny_cnn.h"

using namespace halo;

TEST(Training, TinyCnnLearnsBlobWidth) {
  nn::manual_seed(3);
  models::TinyCnn model(8);
  Adam opt(model.named_parameters(), {.lr = 3e-3f});
  const int batch = 32, size = 16;
  auto eval_mse = [&] {
    model.eval();
    NoGradGuard ng;
    data::BlobBatch b = data::make_blob_batch(256, size, 777, 0);
    float m = mse_loss(model(Tensor::from_vector(b.images, {256, 1, size, size})),
                       Tensor::from_vector(b.labels, {256, 1}))
                  .item();
    model.train();
    return m;
  };
  const float before = eval_mse();
  for (int step = 1; step <= 250; ++step) {
    data::BlobBatch b = data::make_blob_batch(batch, size, 5, step);
    Tensor loss = mse_loss(model(Tensor::from_vector(b.images, {batch, 1, size, size})),
                           Tensor::from_vector(b.labels, {batch, 1}));
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  const float after = eval_mse();
  EXPECT_LT(after * 10, before) << "held-out MSE " << before << " -> " << after;
  EXPECT_LT(after, 0.1f);
}
