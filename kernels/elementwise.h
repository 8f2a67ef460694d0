// Elementwise kernels: add, multiply, multiply by a per-channel vector (ConvNeXt's layer scale),
// and the small vector helpers autograd needs (fill, copy, accumulate, scale).
#pragma once
#include <cstddef>

namespace halo::kernels::cpu {
template <class T> void fill(std::size_t n, T value, T* y);
// y = a + b
template <class T> void add(std::size_t n, const T* a, const T* b, T* y);
// y += alpha * x  (gradient accumulation)
template <class T> void axpy(std::size_t n, T alpha, const T* x, T* y);
// y = alpha * x
template <class T> void scale(std::size_t n, T alpha, const T* x, T* y);
// y = a * b
template <class T> void mul(std::size_t n, const T* a, const T* b, T* y);
// NCHW x times a per-channel vector s[c]: y[n,c,p] = x[n,c,p] * s[c]. outer = n, c, inner = hw.
template <class T>
void mul_channel_forward(int outer, int c, int inner, const T* x, const T* s, T* y);
// dx[n,c,p] = dy * s[c] (dx may be nullptr); ds[c] = sum_{n,p} dy * x (ds may be nullptr).
template <class T>
void mul_channel_backward(int outer, int c, int inner, const T* x, const T* s, const T* dy, T* dx,
                          T* ds);
}  // namespace halo::kernels::cpu

// Hand-written CUDA versions (kernels/cuda/elementwise.cu), float32, device pointers, launched on
// `stream` (a cudaStream_t; nullptr is the default stream). Built only with CUDA.
namespace halo::kernels::cuda {
void fill(std::size_t n, float value, float* y, void* stream);
void add(std::size_t n, const float* a, const float* b, float* y, void* stream);
void axpy(std::size_t n, float alpha, const float* x, float* y, void* stream);
void scale(std::size_t n, float alpha, const float* x, float* y, void* stream);
void mul(std::size_t n, const float* a, const float* b, float* y, void* stream);
}  // namespace halo::kernels::cuda

// Hand-written CUDA per-channel multiply (kernels/cuda/elementwise.cu); contract as the CPU one.
namespace halo::kernels::cuda {
void mul_channel_forward(int outer, int c, int inner, const float* x, const float* s, float* y,
                         void* stream);
void mul_channel_backward(int outer, int c, int inner, const float* x, const float* s,
                          const float* dy, float* dx, float* ds, void* stream);
}  // namespace halo::kernels::cuda
