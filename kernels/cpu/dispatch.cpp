// The public CPU kernels of kernels/*.h (namespace halo::kernels::cpu): each one calls the same
// function of the instruction-set variant that isa() names (kernels/cpu/isa.h). The variants are
// the files of this folder compiled three times into halo::kernels::cpu::sse2, ::avx2 and
// ::avx512 (kernels/cpu/variant.h, kernels/CMakeLists.txt). The reference loops
// (conv_reference.cpp) are not dispatched: they are compiled once, for the baseline.
//
// HALO_CPU_KERNELS lists every dispatched function once: return type, name, parameters, and the
// arguments that pass them on. From it come the variants' declarations, the public definitions and
// their float and double instantiations, so a function added to a variant file and to this list
// is dispatched with no other change.
#include <cstddef>
#include <cstdint>

#include "kernels/activation.h"
#include "kernels/blas.h"
#include "kernels/conv.h"
#include "kernels/cpu/isa.h"
#include "kernels/elementwise.h"
#include "kernels/loss.h"
#include "kernels/norm.h"
#include "kernels/optim.h"
#include "kernels/pool.h"

#define HALO_CPU_KERNELS(X)                                                                       \
  /* activation.h */                                                                              \
  X(void, relu_forward, (std::size_t n, const T* x, T* y), (n, x, y))                             \
  X(void, relu_backward, (std::size_t n, const T* y, const T* dy, T* dx), (n, y, dy, dx))         \
  X(void, gelu_forward, (std::size_t n, const T* x, T* y), (n, x, y))                             \
  X(void, gelu_backward, (std::size_t n, const T* x, const T* dy, T* dx), (n, x, dy, dx))         \
  /* blas.h */                                                                                    \
  X(void, gemm,                                                                                   \
    (bool ta, bool tb, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb,    \
     T beta, T* c, int ldc),                                                                      \
    (ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))                                       \
  X(void, linear_forward, (const LinearShape& s, const T* x, const T* w, const T* b, T* y),       \
    (s, x, w, b, y))                                                                              \
  X(void, linear_backward,                                                                        \
    (const LinearShape& s, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db),             \
    (s, x, w, dy, dx, dw, db))                                                                    \
  /* conv.h */                                                                                    \
  X(void, conv2d_forward, (const Conv2dShape& s, const T* x, const T* w, const T* b, T* y),       \
    (s, x, w, b, y))                                                                              \
  X(void, conv2d_backward_data, (const Conv2dShape& s, const T* dy, const T* w, T* dx),           \
    (s, dy, w, dx))                                                                               \
  X(void, conv2d_backward_weight, (const Conv2dShape& s, const T* x, const T* dy, T* dw),         \
    (s, x, dy, dw))                                                                               \
  X(void, conv2d_backward_bias, (const Conv2dShape& s, const T* dy, T* db), (s, dy, db))          \
  /* elementwise.h */                                                                             \
  X(void, fill, (std::size_t n, T value, T * y), (n, value, y))                                   \
  X(void, add, (std::size_t n, const T* a, const T* b, T* y), (n, a, b, y))                       \
  X(void, axpy, (std::size_t n, T alpha, const T* x, T* y), (n, alpha, x, y))                     \
  X(void, scale, (std::size_t n, T alpha, const T* x, T* y), (n, alpha, x, y))                    \
  X(void, mul, (std::size_t n, const T* a, const T* b, T* y), (n, a, b, y))                       \
  X(void, mul_channel_forward, (int outer, int c, int inner, const T* x, const T* s, T* y),       \
    (outer, c, inner, x, s, y))                                                                   \
  X(void, mul_channel_backward,                                                                   \
    (int outer, int c, int inner, const T* x, const T* s, const T* dy, T* dx, T* ds),             \
    (outer, c, inner, x, s, dy, dx, ds))                                                          \
  /* loss.h */                                                                                    \
  X(T, mse_forward, (std::size_t n, const T* pred, const T* target), (n, pred, target))           \
  X(void, mse_backward, (std::size_t n, const T* pred, const T* target, T dloss, T* dpred),       \
    (n, pred, target, dloss, dpred))                                                              \
  /* norm.h */                                                                                    \
  X(void, batch_norm_forward_train,                                                               \
    (const NormShape& s, const T* x, const T* gamma, const T* beta, T eps, T momentum,            \
     T* running_mean, T* running_var, T* y, T* save_mean, T* save_invstd),                        \
    (s, x, gamma, beta, eps, momentum, running_mean, running_var, y, save_mean, save_invstd))     \
  X(void, batch_norm_forward_eval,                                                                \
    (const NormShape& s, const T* x, const T* gamma, const T* beta, const T* running_mean,        \
     const T* running_var, T eps, T* y),                                                          \
    (s, x, gamma, beta, running_mean, running_var, eps, y))                                       \
  X(void, batch_norm_backward,                                                                    \
    (const NormShape& s, const T* x, const T* dy, const T* gamma, const T* mean, const T* invstd, \
     bool training, T* dx, T* dgamma, T* dbeta),                                                  \
    (s, x, dy, gamma, mean, invstd, training, dx, dgamma, dbeta))                                 \
  X(void, batch_norm_add_relu_forward_train,                                                      \
    (const NormShape& s, const T* x, const T* residual, const T* gamma, const T* beta, T eps,     \
     T momentum, T* running_mean, T* running_var, T* y, T* save_mean, T* save_invstd),            \
    (s, x, residual, gamma, beta, eps, momentum, running_mean, running_var, y, save_mean,         \
     save_invstd))                                                                                \
  X(void, batch_norm_add_relu_forward_eval,                                                       \
    (const NormShape& s, const T* x, const T* residual, const T* gamma, const T* beta,            \
     const T* running_mean, const T* running_var, T eps, T* y),                                   \
    (s, x, residual, gamma, beta, running_mean, running_var, eps, y))                             \
  X(void, batch_norm_relu_backward,                                                               \
    (const NormShape& s, const T* x, const T* y, const T* dy, const T* gamma, const T* mean,      \
     const T* invstd, bool training, T* dx, T* dgamma, T* dbeta, T* dresidual),                   \
    (s, x, y, dy, gamma, mean, invstd, training, dx, dgamma, dbeta, dresidual))                   \
  X(void, layer_norm2d_forward,                                                                   \
    (const NormShape& s, const T* x, const T* gamma, const T* beta, T eps, T* y, T* save_mean,    \
     T* save_invstd),                                                                             \
    (s, x, gamma, beta, eps, y, save_mean, save_invstd))                                          \
  X(void, layer_norm2d_backward,                                                                  \
    (const NormShape& s, const T* x, const T* dy, const T* gamma, const T* mean, const T* invstd, \
     T* dx, T* dgamma, T* dbeta),                                                                 \
    (s, x, dy, gamma, mean, invstd, dx, dgamma, dbeta))                                           \
  /* optim.h */                                                                                   \
  X(void, adam_step,                                                                              \
    (std::size_t n, const AdamConfig& cfg, long long step, T* p, const T* g, T* m, T* v),         \
    (n, cfg, step, p, g, m, v))                                                                   \
  /* pool.h */                                                                                    \
  X(void, max_pool2d_forward, (const Pool2dShape& s, const T* x, T* y, int32_t* argmax),          \
    (s, x, y, argmax))                                                                            \
  X(void, max_pool2d_backward, (const Pool2dShape& s, const T* dy, const int32_t* argmax, T* dx), \
    (s, dy, argmax, dx))                                                                          \
  X(void, global_avg_pool_forward, (int n, int c, int hw, const T* x, T* y), (n, c, hw, x, y))    \
  X(void, global_avg_pool_backward, (int n, int c, int hw, const T* dy, T* dx), (n, c, hw, dy, dx))

// The variants' declarations (their definitions are in the variant objects).
#define HALO_DECLARE(R, name, params, args) \
  template <class T>                        \
  R name params;
namespace halo::kernels::cpu::sse2 {
HALO_CPU_KERNELS(HALO_DECLARE)
}
namespace halo::kernels::cpu::avx2 {
HALO_CPU_KERNELS(HALO_DECLARE)
}
namespace halo::kernels::cpu::avx512 {
HALO_CPU_KERNELS(HALO_DECLARE)
}
#undef HALO_DECLARE

namespace halo::kernels::cpu {

// The public functions: one switch each.
#define HALO_DISPATCH(R, name, params, args) \
  template <class T>                         \
  R name params {                            \
    switch (isa()) {                         \
      case Isa::avx512:                      \
        return avx512::name<T> args;         \
      case Isa::avx2:                        \
        return avx2::name<T> args;           \
      case Isa::sse2:                        \
        break;                               \
    }                                        \
    return sse2::name<T> args;               \
  }
HALO_CPU_KERNELS(HALO_DISPATCH)
#undef HALO_DISPATCH

// Explicit float and double instantiations. The list's parameters are written with T; for these
// lines T is briefly a macro naming the type.
#define HALO_INSTANTIATE(R, name, params, args) template R name<T> params;
#define T float
HALO_CPU_KERNELS(HALO_INSTANTIATE)
#undef T
#define T double
HALO_CPU_KERNELS(HALO_INSTANTIATE)
#undef T
#undef HALO_INSTANTIATE

}  // namespace halo::kernels::cpu
