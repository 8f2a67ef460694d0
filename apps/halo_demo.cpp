// halo_demo: trains a tiny CNN with the engine on a synthetic regression (the width of a Gaussian
// blob) and prints the falling training loss: the smallest whole use of tensors, autograd, Adam
// and MSE. Usage: halo_demo [--steps N] [--batch B] [--size S] [--lr LR] [--seed S] [--save FILE]
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "data/synthetic.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/serialize.h"
#include "models/tiny_cnn.h"

using namespace halo;

int main(int argc, char** argv) {
  CLI::App app{"Train a tiny CNN on a synthetic blob-width regression and print the loss"};
  int steps = 300, batch = 32, size = 24, channels = 8;
  float lr = 3e-3f;
  uint64_t seed = 1;
  std::string save;
  app.add_option("--steps", steps, "training steps")->check(CLI::PositiveNumber);
  app.add_option("--batch", batch, "images per step")->check(CLI::Range(2, 4096));
  app.add_option("--size", size, "image side in pixels")->check(CLI::Range(8, 512));
  app.add_option("--channels", channels, "width of the first conv layer")->check(CLI::Range(1, 512));
  app.add_option("--lr", lr, "Adam learning rate")->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "seed for weights and data");
  app.add_option("--save", save, "write the trained weights to this HDF5 file");
  CLI11_PARSE(app, argc, argv);

  try {
    nn::manual_seed(seed);
    models::TinyCnn model(channels);
    Adam opt(model.named_parameters(), {.lr = lr});
    std::printf("halo_demo: TinyCnn (%lld parameters), batch %d of %dx%d blobs, Adam lr %g\n",
                static_cast<long long>(model.num_parameters()), batch, size, size, lr);
    auto t0 = std::chrono::steady_clock::now();
    double window = 0, first = -1;
    const int report = std::max(1, steps / 15);
    for (int step = 1; step <= steps; ++step) {
      data::BlobBatch b = data::make_blob_batch(batch, size, seed, step);
      Tensor x = Tensor::from_vector(b.images, {batch, 1, size, size});
      Tensor y = Tensor::from_vector(b.labels, {batch, 1});
      Tensor loss = mse_loss(model(x), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
      window += loss.item();
      if (step % report == 0 || step == steps) {
        const int count = step % report == 0 ? report : step % report;
        const double mean = window / count;
        if (first < 0) first = mean;
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("step %5d  train MSE %.5f  (%.1f images/s)\n", step, mean, step * batch / secs);
        window = 0;
      }
    }
    // Held-out check in eval mode (running batch-norm statistics).
    model.eval();
    NoGradGuard no_grad;
    data::BlobBatch b = data::make_blob_batch(256, size, seed + 1000, 0);
    Tensor pred = model(Tensor::from_vector(b.images, {256, 1, size, size}));
    const float test = mse_loss(pred, Tensor::from_vector(b.labels, {256, 1})).item();
    std::printf("held-out MSE %.5f (predicting the mean gives 1.0); first window %.5f\n", test, first);
    if (!save.empty()) {
      save_state_dict(model.state_dict(), save);
      std::printf("weights written to %s\n", save.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "halo_demo: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
