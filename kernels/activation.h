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
