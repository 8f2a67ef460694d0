// cuDNN batch norm (kernels/norm.h, namespace cudnn) with CUDNN_BATCHNORM_SPATIAL: training
// forward with the running-statistics update, inference forward, and the training backward.
// cuDNN 9 still ships this API (deprecated in favour of the graph API, but present and warned
// about only when CUDNN_WARN_DEPRECATED is defined). cuDNN's running variance uses the unbiased
// batch variance and its saved "inverse variance" is 1/sqrt(var + eps), the same conventions as
// the CPU reference, so the saved statistics are interchangeable with the hand-written kernels'.
#include "kernels/norm.h"

#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "kernels/cudnn/context.h"

namespace halo::kernels::cudnn {

namespace {

void check_norm(const NormShape& s, const char* fn) {
  if (s.n < 1 || s.c < 1 || s.hw < 1)
    throw std::invalid_argument(std::string("kernels/cudnn/norm.cpp: ") + fn +
                                ": n, c and hw must be >= 1 (n=" + std::to_string(s.n) +
                                " c=" + std::to_string(s.c) + " hw=" + std::to_string(s.hw) + ")");
}

// x viewed as [n, c, hw, 1] and the per-channel [1, c, 1, 1] parameter descriptor, per shape.
struct BnDescs {
  cudnnTensorDescriptor_t x = nullptr, param = nullptr;
  BnDescs() = default;
  BnDescs(const BnDescs&) = delete;
  BnDescs& operator=(const BnDescs&) = delete;
  ~BnDescs() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (param) cudnnDestroyTensorDescriptor(param);
  }
};

BnDescs& descs_for(const NormShape& s) {
  static auto* cache = new std::map<std::tuple<int, int, int>, std::unique_ptr<BnDescs>>();
  const auto key = std::make_tuple(s.n, s.c, s.hw);
  auto it = cache->find(key);
  if (it != cache->end()) return *it->second;
  auto d = std::make_unique<BnDescs>();
  HALO_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d->x));
  HALO_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d->param));
  HALO_CUDNN_CHECK(
      cudnnSetTensor4dDescriptor(d->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s.n, s.c, s.hw, 1));
  HALO_CUDNN_CHECK(
      cudnnSetTensor4dDescriptor(d->param, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, s.c, 1, 1));
  BnDescs& ref = *d;
  cache->emplace(key, std::move(d));
  return ref;
}

const float kOne = 1.0f, kZero = 0.0f;

}  // namespace

void batch_norm_forward_train(const NormShape& s, const float* x, const float* gamma,
                              const float* beta, float eps, float momentum, float* running_mean,
                              float* running_var, float* y, float* save_mean, float* save_invstd,
                              void* stream) {
  check_norm(s, "batch_norm_forward_train");
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  auto lock = lock_library();
  Context& c = context(st);
  BnDescs& d = descs_for(s);
  // Stand-ins for absent arguments, carved from the workspace: beta = 0, and dummies so that the
  // running pair and the saved pair are each both present (cuDNN accepts both-null or both-set).
  float* spare = static_cast<float*>(workspace(c, 5 * std::size_t(s.c) * sizeof(float)));
  float* zeros = spare;
  if (!beta) HALO_CUDA_CHECK(cudaMemsetAsync(zeros, 0, std::size_t(s.c) * sizeof(float), st));
  const float* g = gamma ? gamma : ones(c, std::size_t(s.c), st);
  const float* b = beta ? beta : zeros;
  float* rm = running_mean;
  float* rv = running_var;
  if ((rm == nullptr) != (rv == nullptr)) {
    if (!rm) rm = spare + s.c;
    if (!rv) rv = spare + 2 * std::size_t(s.c);
  }
  float* sm = save_mean;
  float* si = save_invstd;
  if ((sm == nullptr) != (si == nullptr)) {
    if (!sm) sm = spare + 3 * std::size_t(s.c);
    if (!si) si = spare + 4 * std::size_t(s.c);
  }
  HALO_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
      c.cudnn, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, d.x, x, d.x, y, d.param, g, b,
      double(momentum), rm, rv, double(eps), sm, si));
}

void batch_norm_forward_eval(const NormShape& s, const float* x, const float* gamma,
                             const float* beta, const float* running_mean, const float* running_var,
                             float eps, float* y, void* stream) {
  check_norm(s, "batch_norm_forward_eval");
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  auto lock = lock_library();
  Context& c = context(st);
  BnDescs& d = descs_for(s);
  float* zeros = static_cast<float*>(workspace(c, std::size_t(s.c) * sizeof(float)));
  if (!beta) HALO_CUDA_CHECK(cudaMemsetAsync(zeros, 0, std::size_t(s.c) * sizeof(float), st));
  const float* g = gamma ? gamma : ones(c, std::size_t(s.c), st);
  const float* b = beta ? beta : zeros;
  HALO_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(c.cudnn, CUDNN_BATCHNORM_SPATIAL, &kOne,
                                                           &kZero, d.x, x, d.x, y, d.param, g, b,
                                                           running_mean, running_var, double(eps)));
}

void batch_norm_backward(const NormShape& s, const float* x, const float* dy, const float* gamma,
                         const float* mean, const float* invstd, bool training, float* dx,
                         float* dgamma, float* dbeta, void* stream) {
  // cuDNN's backward always differentiates through the batch statistics and always writes dx:
  // the eval-mode backward (statistics are constants) and a parameters-only backward are the
  // hand-written kernels' job.
  if (!training || !dx) {
    cuda::batch_norm_backward(s, x, dy, gamma, mean, invstd, training, dx, dgamma, dbeta, stream);
    return;
  }
  check_norm(s, "batch_norm_backward");
  if (!mean || !invstd)
    throw std::invalid_argument(
        "kernels/cudnn/norm.cpp: batch_norm_backward: mean and invstd (the forward's saved "
        "statistics) are required");
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  auto lock = lock_library();
  Context& c = context(st);
  BnDescs& d = descs_for(s);
  float* spare = static_cast<float*>(workspace(c, 2 * std::size_t(s.c) * sizeof(float)));
  const float* g = gamma ? gamma : ones(c, std::size_t(s.c), st);
  float* dg = dgamma ? dgamma : spare;
  float* db = dbeta ? dbeta : spare + s.c;
  // Epsilon. The gradient is a function of x, dy, gamma, mean and invstd alone (norm.h's
  // formula): the layer's eps is already inside invstd = 1/sqrt(var + eps). cuDNN reads its
  // epsilon argument only to recompute the statistics when savedMean/savedInvVariance are null
  // (cuDNN's graph API, whose batch-norm backward node takes mean and inverse variance, has no
  // epsilon at all); here they are never null (checked above), so the value is not used and the
  // forward's eps need not travel to the backward. We pass the smallest value cuDNN accepts,
  // CUDNN_BN_MIN_EPSILON, rather than a number that looks like some layer's eps.
  HALO_CUDNN_CHECK(cudnnBatchNormalizationBackward(c.cudnn, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero,
                                                   &kOne, &kZero, d.x, x, d.x, dy, d.x, dx, d.param,
                                                   g, dg, db, CUDNN_BN_MIN_EPSILON, mean, invstd));
}

}  // namespace halo::kernels::cudnn
