// Device memory for CUDA tensors: a caching allocator over cudaMalloc. Blocks are rounded to size
// classes and kept on free when released, so a training step that has run once allocates nothing
// new: every activation of the next step fits a cached block of its own size class.
#include <cuda_runtime.h>

#include <map>
#include <mutex>

#include "engine/allocator.h"
#include "engine/cuda_memory.h"
#include "kernels/cuda/check.h"
#include "kernels/elementwise.h"

namespace halo::cuda {

namespace {
struct DeviceCache {
  std::mutex mutex;
  std::multimap<std::size_t, void*> free;
  DeviceAllocatorStats stats;
};
DeviceCache& cache() {
  static DeviceCache* c = new DeviceCache();  // leaked: tensors may die after main()
  return *c;
}
}  // namespace

bool built_with_cuda() { return true; }

bool gpu_available(std::string* why) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    if (why) *why = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error so later calls are not confused by it
    return false;
  }
  if (count == 0) {
    if (why) *why = "no CUDA device found";
    return false;
  }
  return true;
}

void* device_allocate(std::size_t bytes) {
  const std::size_t size = CpuAllocator::round_size(bytes);
  DeviceCache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free.find(size);
    if (it != c.free.end()) {
      void* p = it->second;
      c.free.erase(it);
      c.stats.cache_hits++;
      c.stats.bytes_cached -= size;
      c.stats.bytes_in_use += size;
      return p;
    }
  }
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, size);
  if (err == cudaErrorMemoryAllocation) {  // give the cache back and try once more
    cudaGetLastError();
    std::lock_guard<std::mutex> lock(c.mutex);
    for (auto& [s, q] : c.free) cudaFree(q);
    c.free.clear();
    c.stats.bytes_cached = 0;
    err = cudaMalloc(&p, size);
  }
  HALO_CUDA_CHECK(err);
  std::lock_guard<std::mutex> lock(c.mutex);
  c.stats.cuda_mallocs++;
  c.stats.bytes_in_use += size;
  return p;
}

void device_free(void* p, std::size_t bytes) {
  if (!p) return;
  const std::size_t size = CpuAllocator::round_size(bytes);
  DeviceCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.free.emplace(size, p);
  c.stats.bytes_in_use -= size;
  c.stats.bytes_cached += size;
}

void copy(void* dst, bool dst_on_gpu, const void* src, bool src_on_gpu, std::size_t bytes) {
  const cudaMemcpyKind kind = dst_on_gpu ? (src_on_gpu ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                         : (src_on_gpu ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  HALO_CUDA_CHECK(cudaMemcpy(dst, src, bytes, kind));
}

void fill(float* p, std::size_t n, float value) { kernels::cuda::fill(n, value, p, nullptr); }

DeviceAllocatorStats device_allocator_stats() {
  std::lock_guard<std::mutex> lock(cache().mutex);
  return cache().stats;
}

}  // namespace halo::cuda
