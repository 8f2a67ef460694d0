// cuBLAS GEMM and linear layer (kernels/blas.h, namespace cudnn). Halo's matrices are row-major
// and cuBLAS's column-major; a row-major matrix read column-major is its transpose, so
// C = op(A) op(B) (row-major) is computed as C^T = op(B)^T op(A)^T (column-major): swap the
// operands and the sizes m and n, keep each operand's own transpose flag. TF32 follows
// set_matmul_tf32 (off by default, as PyTorch).
#include "kernels/blas.h"

#include <string>

#include "kernels/cudnn/context.h"
#include "kernels/cudnn/settings.h"

namespace halo::kernels::cudnn {

namespace {
const float kOne = 1.0f, kZero = 0.0f;

void set_math(Context& c) {
  HALO_CUBLAS_CHECK(cublasSetMathMode(
      c.cublas, matmul_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
}

void sgemm(Context& c, bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
           int lda, const float* b, int ldb, float beta, float* cm, int ldc) {
  HALO_CUBLAS_CHECK(cublasSgemm(c.cublas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, ldb, a,
                                lda, &beta, cm, ldc));
}

void check_linear(const LinearShape& s, const char* fn) {
  if (s.n < 1 || s.in < 1 || s.out < 1)
    throw std::invalid_argument(std::string("kernels/cudnn/blas.cpp: ") + fn +
                                ": n, in and out must be >= 1");
}
}  // namespace

// 2 m n k FLOPs.
void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc, void* stream) {
  if (m < 0 || n < 0 || k < 0)
    throw std::invalid_argument("kernels/cudnn/blas.cpp: gemm: negative size");
  if (m == 0 || n == 0) return;
  // k == 0 is just C = beta C (with beta == 0 clearing even NaN); cuBLAS would also reject the
  // lda = 0 such a call may carry, so the hand-written kernel does it.
  if (k == 0)
    return cuda::gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, stream);
  auto lock = lock_library();
  Context& ctx = context(static_cast<cudaStream_t>(stream));
  set_math(ctx);
  sgemm(ctx, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// y = x W^T (SGEMM), then y += 1 b^T as a rank-1 update (SGER on the column-major y^T).
void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b, float* y,
                    void* stream) {
  check_linear(s, "linear_forward");
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  auto lock = lock_library();
  Context& ctx = context(st);
  set_math(ctx);
  sgemm(ctx, false, true, s.n, s.out, s.in, 1.f, x, s.in, w, s.in, 0.f, y, s.out);
  if (b) {
    const float* one = ones(ctx, std::size_t(s.n), st);
    HALO_CUBLAS_CHECK(cublasSger(ctx.cublas, s.out, s.n, &kOne, b, 1, one, 1, y, s.out));
  }
}

// dx = dy W, dw = dy^T x (SGEMMs), db = dy^T 1 (SGEMV on the column-major dy^T).
void linear_backward(const LinearShape& s, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db, void* stream) {
  check_linear(s, "linear_backward");
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  auto lock = lock_library();
  Context& ctx = context(st);
  set_math(ctx);
  if (dx) sgemm(ctx, false, false, s.n, s.in, s.out, 1.f, dy, s.out, w, s.in, 0.f, dx, s.in);
  if (dw) sgemm(ctx, true, false, s.out, s.in, s.n, 1.f, dy, s.out, x, s.in, 0.f, dw, s.in);
  if (db) {
    const float* one = ones(ctx, std::size_t(s.n), st);
    HALO_CUBLAS_CHECK(
        cublasSgemv(ctx.cublas, CUBLAS_OP_N, s.out, s.n, &kOne, dy, s.out, one, 1, &kZero, db, 1));
  }
}

}  // namespace halo::kernels::cudnn
