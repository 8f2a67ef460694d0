// The two spellings that the hand-written kernels share between nvcc and the emulated CUDA device
// (kernels/cuda_emulator), so that one source runs on both:
//
//   HALO_LAUNCH(grid, block, stream, kernel)(args...);
//       launches `kernel` (a __global__ function, template arguments allowed) with `grid` blocks of
//       `block` threads on `stream`, then checks the launch (check_launch below). nvcc compiles it
//       to HALO_LAUNCH(grid, block, stream, kernel)(args...); the emulator queues the launch on its
//       stream.
//   HALO_SHARED(type, name, dims);
//       static shared memory, e.g. HALO_SHARED(float, partial, [32][3]): `__shared__ type name
//       dims` on the GPU; on the emulated device one allocation per block, NaN-filled when the
//       block starts.
//
// With HALO_CUDA_DEBUG_SYNC=1 in the environment every launch is followed by a synchronisation of
// its stream, so a kernel that faults is named at once (file, line, kernel) instead of surfacing
// at the next copy to the host. Slow; for debugging only.
#pragma once
#include <cuda_runtime.h>

#include <tuple>
#include <type_traits>
#include <utility>

#include "kernels/cuda/check.h"

namespace halo::kernels::cuda {

// After every launch: throws if the launch failed, naming the kernel and the launch site; with
// HALO_CUDA_DEBUG_SYNC=1 first waits for the kernel to finish.
void check_launch(const char* kernel, const char* file, int line, cudaStream_t stream);

// What HALO_LAUNCH builds: the launch configuration and `start`, a generic lambda that calls the
// kernel by name (so that template arguments are deduced from the arguments, as with <<<>>>).
template <class Start>
class Launch {
 public:
  Launch(const char* name, const char* file, int line, dim3 grid, dim3 block, cudaStream_t stream,
         Start start)
      : name_(name),
        file_(file),
        line_(line),
        grid_(grid),
        block_(block),
        stream_(stream),
        start_(start) {}

  template <class... A>
  void operator()(A&&... args) const {
#if defined(__CUDACC__)
    start_(grid_, block_, stream_, std::forward<A>(args)...);
#elif defined(HALO_CUDA_EMULATED)
    // Each GPU thread calls the kernel with its own copy of the arguments, as from CUDA's
    // parameter space.
    auto thread = [start = start_, params = std::tuple<std::decay_t<A>...>(
                                       std::forward<A>(args)...)] { std::apply(start, params); };
    ::halo::cuda_emulator::launch(name_, file_, line_, grid_, block_, stream_, thread);
#else
    static_assert(sizeof...(A) < 0, "kernel launches are compiled by nvcc or the emulated device");
#endif
    check_launch(name_, file_, line_, stream_);
  }

 private:
  const char* name_;
  const char* file_;
  int line_;
  dim3 grid_, block_;
  cudaStream_t stream_;
  Start start_;
};

}  // namespace halo::kernels::cuda

#if defined(__CUDACC__)
#define HALO_LAUNCH(grid, block, stream, ...)                                                  \
  ::halo::kernels::cuda::Launch(                                                               \
      #__VA_ARGS__, __FILE__, __LINE__, dim3(grid), dim3(block),                               \
      static_cast<cudaStream_t>(stream), [](dim3 g_, dim3 b_, cudaStream_t s_, auto&&... a_) { \
        __VA_ARGS__<<<g_, b_, 0, s_>>>(static_cast<decltype(a_)&&>(a_)...);                    \
      })
#else
#define HALO_LAUNCH(grid, block, stream, ...)                                              \
  ::halo::kernels::cuda::Launch(#__VA_ARGS__, __FILE__, __LINE__, dim3(grid), dim3(block), \
                                static_cast<cudaStream_t>(stream), [](auto&&... a_) {      \
                                  __VA_ARGS__(static_cast<decltype(a_)&&>(a_)...);         \
                                })
#endif

#if defined(__CUDACC__) || !defined(HALO_CUDA_EMULATED)
#define HALO_SHARED(type, name, dims) __shared__ type name dims
#else
#define HALO_SHARED(type, name, dims)                                                \
  static const char halo_shared_site_##name = 0;                                     \
  type(&name) dims = *static_cast<type(*) dims>(::halo::cuda_emulator::block_shared( \
      &halo_shared_site_##name, sizeof(type dims), alignof(type dims)))
#endif
