// Device memory for CUDA tensors: a caching allocator over cudaMalloc, the engine's compute
// stream, and stream-ordered copies (see cuda_memory.h for the ordering rules).
//
// Allocator: blocks are rounded to size classes and kept on free, so a training step that has run
// once allocates nothing new: every activation of the next step fits a cached block of its own
// size class. Reusing a block at once is safe because all work is on one stream.
//
// Uploads: a host -> device copy from ordinary (pageable) memory is first copied by the CPU into
// one of two pinned staging buffers, then queued with cudaMemcpyAsync. The host does not wait for
// the GPU, except to reuse a staging buffer whose previous copy has not run yet (the GPU is then
// two uploads behind: a natural limit on how far the host runs ahead).
#include <cuda_runtime.h>

#include <cstring>
#include <map>
#include <mutex>

#include "engine/allocator.h"
#include "engine/cuda_memory.h"
#include "kernels/cuda/check.h"
#include "kernels/cudnn/settings.h"
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

cudaStream_t compute_stream() {
  static cudaStream_t s = [] {
    cudaStream_t st = nullptr;
    HALO_CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    return st;
  }();
  return s;
}

// Two pinned buffers used in turn; `done` is recorded on the stream after the copy out of it.
struct Staging {
  std::mutex mutex;
  struct Buffer {
    void* host = nullptr;
    std::size_t bytes = 0;
    cudaEvent_t done = nullptr;
  } buf[2];
  int next = 0;
};
Staging& staging() {
  static Staging* s = new Staging();  // leaked, as the cache
  return *s;
}

void upload(void* dst, const void* src, std::size_t bytes) {
  Staging& st = staging();
  std::lock_guard<std::mutex> lock(st.mutex);
  Staging::Buffer& b = st.buf[st.next];
  st.next ^= 1;
  if (!b.done) HALO_CUDA_CHECK(cudaEventCreateWithFlags(&b.done, cudaEventDisableTiming));
  HALO_CUDA_CHECK(cudaEventSynchronize(b.done));  // its previous copy has been done by the GPU
  if (b.bytes < bytes) {
    if (b.host) HALO_CUDA_CHECK(cudaFreeHost(b.host));
    b.host = nullptr;
    b.bytes = 0;
    const std::size_t size = CpuAllocator::round_size(bytes);
    HALO_CUDA_CHECK(cudaHostAlloc(&b.host, size, cudaHostAllocDefault));
    b.bytes = size;
    std::lock_guard<std::mutex> lock2(cache().mutex);
    cache().stats.pinned_allocs++;
  }
  std::memcpy(b.host, src, bytes);
  HALO_CUDA_CHECK(cudaMemcpyAsync(dst, b.host, bytes, cudaMemcpyHostToDevice, compute_stream()));
  HALO_CUDA_CHECK(cudaEventRecord(b.done, compute_stream()));
}
}  // namespace

bool built_with_cuda() {
  return true;
}

bool emulated_device() {
#ifdef HALO_CUDA_EMULATED
  return true;
#else
  return false;
#endif
}

bool vendor_libraries_available() {
  return !emulated_device() && gpu_available();
}

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

void* stream() {
  return compute_stream();
}

void synchronize() {
  HALO_CUDA_CHECK(cudaStreamSynchronize(compute_stream()));
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
    HALO_CUDA_CHECK(cudaStreamSynchronize(compute_stream()));  // cached blocks may still be read
    std::lock_guard<std::mutex> lock(c.mutex);
    for (auto& [s, q] : c.free) HALO_CUDA_CHECK(cudaFree(q));
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
  if (bytes == 0) return;
  if (dst_on_gpu && !src_on_gpu) {
    upload(dst, src, bytes);
  } else if (!dst_on_gpu && src_on_gpu) {
    HALO_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, compute_stream()));
    HALO_CUDA_CHECK(cudaStreamSynchronize(compute_stream()));
  } else if (dst_on_gpu && src_on_gpu) {
    HALO_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, compute_stream()));
  } else {
    std::memcpy(dst, src, bytes);
  }
}

void fill(float* p, std::size_t n, float value) {
  kernels::cuda::fill(n, value, p, compute_stream());
}

DeviceAllocatorStats device_allocator_stats() {
  std::lock_guard<std::mutex> lock(cache().mutex);
  return cache().stats;
}

void use_vendor_libraries(bool vendor) {
  using kernels::cudnn::Backend;
  if (vendor && emulated_device())
    throw std::invalid_argument(
        "cuDNN and cuBLAS need a real GPU: this build runs the emulated CUDA device "
        "(-DHALO_CUDA=EMULATED), which has only Halo's hand-written kernels (--gpu-kernels "
        "handwritten)");
  const Backend b = vendor ? Backend::vendor : Backend::handwritten;
  kernels::cudnn::set_conv_backend(b);
  kernels::cudnn::set_batch_norm_backend(b);
  kernels::cudnn::set_gemm_backend(b);
}

void set_tf32_default() {
  kernels::cudnn::reset_tf32_defaults();
}
void disable_tf32() {
  kernels::cudnn::set_tf32(false);
}

}  // namespace halo::cuda
