// Device memory behind Tensor storage on Device::cuda: a caching allocator (no cudaMalloc or
// cudaFree once a training step has run once), the engine's compute stream, copies and fill.
// Implemented in cuda_memory.cu when Halo is built with CUDA; the CPU-only build's versions
// (cuda_memory_cpu.cpp) throw a clear error instead.
//
// Ordering: every kernel and every copy of the engine is queued on ONE stream, stream(). A block
// freed by a tensor may therefore be handed to the next tensor at once (the kernels that still
// read it run before anything queued later), as PyTorch's caching allocator does per stream.
// The host waits for the GPU only when it reads device data (copies to the host, item()).
#pragma once
#include <cstddef>
#include <string>

namespace halo::cuda {

bool built_with_cuda();
// True in a -DHALO_CUDA=EMULATED build: Device::cuda is then the emulated CUDA device
// (kernels/cuda_emulator), which runs the hand-written kernels on the CPU and has no cuDNN/cuBLAS.
bool emulated_device();
// True when the vendor libraries (cuDNN, cuBLAS) can run: a real CUDA build with a GPU.
bool vendor_libraries_available();
// True when a usable GPU is present. Any error from the runtime (no driver, "driver version is
// insufficient", no device) counts as "no GPU"; `why` then receives the runtime's message.
bool gpu_available(std::string* why = nullptr);

// The engine's compute stream (a cudaStream_t, non-blocking, created on first use).
void* stream();
// Waits until everything queued on stream() has finished (and reports a kernel's error, if any).
void synchronize();

void* device_allocate(std::size_t bytes);
void device_free(void* p, std::size_t bytes);
// Copies `bytes` between host and device memory in stream order:
//  host -> device: through a pinned staging buffer, then cudaMemcpyAsync; returns without waiting
//                  for the GPU (the source may be reused at once);
//  device -> host: waits for the stream, so the host sees every earlier kernel's result;
//  device -> device: queued, no wait.
void copy(void* dst, bool dst_on_gpu, const void* src, bool src_on_gpu, std::size_t bytes);
void fill(float* p, std::size_t n, float value);  // queued on stream()

struct DeviceAllocatorStats {
  std::size_t cuda_mallocs = 0, cache_hits = 0, bytes_in_use = 0, bytes_cached = 0;
  std::size_t pinned_allocs = 0;  // pinned staging buffers allocated (they only grow)
};
DeviceAllocatorStats device_allocator_stats();

// GPU policy (kernels/cudnn/settings.h), set once by the apps from their flags:
// vendor = true: cuDNN for convolution and batch norm, cuBLAS for GEMM (the default on a GPU);
// vendor = false: the hand-written kernels of kernels/cuda/ for all three (the default, and the
// only choice, on the emulated device).
void use_vendor_libraries(bool vendor);
// TF32 tensor cores: PyTorch's defaults (convolutions yes, matrix multiplies no), or off
// everywhere.
void set_tf32_default();
void disable_tf32();

}  // namespace halo::cuda
