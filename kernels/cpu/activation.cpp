// CPU reference for the pointwise activations of kernels/activation.h: ReLU and exact (erf) GELU.
// Each kernel is one streaming pass; OpenMP splits it only when the array is large.
#include "kernels/activation.h"

#include <cmath>

namespace halo::kernels::cpu {
namespace {
// Below this many elements a parallel region costs more than it saves.
constexpr std::size_t kParallelMin = 1 << 15;
constexpr double kSqrtHalf = 0.70710678118654752440;    // 1/sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;  // 1/sqrt(2 pi)
}  // namespace

// y = max(x, 0); NaN passes through (as torch.relu). Traffic: read x, write y.
template <class T>
void relu_forward(std::size_t n, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (std::size_t i = 0; i < n; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];
}

// dx = y <= 0 ? 0 : dy (PyTorch's threshold_backward on the output). Traffic: read y, dy; write dx.
template <class T>
void relu_backward(std::size_t n, const T* y, const T* dy, T* dx) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (std::size_t i = 0; i < n; ++i) dx[i] = y[i] <= T(0) ? T(0) : dy[i];
}

// y = 0.5 x (1 + erf(x/sqrt 2)). Traffic: read x, write y.
template <class T>
void gelu_forward(std::size_t n, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (std::size_t i = 0; i < n; ++i) {
    const T v = x[i];
    y[i] = T(0.5) * v * (T(1) + std::erf(v * T(kSqrtHalf)));
  }
}

// dx = dy (Phi(x) + x phi(x)), Phi(x) = 0.5 (1 + erf(x/sqrt 2)), phi(x) = exp(-x^2/2)/sqrt(2 pi).
// Traffic: read x, dy; write dx.
template <class T>
void gelu_backward(std::size_t n, const T* x, const T* dy, T* dx) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (std::size_t i = 0; i < n; ++i) {
    const T v = x[i];
    const T cdf = T(0.5) * (T(1) + std::erf(v * T(kSqrtHalf)));
    const T pdf = std::exp(T(-0.5) * v * v) * T(kInvSqrt2Pi);
    dx[i] = dy[i] * (cdf + v * pdf);
  }
}

#define HALO_INSTANTIATE_ACTIVATION(T)                                 \
  template void relu_forward<T>(std::size_t, const T*, T*);            \
  template void relu_backward<T>(std::size_t, const T*, const T*, T*); \
  template void gelu_forward<T>(std::size_t, const T*, T*);            \
  template void gelu_backward<T>(std::size_t, const T*, const T*, T*);
HALO_INSTANTIATE_ACTIVATION(float)
HALO_INSTANTIATE_ACTIVATION(double)
#undef HALO_INSTANTIATE_ACTIVATION

}  // namespace halo::kernels::cpu
