// Device memory behind Tensor storage on Device::cuda: a caching allocator (no cudaMalloc or
// cudaFree once a training step has run once), copies and fill. Implemented in cuda_memory.cu
// when Halo is built with CUDA; the CPU-only build's versions throw a clear error instead.
#pragma once
#include <cstddef>
#include <string>

namespace halo::cuda {

bool built_with_cuda();
// True when a usable GPU is present. Any error from the runtime (no driver, "driver version is
// insufficient", no device) counts as "no GPU"; `why` then receives the runtime's message.
bool gpu_available(std::string* why = nullptr);

void* device_allocate(std::size_t bytes);
void device_free(void* p, std::size_t bytes);
void copy(void* dst, bool dst_on_gpu, const void* src, bool src_on_gpu, std::size_t bytes);
void fill(float* p, std::size_t n, float value);

struct DeviceAllocatorStats {
  std::size_t cuda_mallocs = 0, cache_hits = 0, bytes_in_use = 0, bytes_cached = 0;
};
DeviceAllocatorStats device_allocator_stats();

}  // namespace halo::cuda
