// Small helpers shared by the op files: input checks with clear messages, and the device switch.
//
// Every op has a CPU path (kernels::cpu, templates) and a GPU path (kernels::cuda, the hand-written
// kernels, or kernels::cudnn::dispatch, which runs cuDNN/cuBLAS or the hand-written kernels as
// kernels/cudnn/settings.h says). The GPU calls are wrapped in HALO_GPU(...): in a CPU-only build
// (no nvcc) they are not compiled, and since no CUDA tensor can exist there (allocating one
// throws), the branch is never reached; if it were, it says why. All GPU work goes on the engine's
// one compute stream, gpu_stream().
#pragma once
#include <stdexcept>
#include <string>

#include "engine/cuda_memory.h"
#include "engine/tensor.h"

#if HALO_HAVE_CUDA
#define HALO_GPU(...) __VA_ARGS__
#else
#define HALO_GPU(...) ::halo::ops_detail::not_built_with_cuda()
#endif

namespace halo::ops_detail {

inline void require_f32(const Tensor& t, const char* op, const char* what) {
  if (!t.defined()) throw std::invalid_argument(std::string(op) + ": " + what + " is undefined");
  if (t.dtype() != DType::f32)
    throw std::invalid_argument(std::string(op) + ": " + what + " must be float32, got " + t.str());
}

inline void require_dim(const Tensor& t, int dim, const char* op, const char* what) {
  require_f32(t, op, what);
  if (t.dim() != dim)
    throw std::invalid_argument(std::string(op) + ": " + what + " must be " + std::to_string(dim) +
                                "-d, got " + t.str());
}

inline void require_same_shape(const Tensor& a, const Tensor& b, const char* op) {
  if (a.shape() != b.shape())
    throw std::invalid_argument(std::string(op) + ": shapes differ: " + to_string(a.shape()) +
                                " vs " + to_string(b.shape()));
}

// All tensors on one device; returns it. CUDA tensors need the CUDA backend of this op.
inline Device common_device(std::initializer_list<const Tensor*> ts, const char* op) {
  Device d = Device::cpu;
  bool first = true;
  for (const Tensor* t : ts) {
    if (!t || !t->defined()) continue;
    if (first) {
      d = t->device();
      first = false;
    } else if (t->device() != d) {
      throw std::invalid_argument(std::string(op) + ": tensors on different devices (" +
                                  to_string(d) + " and " + to_string(t->device()) + ")");
    }
  }
  return d;
}

[[noreturn]] inline void not_built_with_cuda() {
  throw std::runtime_error(
      "a CUDA tensor reached an op in a build without CUDA (use --device cpu)");
}

inline void* gpu_stream() {
  return cuda::stream();
}
inline bool on_gpu(Device d) {
  return d == Device::cuda;
}

inline const float* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data() : nullptr;
}
inline float* out_or_null(const Tensor& t) {
  return t.defined() ? t.data() : nullptr;
}
// An output gradient buffer if that input needs one, else an undefined tensor (nullptr to kernels).
inline Tensor empty_if(bool needed, const Shape& shape, Device device) {
  return needed ? Tensor::empty(shape, device) : Tensor();
}

}  // namespace halo::ops_detail
