// Per-device cuDNN/cuBLAS handles, workspace and ones vector (context.h). The run-time settings
// of settings.h are in settings.cpp (shared with the emulated device's build, which has no cuDNN).
#include "kernels/cudnn/context.h"

#include <atomic>

#include "kernels/cudnn/settings.h"
#include "kernels/elementwise.h"

namespace halo::kernels::cudnn {

namespace {
constexpr int kMaxDevices = 64;
Context contexts[kMaxDevices];  // never destroyed: handles may be used until the process exits
}  // namespace

std::unique_lock<std::recursive_mutex> lock_library() {
  static std::recursive_mutex m;
  return std::unique_lock<std::recursive_mutex>(m);
}

Context& context(cudaStream_t stream) {
  int dev = 0;
  HALO_CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= kMaxDevices)
    throw std::runtime_error("halo cudnn: device index out of range");
  Context& c = contexts[dev];
  if (!c.cudnn) HALO_CUDNN_CHECK(cudnnCreate(&c.cudnn));
  if (!c.cublas) HALO_CUBLAS_CHECK(cublasCreate(&c.cublas));
  if (!c.cublas_workspace) {
    int major = 0;
    HALO_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    const std::size_t bytes = cublas_workspace_size(major);
    HALO_CUDA_CHECK(cudaMalloc(&c.cublas_workspace, bytes));  // 256-byte aligned, as required
    c.cublas_workspace_bytes = bytes;
  }
  HALO_CUDNN_CHECK(cudnnSetStream(c.cudnn, stream));
  // cublasSetStream also hands the handle back to cuBLAS's own workspace pool: re-point it at
  // Halo's buffer every time (host-side bookkeeping only, nothing is queued).
  HALO_CUBLAS_CHECK(cublasSetStream(c.cublas, stream));
  HALO_CUBLAS_CHECK(cublasSetWorkspace(c.cublas, c.cublas_workspace, c.cublas_workspace_bytes));
  return c;
}

std::size_t cublas_workspace_size(int major) {
  return major >= 9 ? std::size_t(32) << 20 : std::size_t(4) << 20;
}

void* workspace(Context& c, std::size_t bytes) {
  if (bytes == 0) return nullptr;
  if (c.workspace_bytes < bytes) {
    if (c.workspace) {
      HALO_CUDA_CHECK(cudaDeviceSynchronize());  // queued work may still use the old buffer
      HALO_CUDA_CHECK(cudaFree(c.workspace));
      c.workspace = nullptr;
      c.workspace_bytes = 0;
    }
    HALO_CUDA_CHECK(cudaMalloc(&c.workspace, bytes));
    c.workspace_bytes = bytes;
  }
  return c.workspace;
}

const float* ones(Context& c, std::size_t count, cudaStream_t stream) {
  if (count < 1024) count = 1024;
  if (c.ones_count < count) {
    if (c.ones) {
      HALO_CUDA_CHECK(cudaDeviceSynchronize());
      HALO_CUDA_CHECK(cudaFree(c.ones));
      c.ones = nullptr;
      c.ones_count = 0;
    }
    HALO_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&c.ones), count * sizeof(float)));
    c.ones_count = count;
    halo::kernels::cuda::fill(count, 1.0f, c.ones, stream);
  }
  return c.ones;
}

}  // namespace halo::kernels::cudnn
