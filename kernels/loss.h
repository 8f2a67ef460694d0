// Mean squared error, the loss of the regression task: L = mean((pred - target)^2).
#pragma once
#include <cstddef>

namespace halo::kernels::cpu {
// Returns sum((p - t)^2) / n, accumulated in double for float inputs.
template <class T> T mse_forward(std::size_t n, const T* pred, const T* target);
// dpred = dloss * 2 (p - t) / n  (overwritten)
template <class T>
void mse_backward(std::size_t n, const T* pred, const T* target, T dloss, T* dpred);
}  // namespace halo::kernels::cpu

// Hand-written CUDA versions (kernels/cuda/loss.cu), float32, device pointers, queued on `stream`
// (a cudaStream_t; nullptr is the default stream). Built only with CUDA.
namespace halo::kernels::cuda {
// *loss (one float in device memory) = sum((p - t)^2) / n, accumulated in double in a fixed order
// (deterministic). Nothing is copied to the host: read *loss only when it is reported.
void mse_forward(std::size_t n, const float* pred, const float* target, float* loss, void* stream);
// dpred = dloss * 2 (p - t) / n, with dloss read from device memory (one float, the upstream
// gradient of the loss as autograd holds it); dloss == nullptr means 1.
void mse_backward(std::size_t n, const float* pred, const float* target, const float* dloss,
                  float* dpred, void* stream);
}  // namespace halo::kernels::cuda
