// The operand gatherers of the tiled GEMM (gemm_tile.h) -- the three convolution passes as
// implicit GEMMs and plain row-major matrices -- and the per-element bodies of the depthwise
// convolution kernels. Everything here is __host__ __device__: the kernels call it on the GPU, and
// tests/kernels/test_cuda_host.cpp calls it on the CPU to check the index arithmetic against the
// CPU reference convolution on machines without a GPU.
#pragma once
#include <math.h>

#include <cstddef>
#include <cstdint>

#include "kernels/conv.h"
#include "kernels/cuda/fast_divmod.h"

namespace halo::kernels::cuda {

// A read-only load: through the read-only data cache on the GPU, a plain load on the host.
HALO_HD float load_ro(const float* p) {
#if defined(__CUDA_ARCH__)
  return __ldg(p);
#else
  return *p;
#endif
}

// The shape with the derived sizes and the divisors the index arithmetic needs.
struct ConvDims {
  int n, c_in, h, w, c_out, kh, kw, stride, pad, groups;
  int ho, wo, cin_g, cout_g, khkw;
  uint32_t hw, howo;
  FastDivmod khkw_div, kw_div, hw_div, w_div, howo_div, wo_div, stride_div, c_div;

  explicit ConvDims(const Conv2dShape& s)
      : n(s.n),
        c_in(s.c_in),
        h(s.h),
        w(s.w),
        c_out(s.c_out),
        kh(s.kh),
        kw(s.kw),
        stride(s.stride),
        pad(s.pad),
        groups(s.groups),
        ho(s.h_out()),
        wo(s.w_out()),
        cin_g(s.c_in_per_group()),
        cout_g(s.c_out_per_group()),
        khkw(s.kh * s.kw),
        hw(uint32_t(s.h * s.w)),
        howo(uint32_t(s.h_out() * s.w_out())),
        khkw_div(s.kh * s.kw),
        kw_div(s.kw),
        hw_div(1LL * s.h * s.w),
        w_div(s.w),
        howo_div(1LL * s.h_out() * s.w_out()),
        wo_div(s.w_out()),
        stride_div(s.stride),
        c_div(s.c_in) {}
};

// ---- implicit-GEMM operand gatherers of the three convolution passes ----------------------------

// Forward. A = weights of group g, row-major [cout x K], K = cin*kh*kw in (ci, ky, kx) order.
// B column n = (img, oy, ox), row k = (ci, ky, kx): x[img, g*cin + ci, oy*s - pad + ky, ...].
struct ConvFwdOp {
  ConvDims d;
  const float* __restrict__ x;
  const float* __restrict__ w;
  const float* __restrict__ bias;
  float* __restrict__ y;
  static constexpr bool a_k_major = true, b_k_major = false;

  struct AIdx {
    const float* row;
    bool ok;
  };
  HALO_HD AIdx a_index(int g, int m) const {
    const bool ok = m < d.cout_g;
    return {w + std::size_t(g * d.cout_g + (ok ? m : 0)) * (d.cin_g * d.khkw), ok};
  }
  HALO_HD float a_load(const AIdx& a, int k) const { return load_ro(a.row + k); }

  struct BIdx {
    const float* plane;  // x[img, g*cin, :, :]
    int iy0, ix0;
    bool ok;
  };
  HALO_HD BIdx b_index(int g, int n) const {
    BIdx b{x, 0, 0, false};
    if (uint32_t(n) >= uint32_t(d.n) * d.howo) return b;
    uint32_t img, p, oy, ox;
    d.howo_div.divmod(uint32_t(n), img, p);
    d.wo_div.divmod(p, oy, ox);
    b.plane = x + (std::size_t(img) * d.c_in + std::size_t(g) * d.cin_g) * d.hw;
    b.iy0 = int(oy) * d.stride - d.pad;
    b.ix0 = int(ox) * d.stride - d.pad;
    b.ok = true;
    return b;
  }
  HALO_HD float b_load(const BIdx& b, int k) const {
    uint32_t ci, r, ky, kx;
    d.khkw_div.divmod(uint32_t(k), ci, r);
    d.kw_div.divmod(r, ky, kx);
    const int iy = b.iy0 + int(ky), ix = b.ix0 + int(kx);
    if (uint32_t(iy) >= uint32_t(d.h) || uint32_t(ix) >= uint32_t(d.w)) return 0.f;
    return load_ro(b.plane + std::size_t(ci) * d.hw + iy * d.w + ix);
  }

  struct CIdx {
    float* out;  // y[img, g*cout, oy, ox]
  };
  HALO_HD CIdx c_index(int g, int n) const {
    uint32_t img, p;
    d.howo_div.divmod(uint32_t(n), img, p);
    return {y + (std::size_t(img) * d.c_out + std::size_t(g) * d.cout_g) * d.howo + p};
  }
  HALO_HD void store(int g, int, int m, const CIdx& c, float v) const {
    if (bias) v += load_ro(bias + g * d.cout_g + m);
    c.out[std::size_t(m) * d.howo] = v;
  }
};

// Backward-data. Rows m = ci, columns n = (img, iy, ix), k = (co, ky, kx).
// A[ci][k] = w[g*cout + co, ci, ky, kx]; B[k][n] = dy[img, g*cout + co, oy, ox] where
// oy*stride = iy + pad - ky (and likewise for x), or 0 when no such output exists.
struct ConvBwdDataOp {
  ConvDims d;
  const float* __restrict__ dy;
  const float* __restrict__ w;
  float* __restrict__ dx;
  static constexpr bool a_k_major = true, b_k_major = false;

  struct AIdx {
    const float* base;  // &w[g*cout, ci, 0, 0]
    bool ok;
  };
  HALO_HD AIdx a_index(int g, int m) const {
    const bool ok = m < d.cin_g;
    return {w + (std::size_t(g) * d.cout_g * d.cin_g + (ok ? m : 0)) * d.khkw, ok};
  }
  HALO_HD float a_load(const AIdx& a, int k) const {
    uint32_t co, r;
    d.khkw_div.divmod(uint32_t(k), co, r);
    return load_ro(a.base + std::size_t(co) * d.cin_g * d.khkw + r);
  }

  struct BIdx {
    const float* plane;  // dy[img, g*cout, :, :]
    int ty, tx;          // iy + pad, ix + pad
    bool ok;
  };
  HALO_HD BIdx b_index(int g, int n) const {
    BIdx b{dy, 0, 0, false};
    if (uint32_t(n) >= uint32_t(d.n) * d.hw) return b;
    uint32_t img, p, iy, ix;
    d.hw_div.divmod(uint32_t(n), img, p);
    d.w_div.divmod(p, iy, ix);
    b.plane = dy + (std::size_t(img) * d.c_out + std::size_t(g) * d.cout_g) * d.howo;
    b.ty = int(iy) + d.pad;
    b.tx = int(ix) + d.pad;
    b.ok = true;
    return b;
  }
  HALO_HD float b_load(const BIdx& b, int k) const {
    uint32_t co, r, ky, kx;
    d.khkw_div.divmod(uint32_t(k), co, r);
    d.kw_div.divmod(r, ky, kx);
    const int ny = b.ty - int(ky), nx = b.tx - int(kx);
    if (ny < 0 || nx < 0) return 0.f;
    uint32_t oy, ry, ox, rx;
    d.stride_div.divmod(uint32_t(ny), oy, ry);
    d.stride_div.divmod(uint32_t(nx), ox, rx);
    if (ry != 0 || rx != 0 || oy >= uint32_t(d.ho) || ox >= uint32_t(d.wo)) return 0.f;
    return load_ro(b.plane + std::size_t(co) * d.howo + oy * d.wo + ox);
  }

  struct CIdx {
    float* out;  // dx[img, g*cin, iy, ix]
  };
  HALO_HD CIdx c_index(int g, int n) const {
    uint32_t img, p;
    d.hw_div.divmod(uint32_t(n), img, p);
    return {dx + (std::size_t(img) * d.c_in + std::size_t(g) * d.cin_g) * d.hw + p};
  }
  HALO_HD void store(int, int, int m, const CIdx& c, float v) const {
    c.out[std::size_t(m) * d.hw] = v;
  }
};

// Backward-weight. Rows m = co, columns n = (ci, ky, kx), k = (img, oy, ox).
// A[co][k] = dy[img, g*cout + co, oy, ox]; B[k][n] = x[img, g*cin + ci, oy*s - pad + ky, ...].
// With split-K the store goes to partial[split][c_out][cin*kh*kw] (split 0 alone is dw itself).
struct ConvBwdWeightOp {
  ConvDims d;
  const float* __restrict__ x;
  const float* __restrict__ dy;
  float* __restrict__ out;
  static constexpr bool a_k_major = true, b_k_major = true;

  struct AIdx {
    const float* base;  // &dy[0, g*cout + co, 0, 0]
    bool ok;
  };
  HALO_HD AIdx a_index(int g, int m) const {
    const bool ok = m < d.cout_g;
    return {dy + (std::size_t(g) * d.cout_g + (ok ? m : 0)) * d.howo, ok};
  }
  HALO_HD float a_load(const AIdx& a, int k) const {
    uint32_t img, p;
    d.howo_div.divmod(uint32_t(k), img, p);
    return load_ro(a.base + std::size_t(img) * d.c_out * d.howo + p);
  }

  struct BIdx {
    const float* base;  // &x[0, g*cin + ci, 0, 0]
    int ky, kx;         // minus pad
    bool ok;
  };
  HALO_HD BIdx b_index(int g, int n) const {
    BIdx b{x, 0, 0, false};
    if (n >= d.cin_g * d.khkw) return b;
    uint32_t ci, r, ky, kx;
    d.khkw_div.divmod(uint32_t(n), ci, r);
    d.kw_div.divmod(r, ky, kx);
    b.base = x + (std::size_t(g) * d.cin_g + ci) * d.hw;
    b.ky = int(ky) - d.pad;
    b.kx = int(kx) - d.pad;
    b.ok = true;
    return b;
  }
  HALO_HD float b_load(const BIdx& b, int k) const {
    uint32_t img, p, oy, ox;
    d.howo_div.divmod(uint32_t(k), img, p);
    d.wo_div.divmod(p, oy, ox);
    const int iy = int(oy) * d.stride + b.ky, ix = int(ox) * d.stride + b.kx;
    if (uint32_t(iy) >= uint32_t(d.h) || uint32_t(ix) >= uint32_t(d.w)) return 0.f;
    return load_ro(b.base + std::size_t(img) * d.c_in * d.hw + iy * d.w + ix);
  }

  struct CIdx {
    int n;
  };
  HALO_HD CIdx c_index(int, int n) const { return {n}; }
  HALO_HD void store(int g, int split, int m, const CIdx& c, float v) const {
    const std::size_t cols = std::size_t(d.cin_g) * d.khkw;
    out[(std::size_t(split) * d.c_out + std::size_t(g) * d.cout_g + m) * cols + c.n] = v;
  }
};

// ---- plain row-major matrices (SGEMM, linear layer) -------------------------------------------

// C[m x n] = alpha op(A) op(B) + beta C (+ bias[n] per column, for the linear layer).
// Row-major: stored A is m x k (k x m when TA), stored B is k x n (n x k when TB).
template <bool TA, bool TB>
struct GemmOp {
  const float* __restrict__ a;
  const float* __restrict__ b;
  float* __restrict__ c;
  const float* __restrict__ bias;
  int lda, ldb, ldc, M, N;
  float alpha, beta;
  // Consecutive threads fetch consecutive addresses: along k for an untransposed A, along m for
  // a transposed one (and the other way round for B).
  static constexpr bool a_k_major = !TA, b_k_major = TB;

  struct AIdx {
    int m;
    bool ok;
  };
  HALO_HD AIdx a_index(int, int m) const { return {m, m < M}; }
  HALO_HD float a_load(const AIdx& i, int k) const {
    return TA ? load_ro(a + std::size_t(k) * lda + i.m) : load_ro(a + std::size_t(i.m) * lda + k);
  }
  struct BIdx {
    int n;
    bool ok;
  };
  HALO_HD BIdx b_index(int, int n) const { return {n, n < N}; }
  HALO_HD float b_load(const BIdx& i, int k) const {
    return TB ? load_ro(b + std::size_t(i.n) * ldb + k) : load_ro(b + std::size_t(k) * ldb + i.n);
  }
  struct CIdx {
    int n;
  };
  HALO_HD CIdx c_index(int, int n) const { return {n}; }
  HALO_HD void store(int, int, int m, const CIdx& ci, float v) const {
    float* p = c + std::size_t(m) * ldc + ci.n;
    float r = alpha * v;
    if (beta != 0.f) r += beta * *p;  // beta == 0 overwrites, even a NaN already in C
    if (bias) r += load_ro(bias + ci.n);
    *p = r;
  }
};

// ---- depthwise convolution (groups == c_in == c_out): per-element bodies
// -------------------------- A depthwise filter has kh*kw weights per channel, so as a GEMM it is a
// 1 x kh*kw by kh*kw x pixels product per channel: far too thin for tiles. Instead one GPU thread
// computes one output (or input gradient) directly with these functions; neighbouring threads take
// neighbouring pixels (coalesced), the kh*kw reads per element hit the L1 cache, and the channel's
// weights are the same for a whole warp. KH, KW > 0 fix the kernel size at compile time (unrolled
// loops, ConvNeXt's 7x7); 0 means the run-time size d.kh, d.kw.

// y[i] for output element i = (plane = img*c + c, oy, ox), bias included.
template <int KH, int KW>
HALO_HD float depthwise_forward_at(const ConvDims& d, const float* __restrict__ x,
                                   const float* __restrict__ w, const float* __restrict__ bias,
                                   uint32_t i) {
  const int kh = KH > 0 ? KH : d.kh, kw = KW > 0 ? KW : d.kw;
  uint32_t plane, p, oy, ox;
  d.howo_div.divmod(i, plane, p);
  d.wo_div.divmod(p, oy, ox);
  const uint32_t c = plane - d.c_div.div(plane) * d.c_div.divisor;
  const float* xp = x + std::size_t(plane) * d.hw;
  const float* wp = w + std::size_t(c) * kh * kw;
  const int iy0 = int(oy) * d.stride - d.pad, ix0 = int(ox) * d.stride - d.pad;
  float acc = 0.f;
  HALO_UNROLL
  for (int ky = 0; ky < kh; ++ky) {
    const int iy = iy0 + ky;
    if (uint32_t(iy) >= uint32_t(d.h)) continue;
    HALO_UNROLL
    for (int kx = 0; kx < kw; ++kx) {
      const int ix = ix0 + kx;
      if (uint32_t(ix) >= uint32_t(d.w)) continue;
      acc = fmaf(load_ro(wp + ky * kw + kx), load_ro(xp + iy * d.w + ix), acc);
    }
  }
  if (bias) acc += load_ro(bias + c);
  return acc;
}

// dx[i] for input element i = (plane, iy, ix): the sum over the taps (ky, kx) for which
// oy*stride = iy + pad - ky (and likewise ox) is an output position, of w[c, ky, kx] dy[oy, ox].
// A gather: no atomics.
template <int KH, int KW>
HALO_HD float depthwise_backward_data_at(const ConvDims& d, const float* __restrict__ dy,
                                         const float* __restrict__ w, uint32_t i) {
  const int kh = KH > 0 ? KH : d.kh, kw = KW > 0 ? KW : d.kw;
  uint32_t plane, p, iy, ix;
  d.hw_div.divmod(i, plane, p);
  d.w_div.divmod(p, iy, ix);
  const uint32_t c = plane - d.c_div.div(plane) * d.c_div.divisor;
  const float* gp = dy + std::size_t(plane) * d.howo;
  const float* wp = w + std::size_t(c) * kh * kw;
  float acc = 0.f;
  HALO_UNROLL
  for (int ky = 0; ky < kh; ++ky) {
    const int ny = int(iy) + d.pad - ky;
    if (ny < 0) continue;
    uint32_t oy, ry;
    d.stride_div.divmod(uint32_t(ny), oy, ry);
    if (ry != 0 || oy >= uint32_t(d.ho)) continue;
    HALO_UNROLL
    for (int kx = 0; kx < kw; ++kx) {
      const int nx = int(ix) + d.pad - kx;
      if (nx < 0) continue;
      uint32_t ox, rx;
      d.stride_div.divmod(uint32_t(nx), ox, rx);
      if (rx != 0 || ox >= uint32_t(d.wo)) continue;
      acc = fmaf(load_ro(wp + ky * kw + kx), load_ro(gp + oy * d.wo + ox), acc);
    }
  }
  return acc;
}

// Weight gradient of channel c: adds dy[e] * x[e's window] to acc[ky*KW + kx] for every tap, where
// e = (img - img0)*ho*wo + oy*wo + ox numbers the output pixels of images img0, img0 + 1, ...
// (KH, KW > 0 only: the sums live in registers).
template <int KH, int KW>
HALO_HD void depthwise_weight_accumulate(const ConvDims& d, const float* __restrict__ x,
                                         const float* __restrict__ dy, int c, int img0, uint32_t e,
                                         float* acc) {
  uint32_t r, p, oy, ox;
  d.howo_div.divmod(e, r, p);
  d.wo_div.divmod(p, oy, ox);
  const std::size_t plane = std::size_t(img0 + int(r)) * d.c_in + c;
  const float g = load_ro(dy + plane * d.howo + p);
  const float* xp = x + plane * d.hw;
  const int iy0 = int(oy) * d.stride - d.pad, ix0 = int(ox) * d.stride - d.pad;
  HALO_UNROLL
  for (int ky = 0; ky < KH; ++ky) {
    const int iy = iy0 + ky;
    if (uint32_t(iy) >= uint32_t(d.h)) continue;
    HALO_UNROLL
    for (int kx = 0; kx < KW; ++kx) {
      const int ix = ix0 + kx;
      if (uint32_t(ix) < uint32_t(d.w))
        acc[ky * KW + kx] = fmaf(g, load_ro(xp + iy * d.w + ix), acc[ky * KW + kx]);
    }
  }
}

// The same for one tap (ky, kx) of a run-time-size kernel: the product for output pixel e, or 0.
HALO_HD float depthwise_weight_term(const ConvDims& d, const float* __restrict__ x,
                                    const float* __restrict__ dy, int c, int img0, uint32_t e,
                                    int ky, int kx) {
  uint32_t r, p, oy, ox;
  d.howo_div.divmod(e, r, p);
  d.wo_div.divmod(p, oy, ox);
  const int iy = int(oy) * d.stride - d.pad + ky, ix = int(ox) * d.stride - d.pad + kx;
  if (uint32_t(iy) >= uint32_t(d.h) || uint32_t(ix) >= uint32_t(d.w)) return 0.f;
  const std::size_t plane = std::size_t(img0 + int(r)) * d.c_in + c;
  return load_ro(dy + plane * d.howo + p) * load_ro(x + plane * d.hw + iy * d.w + ix);
}

}  // namespace halo::kernels::cuda
