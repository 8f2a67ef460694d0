// Adam with PyTorch's semantics (torch.optim.Adam and, with decoupled weight decay, AdamW).
#pragma once
#include <cstddef>

namespace halo::kernels {

struct AdamConfig {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  // false: L2 penalty added to the gradient (torch.optim.Adam's weight_decay);
  // true: decoupled decay p *= 1 - lr * weight_decay before the step (torch.optim.AdamW).
  bool decoupled = false;
};

namespace cpu {
// One step for one parameter tensor, step = t >= 1 (already incremented):
//   g' = g + wd*p (coupled)            | p = p*(1 - lr*wd) (decoupled)
//   m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2
//   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
template <class T>
void adam_step(std::size_t n, const AdamConfig& cfg, long long step, T* p, const T* g, T* m, T* v);
}  // namespace cpu

}  // namespace halo::kernels
