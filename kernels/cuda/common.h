// Helpers shared by the hand-written CUDA kernels (device code: include from .cu files only): the
// stream cast, launch sizes, warp and block reductions (plain sums and Welford mean/variance), the
// device's SM count and a reusable scratch buffer for two-pass reductions.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "kernels/cuda/check.h"
#include "kernels/cuda/fast_divmod.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/norm_ops.h"

namespace halo::kernels::cuda {

inline cudaStream_t as_stream(void* s) {
  return static_cast<cudaStream_t>(s);
}

// Streaming multiprocessors of the current device (queried once per device, then cached).
int sm_count();

// A device buffer of at least `floats` floats, owned by this library, one per device; it only
// grows. Kernels use it for the partial results of two-pass reductions (split-K weight gradients,
// per-channel statistics), so no cudaMalloc happens once the largest shape has been seen.
// Growing synchronises the device (the old buffer may still be in use by queued kernels) and
// happens only the first time a larger size is asked for, i.e. in the first training step.
// The contents are valid only until the next call; the work using it must be queued on one
// stream (the engine's compute stream), as two streams would share the buffer.
float* scratch(std::size_t floats);

// Blocks for a grid-stride loop over n items with `threads` per block: enough to fill the device
// several times over, never more than needed.
inline unsigned grid_for(std::size_t n, int threads) {
  const std::size_t need = (n + threads - 1) / threads;
  const std::size_t cap = std::size_t(sm_count()) * 32;
  const std::size_t b = need < cap ? need : cap;
  return unsigned(b > 0 ? b : 1);
}

constexpr unsigned kFullMask = 0xffffffffu;

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

// Sums v[0..NV) over the whole block; the totals are valid in thread 0 (and all of warp 0).
// blockDim.x must be a multiple of 32 and every thread of the block must call it (no early
// return before it). The order of additions is fixed, so the result is deterministic.
template <int NV, class T>
__device__ void block_sum(T (&v)[NV]) {
  HALO_SHARED(T, partial, [32][NV]);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll
  for (int i = 0; i < NV; ++i) v[i] = warp_sum(v[i]);
  if (lane == 0) {
#pragma unroll
    for (int i = 0; i < NV; ++i) partial[warp][i] = v[i];
  }
  __syncthreads();
  if (warp == 0) {
#pragma unroll
    for (int i = 0; i < NV; ++i) v[i] = warp_sum(lane < warps ? partial[lane][i] : T(0));
  }
  __syncthreads();  // `partial` may be reused by the next call
}

__device__ __forceinline__ Welford warp_welford(Welford w) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    Welford o;
    o.n = __shfl_xor_sync(kFullMask, w.n, offset);
    o.mean = __shfl_xor_sync(kFullMask, w.mean, offset);
    o.m2 = __shfl_xor_sync(kFullMask, w.m2, offset);
    w.merge(o);
  }
  return w;
}

// Block-wide Welford merge; the result is valid in thread 0. Same rules as block_sum.
__device__ inline Welford block_welford(Welford w) {
  HALO_SHARED(float, partial, [32][3]);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  w = warp_welford(w);
  if (lane == 0) {
    partial[warp][0] = w.n;
    partial[warp][1] = w.mean;
    partial[warp][2] = w.m2;
  }
  __syncthreads();
  if (warp == 0) {
    Welford v;
    if (lane < warps) {
      v.n = partial[lane][0];
      v.mean = partial[lane][1];
      v.m2 = partial[lane][2];
    }
    w = warp_welford(v);
  }
  __syncthreads();
  return w;
}

}  // namespace halo::kernels::cuda
