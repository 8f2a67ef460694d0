// CPU reference for the mean-squared-error loss of kernels/loss.h, forward and backward.
#include "kernels/cpu/variant.h"
#include "kernels/loss.h"

namespace halo::kernels::cpu::HALO_CPU_VARIANT {
namespace {
// Below this many elements a parallel region costs more than it saves.
constexpr std::size_t kParallelMin = 1 << 15;
}  // namespace

// L = sum((p - t)^2) / n, accumulated in double. Traffic: reads pred and target once.
template <class T>
T mse_forward(std::size_t n, const T* pred, const T* target) {
  double acc = 0;
#pragma omp parallel for schedule(static) reduction(+ : acc) if (n >= kParallelMin)
  for (std::size_t i = 0; i < n; ++i) {
    const double d = double(pred[i]) - double(target[i]);
    acc += d * d;
  }
  return T(acc / double(n));
}

// dpred = (2/n * (p - t)) * dloss, the order of PyTorch's mse_loss_backward.
// Traffic: reads pred and target, writes dpred.
template <class T>
void mse_backward(std::size_t n, const T* pred, const T* target, T dloss, T* dpred) {
  const T norm = T(2.0 / double(n));
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (std::size_t i = 0; i < n; ++i) dpred[i] = norm * (pred[i] - target[i]) * dloss;
}

#define HALO_INSTANTIATE_LOSS(T)                              \
  template T mse_forward<T>(std::size_t, const T*, const T*); \
  template void mse_backward<T>(std::size_t, const T*, const T*, T, T*);
HALO_INSTANTIATE_LOSS(float)
HALO_INSTANTIATE_LOSS(double)
#undef HALO_INSTANTIATE_LOSS

}  // namespace halo::kernels::cpu::HALO_CPU_VARIANT
