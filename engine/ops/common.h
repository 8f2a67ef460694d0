// Small helpers shared by the op files: input checks with clear messages, and the device switch.
#pragma once
#include <stdexcept>
#include <string>

#include "engine/tensor.h"

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

// Every op runs on the CPU; its CUDA path is added by the CUDA backend. Until an op has one,
// a CUDA tensor reaching it gets this message rather than a wrong answer.
[[noreturn]] inline void no_cuda_path(const char* op) {
  throw std::runtime_error(std::string(op) +
                           ": no CUDA implementation of this op in this build; move the tensors "
                           "to the CPU (--device cpu)");
}

inline const float* ptr_or_null(const Tensor& t) { return t.defined() ? t.data() : nullptr; }

}  // namespace halo::ops_detail
