// The tiled matrix-multiply kernel of the hand-written backend: the __global__ wrapper around
// gemm_tile_body.h (where the algorithm is explained), its launcher, and the fixed-order sum of
// split-K partials. Device code: include from .cu files only.
#pragma once
#include "kernels/cuda/common.h"
#include "kernels/cuda/gemm_tile_body.h"

namespace halo::kernels::cuda {

struct BlockSync {
  __device__ void operator()() const { __syncthreads(); }
};

template <class Cfg, class Op>
__global__ void __launch_bounds__(Cfg::threads, Cfg::min_blocks)
    gemm_tile_kernel(const Op op, int M, int N, int K, int splits, int k_chunk) {
  HALO_SHARED(TileSmem<Cfg>, sm, );
  gemm_tile_thread<Cfg>(op, M, N, K, splits, k_chunk, int(threadIdx.x), int(blockIdx.x),
                        int(blockIdx.y), int(blockIdx.z), sm, BlockSync{});
}

// Host side: launch the tile kernel over an M x N output per group with `splits` K-slices of
// k_chunk (a multiple of BK) each. Throws if the grid would exceed the hardware limits.
template <class Cfg, class Op>
void launch_gemm_tile(const Op& op, int M, int N, int K, int groups, int splits, int k_chunk,
                      cudaStream_t stream) {
  const long long gx = (N + Cfg::BN - 1) / Cfg::BN;
  const long long gy = (M + Cfg::BM - 1) / Cfg::BM;
  const long long gz = 1LL * groups * splits;
  if (gx <= 0 || gy <= 0 || gz <= 0) return;
  if (gx > 2147483647LL || gy > 65535 || gz > 65535)
    throw std::invalid_argument("halo cuda gemm tile: grid too large (M=" + std::to_string(M) +
                                ", N=" + std::to_string(N) +
                                ", groups*splits=" + std::to_string(gz) + ")");
  HALO_LAUNCH(dim3(unsigned(gx), unsigned(gy), unsigned(gz)), Cfg::threads, stream,
              gemm_tile_kernel<Cfg, Op>)
  (op, M, N, K, splits, k_chunk);
}

// out[i] = sum_{s < splits} partial[s * count + i], in order s = 0, 1, ... (deterministic).
static __global__ void sum_splits_kernel(const float* __restrict__ partial, int splits,
                                         std::size_t count, float* __restrict__ out) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    float s = 0.f;
    for (int k = 0; k < splits; ++k) s += partial[k * count + i];
    out[i] = s;
  }
}

}  // namespace halo::kernels::cuda
