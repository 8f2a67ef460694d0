// Golden-value tests of every differentiable op in engine/ops.h against PyTorch (DESIGN.md rule 3):
// forward output and the gradient of every input and parameter, read from
// tests/fixtures/ops_golden.h5, which `/usr/bin/python3 tools/make_fixtures.py` regenerates.
//
// Each case backpropagates L = sum(y * dy) for a stored random dy, so dL/dy = dy. The fixtures were
// computed in float64 from float32 inputs, so the stored values are exact to float32 rounding and
// the tolerances below bound Halo's own float32 error. An error is measured against the whole
// tensor, max|halo - torch| / max|torch| (close_rel, tests/common/compare.h; NaN or Inf on either
// side fails), with u = 2^-24 ~ 6e-8 the float32 unit roundoff:
//   kPointwise 1e-6: each output is a few float ops of its inputs (a handful of u; erf/exp in
//                    gelu from a different libm adds a few more).
//   kDot       1e-5: sums of up to ~150 products (conv forward and input gradient, linear). A
//                    float32 dot product of n terms errs by ~sqrt(n) u sum|terms| typically, and
//                    sum|terms| may be several times max|y|: ~1e-6, with a 10x margin.
//   kReduce    1e-4: reductions over the batch and the image (weight/bias/gamma/beta/scale
//                    gradients, batch-norm and layer-norm input gradients) whose result is much
//                    smaller than the sum of the magnitudes of its terms (random-sign dy cancels),
//                    so relative to the result the rounding error is ~10x larger than for kDot.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/nn.h"
#include "engine/ops.h"
#include "engine/tensor.h"
#include "tests/common/fixtures.h"

namespace {

using halo::Tensor;
using halo::test::close_rel;
using halo::test::H5Fixture;

constexpr double kPointwise = 1e-6;
constexpr double kDot = 1e-5;
constexpr double kReduce = 1e-4;

const H5Fixture& ops_file() {
  static const H5Fixture file("ops_golden.h5");
  return file;
}

// Backpropagates L = sum(y * dy) = y . dy, written as a 1x1 linear layer (the engine has no sum
// op): for linear(x [1, n], w [1, n]) the gradient w.r.t. x is 1 * w = dy, exactly.
void backward_from(const Tensor& y, const Tensor& dy) {
  Tensor loss = halo::linear(y.reshape({1, -1}), dy.reshape({1, -1}), Tensor());
  loss.backward();
}

// One group of the fixture file: loads inputs (marked requires_grad unless told otherwise), reads
// the op's settings, and checks y and the gradients of all inputs that require grad.
class GoldenCase {
 public:
  explicit GoldenCase(std::string name) : name_(std::move(name)) {}

  Tensor input(const std::string& key, bool requires_grad = true) {
    Tensor t = ops_file().tensor(name_ + "/" + key);
    if (requires_grad) t.set_requires_grad(true);
    inputs_.emplace_back(key, t);
    return t;
  }
  Tensor golden(const std::string& key) const { return ops_file().tensor(name_ + "/" + key); }
  bool has(const std::string& key) const { return ops_file().has(name_ + "/" + key); }
  int iattr(const std::string& key) const { return int(ops_file().attr_int(name_, key)); }
  float fattr(const std::string& key) const { return float(ops_file().attr_double(name_, key)); }

  // Compares y, backpropagates sum(y * dy) and compares d<key> for every input that requires
  // grad; `grad_tol` must name each of them (so no gradient goes unchecked by accident).
  void check(const Tensor& y, double y_tol, const std::map<std::string, double>& grad_tol) {
    EXPECT_TRUE(close_rel(y, golden("y"), y_tol, name_ + "/y"));
    ASSERT_TRUE(y.requires_grad()) << name_ << ": the output does not require grad";
    backward_from(y, golden("dy"));
    for (const auto& [key, t] : inputs_) {
      if (!t.requires_grad()) continue;
      const auto it = grad_tol.find(key);
      ASSERT_NE(it, grad_tol.end()) << name_ << ": no tolerance given for d" << key;
      EXPECT_TRUE(close_rel(t.grad(), golden("d" + key), it->second, name_ + "/d" + key));
    }
  }

 private:
  std::string name_;
  std::vector<std::pair<std::string, Tensor>> inputs_;
};

// ---- conv2d --------------------------------------------------------------------------------------

void check_conv(const std::string& name) {
  GoldenCase c(name);
  Tensor x = c.input("x"), w = c.input("w");
  const bool has_bias = c.iattr("has_bias") != 0;
  Tensor b = has_bias ? c.input("b") : Tensor();
  Tensor y = halo::conv2d(x, w, b, c.iattr("stride"), c.iattr("padding"), c.iattr("groups"));
  std::map<std::string, double> tol = {{"x", kDot}, {"w", kReduce}};
  if (has_bias) tol["b"] = kReduce;
  c.check(y, kDot, tol);
}

TEST(GoldenOps, Conv2d3x3Bias) { check_conv("conv2d_3x3_bias"); }
TEST(GoldenOps, Conv2dStride2NoBias) { check_conv("conv2d_stride2_nobias"); }
TEST(GoldenOps, Conv2dStem) { check_conv("conv2d_stem"); }            // 7x7 s2 p3, C_in = 1
TEST(GoldenOps, Conv2dProjection1x1) { check_conv("conv2d_proj1x1"); }  // 1x1 s2 downsample
TEST(GoldenOps, Conv2dGrouped) { check_conv("conv2d_grouped"); }        // groups = 2
TEST(GoldenOps, Conv2dDepthwise) { check_conv("conv2d_depthwise"); }    // 7x7 p3, ConvNeXt
TEST(GoldenOps, Conv2dPatchify) { check_conv("conv2d_patchify"); }      // 4x4 s4, ConvNeXt stem
TEST(GoldenOps, Conv2dOddSize) { check_conv("conv2d_odd"); }            // 9x7, s2 p1
TEST(GoldenOps, Conv2dOddSizeNoPad) { check_conv("conv2d_odd_nopad"); }  // 9x7, s1 p0

// ---- batch_norm2d ----------------------------------------------------------------------------------

void check_batch_norm(const std::string& name, bool expect_training) {
  GoldenCase c(name);
  const bool training = c.iattr("training") != 0;
  ASSERT_EQ(training, expect_training) << name << ": fixture's mode";
  Tensor x = c.input("x"), gamma = c.input("gamma"), beta = c.input("beta");
  Tensor rm = c.input("running_mean", false), rv = c.input("running_var", false);
  Tensor y = halo::batch_norm2d(x, gamma, beta, rm, rv, training, c.fattr("momentum"), c.fattr("eps"));
  // Running statistics: r = (1 - momentum) r + momentum stat, with the unbiased batch variance;
  // in eval mode they must not move at all. A per-channel mean/variance in double, rounded once.
  EXPECT_TRUE(close_rel(rm, c.golden("running_mean_after"), training ? kPointwise : 0.0,
                        "running_mean after the forward"));
  EXPECT_TRUE(close_rel(rv, c.golden("running_var_after"), training ? kPointwise : 0.0,
                        "running_var after the forward"));
  // y = (x - mean) * invstd * gamma + beta is pointwise given the statistics, whose own rounding
  // error is small: kDot. Every gradient here is a reduction over N*H*W (dx through the batch
  // mean and variance in training mode).
  c.check(y, kDot, {{"x", training ? kReduce : kDot}, {"gamma", kReduce}, {"beta", kReduce}});
}

TEST(GoldenOps, BatchNormTrain) { check_batch_norm("batch_norm2d_train", true); }
// momentum 0.3, eps 1e-3, and inputs with mean 30 and spread 0.5 (careful statistics).
TEST(GoldenOps, BatchNormTrainMomentumLargeMean) { check_batch_norm("batch_norm2d_train_m03", true); }
TEST(GoldenOps, BatchNormEval) { check_batch_norm("batch_norm2d_eval", false); }

// nn::BatchNorm2d in training mode, two batches (running statistics and num_batches_tracked, as
// torch.nn.BatchNorm2d), then eval mode with the statistics it gathered.
TEST(GoldenOps, BatchNormModule) {
  const H5Fixture& f = ops_file();
  const std::string g = "batch_norm2d_module/";
  Tensor weight = f.tensor(g + "weight");
  halo::nn::BatchNorm2d bn(int(weight.numel()), float(f.attr_double("batch_norm2d_module", "eps")),
                           float(f.attr_double("batch_norm2d_module", "momentum")));
  bn.weight.copy_from(weight);
  bn.bias.copy_from(f.tensor(g + "bias"));
  bn.train();
  halo::NoGradGuard no_grad;
  EXPECT_TRUE(close_rel(bn(f.tensor(g + "x1")), f.tensor(g + "y1"), kDot, "y1 (train)"));
  EXPECT_TRUE(close_rel(bn(f.tensor(g + "x2")), f.tensor(g + "y2"), kDot, "y2 (train)"));
  EXPECT_TRUE(close_rel(bn.running_mean, f.tensor(g + "running_mean"), kPointwise, "running_mean"));
  EXPECT_TRUE(close_rel(bn.running_var, f.tensor(g + "running_var"), kPointwise, "running_var"));
  ASSERT_EQ(bn.num_batches_tracked.dtype(), halo::DType::i64);
  EXPECT_EQ(bn.num_batches_tracked.data_i64()[0],
            f.attr_int("batch_norm2d_module", "num_batches_tracked"));
  bn.eval();
  EXPECT_TRUE(close_rel(bn(f.tensor(g + "x1")), f.tensor(g + "y_eval"), kDot, "y (eval)"));
}

// ---- layer_norm2d ------------------------------------------------------------------------------------

void check_layer_norm(const std::string& name) {
  GoldenCase c(name);
  Tensor x = c.input("x"), gamma = c.input("gamma"), beta = c.input("beta");
  Tensor y = halo::layer_norm2d(x, gamma, beta, c.fattr("eps"));
  c.check(y, kDot, {{"x", kReduce}, {"gamma", kReduce}, {"beta", kReduce}});
}

TEST(GoldenOps, LayerNorm2d) { check_layer_norm("layer_norm2d"); }
// Inputs with mean 50 and spread 0.5 (careful statistics).
TEST(GoldenOps, LayerNorm2dLargeMean) { check_layer_norm("layer_norm2d_offset"); }

// ---- activations -------------------------------------------------------------------------------------

TEST(GoldenOps, Gelu) {
  GoldenCase c("gelu");
  Tensor x = c.input("x");
  c.check(halo::gelu(x), kPointwise, {{"x", kPointwise}});
}

TEST(GoldenOps, Relu) {
  GoldenCase c("relu");
  Tensor x = c.input("x");
  c.check(halo::relu(x), kPointwise, {{"x", kPointwise}});  // exact in fact
}

// ---- elementwise -------------------------------------------------------------------------------------

TEST(GoldenOps, Add) {
  GoldenCase c("add");
  Tensor a = c.input("a"), b = c.input("b");
  c.check(halo::add(a, b), kPointwise, {{"a", kPointwise}, {"b", kPointwise}});
}

TEST(GoldenOps, Mul) {
  GoldenCase c("mul");
  Tensor a = c.input("a"), b = c.input("b");
  c.check(halo::mul(a, b), kPointwise, {{"a", kPointwise}, {"b", kPointwise}});
}

TEST(GoldenOps, MulChannel) {
  GoldenCase c("mul_channel");
  Tensor x = c.input("x"), s = c.input("s");
  // ds sums dy * x over N*H*W.
  c.check(halo::mul_channel(x, s), kPointwise, {{"x", kPointwise}, {"s", kReduce}});
}

// ---- pooling ------------------------------------------------------------------------------------------

void check_max_pool(const std::string& name) {
  GoldenCase c(name);
  Tensor x = c.input("x");
  Tensor y = halo::max_pool2d(x, c.iattr("kernel"), c.iattr("stride"), c.iattr("padding"));
  // Selecting a maximum and routing dy to it is exact (the inputs have no ties); dx entries that
  // receive from two overlapping windows are one float addition.
  c.check(y, kPointwise, {{"x", kPointwise}});
}

TEST(GoldenOps, MaxPoolOddSize) { check_max_pool("max_pool2d_odd"); }    // 9x9 -> 5x5
TEST(GoldenOps, MaxPoolEvenSize) { check_max_pool("max_pool2d_even"); }  // 8x8 -> 4x4
TEST(GoldenOps, MaxPoolRect) { check_max_pool("max_pool2d_rect"); }      // 7x10 -> 4x5

TEST(GoldenOps, GlobalAvgPool) {
  GoldenCase c("global_avg_pool2d");
  Tensor x = c.input("x");
  // y is a mean over H*W = 30 values; dx = dy / (H*W) is pointwise.
  c.check(halo::global_avg_pool2d(x), kDot, {{"x", kPointwise}});
}

// ---- linear --------------------------------------------------------------------------------------------

TEST(GoldenOps, LinearBias) {
  GoldenCase c("linear_bias");
  Tensor x = c.input("x"), w = c.input("w"), b = c.input("b");
  c.check(halo::linear(x, w, b), kDot, {{"x", kDot}, {"w", kReduce}, {"b", kReduce}});
}

TEST(GoldenOps, LinearNoBias) {
  GoldenCase c("linear_nobias");
  Tensor x = c.input("x"), w = c.input("w");
  c.check(halo::linear(x, w, Tensor()), kDot, {{"x", kDot}, {"w", kReduce}});
}

// ---- mse_loss ------------------------------------------------------------------------------------------

TEST(GoldenOps, MseLoss) {
  GoldenCase c("mse_loss");
  Tensor pred = c.input("pred");
  Tensor target = c.input("target", false);  // a constant, as in PyTorch's use here
  Tensor loss = halo::mse_loss(pred, target);
  EXPECT_EQ(loss.dim(), 0) << "mse_loss returns a scalar []";
  // The loss is a mean of 8 squares; dpred = 2 (pred - target) / n * dy is pointwise.
  c.check(loss, kDot, {{"pred", kPointwise}});
}

}  // namespace
