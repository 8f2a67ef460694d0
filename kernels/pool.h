// Pooling kernels on NCHW: max pooling (ResNet's 3x3 stride-2 pad-1 stem pool) and global
// average pooling (the head of every model), forward and backward.
#pragma once
#include <cstdint>

namespace halo::kernels {

struct Pool2dShape {
  int n = 1, c = 1, h = 1, w = 1;
  int k = 3, stride = 2, pad = 1;
  int h_out() const { return (h + 2 * pad - k) / stride + 1; }
  int w_out() const { return (w + 2 * pad - k) / stride + 1; }
  long long x_size() const { return 1LL * n * c * h * w; }
  long long y_size() const { return 1LL * n * c * h_out() * w_out(); }
};

namespace cpu {
// y = max over the window (padding counts as -inf). argmax[i] = flat index within the (n, c)
// plane (iy*w + ix) of the winning input; ties go to the first in row-major order, as PyTorch.
template <class T>
void max_pool2d_forward(const Pool2dShape& s, const T* x, T* y, int32_t* argmax);
// dx is overwritten: dx = 0, then dx[argmax] += dy.
template <class T>
void max_pool2d_backward(const Pool2dShape& s, const T* dy, const int32_t* argmax, T* dx);

// y[n, c] = mean over hw of x[n, c, :]
template <class T> void global_avg_pool_forward(int n, int c, int hw, const T* x, T* y);
// dx[n, c, p] = dy[n, c] / hw
template <class T> void global_avg_pool_backward(int n, int c, int hw, const T* dy, T* dx);
}  // namespace cpu

}  // namespace halo::kernels

// Hand-written CUDA versions (kernels/cuda/pool.cu), float32, device pointers, queued on
// `stream` (a cudaStream_t; nullptr is the default stream). Built only with CUDA.
namespace halo::kernels::cuda {
void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax,
                        void* stream);
void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx,
                         void* stream);
void global_avg_pool_forward(int n, int c, int hw, const float* x, float* y, void* stream);
void global_avg_pool_backward(int n, int c, int hw, const float* dy, float* dx, void* stream);
}  // namespace halo::kernels::cuda
