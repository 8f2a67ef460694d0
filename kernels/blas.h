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

// ---- GPU entry points (built only with CUDA; float32, device pointers, row-major) -----------------
// Same contract as the CPU functions above; `stream` is a cudaStream_t (nullptr: default stream).
// Hand-written tiled SGEMM (kernels/cuda/blas.cu, plain FP32 FMAs) and cuBLAS
// (kernels/cudnn/blas.cpp, TF32 only if cudnn::set_matmul_tf32(true)).
namespace halo::kernels::cuda {
void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc, void* stream);
void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b, float* y,
                    void* stream);
void linear_backward(const LinearShape& s, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db, void* stream);
}  // namespace halo::kernels::cuda

namespace halo::kernels::cudnn {
void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc, void* stream);
void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b, float* y,
                    void* stream);
void linear_backward(const LinearShape& s, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db, void* stream);

// The implementation chosen at run time by cudnn::set_gemm_backend.
namespace dispatch {
void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc, void* stream);
void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b, float* y,
                    void* stream);
void linear_backward(const LinearShape& s, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db, void* stream);
}  // namespace dispatch
}  // namespace halo::kernels::cudnn
