// Hand-written CUDA pooling (kernels/pool.h): max pooling with an int32 argmax (ResNet's 3x3
// stride-2 stem pool) and global average pooling (every model's head), forward and backward.
// Both backward passes gather (one thread per input element) instead of scattering with atomics,
// so they are deterministic and add in the same order as the CPU reference.
#include "kernels/cuda/channel_reduce.h"
#include "kernels/cuda/pool_ops.h"
#include "kernels/pool.h"

namespace halo::kernels::cuda {

namespace {
constexpr int kThreads = 256;

void check_pool(const Pool2dShape& s, const char* fn) {
  if (s.n < 1 || s.c < 1 || s.h < 1 || s.w < 1 || s.k < 1 || s.stride < 1 || s.pad < 0 ||
      s.h_out() < 1 || s.w_out() < 1)
    throw std::invalid_argument(
        std::string("kernels/cuda/pool.cu: ") + fn +
        ": bad pooling shape (n=" + std::to_string(s.n) + " c=" + std::to_string(s.c) +
        " h=" + std::to_string(s.h) + " w=" + std::to_string(s.w) + " k=" + std::to_string(s.k) +
        " stride=" + std::to_string(s.stride) + " pad=" + std::to_string(s.pad) + ")");
  check_index_range(s.x_size(), fn);
}

// One thread per output (body in pool_ops.h). x is read through the caches, k^2/stride^2 times.
__global__ void max_pool_forward_kernel(uint32_t total, PoolDims d, const float* __restrict__ x,
                                        float* __restrict__ y, int32_t* __restrict__ argmax) {
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    int32_t a;
    y[i] = max_pool_forward_at(d, x, i, &a);
    if (argmax) argmax[i] = a;
  }
}

// One thread per input element (body in pool_ops.h): a gather, so no atomics and no zeroing pass.
__global__ void max_pool_backward_kernel(uint32_t total, PoolDims d, const float* __restrict__ dy,
                                         const int32_t* __restrict__ argmax,
                                         float* __restrict__ dx) {
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x)
    dx[i] = max_pool_backward_at(d, dy, argmax, i);
}

// One warp per (n, c) row: y = sum / hw.
__global__ void avg_pool_forward_kernel(uint32_t rows, int hw, const float* __restrict__ x,
                                        float* __restrict__ y) {
  const uint32_t warps_per_block = blockDim.x / 32;
  const uint32_t lane = threadIdx.x & 31;
  for (uint32_t r = blockIdx.x * warps_per_block + threadIdx.x / 32; r < rows;
       r += gridDim.x * warps_per_block) {
    const float* xp = x + std::size_t(r) * hw;
    float s = 0.f;
    for (int p = int(lane); p < hw; p += 32) s += __ldg(xp + p);
    s = warp_sum(s);
    if (lane == 0) y[r] = s / float(hw);
  }
}

__global__ void avg_pool_backward_kernel(uint32_t total, FastDivmod hw_div,
                                         const float* __restrict__ dy, float* __restrict__ dx) {
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x)
    dx[i] = __ldg(dy + hw_div.div(i)) / float(hw_div.divisor);
}
}  // namespace

// Max pool forward: k*k compares per output; traffic: x read once (k^2/stride^2 times through the
// cache), y and argmax written (4 * (x_size + 2 * y_size) bytes).
void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax,
                        void* stream) {
  check_pool(s, "max_pool2d_forward");
  const uint32_t total = uint32_t(s.y_size());
  HALO_LAUNCH(grid_for(total, kThreads), kThreads, as_stream(stream), max_pool_forward_kernel)
  (total, PoolDims(s), x, y, argmax);
}

// Max pool backward: dx overwritten; traffic: dy and argmax read (up to ceil(k/stride)^2 times
// through the cache), dx written (4 * (x_size + 2 * y_size) bytes).
void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx,
                         void* stream) {
  check_pool(s, "max_pool2d_backward");
  const uint32_t total = uint32_t(s.x_size());
  HALO_LAUNCH(grid_for(total, kThreads), kThreads, as_stream(stream), max_pool_backward_kernel)
  (total, PoolDims(s), dy, argmax, dx);
}

// Global average pool forward: n*c*hw adds; traffic: x read (4 * n*c*hw bytes).
void global_avg_pool_forward(int n, int c, int hw, const float* x, float* y, void* stream) {
  if (n < 1 || c < 1 || hw < 1)
    throw std::invalid_argument(
        "kernels/cuda/pool.cu: global_avg_pool_forward: sizes must be >= 1");
  check_index_range(1LL * n * c * hw, "global_avg_pool_forward");
  const uint32_t rows = uint32_t(1LL * n * c);
  const unsigned grid = grid_for(std::size_t(rows) * 32, kThreads);
  HALO_LAUNCH(grid, kThreads, as_stream(stream), avg_pool_forward_kernel)(rows, hw, x, y);
}

// Global average pool backward: dx = dy / hw; traffic: dx written (4 * n*c*hw bytes).
void global_avg_pool_backward(int n, int c, int hw, const float* dy, float* dx, void* stream) {
  if (n < 1 || c < 1 || hw < 1)
    throw std::invalid_argument(
        "kernels/cuda/pool.cu: global_avg_pool_backward: sizes must be >= 1");
  check_index_range(1LL * n * c * hw, "global_avg_pool_backward");
  const uint32_t total = uint32_t(1LL * n * c * hw);
  HALO_LAUNCH(grid_for(total, kThreads), kThreads, as_stream(stream), avg_pool_backward_kernel)
  (total, FastDivmod(hw), dy, dx);
}

}  // namespace halo::kernels::cuda
