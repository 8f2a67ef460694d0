// CPU reference for batch norm and channel layer norm (kernels/norm.h), forward and backward.
// Statistics are accumulated in double (also for float data) with two passes over the data, so
// that var = mean((x - mean)^2) never suffers the cancellation of E[x^2] - E[x]^2.
#include "kernels/cpu/variant.h"
#include "kernels/norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace halo::kernels::cpu::HALO_CPU_VARIANT {
namespace {

using Acc = double;  // accumulator type for every reduction in this file

// Parallelise only when a call touches at least this many elements: below it the fork/join of an
// OpenMP region costs more than the arithmetic.
constexpr long long kParallelMin = 1 << 15;

// Pixels handled together by one layer-norm task: per-pixel accumulators for a block live in
// small stack arrays while the channel loop streams contiguous rows of `kPixelBlock` values.
constexpr int kPixelBlock = 256;

}  // namespace

// ---- batch norm
// ----------------------------------------------------------------------------------

// Per channel: mean = sum(x)/m, var = sum((x-mean)^2)/m (biased) over m = n*hw values, then
// y = x*a + b with a = gamma*invstd, b = beta - mean*a. Traffic: reads x twice, writes y once.
template <class T>
void batch_norm_forward_train(const NormShape& s, const T* x, const T* gamma, const T* beta, T eps,
                              T momentum, T* running_mean, T* running_var, T* y, T* save_mean,
                              T* save_invstd) {
  const long long m = 1LL * s.n * s.hw;
  const long long plane = 1LL * s.c * s.hw;
#pragma omp parallel for schedule(static) if (s.size() >= kParallelMin)
  for (int c = 0; c < s.c; ++c) {
    Acc sum = 0;
    for (int n = 0; n < s.n; ++n) {
      const T* xp = x + n * plane + 1LL * c * s.hw;
      for (int p = 0; p < s.hw; ++p) sum += Acc(xp[p]);
    }
    const Acc mean = sum / Acc(m);
    Acc sq = 0;
    for (int n = 0; n < s.n; ++n) {
      const T* xp = x + n * plane + 1LL * c * s.hw;
      for (int p = 0; p < s.hw; ++p) {
        const Acc d = Acc(xp[p]) - mean;
        sq += d * d;
      }
    }
    const Acc var = sq / Acc(m);
    const Acc invstd = 1.0 / std::sqrt(var + Acc(eps));
    if (save_mean) save_mean[c] = T(mean);
    if (save_invstd) save_invstd[c] = T(invstd);
    if (running_mean) {
      running_mean[c] = T((1.0 - Acc(momentum)) * Acc(running_mean[c]) + Acc(momentum) * mean);
    }
    if (running_var) {
      // PyTorch keeps the unbiased estimate; with m == 1 (which PyTorch rejects) keep the biased.
      const Acc unbiased = m > 1 ? var * Acc(m) / Acc(m - 1) : var;
      running_var[c] = T((1.0 - Acc(momentum)) * Acc(running_var[c]) + Acc(momentum) * unbiased);
    }
    const T a = T((gamma ? Acc(gamma[c]) : 1.0) * invstd);
    const T b = T((beta ? Acc(beta[c]) : 0.0) - mean * Acc(a));
    for (int n = 0; n < s.n; ++n) {
      const T* xp = x + n * plane + 1LL * c * s.hw;
      T* yp = y + n * plane + 1LL * c * s.hw;
      for (int p = 0; p < s.hw; ++p) yp[p] = xp[p] * a + b;
    }
  }
}

// y = x*a + b with a = gamma/sqrt(running_var + eps), b = beta - running_mean*a.
// Traffic: reads x once, writes y once.
template <class T>
void batch_norm_forward_eval(const NormShape& s, const T* x, const T* gamma, const T* beta,
                             const T* running_mean, const T* running_var, T eps, T* y) {
  const long long plane = 1LL * s.c * s.hw;
#pragma omp parallel for collapse(2) schedule(static) if (s.size() >= kParallelMin)
  for (int n = 0; n < s.n; ++n) {
    for (int c = 0; c < s.c; ++c) {
      const Acc invstd = 1.0 / std::sqrt(Acc(running_var[c]) + Acc(eps));
      const T a = T((gamma ? Acc(gamma[c]) : 1.0) * invstd);
      const T b = T((beta ? Acc(beta[c]) : 0.0) - Acc(running_mean[c]) * Acc(a));
      const T* xp = x + n * plane + 1LL * c * s.hw;
      T* yp = y + n * plane + 1LL * c * s.hw;
      for (int p = 0; p < s.hw; ++p) yp[p] = xp[p] * a + b;
    }
  }
}

// Per channel, with xhat = (x - mean)*invstd: dbeta = sum(dy), dgamma = sum(dy*xhat);
// training: dx = gamma*invstd*(dy - dbeta/m - xhat*dgamma/m); eval: dx = gamma*invstd*dy.
// Traffic: reads x and dy once for the sums (skipped in eval when only dx is wanted), then
// reads them again and writes dx.
template <class T>
void batch_norm_backward(const NormShape& s, const T* x, const T* dy, const T* gamma, const T* mean,
                         const T* invstd, bool training, T* dx, T* dgamma, T* dbeta) {
  const long long m = 1LL * s.n * s.hw;
  const long long plane = 1LL * s.c * s.hw;
  const bool need_sums = dgamma || dbeta || (dx && training);
#pragma omp parallel for schedule(static) if (s.size() >= kParallelMin)
  for (int c = 0; c < s.c; ++c) {
    const Acc mu = Acc(mean[c]);
    const Acc is = Acc(invstd[c]);
    Acc sum_dy = 0, sum_dy_xhat = 0;
    if (need_sums) {
      for (int n = 0; n < s.n; ++n) {
        const T* xp = x + n * plane + 1LL * c * s.hw;
        const T* dyp = dy + n * plane + 1LL * c * s.hw;
        for (int p = 0; p < s.hw; ++p) {
          sum_dy += Acc(dyp[p]);
          sum_dy_xhat += Acc(dyp[p]) * (Acc(xp[p]) - mu);
        }
      }
      sum_dy_xhat *= is;
    }
    if (dbeta) dbeta[c] = T(sum_dy);
    if (dgamma) dgamma[c] = T(sum_dy_xhat);
    if (!dx) continue;
    const Acc g = gamma ? Acc(gamma[c]) : 1.0;
    if (training) {
      // As PyTorch: dx = ((dy - mean_dy) - (x - mean)*proj) * k with proj = invstd*mean(dy*xhat),
      // k = gamma*invstd; x - mean is formed first so a large mean cannot cancel digits away.
      const T k = T(g * is);
      const T mdy = T(sum_dy / Acc(m));
      const T proj = T(is * sum_dy_xhat / Acc(m));
      const T mu_t = T(mu);
      for (int n = 0; n < s.n; ++n) {
        const T* xp = x + n * plane + 1LL * c * s.hw;
        const T* dyp = dy + n * plane + 1LL * c * s.hw;
        T* dxp = dx + n * plane + 1LL * c * s.hw;
        for (int p = 0; p < s.hw; ++p) dxp[p] = ((dyp[p] - mdy) - (xp[p] - mu_t) * proj) * k;
      }
    } else {
      const T k = T(g * is);
      for (int n = 0; n < s.n; ++n) {
        const T* dyp = dy + n * plane + 1LL * c * s.hw;
        T* dxp = dx + n * plane + 1LL * c * s.hw;
        for (int p = 0; p < s.hw; ++p) dxp[p] = k * dyp[p];
      }
    }
  }
}

// ---- layer norm over channels
// ----------------------------------------------------------------------

// For each pixel (n, p): mean and biased var over the c values x[n, :, p] (two passes, double
// accumulators), y = (x - mean)*invstd*gamma[c] + beta[c]. Traffic: reads x twice, writes y.
// Work is split into (n, block of kPixelBlock pixels) tasks so the channel loop reads contiguous
// rows.
template <class T>
void layer_norm2d_forward(const NormShape& s, const T* x, const T* gamma, const T* beta, T eps,
                          T* y, T* save_mean, T* save_invstd) {
  const long long plane = 1LL * s.c * s.hw;
  const int blocks = (s.hw + kPixelBlock - 1) / kPixelBlock;
  const long long tasks = 1LL * s.n * blocks;
#pragma omp parallel for schedule(static) if (s.size() >= kParallelMin)
  for (long long t = 0; t < tasks; ++t) {
    const int n = int(t / blocks);
    const int p0 = int(t % blocks) * kPixelBlock;
    const int len = std::min(kPixelBlock, s.hw - p0);
    Acc mean[kPixelBlock], sq[kPixelBlock];
    std::fill(mean, mean + len, 0.0);
    std::fill(sq, sq + len, 0.0);
    const T* xn = x + n * plane + p0;
    T* yn = y + n * plane + p0;
    for (int c = 0; c < s.c; ++c) {
      const T* xp = xn + 1LL * c * s.hw;
      for (int i = 0; i < len; ++i) mean[i] += Acc(xp[i]);
    }
    for (int i = 0; i < len; ++i) mean[i] /= Acc(s.c);
    for (int c = 0; c < s.c; ++c) {
      const T* xp = xn + 1LL * c * s.hw;
      for (int i = 0; i < len; ++i) {
        const Acc d = Acc(xp[i]) - mean[i];
        sq[i] += d * d;
      }
    }
    Acc* invstd = sq;  // reuse the buffer: sq[i] becomes invstd[i]
    for (int i = 0; i < len; ++i) invstd[i] = 1.0 / std::sqrt(sq[i] / Acc(s.c) + Acc(eps));
    if (save_mean)
      for (int i = 0; i < len; ++i) save_mean[1LL * n * s.hw + p0 + i] = T(mean[i]);
    if (save_invstd)
      for (int i = 0; i < len; ++i) save_invstd[1LL * n * s.hw + p0 + i] = T(invstd[i]);
    for (int c = 0; c < s.c; ++c) {
      const T* xp = xn + 1LL * c * s.hw;
      T* yp = yn + 1LL * c * s.hw;
      const T g = gamma ? gamma[c] : T(1);
      const T b = beta ? beta[c] : T(0);
      for (int i = 0; i < len; ++i) yp[i] = T((Acc(xp[i]) - mean[i]) * invstd[i]) * g + b;
    }
  }
}

// With xhat = (x - mean)*invstd and g = dy*gamma, per pixel over c:
//   dx = invstd*(g - mean_c(g) - xhat*mean_c(g*xhat));
// per channel over (n, p): dgamma = sum(dy*xhat), dbeta = sum(dy).
// Traffic: dx reads x, dy twice and writes dx; dgamma/dbeta read x and dy once more.
template <class T>
void layer_norm2d_backward(const NormShape& s, const T* x, const T* dy, const T* gamma,
                           const T* mean, const T* invstd, T* dx, T* dgamma, T* dbeta) {
  const long long plane = 1LL * s.c * s.hw;
  if (dgamma || dbeta) {
#pragma omp parallel for schedule(static) if (s.size() >= kParallelMin)
    for (int c = 0; c < s.c; ++c) {
      Acc sum_dy = 0, sum_dy_xhat = 0;
      for (int n = 0; n < s.n; ++n) {
        const T* xp = x + n * plane + 1LL * c * s.hw;
        const T* dyp = dy + n * plane + 1LL * c * s.hw;
        const T* mu = mean + 1LL * n * s.hw;
        const T* is = invstd + 1LL * n * s.hw;
        for (int p = 0; p < s.hw; ++p) {
          sum_dy += Acc(dyp[p]);
          sum_dy_xhat += Acc(dyp[p]) * ((Acc(xp[p]) - Acc(mu[p])) * Acc(is[p]));
        }
      }
      if (dgamma) dgamma[c] = T(sum_dy_xhat);
      if (dbeta) dbeta[c] = T(sum_dy);
    }
  }
  if (!dx) return;
  const int blocks = (s.hw + kPixelBlock - 1) / kPixelBlock;
  const long long tasks = 1LL * s.n * blocks;
#pragma omp parallel for schedule(static) if (s.size() >= kParallelMin)
  for (long long t = 0; t < tasks; ++t) {
    const int n = int(t / blocks);
    const int p0 = int(t % blocks) * kPixelBlock;
    const int len = std::min(kPixelBlock, s.hw - p0);
    const T* mu = mean + 1LL * n * s.hw + p0;
    const T* is = invstd + 1LL * n * s.hw + p0;
    Acc mean_g[kPixelBlock], mean_gx[kPixelBlock];
    std::fill(mean_g, mean_g + len, 0.0);
    std::fill(mean_gx, mean_gx + len, 0.0);
    const T* xn = x + n * plane + p0;
    const T* dyn = dy + n * plane + p0;
    T* dxn = dx + n * plane + p0;
    for (int c = 0; c < s.c; ++c) {
      const T* xp = xn + 1LL * c * s.hw;
      const T* dyp = dyn + 1LL * c * s.hw;
      const Acc gc = gamma ? Acc(gamma[c]) : 1.0;
      for (int i = 0; i < len; ++i) {
        const Acc g = Acc(dyp[i]) * gc;
        mean_g[i] += g;
        mean_gx[i] += g * ((Acc(xp[i]) - Acc(mu[i])) * Acc(is[i]));
      }
    }
    for (int i = 0; i < len; ++i) {
      mean_g[i] /= Acc(s.c);
      mean_gx[i] /= Acc(s.c);
    }
    for (int c = 0; c < s.c; ++c) {
      const T* xp = xn + 1LL * c * s.hw;
      const T* dyp = dyn + 1LL * c * s.hw;
      T* dxp = dxn + 1LL * c * s.hw;
      const Acc gc = gamma ? Acc(gamma[c]) : 1.0;
      for (int i = 0; i < len; ++i) {
        const Acc xhat = (Acc(xp[i]) - Acc(mu[i])) * Acc(is[i]);
        dxp[i] = T(Acc(is[i]) * (Acc(dyp[i]) * gc - mean_g[i] - xhat * mean_gx[i]));
      }
    }
  }
}

#define HALO_INSTANTIATE_NORM(T)                                                                   \
  template void batch_norm_forward_train<T>(const NormShape&, const T*, const T*, const T*, T, T,  \
                                            T*, T*, T*, T*, T*);                                   \
  template void batch_norm_forward_eval<T>(const NormShape&, const T*, const T*, const T*,         \
                                           const T*, const T*, T, T*);                             \
  template void batch_norm_backward<T>(const NormShape&, const T*, const T*, const T*, const T*,   \
                                       const T*, bool, T*, T*, T*);                                \
  template void layer_norm2d_forward<T>(const NormShape&, const T*, const T*, const T*, T, T*, T*, \
                                        T*);                                                       \
  template void layer_norm2d_backward<T>(const NormShape&, const T*, const T*, const T*, const T*, \
                                         const T*, T*, T*, T*);
HALO_INSTANTIATE_NORM(float)
HALO_INSTANTIATE_NORM(double)
#undef HALO_INSTANTIATE_NORM

}  // namespace halo::kernels::cpu::HALO_CPU_VARIANT
