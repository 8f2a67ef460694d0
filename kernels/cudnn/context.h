// Per-device state of the vendor paths (internal to kernels/cudnn/): the cuDNN and cuBLAS
// handles, the reusable cuDNN workspace, cuBLAS's workspace and a constant vector of ones. One
// library-wide lock serialises calls, because a handle is bound to one stream at a time.
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
  // cuBLAS's workspace, allocated once with the handle and never resized (see context()).
  void* cublas_workspace = nullptr;
  std::size_t cublas_workspace_bytes = 0;
  float* ones = nullptr;  // constant 1.0f
  std::size_t ones_count = 0;
};

// Hold this for the whole of one operation (descriptor caches, handles and workspace are shared).
std::unique_lock<std::recursive_mutex> lock_library();

// The current device's context with both handles bound to `stream` and cuBLAS given its
// Halo-owned workspace. Call with the lock held.
//
// Why the workspace: since CUDA 12.2 cuBLAS takes the workspace of its GEMM kernels from a pool
// of its own (cudaMalloc'd outside Halo's allocators, per stream, at first use), and
// cublasSetStream resets the handle to that pool on every call. So every bind here is followed
// by cublasSetWorkspace with one buffer per device, allocated when the handle is created (the
// first vendor call, i.e. during the first training step): a steady step then allocates
// nothing, and a CUDA graph captures no library allocation. Size: cuBLAS's recommendation,
// 32 MiB on Hopper and later, 4 MiB before. Like the cuDNN workspace below, it is shared by
// every stream, which is correct because Halo queues the work of a step on one stream.
Context& context(cudaStream_t stream);

// The size of cuBLAS's workspace for a device of compute capability `major`.
std::size_t cublas_workspace_size(int major);

// At least `bytes` of workspace (grow-only; growing synchronises the device once, see
// kernels/cuda/common.h's scratch for why). Returns nullptr for 0 bytes.
void* workspace(Context& ctx, std::size_t bytes);

// A device vector of at least `count` ones (grow-only; filled once when allocated).
const float* ones(Context& ctx, std::size_t count, cudaStream_t stream);

}  // namespace halo::kernels::cudnn
