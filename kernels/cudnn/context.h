// Per-device state of the vendor paths (internal to kernels/cudnn/): the cuDNN and cuBLAS
// handles, the reusable cuDNN workspace and a constant vector of ones. One library-wide lock
// serialises calls, because a handle is bound to one stream at a time.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <mutex>

#include "kernels/cudnn/check.h"

namespace halo::kernels::cudnn {

struct Context {
  cudnnHandle_t cudnn = nullptr;
  cublasHandle_t cublas = nullptr;
  void* workspace = nullptr;
  std::size_t workspace_bytes = 0;
  float* ones = nullptr;  // constant 1.0f
  std::size_t ones_count = 0;
};

// Hold this for the whole of one operation (descriptor caches, handles and workspace are shared).
std::unique_lock<std::recursive_mutex> lock_library();

// The current device's context with both handles bound to `stream`. Call with the lock held.
Context& context(cudaStream_t stream);

// At least `bytes` of workspace (grow-only; growing synchronises the device once, see
// kernels/cuda/common.h's scratch for why). Returns nullptr for 0 bytes.
void* workspace(Context& ctx, std::size_t bytes);

// A device vector of at least `count` ones (grow-only; filled once when allocated).
const float* ones(Context& ctx, std::size_t count, cudaStream_t stream);

}  // namespace halo::kernels::cudnn
