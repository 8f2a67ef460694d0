// Dense linear algebra: a row-major GEMM (Eigen on the CPU, cuBLAS on the GPU) and the linear
// layer built on it, y = x W^T + b as in PyTorch's nn.Linear.
#pragma once

namespace halo::kernels {

struct LinearShape {
  int n = 1;       // rows (batch)
  int in = 1;      // input features
  int out = 1;     // output features
};

namespace cpu {
// C[m x n] = alpha * op(A) * op(B) + beta * C, all row-major; op(X) = X or X^T.
// lda/ldb/ldc are row strides. beta == 0 overwrites C (even if it held NaN).
template <class T>
void gemm(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda,
          const T* b, int ldb, T beta, T* c, int ldc);

// x: [n, in], w: [out, in], b: [out] or nullptr, y: [n, out]
template <class T>
void linear_forward(const LinearShape& s, const T* x, const T* w, const T* b, T* y);
// dx = dy W (nullable), dw = dy^T x (nullable), db = sum_rows dy (nullable). Overwritten.
template <class T>
void linear_backward(const LinearShape& s, const T* x, const T* w, const T* dy, T* dx, T* dw,
                     T* db);
}  // namespace cpu

}  // namespace halo::kernels
