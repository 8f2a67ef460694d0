// CPU reference for the elementwise kernels of kernels/elementwise.h: fill, add, axpy, scale, mul
// and the per-channel multiply of ConvNeXt's layer scale. All are memory-bound streaming loops.
#include "kernels/cpu/variant.h"
#include "kernels/elementwise.h"

namespace halo::kernels::cpu::HALO_CPU_VARIANT {
namespace {
// Below this many elements a parallel region costs more than it saves.
constexpr std::size_t kParallelMin = 1 << 15;
}  // namespace

// y = value. Traffic: write y.
template <class T>
void fill(std::size_t n, T value, T* y) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (std::size_t i = 0; i < n; ++i) y[i] = value;
}

// y = a + b. Traffic: read a, b; write y. y may alias a or b.
template <class T>
void add(std::size_t n, const T* a, const T* b, T* y) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (std::size_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

// y += alpha x. Traffic: read x, y; write y.
template <class T>
void axpy(std::size_t n, T alpha, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (std::size_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

// y = alpha x. Traffic: read x; write y. y may alias x.
template <class T>
void scale(std::size_t n, T alpha, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (std::size_t i = 0; i < n; ++i) y[i] = alpha * x[i];
}

// y = a * b. Traffic: read a, b; write y. y may alias a or b.
template <class T>
void mul(std::size_t n, const T* a, const T* b, T* y) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (std::size_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}

// y[o, c, p] = x[o, c, p] * s[c]. Traffic: read x, write y (s is tiny).
template <class T>
void mul_channel_forward(int outer, int c, int inner, const T* x, const T* s, T* y) {
  const long long total = 1LL * outer * c * inner;
#pragma omp parallel for collapse(2) schedule(static) if (total >= (long long)kParallelMin)
  for (int o = 0; o < outer; ++o) {
    for (int ch = 0; ch < c; ++ch) {
      const long long base = (1LL * o * c + ch) * inner;
      const T sc = s[ch];
      for (int p = 0; p < inner; ++p) y[base + p] = x[base + p] * sc;
    }
  }
}

// dx = dy * s[c]; ds[c] = sum_{o, p} dy * x, accumulated in double.
// Traffic: dx reads dy, writes dx; ds reads dy and x.
template <class T>
void mul_channel_backward(int outer, int c, int inner, const T* x, const T* s, const T* dy, T* dx,
                          T* ds) {
  const long long total = 1LL * outer * c * inner;
  if (dx) mul_channel_forward(outer, c, inner, dy, s, dx);
  if (!ds) return;
#pragma omp parallel for schedule(static) if (total >= (long long)kParallelMin)
  for (int ch = 0; ch < c; ++ch) {
    double acc = 0;
    for (int o = 0; o < outer; ++o) {
      const long long base = (1LL * o * c + ch) * inner;
      for (int p = 0; p < inner; ++p) acc += double(dy[base + p]) * double(x[base + p]);
    }
    ds[ch] = T(acc);
  }
}

#define HALO_INSTANTIATE_ELEMENTWISE(T)                                        \
  template void fill<T>(std::size_t, T, T*);                                   \
  template void add<T>(std::size_t, const T*, const T*, T*);                   \
  template void axpy<T>(std::size_t, T, const T*, T*);                         \
  template void scale<T>(std::size_t, T, const T*, T*);                        \
  template void mul<T>(std::size_t, const T*, const T*, T*);                   \
  template void mul_channel_forward<T>(int, int, int, const T*, const T*, T*); \
  template void mul_channel_backward<T>(int, int, int, const T*, const T*, const T*, T*, T*);
HALO_INSTANTIATE_ELEMENTWISE(float)
HALO_INSTANTIATE_ELEMENTWISE(double)
#undef HALO_INSTANTIATE_ELEMENTWISE

}  // namespace halo::kernels::cpu::HALO_CPU_VARIANT
