// The caching host allocator (see allocator.h for why it exists).
#include "engine/allocator.h"

#include <cstdlib>
#include <new>

namespace halo {

CpuAllocator& CpuAllocator::instance() {
  // Leaked on purpose: tensors in static objects may be freed after main() returns.
  static CpuAllocator* a = new CpuAllocator();
  return *a;
}

std::size_t CpuAllocator::round_size(std::size_t bytes) {
  if (bytes == 0) bytes = 1;
  constexpr std::size_t kSmall = 512, kLarge = 1 << 20;
  if (bytes < kLarge) return (bytes + kSmall - 1) / kSmall * kSmall;
  std::size_t pow2 = kLarge;  // the largest power of two <= bytes
  while (pow2 * 2 <= bytes) pow2 <<= 1;
  const std::size_t step = pow2 / 8;
  return (bytes + step - 1) / step * step;
}

void* CpuAllocator::allocate(std::size_t bytes) {
  const std::size_t size = round_size(bytes);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(size);
    if (it != free_.end()) {
      void* p = it->second;
      free_.erase(it);
      stats_.cache_hits++;
      stats_.bytes_cached -= size;
      stats_.bytes_in_use += size;
      if (stats_.bytes_in_use > stats_.peak_bytes_in_use)
        stats_.peak_bytes_in_use = stats_.bytes_in_use;
      return p;
    }
  }
  void* p = std::aligned_alloc(kAlignment, size);
  if (p == nullptr) {
    release_cached();  // try once more with the cache emptied
    p = std::aligned_alloc(kAlignment, size);
    if (p == nullptr) throw std::bad_alloc();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.system_allocs++;
  stats_.bytes_in_use += size;
  if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
  return p;
}

void CpuAllocator::deallocate(void* ptr, std::size_t bytes) {
  if (ptr == nullptr) return;
  const std::size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  free_.emplace(size, ptr);
  stats_.bytes_in_use -= size;
  stats_.bytes_cached += size;
}

void CpuAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [size, p] : free_) std::free(p);
  free_.clear();
  stats_.bytes_cached = 0;
}

AllocatorStats CpuAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

CpuAllocator::~CpuAllocator() { release_cached(); }

}  // namespace halo
