// Hand-written CUDA convolution (kernels/conv.h): forward, backward-data and backward-weight as
// implicit GEMMs on the shared-memory tile of gemm_tile.h, a dedicated depthwise path (ConvNeXt's
// 7x7, groups == channels) and the bias gradient. float32, NCHW, device pointers.
//
// The three passes as GEMMs, per group g (cin = c_in/groups, cout = c_out/groups, P = ho*wo):
//   forward:          Y[cout x n*P]      = W[cout x cin*kh*kw]  * im2col(X)[cin*kh*kw x n*P]
//   backward-data:    dX[cin x n*h*w]    = W^T[cin x cout*kh*kw] * G[cout*kh*kw x n*h*w]
//                     where G gathers dy[co, (iy + pad - ky)/stride, (ix + pad - kx)/stride]
//                     (zero where the division is inexact or out of range)
//   backward-weight:  dW[cout x cin*kh*kw] = dY[cout x n*P] * im2col(X)^T[n*P x cin*kh*kw]
// Each costs 2 * macs() FLOPs (Conv2dShape::macs). Ideal memory traffic is one read of each
// operand and one write of the result (x, w, y sizes * 4 bytes); the tiles re-read x through the
// L1/L2 caches kh*kw/stride^2 times.
#include <algorithm>

#include "kernels/conv.h"
#include "kernels/cuda/channel_reduce.h"
#include "kernels/cuda/gather_ops.h"
#include "kernels/cuda/gemm_tile.h"

namespace halo::kernels::cuda {

namespace {

void check_shape(const Conv2dShape& s, const char* fn) {
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument(
        std::string("kernels/cuda/conv.cu: ") + fn + ": " + what + " (n=" + std::to_string(s.n) +
        " c_in=" + std::to_string(s.c_in) + " h=" + std::to_string(s.h) + " w=" +
        std::to_string(s.w) + " c_out=" + std::to_string(s.c_out) + " kh=" + std::to_string(s.kh) +
        " kw=" + std::to_string(s.kw) + " stride=" + std::to_string(s.stride) +
        " pad=" + std::to_string(s.pad) + " groups=" + std::to_string(s.groups) + ")");
  };
  if (s.n < 1 || s.c_in < 1 || s.h < 1 || s.w < 1 || s.c_out < 1 || s.kh < 1 || s.kw < 1)
    fail("every size must be >= 1");
  if (s.stride < 1) fail("stride must be >= 1");
  if (s.pad < 0) fail("pad must be >= 0");
  if (s.groups < 1 || s.c_in % s.groups != 0 || s.c_out % s.groups != 0)
    fail("groups must divide c_in and c_out");
  if (s.h + 2 * s.pad < s.kh || s.w + 2 * s.pad < s.kw) fail("kernel larger than the padded input");
  if (s.x_size() >= (1LL << 31) || s.y_size() >= (1LL << 31) || s.w_size() >= (1LL << 31))
    fail("tensors of 2^31 or more elements are not supported by the CUDA kernels");
}

bool is_depthwise(const Conv2dShape& s) {
  return s.groups == s.c_in && s.c_out == s.c_in;
}

// Picks the tile by M: 64-row tiles when M <= 64, so a 64-channel layer does not idle half of a
// 128-row tile.
template <class Op>
void run_tile(const Op& op, int M, int N, int K, int groups, int splits, int k_chunk,
              cudaStream_t st) {
  if (M <= TileSmall::BM)
    launch_gemm_tile<TileSmall>(op, M, N, K, groups, splits, k_chunk, st);
  else
    launch_gemm_tile<TileLarge>(op, M, N, K, groups, splits, k_chunk, st);
}

// ---- depthwise kernels (groups == c_in == c_out): the bodies are in gather_ops.h
// ----------------- Work: 2 * macs() FLOPs; traffic: x and y (or dy and dx) once each plus the
// small w, ideally.

template <int KH, int KW>
__global__ void dw_forward_kernel(ConvDims d, const float* __restrict__ x,
                                  const float* __restrict__ w, const float* __restrict__ bias,
                                  float* __restrict__ y, uint32_t total) {
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x)
    y[i] = depthwise_forward_at<KH, KW>(d, x, w, bias, i);
}

template <int KH, int KW>
__global__ void dw_backward_data_kernel(ConvDims d, const float* __restrict__ dy,
                                        const float* __restrict__ w, float* __restrict__ dx,
                                        uint32_t total) {
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x)
    dx[i] = depthwise_backward_data_at<KH, KW>(d, dy, w, i);
}

// dw[c, ky, kx] = sum_{img, oy, ox} dy[img, c, oy, ox] * x[img, c, oy*s - pad + ky, ...].
// Block (c, split) covers images [split*per, (split+1)*per) of channel c. With KH*KW fixed, each
// thread keeps all kh*kw sums in registers while it walks its output pixels (one read of dy,
// kh*kw cached reads of x each), then one block reduction of kh*kw values writes
// partial[split][c][kh*kw]. The run-time-size variant loops over the taps outside instead.
template <int KH, int KW>
__global__ void dw_backward_weight_kernel(ConvDims d, const float* __restrict__ x,
                                          const float* __restrict__ dy, float* __restrict__ partial,
                                          int imgs_per_split) {
  const int c = blockIdx.x, split = blockIdx.y;
  const int img0 = split * imgs_per_split;
  const int img1 = min(d.n, img0 + imgs_per_split);
  const uint32_t count = img0 < img1 ? uint32_t(img1 - img0) * d.howo : 0u;
  float* out = partial + (std::size_t(split) * d.c_out + c) * d.khkw;
  if constexpr (KH > 0 && KW > 0) {
    float acc[KH * KW];
#pragma unroll
    for (int t = 0; t < KH * KW; ++t) acc[t] = 0.f;
    for (uint32_t e = threadIdx.x; e < count; e += blockDim.x)
      depthwise_weight_accumulate<KH, KW>(d, x, dy, c, img0, e, acc);
    block_sum<KH * KW>(acc);
    if (threadIdx.x == 0) {
#pragma unroll
      for (int t = 0; t < KH * KW; ++t) out[t] = acc[t];
    }
  } else {
    for (int t = 0; t < d.khkw; ++t) {
      const int ky = t / d.kw, kx = t % d.kw;
      float acc[1] = {0.f};
      for (uint32_t e = threadIdx.x; e < count; e += blockDim.x)
        acc[0] += depthwise_weight_term(d, x, dy, c, img0, e, ky, kx);
      block_sum<1>(acc);
      if (threadIdx.x == 0) out[t] = acc[0];
    }
  }
}

constexpr int kThreads = 256;

void depthwise_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                       float* y, cudaStream_t st) {
  const ConvDims d(s);
  const uint32_t total = uint32_t(s.y_size());
  const unsigned grid = grid_for(total, kThreads);
  if (s.kh == 7 && s.kw == 7)
    HALO_LAUNCH(grid, kThreads, st, dw_forward_kernel<7, 7>)(d, x, w, bias, y, total);
  else if (s.kh == 3 && s.kw == 3)
    HALO_LAUNCH(grid, kThreads, st, dw_forward_kernel<3, 3>)(d, x, w, bias, y, total);
  else
    HALO_LAUNCH(grid, kThreads, st, dw_forward_kernel<0, 0>)(d, x, w, bias, y, total);
}

void depthwise_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                             cudaStream_t st) {
  const ConvDims d(s);
  const uint32_t total = uint32_t(s.x_size());
  const unsigned grid = grid_for(total, kThreads);
  if (s.kh == 7 && s.kw == 7)
    HALO_LAUNCH(grid, kThreads, st, dw_backward_data_kernel<7, 7>)(d, dy, w, dx, total);
  else if (s.kh == 3 && s.kw == 3)
    HALO_LAUNCH(grid, kThreads, st, dw_backward_data_kernel<3, 3>)(d, dy, w, dx, total);
  else
    HALO_LAUNCH(grid, kThreads, st, dw_backward_data_kernel<0, 0>)(d, dy, w, dx, total);
}

void depthwise_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                               cudaStream_t st) {
  const ConvDims d(s);
  // Split the batch so that C * splits blocks cover the GPU ~4 times.
  int splits = int((4LL * sm_count() + s.c_in - 1) / s.c_in);
  splits = std::max(1, std::min(splits, s.n));
  const int per = (s.n + splits - 1) / splits;
  splits = (s.n + per - 1) / per;
  const std::size_t count = std::size_t(s.c_in) * s.kh * s.kw;
  float* partial = splits == 1 ? dw : scratch(std::size_t(splits) * count);
  const dim3 grid(unsigned(s.c_in), unsigned(splits));
  if (s.kh == 7 && s.kw == 7)
    HALO_LAUNCH(grid, kThreads, st, dw_backward_weight_kernel<7, 7>)(d, x, dy, partial, per);
  else if (s.kh == 3 && s.kw == 3)
    HALO_LAUNCH(grid, kThreads, st, dw_backward_weight_kernel<3, 3>)(d, x, dy, partial, per);
  else
    HALO_LAUNCH(grid, kThreads, st, dw_backward_weight_kernel<0, 0>)(d, x, dy, partial, per);
  if (splits > 1) {
    HALO_LAUNCH(grid_for(count, kThreads), kThreads, st, sum_splits_kernel)
    (partial, splits, count, dw);
  }
}

// Conv bias gradient: db[c] = sum dy[:, c, :, :]. Work: one add per element of dy; traffic: one
// read of dy.
struct BiasGradSum {
  const float* __restrict__ dy;
  __device__ void operator()(std::size_t idx, int, uint32_t, float (&acc)[1]) const {
    acc[0] += __ldg(dy + idx);
  }
};
struct BiasGradStore {
  float* db;
  __device__ void operator()(int c, const double (&sum)[1]) const { db[c] = float(sum[0]); }
};

}  // namespace

// Forward: 2*macs FLOPs; traffic >= 4*(x_size + w_size + y_size) bytes.
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y, void* stream) {
  check_shape(s, "conv2d_forward");
  const cudaStream_t st = as_stream(stream);
  if (is_depthwise(s)) return depthwise_forward(s, x, w, bias, y, st);
  const ConvDims d(s);
  const ConvFwdOp op{d, x, w, bias, y};
  const int M = d.cout_g, N = s.n * s.h_out() * s.w_out(), K = d.cin_g * d.khkw;
  run_tile(op, M, N, K, s.groups, 1, K, st);
}

// Backward-data: 2*macs FLOPs (plus the zero products of the stride gaps, a factor up to
// stride^2 more for strided convolutions); traffic >= 4*(y_size + w_size + x_size) bytes.
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                          void* stream) {
  check_shape(s, "conv2d_backward_data");
  const cudaStream_t st = as_stream(stream);
  if (is_depthwise(s)) return depthwise_backward_data(s, dy, w, dx, st);
  const ConvDims d(s);
  const ConvBwdDataOp op{d, dy, w, dx};
  const int M = d.cin_g, N = s.n * s.h * s.w, K = d.cout_g * d.khkw;
  run_tile(op, M, N, K, s.groups, 1, K, st);
}

// Backward-weight: 2*macs FLOPs; traffic >= 4*(x_size + y_size + w_size) bytes, plus the split-K
// partials (splits * w_size written and read once more).
// K = n*ho*wo is long and M x N (the weight) small, so K is split over several blocks until the
// grid covers the GPU about twice; each split needs at least 512 values of K.
void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                            void* stream) {
  check_shape(s, "conv2d_backward_weight");
  const cudaStream_t st = as_stream(stream);
  if (is_depthwise(s)) return depthwise_backward_weight(s, x, dy, dw, st);
  const ConvDims d(s);
  const int M = d.cout_g, N = d.cin_g * d.khkw, K = s.n * s.h_out() * s.w_out();
  const bool small = M <= TileSmall::BM;
  const int bm = small ? TileSmall::BM : TileLarge::BM, bn = TileLarge::BN, bk = TileLarge::BK;
  const long long tiles = 1LL * ((M + bm - 1) / bm) * ((N + bn - 1) / bn) * s.groups;
  const long long target = 2LL * sm_count() * (small ? 4 : 2);
  long long splits = std::max(1LL, target / std::max(1LL, tiles));
  splits = std::min(splits, std::max(1LL, (long long)K / 512));
  splits = std::min(splits, 65535LL / s.groups);
  long long k_chunk = (K + splits - 1) / splits;
  k_chunk = (k_chunk + bk - 1) / bk * bk;
  splits = (K + k_chunk - 1) / k_chunk;
  const std::size_t count = std::size_t(s.w_size());
  float* out = splits == 1 ? dw : scratch(std::size_t(splits) * count);
  const ConvBwdWeightOp op{d, x, dy, out};
  run_tile(op, M, N, K, s.groups, int(splits), int(k_chunk), st);
  if (splits > 1) {
    HALO_LAUNCH(grid_for(count, kThreads), kThreads, st, sum_splits_kernel)
    (out, int(splits), count, dw);
  }
}

// Bias gradient: n*c_out*ho*wo adds; traffic: one read of dy.
void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* db, void* stream) {
  check_shape(s, "conv2d_backward_bias");
  const int hw = s.h_out() * s.w_out();
  const ChannelSplit split = channel_split(s.c_out, 1LL * s.n * hw);
  float* partial = scratch(std::size_t(split.splits) * s.c_out);
  channel_reduce<1>(BiasGradSum{dy}, BiasGradStore{db}, s.n, s.c_out, hw, split, partial,
                    as_stream(stream));
}

}  // namespace halo::kernels::cuda
