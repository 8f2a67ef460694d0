// The arithmetic of the normalisation kernels (norm.cu) as __host__ __device__ functions: the
// Welford accumulator and its merge, the per-channel finish of the batch-norm statistics, and the
// per-pixel bodies of the layer norm over channels. The kernels call them on the GPU;
// tests/kernels/test_cuda_host.cpp calls them on the CPU against the CPU reference.
#pragma once
#include <math.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/fast_divmod.h"

namespace halo::kernels::cuda {

// Running mean and sum of squared deviations (Welford 1962) of `n` values. Two of them merge with
// Chan, Golub and LeVeque's formula: with d = mean_b - mean_a and n = n_a + n_b,
//   mean = mean_a + d n_b / n,   m2 = m2_a + m2_b + d^2 n_a n_b / n,
// which never subtracts two large sums of squares, so the variance keeps its digits even when
// |mean| >> std (the weakness of E[x^2] - E[x]^2).
struct Welford {
  float n = 0.f, mean = 0.f, m2 = 0.f;

  HALO_HD void add(float x) {
    n += 1.f;
    const float d = x - mean;
    mean += d / n;
    m2 += d * (x - mean);
  }
  HALO_HD void merge(const Welford& b) {
    const float total = n + b.n;
    if (total == 0.f) return;
    const float d = b.mean - mean;
    const float fb = b.n / total;
    mean += d * fb;
    m2 += b.m2 + d * d * n * fb;
    n = total;
  }
};

// Batch norm, pass 2, for channel c: merge the per-split Welford partials
// partial[split][c] = {count, mean, m2} in double and in split order (Chan et al.), then, exactly
// as the CPU reference: var = m2 / m (biased), invstd = 1/sqrt(var + eps), the running statistics
// r = (1 - momentum) r + momentum stat with the unbiased var * m/(m - 1), and the coefficients of
// y = (x - mean) a + beta: coef[c] = a = gamma invstd, coef[C + c] = mean, coef[2C + c] = beta.
// (Not y = x a + (beta - mean a): when |mean| >> std that form cancels away most of the digits
// of y in float; x - mean first keeps them, as PyTorch's CUDA kernel does.)
HALO_HD void bn_finalize_channel(int c, const float* __restrict__ partial, int C, int splits,
                                 double m, double eps, double momentum,
                                 const float* __restrict__ gamma, const float* __restrict__ beta,
                                 float* running_mean, float* running_var, float* save_mean,
                                 float* save_invstd, float* __restrict__ coef) {
  double n = 0, mean = 0, m2 = 0;
  for (int s = 0; s < splits; ++s) {
    const float* p = partial + (std::size_t(s) * C + c) * 3;
    const double nb = p[0];
    if (nb == 0) continue;
    const double total = n + nb, d = double(p[1]) - mean;
    mean += d * nb / total;
    m2 += double(p[2]) + d * d * n * nb / total;
    n = total;
  }
  const double var = m2 > 0 ? m2 / m : 0.0;
  const double invstd = 1.0 / sqrt(var + eps);
  if (save_mean) save_mean[c] = float(mean);
  if (save_invstd) save_invstd[c] = float(invstd);
  if (running_mean)
    running_mean[c] = float((1.0 - momentum) * double(running_mean[c]) + momentum * mean);
  if (running_var) {
    const double unbiased = m > 1 ? var * m / (m - 1) : var;
    running_var[c] = float((1.0 - momentum) * double(running_var[c]) + momentum * unbiased);
  }
  coef[c] = float((gamma ? double(gamma[c]) : 1.0) * invstd);
  coef[C + c] = float(mean);
  coef[2 * C + c] = beta ? beta[c] : 0.f;
}

// y = (x - coef[C + c]) coef[c] + coef[2C + c] for an element of channel c (training and eval).
HALO_HD float bn_apply(float x, const float* __restrict__ coef, int C, int c) {
  return (x - coef[C + c]) * coef[c] + coef[2 * C + c];
}

// ---- batch norm backward ------------------------------------------------------------------------

// Backward sums per channel: sum(dy) and sum(dy (x - mean)).
struct BnBackwardSums {
  const float* __restrict__ x;
  const float* __restrict__ dy;
  const float* __restrict__ mean;
  HALO_HD void operator()(std::size_t idx, int c, uint32_t, float (&acc)[2]) const {
    const float g = dy[idx];
    acc[0] += g;
    acc[1] += g * (x[idx] - mean[c]);
  }
};

// dbeta = sum(dy), dgamma = sum(dy xhat) = invstd sum(dy (x - mean)), and the dx coefficients
// {k, mean(dy), proj, mean} with dx = ((dy - mean(dy)) - (x - mean) proj) k,
// k = gamma invstd, proj = invstd mean(dy xhat)  (PyTorch's and the CPU reference's order).
struct BnBackwardFinalize {
  const float* gamma;
  const float* mean;
  const float* invstd;
  float* dgamma;
  float* dbeta;
  float* coef;  // [4][C] or nullptr when dx is not wanted
  int C;
  double m;
  HALO_HD void operator()(int c, const double (&sum)[2]) const {
    const double is = invstd[c];
    const double sum_dy = sum[0], sum_dy_xhat = sum[1] * is;
    if (dbeta) dbeta[c] = float(sum_dy);
    if (dgamma) dgamma[c] = float(sum_dy_xhat);
    if (coef) {
      coef[c] = float((gamma ? double(gamma[c]) : 1.0) * is);
      coef[C + c] = float(sum_dy / m);
      coef[2 * C + c] = float(is * sum_dy_xhat / m);
      coef[3 * C + c] = mean[c];
    }
  }
};

// dx = ((dy - mean(dy)) - (x - mean) proj) k with the coefficients of BnBackwardFinalize.
HALO_HD float bn_backward_dx(float x, float dy, const float* __restrict__ coef, int C, int c) {
  return ((dy - coef[C + c]) - (x - coef[3 * C + c]) * coef[2 * C + c]) * coef[c];
}

// Layer norm over channels, forward, for pixel q = img*hw + p: mean and biased variance of the C
// values x[img, :, p] (stride hw: on the GPU a warp's 32 neighbouring pixels read 128 contiguous
// bytes per channel), then y = xhat gamma[c] + beta[c] with xhat = (x - mean) invstd; saves mean
// and invstd for pixel q. The statistics are sums of d = x - x_0 (x_0 the pixel's first value) and
// d^2 in double: the shift keeps the sums small, double keeps E[d^2] - E[d]^2 exact enough for any
// realistic data, and there is no division per element (Welford's) in the loop. xhat is formed in
// double and rounded once, as in the CPU reference: a float mean would put an error of half an
// ulp of |mean| into every x - mean, which is large next to a small spread over few channels.
HALO_HD void ln_forward_pixel(uint32_t q, int C, uint32_t hw, const FastDivmod& hw_div,
                              const float* __restrict__ x, const float* __restrict__ gamma,
                              const float* __restrict__ beta, float eps, float* __restrict__ y,
                              float* __restrict__ save_mean, float* __restrict__ save_invstd) {
  uint32_t img, p;
  hw_div.divmod(q, img, p);
  const std::size_t base = std::size_t(img) * C * hw + p;
  const double shift = x[base];
  double s1 = 0.0, s2 = 0.0;
  for (int c = 0; c < C; ++c) {
    const double d = double(x[base + std::size_t(c) * hw]) - shift;
    s1 += d;
    s2 += d * d;
  }
  const double md = s1 / C;
  const double var_raw = s2 / C - md * md;
  const double var = var_raw > 0.0 ? var_raw : 0.0;
  const double mean = shift + md;
  const double invstd = 1.0 / sqrt(var + double(eps));
  if (save_mean) save_mean[q] = float(mean);
  if (save_invstd) save_invstd[q] = float(invstd);
  for (int c = 0; c < C; ++c) {
    const std::size_t i = base + std::size_t(c) * hw;
    const float xhat = float((double(x[i]) - mean) * invstd);
    y[i] = xhat * (gamma ? gamma[c] : 1.f) + (beta ? beta[c] : 0.f);
  }
}

// Layer norm backward dx for pixel q: with g = dy gamma and xhat = (x - mean) invstd over the
// pixel's channels, dx = invstd (g - mean_c(g) - xhat mean_c(g xhat)). Two passes over the
// channels.
HALO_HD void ln_backward_pixel(uint32_t q, int C, uint32_t hw, const FastDivmod& hw_div,
                               const float* __restrict__ x, const float* __restrict__ dy,
                               const float* __restrict__ gamma, const float* __restrict__ mean,
                               const float* __restrict__ invstd, float* __restrict__ dx) {
  uint32_t img, p;
  hw_div.divmod(q, img, p);
  const std::size_t base = std::size_t(img) * C * hw + p;
  const float mu = mean[q], is = invstd[q];
  float sum_g = 0.f, sum_gx = 0.f;
  for (int c = 0; c < C; ++c) {
    const std::size_t i = base + std::size_t(c) * hw;
    const float g = dy[i] * (gamma ? gamma[c] : 1.f);
    sum_g += g;
    sum_gx += g * ((x[i] - mu) * is);
  }
  const float mean_g = sum_g / float(C), mean_gx = sum_gx / float(C);
  for (int c = 0; c < C; ++c) {
    const std::size_t i = base + std::size_t(c) * hw;
    const float g = dy[i] * (gamma ? gamma[c] : 1.f);
    const float xhat = (x[i] - mu) * is;
    dx[i] = is * (g - mean_g - xhat * mean_gx);
  }
}

}  // namespace halo::kernels::cuda
