// Hand-written CUDA batch norm and channel layer norm (kernels/norm.h), forward and backward.
// Batch norm reduces each channel over (n, h, w) with the two-pass scheme of channel_reduce.h
// (Welford statistics per block, merged in double per channel); layer norm reduces each pixel over
// its channels with one thread per pixel. float32, NCHW, device pointers.
#include "kernels/cuda/channel_reduce.h"
#include "kernels/norm.h"

namespace halo::kernels::cuda {

namespace {
constexpr int kThreads = 256;

void check_norm(const NormShape& s, const char* fn) {
  if (s.n < 1 || s.c < 1 || s.hw < 1)
    throw std::invalid_argument(std::string("kernels/cuda/norm.cu: ") + fn +
                                ": n, c and hw must be >= 1 (n=" + std::to_string(s.n) +
                                " c=" + std::to_string(s.c) + " hw=" + std::to_string(s.hw) + ")");
  check_index_range(s.size(), fn);
}

// ---- batch norm ---------------------------------------------------------------------------------

// Pass 1 of the training statistics: block (c, split) runs Welford over its share of channel c
// and writes partial[split][c] = {count, mean, m2}.
__global__ void bn_stats_partial_kernel(const float* __restrict__ x, int C, uint32_t hw, uint32_t m,
                                        FastDivmod hw_div, uint32_t chunk,
                                        float* __restrict__ partial) {
  const int c = blockIdx.x, split = blockIdx.y;
  const uint32_t begin = uint32_t(split) * chunk;
  const uint32_t end = min(m, begin + chunk);
  Welford wf;
  for (uint32_t e = begin + threadIdx.x; e < end; e += blockDim.x) {
    uint32_t img, p;
    hw_div.divmod(e, img, p);
    wf.add(__ldg(x + (std::size_t(img) * C + c) * hw + p));
  }
  wf = block_welford(wf);
  if (threadIdx.x == 0) {
    float* out = partial + (std::size_t(split) * C + c) * 3;
    out[0] = wf.n;
    out[1] = wf.mean;
    out[2] = wf.m2;
  }
}

// Pass 2, one thread per channel (body in norm_ops.h).
__global__ void bn_stats_finalize_kernel(const float* __restrict__ partial, int C, int splits,
                                         double m, double eps, double momentum,
                                         const float* __restrict__ gamma,
                                         const float* __restrict__ beta, float* running_mean,
                                         float* running_var, float* save_mean, float* save_invstd,
                                         float* __restrict__ coef) {
  for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < C; c += gridDim.x * blockDim.x)
    bn_finalize_channel(c, partial, C, splits, m, eps, momentum, gamma, beta, running_mean,
                        running_var, save_mean, save_invstd, coef);
}

// Eval coefficients from the running statistics, in the layout of bn_apply:
// a = gamma / sqrt(rv + eps), mean = rm, beta.
__global__ void bn_eval_coef_kernel(int C, const float* __restrict__ gamma,
                                    const float* __restrict__ beta,
                                    const float* __restrict__ running_mean,
                                    const float* __restrict__ running_var, double eps,
                                    float* __restrict__ coef) {
  for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < C; c += gridDim.x * blockDim.x) {
    const double invstd = 1.0 / sqrt(double(running_var[c]) + eps);
    coef[c] = float((gamma ? double(gamma[c]) : 1.0) * invstd);
    coef[C + c] = running_mean[c];
    coef[2 * C + c] = beta ? beta[c] : 0.f;
  }
}

// y = (x - mean[c]) a[c] + beta[c] (bn_apply): one read and one write per element.
__global__ void bn_scale_shift_kernel(uint32_t total, ChannelOf chan, const float* __restrict__ x,
                                      const float* __restrict__ coef, int C,
                                      float* __restrict__ y) {
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x)
    y[i] = bn_apply(__ldg(x + i), coef, C, chan(i));
}

__global__ void bn_eval_grad_coef_kernel(int C, const float* __restrict__ gamma,
                                         const float* __restrict__ invstd,
                                         float* __restrict__ coef) {
  for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < C; c += gridDim.x * blockDim.x)
    coef[c] = float((gamma ? double(gamma[c]) : 1.0) * double(invstd[c]));
}

// Training dx (bn_backward_dx): two reads (x, dy) and one write per element.
__global__ void bn_backward_dx_train_kernel(uint32_t total, ChannelOf chan, int C,
                                            const float* __restrict__ x,
                                            const float* __restrict__ dy,
                                            const float* __restrict__ coef,
                                            float* __restrict__ dx) {
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    dx[i] = bn_backward_dx(__ldg(x + i), __ldg(dy + i), coef, C, chan(i));
  }
}

// Eval dx = gamma invstd dy: one read and one write per element.
__global__ void bn_backward_dx_eval_kernel(uint32_t total, ChannelOf chan,
                                           const float* __restrict__ dy,
                                           const float* __restrict__ coef, float* __restrict__ dx) {
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x)
    dx[i] = __ldg(coef + chan(i)) * __ldg(dy + i);
}

// ---- layer norm over channels -------------------------------------------------------------------

// One thread per pixel (body in norm_ops.h). Work ~10 FLOPs per element; traffic: x read twice
// (the second time mostly from L2), y written.
__global__ void ln_forward_kernel(uint32_t pixels, int C, uint32_t hw, FastDivmod hw_div,
                                  const float* __restrict__ x, const float* __restrict__ gamma,
                                  const float* __restrict__ beta, float eps, float* __restrict__ y,
                                  float* __restrict__ save_mean, float* __restrict__ save_invstd) {
  for (uint32_t q = blockIdx.x * blockDim.x + threadIdx.x; q < pixels; q += gridDim.x * blockDim.x)
    ln_forward_pixel(q, C, hw, hw_div, x, gamma, beta, eps, y, save_mean, save_invstd);
}

// One thread per pixel (body in norm_ops.h). Traffic: x and dy read twice, dx written.
__global__ void ln_backward_dx_kernel(uint32_t pixels, int C, uint32_t hw, FastDivmod hw_div,
                                      const float* __restrict__ x, const float* __restrict__ dy,
                                      const float* __restrict__ gamma,
                                      const float* __restrict__ mean,
                                      const float* __restrict__ invstd, float* __restrict__ dx) {
  for (uint32_t q = blockIdx.x * blockDim.x + threadIdx.x; q < pixels; q += gridDim.x * blockDim.x)
    ln_backward_pixel(q, C, hw, hw_div, x, dy, gamma, mean, invstd, dx);
}

// dgamma[c] = sum_{n,p} dy xhat, dbeta[c] = sum_{n,p} dy.
struct LnParamSums {
  const float* __restrict__ x;
  const float* __restrict__ dy;
  const float* __restrict__ mean;
  const float* __restrict__ invstd;
  __device__ void operator()(std::size_t idx, int, uint32_t pixel, float (&acc)[2]) const {
    const float g = __ldg(dy + idx);
    acc[0] += g * ((__ldg(x + idx) - __ldg(mean + pixel)) * __ldg(invstd + pixel));
    acc[1] += g;
  }
};
struct LnParamStore {
  float* dgamma;
  float* dbeta;
  __device__ void operator()(int c, const double (&sum)[2]) const {
    if (dgamma) dgamma[c] = float(sum[0]);
    if (dbeta) dbeta[c] = float(sum[1]);
  }
};

unsigned channel_blocks(int c) {
  return unsigned((c + 127) / 128);
}

}  // namespace

// Training forward. Work ~10 FLOPs per element; traffic: x read twice, y written once
// (3 * 4 * size bytes), plus O(C * splits) for the statistics.
void batch_norm_forward_train(const NormShape& s, const float* x, const float* gamma,
                              const float* beta, float eps, float momentum, float* running_mean,
                              float* running_var, float* y, float* save_mean, float* save_invstd,
                              void* stream) {
  check_norm(s, "batch_norm_forward_train");
  const cudaStream_t st = as_stream(stream);
  const long long m = 1LL * s.n * s.hw;
  const ChannelSplit split = channel_split(s.c, m);
  float* partial = scratch(std::size_t(split.splits) * s.c * 3 + 3 * std::size_t(s.c));
  float* coef = partial + std::size_t(split.splits) * s.c * 3;
  HALO_LAUNCH(dim3(unsigned(s.c), unsigned(split.splits)), kThreads, st, bn_stats_partial_kernel)
  (x, s.c, uint32_t(s.hw), uint32_t(m), FastDivmod(s.hw), split.chunk, partial);
  HALO_LAUNCH(channel_blocks(s.c), 128, st, bn_stats_finalize_kernel)
  (partial, s.c, split.splits, double(m), double(eps), double(momentum), gamma, beta, running_mean,
   running_var, save_mean, save_invstd, coef);
  const uint32_t total = uint32_t(s.size());
  HALO_LAUNCH(grid_for(total, kThreads), kThreads, st, bn_scale_shift_kernel)
  (total, ChannelOf(s.hw, s.c), x, coef, s.c, y);
}

// Eval forward: 2 FLOPs per element; traffic: x read, y written once (2 * 4 * size bytes).
void batch_norm_forward_eval(const NormShape& s, const float* x, const float* gamma,
                             const float* beta, const float* running_mean, const float* running_var,
                             float eps, float* y, void* stream) {
  check_norm(s, "batch_norm_forward_eval");
  const cudaStream_t st = as_stream(stream);
  float* coef = scratch(3 * std::size_t(s.c));
  HALO_LAUNCH(channel_blocks(s.c), 128, st, bn_eval_coef_kernel)
  (s.c, gamma, beta, running_mean, running_var, double(eps), coef);
  const uint32_t total = uint32_t(s.size());
  HALO_LAUNCH(grid_for(total, kThreads), kThreads, st, bn_scale_shift_kernel)
  (total, ChannelOf(s.hw, s.c), x, coef, s.c, y);
}

// Backward. Training: ~8 FLOPs per element; traffic: x and dy read twice, dx written once
// (5 * 4 * size bytes). Eval with dx only: dy read, dx written.
void batch_norm_backward(const NormShape& s, const float* x, const float* dy, const float* gamma,
                         const float* mean, const float* invstd, bool training, float* dx,
                         float* dgamma, float* dbeta, void* stream) {
  check_norm(s, "batch_norm_backward");
  const cudaStream_t st = as_stream(stream);
  const long long m = 1LL * s.n * s.hw;
  const bool need_sums = dgamma || dbeta || (dx && training);
  const ChannelSplit split = channel_split(s.c, m);
  float* partial = scratch(std::size_t(split.splits) * s.c * 2 + 4 * std::size_t(s.c));
  float* coef = partial + std::size_t(split.splits) * s.c * 2;
  if (need_sums) {
    const BnBackwardFinalize fin{gamma, mean,     invstd, dgamma, dbeta, dx ? coef : nullptr,
                                 s.c,   double(m)};
    channel_reduce<2>(BnBackwardSums{x, dy, mean}, fin, s.n, s.c, s.hw, split, partial, st);
  } else if (dx) {
    HALO_LAUNCH(channel_blocks(s.c), 128, st, bn_eval_grad_coef_kernel)(s.c, gamma, invstd, coef);
  }
  if (!dx) return;
  const uint32_t total = uint32_t(s.size());
  const unsigned grid = grid_for(total, kThreads);
  if (training)
    HALO_LAUNCH(grid, kThreads, st, bn_backward_dx_train_kernel)
    (total, ChannelOf(s.hw, s.c), s.c, x, dy, coef, dx);
  else
    HALO_LAUNCH(grid, kThreads, st, bn_backward_dx_eval_kernel)
    (total, ChannelOf(s.hw, s.c), dy, coef, dx);
}

// Layer norm forward: ~10 FLOPs per element; traffic: x read twice, y written (3 * 4 * size
// bytes) plus 2 * 4 * n*hw for the saved statistics.
void layer_norm2d_forward(const NormShape& s, const float* x, const float* gamma, const float* beta,
                          float eps, float* y, float* save_mean, float* save_invstd, void* stream) {
  check_norm(s, "layer_norm2d_forward");
  const cudaStream_t st = as_stream(stream);
  const uint32_t pixels = uint32_t(1LL * s.n * s.hw);
  HALO_LAUNCH(grid_for(pixels, kThreads), kThreads, st, ln_forward_kernel)
  (pixels, s.c, uint32_t(s.hw), FastDivmod(s.hw), x, gamma, beta, eps, y, save_mean, save_invstd);
}

// Layer norm backward: ~12 FLOPs per element; traffic: x and dy read twice for dx and once more
// for dgamma/dbeta, dx written (7 * 4 * size bytes when all three are wanted).
void layer_norm2d_backward(const NormShape& s, const float* x, const float* dy, const float* gamma,
                           const float* mean, const float* invstd, float* dx, float* dgamma,
                           float* dbeta, void* stream) {
  check_norm(s, "layer_norm2d_backward");
  const cudaStream_t st = as_stream(stream);
  if (dgamma || dbeta) {
    const ChannelSplit split = channel_split(s.c, 1LL * s.n * s.hw);
    float* partial = scratch(std::size_t(split.splits) * s.c * 2);
    channel_reduce<2>(LnParamSums{x, dy, mean, invstd}, LnParamStore{dgamma, dbeta}, s.n, s.c, s.hw,
                      split, partial, st);
  }
  if (!dx) return;
  const uint32_t pixels = uint32_t(1LL * s.n * s.hw);
  HALO_LAUNCH(grid_for(pixels, kThreads), kThreads, st, ln_backward_dx_kernel)
  (pixels, s.c, uint32_t(s.hw), FastDivmod(s.hw), x, dy, gamma, mean, invstd, dx);
}

}  // namespace halo::kernels::cuda
