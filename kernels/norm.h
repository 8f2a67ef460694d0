// Normalisation kernels on raw NCHW memory: batch norm (per channel over N, H, W) and layer norm
// over the channels of each pixel (ConvNeXt's LayerNorm2d). Forward and backward side by side.
#pragma once

namespace halo::kernels {

// x: [n, c, hw] viewed from NCHW with hw = H*W.
struct NormShape {
  int n = 1, c = 1, hw = 1;
  long long size() const { return 1LL * n * c * hw; }
};

namespace cpu {
// ---- batch norm ------------------------------------------------------------------------------
// Training: mean_c and biased var_c over (n, hw); y = (x - mean) * invstd * gamma + beta with
// invstd = 1/sqrt(var + eps). Saves mean and invstd [c] for backward. Updates running stats when
// running_mean/var are non-null: r = (1 - momentum) * r + momentum * stat, with the *unbiased*
// variance var * m/(m-1) (m = n*hw) for running_var, as PyTorch does.
template <class T>
void batch_norm_forward_train(const NormShape& s, const T* x, const T* gamma, const T* beta, T eps,
                              T momentum, T* running_mean, T* running_var, T* y, T* save_mean,
                              T* save_invstd);
// Eval: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta.
template <class T>
void batch_norm_forward_eval(const NormShape& s, const T* x, const T* gamma, const T* beta,
                             const T* running_mean, const T* running_var, T eps, T* y);
// Backward. With training == true, mean/invstd are the batch statistics and depend on x:
//   dx = gamma*invstd/m * (m*dy - sum(dy) - xhat*sum(dy*xhat));
// with training == false they are constants (running stats): dx = gamma*invstd*dy.
// dgamma = sum(dy*xhat), dbeta = sum(dy). Any of dx, dgamma, dbeta may be nullptr.
template <class T>
void batch_norm_backward(const NormShape& s, const T* x, const T* dy, const T* gamma, const T* mean,
                         const T* invstd, bool training, T* dx, T* dgamma, T* dbeta);

// ---- batch norm + (residual add) + ReLU, fused
// --------------------------------------------------- y = max(batch_norm(x) + residual, 0) in one
// pass over y (residual may be nullptr: y = max(batch_norm(x), 0)): ResNet's bn1 + act1, and bn2 +
// shortcut + act2. Statistics, running stats and save_mean/save_invstd exactly as
// batch_norm_forward_train / _eval.
template <class T>
void batch_norm_add_relu_forward_train(const NormShape& s, const T* x, const T* residual,
                                       const T* gamma, const T* beta, T eps, T momentum,
                                       T* running_mean, T* running_var, T* y, T* save_mean,
                                       T* save_invstd);
template <class T>
void batch_norm_add_relu_forward_eval(const NormShape& s, const T* x, const T* residual,
                                      const T* gamma, const T* beta, const T* running_mean,
                                      const T* running_var, T eps, T* y);
// Backward of the two above: batch_norm_backward of the masked gradient dy * (y > 0), where y is
// the fused op's output. dresidual (may be nullptr) receives the masked gradient itself, the
// residual's gradient. Any of dx, dgamma, dbeta, dresidual may be nullptr.
template <class T>
void batch_norm_relu_backward(const NormShape& s, const T* x, const T* y, const T* dy,
                              const T* gamma, const T* mean, const T* invstd, bool training, T* dx,
                              T* dgamma, T* dbeta, T* dresidual);

// ---- layer norm over channels (per pixel)
// --------------------------------------------------------- For each (n, p): mean and biased var
// over c; y = (x - mean) * invstd * gamma[c] + beta[c]. save_mean / save_invstd: [n*hw].
template <class T>
void layer_norm2d_forward(const NormShape& s, const T* x, const T* gamma, const T* beta, T eps,
                          T* y, T* save_mean, T* save_invstd);
// dx = invstd/c * (c*g - sum_c(g) - xhat*sum_c(g*xhat)) with g = dy*gamma;
// dgamma = sum_{n,p}(dy*xhat), dbeta = sum_{n,p}(dy). Any output may be nullptr.
template <class T>
void layer_norm2d_backward(const NormShape& s, const T* x, const T* dy, const T* gamma,
                           const T* mean, const T* invstd, T* dx, T* dgamma, T* dbeta);
}  // namespace cpu

}  // namespace halo::kernels

// ---- GPU entry points (built only with CUDA; float32, device pointers)
// ---------------------------- Same contract as the CPU functions above; `stream` is a cudaStream_t
// (nullptr: default stream). Hand-written kernels in kernels/cuda/norm.cu; cuDNN batch norm in
// kernels/cudnn/norm.cpp.
namespace halo::kernels::cuda {
void batch_norm_forward_train(const NormShape& s, const float* x, const float* gamma,
                              const float* beta, float eps, float momentum, float* running_mean,
                              float* running_var, float* y, float* save_mean, float* save_invstd,
                              void* stream);
void batch_norm_forward_eval(const NormShape& s, const float* x, const float* gamma,
                             const float* beta, const float* running_mean, const float* running_var,
                             float eps, float* y, void* stream);
void batch_norm_backward(const NormShape& s, const float* x, const float* dy, const float* gamma,
                         const float* mean, const float* invstd, bool training, float* dx,
                         float* dgamma, float* dbeta, void* stream);
void layer_norm2d_forward(const NormShape& s, const float* x, const float* gamma, const float* beta,
                          float eps, float* y, float* save_mean, float* save_invstd, void* stream);
void layer_norm2d_backward(const NormShape& s, const float* x, const float* dy, const float* gamma,
                           const float* mean, const float* invstd, float* dx, float* dgamma,
                           float* dbeta, void* stream);
}  // namespace halo::kernels::cuda

// cuDNN batch norm (CUDNN_BATCHNORM_SPATIAL). The eval-mode backward (training == false) and a
// backward without dx are not cuDNN operations and run the hand-written kernels.
namespace halo::kernels::cudnn {
void batch_norm_forward_train(const NormShape& s, const float* x, const float* gamma,
                              const float* beta, float eps, float momentum, float* running_mean,
                              float* running_var, float* y, float* save_mean, float* save_invstd,
                              void* stream);
void batch_norm_forward_eval(const NormShape& s, const float* x, const float* gamma,
                             const float* beta, const float* running_mean, const float* running_var,
                             float eps, float* y, void* stream);
void batch_norm_backward(const NormShape& s, const float* x, const float* dy, const float* gamma,
                         const float* mean, const float* invstd, bool training, float* dx,
                         float* dgamma, float* dbeta, void* stream);

// The implementation chosen at run time by cudnn::set_batch_norm_backend.
namespace dispatch {
void batch_norm_forward_train(const NormShape& s, const float* x, const float* gamma,
                              const float* beta, float eps, float momentum, float* running_mean,
                              float* running_var, float* y, float* save_mean, float* save_invstd,
                              void* stream);
void batch_norm_forward_eval(const NormShape& s, const float* x, const float* gamma,
                             const float* beta, const float* running_mean, const float* running_var,
                             float eps, float* y, void* stream);
void batch_norm_backward(const NormShape& s, const float* x, const float* dy, const float* gamma,
                         const float* mean, const float* invstd, bool training, float* dx,
                         float* dgamma, float* dbeta, void* stream);
}  // namespace dispatch
}  // namespace halo::kernels::cudnn
