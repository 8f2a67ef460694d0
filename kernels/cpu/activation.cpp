// CPU reference for the pointwise activations of kernels/activation.h: ReLU and exact (erf) GELU.
// Each kernel is one streaming pass; OpenMP splits it only when the array is large.
#include "kernels/activation.h"

#include <omp.h>

#include <Eigen/Core>
#include <cmath>
#include <type_traits>
#include <unsupported/Eigen/SpecialFunctions>

#include "kernels/cpu/variant.h"

namespace halo::kernels::cpu::HALO_CPU_VARIANT {
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

// Runs body(begin, end) over [0, n), split into one contiguous range per OpenMP thread when n is
// large enough to be worth a parallel region.
template <class F>
void for_ranges(std::size_t n, F&& body) {
  if (n < kParallelMin) return body(std::size_t(0), n);
#pragma omp parallel
  {
    const std::size_t t = omp_get_thread_num(), team = omp_get_num_threads();
    body(n * t / team, n * (t + 1) / team);
  }
}

// y = 0.5 x (1 + erf(x/sqrt 2)). Traffic: read x, write y.
// float: Eigen's vectorised erf (a 13/8-degree rational function, a few ulp from the true erf on
// [-4, 4] and exactly +-1 outside), in this variant's vector width; std::erf is a scalar libm
// call that no compiler vectorises. double keeps std::erf (the gradient checks' precision).
template <class T>
void gelu_forward(std::size_t n, const T* x, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    for_ranges(n, [&](std::size_t b, std::size_t e) {
      Eigen::Map<const Eigen::ArrayXf> X(x + b, Eigen::Index(e - b));
      Eigen::Map<Eigen::ArrayXf> Y(y + b, Eigen::Index(e - b));
      Y = 0.5f * X * (1.0f + (X * float(kSqrtHalf)).erf());
    });
  } else {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (std::size_t i = 0; i < n; ++i) {
      const T v = x[i];
      y[i] = T(0.5) * v * (T(1) + std::erf(v * T(kSqrtHalf)));
    }
  }
}

// dx = dy (Phi(x) + x phi(x)), Phi(x) = 0.5 (1 + erf(x/sqrt 2)), phi(x) = exp(-x^2/2)/sqrt(2 pi).
// Traffic: read x, dy; write dx. float: Eigen's vectorised erf and exp, as in gelu_forward.
template <class T>
void gelu_backward(std::size_t n, const T* x, const T* dy, T* dx) {
  if constexpr (std::is_same_v<T, float>) {
    for_ranges(n, [&](std::size_t b, std::size_t e) {
      const auto len = Eigen::Index(e - b);
      Eigen::Map<const Eigen::ArrayXf> X(x + b, len), DY(dy + b, len);
      Eigen::Map<Eigen::ArrayXf> DX(dx + b, len);
      DX = DY * (0.5f * (1.0f + (X * float(kSqrtHalf)).erf()) +
                 X * (-0.5f * X * X).exp() * float(kInvSqrt2Pi));
    });
  } else {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (std::size_t i = 0; i < n; ++i) {
      const T v = x[i];
      const T cdf = T(0.5) * (T(1) + std::erf(v * T(kSqrtHalf)));
      const T pdf = std::exp(T(-0.5) * v * v) * T(kInvSqrt2Pi);
      dx[i] = dy[i] * (cdf + v * pdf);
    }
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

}  // namespace halo::kernels::cpu::HALO_CPU_VARIANT
