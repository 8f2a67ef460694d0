// CPU reference for the pooling kernels of kernels/pool.h: max pooling with argmax (ResNet's stem)
// and global average pooling (every model's head). Planes (n, c) are independent and run in
// parallel.
#include "kernels/pool.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/variant.h"

namespace halo::kernels::cpu::HALO_CPU_VARIANT {
namespace {
// Below this many elements a parallel region costs more than it saves.
constexpr long long kParallelMin = 1 << 15;
}  // namespace

// y[oy, ox] = max over the k x k window at (oy*stride - pad, ox*stride - pad), padding = -inf.
// Scan order and comparison are PyTorch's CPU kernel: `val > max || isnan(val)`, so ties keep the
// first element in row-major order and a NaN wins. Traffic: reads x once (~k^2/stride^2 times
// through cache), writes y and argmax (argmax may be nullptr: eval, nothing to backpropagate).
//
// Each output row is built one window element (iy, kx) at a time over all its columns, in the same
// row-major order, so the inner loop runs over ox: a strided load, a compare and two selects that
// the compiler vectorises. Columns whose window crosses the left or right edge ([0, ox_lo) and
// [ox_hi, wo)) take the bounds-checked loop.
template <class T>
void max_pool2d_forward(const Pool2dShape& s, const T* x, T* y, int32_t* argmax) {
  const int ho = s.h_out(), wo = s.w_out();
  const long long planes = 1LL * s.n * s.c;
  // Interior columns: ox*stride - pad >= 0 and ox*stride - pad + k <= w.
  const int ox_lo = std::min(wo, (s.pad + s.stride - 1) / s.stride);
  const int ox_hi = std::max(ox_lo, std::min(wo, (s.w + s.pad - s.k) / s.stride + 1));
#pragma omp parallel if (s.x_size() >= kParallelMin)
  {
    std::vector<T> best(wo);
    std::vector<int32_t> best_i(wo);
#pragma omp for schedule(static)
    for (long long pl = 0; pl < planes; ++pl) {
      const T* xp = x + pl * s.h * s.w;
      T* yp = y + pl * ho * wo;
      int32_t* ap = argmax ? argmax + pl * ho * wo : nullptr;
      for (int oy = 0; oy < ho; ++oy) {
        const int y0 = std::max(oy * s.stride - s.pad, 0);
        const int y1 = std::min(oy * s.stride - s.pad + s.k, s.h);
        for (int ox = 0; ox < wo; ++ox) {
          best[ox] = -std::numeric_limits<T>::infinity();
          // PyTorch's start value: the first in-bounds element.
          best_i[ox] = y0 * s.w + std::max(ox * s.stride - s.pad, 0);
        }
        for (int iy = y0; iy < y1; ++iy) {
          const T* row = xp + iy * s.w;
          for (int kx = 0; kx < s.k; ++kx) {
            auto visit = [&](int ox) {
              const int ix = ox * s.stride - s.pad + kx;
              const T v = row[ix];
              const bool take = v > best[ox] || v != v;  // v != v: NaN
              best[ox] = take ? v : best[ox];
              best_i[ox] = take ? iy * s.w + ix : best_i[ox];
            };
            for (int ox = 0; ox < ox_lo; ++ox) {
              const int ix = ox * s.stride - s.pad + kx;
              if (ix >= 0 && ix < s.w) visit(ox);
            }
            if (ap) {
              for (int ox = ox_lo; ox < ox_hi; ++ox) visit(ox);
            } else {  // no argmax: one select less per element
              const int off = kx - s.pad;
              for (int ox = ox_lo; ox < ox_hi; ++ox) {
                const T v = row[ox * s.stride + off];
                best[ox] = (v > best[ox] || v != v) ? v : best[ox];
              }
            }
            for (int ox = ox_hi; ox < wo; ++ox) {
              const int ix = ox * s.stride - s.pad + kx;
              if (ix >= 0 && ix < s.w) visit(ox);
            }
          }
        }
        std::copy(best.begin(), best.end(), yp + oy * wo);
        if (ap) std::copy(best_i.begin(), best_i.end(), ap + oy * wo);
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
