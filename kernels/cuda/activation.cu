// Hand-written CUDA activations (kernels/activation.h): ReLU and exact (erf) GELU, forward and
// backward. Each is one streaming pass, bound by memory bandwidth: 16-byte vector loads and
// stores when every pointer is 16-byte aligned (always, for tensors from the caching allocator),
// a scalar loop for the tail and for unaligned views.
#include "kernels/activation.h"
#include "kernels/cuda/common.h"

namespace halo::kernels::cuda {

namespace {
constexpr int kThreads = 256;
constexpr float kSqrtHalf = 0.70710678118654752440f;    // 1/sqrt(2)
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;  // 1/sqrt(2 pi)

// y[i] = f(a[i], b[i]) (b may be nullptr: f then receives 0).
template <bool kVec, class F>
__global__ void map_kernel(std::size_t n, F f, const float* __restrict__ a,
                           const float* __restrict__ b, float* __restrict__ y) {
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  const std::size_t first = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  std::size_t tail = 0;
  if (kVec) {
    const std::size_t n4 = n / 4;
    const float4* a4 = reinterpret_cast<const float4*>(a);
    const float4* b4 = reinterpret_cast<const float4*>(b);
    float4* y4 = reinterpret_cast<float4*>(y);
    for (std::size_t i = first; i < n4; i += stride) {
      const float4 va = a4[i];
      const float4 vb = b ? b4[i] : make_float4(0.f, 0.f, 0.f, 0.f);
      y4[i] = make_float4(f(va.x, vb.x), f(va.y, vb.y), f(va.z, vb.z), f(va.w, vb.w));
    }
    tail = n4 * 4;
  }
  for (std::size_t i = tail + first; i < n; i += stride) y[i] = f(a[i], b ? b[i] : 0.f);
}

bool aligned16(const void* p) {
  return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0;
}

template <class F>
void launch_map(std::size_t n, F f, const float* a, const float* b, float* y, void* stream) {
  if (n == 0) return;
  const bool vec = aligned16(a) && (!b || aligned16(b)) && aligned16(y);
  const unsigned grid = grid_for(vec ? (n + 3) / 4 : n, kThreads);
  if (vec)
    HALO_LAUNCH(grid, kThreads, as_stream(stream), map_kernel<true>)(n, f, a, b, y);
  else
    HALO_LAUNCH(grid, kThreads, as_stream(stream), map_kernel<false>)(n, f, a, b, y);
}

// NaN passes through (NaN < 0 is false), as torch.relu.
struct ReluForward {
  __device__ float operator()(float x, float) const { return x < 0.f ? 0.f : x; }
};
// dx = y <= 0 ? 0 : dy, from the forward output y.
struct ReluBackward {
  __device__ float operator()(float y, float dy) const { return y <= 0.f ? 0.f : dy; }
};
// y = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)).
struct GeluForward {
  __device__ float operator()(float x, float) const {
    return 0.5f * x * (1.f + erff(x * kSqrtHalf));
  }
};
// dx = dy (Phi(x) + x phi(x)), phi(x) = exp(-x^2/2) / sqrt(2 pi).
struct GeluBackward {
  __device__ float operator()(float x, float dy) const {
    const float cdf = 0.5f * (1.f + erff(x * kSqrtHalf));
    const float pdf = expf(-0.5f * x * x) * kInvSqrt2Pi;
    return dy * (cdf + x * pdf);
  }
};
}  // namespace

// ReLU forward: n compares; traffic 8n bytes (read x, write y).
void relu_forward(std::size_t n, const float* x, float* y, void* stream) {
  launch_map(n, ReluForward{}, x, nullptr, y, stream);
}
// ReLU backward: n compares; traffic 12n bytes (read y and dy, write dx).
void relu_backward(std::size_t n, const float* y, const float* dy, float* dx, void* stream) {
  launch_map(n, ReluBackward{}, y, dy, dx, stream);
}
// GELU forward: ~20 FLOPs per element (erf); traffic 8n bytes.
void gelu_forward(std::size_t n, const float* x, float* y, void* stream) {
  launch_map(n, GeluForward{}, x, nullptr, y, stream);
}
// GELU backward: ~30 FLOPs per element (erf, exp); traffic 12n bytes.
void gelu_backward(std::size_t n, const float* x, const float* dy, float* dx, void* stream) {
  launch_map(n, GeluBackward{}, x, dy, dx, stream);
}

}  // namespace halo::kernels::cuda
