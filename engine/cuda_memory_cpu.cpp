// The CPU-only build's side of cuda_memory.h: no GPU can be used, and asking for one says why.
#include <stdexcept>

#include "engine/cuda_memory.h"

namespace halo::cuda {
namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw std::runtime_error(std::string(what) +
                           ": Halo was built without CUDA (nvcc was not found at configure time, "
                           "or HALO_CUDA=OFF); rebuild with the CUDA toolkit or use --device cpu");
}
}  // namespace
bool built_with_cuda() {
  return false;
}
bool emulated_device() {
  return false;
}
bool vendor_libraries_available() {
  return false;
}
bool gpu_available(std::string* why) {
  if (why) *why = "Halo was built without CUDA";
  return false;
}
void* stream() {
  return nullptr;
}
void synchronize() {}
void* device_allocate(std::size_t) {
  no_cuda("device_allocate");
}
void device_free(void*, std::size_t) {}
void copy(void*, bool, const void*, bool, std::size_t) {
  no_cuda("copy to or from a CUDA tensor");
}
void fill(float*, std::size_t, float) {
  no_cuda("fill of a CUDA tensor");
}
DeviceAllocatorStats device_allocator_stats() {
  return {};
}
void use_vendor_libraries(bool) {}
void set_tf32_default() {}
void disable_tf32() {}
}  // namespace halo::cuda
