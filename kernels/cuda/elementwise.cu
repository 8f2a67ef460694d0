// Hand-written CUDA elementwise kernels (fill, add, axpy, scale, mul). Each is one pass over
// memory: n elements read per input and n written, so they are bound by memory bandwidth.
#include "kernels/cuda/check.h"
#include "kernels/elementwise.h"

namespace halo::kernels::cuda {

namespace {
constexpr int kThreads = 256;
inline int blocks_for(std::size_t n) {
  std::size_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < 65535u * 8 ? b : 65535u * 8);
}

__global__ void fill_kernel(std::size_t n, float v, float* y) {
  for (std::size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) y[i] = v;
}
__global__ void add_kernel(std::size_t n, const float* a, const float* b, float* y) {
  for (std::size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) y[i] = a[i] + b[i];
}
__global__ void axpy_kernel(std::size_t n, float alpha, const float* x, float* y) {
  for (std::size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) y[i] += alpha * x[i];
}
__global__ void scale_kernel(std::size_t n, float alpha, const float* x, float* y) {
  for (std::size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) y[i] = alpha * x[i];
}
__global__ void mul_kernel(std::size_t n, const float* a, const float* b, float* y) {
  for (std::size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) y[i] = a[i] * b[i];
}
}  // namespace

#define HALO_LAUNCH(kernel, n, stream, ...)                                                   \
  do {                                                                                        \
    if ((n) == 0) return;                                                                     \
    kernel<<<blocks_for(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(__VA_ARGS__);   \
    HALO_CUDA_CHECK_LAUNCH();                                                                 \
  } while (0)

void fill(std::size_t n, float value, float* y, void* stream) { HALO_LAUNCH(fill_kernel, n, stream, n, value, y); }
void add(std::size_t n, const float* a, const float* b, float* y, void* stream) { HALO_LAUNCH(add_kernel, n, stream, n, a, b, y); }
void axpy(std::size_t n, float alpha, const float* x, float* y, void* stream) { HALO_LAUNCH(axpy_kernel, n, stream, n, alpha, x, y); }
void scale(std::size_t n, float alpha, const float* x, float* y, void* stream) { HALO_LAUNCH(scale_kernel, n, stream, n, alpha, x, y); }
void mul(std::size_t n, const float* a, const float* b, float* y, void* stream) { HALO_LAUNCH(mul_kernel, n, stream, n, a, b, y); }

}  // namespace halo::kernels::cuda
