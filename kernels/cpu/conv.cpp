// Fast CPU 2-D convolution: im2col + Eigen GEMM (multi-threaded through OpenMP) for dense and
// grouped convolutions, a plain GEMM for 1x1 stride-1 convolutions, and a direct OpenMP loop for
// depthwise convolutions (ConvNeXt's 7x7). The maths is in kernels/conv.h; the loops that define it
// are in conv_reference.cpp.
#include "kernels/cpu/variant.h"
#include "kernels/conv.h"

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace halo::kernels::cpu::HALO_CPU_VARIANT {
namespace {

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MatMap = Eigen::Map<RowMat<T>>;
template <class T>
using ConstMatMap = Eigen::Map<const RowMat<T>>;
using Idx = long long;

// Images are grouped into chunks so that one GEMM sees about kTargetColumns columns
// (nb * H_out * W_out): a wide GEMM amortises the packing of the weights, which matters for the
// small late-stage feature maps (5x5, 10x10), while a chunk of one image lets im2col's output and
// the result be used in place. The im2col buffer of a chunk stays below kColCap elements.
constexpr Idx kTargetColumns = 1024;
constexpr Idx kColCap = Idx(1) << 21;

void check_shape(const Conv2dShape& s, const char* fn) {
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument(
        std::string("kernels/cpu/conv.cpp: ") + fn + ": " + what + " (n=" + std::to_string(s.n) +
        " c_in=" + std::to_string(s.c_in) + " h=" + std::to_string(s.h) + " w=" +
        std::to_string(s.w) + " c_out=" + std::to_string(s.c_out) + " kh=" + std::to_string(s.kh) +
        " kw=" + std::to_string(s.kw) + " stride=" + std::to_string(s.stride) +
        " pad=" + std::to_string(s.pad) + " groups=" + std::to_string(s.groups) + ")");
  };
  if (s.n < 1 || s.c_in < 1 || s.h < 1 || s.w < 1 || s.c_out < 1 || s.kh < 1 || s.kw < 1)
    fail("every size must be >= 1");
  if (s.stride < 1) fail("stride must be >= 1");
  if (s.pad < 0) fail("pad must be >= 0");
  if (s.groups < 1 || s.c_in % s.groups != 0 || s.c_out % s.groups != 0)
    fail("groups must divide c_in and c_out");
  if (s.h + 2 * s.pad < s.kh || s.w + 2 * s.pad < s.kw) fail("kernel larger than the padded input");
}

// One reusable buffer per (thread, slot, type): grows to the largest size asked for, never shrinks.
template <class T>
T* scratch(int slot, Idx size) {
  thread_local std::vector<T> buffers[3];
  std::vector<T>& b = buffers[slot];
  if (Idx(b.size()) < size) {
    b = std::vector<T>();
    b.resize(size);
  }
  return b.data();
}

// How the GEMM paths split the work. The GEMM of group g over a chunk of nb images is
//   Y_g[Cout_g x nb*P] = W_g[Cout_g x K] * Col[K x nb*P],  K = Cin_g*kh*kw, P = H_out*W_out.
// With at least as many images as threads, each thread takes whole chunks and runs im2col and a
// single-threaded GEMM on them (no synchronisation inside a GEMM, which matters on a small shared
// machine where a thread may be descheduled); with fewer images, chunks run one after the other
// and Eigen's GEMM and our im2col loops use all threads.
struct Plan {
  int ho, wo, cin_g, cout_g;
  Idx P, K;
  bool pointwise;      // 1x1, stride 1, pad 0: Col is x itself
  int nb;              // images per chunk (at most)
  int threads;         // OpenMP threads available to this call
  bool chunk_threads;  // true: threads take chunks; false: threads work inside each chunk
};

Plan make_plan(const Conv2dShape& s) {
  Plan p;
  p.ho = s.h_out();
  p.wo = s.w_out();
  p.cin_g = s.c_in_per_group();
  p.cout_g = s.c_out_per_group();
  p.P = Idx(p.ho) * p.wo;
  p.K = Idx(p.cin_g) * s.kh * s.kw;
  p.pointwise = s.kh == 1 && s.kw == 1 && s.stride == 1 && s.pad == 0;
  p.threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  p.chunk_threads = p.threads > 1 && s.n >= p.threads;
  // Images one thread handles: all of them, or its share of the batch.
  const int share = p.chunk_threads ? (s.n + p.threads - 1) / p.threads : s.n;
  const Idx want = (kTargetColumns + p.P - 1) / p.P;
  const Idx fits = kColCap / std::max<Idx>(1, p.K * p.P);
  p.nb = int(std::clamp<Idx>(std::min(want, fits), 1, share));
  // Equal chunks: e.g. 8 images with nb = 3 become 3 + 3 + 2, not 3 + 3 + 1 + 1.
  const int chunks = (share + p.nb - 1) / p.nb;
  p.nb = (share + chunks - 1) / chunks;
  return p;
}

// Runs body(n0, nb, first) over chunks of the batch. With p.chunk_threads, thread t of T takes the
// images [n*t/T, n*(t+1)/T) in chunks of at most p.nb, and `first` marks its first chunk;
// otherwise the chunks run in order on the calling thread (first marks chunk 0).
template <class F>
void for_each_chunk(const Conv2dShape& s, const Plan& p, F&& body) {
  if (!p.chunk_threads) {
    for (int n0 = 0; n0 < s.n; n0 += p.nb) body(n0, std::min(p.nb, s.n - n0), n0 == 0);
    return;
  }
#pragma omp parallel num_threads(p.threads)
  {
    const int t = omp_get_thread_num(), team = omp_get_num_threads();
    const int begin = int(Idx(s.n) * t / team), end = int(Idx(s.n) * (t + 1) / team);
    for (int n0 = begin; n0 < end; n0 += p.nb) body(n0, std::min(p.nb, end - n0), n0 == begin);
  }
}

// Depthwise-like: one input channel per group, handled by the direct loops below.
bool use_direct(const Conv2dShape& s) {
  return s.c_in_per_group() == 1 && s.groups > 1;
}

// Range [lo, hi) of output columns ox whose tap kx lands inside the input row:
// 0 <= ox*stride - pad + kx < w.
inline void valid_range(int kx, int stride, int pad, int w, int wo, int& lo, int& hi) {
  const int a = pad - kx;  // need ox*stride >= a
  lo = a > 0 ? (a + stride - 1) / stride : 0;
  const int b = w - 1 + pad - kx;  // need ox*stride <= b
  hi = b >= 0 ? b / stride + 1 : 0;
  lo = std::min(lo, wo);
  hi = std::clamp(hi, lo, wo);
}

// im2col of group g for images n0 .. n0+nb-1:
//   col[(ci*kh + ky)*kw + kx, i*P + oy*W_out + ox] = x[n0+i, g*Cin_g + ci, oy*s-p+ky, ox*s-p+kx]
// (0 in the padding). Writes K * nb * P values; each x value is read kh*kw/stride^2 times.
template <class T>
void im2col(const Conv2dShape& s, const Plan& p, const T* x, int n0, int nb, int g, T* col) {
  const Idx ld = Idx(nb) * p.P;
  const int rows = int(p.K), khw = s.kh * s.kw;
#pragma omp parallel for collapse(2) schedule(static) if (!p.chunk_threads)
  for (int i = 0; i < nb; ++i)
    for (int r = 0; r < rows; ++r) {
      const int ci = r / khw, ky = (r / s.kw) % s.kh, kx = r % s.kw;
      const T* xp = x + ((Idx(n0) + i) * s.c_in + Idx(g) * p.cin_g + ci) * s.h * s.w;
      T* dst = col + r * ld + i * p.P;
      int lo, hi;
      valid_range(kx, s.stride, s.pad, s.w, p.wo, lo, hi);
      for (int oy = 0; oy < p.ho; ++oy) {
        T* d = dst + Idx(oy) * p.wo;
        const int iy = oy * s.stride - s.pad + ky;
        if (iy < 0 || iy >= s.h) {
          std::fill(d, d + p.wo, T(0));
          continue;
        }
        const T* src = xp + Idx(iy) * s.w - s.pad + kx;  // src[ox*stride] = x[iy, ox*s - p + kx]
        std::fill(d, d + lo, T(0));
        if (s.stride == 1) {
          std::copy(src + lo, src + hi, d + lo);
        } else {
          for (int ox = lo; ox < hi; ++ox) d[ox] = src[Idx(ox) * s.stride];
        }
        std::fill(d + hi, d + p.wo, T(0));
      }
    }
}

// col2im, the adjoint of im2col: dx[n0+i, g*Cin_g + ci, iy, ix] = sum of the col entries that
// im2col copied from (iy, ix). Overwrites the dx planes of this group and chunk. Parallel over
// (image, channel) planes, so no two threads touch the same dx value.
template <class T>
void col2im(const Conv2dShape& s, const Plan& p, const T* col, int n0, int nb, int g, T* dx) {
  const Idx ld = Idx(nb) * p.P;
#pragma omp parallel for collapse(2) schedule(static) if (!p.chunk_threads)
  for (int i = 0; i < nb; ++i)
    for (int ci = 0; ci < p.cin_g; ++ci) {
      T* xp = dx + ((Idx(n0) + i) * s.c_in + Idx(g) * p.cin_g + ci) * s.h * s.w;
      std::fill(xp, xp + Idx(s.h) * s.w, T(0));
      for (int ky = 0; ky < s.kh; ++ky)
        for (int kx = 0; kx < s.kw; ++kx) {
          const Idx r = (Idx(ci) * s.kh + ky) * s.kw + kx;
          const T* src = col + r * ld + i * p.P;
          int lo, hi;
          valid_range(kx, s.stride, s.pad, s.w, p.wo, lo, hi);
          for (int oy = 0; oy < p.ho; ++oy) {
            const int iy = oy * s.stride - s.pad + ky;
            if (iy < 0 || iy >= s.h) continue;
            const T* sr = src + Idx(oy) * p.wo;
            T* d = xp + Idx(iy) * s.w - s.pad + kx;
            if (s.stride == 1) {
              for (int ox = lo; ox < hi; ++ox) d[ox] += sr[ox];
            } else {
              for (int ox = lo; ox < hi; ++ox) d[Idx(ox) * s.stride] += sr[ox];
            }
          }
        }
    }
}

// Moves rows between the chunk matrix tmp[rows x nb*P] (images side by side) and the NCHW
// tensor t[n0+i, c0 + c, :] (t has `channels` channels). to_tensor: tmp -> t, otherwise t -> tmp.
template <class T>
void chunk_copy(const Plan& p, int channels, int rows, int n0, int nb, int c0, T* tmp, T* t,
                bool to_tensor) {
  const Idx ld = Idx(nb) * p.P;
#pragma omp parallel for collapse(2) schedule(static) if (!p.chunk_threads)
  for (int i = 0; i < nb; ++i)
    for (int c = 0; c < rows; ++c) {
      T* a = tmp + c * ld + i * p.P;
      T* b = t + ((Idx(n0) + i) * channels + c0 + c) * p.P;
      if (to_tensor)
        std::copy(a, a + p.P, b);
      else
        std::copy(b, b + p.P, a);
    }
}

// Col for group g of a chunk: x itself for a 1x1 stride-1 convolution of one image, else im2col
// into the calling thread's buffer.
template <class T>
const T* chunk_cols(const Conv2dShape& s, const Plan& p, const T* x, int n0, int nb, int g) {
  if (p.pointwise && nb == 1) return x + (Idx(n0) * s.c_in + Idx(g) * p.cin_g) * p.P;
  T* col = scratch<T>(0, p.K * nb * p.P);
  im2col(s, p, x, n0, nb, g, col);
  return col;
}

// dY_g of a chunk as a [Cout_g x nb*P] matrix: in place for one image, else gathered.
template <class T>
const T* chunk_dy(const Conv2dShape& s, const Plan& p, const T* dy, int n0, int nb, int g) {
  if (nb == 1) return dy + (Idx(n0) * s.c_out + Idx(g) * p.cout_g) * p.P;
  T* tmp = scratch<T>(1, Idx(p.cout_g) * nb * p.P);
  chunk_copy(p, s.c_out, p.cout_g, n0, nb, g * p.cout_g, tmp, const_cast<T*>(dy), false);
  return tmp;
}

// ---- depthwise (one input channel per group): direct loops ------------------------------------
// Each output plane (n, co) reads one input plane, c = co / (C_out/groups). The input plane is
// copied into a zero-padded buffer once, so the inner loops have no bounds checks.
//
// Stride 1 uses a "wide row" layout: with the padded plane xp of row stride wp = W + 2p read as one
// flat array, y[oy, ox] = sum_{ky,kx} w[ky,kx] * xp[(oy+ky)*wp + ox + kx] is, for the flat index
// j = oy*wp + ox, ext[j] = sum_{ky,kx} w[ky,kx] * xp[j + ky*wp + kx]: kh*kw long contiguous
// axpys over j in [0, H_out*wp), which vectorise well even for 4x4 planes. The columns
// ox >= W_out of ext are garbage (they wrap into the next row) and are dropped when copying out;
// that costs (wp - W_out)/W_out extra work. Other strides use plain per-row loops.

// Zero-padded copy of an h x w plane: pad_y rows above and below, pad_x columns left and right,
// plus `tail` zeros after the last row (wide-row reads run up to kw-1 elements past the end).
template <class T>
void pad_plane(const T* src, int h, int w, int pad_y, int pad_x, int tail, T* dst) {
  const Idx wp = w + 2 * pad_x;
  std::fill(dst, dst + Idx(h + 2 * pad_y) * wp + tail, T(0));
  for (int y = 0; y < h; ++y)
    std::copy(src + Idx(y) * w, src + Idx(y + 1) * w, dst + Idx(y + pad_y) * wp + pad_x);
}

// out[j] += sum_{kx < kw} wr[kx] * in[j + kx] for j in [0, len). KW > 0 fixes kw at compile time
// so the kx loop unrolls and the j loop vectorises with the taps held in registers.
template <int KW, class T>
void taps_row(T* __restrict out, const T* __restrict in, const T* wr, int kw, Idx len) {
  if constexpr (KW > 0) {
    T wv[KW];
    for (int kx = 0; kx < KW; ++kx) wv[kx] = wr[kx];
    for (Idx j = 0; j < len; ++j) {
      T a = out[j];
      for (int kx = 0; kx < KW; ++kx) a += wv[kx] * in[j + kx];
      out[j] = a;
    }
  } else {
    for (int kx = 0; kx < kw; ++kx) {
      const T wv = wr[kx];
      const T* __restrict src = in + kx;
      for (Idx j = 0; j < len; ++j) out[j] += wv * src[j];
    }
  }
}

// ext[j] += sum_{ky,kx} k[ky,kx] * xp[j + ky*wp + kx], j in [0, rows*wp): the wide-row correlation.
template <class T>
void correlate_wide(const T* xp, Idx wp, const T* k, int kh, int kw, int rows, T* ext) {
  const Idx len = Idx(rows) * wp;
  for (int ky = 0; ky < kh; ++ky) {
    const T* in = xp + Idx(ky) * wp;
    const T* wr = k + Idx(ky) * kw;
    switch (kw) {
      case 3:
        taps_row<3>(ext, in, wr, kw, len);
        break;
      case 5:
        taps_row<5>(ext, in, wr, kw, len);
        break;
      case 7:
        taps_row<7>(ext, in, wr, kw, len);
        break;
      default:
        taps_row<0>(ext, in, wr, kw, len);
        break;
    }
  }
}

// out[kx] += sum_{j < len} d[j] * in[j + kx] for kx < kw: kw dot products sharing d. Each tap
// keeps one SIMD register of partial sums (GCC/Clang vector extension: GCC does not vectorise a
// floating-point reduction by itself without -ffast-math, and a plain array of partial sums ends up
// in memory), added up at the end.
#if defined(__AVX__)
constexpr int kSimdBytes = 32;
#else
constexpr int kSimdBytes = 16;
#endif

template <int KW, class T>
void taps_dot(const T* __restrict d, const T* __restrict in, int kw, Idx len, T* out) {
  if constexpr (KW > 0) {
    constexpr int V = kSimdBytes / int(sizeof(T));
    typedef T Vec __attribute__((vector_size(kSimdBytes)));
    Vec acc[KW];
    for (int kx = 0; kx < KW; ++kx) acc[kx] = Vec{};
    Idx j = 0;
    for (; j + V <= len; j += V) {
      Vec dv;
      std::memcpy(&dv, d + j, sizeof(Vec));
      for (int kx = 0; kx < KW; ++kx) {
        Vec iv;
        std::memcpy(&iv, in + j + kx, sizeof(Vec));
        acc[kx] += dv * iv;
      }
    }
    for (int kx = 0; kx < KW; ++kx) {
      T sum = 0;
      for (int v = 0; v < V; ++v) sum += acc[kx][v];
      for (Idx t = j; t < len; ++t) sum += d[t] * in[t + kx];
      out[kx] += sum;
    }
  } else {
    using Col = Eigen::Matrix<T, Eigen::Dynamic, 1>;
    Eigen::Map<const Col> dv(d, len);
    for (int kx = 0; kx < kw; ++kx) out[kx] += dv.dot(Eigen::Map<const Col>(in + kx, len));
  }
}

// Copies the first `cols` columns of each of `rows` rows of stride `ld` into a dense plane.
template <class T>
void crop_rows(const T* src, Idx ld, int rows, int cols, T* dst) {
  for (int r = 0; r < rows; ++r) std::copy(src + r * ld, src + r * ld + cols, dst + Idx(r) * cols);
}

// y[n,co] = b[co] + sum_{ky,kx} w[co,ky,kx] * xpad[oy*s+ky, ox*s+kx].
// Cost: n*C_out*H_out*W_out*kh*kw MACs (times wp/W_out at stride 1); memory per thread: one padded
// plane and one H_out x wp row buffer.
template <class T>
void depthwise_forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  const int ho = s.h_out(), wo = s.w_out(), cout_g = s.c_out_per_group(), st = s.stride;
  const int hp = s.h + 2 * s.pad, wp = s.w + 2 * s.pad;
#pragma omp parallel for schedule(static)
  for (Idx plane = 0; plane < Idx(s.n) * s.c_out; ++plane) {
    const Idx n = plane / s.c_out;
    const int co = int(plane % s.c_out), c = co / cout_g;
    T* xp = scratch<T>(0, Idx(hp) * wp + s.kw);
    pad_plane(x + (n * s.c_in + c) * s.h * s.w, s.h, s.w, s.pad, s.pad, s.kw, xp);
    const T* wk = w + Idx(co) * s.kh * s.kw;
    const T b = bias ? bias[co] : T(0);
    T* yp = y + plane * ho * wo;
    if (st == 1) {
      T* ext = scratch<T>(1, Idx(ho) * wp);
      std::fill(ext, ext + Idx(ho) * wp, b);
      correlate_wide(xp, wp, wk, s.kh, s.kw, ho, ext);
      crop_rows(ext, wp, ho, wo, yp);
      continue;
    }
    std::fill(yp, yp + Idx(ho) * wo, b);
    for (int oy = 0; oy < ho; ++oy) {
      T* __restrict yr = yp + Idx(oy) * wo;
      for (int ky = 0; ky < s.kh; ++ky) {
        const T* xr = xp + Idx(oy * st + ky) * wp;
        for (int kx = 0; kx < s.kw; ++kx) {
          const T wv = wk[ky * s.kw + kx];
          const T* __restrict xs = xr + kx;
          for (int ox = 0; ox < wo; ++ox) yr[ox] += wv * xs[Idx(ox) * st];
        }
      }
    }
  }
}

// dx[n,c] = sum over the co of group c of the transposed convolution of dy[n,co] with w[co].
// Stride 1 with pad <= k-1: a wide-row correlation of dy zero-padded by (k-1-pad) with the
// flipped kernel, w[kh-1-ky, kw-1-kx]. Otherwise: dxpad[oy*s+ky, ox*s+kx] += w[co,ky,kx] *
// dy[n,co,oy,ox], then crop. Cost: the forward's MACs; one padded plane and one row buffer per
// thread.
template <class T>
void depthwise_backward_data(const Conv2dShape& s, const T* dy, const T* w, T* dx) {
  const int ho = s.h_out(), wo = s.w_out(), cout_g = s.c_out_per_group(), st = s.stride;
  const int hp = s.h + 2 * s.pad, wp = s.w + 2 * s.pad, khw = s.kh * s.kw;
  const int qy = s.kh - 1 - s.pad, qx = s.kw - 1 - s.pad;  // padding of dy for the gather form
  const bool wide = st == 1 && qy >= 0 && qx >= 0;
#pragma omp parallel for schedule(static)
  for (Idx plane = 0; plane < Idx(s.n) * s.c_in; ++plane) {
    const Idx n = plane / s.c_in;
    const int c = int(plane % s.c_in);
    T* dxp = dx + plane * s.h * s.w;
    if (wide) {
      const Idx wq = wo + 2 * qx;  // row stride of padded dy; its correlation has s.h rows
      T* dyp = scratch<T>(0, Idx(ho + 2 * qy) * wq + s.kw);
      T* ext = scratch<T>(1, Idx(s.h) * wq);
      T* flipped = scratch<T>(2, khw);
      std::fill(ext, ext + Idx(s.h) * wq, T(0));
      for (int co = c * cout_g; co < (c + 1) * cout_g; ++co) {
        const T* wk = w + Idx(co) * khw;
        for (int k = 0; k < khw; ++k) flipped[k] = wk[khw - 1 - k];
        pad_plane(dy + (n * s.c_out + co) * ho * wo, ho, wo, qy, qx, s.kw, dyp);
        correlate_wide(dyp, wq, flipped, s.kh, s.kw, s.h, ext);
      }
      crop_rows(ext, wq, s.h, s.w, dxp);
      continue;
    }
    T* dp = scratch<T>(0, Idx(hp) * wp);
    std::fill(dp, dp + Idx(hp) * wp, T(0));
    for (int co = c * cout_g; co < (c + 1) * cout_g; ++co) {
      const T* wk = w + Idx(co) * khw;
      const T* dyp = dy + (n * s.c_out + co) * ho * wo;
      for (int oy = 0; oy < ho; ++oy) {
        const T* __restrict dr = dyp + Idx(oy) * wo;
        for (int ky = 0; ky < s.kh; ++ky) {
          T* xr = dp + Idx(oy * st + ky) * wp;
          for (int kx = 0; kx < s.kw; ++kx) {
            const T wv = wk[ky * s.kw + kx];
            T* __restrict xs = xr + kx;
            for (int ox = 0; ox < wo; ++ox) xs[Idx(ox) * st] += wv * dr[ox];
          }
        }
      }
    }
    crop_rows(dp + Idx(s.pad) * wp + s.pad, wp, s.h, s.w, dxp);
  }
}

// dw[co,ky,kx] = sum_{n,oy,ox} dy[n,co,oy,ox] * xpad[n,c, oy*s+ky, ox*s+kx]. Parallel over co.
// Stride 1: with dy spread to row stride wp (zeros in columns >= W_out), each tap is one long dot
// product, dw[ky,kx] += dot(dyext, xp + ky*wp + kx) over H_out*wp entries (taps_dot).
// Other strides: acc[ky,kx][ox] collects the sum over (n, oy) lane by lane (vectorisable, where a
// scalar dot would not vectorise without -ffast-math) and is reduced over ox at the end.
// Cost: the forward's MACs; memory per thread: a padded plane and H_out*wp (or kh*kw*W_out) values.
template <class T>
void depthwise_backward_weight(const Conv2dShape& s, const T* x, const T* dy, T* dw) {
  const int ho = s.h_out(), wo = s.w_out(), cout_g = s.c_out_per_group(), st = s.stride;
  const int hp = s.h + 2 * s.pad, wp = s.w + 2 * s.pad, khw = s.kh * s.kw;
#pragma omp parallel for schedule(static)
  for (int co = 0; co < s.c_out; ++co) {
    const int c = co / cout_g;
    T* xp = scratch<T>(0, Idx(hp) * wp + s.kw);
    T* dwc = dw + Idx(co) * khw;
    if (st == 1) {
      const Idx len = Idx(ho) * wp;
      T* dyext = scratch<T>(1, len);
      std::fill(dyext, dyext + len, T(0));  // columns >= W_out stay 0
      std::fill(dwc, dwc + khw, T(0));
      for (int n = 0; n < s.n; ++n) {
        pad_plane(x + (Idx(n) * s.c_in + c) * s.h * s.w, s.h, s.w, s.pad, s.pad, s.kw, xp);
        const T* dyp = dy + (Idx(n) * s.c_out + co) * ho * wo;
        for (int oy = 0; oy < ho; ++oy)
          std::copy(dyp + Idx(oy) * wo, dyp + Idx(oy + 1) * wo, dyext + Idx(oy) * wp);
        for (int ky = 0; ky < s.kh; ++ky) {
          const T* in = xp + Idx(ky) * wp;
          T* out = dwc + ky * s.kw;
          switch (s.kw) {
            case 3:
              taps_dot<3>(dyext, in, s.kw, len, out);
              break;
            case 5:
              taps_dot<5>(dyext, in, s.kw, len, out);
              break;
            case 7:
              taps_dot<7>(dyext, in, s.kw, len, out);
              break;
            default:
              taps_dot<0>(dyext, in, s.kw, len, out);
              break;
          }
        }
      }
      continue;
    }
    T* acc = scratch<T>(1, Idx(khw) * wo);
    std::fill(acc, acc + Idx(khw) * wo, T(0));
    for (int n = 0; n < s.n; ++n) {
      pad_plane(x + (Idx(n) * s.c_in + c) * s.h * s.w, s.h, s.w, s.pad, s.pad, 0, xp);
      const T* dyp = dy + (Idx(n) * s.c_out + co) * ho * wo;
      for (int oy = 0; oy < ho; ++oy) {
        const T* __restrict dr = dyp + Idx(oy) * wo;
        for (int ky = 0; ky < s.kh; ++ky) {
          const T* xr = xp + Idx(oy * st + ky) * wp;
          for (int kx = 0; kx < s.kw; ++kx) {
            T* __restrict a = acc + Idx(ky * s.kw + kx) * wo;
            const T* __restrict xs = xr + kx;
            for (int ox = 0; ox < wo; ++ox) a[ox] += dr[ox] * xs[Idx(ox) * st];
          }
        }
      }
    }
    for (int k = 0; k < khw; ++k) {
      T sum = 0;
      for (int ox = 0; ox < wo; ++ox) sum += acc[Idx(k) * wo + ox];
      dwc[k] = sum;
    }
  }
}

}  // namespace

// Forward. GEMM path: for each chunk of nb images and each group g,
//   Y_g[Cout_g x nb*P] = W_g[Cout_g x K] * im2col(x)[K x nb*P]  (+ bias),
// 2 * macs() FLOPs in Eigen's GEMM plus K*nb*P writes for im2col (skipped for a 1x1 stride-1
// convolution of a single image, where im2col(x) is x). Memory per thread: a col buffer and an
// output chunk buffer of at most ~kColCap elements each. Depthwise: see depthwise_forward.
template <class T>
void conv2d_forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  check_shape(s, "conv2d_forward");
  if (use_direct(s)) return depthwise_forward(s, x, w, bias, y);
  const Plan p = make_plan(s);
  for_each_chunk(s, p, [&](int n0, int nb, bool) {
    const Idx ld = Idx(nb) * p.P;
    for (int g = 0; g < s.groups; ++g) {
      ConstMatMap<T> W(w + Idx(g) * p.cout_g * p.K, p.cout_g, p.K);
      ConstMatMap<T> C(chunk_cols(s, p, x, n0, nb, g), p.K, ld);
      if (nb == 1) {
        MatMap<T> Y(y + (Idx(n0) * s.c_out + Idx(g) * p.cout_g) * p.P, p.cout_g, p.P);
        Y.noalias() = W * C;
      } else {
        T* tmp = scratch<T>(1, Idx(p.cout_g) * ld);
        MatMap<T> Y(tmp, p.cout_g, ld);
        Y.noalias() = W * C;
        chunk_copy(p, s.c_out, p.cout_g, n0, nb, g * p.cout_g, tmp, y, true);
      }
    }
    if (bias) {
#pragma omp parallel for collapse(2) schedule(static) if (!p.chunk_threads)
      for (int i = n0; i < n0 + nb; ++i)
        for (int co = 0; co < s.c_out; ++co) {
          T* yp = y + (Idx(i) * s.c_out + co) * p.P;
          const T b = bias[co];
          for (Idx k = 0; k < p.P; ++k) yp[k] += b;
        }
    }
  });
}

// Backward-data. GEMM path: dCol[K x nb*P] = W_g^T * dY_g[Cout_g x nb*P], then col2im scatters
// dCol back onto dx (for a 1x1 stride-1 convolution of one image, dx_g = W_g^T dY_g directly).
// 2 * macs() FLOPs plus K*nb*P reads/adds in col2im; same buffers as the forward.
template <class T>
void conv2d_backward_data(const Conv2dShape& s, const T* dy, const T* w, T* dx) {
  check_shape(s, "conv2d_backward_data");
  if (use_direct(s)) return depthwise_backward_data(s, dy, w, dx);
  const Plan p = make_plan(s);
  for_each_chunk(s, p, [&](int n0, int nb, bool) {
    const Idx ld = Idx(nb) * p.P;
    for (int g = 0; g < s.groups; ++g) {
      ConstMatMap<T> W(w + Idx(g) * p.cout_g * p.K, p.cout_g, p.K);
      ConstMatMap<T> DY(chunk_dy(s, p, dy, n0, nb, g), p.cout_g, ld);
      if (p.pointwise && nb == 1) {
        MatMap<T> DX(dx + (Idx(n0) * s.c_in + Idx(g) * p.cin_g) * p.P, p.cin_g, p.P);
        DX.noalias() = W.transpose() * DY;
      } else {
        T* dcol = scratch<T>(0, p.K * ld);
        MatMap<T> DC(dcol, p.K, ld);
        DC.noalias() = W.transpose() * DY;
        col2im(s, p, dcol, n0, nb, g, dx);
      }
    }
  });
}

// Backward-weight. GEMM path: dW_g[Cout_g x K] = sum over chunks of dY_g[Cout_g x nb*P] *
// im2col(x)[K x nb*P]^T. 2 * macs() FLOPs plus the im2col writes. When threads take chunks, each
// sums its chunks into its own copy of dW (w_size() elements per thread) and the copies are added
// at the end in a fixed order, so the result does not depend on timing.
template <class T>
void conv2d_backward_weight(const Conv2dShape& s, const T* x, const T* dy, T* dw) {
  check_shape(s, "conv2d_backward_weight");
  if (use_direct(s)) return depthwise_backward_weight(s, x, dy, dw);
  const Plan p = make_plan(s);
  // dW of one chunk, written (first) or added (later chunks) into acc.
  auto chunk = [&](int n0, int nb, T* acc, bool first) {
    const Idx ld = Idx(nb) * p.P;
    for (int g = 0; g < s.groups; ++g) {
      ConstMatMap<T> C(chunk_cols(s, p, x, n0, nb, g), p.K, ld);
      ConstMatMap<T> DY(chunk_dy(s, p, dy, n0, nb, g), p.cout_g, ld);
      MatMap<T> DW(acc + Idx(g) * p.cout_g * p.K, p.cout_g, p.K);
      if (first)
        DW.noalias() = DY * C.transpose();
      else
        DW.noalias() += DY * C.transpose();
    }
  };
  if (!p.chunk_threads) {
    for_each_chunk(s, p, [&](int n0, int nb, bool first) { chunk(n0, nb, dw, first); });
    return;
  }
  // Each thread sums its chunks into its own buffer; the buffers are then added in thread order.
  std::vector<T*> partial(p.threads, nullptr);
#pragma omp parallel num_threads(p.threads)
  {
    const int t = omp_get_thread_num(), team = omp_get_num_threads();
    T* acc = scratch<T>(2, s.w_size());
    partial[t] = acc;
    const int begin = int(Idx(s.n) * t / team), end = int(Idx(s.n) * (t + 1) / team);
    for (int n0 = begin; n0 < end; n0 += p.nb)
      chunk(n0, std::min(p.nb, end - n0), acc, n0 == begin);
    if (begin == end) std::fill(acc, acc + s.w_size(), T(0));
#pragma omp barrier
#pragma omp for schedule(static)
    for (Idx i = 0; i < s.w_size(); ++i) {
      T sum = partial[0][i];
      for (int u = 1; u < team; ++u) sum += partial[u][i];
      dw[i] = sum;
    }
  }
}

// db[co] = sum_{n,oy,ox} dy[n,co,oy,ox], accumulated in double (for float too: one sum can cover
// ~10^5 terms). Cost: y_size() adds, reads dy once.
template <class T>
void conv2d_backward_bias(const Conv2dShape& s, const T* dy, T* db) {
  check_shape(s, "conv2d_backward_bias");
  const Idx P = Idx(s.h_out()) * s.w_out();
#pragma omp parallel for schedule(static)
  for (int co = 0; co < s.c_out; ++co) {
    // 8 independent partial sums: one running sum is a serial chain of dependent adds that the
    // compiler may not reorder; independent lanes it keeps in a vector register.
    double part[8] = {};
    for (int n = 0; n < s.n; ++n) {
      const T* d = dy + (Idx(n) * s.c_out + co) * P;
      Idx i = 0;
      for (; i + 8 <= P; i += 8)
        for (int j = 0; j < 8; ++j) part[j] += d[i + j];
      for (; i < P; ++i) part[0] += d[i];
    }
    double sum = 0;
    for (double v : part) sum += v;
    db[co] = T(sum);
  }
}

#define HALO_INSTANTIATE_CONV(T)                                                         \
  template void conv2d_forward<T>(const Conv2dShape&, const T*, const T*, const T*, T*); \
  template void conv2d_backward_data<T>(const Conv2dShape&, const T*, const T*, T*);     \
  template void conv2d_backward_weight<T>(const Conv2dShape&, const T*, const T*, T*);   \
  template void conv2d_backward_bias<T>(const Conv2dShape&, const T*, T*);
HALO_INSTANTIATE_CONV(float)
HALO_INSTANTIATE_CONV(double)
#undef HALO_INSTANTIATE_CONV

}  // namespace halo::kernels::cpu::HALO_CPU_VARIANT
