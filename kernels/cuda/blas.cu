// Hand-written CUDA SGEMM and linear layer (kernels/blas.h): the shared-memory tile of
// gemm_tile.h reading plain row-major matrices. Plain FP32 FMAs (never TF32), so it is the
// "no tensor cores" yardstick beside cuBLAS. Work: 2 m n k FLOPs; ideal traffic: A, B read once,
// C read (if beta != 0) and written once.
#include "kernels/blas.h"
#include "kernels/cuda/gather_ops.h"
#include "kernels/cuda/gemm_tile.h"

namespace halo::kernels::cuda {

namespace {

template <bool TA, bool TB>
void run_gemm(int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
              float beta, float* c, int ldc, const float* bias, cudaStream_t st) {
  const GemmOp<TA, TB> op{a, b, c, bias, lda, ldb, ldc, m, n, alpha, beta};
  if (m <= TileSmall::BM)
    launch_gemm_tile<TileSmall>(op, m, n, k, 1, 1, k > 0 ? k : 1, st);
  else
    launch_gemm_tile<TileLarge>(op, m, n, k, 1, 1, k > 0 ? k : 1, st);
}

void gemm_impl(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
               int lda, const float* b, int ldb, float beta, float* c, int ldc, const float* bias,
               cudaStream_t st) {
  if (m < 0 || n < 0 || k < 0)
    throw std::invalid_argument("kernels/cuda/blas.cu: gemm: negative size");
  if (m == 0 || n == 0) return;
  if (!trans_a && !trans_b)
    run_gemm<false, false>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, st);
  if (!trans_a && trans_b)
    run_gemm<false, true>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, st);
  if (trans_a && !trans_b)
    run_gemm<true, false>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, st);
  if (trans_a && trans_b)
    run_gemm<true, true>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, st);
}

// db[o] = sum over rows of dy[:, o]; one thread per column (adjacent threads, adjacent columns),
// double accumulators as the CPU reference.
__global__ void column_sums_kernel(int rows, int cols, const float* __restrict__ dy,
                                   float* __restrict__ db) {
  for (int o = blockIdx.x * blockDim.x + threadIdx.x; o < cols; o += gridDim.x * blockDim.x) {
    double s = 0.0;
    for (int r = 0; r < rows; ++r) s += double(__ldg(dy + std::size_t(r) * cols + o));
    db[o] = float(s);
  }
}

void check_linear(const LinearShape& s, const char* fn) {
  if (s.n < 1 || s.in < 1 || s.out < 1)
    throw std::invalid_argument(std::string("kernels/cuda/blas.cu: ") + fn +
                                ": n, in and out must be >= 1");
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc, void* stream) {
  gemm_impl(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nullptr,
            as_stream(stream));
}

// y = x W^T + b: 2 n in out FLOPs, bias added in the GEMM's epilogue.
void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b, float* y,
                    void* stream) {
  check_linear(s, "linear_forward");
  gemm_impl(false, true, s.n, s.out, s.in, 1.f, x, s.in, w, s.in, 0.f, y, s.out, b,
            as_stream(stream));
}

// dx = dy W, dw = dy^T x (2 n in out FLOPs each), db = column sums of dy.
void linear_backward(const LinearShape& s, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db, void* stream) {
  check_linear(s, "linear_backward");
  const cudaStream_t st = as_stream(stream);
  if (dx)
    gemm_impl(false, false, s.n, s.in, s.out, 1.f, dy, s.out, w, s.in, 0.f, dx, s.in, nullptr, st);
  if (dw)
    gemm_impl(true, false, s.out, s.in, s.n, 1.f, dy, s.out, x, s.in, 0.f, dw, s.in, nullptr, st);
  if (db) {
    HALO_LAUNCH(unsigned((s.out + 255) / 256), 256, st, column_sums_kernel)(s.n, s.out, dy, db);
  }
}

}  // namespace halo::kernels::cuda
