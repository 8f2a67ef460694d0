// CPU reference for batch norm and channel layer norm (kernels/norm.h), forward and backward.
// Statistics are accumulated in double (also for float data) with two passes over the data, so
// that var = mean((x - mean)^2) never suffers the cancellation of E[x^2] - E[x]^2.
#include "kernels/norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/variant.h"

namespace halo::kernels::cpu::HALO_CPU_VARIANT {
namespace {

using Acc = double;  // accumulator type for every reduction in this file

// Parallelise only when a call touches at least this many elements: below it the fork/join of an
// OpenMP region costs more than the arithmetic.
constexpr long long kParallelMin = 1 << 15;

// Pixels handled together by one layer-norm task: per-pixel accumulators for a block live in
// small stack arrays while the channel loop streams contiguous rows of `kPixelBlock` values.
constexpr int kPixelBlock = 256;

// Sums in double with kLanes independent partial sums (lane j takes p = j, j + kLanes, ...), added
// at the end. A single running sum is a serial chain of dependent adds that the compiler may not
// reorder; independent lanes are what it can keep in one vector register.
constexpr int kLanes = 8;

// sum over p < len of f(p).
template <class F>
Acc lane_sum(int len, F&& f) {
  Acc part[kLanes] = {};
  int p = 0;
  for (; p + kLanes <= len; p += kLanes)
    for (int j = 0; j < kLanes; ++j) part[j] += f(p + j);
  for (; p < len; ++p) part[0] += f(p);
  Acc sum = 0;
  for (int j = 0; j < kLanes; ++j) sum += part[j];
  return sum;
}

// Two sums in one pass: f(p, a, b) adds element p's terms to the lane accumulators a and b; the
// totals are added to sum_a and sum_b.
template <class F>
void lane_sum2(int len, Acc& sum_a, Acc& sum_b, F&& f) {
  Acc a[kLanes] = {}, b[kLanes] = {};
  int p = 0;
  for (; p + kLanes <= len; p += kLanes)
    for (int j = 0; j < kLanes; ++j) f(p + j, a[j], b[j]);
  for (; p < len; ++p) f(p, a[0], b[0]);
  for (int j = 0; j < kLanes; ++j) {
    sum_a += a[j];
    sum_b += b[j];
  }
}

}  // namespace

// ---- batch norm
// ----------------------------------------------------------------------------------

// Per channel: mean = sum(x)/m, var = sum((x-mean)^2)/m (biased) over m = n*hw values, then
// y = x*a + b with a = gamma*invstd, b = beta - mean*a; with Relu, y = max(x*a + b + r, 0) where
// r is the residual (or 0 when residual is nullptr). Traffic: reads x twice (and r once), writes y
// once.
template <bool Relu, class T>
void batch_norm_forward_train_impl(const NormShape& s, const T* x, const T* residual,
                                   const T* gamma, const T* beta, T eps, T momentum,
                                   T* running_mean, T* running_var, T* y, T* save_mean,
                                   T* save_invstd) {
  const long long m = 1LL * s.n * s.hw;
  const long long plane = 1LL * s.c * s.hw;
#pragma omp parallel for schedule(static) if (s.size() >= kParallelMin)
  for (int c = 0; c < s.c; ++c) {
    Acc sum = 0;
    for (int n = 0; n < s.n; ++n) {
      const T* xp = x + n * plane + 1LL * c * s.hw;
      sum += lane_sum(s.hw, [&](int p) { return Acc(xp[p]); });
    }
    const Acc mean = sum / Acc(m);
    Acc sq = 0;
    for (int n = 0; n < s.n; ++n) {
      const T* xp = x + n * plane + 1LL * c * s.hw;
      sq += lane_sum(s.hw, [&](int p) {
        const Acc d = Acc(xp[p]) - mean;
        return d * d;
      });
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
      const long long off = n * plane + 1LL * c * s.hw;
      const T* xp = x + off;
      T* yp = y + off;
      if constexpr (!Relu) {
        for (int p = 0; p < s.hw; ++p) yp[p] = xp[p] * a + b;
      } else if (residual) {
        const T* rp = residual + off;
        for (int p = 0; p < s.hw; ++p) {
          const T v = xp[p] * a + b + rp[p];
          yp[p] = v < T(0) ? T(0) : v;  // NaN passes through, as torch.relu
        }
      } else {
        for (int p = 0; p < s.hw; ++p) {
          const T v = xp[p] * a + b;
          yp[p] = v < T(0) ? T(0) : v;
        }
      }
    }
  }
}

template <class T>
void batch_norm_forward_train(const NormShape& s, const T* x, const T* gamma, const T* beta, T eps,
                              T momentum, T* running_mean, T* running_var, T* y, T* save_mean,
                              T* save_invstd) {
  batch_norm_forward_train_impl<false>(s, x, static_cast<const T*>(nullptr), gamma, beta, eps,
                                       momentum, running_mean, running_var, y, save_mean,
                                       save_invstd);
}

template <class T>
void batch_norm_add_relu_forward_train(const NormShape& s, const T* x, const T* residual,
                                       const T* gamma, const T* beta, T eps, T momentum,
                                       T* running_mean, T* running_var, T* y, T* save_mean,
                                       T* save_invstd) {
  batch_norm_forward_train_impl<true>(s, x, residual, gamma, beta, eps, momentum, running_mean,
                                      running_var, y, save_mean, save_invstd);
}

// y = x*a + b with a = gamma/sqrt(running_var + eps), b = beta - running_mean*a; with Relu,
// y = max(x*a + b + r, 0) (r = 0 when residual is nullptr). Traffic: reads x (and r) once, writes
// y once.
template <bool Relu, class T>
void batch_norm_forward_eval_impl(const NormShape& s, const T* x, const T* residual, const T* gamma,
                                  const T* beta, const T* running_mean, const T* running_var, T eps,
                                  T* y) {
  const long long plane = 1LL * s.c * s.hw;
#pragma omp parallel for collapse(2) schedule(static) if (s.size() >= kParallelMin)
  for (int n = 0; n < s.n; ++n) {
    for (int c = 0; c < s.c; ++c) {
      const Acc invstd = 1.0 / std::sqrt(Acc(running_var[c]) + Acc(eps));
      const T a = T((gamma ? Acc(gamma[c]) : 1.0) * invstd);
      const T b = T((beta ? Acc(beta[c]) : 0.0) - Acc(running_mean[c]) * Acc(a));
      const long long off = n * plane + 1LL * c * s.hw;
      const T* xp = x + off;
      T* yp = y + off;
      if constexpr (!Relu) {
        for (int p = 0; p < s.hw; ++p) yp[p] = xp[p] * a + b;
      } else {
        const T* rp = residual ? residual + off : nullptr;
        for (int p = 0; p < s.hw; ++p) {
          const T v = xp[p] * a + b + (rp ? rp[p] : T(0));
          yp[p] = v < T(0) ? T(0) : v;
        }
      }
    }
  }
}

template <class T>
void batch_norm_forward_eval(const NormShape& s, const T* x, const T* gamma, const T* beta,
                             const T* running_mean, const T* running_var, T eps, T* y) {
  batch_norm_forward_eval_impl<false>(s, x, static_cast<const T*>(nullptr), gamma, beta,
                                      running_mean, running_var, eps, y);
}

template <class T>
void batch_norm_add_relu_forward_eval(const NormShape& s, const T* x, const T* residual,
                                      const T* gamma, const T* beta, const T* running_mean,
                                      const T* running_var, T eps, T* y) {
  batch_norm_forward_eval_impl<true>(s, x, residual, gamma, beta, running_mean, running_var, eps,
                                     y);
}

// Per channel, with xhat = (x - mean)*invstd: dbeta = sum(dy), dgamma = sum(dy*xhat);
// training: dx = gamma*invstd*(dy - dbeta/m - xhat*dgamma/m); eval: dx = gamma*invstd*dy.
// With Relu, dy is first masked by the ReLU's output y (dy where y > 0, else 0), and the masked dy
// is also the residual's gradient (written to dresidual when non-null).
// Traffic: reads x and dy (and y) once for the sums (skipped in eval when only dx is wanted), then
// reads them again and writes dx.
template <bool Relu, class T>
void batch_norm_backward_impl(const NormShape& s, const T* x, const T* relu_y, const T* dy,
                              const T* gamma, const T* mean, const T* invstd, bool training, T* dx,
                              T* dgamma, T* dbeta, T* dresidual) {
  const long long m = 1LL * s.n * s.hw;
  const long long plane = 1LL * s.c * s.hw;
  const bool need_sums = dgamma || dbeta || (dx && training);
  // The gradient reaching the batch norm at element i of a channel's row.
  auto grad = [](const T* dyp, const T* yp, int p) {
    if constexpr (Relu)
      return yp[p] > T(0) ? dyp[p] : T(0);
    else
      return dyp[p];
  };
#pragma omp parallel for schedule(static) if (s.size() >= kParallelMin)
  for (int c = 0; c < s.c; ++c) {
    const Acc mu = Acc(mean[c]);
    const Acc is = Acc(invstd[c]);
    Acc sum_dy = 0, sum_dy_xhat = 0;
    if (Relu && dresidual) {
      for (int n = 0; n < s.n; ++n) {
        const long long off = n * plane + 1LL * c * s.hw;
        for (int p = 0; p < s.hw; ++p) dresidual[off + p] = grad(dy + off, relu_y + off, p);
      }
    }
    if (need_sums) {
      for (int n = 0; n < s.n; ++n) {
        const long long off = n * plane + 1LL * c * s.hw;
        const T* xp = x + off;
        const T* dyp = dy + off;
        const T* yp = Relu ? relu_y + off : nullptr;
        lane_sum2(s.hw, sum_dy, sum_dy_xhat, [&](int p, Acc& a, Acc& b) {
          const Acc d = Acc(grad(dyp, yp, p));
          a += d;
          b += d * (Acc(xp[p]) - mu);
        });
      }
      sum_dy_xhat *= is;
    }
    if (dbeta) dbeta[c] = T(sum_dy);
    if (dgamma) dgamma[c] = T(sum_dy_xhat);
    if (!dx) continue;
    const Acc g = gamma ? Acc(gamma[c]) : 1.0;
    const T k = T(g * is);
    for (int n = 0; n < s.n; ++n) {
      const long long off = n * plane + 1LL * c * s.hw;
      const T* xp = x + off;
      const T* dyp = dy + off;
      const T* yp = Relu ? relu_y + off : nullptr;
      T* dxp = dx + off;
      if (training) {
        // As PyTorch: dx = ((dy - mean_dy) - (x - mean)*proj) * k with proj = invstd*mean(dy*xhat),
        // k = gamma*invstd; x - mean is formed first so a large mean cannot cancel digits away.
        const T mdy = T(sum_dy / Acc(m));
        const T proj = T(is * sum_dy_xhat / Acc(m));
        const T mu_t = T(mu);
        for (int p = 0; p < s.hw; ++p)
          dxp[p] = ((grad(dyp, yp, p) - mdy) - (xp[p] - mu_t) * proj) * k;
      } else {
        for (int p = 0; p < s.hw; ++p) dxp[p] = k * grad(dyp, yp, p);
      }
    }
  }
}

template <class T>
void batch_norm_backward(const NormShape& s, const T* x, const T* dy, const T* gamma, const T* mean,
                         const T* invstd, bool training, T* dx, T* dgamma, T* dbeta) {
  batch_norm_backward_impl<false>(s, x, static_cast<const T*>(nullptr), dy, gamma, mean, invstd,
                                  training, dx, dgamma, dbeta, static_cast<T*>(nullptr));
}

template <class T>
void batch_norm_relu_backward(const NormShape& s, const T* x, const T* y, const T* dy,
                              const T* gamma, const T* mean, const T* invstd, bool training, T* dx,
                              T* dgamma, T* dbeta, T* dresidual) {
  batch_norm_backward_impl<true>(s, x, y, dy, gamma, mean, invstd, training, dx, dgamma, dbeta,
                                 dresidual);
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
  template void batch_norm_add_relu_forward_train<T>(                                              \
      const NormShape&, const T*, const T*, const T*, const T*, T, T, T*, T*, T*, T*, T*);         \
  template void batch_norm_add_relu_forward_eval<T>(                                               \
      const NormShape&, const T*, const T*, const T*, const T*, const T*, const T*, T, T*);        \
  template void batch_norm_relu_backward<T>(const NormShape&, const T*, const T*, const T*,        \
                                            const T*, const T*, const T*, bool, T*, T*, T*, T*);   \
  template void layer_norm2d_forward<T>(const NormShape&, const T*, const T*, const T*, T, T*, T*, \
                                        T*);                                                       \
  template void layer_norm2d_backward<T>(const NormShape&, const T*, const T*, const T*, const T*, \
                                         const T*, T*, T*, T*);
HALO_INSTANTIATE_NORM(float)
HALO_INSTANTIATE_NORM(double)
#undef HALO_INSTANTIATE_NORM

}  // namespace halo::kernels::cpu::HALO_CPU_VARIANT
