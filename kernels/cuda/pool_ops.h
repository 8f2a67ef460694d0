// Per-element bodies of the max-pooling kernels (pool.cu), __host__ __device__ so that
// tests/kernels/test_cuda_host.cpp can check them against the CPU reference without a GPU.
#pragma once
#include <math.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/fast_divmod.h"
#include "kernels/pool.h"

namespace halo::kernels::cuda {

// The pooling shape with the divisors of the index arithmetic.
struct PoolDims {
  int h, w, ho, wo, k, stride, pad;
  FastDivmod out_plane_div, wo_div, in_plane_div, w_div;
  explicit PoolDims(const Pool2dShape& s)
      : h(s.h),
        w(s.w),
        ho(s.h_out()),
        wo(s.w_out()),
        k(s.k),
        stride(s.stride),
        pad(s.pad),
        out_plane_div(1LL * s.h_out() * s.w_out()),
        wo_div(s.w_out()),
        in_plane_div(1LL * s.h * s.w),
        w_div(s.w) {}
};

// Output element i = (plane, oy, ox): the window maximum and, in *argmax, its index iy*w + ix in
// the plane. Scan order and comparison are the CPU reference's (and PyTorch's): row-major over
// the window, `v > best || isnan(v)`, so ties keep the first element and NaN wins; padding never
// wins (it is skipped, i.e. -inf).
HALO_HD float max_pool_forward_at(const PoolDims& d, const float* __restrict__ x, uint32_t i,
                                  int32_t* argmax) {
  uint32_t plane, p, oy, ox;
  d.out_plane_div.divmod(i, plane, p);
  d.wo_div.divmod(p, oy, ox);
  const float* xp = x + std::size_t(plane) * d.h * d.w;
  const int sy = int(oy) * d.stride - d.pad, sx = int(ox) * d.stride - d.pad;
  const int y0 = sy > 0 ? sy : 0, y1 = sy + d.k < d.h ? sy + d.k : d.h;
  const int x0 = sx > 0 ? sx : 0, x1 = sx + d.k < d.w ? sx + d.k : d.w;
  float best = -INFINITY;
  int32_t best_i = y0 * d.w + x0;  // the CPU's start value: the first in-bounds element
  for (int iy = y0; iy < y1; ++iy)
    for (int ix = x0; ix < x1; ++ix) {
      const float v = xp[iy * d.w + ix];
      if (v > best || isnan(v)) {
        best = v;
        best_i = iy * d.w + ix;
      }
    }
  *argmax = best_i;
  return best;
}

// Input element i = (plane, iy, ix): the sum of dy over the outputs whose window contains it and
// whose argmax is this element, visiting outputs in row-major order (the CPU's order of +=).
// The windows containing row iy are oy in [ceil((iy + pad - k + 1) / stride), (iy + pad) / stride]
// (clamped to the output), likewise for columns: at most ceil(k / stride)^2 of them.
HALO_HD float max_pool_backward_at(const PoolDims& d, const float* __restrict__ dy,
                                   const int32_t* __restrict__ argmax, uint32_t i) {
  uint32_t plane, p, iy, ix;
  d.in_plane_div.divmod(i, plane, p);
  d.w_div.divmod(p, iy, ix);
  const int ly = int(iy) + d.pad - d.k + 1, lx = int(ix) + d.pad - d.k + 1;
  const int oy0 = ly <= 0 ? 0 : (ly + d.stride - 1) / d.stride;
  const int ox0 = lx <= 0 ? 0 : (lx + d.stride - 1) / d.stride;
  const int ey = (int(iy) + d.pad) / d.stride, ex = (int(ix) + d.pad) / d.stride;
  const int oy1 = ey < d.ho - 1 ? ey : d.ho - 1;
  const int ox1 = ex < d.wo - 1 ? ex : d.wo - 1;
  const std::size_t base = std::size_t(plane) * d.ho * d.wo;
  float acc = 0.f;
  for (int oy = oy0; oy <= oy1; ++oy)
    for (int ox = ox0; ox <= ox1; ++ox) {
      const std::size_t o = base + std::size_t(oy) * d.wo + ox;
      if (argmax[o] == int32_t(p)) acc += dy[o];
    }
  return acc;
}

}  // namespace halo::kernels::cuda
