// Host memory for tensors: a caching pool of 64-byte aligned blocks. A training step frees and
// re-allocates the same activation sizes every iteration; handing back cached blocks instead of
// calling malloc/free keeps step times steady (glibc's trimming and page faults otherwise move
// them by up to 2x on small machines) and keeps SIMD loads aligned.
#pragma once
#include <cstddef>
#include <map>
#include <mutex>

namespace halo {

struct AllocatorStats {
  std::size_t system_allocs = 0;   // blocks obtained from the system
  std::size_t cache_hits = 0;      // allocations served from the cache
  std::size_t bytes_in_use = 0;    // handed out and not yet returned
  std::size_t bytes_cached = 0;    // returned and kept for reuse
  std::size_t peak_bytes_in_use = 0;
};

class CpuAllocator {
 public:
  static constexpr std::size_t kAlignment = 64;
  static CpuAllocator& instance();

  // Returns a block of at least `bytes` (rounded up to a size class), 64-byte aligned.
  void* allocate(std::size_t bytes);
  // Returns the block to the cache; `bytes` must be the size passed to allocate().
  void deallocate(void* ptr, std::size_t bytes);
  // Gives every cached block back to the system.
  void release_cached();
  AllocatorStats stats() const;

  // Size classes: multiples of 512 B below 1 MiB, then multiples of 1/8 of the power of two
  // just below the request, so a cached block is never more than 12.5% larger than the request.
  static std::size_t round_size(std::size_t bytes);

  ~CpuAllocator();

 private:
  CpuAllocator() = default;
  mutable std::mutex mutex_;
  std::multimap<std::size_t, void*> free_;  // size class -> cached blocks
  AllocatorStats stats_;
};

}  // namespace halo
