// Pointwise activations: ReLU and GELU in its exact erf form, forward and backward.
#pragma once
#include <cstddef>

namespace halo::kernels::cpu {
// y = max(x, 0)
template <class T> void relu_forward(std::size_t n, const T* x, T* y);
// dx = dy where y > 0 else 0 (y is the forward output; y > 0 <=> x > 0).
template <class T> void relu_backward(std::size_t n, const T* y, const T* dy, T* dx);
// y = x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2)))
template <class T> void gelu_forward(std::size_t n, const T* x, T* y);
// dx = dy * (Phi(x) + x * phi(x)), phi(x) = exp(-x^2/2) / sqrt(2 pi)
template <class T> void gelu_backward(std::size_t n, const T* x, const T* dy, T* dx);
}  // namespace halo::kernels::cpu

// Hand-written CUDA versions (kernels/cuda/activation.cu), float32, device pointers, queued on
// `stream` (a cudaStream_t; nullptr is the default stream). Built only with CUDA.
namespace halo::kernels::cuda {
void relu_forward(std::size_t n, const float* x, float* y, void* stream);
void relu_backward(std::size_t n, const float* y, const float* dy, float* dx, void* stream);
void gelu_forward(std::size_t n, const float* x, float* y, void* stream);
void gelu_backward(std::size_t n, const float* x, const float* dy, float* dx, void* stream);
}  // namespace halo::kernels::cuda
