// Reference 2-D convolution on the CPU: plain loops written straight from the definition in
// kernels/conv.h. Slow on purpose and easy to check by eye; the fast paths in conv.cpp (and the
// CUDA/cuDNN ones) are tested against these.
#include <algorithm>

#include "kernels/conv.h"

namespace halo::kernels::cpu {

// y[n,co,oy,ox] = b[co] + sum_{ci,ky,kx} w[co,ci,ky,kx] * x[n, g*Cg+ci, oy*s-p+ky, ox*s-p+kx],
// g = co / (C_out/groups), taps that fall in the zero padding contribute nothing.
// Cost: s.macs() multiply-adds, no extra memory.
template <class T>
void conv2d_forward_reference(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  const int ho = s.h_out(), wo = s.w_out(), cin_g = s.c_in_per_group(),
            cout_g = s.c_out_per_group();
  for (int n = 0; n < s.n; ++n)
    for (int co = 0; co < s.c_out; ++co) {
      const int g = co / cout_g;
      for (int oy = 0; oy < ho; ++oy)
        for (int ox = 0; ox < wo; ++ox) {
          T acc = bias ? bias[co] : T(0);
          for (int ci = 0; ci < cin_g; ++ci)
            for (int ky = 0; ky < s.kh; ++ky)
              for (int kx = 0; kx < s.kw; ++kx) {
                const int iy = oy * s.stride - s.pad + ky, ix = ox * s.stride - s.pad + kx;
                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                const T xv = x[((1LL * n * s.c_in + g * cin_g + ci) * s.h + iy) * s.w + ix];
                const T wv = w[((1LL * co * cin_g + ci) * s.kh + ky) * s.kw + kx];
                acc += wv * xv;
              }
          y[((1LL * n * s.c_out + co) * ho + oy) * wo + ox] = acc;
        }
    }
}

// dx[n,c,iy,ix] = sum over every (co, oy, ox, ky, kx) whose tap lands on (iy, ix) of
// w[co, c - g*Cg, ky, kx] * dy[n,co,oy,ox]. Written as the forward loop with the update reversed.
// Cost: s.macs() multiply-adds.
template <class T>
void conv2d_backward_data_reference(const Conv2dShape& s, const T* dy, const T* w, T* dx) {
  const int ho = s.h_out(), wo = s.w_out(), cin_g = s.c_in_per_group(),
            cout_g = s.c_out_per_group();
  std::fill(dx, dx + s.x_size(), T(0));
  for (int n = 0; n < s.n; ++n)
    for (int co = 0; co < s.c_out; ++co) {
      const int g = co / cout_g;
      for (int oy = 0; oy < ho; ++oy)
        for (int ox = 0; ox < wo; ++ox) {
          const T d = dy[((1LL * n * s.c_out + co) * ho + oy) * wo + ox];
          for (int ci = 0; ci < cin_g; ++ci)
            for (int ky = 0; ky < s.kh; ++ky)
              for (int kx = 0; kx < s.kw; ++kx) {
                const int iy = oy * s.stride - s.pad + ky, ix = ox * s.stride - s.pad + kx;
                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                dx[((1LL * n * s.c_in + g * cin_g + ci) * s.h + iy) * s.w + ix] +=
                    w[((1LL * co * cin_g + ci) * s.kh + ky) * s.kw + kx] * d;
              }
        }
    }
}

// dw[co,ci,ky,kx] = sum_{n,oy,ox} dy[n,co,oy,ox] * x[n, g*Cg+ci, oy*s-p+ky, ox*s-p+kx].
// Cost: s.macs() multiply-adds.
template <class T>
void conv2d_backward_weight_reference(const Conv2dShape& s, const T* x, const T* dy, T* dw) {
  const int ho = s.h_out(), wo = s.w_out(), cin_g = s.c_in_per_group(),
            cout_g = s.c_out_per_group();
  for (int co = 0; co < s.c_out; ++co) {
    const int g = co / cout_g;
    for (int ci = 0; ci < cin_g; ++ci)
      for (int ky = 0; ky < s.kh; ++ky)
        for (int kx = 0; kx < s.kw; ++kx) {
          T acc = 0;
          for (int n = 0; n < s.n; ++n)
            for (int oy = 0; oy < ho; ++oy)
              for (int ox = 0; ox < wo; ++ox) {
                const int iy = oy * s.stride - s.pad + ky, ix = ox * s.stride - s.pad + kx;
                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                acc += dy[((1LL * n * s.c_out + co) * ho + oy) * wo + ox] *
                       x[((1LL * n * s.c_in + g * cin_g + ci) * s.h + iy) * s.w + ix];
              }
          dw[((1LL * co * cin_g + ci) * s.kh + ky) * s.kw + kx] = acc;
        }
  }
}

#define HALO_INSTANTIATE_CONV_REFERENCE(T)                                                         \
  template void conv2d_forward_reference<T>(const Conv2dShape&, const T*, const T*, const T*, T*); \
  template void conv2d_backward_data_reference<T>(const Conv2dShape&, const T*, const T*, T*);     \
  template void conv2d_backward_weight_reference<T>(const Conv2dShape&, const T*, const T*, T*);
HALO_INSTANTIATE_CONV_REFERENCE(float)
HALO_INSTANTIATE_CONV_REFERENCE(double)
#undef HALO_INSTANTIATE_CONV_REFERENCE

}  // namespace halo::kernels::cpu
