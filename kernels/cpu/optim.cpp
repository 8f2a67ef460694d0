// CPU reference for the Adam / AdamW step of kernels/optim.h, following PyTorch's single-tensor
// (non-foreach, non-fused, non-amsgrad) implementation operation by operation.
#include "kernels/cpu/variant.h"
#include "kernels/optim.h"

#include <cmath>

namespace halo::kernels::cpu::HALO_CPU_VARIANT {
namespace {
// Below this many elements a parallel region costs more than it saves.
constexpr std::size_t kParallelMin = 1 << 15;
}  // namespace

// g' = g + wd p (coupled) | p *= 1 - lr wd (decoupled); m = lerp(m, g', 1-b1) = m + (1-b1)(g'-m);
// v = b2 v + (1-b2) g'^2; p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
// Scalars are formed in double (as Python floats in PyTorch) and rounded to T once; the
// elementwise work is in T. Traffic: reads p, g, m, v; writes p, m, v.
template <class T>
void adam_step(std::size_t n, const AdamConfig& cfg, long long step, T* p, const T* g, T* m, T* v) {
  const double lr = cfg.lr, b1 = cfg.beta1, b2 = cfg.beta2, wd = cfg.weight_decay;
  const double bias_correction1 = 1.0 - std::pow(b1, double(step));
  const double bias_correction2 = 1.0 - std::pow(b2, double(step));
  const T step_size = T(lr / bias_correction1);
  const T bc2_sqrt = T(std::sqrt(bias_correction2));
  const T eps = T(cfg.eps);
  const T one_minus_b1 = T(1.0 - b1);
  const T beta2 = T(b2);
  const T one_minus_b2 = T(1.0 - b2);
  const bool coupled = wd != 0.0 && !cfg.decoupled;
  const bool decoupled = wd != 0.0 && cfg.decoupled;
  const T wd_t = T(wd);
  const T decay = T(1.0 - lr * wd);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (std::size_t i = 0; i < n; ++i) {
    T grad = g[i];
    if (coupled) grad = grad + wd_t * p[i];
    if (decoupled) p[i] = p[i] * decay;
    m[i] = m[i] + one_minus_b1 * (grad - m[i]);
    v[i] = v[i] * beta2 + one_minus_b2 * grad * grad;
    const T denom = std::sqrt(v[i]) / bc2_sqrt + eps;
    p[i] = p[i] - step_size * (m[i] / denom);
  }
}

template void adam_step<float>(std::size_t, const AdamConfig&, long long, float*, const float*,
                               float*, float*);
template void adam_step<double>(std::size_t, const AdamConfig&, long long, double*, const double*,
                                double*, double*);

}  // namespace halo::kernels::cpu::HALO_CPU_VARIANT
