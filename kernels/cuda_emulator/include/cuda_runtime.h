// The emulated CUDA device (kernels/cuda_emulator): this header stands in for the CUDA toolkit's
// <cuda_runtime.h> in the build made with -DHALO_CUDA=EMULATED, so that the unmodified sources of
// kernels/cuda/ and engine/cuda_memory.cu compile with the host C++ compiler and run on the CPU.
//
// It declares the part of the CUDA runtime API that Halo uses (memory, copies, streams, events,
// graphs, device attributes, errors; implemented in runtime.cpp over host memory) and the device
// side of CUDA C++ that the kernels use: the qualifiers (__global__, __device__, ... expand to
// nothing), threadIdx / blockIdx / blockDim / gridDim (per GPU thread, each thread a fiber),
// __syncthreads() (a barrier of the block's fibers), the warp shuffles (a rendezvous of the warp's
// fibers), __ldg, __umulhi, min, max, and HALO_SHARED storage (one allocation per block, filled
// with NaN when the block starts). How a launch runs is in block_runner.cpp; docs/CUDA.md explains
// it.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "vector_types.h"

#ifndef HALO_CUDA_EMULATED
#define HALO_CUDA_EMULATED 1
#endif

// ---- qualifiers: plain C++ functions on the CPU ------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __constant__
// Static shared memory is declared with HALO_SHARED (kernels/cuda/launch.h), which the emulator
// backs with a per-block allocation; a bare __shared__ would be one variable for every block.
#define __shared__ __shared___is_not_emulated_use_HALO_SHARED

// ---- errors ------------------------------------------------------------------------------------
enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorIllegalState = 401,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotSupported = 801,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureUnmatched = 903,
  cudaErrorStreamCaptureUnjoined = 904,
  cudaErrorStreamCaptureImplicit = 906,
  cudaErrorStreamCaptureWrongThread = 908,
  cudaErrorUnknown = 999,
};
typedef enum cudaError cudaError_t;

// ---- handles and flags
// ---------------------------------------------------------------------------
struct CUstream_st;
struct CUevent_st;
struct CUgraph_st;
struct CUgraphExec_st;
typedef CUstream_st* cudaStream_t;
typedef CUevent_st* cudaEvent_t;
typedef CUgraph_st* cudaGraph_t;
typedef CUgraphExec_st* cudaGraphExec_t;

#define cudaStreamLegacy ((cudaStream_t)0x1)
#define cudaStreamPerThread ((cudaStream_t)0x2)
#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventBlockingSync 0x01
#define cudaEventDisableTiming 0x02
#define cudaHostAllocDefault 0x00
#define cudaHostAllocPortable 0x01

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
};

enum cudaStreamCaptureStatus {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2,
};

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxBlockDimX = 2,
  cudaDevAttrMaxGridDimX = 5,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
};

struct cudaDeviceProp {
  char name[256];
  std::size_t totalGlobalMem;
  std::size_t sharedMemPerBlock;
  int regsPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int multiProcessorCount;
  int major;
  int minor;
  int memoryClockRate;
  int memoryBusWidth;
  int clockRate;
};

// ---- the runtime API (runtime.cpp)
// ----------------------------------------------------------------
const char* cudaGetErrorString(cudaError_t error);
const char* cudaGetErrorName(cudaError_t error);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceReset();

cudaError_t cudaMalloc(void** ptr, std::size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaHostAlloc(void** ptr, std::size_t bytes, unsigned flags);
cudaError_t cudaMallocHost(void** ptr, std::size_t bytes);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes);

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* ptr, int value, std::size_t bytes);
cudaError_t cudaMemsetAsync(void* ptr, int value, std::size_t bytes, cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status);

cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph,
                                 unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);

// ---- the device side --------------------------------------------------------------------------
namespace halo::cuda_emulator {

// Where the GPU thread now running on this OS thread stands; set by the block runner at every
// switch to a thread's fiber.
struct ThreadCoords {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};
// GNU __thread rather than thread_local: a pointer needs no dynamic initialisation, and without
// C++'s TLS wrapper GCC 12's UBSan null check does not misfire on it (it took the wrapper's
// "no initialiser" test for a null address).
extern __thread const ThreadCoords* t_coords;

// __syncthreads(): suspends this thread's fiber until every thread of the block has reached the
// same barrier; barrier divergence is reported as a launch failure naming kernel and block.
void syncthreads();

enum class ShuffleMode { xor_lane, down, up, index, sync_only };
// A warp-level rendezvous: every lane named in `mask` must arrive at the same call site; each then
// receives the `bits` of its source lane (per `mode` and `arg`, within segments of `width`).
std::uint64_t warp_exchange(unsigned mask, std::uint64_t bits, ShuffleMode mode, int arg,
                            int width);

// Per-block storage for a HALO_SHARED declaration: the first thread of the block to reach the
// declaration allocates `bytes` (filled with 0xFF bytes: NaN for floats) and every thread of the
// block gets the same address. `site` identifies the declaration.
void* block_shared(const void* site, std::size_t bytes, std::size_t align);

template <class T>
std::uint64_t to_bits(const T& v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>,
                "warp shuffles move values of at most 8 bytes");
  std::uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T>
T from_bits(std::uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

// Runs a kernel launch: grid.x*grid.y*grid.z blocks of block.x*block.y*block.z threads, each thread
// calling `body()`. Queued on `stream` like any other stream work (block_runner.cpp, runtime.cpp).
cudaError_t launch(const char* kernel_name, const char* file, int line, dim3 grid, dim3 block,
                   cudaStream_t stream, std::function<void()> body);

}  // namespace halo::cuda_emulator

#define threadIdx (::halo::cuda_emulator::t_coords->thread_idx)
#define blockIdx (::halo::cuda_emulator::t_coords->block_idx)
#define blockDim (::halo::cuda_emulator::t_coords->block_dim)
#define gridDim (::halo::cuda_emulator::t_coords->grid_dim)
inline constexpr int warpSize = 32;

// A macro, so that the barrier's call site (its identity in the divergence check) is the kernel's.
#define __syncthreads() ::halo::cuda_emulator::syncthreads()

template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  using namespace ::halo::cuda_emulator;
  return from_bits<T>(warp_exchange(mask, to_bits(v), ShuffleMode::xor_lane, lane_mask, width));
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  using namespace ::halo::cuda_emulator;
  return from_bits<T>(warp_exchange(mask, to_bits(v), ShuffleMode::down, int(delta), width));
}
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  using namespace ::halo::cuda_emulator;
  return from_bits<T>(warp_exchange(mask, to_bits(v), ShuffleMode::up, int(delta), width));
}
template <class T>
T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32) {
  using namespace ::halo::cuda_emulator;
  return from_bits<T>(warp_exchange(mask, to_bits(v), ShuffleMode::index, src_lane, width));
}
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  ::halo::cuda_emulator::warp_exchange(mask, 0, ::halo::cuda_emulator::ShuffleMode::sync_only, 0,
                                       32);
}

template <class T>
inline T __ldg(const T* p) {
  return *p;
}
inline unsigned __umulhi(unsigned a, unsigned b) {
  return unsigned((unsigned long long)a * b >> 32);
}

// CUDA's min/max overloads (integer and floating point), found by unqualified calls in device code.
inline int min(int a, int b) {
  return a < b ? a : b;
}
inline unsigned min(unsigned a, unsigned b) {
  return a < b ? a : b;
}
inline long long min(long long a, long long b) {
  return a < b ? a : b;
}
inline unsigned long long min(unsigned long long a, unsigned long long b) {
  return a < b ? a : b;
}
inline unsigned long min(unsigned long a, unsigned long b) {
  return a < b ? a : b;
}
inline unsigned min(int a, unsigned b) {
  return min(unsigned(a), b);
}
inline unsigned min(unsigned a, int b) {
  return min(a, unsigned(b));
}
inline float min(float a, float b) {
  return std::fmin(a, b);
}
inline double min(double a, double b) {
  return std::fmin(a, b);
}
inline int max(int a, int b) {
  return a > b ? a : b;
}
inline unsigned max(unsigned a, unsigned b) {
  return a > b ? a : b;
}
inline long long max(long long a, long long b) {
  return a > b ? a : b;
}
inline unsigned long long max(unsigned long long a, unsigned long long b) {
  return a > b ? a : b;
}
inline unsigned long max(unsigned long a, unsigned long b) {
  return a > b ? a : b;
}
inline unsigned max(int a, unsigned b) {
  return max(unsigned(a), b);
}
inline unsigned max(unsigned a, int b) {
  return max(a, unsigned(b));
}
inline float max(float a, float b) {
  return std::fmax(a, b);
}
inline double max(double a, double b) {
  return std::fmax(a, b);
}
