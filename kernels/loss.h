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
