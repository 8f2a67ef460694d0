// The differentiable ops of the engine. Each op checks its inputs, runs the kernel for the
// tensors' device, and, when an input requires grad, records a backward node (autograd.h).
// Forward and backward of each op stand side by side in engine/ops/<family>.cpp.
#pragma once
#include "engine/tensor.h"

namespace halo {

// ---- elementwise (ops/elementwise.cpp) ------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);  // same shapes
Tensor mul(const Tensor& a, const Tensor& b);  // same shapes
// x [N, C, ...] times a per-channel vector s [C] (ConvNeXt's layer scale gamma).
Tensor mul_channel(const Tensor& x, const Tensor& s);
// In place a += b, outside autograd (gradient accumulation, optimizers). Throws if `a` requires
// grad while grad mode is on, since the graph would silently be wrong.
void add_(Tensor& a, const Tensor& b);

// ---- activations (ops/activation.cpp) -----------------------------------------------------------
Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x);  // exact erf form, as torch.nn.GELU()

// ---- convolution (ops/conv.cpp)
// --------------------------------------------------------------------- x [N, C_in, H, W], w
// [C_out, C_in/groups, kH, kW], bias [C_out] or undefined.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, int stride, int padding,
              int groups = 1);

// ---- normalisation (ops/norm.cpp)
// ----------------------------------------------------------------- x [N, C, H, W]. training:
// normalise with batch statistics and update running_mean/var in place (momentum 0.1 as PyTorch: r
// = 0.9 r + 0.1 stat, unbiased variance for running_var). eval: normalise with the running
// statistics.
Tensor batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                    const Tensor& running_mean, const Tensor& running_var, bool training,
                    float momentum = 0.1f, float eps = 1e-5f);
// relu(batch_norm2d(x) + residual), one op (residual: an undefined Tensor for none): ResNet's
// bn + act, and bn + shortcut + act. On the CPU one fused pass forward and one backward (no
// intermediate tensor); on the GPU the batch norm, the add and the ReLU run one after another.
Tensor batch_norm2d_add_relu(const Tensor& x, const Tensor& residual, const Tensor& gamma,
                             const Tensor& beta, const Tensor& running_mean,
                             const Tensor& running_var, bool training, float momentum = 0.1f,
                             float eps = 1e-5f);
// Layer norm over the channels of each pixel of x [N, C, H, W]; gamma, beta [C].
Tensor layer_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps = 1e-6f);

// ---- pooling (ops/pool.cpp)
// -------------------------------------------------------------------------
Tensor max_pool2d(const Tensor& x, int kernel = 3, int stride = 2, int padding = 1);
// [N, C, H, W] -> [N, C, 1, 1], as timm's SelectAdaptivePool2d before flatten
Tensor global_avg_pool2d(const Tensor& x);

// ---- linear (ops/linear.cpp)
// -------------------------------------------------------------------------- x [N, in], w [out,
// in], bias [out] or undefined -> [N, out]
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias);

// ---- loss (ops/loss.cpp)
// ------------------------------------------------------------------------------ mean((pred -
// target)^2) over all elements; target is treated as a constant. Returns [] (scalar).
Tensor mse_loss(const Tensor& pred, const Tensor& target);

}  // namespace halo
