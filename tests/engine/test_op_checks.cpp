// Every input check of the differentiable ops (engine/ops/*.cpp): for each throw in those files a
// call that trips it, checked for the exception's exact type and the telling part of its message,
// beside a valid call of the same op, so that each case differs from a working call in one thing.
// The cases that mix CPU and CUDA tensors need a CUDA device (a GPU, or the emulated device of a
// -DHALO_CUDA=EMULATED build) and skip, saying why, without one.
#include <gtest/gtest.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "tests/common/device.h"

using namespace halo;

namespace {

// Expects `fn` to throw exactly an E (not a subclass, not a base) whose message contains every one
// of `parts`.
template <class E = std::invalid_argument, class F>
void expect_error(const std::vector<std::string>& parts, F fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    EXPECT_TRUE(typeid(e) == typeid(E))
        << "threw " << typeid(e).name() << " instead of " << typeid(E).name() << ": " << msg;
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "message '" << msg << "' lacks '" << p << "'";
    return;
  }
  ADD_FAILURE() << "did not throw (expected an error mentioning '"
                << (parts.empty() ? "" : parts[0]) << "')";
}

Tensor f32(const Shape& s, Device d = Device::cpu) {
  return Tensor::ones(s, d);
}
Tensor i64(const Shape& s) {
  return Tensor::empty(s, Device::cpu, DType::i64);
}
Tensor param(const Shape& s) {
  Tensor t = Tensor::ones(s);
  t.set_requires_grad(true);
  return t;
}
const Tensor none;  // an undefined tensor
Tensor on_cuda(const Shape& s) {
  return Tensor::zeros(s, Device::cuda);
}

}  // namespace

// ---- activation.cpp ---------------------------------------------------------------------------

TEST(OpChecks, Relu) {
  EXPECT_NO_THROW(relu(f32({2, 3})));
  expect_error({"relu: x is undefined"}, [] { relu(none); });
  expect_error({"relu: x must be float32", "int64"}, [] { relu(i64({2, 3})); });
}

TEST(OpChecks, Gelu) {
  EXPECT_NO_THROW(gelu(f32({2, 3})));
  expect_error({"gelu: x is undefined"}, [] { gelu(none); });
  expect_error({"gelu: x must be float32", "int64"}, [] { gelu(i64({2, 3})); });
}

// ---- elementwise.cpp --------------------------------------------------------------------------

TEST(OpChecks, Add) {
  EXPECT_NO_THROW(add(f32({2, 3}), f32({2, 3})));
  expect_error({"add: a is undefined"}, [] { add(none, f32({2, 3})); });
  expect_error({"add: a must be float32", "int64"}, [] { add(i64({2, 3}), f32({2, 3})); });
  expect_error({"add: b is undefined"}, [] { add(f32({2, 3}), none); });
  expect_error({"add: b must be float32", "int64"}, [] { add(f32({2, 3}), i64({2, 3})); });
  // same number of elements, other shape: no silent reinterpretation
  expect_error({"add: shapes differ: [2, 3] vs [3, 2]"}, [] { add(f32({2, 3}), f32({3, 2})); });
}

TEST(OpChecks, AddInPlace) {
  Tensor a = f32({2, 3});
  EXPECT_NO_THROW(add_(a, f32({2, 3})));
  expect_error({"add_: a is undefined"}, [] {
    Tensor u;
    add_(u, f32({2, 3}));
  });
  expect_error({"add_: a must be float32", "int64"}, [] {
    Tensor t = i64({2, 3});
    add_(t, f32({2, 3}));
  });
  expect_error({"add_: b is undefined"}, [&] { add_(a, none); });
  expect_error({"add_: b must be float32", "int64"}, [&] { add_(a, i64({2, 3})); });
  expect_error({"add_: shapes differ: [2, 3] vs [3, 2]"}, [&] { add_(a, f32({3, 2})); });
  Tensor p = param({2, 3});
  expect_error<std::logic_error>(
      {"add_: in-place update of a tensor that requires grad", "NoGradGuard"}, [&] {
        add_(p, f32({2, 3}));
      });
  NoGradGuard no_grad;  // the way optimizers update parameters
  EXPECT_NO_THROW(add_(p, f32({2, 3})));
}

TEST(OpChecks, Mul) {
  EXPECT_NO_THROW(mul(f32({2, 3}), f32({2, 3})));
  expect_error({"mul: a is undefined"}, [] { mul(none, f32({2, 3})); });
  expect_error({"mul: a must be float32", "int64"}, [] { mul(i64({2, 3}), f32({2, 3})); });
  expect_error({"mul: b is undefined"}, [] { mul(f32({2, 3}), none); });
  expect_error({"mul: b must be float32", "int64"}, [] { mul(f32({2, 3}), i64({2, 3})); });
  expect_error({"mul: shapes differ: [2, 3] vs [3, 2]"}, [] { mul(f32({2, 3}), f32({3, 2})); });
}

TEST(OpChecks, MulChannel) {
  EXPECT_NO_THROW(mul_channel(f32({2, 3, 4, 4}), f32({3})));
  EXPECT_NO_THROW(mul_channel(f32({2, 3}), f32({3})));
  expect_error({"mul_channel: x is undefined"}, [] { mul_channel(none, f32({3})); });
  expect_error({"mul_channel: x must be float32"}, [] { mul_channel(i64({2, 3}), f32({3})); });
  expect_error({"mul_channel: s is undefined"}, [] { mul_channel(f32({2, 3}), none); });
  expect_error({"mul_channel: s must be float32"}, [] { mul_channel(f32({2, 3}), i64({3})); });
  expect_error({"mul_channel: s must be 1-d", "Tensor[1, 3]"}, [] {
    mul_channel(f32({2, 3}), f32({1, 3}));
  });
  expect_error({"mul_channel: x must be [N, C, ...] with C = 3", "Tensor[3]"},
               [] { mul_channel(f32({3}), f32({3})); });
  expect_error({"mul_channel: x must be [N, C, ...] with C = 3", "Tensor[2, 4, 5, 5]"}, [] {
    mul_channel(f32({2, 4, 5, 5}), f32({3}));
  });
  // Empty x: the kernels' block sizes (outer, C, inner = numel / (outer C)) must all be >= 1.
  expect_error({"mul_channel: x must have no zero-size dimension", "Tensor[0, 3, 2, 2]"}, [] {
    mul_channel(f32({0, 3, 2, 2}), f32({3}));
  });
  expect_error({"mul_channel: x must have no zero-size dimension", "Tensor[2, 0]"}, [] {
    mul_channel(f32({2, 0}), f32({0}));
  });
  expect_error({"mul_channel: x must have no zero-size dimension", "Tensor[2, 3, 0]"}, [] {
    mul_channel(f32({2, 3, 0}), f32({3}));
  });
}

// ---- conv.cpp ---------------------------------------------------------------------------------

TEST(OpChecks, Conv2d) {
  const Tensor x = f32({2, 4, 5, 5}), w = f32({6, 4, 3, 3}), b = f32({6});
  EXPECT_NO_THROW(conv2d(x, w, b, 1, 1));
  EXPECT_NO_THROW(conv2d(x, w, none, 1, 1));                  // no bias
  EXPECT_NO_THROW(conv2d(x, f32({6, 2, 3, 3}), b, 1, 1, 2));  // grouped
  expect_error({"conv2d: input x [N, C, H, W] is undefined"}, [&] { conv2d(none, w, b, 1, 1); });
  expect_error({"conv2d: input x [N, C, H, W] must be float32", "int64"}, [&] {
    conv2d(i64({2, 4, 5, 5}), w, b, 1, 1);
  });
  expect_error({"conv2d: input x [N, C, H, W] must be 4-d", "Tensor[4, 5, 5]"}, [&] {
    conv2d(f32({4, 5, 5}), w, b, 1, 1);
  });
  expect_error({"conv2d: weight [C_out, C_in/groups, kH, kW] is undefined"},
               [&] { conv2d(x, none, b, 1, 1); });
  expect_error({"conv2d: weight [C_out, C_in/groups, kH, kW] must be float32"}, [&] {
    conv2d(x, i64({6, 4, 3, 3}), b, 1, 1);
  });
  expect_error({"conv2d: weight [C_out, C_in/groups, kH, kW] must be 4-d", "Tensor[6, 36]"}, [&] {
    conv2d(x, f32({6, 36}), b, 1, 1);
  });
  const char* geometry = "conv2d: need stride >= 1, padding >= 0, groups >= 1";
  expect_error({geometry}, [&] { conv2d(x, w, b, 0, 1); });
  expect_error({geometry}, [&] { conv2d(x, w, b, 1, -1); });
  expect_error({geometry}, [&] { conv2d(x, w, b, 1, 1, 0); });
  expect_error({"conv2d: channels (in 4, out 6) not divisible by groups 3"}, [&] {
    conv2d(x, f32({6, 1, 3, 3}), b, 1, 1, 3);
  });
  expect_error({"conv2d: channels (in 6, out 4) not divisible by groups 3"}, [&] {
    conv2d(f32({2, 6, 5, 5}), f32({4, 2, 3, 3}), none, 1, 1, 3);
  });
  expect_error({"conv2d: weight [6, 4, 3, 3] expects 4 input channels", "Tensor[2, 3, 5, 5]"}, [&] {
    conv2d(f32({2, 3, 5, 5}), w, b, 1, 1);
  });
  // groups 2 wants a weight [6, 2, kH, kW]
  expect_error({"conv2d: weight [6, 4, 3, 3] expects 8 input channels"}, [&] {
    conv2d(x, f32({6, 4, 3, 3}), b, 1, 1, 2);
  });
  expect_error({"conv2d bias: expected shape [6], got [4]"}, [&] { conv2d(x, w, f32({4}), 1, 1); });
  expect_error({"conv2d: bias must be float32", "int64"}, [&] { conv2d(x, w, i64({6}), 1, 1); });
  expect_error({"conv2d: kernel [6, 4, 3, 3] larger than padded input", "Tensor[2, 4, 2, 5]"}, [&] {
    conv2d(f32({2, 4, 2, 5}), w, b, 1, 0);
  });
  expect_error({"larger than padded input"}, [&] { conv2d(f32({2, 4, 5, 2}), w, b, 1, 0); });
  EXPECT_NO_THROW(conv2d(f32({2, 4, 1, 1}), w, b, 1, 1));  // padding makes room
}

// ---- norm.cpp ---------------------------------------------------------------------------------

TEST(OpChecks, BatchNorm2d) {
  const Tensor x = f32({2, 3, 4, 4}), g = f32({3}), b = f32({3});
  Tensor rm = f32({3}), rv = f32({3});
  EXPECT_NO_THROW(batch_norm2d(x, g, b, rm, rv, true));
  EXPECT_NO_THROW(batch_norm2d(x, g, b, rm, rv, false));
  expect_error({"batch_norm2d: input x [N, C, H, W] is undefined"},
               [&] { batch_norm2d(none, g, b, rm, rv, true); });
  expect_error({"batch_norm2d: input x [N, C, H, W] must be float32"}, [&] {
    batch_norm2d(i64({2, 3, 4, 4}), g, b, rm, rv, true);
  });
  expect_error({"batch_norm2d: input x [N, C, H, W] must be 4-d", "Tensor[2, 3, 16]"}, [&] {
    batch_norm2d(f32({2, 3, 16}), g, b, rm, rv, true);
  });
  expect_error({"batch_norm2d weight: expected shape [3], got [4]"},
               [&] { batch_norm2d(x, f32({4}), b, rm, rv, true); });
  expect_error({"batch_norm2d weight: tensor is undefined, expected shape [3]"},
               [&] { batch_norm2d(x, none, b, rm, rv, false); });
  expect_error({"batch_norm2d bias: expected shape [3], got [1, 3]"}, [&] {
    batch_norm2d(x, g, f32({1, 3}), rm, rv, true);
  });
  expect_error({"batch_norm2d bias: tensor is undefined"},
               [&] { batch_norm2d(x, g, none, rm, rv, true); });
  expect_error({"batch_norm2d running_mean: expected shape [3], got [2]"}, [&] {
    Tensor m = f32({2});
    batch_norm2d(x, g, b, m, rv, true);
  });
  expect_error({"batch_norm2d running_mean: tensor is undefined"}, [&] {
    Tensor u;
    batch_norm2d(x, g, b, u, rv, false);
  });
  expect_error({"batch_norm2d running_var: expected shape [3], got [3, 1]"}, [&] {
    Tensor v = f32({3, 1});
    batch_norm2d(x, g, b, rm, v, true);
  });
  expect_error({"batch_norm2d running_var: tensor is undefined"}, [&] {
    Tensor u;
    batch_norm2d(x, g, b, rm, u, false);
  });
  expect_error({"batch_norm2d: weight must be float32", "int64"},
               [&] { batch_norm2d(x, i64({3}), b, rm, rv, true); });
  expect_error({"batch_norm2d: bias must be float32", "int64"},
               [&] { batch_norm2d(x, g, i64({3}), rm, rv, true); });
  expect_error({"batch_norm2d: running_mean must be float32", "int64"}, [&] {
    Tensor m = i64({3});
    batch_norm2d(x, g, b, m, rv, false);
  });
  expect_error({"batch_norm2d: running_var must be float32", "int64"}, [&] {
    Tensor v = i64({3});
    batch_norm2d(x, g, b, rm, v, false);
  });
  // One value per channel has no batch variance (PyTorch refuses it too); eval mode is fine.
  expect_error(
      {"batch_norm2d: training needs more than one value per channel", "Tensor[1, 3, 1, 1]"}, [&] {
        batch_norm2d(f32({1, 3, 1, 1}), g, b, rm, rv, true);
      });
  EXPECT_NO_THROW(batch_norm2d(f32({1, 3, 1, 1}), g, b, rm, rv, false));
  EXPECT_NO_THROW(batch_norm2d(f32({2, 3, 1, 1}), g, b, rm, rv, true));
}

TEST(OpChecks, LayerNorm2d) {
  const Tensor x = f32({2, 3, 4, 4}), g = f32({3}), b = f32({3});
  EXPECT_NO_THROW(layer_norm2d(x, g, b));
  expect_error({"layer_norm2d: input x [N, C, H, W] is undefined"},
               [&] { layer_norm2d(none, g, b); });
  expect_error({"layer_norm2d: input x [N, C, H, W] must be float32"}, [&] {
    layer_norm2d(i64({2, 3, 4, 4}), g, b);
  });
  expect_error({"layer_norm2d: input x [N, C, H, W] must be 4-d", "Tensor[2, 3]"}, [&] {
    layer_norm2d(f32({2, 3}), g, b);
  });
  expect_error({"layer_norm2d weight: expected shape [3], got [4]"},
               [&] { layer_norm2d(x, f32({4}), b); });
  expect_error({"layer_norm2d weight: tensor is undefined, expected shape [3]"},
               [&] { layer_norm2d(x, none, b); });
  expect_error({"layer_norm2d bias: expected shape [3], got [2]"},
               [&] { layer_norm2d(x, g, f32({2})); });
  expect_error({"layer_norm2d bias: tensor is undefined"}, [&] { layer_norm2d(x, g, none); });
  expect_error({"layer_norm2d: weight must be float32", "int64"},
               [&] { layer_norm2d(x, i64({3}), b); });
  expect_error({"layer_norm2d: bias must be float32", "int64"},
               [&] { layer_norm2d(x, g, i64({3})); });
}

// ---- pool.cpp ---------------------------------------------------------------------------------

TEST(OpChecks, MaxPool2d) {
  const Tensor x = f32({2, 3, 6, 6});
  EXPECT_NO_THROW(max_pool2d(x, 3, 2, 1));
  expect_error({"max_pool2d: input x [N, C, H, W] is undefined"}, [] { max_pool2d(none); });
  expect_error({"max_pool2d: input x [N, C, H, W] must be float32"}, [] {
    max_pool2d(i64({2, 3, 6, 6}));
  });
  expect_error({"max_pool2d: input x [N, C, H, W] must be 4-d", "Tensor[3, 6, 6]"}, [] {
    max_pool2d(f32({3, 6, 6}));
  });
  const char* window = "max_pool2d: need kernel >= 1, stride >= 1, 0 <= padding <= kernel/2";
  expect_error({window}, [&] { max_pool2d(x, 0, 1, 0); });
  expect_error({window}, [&] { max_pool2d(x, 3, 0, 1); });
  expect_error({window}, [&] { max_pool2d(x, 3, 2, -1); });
  expect_error({window}, [&] { max_pool2d(x, 3, 2, 2); });  // a window entirely in padding
  EXPECT_NO_THROW(max_pool2d(x, 2, 2, 1));                  // padding == kernel/2 is allowed
  expect_error({"max_pool2d: input Tensor[2, 3, 1, 6] float32 cpu smaller than the window"}, [] {
    max_pool2d(f32({2, 3, 1, 6}), 3, 2, 0);
  });
  expect_error({"smaller than the window"}, [] { max_pool2d(f32({2, 3, 6, 1}), 3, 2, 0); });
  // An empty plane: every window lies in the padding, there is no maximum to take.
  expect_error({"max_pool2d: input x must have H, W >= 1", "Tensor[2, 3, 0, 6]"}, [] {
    max_pool2d(f32({2, 3, 0, 6}), 2, 2, 1);
  });
  expect_error({"max_pool2d: input x must have H, W >= 1"}, [] {
    max_pool2d(f32({2, 3, 6, 0}), 2, 2, 1);
  });
}

TEST(OpChecks, GlobalAvgPool2d) {
  EXPECT_NO_THROW(global_avg_pool2d(f32({2, 3, 4, 4})));
  expect_error({"global_avg_pool2d: input x [N, C, H, W] is undefined"},
               [] { global_avg_pool2d(none); });
  expect_error({"global_avg_pool2d: input x [N, C, H, W] must be float32"}, [] {
    global_avg_pool2d(i64({2, 3, 4, 4}));
  });
  expect_error({"global_avg_pool2d: input x [N, C, H, W] must be 4-d", "Tensor[2, 3, 16]"}, [] {
    global_avg_pool2d(f32({2, 3, 16}));
  });
  // The mean of no pixels is 0/0.
  expect_error({"global_avg_pool2d: input x must have H, W >= 1", "Tensor[2, 3, 0, 4]"}, [] {
    global_avg_pool2d(f32({2, 3, 0, 4}));
  });
  expect_error({"global_avg_pool2d: input x must have H, W >= 1"}, [] {
    global_avg_pool2d(f32({2, 3, 4, 0}));
  });
}

// ---- linear.cpp -------------------------------------------------------------------------------

TEST(OpChecks, Linear) {
  const Tensor x = f32({2, 5}), w = f32({3, 5}), b = f32({3});
  EXPECT_NO_THROW(linear(x, w, b));
  EXPECT_NO_THROW(linear(x, w, none));
  expect_error({"linear: input x [N, in] is undefined"}, [&] { linear(none, w, b); });
  expect_error({"linear: input x [N, in] must be float32"}, [&] { linear(i64({2, 5}), w, b); });
  expect_error({"linear: input x [N, in] must be 2-d", "Tensor[2, 5, 1, 1]"}, [&] {
    linear(f32({2, 5, 1, 1}), w, b);
  });
  expect_error({"linear: weight [out, in] is undefined"}, [&] { linear(x, none, b); });
  expect_error({"linear: weight [out, in] must be float32"}, [&] { linear(x, i64({3, 5}), b); });
  expect_error({"linear: weight [out, in] must be 2-d", "Tensor[15]"},
               [&] { linear(x, f32({15}), b); });
  expect_error({"linear: weight [3, 4] expects 4 input features", "Tensor[2, 5]"}, [&] {
    linear(x, f32({3, 4}), b);
  });
  expect_error({"linear bias: expected shape [3], got [5]"}, [&] { linear(x, w, f32({5})); });
  expect_error({"linear: bias must be float32", "int64"}, [&] { linear(x, w, i64({3})); });
}

// ---- loss.cpp ---------------------------------------------------------------------------------

TEST(OpChecks, MseLoss) {
  EXPECT_NO_THROW(mse_loss(f32({4, 1}), f32({4, 1})));
  EXPECT_NO_THROW(mse_loss(f32({4, 1}), f32({4})));  // [N, 1] head against [N] labels
  expect_error({"mse_loss: prediction is undefined"}, [] { mse_loss(none, f32({4})); });
  expect_error({"mse_loss: prediction must be float32", "int64"},
               [] { mse_loss(i64({4}), f32({4})); });
  expect_error({"mse_loss: target is undefined"}, [] { mse_loss(f32({4}), none); });
  expect_error({"mse_loss: target must be float32"}, [] { mse_loss(f32({4}), i64({4})); });
  expect_error({"mse_loss: prediction Tensor[4, 1] float32 cpu and target Tensor[3] float32 cpu "
                "have different sizes"},
               [] {
                 mse_loss(f32({4, 1}), f32({3}));
               });
  expect_error({"mse_loss: empty prediction"}, [] { mse_loss(f32({0, 1}), f32({0})); });
}

// ---- every op with more than one tensor input: all on one device --------------------------------
// (relu, gelu, max_pool2d and global_avg_pool2d take one tensor and run on its device.) A CUDA
// tensor exists only where a CUDA device does (a GPU or the emulated device); the checks run before
// any kernel, so no GPU work is done.

class OpChecksDevices : public ::testing::Test {
 protected:
  void SetUp() override { HALO_REQUIRE_CUDA_DEVICE(); }
  static void expect_mixed(const char* op, const std::function<void()>& fn) {
    expect_error({std::string(op) + ": tensors on different devices", "cpu", "cuda"}, fn);
  }
};

TEST_F(OpChecksDevices, Elementwise) {
  expect_mixed("add", [] { add(f32({2, 3}), on_cuda({2, 3})); });
  expect_mixed("add", [] { add(on_cuda({2, 3}), f32({2, 3})); });
  expect_mixed("add_", [] {
    Tensor a = f32({2, 3});
    add_(a, on_cuda({2, 3}));
  });
  expect_mixed("add_", [] {
    Tensor a = on_cuda({2, 3});
    add_(a, f32({2, 3}));
  });
  expect_mixed("mul", [] { mul(f32({2, 3}), on_cuda({2, 3})); });
  expect_mixed("mul_channel", [] { mul_channel(f32({2, 3, 2, 2}), on_cuda({3})); });
  expect_mixed("mul_channel", [] { mul_channel(on_cuda({2, 3, 2, 2}), f32({3})); });
}

TEST_F(OpChecksDevices, Conv2d) {
  expect_mixed("conv2d", [] { conv2d(on_cuda({1, 2, 4, 4}), f32({3, 2, 3, 3}), none, 1, 1); });
  expect_mixed("conv2d", [] { conv2d(f32({1, 2, 4, 4}), on_cuda({3, 2, 3, 3}), f32({3}), 1, 1); });
  expect_mixed("conv2d", [] { conv2d(f32({1, 2, 4, 4}), f32({3, 2, 3, 3}), on_cuda({3}), 1, 1); });
}

TEST_F(OpChecksDevices, Norms) {
  const Tensor x = f32({2, 3, 2, 2}), g = f32({3}), b = f32({3});
  expect_mixed("batch_norm2d", [&] {
    Tensor m = f32({3}), v = f32({3});
    batch_norm2d(on_cuda({2, 3, 2, 2}), g, b, m, v, true);
  });
  expect_mixed("batch_norm2d", [&] {
    Tensor m = f32({3}), v = f32({3});
    batch_norm2d(x, on_cuda({3}), b, m, v, true);
  });
  expect_mixed("batch_norm2d", [&] {
    Tensor m = f32({3}), v = f32({3});
    batch_norm2d(x, g, on_cuda({3}), m, v, true);
  });
  expect_mixed("batch_norm2d", [&] {
    Tensor m = on_cuda({3}), v = f32({3});
    batch_norm2d(x, g, b, m, v, true);
  });
  expect_mixed("batch_norm2d", [&] {
    Tensor m = f32({3}), v = on_cuda({3});
    batch_norm2d(x, g, b, m, v, false);
  });
  expect_mixed("layer_norm2d", [&] { layer_norm2d(on_cuda({2, 3, 2, 2}), g, b); });
  expect_mixed("layer_norm2d", [&] { layer_norm2d(x, on_cuda({3}), b); });
  expect_mixed("layer_norm2d", [&] { layer_norm2d(x, g, on_cuda({3})); });
}

TEST_F(OpChecksDevices, LinearAndLoss) {
  expect_mixed("linear", [] { linear(on_cuda({2, 5}), f32({3, 5}), none); });
  expect_mixed("linear", [] { linear(f32({2, 5}), on_cuda({3, 5}), f32({3})); });
  expect_mixed("linear", [] { linear(f32({2, 5}), f32({3, 5}), on_cuda({3})); });
  expect_mixed("mse_loss", [] { mse_loss(on_cuda({4}), f32({4})); });
  expect_mixed("mse_loss", [] { mse_loss(f32({4}), on_cuda({4})); });
}
