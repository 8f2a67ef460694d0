// CPU reference for the dense kernels of kernels/blas.h: a row-major GEMM on Eigen (which blocks
// for the cache and uses OpenMP itself) and the linear layer y = x W^T + b built on it.
#include "kernels/cpu/variant.h"
#include "kernels/blas.h"

#include <Eigen/Core>

namespace halo::kernels::cpu::HALO_CPU_VARIANT {
namespace {

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using ConstMap = Eigen::Map<const RowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <class T>
using MutMap = Eigen::Map<RowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

// C = alpha * A * B + beta * C for already transposed (or not) operand expressions.
template <class T, class A, class B>
void gemm_eigen(const A& a, const B& b, T alpha, T beta, MutMap<T>& c) {
  if (beta == T(0)) {
    c.setZero();  // overwrite, so NaN or Inf already in C does not survive 0 * C
  } else if (beta != T(1)) {
    c *= beta;
  }
  if (a.cols() == 0) return;  // k == 0: op(A) op(B) is the zero matrix
  c.noalias() += alpha * a * b;
}

}  // namespace

// C[m x n] = alpha op(A)[m x k] op(B)[k x n] + beta C, row-major with row strides lda, ldb, ldc.
// Stored A is m x k (k x m when transposed), stored B is k x n (n x k when transposed); a
// transpose is only a change of Eigen's view, no copy. Traffic: ~ (m k + k n) reads per cache
// block pass plus read/write of C; 2 m n k flops.
template <class T>
void gemm(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b,
          int ldb, T beta, T* c, int ldc) {
  if (m <= 0 || n <= 0) return;
  MutMap<T> cm(c, m, n, Eigen::OuterStride<>(ldc));
  const ConstMap<T> am(a, trans_a ? k : m, trans_a ? m : k, Eigen::OuterStride<>(lda));
  const ConstMap<T> bm(b, trans_b ? n : k, trans_b ? k : n, Eigen::OuterStride<>(ldb));
  if (!trans_a && !trans_b) gemm_eigen(am, bm, alpha, beta, cm);
  if (!trans_a && trans_b) gemm_eigen(am, bm.transpose(), alpha, beta, cm);
  if (trans_a && !trans_b) gemm_eigen(am.transpose(), bm, alpha, beta, cm);
  if (trans_a && trans_b) gemm_eigen(am.transpose(), bm.transpose(), alpha, beta, cm);
}

// y[n x out] = x[n x in] W^T + b. Traffic: one GEMM (2 n in out flops) plus a pass over y for b.
template <class T>
void linear_forward(const LinearShape& s, const T* x, const T* w, const T* b, T* y) {
  gemm<T>(false, true, s.n, s.out, s.in, T(1), x, s.in, w, s.in, T(0), y, s.out);
  if (!b) return;
  for (int r = 0; r < s.n; ++r) {
    T* yr = y + 1LL * r * s.out;
    for (int o = 0; o < s.out; ++o) yr[o] += b[o];
  }
}

// dx = dy W [n x in], dw = dy^T x [out x in], db = column sums of dy (double accumulators).
// Traffic: two GEMMs of 2 n in out flops each, one pass over dy for db.
template <class T>
void linear_backward(const LinearShape& s, const T* x, const T* w, const T* dy, T* dx, T* dw,
                     T* db) {
  if (dx) gemm<T>(false, false, s.n, s.in, s.out, T(1), dy, s.out, w, s.in, T(0), dx, s.in);
  if (dw) gemm<T>(true, false, s.out, s.in, s.n, T(1), dy, s.out, x, s.in, T(0), dw, s.in);
  if (db) {
    for (int o = 0; o < s.out; ++o) {
      double acc = 0;
      for (int r = 0; r < s.n; ++r) acc += double(dy[1LL * r * s.out + o]);
      db[o] = T(acc);
    }
  }
}

#define HALO_INSTANTIATE_BLAS(T)                                                                 \
  template void gemm<T>(bool, bool, int, int, int, T, const T*, int, const T*, int, T, T*, int); \
  template void linear_forward<T>(const LinearShape&, const T*, const T*, const T*, T*);         \
  template void linear_backward<T>(const LinearShape&, const T*, const T*, const T*, T*, T*, T*);
HALO_INSTANTIATE_BLAS(float)
HALO_INSTANTIATE_BLAS(double)
#undef HALO_INSTANTIATE_BLAS

}  // namespace halo::kernels::cpu::HALO_CPU_VARIANT
