// CPU reference for the pooling kernels of kernels/pool.h: max pooling with argmax (ResNet's stem)
// and global average pooling (every model's head). Planes (n, c) are independent and run in
// parallel.
#include "kernels/cpu/variant.h"
#include "kernels/pool.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace halo::kernels::cpu::HALO_CPU_VARIANT {
namespace {
// Below this many elements a parallel region costs more than it saves.
constexpr long long kParallelMin = 1 << 15;
}  // namespace

// y[oy, ox] = max over the k x k window at (oy*stride - pad, ox*stride - pad), padding = -inf.
// Scan order and comparison are PyTorch's CPU kernel: `val > max || isnan(val)`, so ties keep the
// first element in row-major order and a NaN wins. Traffic: reads x once (~k^2/stride^2 times
// through cache), writes y and argmax.
template <class T>
void max_pool2d_forward(const Pool2dShape& s, const T* x, T* y, int32_t* argmax) {
  const int ho = s.h_out(), wo = s.w_out();
  const long long planes = 1LL * s.n * s.c;
#pragma omp parallel for schedule(static) if (s.x_size() >= kParallelMin)
  for (long long pl = 0; pl < planes; ++pl) {
    const T* xp = x + pl * s.h * s.w;
    T* yp = y + pl * ho * wo;
    int32_t* ap = argmax ? argmax + pl * ho * wo : nullptr;
    for (int oy = 0; oy < ho; ++oy) {
      const int y0 = std::max(oy * s.stride - s.pad, 0);
      const int y1 = std::min(oy * s.stride - s.pad + s.k, s.h);
      for (int ox = 0; ox < wo; ++ox) {
        const int x0 = std::max(ox * s.stride - s.pad, 0);
        const int x1 = std::min(ox * s.stride - s.pad + s.k, s.w);
        T best = -std::numeric_limits<T>::infinity();
        int32_t best_i = y0 * s.w + x0;  // PyTorch's start value: first in-bounds element
        for (int iy = y0; iy < y1; ++iy) {
          for (int ix = x0; ix < x1; ++ix) {
            const T v = xp[iy * s.w + ix];
            if (v > best || std::isnan(v)) {
              best = v;
              best_i = iy * s.w + ix;
            }
          }
        }
        yp[oy * wo + ox] = best;
        if (ap) ap[oy * wo + ox] = best_i;
      }
    }
  }
}

// dx = 0, then dx[argmax] += dy within each (n, c) plane. Traffic: writes dx, reads dy and argmax.
template <class T>
void max_pool2d_backward(const Pool2dShape& s, const T* dy, const int32_t* argmax, T* dx) {
  const long long plane_out = 1LL * s.h_out() * s.w_out();
  const long long plane_in = 1LL * s.h * s.w;
  const long long planes = 1LL * s.n * s.c;
#pragma omp parallel for schedule(static) if (s.x_size() >= kParallelMin)
  for (long long pl = 0; pl < planes; ++pl) {
    T* dxp = dx + pl * plane_in;
    std::fill(dxp, dxp + plane_in, T(0));
    const T* dyp = dy + pl * plane_out;
    const int32_t* ap = argmax + pl * plane_out;
    for (long long o = 0; o < plane_out; ++o) dxp[ap[o]] += dyp[o];
  }
}

// y[n, c] = sum_p x[n, c, p] / hw, summed in double. Traffic: reads x, writes n*c values.
template <class T>
void global_avg_pool_forward(int n, int c, int hw, const T* x, T* y) {
  const long long planes = 1LL * n * c;
#pragma omp parallel for schedule(static) if (planes * hw >= kParallelMin)
  for (long long pl = 0; pl < planes; ++pl) {
    const T* xp = x + pl * hw;
    double acc = 0;
    for (int p = 0; p < hw; ++p) acc += double(xp[p]);
    y[pl] = T(acc / double(hw));
  }
}

// dx[n, c, p] = dy[n, c] / hw. Traffic: reads n*c values, writes dx.
template <class T>
void global_avg_pool_backward(int n, int c, int hw, const T* dy, T* dx) {
  const long long planes = 1LL * n * c;
#pragma omp parallel for schedule(static) if (planes * hw >= kParallelMin)
  for (long long pl = 0; pl < planes; ++pl) {
    const T g = T(double(dy[pl]) / double(hw));
    T* dxp = dx + pl * hw;
    for (int p = 0; p < hw; ++p) dxp[p] = g;
  }
}

#define HALO_INSTANTIATE_POOL(T)                                                          \
  template void max_pool2d_forward<T>(const Pool2dShape&, const T*, T*, int32_t*);        \
  template void max_pool2d_backward<T>(const Pool2dShape&, const T*, const int32_t*, T*); \
  template void global_avg_pool_forward<T>(int, int, int, const T*, T*);                  \
  template void global_avg_pool_backward<T>(int, int, int, const T*, T*);
HALO_INSTANTIATE_POOL(float)
HALO_INSTANTIATE_POOL(double)
#undef HALO_INSTANTIATE_POOL

}  // namespace halo::kernels::cpu::HALO_CPU_VARIANT
