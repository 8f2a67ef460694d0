// Per-channel reductions over an [n, C, hw] (NCHW) tensor in two deterministic passes: the
// pattern behind batch-norm statistics and gradients, layer-norm dgamma/dbeta, the layer-scale
// gradient and the convolution bias gradient. Device code: include from .cu files only.
//
// Pass 1 (channel_partial_kernel): block (c, split) sums NV quantities over its contiguous share
// of the m = n*hw values of channel c: each thread a strided part, then a block reduction; it
// writes partial[split][c][NV]. Splitting a channel over several blocks keeps the whole GPU busy
// when C is small (64 channels would otherwise occupy 64 SMs). Pass 2 (channel_finalize_kernel):
// one thread per channel adds the splits in order, in double, and hands the totals to the op.
#pragma once
#include "kernels/cuda/common.h"

namespace halo::kernels::cuda {

struct ChannelSplit {
  int splits = 1;
  uint32_t chunk = 1;  // values of one channel per block
};

// Enough blocks (C * splits) for ~4 per SM, but at least 2048 values per block.
inline ChannelSplit channel_split(int c, long long m) {
  const long long target = 4LL * sm_count();
  long long splits = (target + c - 1) / c;
  const long long max_splits = (m + 2047) / 2048;
  if (splits > max_splits) splits = max_splits;
  if (splits < 1) splits = 1;
  if (splits > 65535) splits = 65535;
  ChannelSplit s;
  s.chunk = uint32_t((m + splits - 1) / splits);
  if (s.chunk < 1) s.chunk = 1;
  s.splits = int((m + s.chunk - 1) / s.chunk);
  if (s.splits < 1) s.splits = 1;
  return s;
}

// F: __device__ void operator()(std::size_t idx, int c, uint32_t pixel, float (&acc)[NV]) const
// where idx is the NCHW element index and pixel = img*hw + p (the index of per-pixel arrays).
template <int NV, class F>
__global__ void channel_partial_kernel(F f, int C, uint32_t hw, uint32_t m, FastDivmod hw_div,
                                       uint32_t chunk, float* __restrict__ partial) {
  const int c = blockIdx.x, split = blockIdx.y;
  const uint32_t begin = uint32_t(split) * chunk;
  const uint32_t end = min(m, begin + chunk);
  float acc[NV];
#pragma unroll
  for (int v = 0; v < NV; ++v) acc[v] = 0.f;
  for (uint32_t e = begin + threadIdx.x; e < end; e += blockDim.x) {
    uint32_t img, p;
    hw_div.divmod(e, img, p);
    f((std::size_t(img) * C + c) * hw + p, c, e, acc);
  }
  block_sum<NV>(acc);
  if (threadIdx.x == 0) {
#pragma unroll
    for (int v = 0; v < NV; ++v) partial[(std::size_t(split) * C + c) * NV + v] = acc[v];
  }
}

// G: __device__ void operator()(int c, const double (&sum)[NV]) const
template <int NV, class G>
__global__ void channel_finalize_kernel(G g, const float* __restrict__ partial, int C, int splits) {
  for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < C; c += gridDim.x * blockDim.x) {
    double sum[NV];
#pragma unroll
    for (int v = 0; v < NV; ++v) sum[v] = 0.0;
    for (int s = 0; s < splits; ++s)
#pragma unroll
      for (int v = 0; v < NV; ++v) sum[v] += double(partial[(std::size_t(s) * C + c) * NV + v]);
    g(c, sum);
  }
}

// Both passes. `partial` must hold split.splits * C * NV floats (from scratch()).
template <int NV, class F, class G>
void channel_reduce(const F& f, const G& g, int n, int C, int hw, const ChannelSplit& split,
                    float* partial, cudaStream_t stream) {
  const uint32_t m = uint32_t(1LL * n * hw);
  HALO_LAUNCH(dim3(unsigned(C), unsigned(split.splits)), 256, stream, channel_partial_kernel<NV>)
  (f, C, uint32_t(hw), m, FastDivmod(hw), split.chunk, partial);
  HALO_LAUNCH(unsigned((C + 127) / 128), 128, stream, channel_finalize_kernel<NV>)
  (g, partial, C, split.splits);
}

// Index helper for elementwise kernels over NCHW: the channel of element i is (i / hw) % C.
struct ChannelOf {
  FastDivmod hw, c;
  ChannelOf(long long hw_, long long c_) : hw(hw_), c(c_) {}
  __device__ __forceinline__ int operator()(uint32_t i) const {
    const uint32_t plane = hw.div(i);
    return int(plane - c.div(plane) * c.divisor);
  }
};

// Every kernel indexes with 32-bit unsigned arithmetic (and FastDivmod needs values below 2^31):
// refuse larger tensors with a clear message rather than overflow silently.
inline void check_index_range(long long elements, const char* fn) {
  if (elements >= (1LL << 31))
    throw std::invalid_argument(std::string("halo cuda ") + fn + ": tensor of " +
                                std::to_string(elements) +
                                " elements; the CUDA kernels support at most 2^31 - 1");
}

}  // namespace halo::kernels::cuda
