// Adam with PyTorch's semantics (torch.optim.Adam and, with decoupled weight decay, AdamW).
#pragma once
#include <cstddef>

namespace halo::kernels {

// Hyper-parameters are doubles, as PyTorch's (Python floats): 1 - 0.999f is not 1e-3 in float,
// which would put a 1.3e-5 relative error into exp_avg_sq.
struct AdamConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
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

// Hand-written CUDA Adam (kernels/cuda/optim.cu): one fused launch over all parameter tensors.
// Built only with CUDA.
namespace halo::kernels::cuda {
// One parameter tensor: device pointers to the parameter, its gradient and the two moments.
struct AdamTensor {
  float* p = nullptr;
  const float* g = nullptr;
  float* m = nullptr;
  float* v = nullptr;
  std::size_t n = 0;
};
// cpu::adam_step applied to every tensor of `tensors` (a host array of `count`), all at the same
// step t >= 1, in ONE kernel launch queued on `stream` (a cudaStream_t). A small table of the
// pointers is copied to the device when the list changes (the first step); afterwards a step
// is just the launch.
void adam_step(const AdamTensor* tensors, int count, const AdamConfig& cfg, long long step,
               void* stream);
}  // namespace halo::kernels::cuda
