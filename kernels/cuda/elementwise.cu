// Hand-written CUDA elementwise kernels (fill, add, axpy, scale, mul, and the per-channel
// multiply of ConvNeXt's layer scale). Each is one pass over memory: n elements read per input
// and n written, so they are bound by memory bandwidth.
#include "kernels/cuda/channel_reduce.h"
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
  for (std::size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    y[i] = v;
}
__global__ void add_kernel(std::size_t n, const float* a, const float* b, float* y) {
  for (std::size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    y[i] = a[i] + b[i];
}
__global__ void axpy_kernel(std::size_t n, float alpha, const float* x, float* y) {
  for (std::size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    y[i] += alpha * x[i];
}
__global__ void scale_kernel(std::size_t n, float alpha, const float* x, float* y) {
  for (std::size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    y[i] = alpha * x[i];
}
__global__ void mul_kernel(std::size_t n, const float* a, const float* b, float* y) {
  for (std::size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    y[i] = a[i] * b[i];
}
}  // namespace

// One elementwise launch over n elements (nothing to do for n == 0).
#define HALO_ELEMENTWISE(kernel, n, stream, ...)                       \
  do {                                                                 \
    if ((n) == 0) return;                                              \
    HALO_LAUNCH(blocks_for(n), kThreads, stream, kernel)(__VA_ARGS__); \
  } while (0)

void fill(std::size_t n, float value, float* y, void* stream) {
  HALO_ELEMENTWISE(fill_kernel, n, stream, n, value, y);
}
void add(std::size_t n, const float* a, const float* b, float* y, void* stream) {
  HALO_ELEMENTWISE(add_kernel, n, stream, n, a, b, y);
}
void axpy(std::size_t n, float alpha, const float* x, float* y, void* stream) {
  HALO_ELEMENTWISE(axpy_kernel, n, stream, n, alpha, x, y);
}
void scale(std::size_t n, float alpha, const float* x, float* y, void* stream) {
  HALO_ELEMENTWISE(scale_kernel, n, stream, n, alpha, x, y);
}
void mul(std::size_t n, const float* a, const float* b, float* y, void* stream) {
  HALO_ELEMENTWISE(mul_kernel, n, stream, n, a, b, y);
}

// ---- per-channel multiply: y[o, c, p] = x[o, c, p] * s[c] ---------------------------------------

namespace {
__global__ void mul_channel_kernel(uint32_t total, ChannelOf chan, const float* __restrict__ x,
                                   const float* __restrict__ s, float* __restrict__ y) {
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x)
    y[i] = __ldg(x + i) * __ldg(s + chan(i));
}

struct MulChannelGradSum {
  const float* __restrict__ x;
  const float* __restrict__ dy;
  __device__ void operator()(std::size_t idx, int, uint32_t, float (&acc)[1]) const {
    acc[0] += __ldg(dy + idx) * __ldg(x + idx);
  }
};
struct MulChannelGradStore {
  float* ds;
  __device__ void operator()(int c, const double (&sum)[1]) const { ds[c] = float(sum[0]); }
};

void check_mul_channel(int outer, int c, int inner, const char* fn) {
  if (outer < 1 || c < 1 || inner < 1)
    throw std::invalid_argument(std::string("kernels/cuda/elementwise.cu: ") + fn +
                                ": outer, c and inner must be >= 1");
  check_index_range(1LL * outer * c * inner, fn);
}
}  // namespace

// 1 FLOP per element; traffic: read x, write y (8 bytes per element).
void mul_channel_forward(int outer, int c, int inner, const float* x, const float* s, float* y,
                         void* stream) {
  check_mul_channel(outer, c, inner, "mul_channel_forward");
  const uint32_t total = uint32_t(1LL * outer * c * inner);
  HALO_LAUNCH(grid_for(total, kThreads), kThreads, static_cast<cudaStream_t>(stream),
              mul_channel_kernel)
  (total, ChannelOf(inner, c), x, s, y);
}

// dx = dy * s[c] (8 bytes per element); ds[c] = sum_{o,p} dy * x (two-pass channel reduction,
// 8 bytes read per element). Either output may be nullptr.
void mul_channel_backward(int outer, int c, int inner, const float* x, const float* s,
                          const float* dy, float* dx, float* ds, void* stream) {
  check_mul_channel(outer, c, inner, "mul_channel_backward");
  if (dx) mul_channel_forward(outer, c, inner, dy, s, dx, stream);
  if (!ds) return;
  const ChannelSplit split = channel_split(c, 1LL * outer * inner);
  float* partial = scratch(std::size_t(split.splits) * c);
  channel_reduce<1>(MulChannelGradSum{x, dy}, MulChannelGradStore{ds}, outer, c, inner, split,
                    partial, static_cast<cudaStream_t>(stream));
}

}  // namespace halo::kernels::cuda
