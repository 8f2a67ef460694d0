// The run-time choice between the hand-written kernels and the vendor libraries
// (cudnn::dispatch in kernels/conv.h, norm.h and blas.h), following the backends of settings.h.
#include "kernels/blas.h"
#include "kernels/conv.h"
#include "kernels/cudnn/settings.h"
#include "kernels/norm.h"

namespace halo::kernels::cudnn::dispatch {

namespace {
bool vendor_conv() {
  return conv_backend() == Backend::vendor;
}
bool vendor_bn() {
  return batch_norm_backend() == Backend::vendor;
}
bool vendor_gemm() {
  return gemm_backend() == Backend::vendor;
}
}  // namespace

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y, void* stream) {
  if (vendor_conv())
    cudnn::conv2d_forward(s, x, w, bias, y, stream);
  else
    cuda::conv2d_forward(s, x, w, bias, y, stream);
}
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                          void* stream) {
  if (vendor_conv())
    cudnn::conv2d_backward_data(s, dy, w, dx, stream);
  else
    cuda::conv2d_backward_data(s, dy, w, dx, stream);
}
void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                            void* stream) {
  if (vendor_conv())
    cudnn::conv2d_backward_weight(s, x, dy, dw, stream);
  else
    cuda::conv2d_backward_weight(s, x, dy, dw, stream);
}
void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* db, void* stream) {
  if (vendor_conv())
    cudnn::conv2d_backward_bias(s, dy, db, stream);
  else
    cuda::conv2d_backward_bias(s, dy, db, stream);
}

void batch_norm_forward_train(const NormShape& s, const float* x, const float* gamma,
                              const float* beta, float eps, float momentum, float* running_mean,
                              float* running_var, float* y, float* save_mean, float* save_invstd,
                              void* stream) {
  if (vendor_bn())
    cudnn::batch_norm_forward_train(s, x, gamma, beta, eps, momentum, running_mean, running_var, y,
                                    save_mean, save_invstd, stream);
  else
    cuda::batch_norm_forward_train(s, x, gamma, beta, eps, momentum, running_mean, running_var, y,
                                   save_mean, save_invstd, stream);
}
void batch_norm_forward_eval(const NormShape& s, const float* x, const float* gamma,
                             const float* beta, const float* running_mean, const float* running_var,
                             float eps, float* y, void* stream) {
  if (vendor_bn())
    cudnn::batch_norm_forward_eval(s, x, gamma, beta, running_mean, running_var, eps, y, stream);
  else
    cuda::batch_norm_forward_eval(s, x, gamma, beta, running_mean, running_var, eps, y, stream);
}
void batch_norm_backward(const NormShape& s, const float* x, const float* dy, const float* gamma,
                         const float* mean, const float* invstd, bool training, float* dx,
                         float* dgamma, float* dbeta, void* stream) {
  if (vendor_bn())
    cudnn::batch_norm_backward(s, x, dy, gamma, mean, invstd, training, dx, dgamma, dbeta, stream);
  else
    cuda::batch_norm_backward(s, x, dy, gamma, mean, invstd, training, dx, dgamma, dbeta, stream);
}

void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc, void* stream) {
  if (vendor_gemm())
    cudnn::gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, stream);
  else
    cuda::gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, stream);
}
void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b, float* y,
                    void* stream) {
  if (vendor_gemm())
    cudnn::linear_forward(s, x, w, b, y, stream);
  else
    cuda::linear_forward(s, x, w, b, y, stream);
}
void linear_backward(const LinearShape& s, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db, void* stream) {
  if (vendor_gemm())
    cudnn::linear_backward(s, x, w, dy, dx, dw, db, stream);
  else
    cuda::linear_backward(s, x, w, dy, dx, dw, db, stream);
}

}  // namespace halo::kernels::cudnn::dispatch
