// The run-time settings of the GPU backends (settings.h): plain atomics, no CUDA or cuDNN calls,
// so the emulated device's build (which has no cuDNN) shares them with the real one.
#include "kernels/cudnn/settings.h"

#include <atomic>

namespace halo::kernels::cudnn {

namespace {
// The emulated CUDA device has no cuDNN/cuBLAS: there the hand-written kernels are the default.
#ifdef HALO_CUDA_EMULATED
constexpr Backend kDefaultBackend = Backend::handwritten;
#else
constexpr Backend kDefaultBackend = Backend::vendor;
#endif
std::atomic<Backend> g_conv_backend{kDefaultBackend};
std::atomic<Backend> g_bn_backend{kDefaultBackend};
std::atomic<Backend> g_gemm_backend{kDefaultBackend};
std::atomic<bool> g_conv_tf32{true};     // torch.backends.cudnn.allow_tf32 = True
std::atomic<bool> g_matmul_tf32{false};  // torch.backends.cuda.matmul.allow_tf32 = False
std::atomic<ConvAlgoSearch> g_search{ConvAlgoSearch::heuristic};
std::atomic<bool> g_exact{false};
std::atomic<std::size_t> g_workspace_limit{std::size_t(256) << 20};
}  // namespace

Backend default_backend() {
  return kDefaultBackend;
}
void set_conv_backend(Backend b) {
  g_conv_backend = b;
}
Backend conv_backend() {
  return g_conv_backend;
}
void set_batch_norm_backend(Backend b) {
  g_bn_backend = b;
}
Backend batch_norm_backend() {
  return g_bn_backend;
}
void set_gemm_backend(Backend b) {
  g_gemm_backend = b;
}
Backend gemm_backend() {
  return g_gemm_backend;
}

void set_tf32(bool allowed) {
  g_conv_tf32 = allowed;
  g_matmul_tf32 = allowed;
}
void set_conv_tf32(bool allowed) {
  g_conv_tf32 = allowed;
}
bool conv_tf32() {
  return g_conv_tf32;
}
void set_matmul_tf32(bool allowed) {
  g_matmul_tf32 = allowed;
}
bool matmul_tf32() {
  return g_matmul_tf32;
}
void reset_tf32_defaults() {
  g_conv_tf32 = true;
  g_matmul_tf32 = false;
}

void set_conv_algo_search(ConvAlgoSearch s) {
  g_search = s;
}
ConvAlgoSearch conv_algo_search() {
  return g_search;
}
void set_conv_exact_algorithms(bool only_exact) {
  g_exact = only_exact;
}
bool conv_exact_algorithms() {
  return g_exact;
}
void set_workspace_limit(std::size_t bytes) {
  g_workspace_limit = bytes;
}
std::size_t workspace_limit() {
  return g_workspace_limit;
}

}  // namespace halo::kernels::cudnn
