// Status checks for cuDNN and cuBLAS calls: any failure becomes a std::runtime_error naming the
// call, the file:line and the library's own message (the CUDA runtime's are in
// kernels/cuda/check.h).
#pragma once
#include <cublas_v2.h>
#include <cudnn.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda/check.h"

namespace halo::kernels::cudnn {

[[noreturn]] inline void throw_cudnn_error(cudnnStatus_t status, const char* call, const char* file,
                                           int line) {
  throw std::runtime_error(std::string("cuDNN error in ") + call + " at " + file + ":" +
                           std::to_string(line) + ": " + cudnnGetErrorString(status) + " (" +
                           std::to_string(int(status)) + ")");
}

[[noreturn]] inline void throw_cublas_error(cublasStatus_t status, const char* call,
                                            const char* file, int line) {
  throw std::runtime_error(std::string("cuBLAS error in ") + call + " at " + file + ":" +
                           std::to_string(line) + ": " + cublasGetStatusName(status) + " (" +
                           cublasGetStatusString(status) + ")");
}

}  // namespace halo::kernels::cudnn

#define HALO_CUDNN_CHECK(call)                                                            \
  do {                                                                                    \
    cudnnStatus_t halo_status_ = (call);                                                  \
    if (halo_status_ != CUDNN_STATUS_SUCCESS)                                             \
      ::halo::kernels::cudnn::throw_cudnn_error(halo_status_, #call, __FILE__, __LINE__); \
  } while (0)

#define HALO_CUBLAS_CHECK(call)                                                            \
  do {                                                                                     \
    cublasStatus_t halo_status_ = (call);                                                  \
    if (halo_status_ != CUBLAS_STATUS_SUCCESS)                                             \
      ::halo::kernels::cudnn::throw_cublas_error(halo_status_, #call, __FILE__, __LINE__); \
  } while (0)
